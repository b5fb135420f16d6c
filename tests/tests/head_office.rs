//! Distributors (sync points) and key-user accounts kept in the back office, on both
//! backends:
//! - the head office creates a distributor and a key user for it in a real headless Chromium;
//!   that key user sees only its distributor; the head office renames it and deactivates it:
//!   its activated phone (the real agent engine) is refused at its next sync with
//!   `DISTRIBUTOR_INACTIVE`, its key user sees none of its data, it leaves the pickers; once
//!   reactivated the same phone syncs again, nothing lost;
//! - a key user cannot open `/distributors` (403), cannot create a head-office account nor
//!   grant a sync point it lacks (refused, nothing written), cannot touch another
//!   distributor's account, and can create a read-only user for its own sync point;
//! - a key user disabled in the back office is refused at once (its open session too), and a
//!   reset password replaces the old one.

use fieldsync_agent::{Engine, HttpTransport};
use fieldsync_protocol::v1::ErrorCode;
use fieldsync_server::Store;
use fieldsync_server::seed::SeededAgent;
use fieldsync_server::store::editors::OutletForm;
use fieldsync_server::store::keyusers::{LoginOutcome, Role};
use fieldsync_server::store::now_ms;
use fieldsync_tests::browser::{Browser, ensure_leaflet};
use fieldsync_tests::*;

const PASSWORD: &str = "secret123";

async fn logged_in(url: &str, who: &str, password: &str) -> Browser {
    let b = Browser::start().await;
    b.log_in(url, who, password).await;
    assert!(
        b.text("#me").await.starts_with(who),
        "{}",
        b.text("body").await
    );
    b
}

/// Opens a folded create block on the current page.
async fn open_block(b: &Browser, id: &str) {
    b.run(&format!("document.getElementById('{id}').open = true"))
        .await;
}

/// Sets the value of the input `#id` (number inputs included).
async fn set(b: &Browser, id: &str, value: &str) {
    b.run(&format!(
        "document.getElementById('{id}').value = {}",
        serde_json::Value::from(value)
    ))
    .await;
}

/// Whether the page is an error page that says `text`.
async fn refused(b: &Browser, text: &str) -> bool {
    let shown = b.text("#error-message").await;
    assert!(shown.contains(text), "{shown}");
    true
}

/// A stored distributor's (name, currency, band_near_m, band_mid_m, band_far_m).
async fn stored_distributor(store: &Store, code: &str) -> Option<(String, String, i64, i64, i64)> {
    sqlx::query_as(
        "SELECT name, currency, band_near_m, band_mid_m, band_far_m FROM distributors WHERE code = $1",
    )
    .bind(code)
    .fetch_optional(store.test_pool())
    .await
    .unwrap()
}

/// A key user's stored role and the codes of its sync points.
async fn stored_account(store: &Store, login: &str) -> Option<(String, Vec<String>)> {
    let pool = store.test_pool();
    let role: Option<(String,)> = sqlx::query_as("SELECT role FROM key_users WHERE login = $1")
        .bind(login)
        .fetch_optional(pool)
        .await
        .unwrap();
    let codes: Vec<(String,)> = sqlx::query_as(
        "SELECT d.code FROM key_user_sync_points g JOIN key_users u ON u.id = g.key_user_id
         JOIN distributors d ON d.id = g.distributor_id WHERE u.login = $1 ORDER BY d.code",
    )
    .bind(login)
    .fetch_all(pool)
    .await
    .unwrap();
    role.map(|(r,)| (r, codes.into_iter().map(|(c,)| c).collect()))
}

/// A territory with one position and its mobile user for the distributor `d`, and one
/// outlet in that territory; returns the agent (with a fresh PIN) and the outlet's id.
async fn field_team(store: &Store, d: i64, code: &str) -> (SeededAgent, i64) {
    let territory = store
        .create_org_unit(d, None, "territory", &format!("{code}-TR1"), "Territory 1")
        .await
        .unwrap();
    let position = store
        .create_org_unit(
            d,
            Some(territory),
            "position",
            &format!("{code}-P1"),
            "Agent 1",
        )
        .await
        .unwrap();
    let login = format!("{}.agent1", code.to_lowercase());
    store.create_mobile_user(d, position, &login).await.unwrap();
    let pin = store.generate_pin(&login).await.unwrap();
    let outlet = OutletForm {
        code: format!("{code}-O1"),
        name: "Corner shop".into(),
        territory_id: Some(territory),
        ..OutletForm::default()
    };
    let outlet = store.save_outlet(d, None, &outlet).await.unwrap();
    (SeededAgent { login, pin }, outlet)
}

