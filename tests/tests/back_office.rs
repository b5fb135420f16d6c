//! The key-user back office in a real headless Chromium (chromedriver), against a real server
//! on port 0, on SQLite and on PostgreSQL: login lockout, PIN generation revoking a device end
//! to end, the visit map, the export cap, one distributor's data hidden from another, HTML
//! escaping, saved views, languages and CSRF.

use fieldsync_protocol::ids;
use fieldsync_server::seed::SeededAgent;
use fieldsync_server::store::keyusers::Role;
use fieldsync_server::store::now_ms;
use fieldsync_tests::browser::{Browser, ensure_leaflet};
use fieldsync_tests::*;

const PASSWORD: &str = "secret123";

struct World {
    server: TestServer,
    acme: Vec<SeededAgent>,
    other: Vec<SeededAgent>,
}

/// Two distributors (ACME, OTHER) and three logins: `head` (head office), `acme-kp` and
/// `other-kp` (key users of one distributor each).
async fn world(db: &TestDb) -> World {
    ensure_leaflet();
    let (server, acme) = acme_server(db, 2).await;
    let other = seed(&server.store, &small_world("OTHER", 1)).await;
    let s = &server.store;
    s.create_key_user("head", PASSWORD, Role::HeadOffice, &[], now_ms())
        .await
        .unwrap();
    s.create_key_user(
        "acme-kp",
        PASSWORD,
        Role::KeyUser,
        &["ACME".into()],
        now_ms(),
    )
    .await
    .unwrap();
    s.create_key_user(
        "other-kp",
        PASSWORD,
        Role::KeyUser,
        &["OTHER".into()],
        now_ms(),
    )
    .await
    .unwrap();
    World {
        server,
        acme,
        other,
    }
}

/// Saves a screenshot when `FIELDSYNC_WEB_SHOTS` names a directory (`.ci/run` keeps them).
async fn shot(b: &Browser, db: &TestDb, name: &str) {
    if let Ok(dir) = std::env::var("FIELDSYNC_WEB_SHOTS") {
        let _ = std::fs::create_dir_all(&dir);
        let path = std::path::Path::new(&dir).join(format!("{name}-{:?}.png", db.backend));
        b.screenshot(&path).await;
    }
}

async fn login(b: &Browser, url: &str, login: &str, password: &str) {
    b.log_in(url, login, password).await;
}

async fn logged_in(url: &str, who: &str) -> Browser {
    let b = Browser::start().await;
    login(&b, url, who, PASSWORD).await;
    let me = b.text("#me").await;
    assert!(
        me.starts_with(who),
        "not logged in as {who}: {me}\n{}",
        b.text("body").await
    );
    b
}

/// Pushes one visit (start with a fix at the outlet, shifted by `offset_e7`, and end) for an
/// agent; returns the visit id and the outlet id.
async fn push_visit(
    server: &TestServer,
    agent: &SeededAgent,
    offset_e7: i32,
) -> (String, i64, RawClient) {
    let (device, session, known) = synced_device(&server.url, agent).await;
    let mut outlet = known.outlets[0].clone();
    let mut b = MutationBuilder::new();
    let visit = ids::new_id();
    let original = outlet.clone();
    outlet.lat_e7 += offset_e7;
    let batch = vec![b.start_visit(visit, &outlet), b.end_visit(visit, &outlet)];
    let r = device.push(session, batch).await;
    assert_eq!(r.status, 200);
    (visit.to_string(), original.id, device)
}

async fn lockout(db: &TestDb) {
    let w = world(db).await;
    let url = &w.server.url;
    let b = Browser::start().await;
    for attempt in 1..=3 {
        login(&b, url, "acme-kp", "wrong-password1").await;
        assert_eq!(
            b.text("#login-error").await,
            "Wrong login or password.",
            "attempt {attempt}"
        );
    }
    // The fourth failure is "more than 3": the login locks.
    login(&b, url, "acme-kp", "wrong-password1").await;
    assert!(b.text("#login-error").await.contains("locked"));
    // While locked even the right password is refused.
    login(&b, url, "acme-kp", PASSWORD).await;
    assert!(b.text("#login-error").await.contains("try again in 15 min"));
    w.server.state.clock.advance(14 * 60 * 1000);
    login(&b, url, "acme-kp", PASSWORD).await;
    assert!(b.text("#login-error").await.contains("try again in 1 min"));
    // Fifteen minutes after the last failure it opens again.
    w.server.state.clock.advance(60 * 1000 + 1);
    login(&b, url, "acme-kp", PASSWORD).await;
    assert!(b.text("#me").await.starts_with("acme-kp"));
    assert!(b.current_url().await.ends_with("/visits"));
    // Logging out ends the session: pages lead back to the login form.
    b.click("#logout").await;
    b.goto(&format!("{url}/outlets")).await;
    assert!(b.current_url().await.contains("/login"));
    b.close().await;
    w.server.stop().await;
}
on_both_backends!(
    a_login_locks_after_more_than_three_failures_and_opens_fifteen_minutes_after_the_last,
    lockout
);

