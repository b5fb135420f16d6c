//! Attacks that once took the server down or got past a limit, kept as regression tests:
//! concurrent guessing of passwords and PINs over two servers sharing one database, floods
//! of anonymous logins against the bounded hashing pool, guessing the current password in
//! the password-change form. On SQLite and on PostgreSQL.

use fieldsync_protocol::v1::ErrorCode;
use fieldsync_server::store::keyusers::Role;
use fieldsync_server::store::{Problem, StoreError, now_ms};
use fieldsync_server::store::{Store, devices::PIN_MAX_FAILURES, keyusers::MAX_FAILED_ATTEMPTS};
use fieldsync_tests::*;

const PASSWORD: &str = "secret123";

/// Posts the login form (with a matching login-form CSRF cookie); returns the status.
async fn post_login(http: &reqwest::Client, url: &str, login: &str, password: &str) -> u16 {
    http.post(format!("{url}/login"))
        .header("cookie", "fs_login_csrf=tok")
        .form(&[("login", login), ("password", password), ("csrf", "tok")])
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Statuses of `n` concurrent requests, spread round-robin over `urls`, sorted.
async fn at_once<F, Fut>(n: usize, urls: &[String], request: F) -> Vec<u16>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = u16> + Send + 'static,
{
    let tasks: Vec<_> = (0..n)
        .map(|i| tokio::spawn(request(urls[i % urls.len()].clone())))
        .collect();
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    statuses.sort();
    statuses
}

fn count_of(statuses: &[u16], status: u16) -> usize {
    statuses.iter().filter(|s| **s == status).count()
}

/// Of 50 attempts sent at once, `allowed` were checked: all but the last of them were refused
/// (401), the last locked, and every other attempt was refused as locked (429).
fn assert_locked_after(statuses: &[u16], allowed: usize) {
    assert_eq!(count_of(statuses, 401), allowed - 1, "{statuses:?}");
    assert_eq!(count_of(statuses, 429), 50 - (allowed - 1), "{statuses:?}");
}

/// How many passwords and PINs the two servers checked.
async fn secrets_checked(a: &TestServer, b: &TestServer) -> u64 {
    metric(&a.url, "fieldsync_secret_verifications_total").await
        + metric(&b.url, "fieldsync_secret_verifications_total").await
}

/// Two servers on one database, as behind a load balancer.
async fn two_servers(db: &TestDb) -> (TestServer, TestServer) {
    let a = TestServer::start(db).await;
    let b = TestServer::start_with(Store::connect(&db.url).await.unwrap()).await;
    (a, b)
}

/// Stops both [`two_servers`].
async fn stop_both(a: TestServer, b: TestServer) {
    a.stop().await;
    b.stop().await;
}

async fn concurrent_passwords(db: &TestDb) {
    let (a, b) = two_servers(db).await;
    seed(&a.store, &small_world("ACME", 1)).await;
    a.store
        .create_key_user("kp", PASSWORD, Role::KeyUser, &["ACME".into()], now_ms())
        .await
        .unwrap();
    let urls = vec![a.url.clone(), b.url.clone()];
    let http = reqwest::Client::new();
    let allowed = (MAX_FAILED_ATTEMPTS + 1) as usize;

    // 50 wrong passwords at once, over both servers: exactly `allowed` are checked; the
    // last of them locks, every other one is refused without a check.
    let statuses = at_once(50, &urls, |url| {
        let http = http.clone();
        async move { post_login(&http, &url, "kp", "wrong-password1").await }
    })
    .await;
    assert_locked_after(&statuses, allowed);
    let checked = secrets_checked(&a, &b).await;
    assert_eq!(checked, allowed as u64);
    // Locked: the right password is refused too, on either server, and not checked.
    assert_eq!(post_login(&http, &a.url, "kp", PASSWORD).await, 429);
    assert_eq!(post_login(&http, &b.url, "kp", PASSWORD).await, 429);
    assert_eq!(secrets_checked(&a, &b).await, allowed as u64);

    // A login that does not exist answers exactly the same way: the lockout tells nothing.
    let statuses = at_once(50, &urls, |url| {
        let http = http.clone();
        async move { post_login(&http, &url, "nobody-here", "wrong-password1").await }
    })
    .await;
    assert_locked_after(&statuses, allowed);
    stop_both(a, b).await;
}
on_both_backends!(
    wrong_passwords_sent_at_once_to_two_servers_are_checked_only_up_to_the_lockout_limit,
    concurrent_passwords
);

async fn concurrent_pins(db: &TestDb) {
    let (a, b) = two_servers(db).await;
    let agents = seed(&a.store, &small_world("ACME", 1)).await;
    let agent = agents[0].clone();
    let urls = vec![a.url.clone(), b.url.clone()];
    let allowed = PIN_MAX_FAILURES as usize;

    let login = agent.login.clone();
    let statuses = at_once(50, &urls, move |url| {
        let login = login.clone();
        async move {
            RawClient::new(&url)
                .activate(&login, "00000000")
                .await
                .status
        }
    })
    .await;
    assert_locked_after(&statuses, allowed);
    let checked = secrets_checked(&a, &b).await;
    assert_eq!(
        checked, allowed as u64,
        "one stored PIN, checked {checked} times"
    );

    // The right PIN is refused while locked, with the time left, on both servers.
    for url in &urls {
        let r = RawClient::new(url).activate(&agent.login, &agent.pin).await;
        assert_eq!(r.status, 429);
        assert_eq!(r.error().code(), ErrorCode::PinLocked);
        assert!(r.error().retry_after_ms > 14 * 60 * 1000);
    }
    // An unknown login locks the same way.
    let statuses = at_once(50, &urls, |url| async move {
        RawClient::new(&url)
            .activate("no-such-agent", "00000000")
            .await
            .status
    })
    .await;
    assert_locked_after(&statuses, allowed);

    // A new PIN opens the login at once.
    let pin = a.store.generate_pin(&agent.login).await.unwrap();
    assert_eq!(
        RawClient::new(&b.url)
            .activate(&agent.login, &pin)
            .await
            .status,
        200
    );
    stop_both(a, b).await;
}
on_both_backends!(
    wrong_pins_sent_at_once_to_two_servers_are_checked_only_up_to_the_lockout_limit,
    concurrent_pins
);

async fn anonymous_flood(db: &TestDb) {
    // A small pool (one worker, four waiting) so that the test needs few requests.
    let store = Store::connect(&db.url)
        .await
        .unwrap()
        .with_secret_pool(1, 4);
    let server = TestServer::start_with(store).await;
    let http = reqwest::Client::new();
    let urls = vec![server.url.clone()];
    let statuses = at_once(60, &urls, |url| {
        let http = http.clone();
        async move {
            let login = format!("stranger-{}", uuid::Uuid::new_v4());
            post_login(&http, &url, &login, "wrong-password1").await
        }
    })
    .await;
    // Each is either checked (401, at the cost of a hash) or refused at once (503); none
    // fails otherwise, and never more than one hash ran at a time.
    let (wrong, busy) = (count_of(&statuses, 401), count_of(&statuses, 503));
    assert_eq!(wrong + busy, 60, "{statuses:?}");
    assert!(busy > 0, "nothing was refused: {statuses:?}");
    assert!(wrong >= 5, "{statuses:?}");
    assert_eq!(
        metric(&server.url, "fieldsync_secret_peak_running").await,
        1
    );
    assert_eq!(
        metric(&server.url, "fieldsync_secret_shed_total").await,
        busy as u64
    );
    // A refused login says so and when to try again (12 at once against 5 places: some are
    // refused; a few rounds at most, never an endless wait).
    let mut refused = None;
    for _round in 0..20 {
        let tasks: Vec<_> = (0..12)
            .map(|i| {
                let http = http.clone();
                let url = format!("{}/login", server.url);
                tokio::spawn(async move {
                    http.post(url)
                        .header("cookie", "fs_login_csrf=tok")
                        .form(&[
                            ("login", format!("again-{i}-{}", uuid::Uuid::new_v4())),
                            ("password", "x".into()),
                            ("csrf", "tok".into()),
                        ])
                        .send()
                        .await
                        .unwrap()
                })
            })
            .collect();
        for t in tasks {
            let r = t.await.unwrap();
            if r.status() == 503 {
                refused = Some(r);
            }
        }
        if refused.is_some() {
            break;
        }
    }
    let resp = refused.expect("12 logins at once against 5 places: none was refused");
    assert_eq!(resp.headers()["retry-after"], "1");
    assert!(resp.text().await.unwrap().contains("The server is busy"));
    // The server itself kept answering.
    assert_eq!(
        reqwest::get(format!("{}/healthz", server.url))
            .await
            .unwrap()
            .status(),
        200
    );
    server.stop().await;
}
on_both_backends!(
    a_flood_of_anonymous_logins_is_hashed_one_worker_at_a_time_and_the_excess_refused_with_503,
    anonymous_flood
);

/// The session cookie and CSRF token of a logged-in key user.
async fn session(http: &reqwest::Client, url: &str, login: &str) -> (String, String) {
    let resp = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(format!("{url}/login"))
        .header("cookie", "fs_login_csrf=tok")
        .form(&[("login", login), ("password", PASSWORD), ("csrf", "tok")])
        .send()
        .await
        .unwrap();
    let cookie = resp.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let page = http
        .get(format!("{url}/settings"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = text_between(&page, "name=\"csrf\" value=\"", '"')
        .expect("csrf field")
        .to_string();
    (cookie, csrf)
}

async fn password_change_lock(db: &TestDb) {
    let (server, _) = acme_server(db, 1).await;
    server
        .store
        .create_key_user("kp", PASSWORD, Role::KeyUser, &["ACME".into()], now_ms())
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let (cookie, csrf) = session(&http, &server.url, "kp").await;
    let change = |current: &'static str| {
        let (http, cookie, csrf) = (http.clone(), cookie.clone(), csrf.clone());
        let url = format!("{}/settings/password", server.url);
        async move {
            let r = http
                .post(url)
                .header("cookie", cookie)
                .form(&[
                    ("csrf", csrf.as_str()),
                    ("current", current),
                    ("new", "another123"),
                ])
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    for attempt in 1..=MAX_FAILED_ATTEMPTS {
        let (status, page) = change("guess-1234").await;
        assert_eq!(status, 400, "attempt {attempt}");
        assert!(page.contains("The current password is wrong."));
    }
    let (status, page) = change("guess-1234").await;
    assert_eq!(status, 429);
    assert!(page.contains("Password changes are locked; try again in 15 min"));
    // While locked, the right current password does not change anything.
    let (status, _) = change(PASSWORD).await;
    assert_eq!(status, 429);
    let (cookie2, _) = session(&http, &server.url, "kp").await;
    assert!(
        cookie2.starts_with("fs_session="),
        "old password still logs in"
    );
    // Once the lock has passed, the right current password changes it.
    server.state.clock.advance(15 * 60 * 1000 + 1);
    let (status, page) = change(PASSWORD).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Password changed"));
    server.stop().await;
}
on_both_backends!(
    the_password_change_form_locks_after_repeated_wrong_current_passwords,
    password_change_lock
);

/// An agent of ACME synced one visit with `orders` orders; returns the distributor's id.
async fn orders_synced(server: &TestServer, orders: usize) -> i64 {
    let agents = seed(&server.store, &small_world("ACME", 1)).await;
    let mut device = SyncedDevice::new(&server.url, &agents[0]).await;
    let (_, _, batch) = device.visit_with_orders(&vec![1; orders]);
    assert_eq!(device.push(batch).await.status, 200);
    server.store.distributor_id("ACME").await.unwrap()
}

/// A webhook receiver on loopback that counts posts and answers `status` (with a
/// `Location` when it redirects).
async fn receiver(
    status: u16,
    location: Option<String>,
) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let posts = std::sync::Arc::new(AtomicUsize::new(0));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let counted = posts.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move || {
            let counted = counted.clone();
            let location = location.clone();
            async move {
                counted.fetch_add(1, Ordering::SeqCst);
                let mut resp = axum::response::Response::new(axum::body::Body::empty());
                *resp.status_mut() = axum::http::StatusCode::from_u16(status).unwrap();
                if let Some(l) = location {
                    resp.headers_mut().insert("location", l.parse().unwrap());
                }
                resp
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://127.0.0.1:{port}/hook"), posts)
}

/// Private targets allowed: only to put a row in place that a test then changes.
fn allowed_for_setup() -> fieldsync_server::exchange::webhooks::Targets {
    fieldsync_server::exchange::webhooks::Targets {
        allow_private: true,
    }
}

async fn webhook_targets(db: &TestDb) {
    use fieldsync_server::exchange::webhooks::{Deliverer, Targets, deliver_due};
    use std::sync::atomic::Ordering;
    let server = TestServer::start(db).await;
    let d = orders_synced(&server, 2).await;
    let strict = Targets::default();
    let (inside, posts) = receiver(200, None).await;
    // One delivery round now, as a server set to `targets` makes it: how many were handed over.
    let deliver_now = |targets: Targets| {
        let store = server.store.clone();
        async move {
            deliver_due(&store, &Deliverer::new(targets), now_ms(), 1_000)
                .await
                .unwrap()
        }
    };

    // Private, loopback and metadata addresses are refused when set.
    for url in [
        inside.as_str(),
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:8080/hook",
    ] {
        match server.store.set_webhook(d, url, strict, now_ms()).await {
            Err(StoreError::Refused(Problem::WebhookTarget(m))) => {
                assert!(m.contains("is not a public address"), "{m}")
            }
            other => panic!("{url} accepted: {other:?}"),
        }
    }
    // A host name is resolved when set...
    let by_name = inside.replace("127.0.0.1", "localhost");
    match server
        .store
        .set_webhook(d, &by_name, strict, now_ms())
        .await
    {
        Err(StoreError::Refused(Problem::WebhookTarget(m))) => {
            assert_eq!(
                m,
                "localhost resolves to no public address; webhooks post to the internet only"
            )
        }
        other => panic!("{by_name} accepted: {other:?}"),
    }
    // ...and again at every delivery: a name that resolved to a public address when it was
    // set may point inside later (DNS rebinding). Nothing is posted, and the key user reads
    // why, not a port scan.
    server
        .store
        .set_webhook(d, "https://203.0.113.7/hook", allowed_for_setup(), now_ms())
        .await
        .unwrap();
    sqlx::query("UPDATE webhooks SET url = $1")
        .bind(&by_name)
        .execute(server.store.test_pool())
        .await
        .unwrap();
    assert_eq!(deliver_now(strict).await, 0);
    assert_eq!(posts.load(Ordering::SeqCst), 0, "posted to loopback");
    let hook = server.store.webhook(d).await.unwrap().unwrap();
    assert_eq!(hook.last_error, "the host resolves to no public address");

    // Redirects are not followed, even where private targets are allowed.
    let allowed = Targets {
        allow_private: true,
    };
    let (redirecting, redirected) = receiver(307, Some(inside.clone())).await;
    server
        .store
        .set_webhook(d, &redirecting, allowed, now_ms())
        .await
        .unwrap();
    assert_eq!(deliver_now(allowed).await, 0);
    assert_eq!(redirected.load(Ordering::SeqCst), 1);
    assert_eq!(posts.load(Ordering::SeqCst), 0, "the redirect was followed");
    let hook = server.store.webhook(d).await.unwrap().unwrap();
    assert_eq!(hook.last_error, "HTTP 307");
    server.stop().await;
}
on_both_backends!(
    webhooks_post_only_to_public_addresses_checked_after_resolution_and_never_follow_redirects,
    webhook_targets
);

async fn webhook_leases(db: &TestDb) {
    use fieldsync_server::exchange::webhooks::{Deliverer, LEASE_MS, Targets, deliver_due};
    use std::sync::atomic::Ordering;
    let (a, b) = two_servers(db).await;
    let d = orders_synced(&a, 3).await;
    let allowed = Targets {
        allow_private: true,
    };
    let (url, posts) = receiver(200, None).await;
    a.store
        .set_webhook(d, &url, allowed, now_ms())
        .await
        .unwrap();
    // A server that claimed the delivery and died: nobody posts while its lease runs.
    let now = now_ms();
    sqlx::query("UPDATE webhooks SET lease_owner = 'dead-server', lease_until_ms = $1")
        .bind(now + LEASE_MS)
        .execute(a.store.test_pool())
        .await
        .unwrap();
    let (da, db_) = (Deliverer::new(allowed), Deliverer::new(allowed));
    assert_eq!(deliver_due(&b.store, &db_, now, 1_000).await.unwrap(), 0);
    assert_eq!(posts.load(Ordering::SeqCst), 0);
    // After the lease, both live servers try at the same moment: the batch is posted once.
    let later = now + LEASE_MS + 1;
    let (ha, hb) = tokio::join!(
        deliver_due(&a.store, &da, later, 1_000),
        deliver_due(&b.store, &db_, later, 1_000)
    );
    assert_eq!(
        ha.unwrap() + hb.unwrap(),
        3,
        "three orders handed over once"
    );
    assert_eq!(posts.load(Ordering::SeqCst), 1, "one post");
    let hook = a.store.webhook(d).await.unwrap().unwrap();
    assert_eq!(hook.delivered, 3);
    // Nothing is posted again by either.
    assert_eq!(
        deliver_due(&a.store, &da, later + 1, 1_000).await.unwrap(),
        0
    );
    assert_eq!(
        deliver_due(&b.store, &db_, later + 1, 1_000).await.unwrap(),
        0
    );
    assert_eq!(posts.load(Ordering::SeqCst), 1);
    stop_both(a, b).await;
}
on_both_backends!(
    a_webhook_delivery_is_leased_by_one_server_and_handed_on_when_its_server_dies,
    webhook_leases
);

/// An XLSX workbook with text cells at (row, column), zero-based.
fn workbook(cells: &[(u32, u16, &str)]) -> Vec<u8> {
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    for (r, c, v) in cells {
        sheet.write_string(*r, *c, *v).unwrap();
    }
    book.save_to_buffer().unwrap()
}

async fn hostile_imports(db: &TestDb) {
    let (server, _) = acme_server(db, 1).await;
    let api = ApiClient::new(&server, "ACME", "erp").await;
    let import = |body: Vec<u8>, format: &'static str| {
        let api = &api;
        async move { api.import(&format!("outlets?format={format}"), body).await }
    };
    let outlets_before = count(&server.store, "outlets").await;
    // The 1.6 KB workbook that took the process down (A1 and XFD1048576).
    let bomb = workbook(&[(0, 0, "code"), (1_048_575, 16_383, "x")]);
    assert!(bomb.len() < 10_000);
    let (status, job) = import(bomb, "xlsx").await;
    assert_eq!(status, 422, "{job}");
    assert_eq!(job["status"], "failed");
    assert_eq!(
        job["message"],
        "a value sits in column 16384 (row 1048576); at most 256 columns are read"
    );
    // Rows that each bring a new key.
    let rows: Vec<String> = (0..5_000)
        .map(|i| format!("{{\"code\": \"C{i}\", \"name\": \"N\", \"k{i}\": 1}}"))
        .collect();
    let (status, job) = import(
        format!("{{\"rows\": [{}]}}", rows.join(",")).into_bytes(),
        "json",
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(job["message"], "the rows have more than 256 different keys");
    // Nothing was applied, the server is alive, and a good file still imports.
    assert_eq!(count(&server.store, "outlets").await, outlets_before);
    let good = workbook(&[
        (0, 0, "code"),
        (0, 1, "name"),
        (1, 0, "N1"),
        (1, 1, "New shop"),
    ]);
    let (status, job) = import(good, "xlsx").await;
    assert_eq!(
        (status, job["rows_applied"].as_i64()),
        (200, Some(1)),
        "{job}"
    );
    assert_eq!(count(&server.store, "outlets").await, outlets_before + 1);
    server.stop().await;
}
on_both_backends!(
    a_hostile_spreadsheet_or_json_import_is_one_failed_job_and_the_server_stays_up,
    hostile_imports
);

async fn killed_import(db: &TestDb) {
    use fieldsync_server::store::maintenance;
    let (server, _) = acme_server(db, 1).await;
    let d = server.store.distributor_id("ACME").await.unwrap();
    // A job left `running` by a server that was killed; its lease has run out. Another
    // one's server is alive (its lease is in the future).
    for (file, lease) in [("dead.csv", now_ms() - 1), ("alive.csv", now_ms() + 60_000)] {
        sqlx::query(
            "INSERT INTO import_jobs (distributor_id, kind, source, file_name, format, status, started_at_ms, lease_until_ms) \
             VALUES ($1, 'outlets', 'api', $2, 'csv', 'running', $3, $4)",
        )
        .bind(d)
        .bind(file)
        .bind(now_ms() - 120_000)
        .bind(lease)
        .execute(server.store.test_pool())
        .await
        .unwrap();
    }
    let (recovered, _) = maintenance::run_once(&server.store, now_ms())
        .await
        .unwrap();
    assert_eq!(recovered, 1);
    let jobs: Vec<(String, String, String)> =
        sqlx::query_as("SELECT file_name, status, message FROM import_jobs ORDER BY id")
            .fetch_all(server.store.test_pool())
            .await
            .unwrap();
    assert_eq!(jobs[0].0, "dead.csv");
    assert_eq!(jobs[0].1, "failed");
    assert!(jobs[0].2.contains("stopped before it finished"));
    assert_eq!(
        (jobs[1].0.as_str(), jobs[1].1.as_str()),
        ("alive.csv", "running")
    );
    server.stop().await;
}
on_both_backends!(
    an_import_left_running_by_a_killed_server_is_marked_failed_once_its_lease_runs_out,
    killed_import
);

/// An outlet file of `rows` new outlets named `prefix`.
fn outlet_file(prefix: &str, rows: usize) -> String {
    let mut csv = String::from("code,name,address\n");
    for i in 0..rows {
        csv.push_str(&format!("{prefix}{i:06},Shop {i},Street {i}\n"));
    }
    csv
}

/// The job at `url` (the `Location` of a 202) once it is no longer running.
async fn finished_job(api: &ApiClient, id: i64) -> serde_json::Value {
    for _ in 0..1_200 {
        let job: serde_json::Value = api
            .http
            .get(format!("{}/api/v1/import-jobs/{id}", api.url))
            .bearer_auth(&api.key)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .map(|t| serde_json::from_str(&t).unwrap())
            .unwrap();
        if job["status"] != "running" {
            return job;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("import job {id} still running after two minutes");
}

async fn background_imports(db: &TestDb) {
    let (server, _) = acme_server(db, 1).await;
    let api = ApiClient::new(&server, "ACME", "bg").await;
    let count = |prefix: &'static str| {
        let pool = server.store.test_pool().clone();
        async move {
            sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM outlets WHERE code LIKE $1")
                .bind(format!("{prefix}%"))
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    // `wait=0`: the answer comes at once, before the job ends: 202, the job running, and
    // where to follow it.
    let resp = api
        .http
        .post(format!(
            "{}/api/v1/imports/outlets?format=csv&wait=0",
            api.url
        ))
        .bearer_auth(&api.key)
        .body(outlet_file("BG", 20_000))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 202);
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    let job: serde_json::Value = serde_json::from_str(&resp.text().await.unwrap()).unwrap();
    assert_eq!(job["status"], "running", "{job}");
    let id = job["id"].as_i64().unwrap();
    assert_eq!(location, format!("/api/v1/import-jobs/{id}"));
    let job = finished_job(&api, id).await;
    assert_eq!(job["status"], "done", "{job}");
    assert_eq!(job["rows_applied"], 20_000);
    assert_eq!(count("BG").await, 20_000);

    // A client that gives up before the end (its own timeout) does not stop the import.
    let cut = api
        .http
        .post(format!("{}/api/v1/imports/outlets?format=csv", api.url))
        .bearer_auth(&api.key)
        .timeout(std::time::Duration::from_millis(300))
        .body(outlet_file("HUNG", 20_000))
        .send()
        .await;
    assert!(
        cut.is_err(),
        "the 20,000-row import answered within 300 ms: {cut:?}"
    );
    let (first, mut id) = (id, id);
    for _ in 0..100 {
        id = sqlx::query_scalar("SELECT MAX(id) FROM import_jobs")
            .fetch_one(server.store.test_pool())
            .await
            .unwrap();
        if id != first {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_ne!(id, first, "the cut-off import left no job");
    let job = finished_job(&api, id).await;
    assert_eq!(job["status"], "done", "{job}");
    assert_eq!(count("HUNG").await, 20_000);
    server.stop().await;
}
on_both_backends!(
    an_import_runs_in_the_background_and_a_client_that_hangs_up_does_not_stop_it,
    background_imports
);

async fn scoped_lists(db: &TestDb) {
    let (server, _) = acme_server(db, 1).await;
    seed(&server.store, &small_world("OTHER", 1)).await;
    let s = &server.store;
    s.create_key_user("kp", PASSWORD, Role::KeyUser, &["ACME".into()], now_ms())
        .await
        .unwrap();
    let (acme, other) = (
        s.distributor_id("ACME").await.unwrap(),
        s.distributor_id("OTHER").await.unwrap(),
    );
    s.start_import(
        acme,
        "warehouses",
        "api",
        "acme-own.csv",
        "csv",
        axum::body::Bytes::from_static(b"code,name\nW1,Main\n"),
        now_ms(),
        false,
    )
    .await
    .unwrap()
    .finished()
    .await
    .unwrap();
    // Another distributor's 600 later jobs must not push ACME's out of ACME's list.
    for i in 0..600 {
        sqlx::query(
            "INSERT INTO import_jobs (distributor_id, kind, source, file_name, format, status, started_at_ms) \
             VALUES ($1, 'outlets', 'api', $2, 'csv', 'done', $3)",
        )
        .bind(other)
        .bind(format!("other-{i}.csv"))
        .bind(now_ms())
        .execute(s.test_pool())
        .await
        .unwrap();
    }
    let http = reqwest::Client::new();
    let (cookie, _) = session(&http, &server.url, "kp").await;
    let get = |path: String| {
        let (http, cookie) = (http.clone(), cookie.clone());
        async move {
            let r = http
                .get(path)
                .header("cookie", cookie)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let (status, page) = get(format!("{}/imports", server.url)).await;
    assert_eq!(status, 200);
    assert!(page.contains("acme-own.csv"), "ACME's job is missing");
    assert!(!page.contains("other-"), "another distributor's job shown");
    // A list address naming a column 3,000 times is refused with a message, not a 500.
    let cols = vec!["outlet"; 3_000].join(",");
    let (status, page) = get(format!("{}/visits?cols={cols}", server.url)).await;
    assert_eq!(status, 400);
    assert!(page.contains("too many columns or filters"));
    let (status, _) = get(format!("{}/visits?cols=outlet,outlet", server.url)).await;
    assert_eq!(status, 200);
    server.stop().await;
}
on_both_backends!(
    the_import_list_shows_the_users_own_jobs_whatever_others_import_and_list_addresses_are_bounded,
    scoped_lists
);

/// A push that answers a questionnaire while a key user edits its questions in place: the
/// answers are checked against, and stored for, the questions as they are when written. The
/// attack: answer a yes/no question while it is turned into a number question. Either the
/// edit sees the answers and makes a new version (the answered one keeps its yes/no
/// question), or it comes first and the yes/no answers are refused; never a yes/no answer
/// stored for a number question. Several devices push at once, round after round.
async fn answers_during_an_edit(db: &TestDb) {
    use fieldsync_protocol::{ids, v1};
    use fieldsync_server::store::questionnaires::{QuestionEdit, QuestionForm};
    use fieldsync_server::store::world::QuestionInput;
    const DEVICES: usize = 4;
    const ROUNDS: usize = 25;
    let (server, agents) = acme_server(db, DEVICES).await;
    let d = server.store.distributor_id("ACME").await.unwrap();
    let mut phones = Vec::new();
    for agent in &agents {
        let (raw, _) = RawClient::activated(&server.url, agent).await;
        let session = uuid::Uuid::new_v4();
        let known = Known::from_changes(&raw.pull_all(session).await);
        let mut b = MutationBuilder::new();
        let visit = ids::new_id();
        let start = b.start_visit(visit, &known.outlets[0]);
        let resp: v1::PushResponse = raw.push(session, vec![start]).await.decode();
        assert_eq!(resp.results[0].reason, "");
        phones.push((raw, session, b, visit));
    }
    let question_of = async |q: i64| -> i64 {
        let (id,): (i64,) = sqlx::query_as("SELECT id FROM questions WHERE questionnaire_id = $1")
            .bind(q)
            .fetch_one(server.store.test_pool())
            .await
            .unwrap();
        id
    };
    let (mut applied, mut versioned) = (0, 0);
    for round in 0..ROUNDS {
        let yes_no = QuestionInput {
            text: "Is the fridge branded?".into(),
            question_type: "yes_no".into(),
            required: false,
            choices: Vec::new(),
            condition: None,
        };
        let q = server
            .store
            .create_questionnaire(d, &format!("Race {round}"), &[yes_no])
            .await
            .unwrap();
        let question = question_of(q).await;
        let pushes = phones.iter_mut().map(|(raw, session, b, visit)| {
            let m = b.wrap(v1::mutation::Kind::QuestionnaireAnswered(
                v1::QuestionnaireAnswered {
                    answers_id: ids::to_wire(ids::new_id()),
                    visit_id: ids::to_wire(*visit),
                    questionnaire_id: q,
                    answers: vec![v1::Answer {
                        question_id: question,
                        value: Some(v1::answer::Value::YesNo(true)),
                    }],
                },
            ));
            let (raw, session) = (&*raw, *session);
            async move {
                raw.push(session, vec![m])
                    .await
                    .decode::<v1::PushResponse>()
            }
        });
        let edit = QuestionEdit::Save(
            question,
            QuestionForm {
                text: "How many facings?".into(),
                question_type: "number".into(),
                required: false,
                choices: Vec::new(),
                condition: None,
            },
        );
        let (results, edited) = tokio::join!(futures::future::join_all(pushes), async {
            // From before the pushes arrive to after they are written, round by round.
            let delay = (round as u64 * 7) % 40;
            tokio::time::sleep(std::time::Duration::from_micros(delay * 250)).await;
            server.store.edit_questions(d, q, &edit).await
        });
        let edited = edited.unwrap();
        versioned += (edited != q) as usize;
        applied += results
            .iter()
            .filter(|r| r.results[0].outcome() == v1::MutationOutcome::Applied)
            .count();
    }
    let (broken,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM questionnaire_answers a JOIN questions q ON q.id = a.question_id
         WHERE a.value_kind = 'yes_no' AND q.question_type <> 'yes_no'",
    )
    .fetch_one(server.store.test_pool())
    .await
    .unwrap();
    assert_eq!(
        broken, 0,
        "yes/no answers stored for a number question ({applied} applied, {versioned} versioned)"
    );
    // Both orders happened: some edits made a version, some answers were applied.
    assert!(applied > 0, "no answer was applied");
    assert!(versioned > 0, "no edit came after answers");
    server.stop().await;
}
on_both_backends!(
    answers_pushed_during_an_in_place_edit_keep_their_meaning,
    answers_during_an_edit
);
