//! The agent app's network worker and screens against a real server: what the agent is told
//! about wrong, used and revoked PINs, no network, a refused item, and an unbound phone.
use std::sync::Arc;
use std::time::Duration;

use dioxus::prelude::*;
use fieldsync_agent::Engine;
use fieldsync_app::location::SimulatedLocation;
use fieldsync_app::net::Failure;
use fieldsync_app::ui::ShellProps;
use fieldsync_app::{AppCtx, Screen, Shell};
use fieldsync_protocol::v1::{self, ErrorCode, change::Entity};
use fieldsync_tests::*;

fn app(dir: &tempfile::TempDir, name: &str) -> AppCtx {
    let engine = Engine::open(dir.path().join(name)).unwrap();
    fieldsync_app::start(engine, Arc::new(SimulatedLocation::off()), "", None)
}

/// Activates the app's phone through its network worker, as the agent does on the screen.
async fn activate(phone: &AppCtx, server: &str, login: &str, pin: &str) -> Result<(), Failure> {
    phone
        .net
        .activate(server.to_string(), login.to_string(), pin.to_string())
        .await
}

/// The protocol's code of a refused PIN.
fn pin_code(f: &Failure) -> Option<ErrorCode> {
    match f {
        Failure::Pin { code, .. } => Some(*code),
        _ => None,
    }
}

fn render(ctx: &AppCtx, screen: Screen) -> String {
    let mut dom = VirtualDom::new_with_props(Shell, ShellProps { initial: screen })
        .with_root_context(ctx.clone());
    dom.rebuild_in_place();
    dioxus_ssr::render(&dom)
}

/// Asks the worker for a sync and waits until it has finished.
async fn sync(ctx: &AppCtx) -> Result<fieldsync_agent::SyncReport, Failure> {
    let mut rx = ctx.net.subscribe();
    let before = rx.borrow_and_update().finished;
    ctx.net.sync_now();
    tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            rx.changed().await.unwrap();
            let s = rx.borrow_and_update().clone();
            if s.finished > before {
                return s.last.unwrap().result;
            }
        }
    })
    .await
    .expect("sync finished")
}

on_both_backends!(activation_failures_are_explained, activation_failures);
async fn activation_failures(db: &TestDb) {
    let (server, agents) = acme_server(db, 2).await;
    let dir = tempfile::tempdir().unwrap();
    let t = fieldsync_app::i18n::T(fieldsync_app::i18n::Lang::En);

    // No server at this address: "no connection", nothing stored.
    let phone = app(&dir, "a.db");
    let dead = "http://127.0.0.1:9".to_string();
    let f = activate(&phone, &dead, &agents[0].login, &agents[0].pin)
        .await
        .unwrap_err();
    assert!(matches!(f, Failure::Offline(_)), "{f:?}");
    assert!(!phone.engine.is_activated().unwrap());

    // Wrong PIN.
    let f = activate(&phone, &server.url, &agents[0].login, "00000000")
        .await
        .unwrap_err();
    assert_eq!(
        f,
        Failure::Pin {
            code: ErrorCode::PinWrong,
            retry_after_ms: 0
        }
    );
    assert!(
        t.pin_error(ErrorCode::PinWrong, 0)
            .contains("Wrong login or PIN")
    );

    // The right PIN binds the phone; a second phone with the same PIN is told it was used.
    activate(&phone, &server.url, &agents[0].login, &agents[0].pin)
        .await
        .unwrap();
    assert!(phone.engine.is_activated().unwrap());
    let other = app(&dir, "b.db");
    let f = activate(&other, &server.url, &agents[0].login, &agents[0].pin)
        .await
        .unwrap_err();
    assert_eq!(pin_code(&f), Some(ErrorCode::PinUsed), "{f:?}");

    // A PIN replaced by a newer one is "revoked".
    let old = agents[1].pin.clone();
    server.store.generate_pin(&agents[1].login).await.unwrap();
    let f = activate(&other, &server.url, &agents[1].login, &old)
        .await
        .unwrap_err();
    assert_eq!(pin_code(&f), Some(ErrorCode::PinRevoked), "{f:?}");
    assert!(
        t.pin_error(ErrorCode::PinRevoked, 0)
            .contains("replaced by a newer one")
    );
    server.stop().await;
}