async fn pin_revokes(db: &TestDb) {
    let w = world(db).await;
    let url = &w.server.url;
    let agent = &w.acme[0];
    let (old_device, _) = RawClient::activated(url, agent).await;
    let session = ids::new_id();
    assert_eq!(old_device.pull(session, vec![], 10).await.status, 200);

    let b = logged_in(url, "acme-kp").await;
    b.goto(&format!("{url}/mobile-users?f.login={}", agent.login))
        .await;
    b.click("#list tbody a").await;
    assert_eq!(b.text("#device-uid").await.len(), 36, "bound device shown");
    b.click("#generate-pin").await;
    let pin = b.text("#new-pin").await;
    assert_eq!(pin.len(), 8, "an 8-digit PIN is shown: {pin}");
    assert!(b.find_opt("#no-device").await.is_some(), "device unbound");

    // The old phone's next sync is refused ...
    let r = old_device.pull(session, vec![], 10).await;
    assert_eq!(r.status, 401);
    assert_eq!(
        r.error().code,
        fieldsync_protocol::v1::ErrorCode::DeviceRevoked as i32
    );
    // ... and a new one activates with the PIN that was shown.
    let fresh = RawClient::new(url).activate(&agent.login, &pin).await;
    assert_eq!(fresh.status, 200);
    let card = b.current_url().await.trim_end_matches("/pin").to_string();
    b.goto(&card).await;
    assert_eq!(b.text("#device-uid").await.len(), 36, "new device bound");
    b.close().await;
    w.server.stop().await;
}
on_both_backends!(
    generating_a_pin_revokes_the_bound_device_and_the_new_pin_activates,
    pin_revokes
);

async fn visit_map(db: &TestDb) {
    let w = world(db).await;
    let url = &w.server.url;
    // About 110 m north of the outlet.
    let (visit, _, _) = push_visit(&w.server, &w.acme[0], 10_000).await;
    let b = logged_in(url, "acme-kp").await;
    b.goto(&format!("{url}/visits")).await;
    assert_eq!(b.count("#list tbody tr").await, 1);
    shot(&b, db, "visits-list").await;
    b.click("#list tbody a").await;
    assert!(b.current_url().await.ends_with(&visit));
    assert_eq!(b.text("#visit-band").await, "near");
    shot(&b, db, "visit-card").await;
    b.click("#tab-map").await;
    b.find("#map[data-state=drawn]").await;
    shot(&b, db, "visit-map").await;
    assert_eq!(b.count("path.fs-ref").await, 1, "green reference marker");
    assert_eq!(
        b.count("path.fs-fix").await,
        2,
        "orange start and end fixes"
    );
    assert_eq!(
        b.count("path.fs-deviation").await,
        1,
        "the line between them"
    );
    assert_eq!(b.count("path.fs-accuracy").await, 2, "accuracy circles");
    let stroke = b
        .run("return document.querySelector('path.fs-ref').getAttribute('fill')")
        .await;
    assert_eq!(stroke, "#43a047");
    assert!(b.text("#map-distance").await.contains("111 m"));
    // The agent's day map shows the visit colored by its band.
    b.goto(&format!("{url}/visits/day-map?agent={}", w.acme[0].login))
        .await;
    b.find("#map[data-state=drawn]").await;
    assert_eq!(b.count("path.fs-visit.fs-band-near").await, 1);
    shot(&b, db, "day-map").await;
    b.goto(&format!("{url}/outlets")).await;
    shot(&b, db, "outlets").await;
    b.goto(&format!("{url}/org-units")).await;
    shot(&b, db, "org-units").await;
    b.close().await;
    w.server.stop().await;
}
on_both_backends!(
    the_visit_map_shows_the_reference_location_the_fixes_and_the_deviation,
    visit_map
);

