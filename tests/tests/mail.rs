//! Mail through a real SMTP server (aiosmtpd, started by each test), on both backends:
//! - an import's result reaches the key user who uploaded it, with the refused rows (line,
//!   reason, the row's own cells) attached, and the good rows are stored;
//! - two servers sending from one outbox at once deliver each message exactly once;
//! - a mail server that cannot be reached is retried later (attempt counted, nothing lost),
//!   a permanent refusal gives the message up, and a message a stopped server was sending is
//!   never sent again;
//! - a password-reset link arrives by mail, works once and only within its hour, two
//!   concurrent uses change the password once, and an unknown login gets the same answer
//!   and no mail;
//! - a support request's steps each mail the other side, a step from the wrong state is
//!   refused with nothing changed, another distributor sees nothing, and the morning digest
//!   goes to head office once a day (two servers at once queue one).

use fieldsync_server::Store;
use fieldsync_server::mail::{Mailer, Round};
use fieldsync_server::store::imports::ImportScope;
use fieldsync_server::store::keyusers::{LoginOutcome, Role};
use fieldsync_server::store::mail::Outgoing;
use fieldsync_server::store::now_ms;
use fieldsync_server::store::support::{NewRequest, Step};
use fieldsync_tests::smtp::{SmtpSink, attachment};
use fieldsync_tests::*;
use serde_json::Value;

const PASSWORD: &str = "secret123";

fn mailer(sink: &SmtpSink) -> Mailer {
    Mailer::new(&sink.settings()).expect("mailer")
}

/// Rows of the outbox in one state.
async fn in_state(store: &Store, state: &str) -> usize {
    store
        .mail_outbox(10_000)
        .await
        .unwrap()
        .iter()
        .filter(|m| m.state == state)
        .count()
}

fn to(m: &Value) -> String {
    m["rcpt_tos"][0].as_str().unwrap_or_default().to_string()
}

async fn key_user(store: &Store, login: &str, role: Role, codes: &[&str], email: &str) -> i64 {
    let codes: Vec<String> = codes.iter().map(|c| c.to_string()).collect();
    store
        .create_key_user(login, PASSWORD, role, &codes, now_ms())
        .await
        .unwrap();
    let id = id_of(store, login).await;
    store.set_key_user_email(id, email).await.unwrap();
    id
}

async fn id_of(store: &Store, login: &str) -> i64 {
    let token = match store.login(login, PASSWORD, now_ms()).await.unwrap() {
        LoginOutcome::Ok { token } => token,
        other => panic!("{login}: {other:?}"),
    };
    store
        .web_session(&token, now_ms())
        .await
        .unwrap()
        .unwrap()
        .id
}

async fn import_result(db: &TestDb) {
    let sink = SmtpSink::start();
    let (server, _) = acme_server(db, 1).await;
    let s = &server.store;
    key_user(s, "olena", Role::KeyUser, &["ACME"], "olena@acme.test").await;
    let d = s.distributor_id("ACME").await.unwrap();
    let csv = "code,name,address\nN-1,New shop one,Main st 1\n,No code,Side st 2\nN-3,New shop three,=cmd|x\nN-4,,Back st 4\n";
    let job = s
        .start_import_as(
            ImportScope::Distributor,
            d,
            "outlets",
            "upload:olena",
            "shops.csv",
            "csv",
            csv.to_string().into(),
            now_ms(),
            false,
        )
        .await
        .unwrap()
        .finished()
        .await
        .unwrap();
    assert_eq!((job.rows_applied, job.rows_refused), (2, 2), "{job:?}");
    assert_eq!(s.mail_waiting().await.unwrap(), 1);

    let round = mailer(&sink).deliver_due(s, now_ms()).await.unwrap();
    assert_eq!(round.sent, 1);
    let got = sink.wait_for(1).await;
    assert_eq!(got.len(), 1);
    let m = &got[0];
    assert_eq!(to(m), "olena@acme.test");
    assert!(m["subject"].as_str().unwrap().contains("outlets"), "{m}");
    assert!(m["text"].as_str().unwrap().contains("refused: 2"), "{m}");
    assert!(
        m["text"]
            .as_str()
            .unwrap()
            .contains(&format!("/imports/{}", job.id))
    );
    let (name, bytes) = attachment(m, 0);
    assert_eq!(name, format!("import-{}-refused.csv", job.id));
    let text = String::from_utf8(bytes).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "line,reason,code,name,address");
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines[1].starts_with("3,") && lines[1].ends_with(",,No code,Side st 2"));
    assert!(lines[2].starts_with("5,") && lines[2].ends_with(",N-4,,Back st 4"));
    // The good rows are stored; the one whose cell a spreadsheet would run is kept as text.
    let stored: Vec<(String, String)> =
        sqlx::query_as("SELECT code, address FROM outlets WHERE code LIKE 'N-%' ORDER BY code")
            .fetch_all(s.test_pool())
            .await
            .unwrap();
    assert_eq!(
        stored,
        [
            ("N-1".to_string(), "Main st 1".to_string()),
            ("N-3".to_string(), "=cmd|x".to_string())
        ]
    );
    assert_eq!(in_state(s, "sent").await, 1);

    // An upload by a key user without a mail address, and an import through the API, mail
    // nobody.
    key_user(s, "petro", Role::KeyUser, &["ACME"], "").await;
    for source in ["upload:petro", "api"] {
        s.start_import_as(
            ImportScope::Distributor,
            d,
            "outlets",
            source,
            "more.csv",
            "csv",
            "code,name\nN-9,Nine\n".to_string().into(),
            now_ms(),
            false,
        )
        .await
        .unwrap()
        .finished()
        .await
        .unwrap();
    }
    assert_eq!(s.mail_waiting().await.unwrap(), 0);
    server.stop().await;
}
on_both_backends!(import_result_with_refused_rows_attached, import_result);

