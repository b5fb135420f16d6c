//! The listener under a slow or greedy client: connections that never finish their headers
//! are closed, idle ones too, connections beyond the cap are closed at once, a body that
//! trickles in is cut off with 408, and a shutdown lets a request in flight finish. Also the
//! headers every answer carries and the health check. On SQLite and on PostgreSQL.

use std::time::Duration;

use fieldsync_server::http::ServeLimits;
use fieldsync_server::store::Store;
use fieldsync_tests::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn addr(url: &str) -> String {
    url.trim_start_matches("http://").to_string()
}

/// Reads until the peer closes; the bytes read. Panics if it stays open for `patience`
/// (the limits under test are a second; the patience is generous so a slow machine passes).
async fn read_until_closed(stream: &mut TcpStream, patience: Duration) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(patience, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return out,
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Err(_) => panic!("the connection stayed open"),
        }
    }
}

/// A server on the test database whose state `configure` adjusts first.
async fn configured(
    db: &TestDb,
    configure: impl FnOnce(&mut fieldsync_server::AppState),
) -> TestServer {
    let store = Store::connect(&db.url).await.unwrap();
    TestServer::start_configured(store, configure).await
}

/// Asserts that what came back on a raw connection starts with `status_line`.
fn assert_answered(got: &[u8], status_line: &str) {
    assert!(
        got.starts_with(status_line.as_bytes()),
        "{}",
        String::from_utf8_lossy(got)
    );
}

async fn limited_server(db: &TestDb, max_connections: usize) -> TestServer {
    configured(db, |state| {
        state.limits = ServeLimits {
            max_connections,
            header_timeout: Duration::from_secs(1),
            request_timeout: Duration::from_secs(1),
            drain_timeout: Duration::from_secs(10),
        };
    })
    .await
}

async fn slow_clients(db: &TestDb) {
    let server = limited_server(db, 40).await;
    let a = addr(&server.url);
    // Slowloris: 60 connections that start a request and never finish its headers. 40 get
    // a place; the rest are closed at once.
    let mut slow = Vec::new();
    for _ in 0..60 {
        let mut s = TcpStream::connect(&a).await.unwrap();
        let _ = s
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            .await;
        slow.push(s);
    }
    // Every one of them is closed: those beyond the cap at once, the others when the header
    // timeout runs out. None ever got an answer.
    for s in &mut slow {
        let got = read_until_closed(s, Duration::from_secs(15)).await;
        assert!(
            got.is_empty() || got.starts_with(b"HTTP/1.1 408"),
            "{}",
            String::from_utf8_lossy(&got)
        );
    }
    assert!(metric(&server.url, "fieldsync_http_connections_refused_total").await >= 20);
    // The server answers as before.
    let health = get_json(&format!("{}/healthz", server.url)).await;
    assert_eq!(health["status"], "ok");
    assert_eq!(health["epoch"], server.store.epoch().to_string());

    // A kept-alive connection that goes idle after its request is closed too.
    let mut idle = TcpStream::connect(&a).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let got = read_until_closed(&mut idle, Duration::from_secs(15)).await;
    assert_answered(&got, "HTTP/1.1 200");

    // A body that trickles in is cut off: 408, and the connection ends.
    let mut trickle = TcpStream::connect(&a).await.unwrap();
    trickle
        .write_all(
            b"POST /sync/v1/activate HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\nContent-Length: 1000\r\n\r\nab",
        )
        .await
        .unwrap();
    let got = read_until_closed(&mut trickle, Duration::from_secs(15)).await;
    assert_answered(&got, "HTTP/1.1 408");
    server.stop().await;
}
on_both_backends!(
    slow_and_idle_connections_are_closed_and_connections_beyond_the_cap_refused,
    slow_clients
);

async fn drain(db: &TestDb) {
    let server = configured(db, |state| {
        state.limits.drain_timeout = Duration::from_secs(20);
    })
    .await;
    let a = addr(&server.url);
    // A request in flight: its headers and half its body have arrived.
    let mut in_flight = TcpStream::connect(&a).await.unwrap();
    let body = "login=a&password=x&csrf=xx";
    let head = format!(
        "POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    in_flight.write_all(head.as_bytes()).await.unwrap();
    in_flight.write_all(&body.as_bytes()[..12]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let url = server.url.clone();
    let stopping = tokio::spawn(server.stop());
    tokio::time::sleep(Duration::from_millis(200)).await;
    // New connections are no longer accepted...
    assert!(reqwest::get(format!("{url}/healthz")).await.is_err());
    // ...but the request in flight finishes and gets its answer (no login CSRF cookie: 403).
    in_flight.write_all(&body.as_bytes()[12..]).await.unwrap();
    let got = read_until_closed(&mut in_flight, Duration::from_secs(15)).await;
    assert_answered(&got, "HTTP/1.1 403");
    tokio::time::timeout(Duration::from_secs(15), stopping)
        .await
        .expect("the server stopped after draining")
        .unwrap();
}
on_both_backends!(
    a_shutdown_stops_accepting_and_lets_the_request_in_flight_finish,
    drain
);

async fn headers(db: &TestDb) {
    let server = configured(db, |state| {
        let mut web = (*state.web).clone();
        web.secure_cookies = true;
        state.web = std::sync::Arc::new(web);
    })
    .await;
    let resp = reqwest::get(format!("{}/login", server.url)).await.unwrap();
    let h = resp.headers();
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["x-content-type-options"], "nosniff");
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(!csp.contains("unsafe-eval") && !csp.contains("script-src 'self' 'unsafe-inline'"));
    let cookie = h["set-cookie"].to_str().unwrap();
    assert!(cookie.contains("; Secure"), "{cookie}");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    // The sync API's answers carry them too.
    let r = reqwest::Client::new()
        .post(format!("{}/sync/v1/activate", server.url))
        .body(vec![0xff, 0xff])
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    server.stop().await;
}
on_both_backends!(
    every_answer_forbids_framing_and_sniffing_and_cookies_can_be_secure,
    headers
);

async fn epoch_everywhere(db: &TestDb) {
    let a = TestServer::start(db).await;
    let b = TestServer::start_with(Store::connect(&db.url).await.unwrap()).await;
    let health = |url: String| async move {
        get_json(&format!("{url}/healthz")).await["epoch"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(health(a.url.clone()).await, health(b.url.clone()).await);
    // `rotate-epoch` through one store (as the command does, from its own process)...
    let mut other = Store::connect(&db.url).await.unwrap();
    let new = other.rotate_epoch().await.unwrap().to_string();
    // ...reaches both running servers within seconds.
    for url in [&a.url, &b.url] {
        let mut seen = String::new();
        for _ in 0..100 {
            seen = health(url.clone()).await;
            if seen == new {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(seen, new, "{url} still serves the old epoch");
    }
    a.stop().await;
    b.stop().await;
}
on_both_backends!(
    a_rotated_epoch_reaches_every_running_server_and_healthz_shows_it,
    epoch_everywhere
);