async fn export_cap(db: &TestDb) {
    ensure_leaflet();
    let server = TestServer::start(db).await;
    let mut spec = small_world("BIG", 1);
    spec.outlets = 10_001;
    seed(&server.store, &spec).await;
    server
        .store
        .create_key_user("big-kp", PASSWORD, Role::KeyUser, &["BIG".into()], now_ms())
        .await
        .unwrap();
    let url = &server.url;
    let b = logged_in(url, "big-kp").await;
    b.goto(&format!("{url}/outlets")).await;
    assert_eq!(b.text("#row-count").await, "more than 1000 rows");
    b.click("#export-csv").await;
    let message = b.text("#error-message").await;
    assert!(
        message.contains("limited to 10000 rows") && message.contains("Narrow the filter"),
        "{message}"
    );
    // Narrowed, the export holds exactly the visible columns and rows.
    b.goto(&format!("{url}/outlets?f.code=O0000&cols=code,name"))
        .await;
    let shown = b.count("#list tbody tr").await;
    assert!(shown > 1 && shown <= 50);
    let csv = b
        .run_async(
            "const done = arguments[0]; \
             fetch(document.getElementById('export-csv').href).then(r => r.text()).then(done);",
        )
        .await;
    let csv = csv
        .as_str()
        .unwrap()
        .trim_start_matches('\u{feff}')
        .to_string();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "Code,Name");
    let count: String = b.text("#row-count").await;
    assert_eq!(format!("{} rows", lines.len() - 1), count);
    b.close().await;
    server.stop().await;
}
on_both_backends!(
    export_refuses_more_than_ten_thousand_rows_and_asks_to_narrow_the_filter,
    export_cap
);

async fn isolation(db: &TestDb) {
    let w = world(db).await;
    let url = &w.server.url;
    let (other_visit, other_outlet, other_device) = push_visit(&w.server, &w.other[0], 0).await;
    let (other_user,): (i64,) = sqlx::query_as("SELECT id FROM mobile_users WHERE login = $1")
        .bind(&w.other[0].login)
        .fetch_one(w.server.store.test_pool())
        .await
        .unwrap();
    let b = logged_in(url, "acme-kp").await;
    for (path, table) in [
        ("/outlets", "outlets"),
        ("/products", "products"),
        ("/mobile-users", "mobile_users"),
        ("/visits", "visits"),
        ("/sync-sessions", "sync_sessions"),
    ] {
        b.goto(&format!("{url}{path}")).await;
        let body = b.text("#list").await;
        assert!(
            !body.to_uppercase().contains("OTHER"),
            "{table} shows OTHER's rows:\n{body}"
        );
    }
    b.goto(&format!("{url}/outlets?f.distributor=OTHER")).await;
    assert!(!b.text("#list").await.contains("OTHER"));
    // URL tampering: another distributor's ids answer "not found".
    for path in [
        format!("/outlets/{other_outlet}"),
        format!("/visits/{other_visit}"),
        format!("/visits/{other_visit}?tab=map"),
        format!("/mobile-users/{other_user}"),
        format!("/visits/day-map?agent={}", w.other[0].login),
    ] {
        b.goto(&format!("{url}{path}")).await;
        let text = b.text("body").await;
        assert!(
            text.contains("Not found") || text.contains("Choose an agent"),
            "{path} revealed something: {text}"
        );
        assert!(!text.contains(&w.other[0].login) || path.contains("day-map"));
    }
    // A forged POST with this session's own CSRF token still cannot touch OTHER's user.
    b.goto(&format!("{url}/mobile-users")).await;
    let status = b
        .run_async(
            "const done = arguments[0]; \
             const csrf = document.querySelector('input[name=csrf]').value; \
             fetch('/mobile-users/ID/pin', \
               {method: 'POST', headers: {'content-type': 'application/x-www-form-urlencoded'}, body: 'csrf=' + csrf}) \
             .then(r => done(r.status));"
                .replace("ID", &other_user.to_string())
                .as_str(),
        )
        .await;
    assert_eq!(status, 404);
    // Export with a filter naming OTHER gives nothing either.
    let csv = b
        .run_async(
            "const done = arguments[0]; \
             fetch('/outlets/export?format=csv&f.distributor=OTHER&cols=code').then(r => r.text()).then(done);",
        )
        .await;
    assert!(!csv.as_str().unwrap().contains("OTHER"));
    b.close().await;
    // OTHER's phone still works: its PIN was not regenerated.
    assert_eq!(
        other_device.pull(ids::new_id(), vec![], 10).await.status,
        200
    );
    // The head office sees both.
    let h = logged_in(url, "head").await;
    h.goto(&format!("{url}/outlets/{other_outlet}")).await;
    assert!(h.text("dl.facts").await.contains("OTHER"));
    h.close().await;
    w.server.stop().await;
}
on_both_backends!(
    a_distributor_key_user_never_sees_another_distributors_data_even_by_url,
    isolation
);

