//! The real agent engine against a real server: a working day, unbinding, restore, faults.

use std::time::Duration;

use fieldsync_agent::{Engine, HttpTransport, OrderDraft};
use fieldsync_protocol::v1::{self, answer::Value};
use fieldsync_sim::faults::FaultSpec;
use fieldsync_sim::field::{FieldOptions, Phase, run_field};
use fieldsync_tests::*;
use proptest::prelude::*;

/// A real engine in a fresh temp directory (`agent.db`, kept while the directory lives),
/// activated as `agent` on a phone named `model` (app version 1.0), and its HTTP transport.
async fn activated(
    server: &TestServer,
    agent: &fieldsync_server::seed::SeededAgent,
    model: &str,
) -> (tempfile::TempDir, Engine, HttpTransport) {
    let dir = tempfile::tempdir().unwrap();
    let (e, t) = activated_engine(
        &server.url,
        agent,
        &dir.path().join("agent.db"),
        model,
        "1.0",
    )
    .await
    .unwrap();
    (dir, e, t)
}

/// [`activated`], then synced, the first stop of today's route visited and synced again;
/// returns today's route too.
async fn first_visit_synced(
    server: &TestServer,
    agent: &fieldsync_server::seed::SeededAgent,
    model: &str,
) -> (
    tempfile::TempDir,
    Engine,
    HttpTransport,
    Vec<fieldsync_agent::RouteStopView>,
) {
    let (dir, e, t) = activated(server, agent, model).await;
    e.sync(&t).await.unwrap();
    let route = e.route(&fieldsync_tests::today()).unwrap();
    do_visit(&e, &route[0]);
    e.sync(&t).await.unwrap();
    (dir, e, t, route)
}

fn fix(o: &fieldsync_agent::OutletView) -> v1::GpsFix {
    let (lat, lon) = o.location.unwrap_or((504_501_000, 305_234_000));
    fix_at(lat + 100, lon, 60)
}

/// Does one full visit: order, questionnaire, distribution check. Returns (visit, order).
fn do_visit(e: &Engine, stop: &fieldsync_agent::RouteStopView) -> (uuid::Uuid, uuid::Uuid) {
    let visit = e
        .start_visit(stop.outlet.id, Some(stop.route_id), vec![fix(&stop.outlet)])
        .unwrap();
    let products = e
        .search_products("", stop.outlet.price_list_id, 50)
        .unwrap();
    let order = e
        .place_order(OrderDraft {
            visit_id: Some(visit),
            outlet_id: stop.outlet.id,
            warehouse_id: e.warehouses().unwrap()[0].id,
            lines: products.iter().take(4).map(|p| (p.id, 3000)).collect(),
            ..Default::default()
        })
        .unwrap();
    let q = e
        .questionnaires()
        .unwrap()
        .into_iter()
        .find(|q| q.name == "Owner contact")
        .unwrap();
    e.answer_questionnaire(
        visit,
        q.id,
        vec![v1::Answer {
            question_id: q.questions[0].id,
            value: Some(Value::YesNo(true)),
        }],
    )
    .unwrap();
    let must: Vec<(i64, bool)> = e
        .must_stock()
        .unwrap()
        .iter()
        .map(|p| (p.id, p.id % 2 == 0))
        .collect();
    e.check_distribution(visit, must).unwrap();
    e.end_visit(visit, vec![fix(&stop.outlet)]).unwrap();
    (visit, order)
}

async fn agents_day(db: &TestDb) {
    let (server, agents) = acme_server(db, 1).await;
    let (_dir, e, t) = activated(&server, &agents[0], "test phone").await;
    let first = e.sync(&t).await.unwrap();
    assert_eq!(first.mode, v1::SyncMode::Initial as i32);
    let route = e.route(&fieldsync_tests::today()).unwrap();
    assert!(!route.is_empty(), "today's route arrived");
    let (visit, order) = do_visit(&e, &route[0]);
    assert_eq!(
        e.route(&fieldsync_tests::today()).unwrap()[0].state,
        fieldsync_agent::VisitState::Done
    );
    let report = e.sync(&t).await.unwrap();
    assert_eq!(report.mode, v1::SyncMode::Incremental as i32);
    let summary = report.summary.expect("session summary");
    assert_eq!(
        (summary.visits, summary.orders, summary.mutations_applied),
        (1, 1, 5)
    );

    let (band, outlet): (String, i64) =
        sqlx::query_as("SELECT location_band, outlet_id FROM visits WHERE id = $1")
            .bind(visit.to_string())
            .fetch_one(server.store.test_pool())
            .await
            .unwrap();
    assert_eq!((band.as_str(), outlet), ("within", route[0].outlet.id));
    let lines = count_where(
        &server.store,
        "SELECT COUNT(*) FROM order_lines WHERE order_id = $1",
        &[&order.to_string()],
    )
    .await;
    assert_eq!(lines, 4);
    let counts = e.counts().unwrap();
    assert_eq!(counts.created, counts.acknowledged);
    assert_eq!(e.outbox_status().unwrap().pending, 0);
    assert_eq!(
        count(&server.store, "distribution_checks").await as u64,
        counts.created.distribution_checks
    );
    server.stop().await;
}
on_both_backends!(
    an_agents_day_reaches_the_server_through_the_engine,
    agents_day
);

