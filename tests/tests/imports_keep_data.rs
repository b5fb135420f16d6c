//! Imports change only what they are given: a column absent from the file never changes
//! what is stored, an empty cell of a present optional column clears it, a row with an empty
//! required cell is refused with its line number, a dry run writes nothing, and an outlet
//! moved to another territory leaves its old territory's phones.

use fieldsync_protocol::v1;
use fieldsync_server::store::now_ms;
use fieldsync_tests::*;
use serde_json::Value;

/// What is stored of an outlet: name, address, phone, territory, location, price list.
type OutletRow = (
    String,
    String,
    String,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
);

async fn stored(server: &TestServer, code: &str) -> Option<OutletRow> {
    sqlx::query_as(
        "SELECT name, address, phone, territory_id, lat_e7, lon_e7, price_list_id FROM outlets WHERE code = $1",
    )
    .bind(code)
    .fetch_optional(server.store.test_pool())
    .await
    .unwrap()
}

/// An outlet file through the API.
async fn import(api: &ApiClient, query: &str, csv: &str) -> (u16, Value) {
    import_kind(api, "outlets", query, csv).await
}

/// A CSV file of `kind` through the API: the answer's status and job.
async fn import_kind(api: &ApiClient, kind: &str, query: &str, csv: &str) -> (u16, Value) {
    api.import(&format!("{kind}?format=csv{query}"), csv.to_string())
        .await
}

/// [`acme_server`] with an API key of ACME's.
async fn acme_with_api(
    db: &TestDb,
    agents: usize,
) -> (
    TestServer,
    Vec<fieldsync_server::seed::SeededAgent>,
    ApiClient,
) {
    let (server, seeded) = acme_server(db, agents).await;
    let api = ApiClient::new(&server, "ACME", "test").await;
    (server, seeded, api)
}

/// An agent's activated phone after its first pull: the client, its session, what it pulled
/// and the cursor to pull on from.
async fn pulled_phone(
    server: &TestServer,
    agent: &fieldsync_server::seed::SeededAgent,
) -> (RawClient, uuid::Uuid, Vec<v1::Change>, Vec<u8>) {
    let (phone, _) = RawClient::activated(&server.url, agent).await;
    let session = uuid::Uuid::new_v4();
    let (changes, cursor) = phone.pull_from(session, Vec::new()).await;
    (phone, session, changes, cursor)
}