/// An agent's phone: the real engine, activated.
struct Phone {
    engine: Engine,
    transport: HttpTransport,
    _dir: tempfile::TempDir,
}

impl Phone {
    async fn activated(url: &str, agent: &SeededAgent) -> Phone {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.db");
        let (engine, transport) = activated_engine(url, agent, &path, "phone", "1.0")
            .await
            .unwrap();
        Phone {
            engine,
            transport,
            _dir: dir,
        }
    }

    /// Syncs; the server's error code when it refuses.
    async fn sync(&self) -> Result<(), Option<ErrorCode>> {
        self.engine
            .sync(&self.transport)
            .await
            .map(drop)
            .map_err(|e| e.code())
    }
}

async fn distributor_lifecycle(db: &TestDb) {
    ensure_leaflet();
    let (server, _) = acme_server(db, 1).await;
    let (url, s) = (&server.url, &server.store);
    s.create_key_user("ho", PASSWORD, Role::HeadOffice, &[], now_ms())
        .await
        .unwrap();
    let (acme_outlet,): (String,) =
        sqlx::query_as("SELECT code FROM outlets ORDER BY code LIMIT 1")
            .fetch_one(s.test_pool())
            .await
            .unwrap();
    let ho = logged_in(url, "ho", PASSWORD).await;

    // A distributor with bands out of order is refused and not stored; then it is created.
    let new_distributor = async |code: &str, near: &str| {
        ho.goto(&format!("{url}/distributors")).await;
        open_block(&ho, "create-distributor").await;
        ho.fill("#distributor-code", code).await;
        ho.fill("#distributor-name", "NewCo trading").await;
        set(&ho, "currency", "EUR").await;
        set(&ho, "band_near_m", near).await;
        ho.click("#save-new-distributor").await;
    };
    new_distributor("NEWCO", "400").await;
    assert!(refused(&ho, "near < middle < far").await);
    assert!(stored_distributor(s, "NEWCO").await.is_none());
    new_distributor("ACME", "40").await;
    assert!(refused(&ho, "with this code already").await);
    new_distributor("NEWCO", "40").await;
    assert_eq!(
        stored_distributor(s, "NEWCO").await,
        Some(("NewCo trading".into(), "EUR".into(), 40, 150, 1000))
    );
    let d = s.distributor_id("NEWCO").await.unwrap();
    assert!(
        ho.current_url()
            .await
            .ends_with(&format!("/distributors/{d}"))
    );
    assert_eq!(ho.text("#distributor-state").await, "active");

    // A key user for it, with a password: a weak one is refused first.
    let new_key_user = async |password: &str| {
        ho.goto(&format!("{url}/key-users")).await;
        open_block(&ho, "create-key-user").await;
        ho.fill("#new-login", "newco-kp").await;
        ho.fill("#new-password", password).await;
        set(&ho, "role", "key_user").await;
        ho.run("document.getElementById('sync-point-NEWCO').checked = true")
            .await;
        ho.click("#save-new-key-user").await;
    };
    new_key_user("short").await;
    assert!(refused(&ho, "at least 8 characters").await);
    assert!(stored_account(s, "newco-kp").await.is_none());
    new_key_user("newco-pass-1").await;
    assert_eq!(
        stored_account(s, "newco-kp").await,
        Some(("key_user".into(), vec!["NEWCO".into()]))
    );
    assert_eq!(ho.text("#account-sync-points").await, "NEWCO");

    // Its field team, and a phone that syncs.
    let (agent, outlet) = field_team(s, d, "NEWCO").await;
    let phone = Phone::activated(url, &agent).await;
    phone.sync().await.unwrap();
    assert!(phone.engine.outlet(outlet).unwrap().is_some());

    // The key user sees its distributor's outlet and nothing of ACME's.
    let kp = logged_in(url, "newco-kp", "newco-pass-1").await;
    kp.goto(&format!("{url}/outlets")).await;
    let page = kp.text("body").await;
    assert!(page.contains("NEWCO-O1"), "{page}");
    assert!(!page.contains(&acme_outlet), "{page}");
    kp.goto(&format!("{url}/outlets/{outlet}")).await;
    assert!(kp.find_opt("#error-message").await.is_none());

    // Renamed: the name changes, the code and the bands stay.
    ho.goto(&format!("{url}/distributors/{d}")).await;
    ho.fill("#distributor-name", "NewCo trading renamed").await;
    ho.click("#save-distributor").await;
    assert_eq!(
        stored_distributor(s, "NEWCO").await,
        Some(("NewCo trading renamed".into(), "EUR".into(), 40, 150, 1000))
    );

    // Deactivated: the phone is refused at its next sync, the key user sees nothing of it,
    // it leaves the pickers; nothing is deleted.
    ho.click("#deactivate-distributor").await;
    assert!(
        ho.text("#distributor-state")
            .await
            .starts_with("deactivated since")
    );
    assert_eq!(
        phone.sync().await,
        Err(Some(ErrorCode::DistributorInactive))
    );
    let again = RawClient::new(url).activate(&agent.login, &agent.pin).await;
    assert_eq!(
        (again.status, again.error().code()),
        (403, ErrorCode::DistributorInactive)
    );
    kp.goto(&format!("{url}/outlets/{outlet}")).await;
    assert!(kp.find_opt("#error-message").await.is_some());
    kp.goto(&format!("{url}/outlets")).await;
    assert!(!kp.text("body").await.contains("NEWCO-O1"));
    ho.goto(&format!("{url}/key-users")).await;
    assert!(ho.find_opt("#sync-point-NEWCO").await.is_none());
    assert!(ho.find_opt("#sync-point-ACME").await.is_some());
    ho.goto(&format!("{url}/price-lists")).await;
    let acme = s.distributor_id("ACME").await.unwrap().to_string();
    let offered = ho
        .run("return Array.from(document.querySelectorAll('#create-price-list [name=distributor_id]')).map(e => e.value)")
        .await;
    assert_eq!(offered, serde_json::json!([acme]), "only ACME is offered");
    assert_eq!(
        count_where(
            s,
            "SELECT COUNT(*) FROM outlets WHERE code = $1",
            &["NEWCO-O1"]
        )
        .await,
        1
    );

    // Reactivated: the same phone syncs again, its PIN-bound credential intact.
    ho.goto(&format!("{url}/distributors/{d}")).await;
    ho.click("#activate-distributor").await;
    assert_eq!(ho.text("#distributor-state").await, "active");
    phone.sync().await.unwrap();
    kp.goto(&format!("{url}/outlets/{outlet}")).await;
    assert!(kp.find_opt("#error-message").await.is_none());
    kp.close().await;
    ho.close().await;
    server.stop().await;
}
on_both_backends!(
    the_head_office_creates_a_distributor_and_its_key_user_and_deactivating_it_stops_its_phone_and_hides_its_data,
    distributor_lifecycle
);