async fn unbound_phone(db: &TestDb) {
    let (server, agents) = acme_server(db, 1).await;
    let (_dir, e, t, route) = first_visit_synced(&server, &agents[0], "old phone").await;
    // Offline work, then the key user generates a new PIN for this mobile user.
    do_visit(&e, &route[1]);
    let pin = server.store.generate_pin(&agents[0].login).await.unwrap();
    let err = e.sync(&t).await.unwrap_err();
    assert!(err.needs_activation() && !err.is_retryable(), "{err}");
    assert_eq!(err.code(), Some(v1::ErrorCode::DeviceRevoked));
    // Wrong and used PINs are refused precisely; the new PIN binds the phone again.
    let wrong = e
        .activate(&t, &server.url, &agents[0].login, "12345678", "p", "1")
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), Some(v1::ErrorCode::PinWrong));
    let used = e
        .activate(&t, &server.url, &agents[0].login, &agents[0].pin, "p", "1")
        .await
        .unwrap_err();
    assert_eq!(used.code(), Some(v1::ErrorCode::PinUsed));
    e.activate(&t, &server.url, &agents[0].login, &pin, "same phone", "1.0")
        .await
        .unwrap();
    e.sync(&t).await.unwrap();
    assert_eq!(e.outbox_status().unwrap().pending, 0);
    assert_eq!(
        count(&server.store, "visits").await,
        2,
        "the offline visit was not lost"
    );
    assert_eq!(count(&server.store, "orders").await, 2);
    server.stop().await;
}
on_both_backends!(
    an_unbound_phone_reactivates_and_loses_nothing,
    unbound_phone
);

async fn restored_server(db: &TestDb) {
    let store = fieldsync_server::Store::connect(&db.url).await.unwrap();
    let agents = seed(&store, &small_world("ACME", 1)).await;
    let server = TestServer::start_with(store.clone()).await;
    let (_dir, e, t, route) = first_visit_synced(&server, &agents[0], "phone").await;
    do_visit(&e, &route[1]);
    e.sync(&t).await.unwrap();
    assert_eq!(count(&store, "visits").await, 2);
    server.stop().await;
    // "Restore a backup" taken after the first visit: the second visit is gone from the server.
    // Its field-truth evidence (`visit_signals`) is left behind on purpose: the re-push must
    // rewrite it, not stumble on it.
    let second_visit_seq = 6;
    for sql in [
        "DELETE FROM order_lines WHERE order_id IN (SELECT id FROM orders WHERE visit_id IN (SELECT id FROM visits WHERE started_received_ms = (SELECT MAX(started_received_ms) FROM visits)))",
        "DELETE FROM orders WHERE visit_id IN (SELECT id FROM visits WHERE started_received_ms = (SELECT MAX(started_received_ms) FROM visits))",
        "DELETE FROM questionnaire_answers WHERE visit_id IN (SELECT id FROM visits WHERE started_received_ms = (SELECT MAX(started_received_ms) FROM visits))",
        "DELETE FROM distribution_checks WHERE visit_id IN (SELECT id FROM visits WHERE started_received_ms = (SELECT MAX(started_received_ms) FROM visits))",
        "DELETE FROM gps_fixes WHERE visit_id IN (SELECT id FROM visits WHERE started_received_ms = (SELECT MAX(started_received_ms) FROM visits))",
        "DELETE FROM sync_session_items WHERE visit_id IN (SELECT id FROM visits WHERE started_received_ms = (SELECT MAX(started_received_ms) FROM visits))",
        "DELETE FROM visits WHERE started_received_ms = (SELECT MAX(started_received_ms) FROM visits)",
    ] {
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(store.test_pool())
            .await
            .unwrap();
    }
    sqlx::query("UPDATE devices SET last_seq = $1")
        .bind(second_visit_seq - 1)
        .execute(store.test_pool())
        .await
        .unwrap();
    let mut store = store;
    store.rotate_epoch().await.unwrap();
    let server = TestServer::start_with(store.clone()).await;
    let t = HttpTransport::new(&server.url);
    let report = e.sync(&t).await.unwrap();
    assert_eq!(
        report.mode,
        v1::SyncMode::FullResync as i32,
        "a new epoch means a full re-sync"
    );
    assert_eq!(
        count(&store, "visits").await,
        2,
        "the phone sent again what the restore lost"
    );
    assert_eq!(count(&store, "orders").await, 2);
    server.stop().await;
}
on_both_backends!(a_restored_server_gets_back_what_it_lost, restored_server);

