//! `serve --demo` shows the product at once: a past week of work of the demo agents, written
//! through the real ingest, fills the visits list (every distance band), the orders (every
//! state), the sync results (with a refused order) and the map.

use fieldsync_server::seed::{WorldSpec, seed_world};
use fieldsync_server::store::keyusers::Role;
use fieldsync_server::store::now_ms;
use fieldsync_tests::browser::Browser;
use fieldsync_tests::*;

async fn demo(db: &TestDb) {
    let server = TestServer::start(db).await;
    let spec = WorldSpec {
        days_back: 7,
        ..WorldSpec::demo()
    };
    let seeded = seed_world(&server.store, &spec).await.unwrap();
    let fresh = fieldsync_server::demo::load_past_week(&server.store, &seeded, 7)
        .await
        .unwrap();
    // The PINs printed for the newcomer are new ones: the seeded ones were used.
    assert_eq!(fresh.len(), seeded.len());
    assert!(fresh.iter().zip(&seeded).all(|(f, s)| f.pin != s.pin));

    let pool = server.store.test_pool();
    let bands: Vec<(String,)> =
        sqlx::query_as("SELECT DISTINCT location_band FROM visits ORDER BY 1")
            .fetch_all(pool)
            .await
            .unwrap();
    let bands: Vec<&str> = bands.iter().map(|b| b.0.as_str()).collect();
    assert_eq!(bands, ["beyond", "far_beyond", "near", "no_fix", "within"]);
    let states: Vec<(String,)> = sqlx::query_as("SELECT DISTINCT state FROM orders ORDER BY 1")
        .fetch_all(pool)
        .await
        .unwrap();
    let states: Vec<&str> = states.iter().map(|s| s.0.as_str()).collect();
    assert_eq!(
        states,
        [
            "accepted",
            "cancelled",
            "confirmed",
            "delivered",
            "placed",
            "rejected",
            "shipped"
        ]
    );
    assert!(count(&server.store, "refused_mutations").await >= 1);
    assert!(count(&server.store, "questionnaire_answers").await > 0);
    assert!(count(&server.store, "distribution_checks").await > 0);
    // The distributor's stock report, some of it out of stock.
    let (products, empty): (i64, i64) = sqlx::query_as(
        "SELECT COUNT(*), CAST(SUM(CASE WHEN quantity_milli = 0 THEN 1 ELSE 0 END) AS BIGINT) FROM stock",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert!(
        products > 0 && empty > 0,
        "{products} stock rows, {empty} empty"
    );

    // A key user sees it on every page at once.
    server
        .store
        .create_key_user("demo", "demo-pass-1", Role::HeadOffice, &[], now_ms())
        .await
        .unwrap();
    let b = Browser::start().await;
    b.log_in(&server.url, "demo", "demo-pass-1").await;
    for page in ["/visits", "/orders", "/sync-sessions", "/refused"] {
        b.goto(&format!("{}{page}", server.url)).await;
        let rows = b.count("#list tbody tr").await;
        let empty = b.count("#list tbody td.empty").await;
        assert!(
            rows > 0 && empty == 0,
            "{page} is empty: {}",
            b.text("body").await
        );
    }
    b.goto(&format!("{}/refused", server.url)).await;
    assert!(b.text("#list").await.contains("ORDER_SUMS_MISMATCH"));
    b.close().await;
    server.stop().await;
}
on_both_backends!(the_demo_holds_a_past_week_of_work_on_every_page, demo);