/// A logged-in back-office session over plain HTTP: the cookie and the form token.
struct Session {
    http: reqwest::Client,
    url: String,
    cookie: String,
    csrf: String,
}

impl Session {
    async fn open(server: &TestServer, login: &str, password: &str) -> Session {
        let token = match server.store.login(login, password, now_ms()).await.unwrap() {
            LoginOutcome::Ok { token } => token,
            other => panic!("{login} does not log in: {other:?}"),
        };
        let user = server.store.web_session(&token, now_ms()).await.unwrap();
        Session {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            url: server.url.clone(),
            cookie: format!("fs_session={token}"),
            csrf: user.unwrap().csrf_token,
        }
    }

    async fn get(&self, path: &str) -> (u16, String) {
        let r = self
            .http
            .get(format!("{}{path}", self.url))
            .header("cookie", &self.cookie)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    async fn post(&self, path: &str, fields: &[(&str, &str)]) -> (u16, String) {
        let mut form = vec![("csrf", self.csrf.as_str())];
        form.extend_from_slice(fields);
        let r = self
            .http
            .post(format!("{}{path}", self.url))
            .header("cookie", &self.cookie)
            .form(&form)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }
}

async fn key_user_rules(db: &TestDb) {
    let (server, _) = acme_server(db, 1).await;
    seed(&server.store, &small_world("OTHER", 1)).await;
    let s = &server.store;
    for (login, role, d) in [
        ("acme-kp", Role::KeyUser, "ACME"),
        ("other-kp", Role::KeyUser, "OTHER"),
        ("acme-viewer", Role::ReadOnly, "ACME"),
    ] {
        s.create_key_user(login, PASSWORD, role, &[d.into()], now_ms())
            .await
            .unwrap();
    }
    let acme = s.distributor_id("ACME").await.unwrap().to_string();
    let other = s.distributor_id("OTHER").await.unwrap().to_string();
    let kp = Session::open(&server, "acme-kp", PASSWORD).await;
    let accounts = || count(s, "key_users");
    let before = accounts().await;

    // No distributors page for a key user, nor its forms.
    assert_eq!(kp.get("/distributors").await.0, 403);
    let form = [
        ("code", "SNEAKY"),
        ("name", "x"),
        ("currency", "UAH"),
        ("timezone", "UTC"),
        ("band_near_m", "1"),
        ("band_mid_m", "2"),
        ("band_far_m", "3"),
    ];
    assert_eq!(kp.post("/distributors", &form).await.0, 403);
    assert!(stored_distributor(s, "SNEAKY").await.is_none());

    // No head-office account, no sync point it lacks, no read-only account without sync
    // points (that one would see everyone): refused, nothing written.
    let create = async |login: &str, role: &str, points: &[&str]| {
        let mut fields = vec![
            ("login", login),
            ("password", "fresh-pass-1"),
            ("role", role),
        ];
        fields.extend(points.iter().map(|p| ("sync_point", *p)));
        kp.post("/key-users", &fields).await
    };
    let (status, page) = create("boss", "head_office", &[&acme]).await;
    assert_eq!(status, 400);
    assert!(page.contains("may not give this role"), "{page}");
    let (status, page) = create("spy", "read_only", &[&acme, &other]).await;
    assert_eq!(status, 400);
    assert!(
        page.contains("sync points that you have yourself"),
        "{page}"
    );
    let (status, _) = create("everyone", "read_only", &[]).await;
    assert_eq!(status, 400);
    assert_eq!(accounts().await, before);

    // A read-only user for its own sync point.
    let (status, _) = create("acme-reader", "read_only", &[&acme]).await;
    assert_eq!(status, 303);
    assert_eq!(
        stored_account(s, "acme-reader").await,
        Some(("read_only".into(), vec!["ACME".into()]))
    );
    let reader = Session::open(&server, "acme-reader", "fresh-pass-1").await;
    assert_eq!(reader.get("/visits").await.0, 200);

    // Its list shows the accounts of its sync points only; another distributor's account is
    // not found, and stays as it was.
    let (_, list) = kp.get("/key-users").await;
    assert!(list.contains("data-login=\"acme-reader\""), "{list}");
    assert!(list.contains("data-login=\"acme-viewer\""));
    assert!(!list.contains("data-login=\"other-kp\""));
    let (other_id,): (i64,) = sqlx::query_as("SELECT id FROM key_users WHERE login = 'other-kp'")
        .fetch_one(s.test_pool())
        .await
        .unwrap();
    let other_card = format!("/key-users/{other_id}");
    assert_eq!(kp.get(&other_card).await.0, 404);
    let reset = kp
        .post(
            &format!("{other_card}/password"),
            &[("password", "taken-over-1")],
        )
        .await;
    assert_eq!(reset.0, 404);
    assert!(matches!(
        s.login("other-kp", PASSWORD, now_ms()).await.unwrap(),
        LoginOutcome::Ok { .. }
    ));

    // Changing its own user to head office is refused; the role stays.
    let (reader_id,): (i64,) =
        sqlx::query_as("SELECT id FROM key_users WHERE login = 'acme-reader'")
            .fetch_one(s.test_pool())
            .await
            .unwrap();
    let save = format!("/key-users/{reader_id}/save");
    let promoted = kp
        .post(&save, &[("role", "head_office"), ("sync_point", &acme)])
        .await;
    assert_eq!(promoted.0, 400);
    let widened = kp
        .post(&save, &[("role", "key_user"), ("sync_point", &other)])
        .await;
    assert_eq!(widened.0, 400);
    assert_eq!(
        stored_account(s, "acme-reader").await,
        Some(("read_only".into(), vec!["ACME".into()]))
    );
    let made_key_user = kp
        .post(&save, &[("role", "key_user"), ("sync_point", &acme)])
        .await;
    assert_eq!(made_key_user.0, 303);
    assert_eq!(
        stored_account(s, "acme-reader").await,
        Some(("key_user".into(), vec!["ACME".into()]))
    );

    // A read-only user reaches no account page and changes nothing.
    let viewer = Session::open(&server, "acme-viewer", PASSWORD).await;
    assert_eq!(viewer.get("/key-users").await.0, 403);
    assert_eq!(
        viewer
            .post(&format!("/key-users/{reader_id}/disable"), &[])
            .await
            .0,
        403
    );
    assert_eq!(accounts().await, before + 1);
    server.stop().await;
}
on_both_backends!(
    a_key_user_manages_accounts_only_within_its_own_sync_points,
    key_user_rules
);

async fn disable_and_reset(db: &TestDb) {
    ensure_leaflet();
    let (server, _) = acme_server(db, 1).await;
    let s = &server.store;
    s.create_key_user("ho", PASSWORD, Role::HeadOffice, &[], now_ms())
        .await
        .unwrap();
    for login in ["olena", "petro"] {
        s.create_key_user(login, PASSWORD, Role::KeyUser, &["ACME".into()], now_ms())
            .await
            .unwrap();
    }
    let id = async |login: &str| -> i64 {
        let (id,): (i64,) = sqlx::query_as("SELECT id FROM key_users WHERE login = $1")
            .bind(login)
            .fetch_one(s.test_pool())
            .await
            .unwrap();
        id
    };
    let url = &server.url;
    let ho = logged_in(url, "ho", PASSWORD).await;

    // Olena, in the middle of a session, is disabled: her next page is the login form.
    let olena = logged_in(url, "olena", PASSWORD).await;
    olena.goto(&format!("{url}/outlets")).await;
    assert!(olena.find_opt("#me").await.is_some());
    ho.goto(&format!("{url}/key-users/{}", id("olena").await))
        .await;
    assert_eq!(ho.text("#account-state").await, "active");
    ho.click("#disable-key-user").await;
    assert!(
        ho.text("#account-state")
            .await
            .starts_with("disabled since")
    );
    olena.goto(&format!("{url}/outlets")).await;
    assert!(olena.current_url().await.ends_with("/login"));
    olena.log_in(url, "olena", PASSWORD).await;
    assert!(olena.find_opt("#me").await.is_none());
    assert!(olena.find_opt("#login-error").await.is_some());
    // Enabled again, she logs in.
    ho.click("#enable-key-user").await;
    assert_eq!(ho.text("#account-state").await, "active");
    olena.log_in(url, "olena", PASSWORD).await;
    assert!(olena.text("#me").await.starts_with("olena"));
    olena.close().await;

    // Petro's password is reset: a weak one is refused and changes nothing; then his open
    // session ends, the old password fails and the new one logs in.
    let petro = Session::open(&server, "petro", PASSWORD).await;
    let card = format!("{url}/key-users/{}", id("petro").await);
    ho.goto(&card).await;
    ho.fill("#reset-password", "short").await;
    ho.click("#save-password").await;
    assert!(refused(&ho, "at least 8 characters").await);
    assert_eq!(petro.get("/visits").await.0, 200);
    ho.goto(&card).await;
    ho.fill("#reset-password", "fresh-pass-42").await;
    ho.click("#save-password").await;
    assert!(ho.current_url().await.ends_with(&card[url.len()..]));
    assert_eq!(petro.get("/visits").await.0, 303);
    assert_eq!(
        s.login("petro", PASSWORD, now_ms()).await.unwrap(),
        LoginOutcome::Wrong
    );
    let again = Session::open(&server, "petro", "fresh-pass-42").await;
    assert_eq!(again.get("/visits").await.0, 200);

    // The head office's own account is not managed here.
    let own = format!("{url}/key-users/{}", id("ho").await);
    ho.goto(&own).await;
    assert!(refused(&ho, "in Settings").await);
    ho.close().await;
    server.stop().await;
}
on_both_backends!(
    a_key_user_disabled_in_the_back_office_is_refused_at_once_and_a_reset_password_replaces_the_old,
    disable_and_reset
);