async fn escaping(db: &TestDb) {
    let w = world(db).await;
    let url = &w.server.url;
    let evil = "<script>alert(1)</script>";
    let (id, code): (i64, String) = sqlx::query_as(
        "SELECT o.id, o.code FROM outlets o JOIN distributors d ON d.id = o.distributor_id \
             WHERE d.code = 'ACME' ORDER BY o.id LIMIT 1",
    )
    .fetch_one(w.server.store.test_pool())
    .await
    .unwrap();
    sqlx::query("UPDATE outlets SET name = $1, address = $1 WHERE id = $2")
        .bind(evil)
        .bind(id)
        .execute(w.server.store.test_pool())
        .await
        .unwrap();
    let b = logged_in(url, "acme-kp").await;
    b.goto(&format!("{url}/outlets?f.code={code}")).await;
    assert!(b.text("#list").await.contains(evil));
    assert_eq!(b.alert_text().await, None, "no script ran");
    b.goto(&format!("{url}/outlets/{id}")).await;
    assert_eq!(b.text("#outlet-name").await, evil);
    assert_eq!(b.alert_text().await, None);
    assert_eq!(b.count("script:not([src]):not([type])").await, 0);
    b.close().await;
    w.server.stop().await;
}
on_both_backends!(an_outlet_named_like_a_script_shows_as_text, escaping);

async fn views_language_csrf(db: &TestDb) {
    let w = world(db).await;
    let url = &w.server.url;
    let b = logged_in(url, "acme-kp").await;
    // A saved view: two columns, in the order given.
    b.goto(&format!("{url}/outlets?f.name=a")).await;
    b.run(
        "document.querySelector('details.columns').open = true; \
         for (const c of document.querySelectorAll('details.columns input[name=col]')) \
           c.checked = (c.value === 'name' || c.value === 'code'); \
         document.querySelector('input[name=\"pos.name\"]').value = 1; \
         document.querySelector('input[name=\"pos.code\"]').value = 2;",
    )
    .await;
    b.fill("details.columns input[name=name]", "names first")
        .await;
    b.click("#save-view").await;
    let headers = b
        .run("return [...document.querySelectorAll('#list th')].map(t => t.dataset.col || t.querySelector('a').dataset.col)")
        .await;
    assert_eq!(headers, serde_json::json!(["name", "code"]));
    assert!(b.current_url().await.contains("view="));
    assert_eq!(b.text("a.view").await, "names first");
    // Its filter came with it.
    assert!(b.text("#list").await.to_lowercase().contains('a'));
    // Sorting by a column: the first row's code is the smallest, then the largest.
    b.goto(&format!("{url}/outlets?sort=code&dir=asc&cols=code"))
        .await;
    let first_asc = b.text("#list tbody tr td").await;
    b.goto(&format!("{url}/outlets?sort=code&dir=desc&cols=code"))
        .await;
    let first_desc = b.text("#list tbody tr td").await;
    assert!(first_asc < first_desc, "{first_asc} < {first_desc}");
    // Language per user.
    b.goto(&format!("{url}/settings")).await;
    b.run("document.getElementById('lang').value = 'uk'").await;
    b.fill("#timezone", "Europe/Sofia").await;
    b.click("#save-settings").await;
    b.goto(&format!("{url}/visits")).await;
    assert!(b.text("header").await.contains("Візити"));
    // A form without the session's CSRF token is refused.
    let status = b
        .run_async(
            "const done = arguments[0]; \
             fetch('/settings', {method: 'POST', headers: {'content-type': 'application/x-www-form-urlencoded'}, \
               body: 'csrf=forged&lang=ru&timezone=UTC'}).then(r => done(r.status));",
        )
        .await;
    assert_eq!(status, 403);
    b.goto(&format!("{url}/visits")).await;
    assert!(
        b.text("header").await.contains("Візити"),
        "language unchanged"
    );
    b.close().await;
    w.server.stop().await;
}
on_both_backends!(
    saved_views_keep_their_columns_in_order_and_languages_and_csrf_hold,
    views_language_csrf
);