on_both_backends!(
    refused_items_and_unbinding_reach_the_screens,
    refused_and_unbound
);
async fn refused_and_unbound(db: &TestDb) {
    let (server, agents) = acme_server(db, 1).await;
    let dir = tempfile::tempdir().unwrap();
    let phone = app(&dir, "a.db");
    activate(&phone, &server.url, &agents[0].login, &agents[0].pin)
        .await
        .unwrap();
    let report = sync(&phone).await.unwrap();
    assert!(report.pulled > 0);

    // An outlet this phone holds but the server does not let it see (moved to another
    // territory before the phone heard of it): the visit is refused, the rest goes through.
    phone
        .engine
        .store_page(&v1::PullResponse {
            changes: vec![v1::Change {
                entity: Some(Entity::Outlet(v1::Outlet {
                    id: 987_654_321,
                    code: "GONE".into(),
                    name: "Moved away".into(),
                    price_list_id: 1,
                    ..Default::default()
                })),
            }],
            // An empty cursor: the next sync pulls everything again (a full re-sync).
            next_cursor: Vec::new(),
            ..Default::default()
        })
        .unwrap();
    let v = phone.engine.start_visit(987_654_321, None, vec![]).unwrap();
    phone.engine.end_visit(v, vec![]).unwrap();
    let today = fieldsync_tests::today();
    let stop = phone.engine.route(&today).unwrap()[0].clone();
    phone
        .engine
        .start_visit(stop.outlet.id, Some(stop.route_id), vec![])
        .unwrap();
    let report = sync(&phone).await.unwrap();
    assert!(report.refused >= 1, "{report:?}");
    assert_eq!(
        count(&server.store, "visits").await,
        1,
        "the good visit is stored"
    );

    let html = render(&phone, Screen::Sync);
    assert!(html.contains("id=\"refused-items\""), "{html}");
    assert!(html.contains("The outlet or product is not yours to use any more."));
    assert!(
        html.contains("1 refused") || html.contains("2 refused"),
        "banner: {html}"
    );
    assert!(html.contains("Synced at"), "{html}");

    // The key user generates a new PIN: the next sync says to activate again.
    server.store.generate_pin(&agents[0].login).await.unwrap();
    let f = sync(&phone).await.unwrap_err();
    assert_eq!(f, Failure::NeedsActivation);
    let html = render(&phone, Screen::Sync);
    assert!(
        html.contains("This phone is no longer bound to you."),
        "{html}"
    );
    assert!(html.contains("id=\"reactivate\""));
    server.stop().await;
}

on_both_backends!(
    a_deactivated_distributor_is_explained_and_the_work_waits_on_the_phone,
    distributor_inactive
);
async fn distributor_inactive(db: &TestDb) {
    let (server, agents) = acme_server(db, 1).await;
    let dir = tempfile::tempdir().unwrap();
    let phone = app(&dir, "a.db");
    activate(&phone, &server.url, &agents[0].login, &agents[0].pin)
        .await
        .unwrap();
    sync(&phone).await.unwrap();
    let stop = phone.engine.route(&fieldsync_tests::today()).unwrap()[0].clone();
    let v = phone
        .engine
        .start_visit(stop.outlet.id, Some(stop.route_id), vec![])
        .unwrap();
    phone.engine.end_visit(v, vec![]).unwrap();

    // The head office deactivates the distributor (as its page does: a date, nothing deleted).
    let deactivate = |at: Option<i64>| {
        sqlx::query("UPDATE distributors SET deactivated_at_ms = $1 WHERE code = 'ACME'")
            .bind(at)
            .execute(server.store.test_pool())
    };
    deactivate(Some(fieldsync_server::store::now_ms()))
        .await
        .unwrap();
    assert_eq!(
        sync(&phone).await.unwrap_err(),
        Failure::DistributorInactive
    );
    let html = render(&phone, Screen::Sync);
    assert!(
        html.contains("Your distributor&#39;s account is not active on the server")
            || html.contains("Your distributor's account is not active on the server"),
        "{html}"
    );
    assert_eq!(
        phone.engine.outbox_status().unwrap().pending,
        2,
        "the visit waits"
    );
    assert_eq!(count(&server.store, "visits").await, 0);

    // Reactivated: the waiting work goes through.
    deactivate(None).await.unwrap();
    sync(&phone).await.unwrap();
    assert_eq!(phone.engine.outbox_status().unwrap().pending, 0);
    assert_eq!(count(&server.store, "visits").await, 1);
    server.stop().await;
}