/// Runs the field simulator with random faults against a fresh server; nothing may be lost
/// or doubled.
async fn faults_case(backend: Backend, spec: FaultSpec, seed_no: u64) -> Result<(), TestCaseError> {
    let Some(db) = TestDb::new(backend).await else {
        return Ok(());
    };
    let server = TestServer::start(&db).await;
    let agents = seed(&server.store, &small_world("FLT", 2)).await;
    let dir = tempfile::tempdir().unwrap();
    let summary = run_field(FieldOptions {
        server: server.url.clone(),
        agents: agents
            .iter()
            .map(|a| (a.login.clone(), a.pin.clone()))
            .collect(),
        days: 1,
        concurrency: 2,
        faults: spec,
        faults_text: format!("{spec:?}"),
        deadline: Duration::from_secs(300),
        seed: seed_no,
        workdir: dir.path().to_path_buf(),
        visits_per_day: 0,
        phase: Phase::Full,
    })
    .await
    .unwrap();
    server.stop().await;
    db.cleanup().await;
    let j = &summary.json;
    prop_assert!(
        j["errors"].as_array().unwrap().is_empty(),
        "errors: {}",
        j["errors"]
    );
    prop_assert_eq!(summary.lost, 0, "lost: {}", j["lost"]);
    prop_assert_eq!(summary.duplicated, 0, "doubled: {}", j["duplicated"]);
    prop_assert!(j["server"]["visits"].as_u64().unwrap() > 0);
    prop_assert_eq!(&j["created"], &j["server"]);
    Ok(())
}

/// A questionnaire reaches the phones it targets and is offered at a visit only for the
/// outlet's channel and within its validity: the phone decides that offline.
async fn questionnaire_targeting(db: &TestDb) {
    use fieldsync_server::store::questionnaires::QuestionnaireForm;
    let (server, agents) = acme_server(db, 1).await;
    let store = &server.store;
    let d = store.distributor_id("ACME").await.unwrap();
    let (_dir, e, t) = activated(&server, &agents[0], "targeting phone").await;
    e.sync(&t).await.unwrap();
    let stop = e.route(&fieldsync_tests::today()).unwrap().remove(0);
    let (channel,): (String,) = sqlx::query_as("SELECT channel FROM outlets WHERE id = $1")
        .bind(stop.outlet.id)
        .fetch_one(store.test_pool())
        .await
        .unwrap();
    assert!(!channel.is_empty(), "seeded outlets have a channel");
    let other = if channel == "horeca" {
        "modern"
    } else {
        "horeca"
    };
    let yesterday = fieldsync_protocol::dates::format_day_number(
        fieldsync_protocol::dates::day_of_ms(fieldsync_server::store::now_ms()) - 1,
    );
    let elsewhere = store
        .create_org_unit(d, None, "territory", "ACME-TX", "Another territory")
        .await
        .unwrap();
    for (name, channels, valid_to, units) in [
        (
            "For this channel",
            vec![channel.clone()],
            String::new(),
            vec![],
        ),
        (
            "For another channel",
            vec![other.to_string()],
            String::new(),
            vec![],
        ),
        ("Ended yesterday", vec![], yesterday, vec![]),
        (
            "For another territory",
            vec![],
            String::new(),
            vec![elsewhere],
        ),
    ] {
        let form = QuestionnaireForm {
            name: name.into(),
            valid_to,
            channels,
            org_unit_ids: units,
            ..Default::default()
        };
        store.create_questionnaire_head(d, &form).await.unwrap();
    }
    e.sync(&t).await.unwrap();
    let on_phone: Vec<String> = e
        .questionnaires()
        .unwrap()
        .into_iter()
        .map(|q| q.name)
        .collect();
    assert!(
        on_phone.contains(&"For another channel".to_string()),
        "{on_phone:?}"
    );
    assert!(
        !on_phone.contains(&"For another territory".to_string()),
        "a questionnaire for another territory never reaches this phone: {on_phone:?}"
    );
    let visit = e
        .start_visit(stop.outlet.id, Some(stop.route_id), vec![fix(&stop.outlet)])
        .unwrap();
    let offered: Vec<String> = e
        .questionnaires_for_visit(visit)
        .unwrap()
        .into_iter()
        .map(|q| q.name)
        .collect();
    assert!(
        offered.contains(&"For this channel".to_string()),
        "{offered:?}"
    );
    assert!(
        !offered.contains(&"For another channel".to_string()),
        "{offered:?}"
    );
    assert!(
        !offered.contains(&"Ended yesterday".to_string()),
        "{offered:?}"
    );
    // The seeded questionnaires target everyone.
    assert!(offered.len() >= 3, "{offered:?}");
    server.stop().await;
}
on_both_backends!(
    a_visit_offers_the_questionnaires_for_its_outlets_channel_and_day,
    questionnaire_targeting
);