async fn read_only_and_staff(db: &TestDb) {
    let w = world(db).await;
    let url = &w.server.url;
    w.server
        .store
        .create_key_user(
            "viewer",
            PASSWORD,
            Role::ReadOnly,
            &["ACME".into()],
            now_ms(),
        )
        .await
        .unwrap();
    // A read-only login sees the lists but no form that changes anything, and a forged POST
    // is refused.
    let r = logged_in(url, "viewer").await;
    r.goto(&format!("{url}/mobile-users")).await;
    assert!(r.count("#list tbody tr").await >= 2);
    assert_eq!(r.count("#create-mobile-user").await, 0);
    r.click("#list tbody a").await;
    assert_eq!(r.count("#generate-pin").await, 0);
    let card = r.current_url().await;
    let status = r
        .run_async(
            "const done = arguments[0]; \
             const csrf = document.querySelector('input[name=csrf]').value; \
             fetch(window.location.pathname + '/pin', {method: 'POST', \
               headers: {'content-type': 'application/x-www-form-urlencoded'}, body: 'csrf=' + csrf}) \
             .then(r => done(r.status));",
        )
        .await;
    assert_eq!(status, 403, "{card}");
    r.close().await;
    // A key user binds a person to a position as its main staff, then ends the binding.
    let b = logged_in(url, "acme-kp").await;
    b.goto(&format!("{url}/staff")).await;
    b.run("document.getElementById('bind-staff').open = true")
        .await;
    b.fill("#bind-staff input[name=first_name]", "Olena").await;
    b.fill("#bind-staff input[name=last_name]", "O'Testenko")
        .await;
    b.click("#bind-staff-submit").await;
    assert_eq!(b.text("#binding-main").await, "Yes");
    let binding: i64 = b
        .current_url()
        .await
        .rsplit('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let (mains,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM position_staff WHERE is_main = 1 AND valid_to IS NULL AND position_id = \
           (SELECT position_id FROM position_staff WHERE id = $1)",
    )
    .bind(binding)
    .fetch_one(w.server.store.test_pool())
    .await
    .unwrap();
    assert_eq!(mains, 1, "one main person per position");
    b.click("#end-binding").await;
    assert!(!b.text("#binding-to").await.is_empty());
    assert_eq!(b.text("#binding-main").await, "No");
    // Cyrillic names are refused with the rule.
    b.goto(&format!("{url}/staff")).await;
    let status = b
        .run_async(
            "const done = arguments[0]; \
             const f = document.querySelector('#bind-staff form'); \
             const data = new URLSearchParams(new FormData(f)); \
             data.set('first_name', 'Олена'); data.set('last_name', 'Коваленко'); \
             fetch('/staff', {method: 'POST', body: data}).then(r => done(r.status));",
        )
        .await;
    assert_eq!(status, 400);
    b.close().await;
    w.server.stop().await;
}
on_both_backends!(
    a_read_only_login_changes_nothing_and_a_key_user_binds_staff_to_positions,
    read_only_and_staff
);

async fn portal(db: &TestDb) {
    let w = world(db).await;
    let url = &w.server.url;
    let s = &w.server.store;
    s.create_key_user(
        "acme-portal",
        PASSWORD,
        Role::Distributor,
        &["ACME".into()],
        now_ms(),
    )
    .await
    .unwrap();
    // An agent places two orders.
    let mut device = SyncedDevice::new(url, &w.acme[0]).await;
    let (_, orders, batch) = device.visit_with_orders(&[3, 1]);
    let first = orders[0];
    assert_eq!(device.push(batch).await.status, 200);

    let b = logged_in(url, "acme-portal").await;
    assert!(
        b.current_url().await.ends_with("/orders"),
        "the portal opens on the inbox"
    );
    assert_eq!(b.text("#order-tabs a[data-state=placed] .count").await, "2");
    assert_eq!(b.count("#list tbody tr").await, 2);
    // The rest of the back office is closed to a portal login.
    b.goto(&format!("{url}/visits")).await;
    assert!(b.text("#error-message").await.contains("may not"));
    b.goto(&format!("{url}/orders/{first}")).await;
    assert_eq!(b.count("#order-lines tbody tr").await, 3);
    // Confirm with 1.5 of the first line.
    b.run("document.getElementById('next-state').value = 'confirmed'")
        .await;
    b.fill("input[name='qty.1']", "1,5").await;
    b.click("#change-status").await;
    assert_eq!(b.text("#order-state").await, "confirmed");
    assert_eq!(b.text("#order-lines tbody tr td.confirmed").await, "1.5");
    assert!(
        b.text("#order-history")
            .await
            .contains("portal:acme-portal")
    );
    // A backward step is refused with the states named.
    let status = b
        .run_async(
            "const done = arguments[0]; \
             const csrf = document.querySelector('input[name=csrf]').value; \
             fetch(window.location.pathname + '/status', {method: 'POST', \
               headers: {'content-type': 'application/x-www-form-urlencoded'}, body: 'csrf=' + csrf + '&state=accepted'}) \
             .then(r => done(r.status));",
        )
        .await;
    assert_eq!(status, 409);
    b.goto(&format!("{url}/orders")).await;
    assert_eq!(
        b.text("#order-tabs a[data-state=confirmed] .count").await,
        "1"
    );
    assert_eq!(b.text("#order-tabs a[data-state=placed] .count").await, "1");
    b.close().await;
    // Another distributor's portal sees none of it.
    s.create_key_user(
        "other-portal",
        PASSWORD,
        Role::Distributor,
        &["OTHER".into()],
        now_ms(),
    )
    .await
    .unwrap();
    let o = logged_in(url, "other-portal").await;
    assert_eq!(o.text("#row-count").await, "0 rows");
    o.goto(&format!("{url}/orders/{first}")).await;
    assert!(o.text("#error-message").await.contains("Not found"));
    o.close().await;
    w.server.stop().await;
}
on_both_backends!(
    a_distributor_walks_an_order_through_its_states_in_the_portal,
    portal
);

