//! Attacks that once took the server down or got past a limit, kept as regression tests:
//! concurrent guessing of passwords and PINs over two servers sharing one database, floods
//! of anonymous logins against the bounded hashing pool, guessing the current password in
//! the password-change form. On SQLite and on PostgreSQL.

use fieldsync_protocol::v1::ErrorCode;
use fieldsync_server::store::keyusers::Role;
use fieldsync_server::store::now_ms;
use fieldsync_server::store::{Store, devices::PIN_MAX_FAILURES, keyusers::MAX_FAILED_ATTEMPTS};
use fieldsync_tests::*;

const PASSWORD: &str = "secret123";

/// A counter or gauge from a server's `/metrics`.
async fn metric(url: &str, name: &str) -> u64 {
    let text = reqwest::get(format!("{url}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .unwrap_or_else(|| panic!("no metric {name}"))
        .trim()
        .parse()
        .unwrap()
}

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

fn count(statuses: &[u16], status: u16) -> usize {
    statuses.iter().filter(|s| **s == status).count()
}

/// Two servers on one database, as behind a load balancer.
async fn two_servers(db: &TestDb) -> (TestServer, TestServer) {
    let a = TestServer::start(db).await;
    let b = TestServer::start_with(Store::connect(&db.url).await.unwrap()).await;
    (a, b)
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
    assert_eq!(count(&statuses, 401), allowed - 1, "{statuses:?}");
    assert_eq!(count(&statuses, 429), 50 - (allowed - 1), "{statuses:?}");
    let checked = metric(&a.url, "fieldsync_secret_verifications_total").await
        + metric(&b.url, "fieldsync_secret_verifications_total").await;
    assert_eq!(checked, allowed as u64);
    // Locked: the right password is refused too, on either server, and not checked.
    assert_eq!(post_login(&http, &a.url, "kp", PASSWORD).await, 429);
    assert_eq!(post_login(&http, &b.url, "kp", PASSWORD).await, 429);
    assert_eq!(
        metric(&a.url, "fieldsync_secret_verifications_total").await
            + metric(&b.url, "fieldsync_secret_verifications_total").await,
        allowed as u64
    );

    // A login that does not exist answers exactly the same way: the lockout tells nothing.
    let statuses = at_once(50, &urls, |url| {
        let http = http.clone();
        async move { post_login(&http, &url, "nobody-here", "wrong-password1").await }
    })
    .await;
    assert_eq!(count(&statuses, 401), allowed - 1, "{statuses:?}");
    assert_eq!(count(&statuses, 429), 50 - (allowed - 1), "{statuses:?}");
    a.stop().await;
    b.stop().await;
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
    assert_eq!(count(&statuses, 401), allowed - 1, "{statuses:?}");
    assert_eq!(count(&statuses, 429), 50 - (allowed - 1), "{statuses:?}");
    let checked = metric(&a.url, "fieldsync_secret_verifications_total").await
        + metric(&b.url, "fieldsync_secret_verifications_total").await;
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
    assert_eq!(count(&statuses, 401), allowed - 1, "{statuses:?}");
    assert_eq!(count(&statuses, 429), 50 - (allowed - 1), "{statuses:?}");

    // A new PIN opens the login at once.
    let pin = a.store.generate_pin(&agent.login).await.unwrap();
    assert_eq!(
        RawClient::new(&b.url)
            .activate(&agent.login, &pin)
            .await
            .status,
        200
    );
    a.stop().await;
    b.stop().await;
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
    let (wrong, busy) = (count(&statuses, 401), count(&statuses, 503));
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
    // A refused login says so and when to try again.
    let resp = loop {
        let tasks: Vec<_> = (0..12)
            .map(|i| {
                let http = http.clone();
                let url = format!("{}/login", server.url);
                tokio::spawn(async move {
                    http.post(url)
                        .header("cookie", "fs_login_csrf=tok")
                        .form(&[
                            ("login", format!("again-{i}")),
                            ("password", "x".into()),
                            ("csrf", "tok".into()),
                        ])
                        .send()
                        .await
                        .unwrap()
                })
            })
            .collect();
        let mut refused = None;
        for t in tasks {
            let r = t.await.unwrap();
            if r.status() == 503 {
                refused = Some(r);
            }
        }
        if let Some(r) = refused {
            break r;
        }
    };
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
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("csrf field")
        .to_string();
    (cookie, csrf)
}

async fn password_change_lock(db: &TestDb) {
    let server = TestServer::start(db).await;
    seed(&server.store, &small_world("ACME", 1)).await;
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
