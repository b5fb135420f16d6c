//! Key-user accounts an operator keeps from the command line: a disabled login is refused at
//! once (its open sessions too), a reset password replaces the old one and ends its sessions.

use fieldsync_server::store::keyusers::{LoginOutcome, Role};
use fieldsync_server::store::{Problem, StoreError, now_ms};
use fieldsync_tests::*;

const PASSWORD: &str = "secret123";

async fn session(server: &TestServer, login: &str, password: &str) -> Option<String> {
    match server.store.login(login, password, now_ms()).await.unwrap() {
        LoginOutcome::Ok { token } => Some(token),
        _ => None,
    }
}

/// The status of a back-office page opened with a session cookie (303 to /login without one).
async fn page(server: &TestServer, token: &str) -> u16 {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!("{}/visits", server.url))
        .header("cookie", format!("fs_session={token}"))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn accounts(db: &TestDb) {
    let (server, _) = acme_server(db, 1).await;
    for login in ["olena", "petro"] {
        server
            .store
            .create_key_user(login, PASSWORD, Role::KeyUser, &["ACME".into()], now_ms())
            .await
            .unwrap();
    }

    // Disabled: the open session ends at once and the right password no longer logs in.
    let token = session(&server, "olena", PASSWORD).await.expect("logs in");
    assert_eq!(page(&server, &token).await, 200);
    server
        .store
        .disable_key_user("olena", now_ms())
        .await
        .unwrap();
    assert_ne!(page(&server, &token).await, 200);
    assert!(
        server
            .store
            .web_session(&token, now_ms())
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        server
            .store
            .login("olena", PASSWORD, now_ms())
            .await
            .unwrap(),
        LoginOutcome::Wrong
    );
    assert!(matches!(
        server.store.disable_key_user("nobody", now_ms()).await,
        Err(StoreError::NotFound)
    ));

    // Reset: the old password and its sessions stop working, the new one logs in; a weak
    // password is refused and changes nothing.
    let old = session(&server, "petro", PASSWORD).await.expect("logs in");
    assert!(matches!(
        server.store.reset_key_user_password("petro", "short").await,
        Err(StoreError::Refused(Problem::PasswordTooShort))
    ));
    assert_eq!(page(&server, &old).await, 200);
    server
        .store
        .reset_key_user_password("petro", "fresh-pass-42")
        .await
        .unwrap();
    assert_ne!(page(&server, &old).await, 200);
    assert!(session(&server, "petro", PASSWORD).await.is_none());
    let new = session(&server, "petro", "fresh-pass-42")
        .await
        .expect("new password");
    assert_eq!(page(&server, &new).await, 200);
    server.stop().await;
}
on_both_backends!(
    a_disabled_key_user_is_refused_at_once_and_a_reset_password_replaces_the_old,
    accounts
);

async fn mobile_user_disabled(db: &TestDb) {
    use fieldsync_protocol::v1::ErrorCode;
    use fieldsync_tests::browser::Browser;
    let (server, agents) = acme_server(db, 1).await;
    let agent = &agents[0];
    server
        .store
        .create_key_user("olena", PASSWORD, Role::KeyUser, &["ACME".into()], now_ms())
        .await
        .unwrap();
    let (phone, _) = RawClient::activated(&server.url, agent).await;
    let session = uuid::Uuid::new_v4();
    let known = Known::from_changes(&phone.pull_all(session).await);
    let mut b = MutationBuilder::new();
    let first = b.start_visit(uuid::Uuid::new_v4(), &known.outlets[0]);
    assert_eq!(phone.push(session, vec![first]).await.status, 200);
    let (id,): (i64,) = sqlx::query_as("SELECT id FROM mobile_users WHERE login = $1")
        .bind(&agent.login)
        .fetch_one(server.store.test_pool())
        .await
        .unwrap();

    // The key user disables the agent: the phone is refused at its very next request.
    let browser = Browser::start().await;
    browser.log_in(&server.url, "olena", PASSWORD).await;
    browser
        .goto(&format!("{}/mobile-users/{id}", server.url))
        .await;
    assert_eq!(browser.text("#user-state").await, "active");
    browser.click("#disable-user").await;
    assert!(
        browser
            .text("#user-state")
            .await
            .starts_with("disabled since")
    );
    let refused = phone
        .push(
            session,
            vec![b.end_visit(uuid::Uuid::new_v4(), &known.outlets[0])],
        )
        .await;
    assert_eq!(refused.status, 401);
    assert_eq!(refused.error().code(), ErrorCode::DeviceRevoked);
    assert!(matches!(
        server.store.generate_pin(&agent.login).await,
        Err(StoreError::Refused(Problem::MobileUserDisabled))
    ));
    let again = RawClient::new(&server.url)
        .activate(&agent.login, &agent.pin)
        .await;
    assert_eq!(again.status, 401);

    // Enabled again, it works with a new PIN.
    browser.click("#enable-user").await;
    assert_eq!(browser.text("#user-state").await, "active");
    let pin = server.store.generate_pin(&agent.login).await.unwrap();
    let fresh = RawClient::new(&server.url)
        .activate(&agent.login, &pin)
        .await;
    assert_eq!(fresh.status, 200);
    browser.close().await;
    server.stop().await;
}
on_both_backends!(
    a_disabled_mobile_user_is_refused_at_once_and_works_again_once_enabled,
    mobile_user_disabled
);
