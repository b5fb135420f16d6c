//! A list exported "for import" and imported back changes nothing, whatever the master data
//! holds: generated outlets and products (any text a form or an import may store: commas,
//! quotes, line breaks, tabs, Cyrillic, values a spreadsheet would take for a formula, codes
//! with leading zeros; coordinates anywhere on the globe or none; territories and price lists
//! or none) are exported from the back office as CSV and as XLSX and sent back through the
//! import API: the dry run and the real run count every row unchanged, the stored rows are the
//! same, and no phone is sent anything (the change log does not move). On both backends.

use fieldsync_server::store::keyusers::{LoginOutcome, Role};
use fieldsync_server::store::now_ms;
use fieldsync_server::store::world::{OutletPatch, PatchMode, ProductPatch};
use fieldsync_tests::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

const PASSWORD: &str = "secret123";

/// Text a form or an import may store: trimmed, with characters CSV and spreadsheets treat
/// specially, and prefixes that read as formulas.
fn text(required: bool) -> impl Strategy<Value = String> {
    let body = "[a-zA-Z0-9а-яА-ЯіїєґІЇЄҐ ,;\"'.\t\n]{0,10}";
    (
        prop::sample::select(vec!["", "", "", "=", "+", "-", "@", "'", "'=", "''-", "-1"]),
        body,
    )
        .prop_map(|(prefix, body)| format!("{prefix}{body}").trim().to_string())
        .prop_filter("a required value", move |s| !required || !s.is_empty())
}

#[derive(Debug, Clone)]
struct Outlet {
    name: String,
    address: String,
    contact: String,
    phone: String,
    channel: String,
    territory: Option<usize>,
    price_list: Option<usize>,
    location: Option<(i32, i32)>,
}

#[derive(Debug, Clone)]
struct Product {
    name: String,
    unit: String,
    category: String,
    must_stock: bool,
}

fn outlet() -> impl Strategy<Value = Outlet> {
    (
        (
            text(true),
            text(false),
            text(false),
            text(false),
            text(false),
        ),
        prop::option::of(0usize..2),
        prop::option::of(0usize..2),
        prop::option::of((
            -900_000_000i32..=900_000_000,
            -1_800_000_000i32..=1_800_000_000,
        )),
    )
        .prop_map(
            |((name, address, contact, phone, channel), territory, price_list, location)| Outlet {
                name,
                address,
                contact,
                phone,
                channel,
                territory,
                price_list,
                location,
            },
        )
}

fn product() -> impl Strategy<Value = Product> {
    (text(true), text(true), text(false), any::<bool>()).prop_map(
        |(name, unit, category, must_stock)| Product {
            name,
            unit,
            category,
            must_stock,
        },
    )
}

/// The distributor's outlets whose code starts with `prefix`, as stored, in code order.
async fn outlets_stored(server: &TestServer, prefix: &str) -> Vec<String> {
    let rows: Vec<(
        String,
        String,
        String,
        String,
        String,
        String,
        Option<i64>,
        Option<i64>,
        Option<i64>,
        Option<i64>,
    )> = sqlx::query_as(
        "SELECT code, name, address, contact_name, phone, channel, territory_id, price_list_id, \
             lat_e7, lon_e7 FROM outlets WHERE code LIKE $1 ORDER BY code",
    )
    .bind(format!("{prefix}%"))
    .fetch_all(server.store.test_pool())
    .await
    .unwrap();
    rows.into_iter().map(|r| format!("{r:?}")).collect()
}

async fn products_stored(server: &TestServer, prefix: &str) -> Vec<String> {
    let rows: Vec<(String, String, String, String, i64, i64)> = sqlx::query_as(
        "SELECT code, name, unit, category, CAST(must_stock AS BIGINT), \
         (SELECT COUNT(*) FROM product_must_stock_channels c WHERE c.product_id = products.id) \
         FROM products WHERE code LIKE $1 ORDER BY code",
    )
    .bind(format!("{prefix}%"))
    .fetch_all(server.store.test_pool())
    .await
    .unwrap();
    rows.into_iter().map(|r| format!("{r:?}")).collect()
}

/// The newest change a phone could be sent.
async fn last_change(server: &TestServer) -> i64 {
    sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM change_log")
        .fetch_one(server.store.test_pool())
        .await
        .unwrap()
}

/// The back office's export of `list` for import, filtered to codes containing `prefix`.
async fn export(
    server: &TestServer,
    cookie: &str,
    list: &str,
    format: &str,
    prefix: &str,
) -> Vec<u8> {
    let resp = reqwest::Client::new()
        .get(format!(
            "{}/{list}/export?format={format}&layout=import&f.code={prefix}",
            server.url
        ))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200, "export of {list} as {format}");
    resp.bytes().await.unwrap().to_vec()
}

