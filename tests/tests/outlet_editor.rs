//! Outlets kept one at a time in the back office, in a real headless Chromium on both
//! backends: a key user creates an outlet in a territory and its agent's real engine gets it
//! with the next sync; editing an outlet into another territory takes it off the old
//! territory's phone and onto the new one's, and keeps what the form does not show (the
//! reference location); a taken code or an empty name is refused and changes nothing; another
//! distributor's key user cannot open the form.

use fieldsync_agent::{Engine, HttpTransport};
use fieldsync_server::seed::SeededAgent;
use fieldsync_server::store::keyusers::Role;
use fieldsync_server::store::now_ms;
use fieldsync_tests::browser::{Browser, ensure_leaflet};
use fieldsync_tests::*;

const PASSWORD: &str = "secret123";

/// An agent's phone: the real engine, activated and synced.
struct Phone {
    engine: Engine,
    transport: HttpTransport,
    _dir: tempfile::TempDir,
}

impl Phone {
    async fn activated(url: &str, agent: &SeededAgent) -> Phone {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(dir.path().join("agent.db")).unwrap();
        let transport = HttpTransport::new(url);
        engine
            .activate(&transport, url, &agent.login, &agent.pin, "phone", "1.0")
            .await
            .unwrap();
        let phone = Phone {
            engine,
            transport,
            _dir: dir,
        };
        phone.sync().await;
        phone
    }

    async fn sync(&self) {
        self.engine.sync(&self.transport).await.unwrap();
    }

    /// The outlet's name as the phone has it, if it has it.
    fn outlet_name(&self, id: i64) -> Option<String> {
        self.engine.outlet(id).unwrap().map(|o| o.name)
    }
}

/// Picks `value` in the select `#name`.
async fn pick(b: &Browser, name: &str, value: i64) {
    b.run(&format!(
        "document.getElementById('{name}').value = '{value}'"
    ))
    .await;
}

async fn outlet_editor(db: &TestDb) {
    ensure_leaflet();
    let server = TestServer::start(db).await;
    let url = &server.url;
    let agents = seed(&server.store, &small_world("ACME", 2)).await;
    seed(&server.store, &small_world("OTHER", 1)).await;
    let s = &server.store;
    for (login, d) in [("acme-kp", "ACME"), ("other-kp", "OTHER")] {
        s.create_key_user(login, PASSWORD, Role::KeyUser, &[d.into()], now_ms())
            .await
            .unwrap();
    }
    let d = s.distributor_id("ACME").await.unwrap();
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
    let b = Browser::start().await;
    b.log_in(url, "acme-kp", PASSWORD).await;
    b.goto(&format!("{url}/outlets")).await;
    b.click("#new-outlet").await;
    b.fill("#code", "NEW-7").await;
    b.fill("#name", "Corner shop").await;
    b.fill("#address", "Khreshchatyk 1").await;
    pick(&b, "territory_id", t1).await;
    b.click("#save-outlet").await;
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
        b.click("#save-outlet").await;
        let message = b.text("#error-message").await;
        assert!(message.contains(reason), "{message}");
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
    pick(&b, "territory_id", t2).await;
    b.click("#save-outlet").await;
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
    b.close().await;

    // Another distributor's key user cannot open the form, even by URL.
    let other = Browser::start().await;
    other.log_in(url, "other-kp", PASSWORD).await;
    other.goto(&format!("{url}/outlets/{moved}/edit")).await;
    assert!(other.find_opt("#outlet-form").await.is_none());
    assert!(other.find_opt("#error-message").await.is_some());
    other.close().await;
    server.stop().await;
}
on_both_backends!(
    a_key_user_creates_and_moves_outlets_and_the_phones_of_both_territories_follow,
    outlet_editor
);