async fn two_servers(db: &TestDb) {
    let sink = SmtpSink::start();
    let a = Store::connect(&db.url).await.unwrap();
    let b = Store::connect(&db.url).await.unwrap();
    let now = now_ms();
    for i in 0..40 {
        a.queue_mail(
            &Outgoing {
                kind: "support",
                to: format!("user{i}@acme.test"),
                subject: format!("message {i}"),
                body: format!("body {i}"),
                attachment: None,
            },
            now,
        )
        .await
        .unwrap();
    }
    let (ma, mb) = (mailer(&sink), mailer(&sink));
    // Each sender goes round until nothing is due; both at once, on separate pools.
    let run = |m: Mailer, s: Store| async move {
        let mut total = Round::default();
        loop {
            let r = m.deliver_due(&s, now).await.unwrap();
            if r == Round::default() {
                return total;
            }
            total.sent += r.sent;
        }
    };
    let (ra, rb) = tokio::join!(run(ma, a.clone()), run(mb, b.clone()));
    assert_eq!(ra.sent + rb.sent, 40, "{ra:?} {rb:?}");
    let got = sink.wait_for(40).await;
    assert_eq!(got.len(), 40);
    let mut ids: Vec<String> = got
        .iter()
        .map(|m| m["message_id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 40, "every message once");
    let mut subjects: Vec<String> = got
        .iter()
        .map(|m| m["subject"].as_str().unwrap().to_string())
        .collect();
    subjects.sort();
    subjects.dedup();
    assert_eq!(subjects.len(), 40);
    assert_eq!(in_state(&a, "sent").await, 40);

    // Claims at the same moment from both servers: no message is claimed twice.
    for i in 0..200 {
        a.queue_mail(
            &Outgoing {
                kind: "support",
                to: format!("many{i}@acme.test"),
                subject: "x".into(),
                body: "y".into(),
                attachment: None,
            },
            now,
        )
        .await
        .unwrap();
    }
    let claims = (0..8).map(|i| {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        async move {
            store
                .claim_mail(&format!("server-{i}"), now, 40)
                .await
                .unwrap()
        }
    });
    let mut claimed: Vec<i64> = futures::future::join_all(claims)
        .await
        .into_iter()
        .flatten()
        .map(|m| m.id)
        .collect();
    // A claim may come back short when rows it locked were taken meanwhile (PostgreSQL
    // drops them after its LIMIT); what is left goes to the next rounds.
    loop {
        let more = a.claim_mail("server-late", now, 40).await.unwrap();
        if more.is_empty() {
            break;
        }
        claimed.extend(more.iter().map(|m| m.id));
    }
    let mut unique = claimed.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), claimed.len(), "a message claimed twice");
    assert_eq!(claimed.len(), 200);
    a.close().await;
    b.close().await;
}
on_both_backends!(two_servers_send_each_message_once, two_servers);

