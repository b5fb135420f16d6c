//! Master data kept one at a time in the back office, in a real headless Chromium on both
//! backends, followed to the agents' real engines:
//! - price lists: a key user creates one, sets and removes prices, renames it and makes it the
//!   default for new outlets; the phone sees each change after its next sync, an imported new
//!   outlet gets the default;
//! - outlets: a key user creates one in a territory and its agent's phone gets it; editing an
//!   outlet into another territory takes it off the old territory's phone and onto the new
//!   one's, and keeps what the form does not show (the reference location);
//! - global records: the head office creates a global outlet and marks a product global; a
//!   key user maps a local outlet to the global one but can neither mark a record global nor
//!   open or change a global one; unmarking a global outlet that a local one is mapped to is
//!   refused with the count until the mapping goes.
//!
//! Bad input (a taken name or code, an empty name, a bad amount, an unknown product) is
//! refused with its reason and changes nothing; another distributor's key user cannot open
//! either card, even by URL.

use fieldsync_server::Store;
use fieldsync_server::seed::SeededAgent;
use fieldsync_server::store::keyusers::Role;
use fieldsync_server::store::now_ms;
use fieldsync_tests::browser::{Browser, ensure_leaflet};
use fieldsync_tests::*;

const PASSWORD: &str = "secret123";

/// ACME's world as its key user edits it.
struct Ctx {
    server: TestServer,
    agents: Vec<SeededAgent>,
    /// ACME's id.
    d: i64,
}

impl Ctx {
    /// ACME's agents, ACME's id, the server's URL and its store.
    fn parts(&self) -> (&[SeededAgent], i64, &str, &Store) {
        let s = &self.server;
        (&self.agents, self.d, &s.url, &s.store)
    }
}

/// Tests on both backends, each running a scenario with a number of ACME agents through
/// [`as_key_user`].
macro_rules! editor_tests {
    ($($test:ident: $agents:expr, $scenario:ident;)*) => {$(
        mod $test {
            use super::*;
            async fn run(db: &TestDb) {
                as_key_user(db, $agents, $scenario).await;
            }
            on_both_backends!(on, run);
        }
    )*};
}

editor_tests! {
    a_key_user_creates_a_price_list_sets_and_removes_prices_and_the_phone_follows: 1, price_list_editor;
    a_key_user_creates_and_moves_outlets_and_the_phones_of_both_territories_follow: 2, outlet_editor;
    a_key_user_creates_and_edits_a_product_and_every_phone_of_the_distributor_gets_it: 1, product_editor;
    a_key_user_builds_a_questionnaire_the_phone_enforces_it_and_an_edit_after_answers_makes_a_version: 1, questionnaire_editor;
    the_head_office_marks_records_global_a_key_user_maps_to_them_but_cannot_mark_or_change_them: 1, globals_editor;
}

#[path = "editors/questionnaires.rs"]
mod questionnaires;
use questionnaires::questionnaire_editor;

