//! Price lists kept in the back office, in a real headless Chromium on both backends: a key
//! user creates a price list, sets and removes prices, renames it and makes it the default
//! for new outlets; the agent's real engine sees each change after its next sync, an imported
//! new outlet gets the default, bad input is refused with its reason and changes nothing, and
//! another distributor's key user cannot open it.

use fieldsync_agent::{Engine, HttpTransport};
use fieldsync_server::store::keyusers::Role;
use fieldsync_server::store::now_ms;
use fieldsync_tests::browser::{Browser, ensure_leaflet};
use fieldsync_tests::*;

const PASSWORD: &str = "secret123";

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

/// The stored (name, payment form) of the distributor's price list named `name`.
async fn stored_list(server: &TestServer, d: i64, name: &str) -> Option<(i64, String)> {
    sqlx::query_as(
        "SELECT id, payment_form FROM price_lists WHERE distributor_id = $1 AND name = $2",
    )
    .bind(d)
    .bind(name)
    .fetch_optional(server.store.test_pool())
    .await
    .unwrap()
}

async fn price_list_editor(db: &TestDb) {
    ensure_leaflet();
    let server = TestServer::start(db).await;
    let url = &server.url;
    let agents = seed(&server.store, &small_world("ACME", 1)).await;
    seed(&server.store, &small_world("OTHER", 1)).await;
    let s = &server.store;
    for (login, d) in [("acme-kp", "ACME"), ("other-kp", "OTHER")] {
        s.create_key_user(login, PASSWORD, Role::KeyUser, &[d.into()], now_ms())
            .await
            .unwrap();
    }
    let d = s.distributor_id("ACME").await.unwrap();
    let pool = s.test_pool();
    let (product, code): (i64, String) = sqlx::query_as(
        "SELECT id, code FROM products WHERE distributor_id = $1 ORDER BY code LIMIT 1",
    )
    .bind(d)
    .fetch_one(pool)
    .await
    .unwrap();

    // The agent's phone, synced before anything changes.
    let dir = tempfile::tempdir().unwrap();
    let phone = Engine::open(dir.path().join("agent.db")).unwrap();
    let t = HttpTransport::new(url);
    phone
        .activate(&t, url, &agents[0].login, &agents[0].pin, "phone", "1.0")
        .await
        .unwrap();
    phone.sync(&t).await.unwrap();

    // Create a price list from the list page.
    let b = logged_in(url, "acme-kp").await;
    b.goto(&format!("{url}/price-lists")).await;
    b.run("document.querySelector('#create-price-list').open = true")
        .await;
    b.fill("#price-list-name", "Promo June").await;
    b.run("document.querySelector('#payment-form').value = 'credit'")
        .await;
    b.click("#save-new-price-list").await;
    let (list, form) = stored_list(&server, d, "Promo June")
        .await
        .expect("created");
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
    assert!(refused(&b, "already has a price list").await);
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
    assert!(refused(&b, "like 12.50").await);
    set_price("NO-SUCH", "3").await;
    assert!(refused(&b, "no product with this code").await);
    let (price,): (i64,) = sqlx::query_as(
        "SELECT price_minor FROM prices WHERE price_list_id = $1 AND product_id = $2",
    )
    .bind(list)
    .bind(product)
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(price, 1250, "the refused attempts changed nothing");

    // The phone gets the new price list and its price with its next sync.
    phone.sync(&t).await.unwrap();
    let seen = phone
        .product(product, list)
        .unwrap()
        .expect("product on the phone");
    assert_eq!(seen.price_minor, Some(1250));

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
        stored_list(&server, d, "Promo July").await,
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
    phone.sync(&t).await.unwrap();
    let seen = phone
        .product(product, list)
        .unwrap()
        .expect("product on the phone");
    assert_eq!(seen.price_minor, None, "the removed price left the phone");
    b.close().await;

    // Another distributor's key user neither sees nor changes it, even by URL.
    let other = logged_in(url, "other-kp").await;
    other.goto(&format!("{url}/price-lists/{list}")).await;
    assert!(other.find_opt("#price-list-name").await.is_none());
    assert!(other.find_opt("#error-message").await.is_some());
    other.close().await;
    server.stop().await;
}
on_both_backends!(
    a_key_user_creates_a_price_list_sets_and_removes_prices_and_the_phone_follows,
    price_list_editor
);