async fn retries(db: &TestDb) {
    let sink = SmtpSink::start();
    let s = Store::connect(&db.url).await.unwrap();
    let now = now_ms();
    let letter = |to: &str| Outgoing {
        kind: "support",
        to: to.into(),
        subject: "hello".into(),
        body: "text".into(),
        attachment: Some(("notes.txt".into(), b"attached".to_vec())),
    };
    s.queue_mail(&letter("anna@acme.test"), now).await.unwrap();

    // No mail server listening: the attempt is counted and the message waits.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut settings = sink.settings();
    settings.port = closed;
    let down = Mailer::new(&settings).unwrap();
    let r = down.deliver_due(&s, now).await.unwrap();
    assert_eq!(r.retried, 1, "{r:?}");
    let row = &s.mail_outbox(10).await.unwrap()[0];
    assert_eq!((row.state.as_str(), row.attempts), ("queued", 1));
    assert!(!row.last_error.is_empty());
    // Not due again before its pause.
    let up = mailer(&sink);
    assert_eq!(
        up.deliver_due(&s, now + 1_000).await.unwrap(),
        Round::default()
    );
    let r = up.deliver_due(&s, now + 61_000).await.unwrap();
    assert_eq!(r.sent, 1);
    let got = sink.wait_for(1).await;
    assert_eq!(got.len(), 1);
    assert_eq!(
        attachment(&got[0], 0),
        ("notes.txt".into(), b"attached".to_vec())
    );
    assert_eq!(s.mail_outbox(10).await.unwrap()[0].attempts, 2);

    // A permanent refusal (550) is not tried again.
    s.queue_mail(&letter("reject-me@acme.test"), now)
        .await
        .unwrap();
    let r = up.deliver_due(&s, now + 62_000).await.unwrap();
    assert_eq!(r.given_up, 1, "{r:?}");
    assert_eq!(in_state(&s, "failed").await, 1);

    // A server that stops gives back what it claimed and had not begun to send: those are
    // queued again with their attempt uncounted; the one it was sending is not.
    for who in ["ivan@acme.test", "iryna@acme.test", "ihor@acme.test"] {
        s.queue_mail(&letter(who), now).await.unwrap();
    }
    let claimed = s
        .claim_mail("a-stopping-server", now + 62_000, 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 3);
    let back = s
        .unclaim_mail("a-stopping-server", None, claimed[0].id)
        .await
        .unwrap();
    assert_eq!(back, 2);
    let rows = s.mail_outbox(100).await.unwrap();
    let state_of = |id: i64| {
        let r = rows.iter().find(|r| r.id == id).unwrap();
        (r.state.clone(), r.attempts)
    };
    assert_eq!(state_of(claimed[0].id), ("sending".into(), 1));
    assert_eq!(state_of(claimed[1].id), ("queued".into(), 0));
    assert_eq!(state_of(claimed[2].id), ("queued".into(), 0));
    let r = up.deliver_due(&s, now + 62_000).await.unwrap();
    assert_eq!(r.sent, 2);
    s.mail_housekeeping(now + 62_000 + fieldsync_server::store::mail::LEASE_MS + 1)
        .await
        .unwrap();

    // A server that stopped while sending: the message is given up, never sent again.
    s.queue_mail(&letter("bohdan@acme.test"), now)
        .await
        .unwrap();
    let claimed = s.claim_mail("a-server-that-dies", now, 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    let (given_up, _) = s
        .mail_housekeeping(now + fieldsync_server::store::mail::LEASE_MS + 1)
        .await
        .unwrap();
    assert_eq!(given_up, 1);
    assert_eq!(
        up.deliver_due(&s, now + 10 * 60 * 60 * 1000).await.unwrap(),
        Round::default()
    );
    assert_eq!(sink.messages().len(), 3);
    assert_eq!(in_state(&s, "failed").await, 3);
    s.close().await;
}
on_both_backends!(unreachable_server_retried_refusal_given_up, retries);

/// A page of the password forms: (status, body, CSRF cookie).
async fn form_page(http: &reqwest::Client, url: &str) -> (u16, String, String) {
    let r = http.get(url).send().await.unwrap();
    let status = r.status().as_u16();
    let cookie = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix("fs_reset_csrf="))
        .map(|v| v.split(';').next().unwrap().to_string())
        .unwrap_or_default();
    (status, r.text().await.unwrap(), cookie)
}