/// Runs an editor scenario in a fresh world: ACME with `agents` agents (one territory each)
/// and OTHER with one, the key users `acme-kp` and `other-kp` of one distributor each.
/// `scenario` gets the world and a browser logged in as `acme-kp`, and returns the path of
/// an ACME page and a form on it that `other-kp` must not be shown.
async fn as_key_user(
    db: &TestDb,
    agents: usize,
    scenario: impl AsyncFnOnce(&Ctx, &Browser) -> (String, &'static str),
) {
    ensure_leaflet();
    let (server, agents) = acme_server(db, agents).await;
    seed(&server.store, &small_world("OTHER", 1)).await;
    let s = &server.store;
    for (login, d) in [("acme-kp", "ACME"), ("other-kp", "OTHER")] {
        s.create_key_user(login, PASSWORD, Role::KeyUser, &[d.into()], now_ms())
            .await
            .unwrap();
    }
    let d = s.distributor_id("ACME").await.unwrap();
    let ctx = Ctx { server, agents, d };
    let url = ctx.server.url.clone();
    let b = logged_in(&url, "acme-kp").await;
    let (path, form) = scenario(&ctx, &b).await;
    b.close().await;
    hidden_from_other(&url, &path, form).await;
    ctx.server.stop().await;
}

async fn logged_in(url: &str, who: &str) -> Browser {
    let b = Browser::start().await;
    b.log_in(url, who, PASSWORD).await;
    assert!(
        b.text("#me").await.starts_with(who),
        "{}",
        b.text("body").await
    );
    b
}

/// Whether the page is an error page that says `text`.
async fn refused(b: &Browser, text: &str) -> bool {
    b.text("#error-message").await.contains(text)
}

/// `other-kp` opens `path` of ACME's: an error page, without the form `form`.
async fn hidden_from_other(url: &str, path: &str, form: &str) {
    let other = logged_in(url, "other-kp").await;
    other.goto(&format!("{url}{path}")).await;
    assert!(other.find_opt(form).await.is_none(), "{path} showed {form}");
    assert!(other.find_opt("#error-message").await.is_some());
    other.close().await;
}

/// Opens the form for a new item from the list at `list` and types its code and name.
async fn new_item(b: &Browser, list: &str, code: &str, name: &str) {
    b.goto(list).await;
    b.click("#new-item").await;
    b.fill("#code", code).await;
    b.fill("#name", name).await;
}

/// Picks `value` in the select `#name`.
async fn pick(b: &Browser, name: &str, value: i64) {
    b.run(&format!(
        "document.getElementById('{name}').value = '{value}'"
    ))
    .await;
}

/// The stored (name, payment form) of the distributor's price list named `name`.
async fn stored_list(store: &Store, d: i64, name: &str) -> Option<(i64, String)> {
    sqlx::query_as(
        "SELECT id, payment_form FROM price_lists WHERE distributor_id = $1 AND name = $2",
    )
    .bind(d)
    .bind(name)
    .fetch_optional(store.test_pool())
    .await
    .unwrap()
}

async fn price_list_editor(w: &Ctx, b: &Browser) -> (String, &'static str) {
    let (agents, d, url, s) = w.parts();
    let pool = s.test_pool();
    let (product, code): (i64, String) = sqlx::query_as(
        "SELECT id, code FROM products WHERE distributor_id = $1 ORDER BY code LIMIT 1",
    )
    .bind(d)
    .fetch_one(pool)
    .await
    .unwrap();

    // The agent's phone, synced before anything changes.
    let phone = Phone::activated(url, &agents[0]).await;

    // Create a price list from the list page.
    b.goto(&format!("{url}/price-lists")).await;
    b.run("document.querySelector('#create-price-list').open = true")
        .await;
    b.fill("#price-list-name", "Promo June").await;
    b.run("document.querySelector('#payment-form').value = 'credit'")
        .await;
    b.click("#save-new-price-list").await;
    let (list, form) = stored_list(s, d, "Promo June").await.expect("created");
    assert_eq!(form, "credit");
    assert!(
        b.current_url()
            .await
            .ends_with(&format!("/price-lists/{list}"))
    );
    assert_eq!(b.text("#is-default").await, "No");

    // The same name again is refused, and nothing is added.
    b.goto(&format!("{url}/price-lists")).await;
    b.run("document.querySelector('#create-price-list').open = true")
        .await;
    b.fill("#price-list-name", "Promo June").await;
    b.click("#save-new-price-list").await;
    assert!(refused(b, "already has a price list").await);
    let (lists,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM price_lists WHERE distributor_id = $1 AND name = 'Promo June'",
    )
    .bind(d)
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(lists, 1);

    // Set a price; a bad amount and an unknown product are refused with their reason.
    let set_price = async |product_code: &str, amount: &str| {
        b.goto(&format!("{url}/price-lists/{list}")).await;
        b.fill("#price-product", product_code).await;
        b.fill("#price-amount", amount).await;
        b.click("#set-price").await;
    };
    set_price(&code, "12,50").await;
    assert_eq!(b.text("#prices tbody tr td:nth-child(3)").await, "12.50");
    set_price(&code, "cheap").await;
    assert!(refused(b, "like 12.50").await);
    set_price("NO-SUCH", "3").await;
    assert!(refused(b, "no product with this code").await);
    let price = "SELECT price_minor FROM prices WHERE price_list_id = $1 AND product_id = $2";
    let (price,): (i64,) = sqlx::query_as(price)
        .bind(list)
        .bind(product)
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(price, 1250, "the refused attempts changed nothing");

    // The phone gets the new price list and its price with its next sync.
    phone.sync().await;
    let seen = phone.price(product, list);
    assert_eq!(seen, Some(1250));

    // A price from a future day: listed with its day, on the phone beside today's, which
    // stays in force; a day that is not a date is refused. Then it is removed again.
    b.goto(&format!("{url}/price-lists/{list}")).await;
    b.fill("#price-product", &code).await;
    b.fill("#price-amount", "14").await;
    b.run("document.getElementById('price-valid-from').type = 'text'; document.getElementById('price-valid-from').value = '31.12.2099'").await;
    b.click("#set-price").await;
    assert!(refused(b, "a date like 2026-12-31").await);
    b.goto(&format!("{url}/price-lists/{list}")).await;
    b.fill("#price-product", &code).await;
    b.fill("#price-amount", "14").await;
    b.run("document.getElementById('price-valid-from').value = '2099-01-01'")
        .await;
    b.click("#set-price").await;
    assert_eq!(b.count("#prices tbody tr").await, 2);
    assert_eq!(
        b.text("#prices tbody tr:nth-child(2) td.valid-from").await,
        "2099-01-01"
    );
    phone.sync().await;
    assert_eq!(
        phone.price(product, list),
        Some(1250),
        "today's price stays in force"
    );
    let (future,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM prices WHERE price_list_id = $1 AND valid_from = '2099-01-01' AND price_minor = 1400",
    )
    .bind(list)
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(future, 1);
    b.click("#prices tbody tr:nth-child(2) button.remove-price")
        .await;
    assert_eq!(b.count("#prices tbody tr").await, 1);
    assert_eq!(b.text("#prices tbody tr td.valid-from").await, "always");

    // Rename it, change its payment form and make it the default for new outlets.
    b.goto(&format!("{url}/price-lists/{list}")).await;
    b.fill("#price-list-name", "Promo July").await;
    b.run("document.querySelector('#payment-form').value = 'bank_transfer'")
        .await;
    b.click("#save-price-list").await;
    assert_eq!(b.text("#payment-form-value").await, "bank transfer");
    b.click("#make-default").await;
    assert_eq!(b.text("#is-default").await, "Yes");
    assert_eq!(
        stored_list(s, d, "Promo July").await,
        Some((list, "bank_transfer".to_string()))
    );

    // An outlet created by an import, naming no price list, gets the default.
    let (_, key) = s.create_api_key(d, "erp", now_ms()).await.unwrap();
    let resp = reqwest::Client::new()
        .post(format!("{url}/api/v1/imports/outlets?format=csv"))
        .bearer_auth(&key)
        .body("code,name\nNEW-1,New shop\n")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    let (new_list,): (Option<i64>,) = sqlx::query_as(
        "SELECT price_list_id FROM outlets WHERE distributor_id = $1 AND code = 'NEW-1'",
    )
    .bind(d)
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(new_list, Some(list));

    // Remove the price: the phone drops it with its next sync.
    b.goto(&format!("{url}/price-lists/{list}")).await;
    b.click("#prices button.remove-price").await;
    assert_eq!(b.count("#prices tbody tr td.empty").await, 1);
    phone.sync().await;
    let seen = phone.price(product, list);
    assert_eq!(seen, None, "the removed price left the phone");
    // Another distributor's key user neither sees nor changes it, even by URL.
    (format!("/price-lists/{list}"), "#price-list-name")
}

async fn outlet_editor(w: &Ctx, b: &Browser) -> (String, &'static str) {
    let (agents, d, url, s) = w.parts();
    let pool = s.test_pool();
    let territory = async |name: &str| -> i64 {
        let (id,): (i64,) = sqlx::query_as(
            "SELECT id FROM org_units WHERE distributor_id = $1 AND kind = 'territory' AND name = $2",
        )
        .bind(d)
        .bind(name)
        .fetch_one(pool)
        .await
        .unwrap();
        id
    };
    let (t1, t2) = (
        territory("Territory 1").await,
        territory("Territory 2").await,
    );
    let first = Phone::activated(url, &agents[0]).await;
    let second = Phone::activated(url, &agents[1]).await;

    // Create an outlet in the first territory.
    new_item(b, &format!("{url}/outlets"), "NEW-7", "Corner shop").await;
    b.fill("#address", "Khreshchatyk 1").await;
    pick(b, "territory_id", t1).await;
    b.click("#save-item").await;
    let stored: Option<(i64, Option<i64>, Option<i64>)> = sqlx::query_as(
        "SELECT id, territory_id, price_list_id FROM outlets WHERE distributor_id = $1 AND code = 'NEW-7'",
    )
    .bind(d)
    .fetch_optional(pool)
    .await
    .unwrap();
    let (created, territory_id, price_list) = stored.expect("the outlet was created");
    assert_eq!(territory_id, Some(t1));
    assert_eq!(price_list, s.default_price_list(d).await.unwrap());
    assert!(
        b.current_url()
            .await
            .ends_with(&format!("/outlets/{created}"))
    );
    first.sync().await;
    second.sync().await;
    assert_eq!(first.outlet_name(created).as_deref(), Some("Corner shop"));
    assert_eq!(second.outlet_name(created), None);

    // The same code again, or no name, is refused and adds nothing.
    let outlets = count(s, "outlets").await;
    for (code, name, reason) in [
        ("NEW-7", "Another", "already has an outlet"),
        ("NEW-8", " ", "needs a code"),
    ] {
        b.goto(&format!("{url}/outlets/new")).await;
        b.fill("#code", code).await;
        b.fill("#name", name).await;
        b.click("#save-item").await;
        assert!(refused(b, reason).await, "{code} {name:?}");
    }
    assert_eq!(count(s, "outlets").await, outlets);

    // Edit a seeded outlet of the first territory into the second: the first phone drops
    // it, the second gets it with its new name; its reference location stays.
    let (moved, location): (i64, Option<i64>) = sqlx::query_as(
        "SELECT id, lat_e7 FROM outlets WHERE territory_id = $1 AND lat_e7 IS NOT NULL ORDER BY id LIMIT 1",
    )
    .bind(t1)
    .fetch_one(pool)
    .await
    .unwrap();
    assert!(first.outlet_name(moved).is_some());
    b.goto(&format!("{url}/outlets/{moved}")).await;
    b.click("#edit-outlet").await;
    b.fill("#name", "Moved shop").await;
    pick(b, "territory_id", t2).await;
    b.click("#save-item").await;
    assert_eq!(b.text("#outlet-name").await, "Moved shop");
    let (territory_id, lat): (Option<i64>, Option<i64>) =
        sqlx::query_as("SELECT territory_id, lat_e7 FROM outlets WHERE id = $1")
            .bind(moved)
            .fetch_one(pool)
            .await
            .unwrap();
    assert_eq!((territory_id, lat), (Some(t2), location));
    first.sync().await;
    second.sync().await;
    assert_eq!(
        first.outlet_name(moved),
        None,
        "it left the old territory's phone"
    );
    assert_eq!(second.outlet_name(moved).as_deref(), Some("Moved shop"));
    // Another distributor's key user cannot open the form, even by URL.
    (format!("/outlets/{moved}/edit"), "#item-form")
}

async fn product_editor(w: &Ctx, b: &Browser) -> (String, &'static str) {
    let (agents, d, url, s) = w.parts();
    let phone = Phone::activated(url, &agents[0]).await;

    // Create a must-stock product: the phone gets it with its next sync.
    new_item(b, &format!("{url}/products"), "NEW-P1", "Kvas 1 l").await;
    b.fill("#unit", "bottle").await;
    b.fill("#category", "drinks").await;
    b.run("document.getElementById('must_stock').click()").await;
    b.click("#save-item").await;
    let stored: Option<(i64, String, String, i64)> = sqlx::query_as(
        "SELECT id, unit, category, must_stock FROM products WHERE distributor_id = $1 AND code = 'NEW-P1'",
    )
    .bind(d)
    .fetch_optional(s.test_pool())
    .await
    .unwrap();
    let (product, unit, category, must) = stored.expect("the product was created");
    assert_eq!(
        (unit.as_str(), category.as_str(), must),
        ("bottle", "drinks", 1)
    );
    assert!(
        b.current_url()
            .await
            .ends_with(&format!("/products/{product}"))
    );
    phone.sync().await;
    let seen = phone
        .engine
        .product(product, 0)
        .unwrap()
        .expect("on the phone");
    assert_eq!(
        (seen.name.as_str(), seen.unit.as_str(), seen.must_stock),
        ("Kvas 1 l", "bottle", true)
    );
    // Must-stock at every channel: checked at the phone's outlet.
    let outlet = phone.engine.search_outlets("", 1).unwrap()[0].id;
    let (channel,): (String,) = sqlx::query_as("SELECT channel FROM outlets WHERE id = $1")
        .bind(outlet)
        .fetch_one(s.test_pool())
        .await
        .unwrap();
    assert!(
        !channel.is_empty(),
        "the test world's outlets have a channel"
    );
    let checked = |phone: &Phone| {
        phone
            .engine
            .must_stock_for(outlet)
            .unwrap()
            .iter()
            .any(|p| p.id == product)
    };
    assert!(checked(&phone));

    // Must-stock for another channel only: the outlet no longer checks it; then for the
    // outlet's channel (ticked among the distributor's channels) it does again.
    b.goto(&format!("{url}/products/{product}/edit")).await;
    b.fill("#more_channels", " cash-and-carry ; ").await;
    b.click("#save-item").await;
    assert_eq!(b.text("#must-stock-channels").await, "cash-and-carry");
    phone.sync().await;
    assert!(
        !checked(&phone),
        "must-stock only at cash-and-carry outlets"
    );
    b.goto(&format!("{url}/products/{product}/edit")).await;
    b.run(&format!(
        "document.querySelector('input.must-stock-channel[value=\"{channel}\"]').click()"
    ))
    .await;
    b.click("#save-item").await;
    assert_eq!(
        b.text("#must-stock-channels").await,
        format!("cash-and-carry, {channel}")
            .split(", ")
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect::<Vec<_>>()
            .join(", ")
    );
    phone.sync().await;
    assert!(checked(&phone), "must-stock at the outlet's channel too");
    // More than 50 channels are refused with the reason; the stored ones stay.
    let many: Vec<String> = (0..51).map(|i| format!("ch{i}")).collect();
    b.goto(&format!("{url}/products/{product}/edit")).await;
    b.fill("#more_channels", &many.join(";")).await;
    b.click("#save-item").await;
    assert!(refused(b, "at most 50 channels").await);
    let (kept,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM product_must_stock_channels WHERE product_id = $1")
            .bind(product)
            .fetch_one(s.test_pool())
            .await
            .unwrap();
    assert_eq!(kept, 2);

    // The same code again is refused; an edit renames it and clears must-stock.
    let products = count(s, "products").await;
    b.goto(&format!("{url}/products/new")).await;
    b.fill("#code", "NEW-P1").await;
    b.fill("#name", "Another").await;
    b.click("#save-item").await;
    assert!(refused(b, "already has a product").await);
    assert_eq!(count(s, "products").await, products);
    b.goto(&format!("{url}/products/{product}")).await;
    b.click("#edit-product").await;
    b.fill("#name", "Kvas 1.5 l").await;
    b.run("document.getElementById('must_stock').click()").await;
    b.click("#save-item").await;
    phone.sync().await;
    let seen = phone
        .engine
        .product(product, 0)
        .unwrap()
        .expect("on the phone");
    assert_eq!((seen.name.as_str(), seen.must_stock), ("Kvas 1.5 l", false));
    (format!("/products/{product}/edit"), "#item-form")
}

/// The stored (is_global, mapping) of an outlet or product.
async fn marking(store: &Store, table: &str, id: i64) -> (i64, Option<i64>) {
    let column = if table == "outlets" {
        "global_outlet_id"
    } else {
        "global_product_id"
    };
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT is_global, {column} FROM {table} WHERE id = $1"
    )))
    .bind(id)
    .fetch_one(store.test_pool())
    .await
    .unwrap()
}