async fn upload(db: &TestDb) {
    let w = world(db).await;
    let url = &w.server.url;
    w.server
        .store
        .create_key_user(
            "acme-portal",
            PASSWORD,
            Role::Distributor,
            &["ACME".into()],
            now_ms(),
        )
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("products.csv");
    std::fs::write(
        &good,
        "code;name;must_stock\nUP-1;Uploaded tea;yes\nUP-2;;no\n",
    )
    .unwrap();
    let b = logged_in(url, "acme-portal").await;
    b.goto(&format!("{url}/imports")).await;
    b.run("document.getElementById('import-kind').value = 'products'")
        .await;
    b.fill("#import-file", good.to_str().unwrap()).await;
    b.click("#upload-submit").await;
    assert_eq!(b.text("#job-status").await, "done with refused rows");
    assert_eq!(b.text("#job-applied").await, "1");
    assert!(
        b.text("#job-errors")
            .await
            .contains("3 code and name are required")
    );
    let n = count_where(
        &w.server.store,
        "SELECT COUNT(*) FROM products WHERE code = 'UP-1' AND must_stock = 1",
        &[],
    )
    .await;
    assert_eq!(n, 1);
    // A broken workbook is refused whole, with its reason on the job page.
    let broken = dir.path().join("outlets.xlsx");
    std::fs::write(&broken, b"PK\x03\x04 broken").unwrap();
    b.goto(&format!("{url}/imports")).await;
    b.fill("#import-file", broken.to_str().unwrap()).await;
    b.click("#upload-submit").await;
    assert_eq!(b.text("#job-status").await, "failed, nothing applied");
    assert!(
        b.text("#job-message")
            .await
            .contains("not an XLSX workbook")
    );
    // A dry run of an outlet file: the job says what would change, nothing is written.
    let (code, name): (String, String) = sqlx::query_as(
        "SELECT o.code, o.name FROM outlets o JOIN distributors d ON d.id = o.distributor_id \
         WHERE d.code = 'ACME' ORDER BY o.id LIMIT 1",
    )
    .fetch_one(w.server.store.test_pool())
    .await
    .unwrap();
    let renames = dir.path().join("renames.csv");
    std::fs::write(&renames, format!("code,name\n{code},Dry-run name\n")).unwrap();
    b.goto(&format!("{url}/imports")).await;
    b.run("document.getElementById('import-kind').value = 'outlets'")
        .await;
    b.fill("#import-file", renames.to_str().unwrap()).await;
    b.run("document.getElementById('import-dry-run').checked = true")
        .await;
    b.click("#upload-submit").await;
    assert_eq!(b.text("#job-status").await, "dry run: nothing written");
    let message = b.text("#job-message").await;
    assert!(
        message.contains("1 changed") && message.contains("Dry-run name"),
        "{message}"
    );
    let (still,): (String,) = sqlx::query_as("SELECT name FROM outlets WHERE code = $1")
        .bind(&code)
        .fetch_one(w.server.store.test_pool())
        .await
        .unwrap();
    assert_eq!(still, name);

    // The kinds a distributor's system is the natural source of, from the same form: price
    // lists, dated prices and org units. Sync points are the head office's alone.
    let upload_kind = async |kind: &str, file: &str, body: &str| {
        let path = dir.path().join(file);
        std::fs::write(&path, body).unwrap();
        b.goto(&format!("{url}/imports")).await;
        b.run(&format!(
            "document.getElementById('import-kind').value = '{kind}'"
        ))
        .await;
        b.fill("#import-file", path.to_str().unwrap()).await;
        b.click("#upload-submit").await;
        b.text("#job-status").await
    };
    let status = upload_kind(
        "price_lists",
        "lists.csv",
        "name,payment_form,default\nUploaded cash,cash,no\nBad form,barter,no\n",
    )
    .await;
    assert_eq!(status, "done with refused rows");
    let errors = b.text("#job-errors").await;
    assert!(errors.contains("3 a payment form is cash"), "{errors}");
    let status = upload_kind(
        "prices",
        "prices.csv",
        "price_list,product_code,price,valid_from\nUploaded cash,UP-1,9.90,2030-01-01\n",
    )
    .await;
    assert_eq!(status, "done");
    let status = upload_kind(
        "org_units",
        "org.csv",
        "code,name,kind,parent_code\nUP-REG,Uploaded region,region,\nUP-TER,Uploaded territory,territory,UP-REG\n",
    )
    .await;
    assert_eq!(status, "done");
    let stored = count_where(
        &w.server.store,
        "SELECT COUNT(*) FROM prices pr JOIN price_lists pl ON pl.id = pr.price_list_id \
         JOIN products p ON p.id = pr.product_id \
         WHERE pl.name = 'Uploaded cash' AND p.code = 'UP-1' AND pr.price_minor = 990 \
         AND pr.valid_from = '2030-01-01'",
        &[],
    )
    .await;
    assert_eq!(stored, 1, "the dated price of the uploaded price list");
    let stored = count_where(
        &w.server.store,
        "SELECT COUNT(*) FROM org_units t JOIN org_units r ON r.id = t.parent_id \
         WHERE t.code = 'UP-TER' AND t.kind = 'territory' AND r.code = 'UP-REG'",
        &[],
    )
    .await;
    assert_eq!(stored, 1, "the territory under its region");
    assert_eq!(
        b.count("#import-kind option[value='sync_points']").await,
        0,
        "a distributor's user is not offered sync points"
    );
    b.goto(&format!("{url}/imports")).await;
    assert_eq!(b.count("#import-jobs tbody tr").await, 6);
    b.close().await;

    // The head office grants a key user a sync point by file.
    let head = logged_in(url, "head").await;
    let grants = dir.path().join("grants.csv");
    std::fs::write(
        &grants,
        "login,distributor_code,granted\nacme-portal,OTHER,yes\n",
    )
    .unwrap();
    head.goto(&format!("{url}/imports")).await;
    head.run("document.getElementById('import-kind').value = 'sync_points'")
        .await;
    head.fill("#import-file", grants.to_str().unwrap()).await;
    head.click("#upload-submit").await;
    assert_eq!(head.text("#job-status").await, "done");
    let granted = count_where(
        &w.server.store,
        "SELECT COUNT(*) FROM key_user_sync_points s JOIN key_users k ON k.id = s.key_user_id \
         JOIN distributors d ON d.id = s.distributor_id WHERE k.login = 'acme-portal' AND d.code = 'OTHER'",
        &[],
    )
    .await;
    assert_eq!(granted, 1);
    head.close().await;
    w.server.stop().await;
}
on_both_backends!(
    a_distributor_uploads_files_and_reads_their_import_logs,
    upload
);