/// Stock imported by the distributor's system reaches the phones of the positions bound to
/// the warehouse with their next pull, replaces what they held, and an order beyond it is
/// still placed and accepted.
async fn stock_reaches_phones(db: &TestDb) {
    let (server, agents) = acme_server(db, 1).await;
    let api = ApiClient::new(&server, "ACME", "stock feed").await;
    let (_dir, e, t) = activated(&server, &agents[0], "stock phone").await;
    e.sync(&t).await.unwrap();
    let warehouse = e.warehouses().unwrap().remove(0);
    assert_eq!(warehouse.stock_updated_at_ms, 0, "no stock reported yet");
    let products = e.search_products("", 0, 3).unwrap();
    let (a, b) = (&products[0], &products[1]);
    let csv = format!(
        "warehouse_code,product_code,quantity\n{w},{a},12.5\n{w},{b},3\n",
        w = warehouse.code,
        a = a.code,
        b = b.code
    );
    let (status, job) = api.import("stock", csv.clone()).await;
    assert_eq!(status, 200, "{job}");
    e.sync(&t).await.unwrap();
    let held = e
        .stock_on_hand(warehouse.id, &[a.id, b.id, products[2].id])
        .unwrap();
    assert_eq!(
        (held.get(&a.id), held.get(&b.id)),
        (Some(&12_500), Some(&3_000))
    );
    assert!(
        !held.contains_key(&products[2].id),
        "no stock reported for it"
    );
    let reported = e
        .warehouses()
        .unwrap()
        .into_iter()
        .find(|w| w.id == warehouse.id);
    assert!(reported.unwrap().stock_updated_at_ms > 0);

    // A second report changes one quantity; the phone follows.
    let csv = format!(
        "warehouse_code,product_code,quantity\n{w},{b},1\n",
        w = warehouse.code,
        b = b.code
    );
    let (status, job) = api.import("stock", csv.clone()).await;
    assert_eq!(status, 200, "{job}");
    let report = e.sync(&t).await.unwrap();
    assert!(report.pulled >= 1, "{report:?}");
    let held = e.stock_on_hand(warehouse.id, &[a.id, b.id]).unwrap();
    assert_eq!(
        (held.get(&a.id), held.get(&b.id)),
        (Some(&12_500), Some(&1_000))
    );

    // A warehouse renamed by the warehouses import reaches the phone, its stock with it.
    let csv = format!("code,name\n{},Renamed by import\n", warehouse.code);
    let (status, job) = api.import("warehouses", csv).await;
    assert_eq!(status, 200, "{job}");
    e.sync(&t).await.unwrap();
    let renamed = e
        .warehouses()
        .unwrap()
        .into_iter()
        .find(|w| w.id == warehouse.id);
    assert_eq!(renamed.unwrap().name, "Renamed by import");
    assert_eq!(
        e.stock_on_hand(warehouse.id, &[b.id]).unwrap().get(&b.id),
        Some(&1_000)
    );

    // Ordering 2 of the 1 on hand warns on the phone and is accepted by the server.
    let stop = e.route(&fieldsync_tests::today()).unwrap().remove(0);
    let visit = e
        .start_visit(stop.outlet.id, Some(stop.route_id), vec![fix(&stop.outlet)])
        .unwrap();
    let draft = OrderDraft {
        visit_id: Some(visit),
        outlet_id: stop.outlet.id,
        warehouse_id: warehouse.id,
        lines: vec![(b.id, 2_000)],
        ..Default::default()
    };
    assert_eq!(e.beyond_stock(&draft).unwrap(), vec![(b.id, 2_000, 1_000)]);
    e.place_order(draft).unwrap();
    e.end_visit(visit, vec![]).unwrap();
    let report = e.sync(&t).await.unwrap();
    assert_eq!(report.refused, 0, "{report:?}");
    assert_eq!(count(&server.store, "orders").await, 1);
    server.stop().await;
}
on_both_backends!(
    imported_stock_reaches_the_phones_and_ordering_beyond_it_warns,
    stock_reaches_phones
);