async fn post_form(
    http: &reqwest::Client,
    url: &str,
    csrf: &str,
    fields: &[(&str, &str)],
) -> (u16, String) {
    let mut body: Vec<(&str, &str)> = fields.to_vec();
    body.push(("csrf", csrf));
    let r = http
        .post(url)
        .header("cookie", format!("fs_reset_csrf={csrf}"))
        .form(&body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// The link in a mail, on the test server.
fn link_in(m: &Value, server: &TestServer) -> String {
    let text = m["text"].as_str().unwrap();
    let start = text.find("http://fieldsync.test/").expect("a link");
    text[start..]
        .split_whitespace()
        .next()
        .unwrap()
        .replace("http://fieldsync.test", &server.url)
}

async fn password_reset(db: &TestDb) {
    let sink = SmtpSink::start();
    let (server, _) = acme_server(db, 1).await;
    // Links point at the public address; the test opens them on the test server.
    let s = server
        .store
        .clone()
        .with_public_url("http://fieldsync.test");
    server.stop().await;
    let server = TestServer::start_configured(s.clone(), |st| st.mail_enabled = true).await;
    key_user(&s, "olena", Role::KeyUser, &["ACME"], "olena@acme.test").await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let forgot = format!("{}/password/forgot", server.url);

    // The login page offers the link; asking for an unknown login answers the same, sends
    // nothing.
    let login_page = http
        .get(format!("{}/login", server.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(login_page.contains("/password/forgot"));
    let (_, _, csrf) = form_page(&http, &forgot).await;
    let (status, unknown) = post_form(&http, &forgot, &csrf, &[("login", "nobody")]).await;
    assert_eq!(status, 200);
    let (status, known) = post_form(&http, &forgot, &csrf, &[("login", "olena")]).await;
    assert_eq!(status, 200);
    let message = |page: &str| page.split("<form").next().unwrap().to_string();
    assert_eq!(
        message(&unknown),
        message(&known),
        "the answer tells nothing about the login"
    );
    // Without the form's token: refused.
    let r = http
        .post(&forgot)
        .header("cookie", format!("fs_reset_csrf={csrf}"))
        .form(&[("login", "olena"), ("csrf", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);

    mailer(&sink).deliver_due(&s, now_ms()).await.unwrap();
    let got = sink.wait_for(1).await;
    assert_eq!(got.len(), 1, "one link for the real login only");
    assert_eq!(to(&got[0]), "olena@acme.test");
    let link = link_in(&got[0], &server);
    assert!(
        link.starts_with(&format!("{}/password/reset?token=", server.url)),
        "{link}"
    );

    // The link opens the form; a weak password is refused and the link still works.
    let (status, page, csrf) = form_page(&http, &link).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("olena"));
    let token = link.split("token=").nth(1).unwrap();
    let reset = format!("{}/password/reset", server.url);
    let (status, _) = post_form(
        &http,
        &reset,
        &csrf,
        &[("token", token), ("password", "short"), ("repeat", "short")],
    )
    .await;
    assert_eq!(status, 400);
    // Two tabs set a new password with the same link at once: one of them does.
    let first = [
        ("token", token),
        ("password", "newpass111"),
        ("repeat", "newpass111"),
    ];
    let second = [
        ("token", token),
        ("password", "newpass222"),
        ("repeat", "newpass222"),
    ];
    let (a, b) = tokio::join!(
        post_form(&http, &reset, &csrf, &first),
        post_form(&http, &reset, &csrf, &second),
    );
    let mut statuses = [a.0, b.0];
    statuses.sort();
    assert_eq!(statuses, [200, 400], "{a:?} {b:?}");
    let winner = if a.0 == 200 {
        "newpass111"
    } else {
        "newpass222"
    };
    let loser = if a.0 == 200 {
        "newpass222"
    } else {
        "newpass111"
    };
    assert!(matches!(
        s.login("olena", winner, now_ms()).await.unwrap(),
        LoginOutcome::Ok { .. }
    ));
    assert_eq!(
        s.login("olena", loser, now_ms()).await.unwrap(),
        LoginOutcome::Wrong
    );
    assert_eq!(
        s.login("olena", PASSWORD, now_ms()).await.unwrap(),
        LoginOutcome::Wrong
    );
    // Used: the link no longer opens the form.
    assert_eq!(form_page(&http, &link).await.0, 400);

    // A new link expires after an hour.
    let (_, _, csrf) = form_page(&http, &forgot).await;
    post_form(&http, &forgot, &csrf, &[("login", "olena")]).await;
    mailer(&sink).deliver_due(&s, now_ms()).await.unwrap();
    let got = sink.wait_for(2).await;
    let link = link_in(&got[1], &server);
    assert_eq!(form_page(&http, &link).await.0, 200);
    server.state.clock.advance(61 * 60 * 1000);
    assert_eq!(form_page(&http, &link).await.0, 400);

    // At most three links an hour for one login (the hour above has passed: a new run).
    for _ in 0..4 {
        let (status, _) = post_form(&http, &forgot, &csrf, &[("login", "olena")]).await;
        assert_eq!(status, 200);
    }
    assert_eq!(
        s.mail_waiting().await.unwrap(),
        3,
        "the fourth ask sends nothing"
    );
    server.stop().await;
}
on_both_backends!(
    password_reset_link_works_once_within_the_hour,
    password_reset
);

async fn support(db: &TestDb) {
    let sink = SmtpSink::start();
    let (server, _) = acme_server(db, 1).await;
    let s = &server.store;
    seed(s, &small_world("BETA", 1)).await;
    let hq = key_user(s, "hq", Role::HeadOffice, &[], "hq@brand.test").await;
    key_user(s, "hq2", Role::HeadOffice, &[], "").await;
    let olena = key_user(s, "olena", Role::KeyUser, &["ACME"], "olena@acme.test").await;
    let d = s.distributor_id("ACME").await.unwrap();
    let letter = |step: &'static str, who: &'static str| {
        move |id: i64, lang: &str, to: &str| {
            fieldsync_server::mail::letters::support_step(
                lang,
                to,
                id,
                "Prices wrong",
                step,
                who,
                "see the file",
                "http://fs",
            )
        }
    };
    let id = s
        .open_support_request(
            olena,
            &NewRequest {
                distributor_id: d,
                subject: "Prices wrong".into(),
                text: "The price of P-1 is old".into(),
                page: "/products".into(),
                attachment: Some(("shot.png".into(), "image/png".into(), vec![1, 2, 3])),
            },
            now_ms(),
            &letter("opened", "olena"),
        )
        .await
        .unwrap();
    // Confirming before an answer is refused and changes nothing.
    let before = s.support_request(id).await.unwrap().unwrap();
    assert_eq!(before.state, "open");
    assert!(
        s.support_step(
            id,
            olena,
            Step::Confirm,
            "",
            now_ms(),
            &letter("confirmed", "olena")
        )
        .await
        .is_err()
    );
    assert_eq!(s.support_request(id).await.unwrap().unwrap().state, "open");
    assert_eq!(s.support_messages(id).await.unwrap().len(), 1);

    s.support_step(
        id,
        hq,
        Step::Answer,
        "Fixed the price list",
        now_ms(),
        &letter("answer", "hq"),
    )
    .await
    .unwrap();
    s.support_step(
        id,
        olena,
        Step::Reopen,
        "Still old on phones",
        now_ms(),
        &letter("reopened", "olena"),
    )
    .await
    .unwrap();
    s.support_step(
        id,
        hq,
        Step::Answer,
        "Sync the phones",
        now_ms(),
        &letter("answer", "hq"),
    )
    .await
    .unwrap();
    s.support_step(
        id,
        olena,
        Step::Confirm,
        "",
        now_ms(),
        &letter("confirmed", "olena"),
    )
    .await
    .unwrap();
    let r = s.support_request(id).await.unwrap().unwrap();
    assert_eq!(r.state, "closed");
    let kinds: Vec<String> = s
        .support_messages(id)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.kind)
        .collect();
    assert_eq!(
        kinds,
        ["opened", "answer", "reopened", "answer", "confirmed"]
    );
    assert_eq!(
        s.support_attachment(id).await.unwrap().unwrap().2,
        vec![1, 2, 3]
    );

    // Mail: opened → hq, answer → olena, reopened → hq, answer → olena, confirmed → hq (the
    // head office user without an address gets nothing).
    mailer(&sink).deliver_due(s, now_ms()).await.unwrap();
    let got = sink.wait_for(5).await;
    let who: Vec<String> = got.iter().map(to).collect();
    assert_eq!(
        who,
        [
            "hq@brand.test",
            "olena@acme.test",
            "hq@brand.test",
            "olena@acme.test",
            "hq@brand.test"
        ]
    );
    assert!(
        got[0]["subject"]
            .as_str()
            .unwrap()
            .contains(&format!("#{id}"))
    );

    // The morning digest: before 08:00 in head office's zone nothing, after it one, once,
    // even with two servers at it.
    sqlx::query("UPDATE key_users SET timezone = 'UTC'")
        .execute(s.test_pool())
        .await
        .unwrap();
    let id2 = s
        .open_support_request(
            olena,
            &NewRequest {
                distributor_id: d,
                subject: "Route missing".into(),
                text: "Tuesday has no route".into(),
                ..Default::default()
            },
            now_ms(),
            &letter("opened", "olena"),
        )
        .await
        .unwrap();
    let day = jiff_day_ms("2026-12-08");
    let digest = |lang: &str, to: &str, day: &str, open: &[(i64, String, String, String, i64)]| {
        fieldsync_server::mail::letters::digest(lang, to, day, open, "http://fs")
    };
    assert_eq!(
        s.queue_support_digests(day + 7 * 3_600_000, digest)
            .await
            .unwrap(),
        0
    );
    let b = Store::connect(&db.url).await.unwrap();
    let at = day + 8 * 3_600_000 + 60_000;
    let (x, y) = tokio::join!(
        s.queue_support_digests(at, digest),
        b.queue_support_digests(at, digest)
    );
    assert_eq!(x.unwrap() + y.unwrap(), 1);
    assert_eq!(
        s.queue_support_digests(at + 3_600_000, digest)
            .await
            .unwrap(),
        0
    );
    mailer(&sink).deliver_due(s, at).await.unwrap();
    let got = sink.wait_for(7).await;
    let last = got.last().unwrap();
    assert_eq!(to(last), "hq@brand.test");
    let text = last["text"].as_str().unwrap();
    assert!(
        text.contains(&format!("#{id2}")) && text.contains("Route missing"),
        "{text}"
    );
    assert!(
        !text.contains(&format!("#{id} ")),
        "the closed request is not in it: {text}"
    );
    b.close().await;
    server.stop().await;
}
on_both_backends!(support_request_steps_mail_the_other_side, support);

/// Midnight UTC of a day, in ms.
fn jiff_day_ms(day: &str) -> i64 {
    use fieldsync_protocol::dates;
    dates::day_start_ms(dates::parse(day).unwrap(), "UTC").unwrap()
}

/// Saves a screenshot when `FIELDSYNC_WEB_SHOTS` names a directory (`.ci/run` keeps them).
async fn shot(b: &fieldsync_tests::browser::Browser, db: &TestDb, name: &str) {
    if let Ok(dir) = std::env::var("FIELDSYNC_WEB_SHOTS") {
        let _ = std::fs::create_dir_all(&dir);
        let path = std::path::Path::new(&dir).join(format!("{name}-{:?}.png", db.backend));
        b.screenshot(&path).await;
    }
}

async fn support_in_browser(db: &TestDb) {
    use fieldsync_tests::browser::Browser;
    let sink = SmtpSink::start();
    let (server, _) = acme_server(db, 1).await;
    let s = server.store.clone();
    seed(&s, &small_world("BETA", 1)).await;
    key_user(&s, "hq", Role::HeadOffice, &[], "hq@brand.test").await;
    key_user(&s, "olena", Role::KeyUser, &["ACME"], "olena@acme.test").await;
    key_user(&s, "beta-kp", Role::KeyUser, &["BETA"], "").await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("screen.txt");
    std::fs::write(&file, "<script>alert(1)</script> the price is old").unwrap();
    let url = &server.url;

    // The key user opens a request from the products page, a file attached.
    let b = Browser::start().await;
    b.log_in(url, "olena", PASSWORD).await;
    b.goto(&format!("{url}/products")).await;
    b.click("a[href='/support']").await;
    b.run("document.getElementById('new-request').open = true")
        .await;
    assert_eq!(
        b.run("return document.getElementById('support-page').value")
            .await,
        serde_json::Value::String("/products".into())
    );
    b.fill("#support-subject", "Old price <b>P-1</b>").await;
    b.fill("#support-text", "The phones show last month's price")
        .await;
    b.fill("#support-file", file.to_str().unwrap()).await;
    b.click("#support-submit").await;
    assert_eq!(b.text("#support-state").await, "open");
    assert!(
        b.text("h1").await.contains("Old price <b>P-1</b>"),
        "escaped"
    );
    let id: i64 = b
        .current_url()
        .await
        .rsplit('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let file_href = format!("{url}/support/{id}/file");
    let fetched = b
        .run_async(&format!(
            "const done = arguments[0]; fetch('{file_href}').then(r => r.text().then(t => done([r.headers.get('content-disposition'), t])));"
        ))
        .await;
    assert_eq!(fetched[0], "attachment; filename=\"screen.txt\"");
    assert_eq!(fetched[1], "<script>alert(1)</script> the price is old");
    // Not the requester's to answer.
    assert_eq!(b.count("#answer-form").await, 0);
    shot(&b, db, "support-opened").await;
    b.close().await;

    // Another distributor's key user sees neither the request nor its file.
    let other = Browser::start().await;
    other.log_in(url, "beta-kp", PASSWORD).await;
    other.goto(&format!("{url}/support")).await;
    assert_eq!(other.text("#row-count").await, "0 rows");
    other.goto(&format!("{url}/support/{id}")).await;
    assert!(other.find_opt("#error-message").await.is_some());
    other.close().await;

    // Head office finds it in the list (filtered to open ones) and answers.
    let hq = Browser::start().await;
    hq.log_in(url, "hq", PASSWORD).await;
    hq.goto(&format!("{url}/support?f.state=open")).await;
    assert_eq!(hq.text("#row-count").await, "1 rows");
    hq.click(&format!("#list a[href='/support/{id}']")).await;
    hq.fill("#answer-text", "Fixed; sync the phones").await;
    hq.click("#answer-submit").await;
    assert_eq!(hq.text("#support-state").await, "answered");
    hq.close().await;

    // The requester confirms the fix.
    let b = Browser::start().await;
    b.log_in(url, "olena", PASSWORD).await;
    b.goto(&format!("{url}/support/{id}")).await;
    assert!(
        b.text("#support-thread")
            .await
            .contains("Fixed; sync the phones")
    );
    b.click("#confirm-submit").await;
    assert_eq!(b.text("#support-state").await, "closed");
    assert_eq!(b.count("#confirm-form").await, 0);
    assert_eq!(b.count("#reopen-form").await, 1);
    shot(&b, db, "support-closed").await;
    b.close().await;

    // Opened → head office, answered → requester, confirmed → head office.
    mailer(&sink).deliver_due(&s, now_ms()).await.unwrap();
    let got = sink.wait_for(3).await;
    let who: Vec<String> = got.iter().map(to).collect();
    assert_eq!(who, ["hq@brand.test", "olena@acme.test", "hq@brand.test"]);
    assert!(
        got[1]["text"]
            .as_str()
            .unwrap()
            .contains("Fixed; sync the phones")
    );
    server.stop().await;
}
on_both_backends!(
    support_request_round_trip_in_the_browser,
    support_in_browser
);

async fn rdc_failures(db: &TestDb) {
    use fieldsync_server::store::rdc::RdcForm;
    let sink = SmtpSink::start();
    let (server, _) = acme_server(db, 1).await;
    let s = &server.store;
    let d = s.distributor_id("ACME").await.unwrap();
    key_user(s, "olena", Role::KeyUser, &["ACME"], "olena@acme.test").await;
    let codes: Vec<(String,)> =
        sqlx::query_as("SELECT code FROM outlets WHERE distributor_id = $1 ORDER BY id LIMIT 2")
            .bind(d)
            .fetch_all(s.test_pool())
            .await
            .unwrap();
    let (rdc_code, shop) = (codes[0].0.clone(), codes[1].0.clone());
    let (product,): (String,) =
        sqlx::query_as("SELECT code FROM products WHERE distributor_id = $1 ORDER BY id LIMIT 1")
            .bind(d)
            .fetch_one(s.test_pool())
            .await
            .unwrap();
    let api = ApiClient::new(&server, "ACME", "erp").await;
    // By the outlets' orders: there are none in December, so the line cannot be split.
    let rdc = s
        .save_rdc(
            d,
            None,
            &RdcForm {
                outlet_code: rdc_code.clone(),
                name: "Central RDC".into(),
                method: "orders".into(),
                active: true,
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .unwrap();
    let attach = format!("code,name,rdc_code,rdc_share\n{shop},Shop,{rdc_code},100\n");
    assert_eq!(api.import("outlets?format=csv", attach).await.0, 200);
    let sale = format!(
        "invoice_number,invoice_date,outlet_code,product_code,quantity,amount\nRF-1,2026-12-02,{rdc_code},{product},2,50\n"
    );
    assert_eq!(api.import("sales?format=csv", sale).await.0, 200);

    // The key user runs it again from the RDC's card.
    let token = match s.login("olena", PASSWORD, now_ms()).await.unwrap() {
        LoginOutcome::Ok { token } => token,
        other => panic!("{other:?}"),
    };
    let csrf = s
        .web_session(&token, now_ms())
        .await
        .unwrap()
        .unwrap()
        .csrf_token;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = http
        .post(format!("{}/rdcs/{rdc}/run", server.url))
        .header("cookie", format!("fs_session={token}"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("from", "2026-12-01"),
            ("to", "2026-12-31"),
            ("invoices", "RF-1"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    mailer(&sink).deliver_due(s, now_ms()).await.unwrap();
    let got = sink.wait_for(1).await;
    assert_eq!(got.len(), 1);
    assert_eq!(to(&got[0]), "olena@acme.test");
    assert!(got[0]["subject"].as_str().unwrap().contains('1'));
    let (name, bytes) = attachment(&got[0], 0);
    assert!(
        name.starts_with("rdc-run-") && name.ends_with("-failures.csv"),
        "{name}"
    );
    let text = String::from_utf8(bytes).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "invoice,line,reason");
    assert_eq!(lines.len(), 2, "{text}");
    assert!(
        lines[1].starts_with("RF-1,1,") && lines[1].contains("no orders"),
        "{text}"
    );
    server.stop().await;
}
on_both_backends!(
    rdc_failures_are_mailed_with_the_lines_attached,
    rdc_failures
);

async fn email_change(db: &TestDb) {
    let sink = SmtpSink::start();
    let (server, _) = acme_server(db, 1).await;
    let s = &server.store;
    let id = key_user(s, "olena", Role::KeyUser, &["ACME"], "olena@acme.test").await;
    let token = match s.login("olena", PASSWORD, now_ms()).await.unwrap() {
        LoginOutcome::Ok { token } => token,
        other => panic!("{other:?}"),
    };
    let csrf = s
        .web_session(&token, now_ms())
        .await
        .unwrap()
        .unwrap()
        .csrf_token;
    let http = reqwest::Client::new();
    let post = |fields: Vec<(&'static str, String)>| {
        let (http, url, token, csrf) = (
            http.clone(),
            server.url.clone(),
            token.clone(),
            csrf.clone(),
        );
        async move {
            let mut fields = fields;
            fields.push(("csrf", csrf));
            http.post(format!("{url}/settings/email"))
                .header("cookie", format!("fs_session={token}"))
                .form(&fields)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    // A borrowed session without the password cannot point reset links elsewhere.
    let status = post(vec![
        ("email", "thief@evil.test".into()),
        ("current", "wrong-guess1".into()),
    ])
    .await;
    assert_eq!(status, 400);
    assert_eq!(s.key_user_email(id).await.unwrap(), "olena@acme.test");
    // Not an address: refused.
    let status = post(vec![
        ("email", "not an address".into()),
        ("current", PASSWORD.into()),
    ])
    .await;
    assert_eq!(status, 400);
    // With the password: changed, and the old address is told.
    let status = post(vec![
        ("email", "olena@new.test".into()),
        ("current", PASSWORD.into()),
    ])
    .await;
    assert_eq!(status, 200);
    assert_eq!(s.key_user_email(id).await.unwrap(), "olena@new.test");
    mailer(&sink).deliver_due(s, now_ms()).await.unwrap();
    let got = sink.wait_for(1).await;
    assert_eq!(got.len(), 1);
    assert_eq!(to(&got[0]), "olena@acme.test");
    assert!(got[0]["text"].as_str().unwrap().contains("olena@new.test"));
    server.stop().await;
}
on_both_backends!(
    an_email_change_needs_the_password_and_tells_the_old_address,
    email_change
);