async fn globals_editor(w: &Ctx, b: &Browser) -> (String, &'static str) {
    let (_, d, url, s) = w.parts();
    let pool = s.test_pool();
    s.create_key_user("ho", PASSWORD, Role::HeadOffice, &[], now_ms())
        .await
        .unwrap();
    let ho = logged_in(url, "ho").await;
    let first = async |table: &str| -> i64 {
        let (id,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT MIN(id) FROM {table} WHERE distributor_id = $1"
        )))
        .bind(d)
        .fetch_one(pool)
        .await
        .unwrap();
        id
    };
    let (local, product) = (first("outlets").await, first("products").await);

    // The head office creates a global outlet in ACME.
    ho.goto(&format!("{url}/outlets/new?distributor_id={d}"))
        .await;
    ho.fill("#code", "G-OUT-1").await;
    ho.fill("#name", "Brand flagship").await;
    ho.run("document.getElementById('is_global').click()").await;
    ho.click("#save-item").await;
    let (global,): (i64,) = sqlx::query_as("SELECT id FROM outlets WHERE code = 'G-OUT-1'")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(marking(s, "outlets", global).await, (1, None));
    ho.goto(&format!("{url}/outlets?f.kind=global&cols=code"))
        .await;
    assert_eq!(ho.text("#row-count").await, "1 rows");

    // The key user maps a local outlet to it by its code.
    b.goto(&format!("{url}/outlets/{local}")).await;
    b.fill("#global-code", "G-OUT-1").await;
    b.click("#save-mapping").await;
    assert_eq!(marking(s, "outlets", local).await, (0, Some(global)));

    // The key user cannot open or change the global outlet, nor mark a local one global
    // (a crafted field), nor create a global one.
    b.goto(&format!("{url}/outlets/{global}")).await;
    assert!(b.find_opt("#edit-outlet").await.is_none());
    b.goto(&format!("{url}/outlets/{global}/edit")).await;
    assert!(refused(b, "Only the head office").await);
    let crafted = "const i = document.createElement('input'); i.type = 'hidden'; \
                   i.name = 'is_global'; i.value = '1'; document.getElementById('item-form').appendChild(i)";
    b.goto(&format!("{url}/outlets/{local}/edit")).await;
    assert!(
        b.find_opt("#is_global").await.is_none(),
        "no marking for key users"
    );
    b.run(crafted).await;
    b.click("#save-item").await;
    assert!(refused(b, "Only the head office").await);
    assert_eq!(marking(s, "outlets", local).await, (0, Some(global)));
    let outlets = count(s, "outlets").await;
    new_item(b, &format!("{url}/outlets"), "G-OUT-2", "Not mine to mark").await;
    b.run(crafted).await;
    b.click("#save-item").await;
    assert!(refused(b, "Only the head office").await);
    assert_eq!(count(s, "outlets").await, outlets);

    // Unmarking the global outlet is refused while the local one is mapped to it.
    ho.goto(&format!("{url}/outlets/{global}/edit")).await;
    ho.run("document.getElementById('is_global').click()").await;
    ho.click("#save-item").await;
    assert!(refused(&ho, "1 local records are mapped").await);
    assert_eq!(marking(s, "outlets", global).await, (1, None));
    // Once the key user unmaps it, the head office unmarks the outlet.
    b.goto(&format!("{url}/outlets/{local}")).await;
    b.fill("#global-code", "").await;
    b.click("#save-mapping").await;
    ho.goto(&format!("{url}/outlets/{global}/edit")).await;
    ho.run("document.getElementById('is_global').click()").await;
    ho.click("#save-item").await;
    assert_eq!(ho.text("#outlet-name").await, "Brand flagship");
    assert_eq!(marking(s, "outlets", global).await, (0, None));

    // The head office marks an existing product global: the list shows its kind, the key
    // user no longer edits it.
    ho.goto(&format!("{url}/products/{product}/edit")).await;
    ho.run("document.getElementById('is_global').click()").await;
    ho.click("#save-item").await;
    assert_eq!(marking(s, "products", product).await, (1, None));
    b.goto(&format!("{url}/products?f.kind=global&cols=code"))
        .await;
    assert_eq!(b.text("#row-count").await, "1 rows");
    b.goto(&format!("{url}/products/{product}")).await;
    assert!(b.find_opt("#edit-product").await.is_none());
    b.goto(&format!("{url}/products/{product}/edit")).await;
    assert!(refused(b, "Only the head office").await);
    ho.close().await;
    (format!("/outlets/{local}/edit"), "#item-form")
}