/// The evening peak's two halves: a day worked wholly offline leaves every mutation on the
/// phones and nothing on the server; the evening, run later from the same engine files,
/// brings all of it in once, through two servers on one database, with faults.
async fn offline_day_then_evening(db: &TestDb) {
    let server = TestServer::start(db).await;
    let second = TestServer::start(db).await;
    let agents: Vec<(String, String)> = seed(&server.store, &small_world("EVE", 3))
        .await
        .iter()
        .map(|a| (a.login.clone(), a.pin.clone()))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let opts = |phase, faults: &str| FieldOptions {
        server: format!("{},{}", server.url, second.url),
        agents: agents.clone(),
        days: 1,
        concurrency: 3,
        faults: FaultSpec::parse(faults).unwrap(),
        faults_text: faults.into(),
        deadline: Duration::from_secs(300),
        seed: 5,
        workdir: dir.path().to_path_buf(),
        visits_per_day: 12,
        phase,
    };
    let day = run_field(opts(Phase::Day, "")).await.unwrap();
    let j = &day.json;
    assert!(
        j["errors"].as_array().unwrap().is_empty(),
        "{}",
        j["errors"]
    );
    // Twelve visits per agent, though the seeded route of a day is shorter.
    assert_eq!(j["created"]["visits"], 36, "{j}");
    assert_eq!(j["acknowledged"]["visits"], 0, "{j}");
    assert_eq!(count(&server.store, "visits").await, 0);

    let evening = run_field(opts(Phase::Evening, "drop=0.2,dup=0.2"))
        .await
        .unwrap();
    let j = &evening.json;
    assert!(
        j["errors"].as_array().unwrap().is_empty(),
        "{}",
        j["errors"]
    );
    assert_eq!((evening.lost, evening.duplicated), (0, 0), "{j}");
    assert_eq!(j["server"]["visits"], 36, "{j}");
    assert_eq!(
        j["created"], day.json["created"],
        "the evening made nothing new"
    );
    assert_eq!(count(&server.store, "visits").await, 36);
    assert!(j["evening"]["mutations"].as_u64().unwrap() >= 36 * 2, "{j}");
    assert!(j["pushes"].as_u64().unwrap() > 0, "{j}");
    second.stop().await;
    server.stop().await;
}
on_both_backends!(
    a_day_worked_offline_reaches_the_server_whole_in_the_evening,
    offline_day_then_evening
);

fn fault_specs() -> impl Strategy<Value = (FaultSpec, u64)> {
    (
        0.0..0.4f64,
        0.0..0.4f64,
        0i64..(96 * 3_600_000),
        0.0..0.4f64,
        0.0..0.15f64,
        any::<u64>(),
    )
        .prop_map(|(drop, dup, skew_ms, offline, restart, seed)| {
            (
                FaultSpec {
                    drop,
                    dup,
                    skew_ms,
                    offline,
                    restart,
                },
                seed,
            )
        })
}

fn property(backend: Backend) {
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 4,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runner
        .run(&fault_specs(), |(spec, seed)| {
            rt.block_on(faults_case(backend, spec, seed))
        })
        .unwrap();
}

#[test]
fn random_faults_never_lose_or_double_a_record_sqlite() {
    property(Backend::Sqlite);
}

#[test]
fn random_faults_never_lose_or_double_a_record_postgres() {
    if postgres_url().is_none() {
        eprintln!("FIELDSYNC_TEST_POSTGRES_URL not set: PostgreSQL case skipped");
        return;
    }
    property(Backend::Postgres);
}