async fn partial_imports(db: &TestDb) {
    let (server, agents, api) = acme_with_api(db, 2).await;

    // The phone of the first agent knows its territory's outlets.
    let (phone, session, first, cursor) = pulled_phone(&server, &agents[0]).await;
    let outlet = first
        .iter()
        .find_map(|c| match &c.entity {
            Some(v1::change::Entity::Outlet(o)) => Some(o.clone()),
            _ => None,
        })
        .expect("the phone has outlets");
    let code = outlet.code.clone();
    let before = stored(&server, &code).await.unwrap();
    assert!(
        before.3.is_some() && before.4.is_some() && before.6.is_some(),
        "{before:?}"
    );

    // Just code and name: only the name changes; price list, territory, location, address stay.
    let (status, job) = import(&api, "", &format!("code,name\n{code},Renamed shop\n")).await;
    assert_eq!(status, 200, "{job}");
    assert!(
        job["message"].as_str().unwrap().contains("1 changed"),
        "{job}"
    );
    let after = stored(&server, &code).await.unwrap();
    assert_eq!(after.0, "Renamed shop");
    assert_eq!(
        (&after.1, &after.2, after.3, after.4, after.5, after.6),
        (&before.1, &before.2, before.3, before.4, before.5, before.6)
    );

    // The same file again changes nothing.
    let (_, job) = import(&api, "", &format!("code,name\n{code},Renamed shop\n")).await;
    assert!(
        job["message"]
            .as_str()
            .unwrap()
            .starts_with("0 created, 0 changed, 1 unchanged"),
        "{job}"
    );

    // An empty cell of a present optional column clears it; the rest stays.
    let (_, job) = import(
        &api,
        "",
        &format!("code,name,address\n{code},Renamed shop,\n"),
    )
    .await;
    assert_eq!(job["status"], "done", "{job}");
    let cleared = stored(&server, &code).await.unwrap();
    assert_eq!(cleared.1, "");
    assert_eq!(
        (cleared.3, cleared.4, cleared.6),
        (before.3, before.4, before.6)
    );

    // An empty required cell refuses its row with the line number; the valid row is applied,
    // and a new outlet gets the distributor's first price list.
    let (status, job) = import(&api, "", "code,name\n,Nameless\nNEW-1,Brand new shop\n").await;
    assert_eq!(status, 200, "{job}");
    assert_eq!(job["rows_refused"], 1);
    assert_eq!(job["errors"][0][0], 2, "{job}");
    let (first_list,): (i64,) =
        sqlx::query_as("SELECT MIN(id) FROM price_lists WHERE distributor_id = $1")
            .bind(api.distributor)
            .fetch_one(server.store.test_pool())
            .await
            .unwrap();
    assert_eq!(stored(&server, "NEW-1").await.unwrap().6, Some(first_list));

    // A dry run reports before and after and writes nothing.
    let (status, job) = import(
        &api,
        "&dry_run=1",
        &format!("code,name,phone\n{code},Dry name,+380 44 000\n"),
    )
    .await;
    assert_eq!(status, 200, "{job}");
    assert_eq!(job["status"], "checked", "{job}");
    let message = job["message"].as_str().unwrap();
    assert!(
        message.contains("1 changed") && message.contains("\"Renamed shop\" → \"Dry name\""),
        "{message}"
    );
    assert_eq!(stored(&server, &code).await.unwrap(), cleared);

    // Moved to the second agent's territory: the first agent's phone gets a tombstone.
    let (status, job) = import(
        &api,
        "",
        &format!("code,name,territory_code\n{code},Renamed shop,ACME-TR0002\n"),
    )
    .await;
    assert_eq!(status, 200, "{job}");
    let (changes, _) = phone.pull_from(session, cursor).await;
    assert!(
        changes.iter().any(
            |c| matches!(&c.entity, Some(v1::change::Entity::Deleted(t)) if t.id == outlet.id)
        ),
        "the old territory's phone was not told: {changes:?}"
    );
    let (other, _) = RawClient::activated(&server.url, &agents[1]).await;
    let theirs = other.pull_all(uuid::Uuid::new_v4()).await;
    assert!(
        theirs
            .iter()
            .any(|c| matches!(&c.entity, Some(v1::change::Entity::Outlet(o)) if o.id == outlet.id))
    );
    server.stop().await;
}
on_both_backends!(
    an_import_changes_only_the_columns_it_has_and_a_dry_run_writes_nothing,
    partial_imports
);