/// The file sent back as a dry run and for real: every row unchanged both times.
async fn import_back(api: &ApiClient, kind: &str, format: &str, file: Vec<u8>, rows: usize) {
    for query in ["&dry_run=1", ""] {
        let (status, job) = api
            .import(&format!("{kind}?format={format}{query}"), file.clone())
            .await;
        assert_eq!(status, 200, "{kind} {format}{query}: {job}");
        let message = job["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(&format!("0 created, 0 changed, {rows} unchanged")),
            "{kind} as {format}{query} moved something: {job}"
        );
        assert_eq!(job["rows_refused"].as_i64(), Some(0), "{job}");
    }
}

async fn round_trip(db: &TestDb) {
    let (server, _agents) = acme_server(db, 2).await;
    let d = server.store.distributor_id("ACME").await.unwrap();
    let api = ApiClient::new(&server, "ACME", "round-trip").await;
    server
        .store
        .create_key_user(
            "rt",
            PASSWORD,
            Role::KeyUser,
            &["ACME".to_string()],
            now_ms(),
        )
        .await
        .unwrap();
    let LoginOutcome::Ok { token } = server.store.login("rt", PASSWORD, now_ms()).await.unwrap()
    else {
        panic!("the key user cannot log in");
    };
    let cookie = format!("fs_session={token}");
    let territories: Vec<i64> = sqlx::query_scalar(
        "SELECT id FROM org_units WHERE distributor_id = $1 AND kind = 'territory' ORDER BY id",
    )
    .bind(d)
    .fetch_all(server.store.test_pool())
    .await
    .unwrap();
    let price_lists: Vec<i64> =
        sqlx::query_scalar("SELECT id FROM price_lists WHERE distributor_id = $1 ORDER BY id")
            .bind(d)
            .fetch_all(server.store.test_pool())
            .await
            .unwrap();
    assert!(territories.len() >= 2 && !price_lists.is_empty());

    let mut runner = TestRunner::new(Config {
        cases: 6,
        failure_persistence: None,
        ..Config::default()
    });
    let case = std::sync::atomic::AtomicUsize::new(0);
    let rt = tokio::runtime::Handle::current();
    let strategy = (
        prop::collection::vec(outlet(), 1..12),
        prop::collection::vec(product(), 1..12),
    );
    let result = runner.run(&strategy, |(outlets, products)| {
        let n = case.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tokio::task::block_in_place(|| {
            rt.block_on(async {
                // Codes of this case only (the leading zeros must survive a spreadsheet).
                let prefix = format!("RT{n:03}-");
                let patches: Vec<OutletPatch> = outlets
                    .iter()
                    .enumerate()
                    .map(|(i, o)| OutletPatch {
                        code: format!("{prefix}{i:04}"),
                        name: o.name.clone(),
                        address: Some(o.address.clone()),
                        contact_name: Some(o.contact.clone()),
                        phone: Some(o.phone.clone()),
                        channel: Some(o.channel.clone()),
                        territory_id: Some(o.territory.map(|t| territories[t])),
                        location: Some(o.location),
                        price_list_id: Some(
                            o.price_list.map(|p| price_lists[p % price_lists.len()]),
                        ),
                    })
                    .collect();
                server
                    .store
                    .upsert_outlets(d, &patches, PatchMode::Apply)
                    .await
                    .unwrap();
                let patches: Vec<ProductPatch> = products
                    .iter()
                    .enumerate()
                    .map(|(i, p)| ProductPatch {
                        code: format!("{prefix}{i:04}"),
                        name: p.name.clone(),
                        unit: Some(p.unit.clone()),
                        category: Some(p.category.clone()),
                        brand: None,
                        must_stock: Some(p.must_stock),
                        must_stock_channels: Some(
                            ["modern", "traditional"][..i % 3]
                                .iter()
                                .map(|c| c.to_string())
                                .collect(),
                        ),
                    })
                    .collect();
                server
                    .store
                    .upsert_products(d, &patches, PatchMode::Apply)
                    .await
                    .unwrap();

                let outlets_before = outlets_stored(&server, &prefix).await;
                let products_before = products_stored(&server, &prefix).await;
                let seq = last_change(&server).await;
                for format in ["csv", "xlsx"] {
                    let file = export(&server, &cookie, "outlets", format, &prefix).await;
                    import_back(&api, "outlets", format, file, outlets.len()).await;
                    let file = export(&server, &cookie, "products", format, &prefix).await;
                    import_back(&api, "products", format, file, products.len()).await;
                }
                assert_eq!(outlets_stored(&server, &prefix).await, outlets_before);
                assert_eq!(products_stored(&server, &prefix).await, products_before);
                assert_eq!(
                    last_change(&server).await,
                    seq,
                    "a phone would be sent changes"
                );
            })
        });
        Ok(())
    });
    result.unwrap();
    server.stop().await;
}

on_both_backends!(
    exported_for_import_and_imported_back_changes_nothing,
    round_trip
);