/// The row count of local outlets without mapping.
async fn unmapped(b: &Browser, url: &str) -> String {
    b.goto(&format!("{url}/outlets?f.mapping=1&f.kind=local&cols=code"))
        .await;
    b.text("#row-count").await
}

async fn master_data_actions(db: &TestDb) {
    let w = world(db).await;
    let url = &w.server.url;
    let pool = w.server.store.test_pool();
    // A visit about 111 m north of its outlet, and a global outlet to map to.
    let (visit, outlet, _) = push_visit(&w.server, &w.acme[0], 10_000).await;
    let other = w.server.store.distributor_id("OTHER").await.unwrap();
    sqlx::query("UPDATE outlets SET is_global = 1, code = 'G-1' WHERE id = (SELECT MIN(id) FROM outlets WHERE distributor_id = $1)")
        .bind(other)
        .execute(pool)
        .await
        .unwrap();
    let b = logged_in(url, "acme-kp").await;
    assert_eq!(unmapped(&b, url).await, "40 rows");
    // Map the visited outlet to the global one; an unknown code is refused.
    b.goto(&format!("{url}/outlets/{outlet}")).await;
    b.fill("#global-code", "NO-SUCH").await;
    b.click("#save-mapping").await;
    assert!(b.text("#error-message").await.contains("No global item"));
    b.goto(&format!("{url}/outlets/{outlet}")).await;
    b.fill("#global-code", "G-1").await;
    b.click("#save-mapping").await;
    assert_eq!(unmapped(&b, url).await, "39 rows");
    // Adopt the visit's fix as the reference location, then type one by hand.
    let (lat, _): (i64, i64) = sqlx::query_as(
        "SELECT lat_e7, lon_e7 FROM gps_fixes WHERE visit_id = $1 AND phase = 'start'",
    )
    .bind(&visit)
    .fetch_one(pool)
    .await
    .unwrap();
    b.goto(&format!("{url}/outlets/{outlet}")).await;
    b.click("#outlet-visits button.adopt").await;
    let (ref_lat,): (Option<i64>,) = sqlx::query_as("SELECT lat_e7 FROM outlets WHERE id = $1")
        .bind(outlet)
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(ref_lat, Some(lat));
    b.fill("#lat", "50,45").await;
    b.fill("#lon", "30.52").await;
    b.click("#save-location").await;
    assert_eq!(b.text("#reference-location").await, "50.4500000 30.5200000");
    b.fill("#lat", "95").await;
    b.click("#save-location").await;
    assert!(b.text("#error-message").await.contains("latitude"));
    // Bind a warehouse to a position for orders.
    let (wh,): (i64,) = sqlx::query_as(
        "SELECT w.id FROM warehouses w JOIN distributors d ON d.id = w.distributor_id WHERE d.code = 'ACME' ORDER BY w.id LIMIT 1",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    // The seed binds every position; take one away to bind it again through the page.
    let (free,): (i64,) =
        sqlx::query_as("SELECT MIN(position_id) FROM warehouse_positions WHERE warehouse_id = $1")
            .bind(wh)
            .fetch_one(pool)
            .await
            .unwrap();
    sqlx::query("DELETE FROM warehouse_positions WHERE warehouse_id = $1 AND position_id = $2")
        .bind(wh)
        .bind(free)
        .execute(pool)
        .await
        .unwrap();
    let before: (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM warehouse_positions WHERE warehouse_id = $1")
            .bind(wh)
            .fetch_one(pool)
            .await
            .unwrap();
    b.goto(&format!("{url}/warehouses/{wh}")).await;
    b.run(&format!(
        "document.querySelector('select[name=position_id]').value = '{free}'"
    ))
    .await;
    b.click("#bind-position").await;
    let after: (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM warehouse_positions WHERE warehouse_id = $1")
            .bind(wh)
            .fetch_one(pool)
            .await
            .unwrap();
    assert_eq!(after.0, before.0 + 1, "the position is bound for orders");
    assert_eq!(
        b.count("#warehouse-positions tbody tr").await as i64,
        after.0
    );
    // Change the password: the wrong current one is refused, the new one logs in.
    b.goto(&format!("{url}/settings")).await;
    b.fill("#password-form input[name=current]", "not-it-1")
        .await;
    b.fill("#password-form input[name=new]", "newsecret7").await;
    b.click("#change-password").await;
    assert_eq!(
        b.text("#settings-message").await,
        "The current password is wrong."
    );
    b.fill("#password-form input[name=current]", PASSWORD).await;
    b.fill("#password-form input[name=new]", "short1").await;
    b.click("#change-password").await;
    assert!(b.text("#settings-message").await.contains("at least 8"));
    b.fill("#password-form input[name=current]", PASSWORD).await;
    b.fill("#password-form input[name=new]", "newsecret7").await;
    b.click("#change-password").await;
    assert!(
        b.text("#settings-message")
            .await
            .contains("Password changed")
    );
    b.close().await;
    let again = Browser::start().await;
    login(&again, url, "acme-kp", PASSWORD).await;
    assert_eq!(again.text("#login-error").await, "Wrong login or password.");
    login(&again, url, "acme-kp", "newsecret7").await;
    assert!(again.text("#me").await.starts_with("acme-kp"));
    again.close().await;
    w.server.stop().await;
}
on_both_backends!(
    key_users_map_outlets_set_reference_locations_bind_warehouses_and_change_passwords,
    master_data_actions
);