async fn product_imports(db: &TestDb) {
    let (server, _, api) = acme_with_api(db, 1).await;
    let product = |code: String| {
        let pool = server.store.test_pool().clone();
        async move {
            let row: (String, String, String, i64) = sqlx::query_as(
                "SELECT name, unit, category, must_stock FROM products WHERE code = $1",
            )
            .bind(code)
            .fetch_one(&pool)
            .await
            .unwrap();
            row
        }
    };
    let (code,): (String,) = sqlx::query_as(
        "SELECT code FROM products WHERE distributor_id = $1 AND must_stock = 1 AND category <> '' ORDER BY id LIMIT 1",
    )
    .bind(api.distributor)
    .fetch_one(server.store.test_pool())
    .await
    .unwrap();
    let before = product(code.clone()).await;
    let post = |query: &'static str, csv: String| {
        let api = &api;
        async move { import_kind(api, "products", query, &csv).await.1 }
    };
    // A dry run changes nothing; the real run changes only the name.
    let job = post("&dry_run=1", format!("code,name\n{code},Renamed tea\n")).await;
    assert_eq!(job["status"], "checked", "{job}");
    assert_eq!(product(code.clone()).await, before);
    let job = post("", format!("code,name\n{code},Renamed tea\n")).await;
    assert!(
        job["message"].as_str().unwrap().contains("1 changed"),
        "{job}"
    );
    let after = product(code.clone()).await;
    assert_eq!(after.0, "Renamed tea");
    assert_eq!(
        (&after.1, &after.2, after.3),
        (&before.1, &before.2, before.3)
    );
    // Present but empty optional cells: the unit falls back to pcs, the category clears.
    post(
        "",
        format!("code,name,unit,category\n{code},Renamed tea,,\n"),
    )
    .await;
    let cleared = product(code.clone()).await;
    assert_eq!(
        (cleared.1.as_str(), cleared.2.as_str(), cleared.3),
        ("pcs", "", before.3)
    );
    // Must-stock channels are bounded: 50 fit, 51 (or one of 65 characters) refuse the row
    // by line and write nothing for it.
    let channels = |n: usize| {
        (0..n)
            .map(|i| format!("ch{i}"))
            .collect::<Vec<_>>()
            .join(";")
    };
    let stored_channels = async || -> i64 {
        let (n,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM product_must_stock_channels c JOIN products p ON p.id = c.product_id \
             WHERE p.distributor_id = $1 AND p.code = $2",
        )
        .bind(api.distributor)
        .bind(&code)
        .fetch_one(server.store.test_pool())
        .await
        .unwrap();
        n
    };
    let file = |cell: String| {
        format!("code,name,must_stock,must_stock_channels\n{code},Renamed tea,yes,{cell}\n")
    };
    let job = post("", file(channels(50))).await;
    assert_eq!(job["rows_refused"].as_i64(), Some(0), "{job}");
    assert_eq!(stored_channels().await, 50);
    for cell in [channels(51), "x".repeat(65)] {
        let job = post("", file(cell)).await;
        assert_eq!(job["rows_refused"].as_i64(), Some(1), "{job}");
        assert_eq!(job["errors"][0][0], 2, "{job}");
        assert!(
            job["errors"][0][1]
                .as_str()
                .unwrap()
                .contains("at most 50 channels"),
            "{job}"
        );
        assert_eq!(
            stored_channels().await,
            50,
            "the refused row changed nothing"
        );
    }
    server.stop().await;
}
on_both_backends!(
    a_product_import_changes_only_the_columns_it_has,
    product_imports
);

async fn price_imports(db: &TestDb) {
    let (server, agents, api) = acme_with_api(db, 1).await;
    let (phone, session, _, cursor) = pulled_phone(&server, &agents[0]).await;
    let (list, list_id, code, product_id): (String, i64, String, i64) = sqlx::query_as(
        "SELECT pl.name, pl.id, p.code, p.id FROM prices pr JOIN price_lists pl ON pl.id = pr.price_list_id \
         JOIN products p ON p.id = pr.product_id WHERE pl.distributor_id = $1 ORDER BY pr.id LIMIT 1",
    )
    .bind(api.distributor)
    .fetch_one(server.store.test_pool())
    .await
    .unwrap();
    let csv = format!(
        "price_list,product_code,price\n{list},{code},\"12,50\"\n{list},NO-SUCH,1\n{list},{code},cheap\n"
    );
    let (_, job) = import_kind(&api, "prices", "", &csv).await;
    assert_eq!(job["status"], "partial", "{job}");
    assert_eq!(
        (job["rows_applied"].as_i64(), job["rows_refused"].as_i64()),
        (Some(1), Some(2))
    );
    assert_eq!(job["errors"][0][0], 3, "{job}");
    assert_eq!(job["errors"][1][0], 4, "{job}");
    let (price,): (i64,) = sqlx::query_as(
        "SELECT price_minor FROM prices WHERE price_list_id = $1 AND product_id = $2",
    )
    .bind(list_id)
    .bind(product_id)
    .fetch_one(server.store.test_pool())
    .await
    .unwrap();
    assert_eq!(price, 1250);
    // The phone gets the new price with its next pull.
    let (changes, cursor) = phone.pull_from(session, cursor).await;
    assert!(changes.iter().any(|c| matches!(&c.entity,
        Some(v1::change::Entity::Price(p)) if p.product_id == product_id && p.price_list_id == list_id && p.price_minor == 1250)),
        "{changes:?}");

    // Dated prices: one from the future waits for its day beside the one in force; one from
    // a past day replaces the undated price, which goes (the phone gets its tombstone); a
    // day that is not a date is refused by line.
    let (old_id,): (i64,) = sqlx::query_as(
        "SELECT id FROM prices WHERE price_list_id = $1 AND product_id = $2 AND valid_from = ''",
    )
    .bind(list_id)
    .bind(product_id)
    .fetch_one(server.store.test_pool())
    .await
    .unwrap();
    let csv = format!(
        "price_list,product_code,price,valid_from\n{list},{code},13.00,2099-01-01\n\
         {list},{code},11.00,2020-01-01\n{list},{code},1,31.12.2026\n"
    );
    let (_, job) = import_kind(&api, "prices", "", &csv).await;
    assert_eq!(
        (job["rows_applied"].as_i64(), job["rows_refused"].as_i64()),
        (Some(2), Some(1)),
        "{job}"
    );
    assert_eq!(job["errors"][0][0], 4, "{job}");
    assert!(
        job["message"].as_str().unwrap().contains("1 removed"),
        "the superseded undated price: {job}"
    );
    let dated: Vec<(String, i64)> = sqlx::query_as(
        "SELECT valid_from, price_minor FROM prices WHERE price_list_id = $1 AND product_id = $2 \
         ORDER BY valid_from",
    )
    .bind(list_id)
    .bind(product_id)
    .fetch_all(server.store.test_pool())
    .await
    .unwrap();
    assert_eq!(
        dated,
        vec![
            ("2020-01-01".to_string(), 1100),
            ("2099-01-01".to_string(), 1300)
        ]
    );
    let (changes, _) = phone.pull_from(session, cursor).await;
    let sent = |from: &str, minor: i64| {
        changes.iter().any(|c| matches!(&c.entity,
            Some(v1::change::Entity::Price(p)) if p.product_id == product_id && p.valid_from == from && p.price_minor == minor))
    };
    assert!(
        sent("2020-01-01", 1100) && sent("2099-01-01", 1300),
        "{changes:?}"
    );
    assert!(changes.iter().any(|c| matches!(&c.entity,
        Some(v1::change::Entity::Deleted(t)) if t.id == old_id && t.kind == v1::EntityKind::Price as i32)),
        "the superseded price's tombstone: {changes:?}");
    // The same file again changes nothing.
    let (_, job) = import_kind(&api, "prices", "", &csv).await;
    assert!(
        job["message"]
            .as_str()
            .unwrap()
            .starts_with("0 created, 0 changed, 2 unchanged"),
        "{job}"
    );
    server.stop().await;
}
on_both_backends!(
    a_price_import_reaches_the_phones_and_refuses_bad_rows_by_line,
    price_imports
);

/// Two servers (or two requests) importing the same new outlets at once: both jobs finish and
/// every outlet exists once; a concurrent edit of a column the files do not name survives.
async fn concurrent_imports(db: &TestDb) {
    let (server, _) = acme_server(db, 1).await;
    let d = server.store.distributor_id("ACME").await.unwrap();
    let mut csv = String::from("code,name\n");
    for i in 0..300 {
        csv.push_str(&format!("RACE-{i:04},Shop {i}\n"));
    }
    let run = |csv: String| {
        let store = server.store.clone();
        async move {
            store
                .start_import(
                    d,
                    "outlets",
                    "api",
                    "race.csv",
                    "csv",
                    csv.into(),
                    now_ms(),
                    false,
                )
                .await
                .unwrap()
                .finished()
                .await
                .unwrap()
        }
    };
    let (a, b) = tokio::join!(run(csv.clone()), run(csv));
    assert_eq!(
        (a.status.as_str(), b.status.as_str()),
        ("done", "done"),
        "{a:?} {b:?}"
    );
    let n = count_where(
        &server.store,
        "SELECT COUNT(*) FROM outlets WHERE code LIKE 'RACE-%'",
        &[],
    )
    .await;
    assert_eq!(n, 300);
    server.stop().await;
}
on_both_backends!(
    concurrent_imports_of_the_same_outlets_both_finish_and_create_each_once,
    concurrent_imports
);
