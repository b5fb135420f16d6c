//! The org structure kept in the back office, in a real headless Chromium on both backends,
//! followed to the agents' real engines:
//! - a key user creates a territory and a position under it, renames the territory and the
//!   tree shows it; a move under its own descendant, a position under a team, a taken code
//!   and ending a unit with an active one below are refused with their reason and change
//!   nothing; another distributor's key user neither sees nor changes them, even by URL;
//! - a position moved to another territory takes its phone along: after its next sync the
//!   phone has exactly the new territory's outlets, while the phones of both territories keep
//!   theirs; an outlet edited afterwards still reaches the right phones, a move back brings
//!   the old outlets back, and a phone activated later on the position sees only its
//!   territory's;
//! - a mobile user deleted in the back office: its phone's next sync is refused (401
//!   DEVICE_REVOKED) at once, what it pushed stays, and its position gets a new mobile user
//!   whose phone works.

use fieldsync_protocol::v1::ErrorCode;
use fieldsync_server::Store;
use fieldsync_server::seed::SeededAgent;
use fieldsync_server::store::editors::OutletForm;
use fieldsync_server::store::keyusers::Role;
use fieldsync_server::store::now_ms;
use fieldsync_tests::browser::{Browser, ensure_leaflet};
use fieldsync_tests::*;

const PASSWORD: &str = "secret123";

/// ACME with `agents` agents and OTHER with one, the key users `acme-kp` and `other-kp`, and
/// a browser logged in as `acme-kp`; returns the server, ACME's agents, ACME's id and the
/// browser.
async fn world(db: &TestDb, agents: usize) -> (TestServer, Vec<SeededAgent>, i64, Browser) {
    ensure_leaflet();
    let (server, agents) = acme_server(db, agents).await;
    seed(&server.store, &small_world("OTHER", 1)).await;
    for (login, d) in [("acme-kp", "ACME"), ("other-kp", "OTHER")] {
        server
            .store
            .create_key_user(login, PASSWORD, Role::KeyUser, &[d.into()], now_ms())
            .await
            .unwrap();
    }
    let d = server.store.distributor_id("ACME").await.unwrap();
    let b = logged_in(&server.url, "acme-kp").await;
    (server, agents, d, b)
}

async fn logged_in(url: &str, who: &str) -> Browser {
    let b = Browser::start().await;
    b.log_in(url, who, PASSWORD).await;
    assert!(b.text("#me").await.starts_with(who));
    b
}

/// Picks `value` in the select `css`.
async fn pick(b: &Browser, css: &str, value: &str) {
    b.run(&format!(
        "document.querySelector('{css}').value = '{value}'"
    ))
    .await;
}

/// The id of ACME's org unit `code`.
async fn unit(s: &Store, code: &str) -> i64 {
    let (id,): (i64,) = sqlx::query_as("SELECT id FROM org_units WHERE code = $1")
        .bind(code)
        .fetch_one(s.test_pool())
        .await
        .unwrap();
    id
}

/// (parent, name, ended) of an org unit as stored.
async fn stored(s: &Store, id: i64) -> (Option<i64>, String, Option<i64>) {
    sqlx::query_as("SELECT parent_id, name, ended_at_ms FROM org_units WHERE id = $1")
        .bind(id)
        .fetch_one(s.test_pool())
        .await
        .unwrap()
}

/// The live outlets of a territory, by id.
async fn outlets_of(s: &Store, territory: i64) -> Vec<i64> {
    let rows: Vec<(i64,)> = sqlx::query_as(
        "SELECT id FROM outlets WHERE territory_id = $1 AND deleted = 0 ORDER BY id",
    )
    .bind(territory)
    .fetch_all(s.test_pool())
    .await
    .unwrap();
    rows.into_iter().map(|r| r.0).collect()
}

/// Creates a unit from the form on the card of `parent`: lands on the new unit's card.
async fn create_under(b: &Browser, url: &str, parent: i64, kind: &str, code: &str, name: &str) {
    b.goto(&format!("{url}/org/{parent}")).await;
    pick(b, ".create-unit select[name=kind]", kind).await;
    b.fill(".create-unit input[name=code]", code).await;
    b.fill(".create-unit input[name=name]", name).await;
    b.click(".create-unit-submit").await;
}

/// Whether the page is an error page that says `text`.
async fn refused(b: &Browser, text: &str) -> bool {
    b.text("#error-message").await.contains(text)
}

/// Moves the unit `id` under `parent` from its card.
async fn move_unit(b: &Browser, url: &str, id: i64, parent: i64) {
    b.goto(&format!("{url}/org/{id}")).await;
    pick(b, "#move-parent", &parent.to_string()).await;
    b.click("#move-unit").await;
}

/// Creates the mobile user `login` from the card of `position` and generates its PIN: the
/// agent as a phone activates with it.
async fn new_mobile_user(b: &Browser, url: &str, position: i64, login: &str) -> SeededAgent {
    b.goto(&format!("{url}/org/{position}")).await;
    b.fill("#mobile-user-login", login).await;
    b.click("#create-mobile-user").await;
    b.click("#generate-pin").await;
    SeededAgent {
        login: login.into(),
        pin: b.text("#new-pin").await,
    }
}

async fn tree_editor(db: &TestDb) {
    let (server, _, d, b) = world(db, 1).await;
    let (url, s) = (&server.url, &server.store);

    // A territory under the team, from the tree page; a position under it, from its card.
    b.goto(&format!("{url}/org")).await;
    b.run("document.querySelector('#org-ACME details.create').open = true")
        .await;
    let form = format!("#create-unit-{d}");
    let team = unit(s, "ACME-T1").await;
    pick(
        &b,
        &format!("{form} select[name=parent_id]"),
        &team.to_string(),
    )
    .await;
    pick(&b, &format!("{form} select[name=kind]"), "territory").await;
    b.fill(&format!("{form} input[name=code]"), "ACME-NEW-T")
        .await;
    b.fill(&format!("{form} input[name=name]"), "New territory")
        .await;
    b.click(&format!("{form} .create-unit-submit")).await;
    let territory = unit(s, "ACME-NEW-T").await;
    assert!(
        b.current_url()
            .await
            .ends_with(&format!("/org/{territory}"))
    );
    create_under(&b, url, territory, "position", "ACME-NEW-P", "New agent").await;
    let position = unit(s, "ACME-NEW-P").await;
    assert_eq!(stored(s, position).await.0, Some(territory));
    assert!(b.find_opt("#no-mobile-user").await.is_some());

    // Rename the territory: the tree shows the new name with the position under it.
    b.goto(&format!("{url}/org/{territory}")).await;
    b.fill("#unit-name", "North territory").await;
    b.click("#rename-unit").await;
    b.goto(&format!("{url}/org")).await;
    let node = format!("#unit-{territory}");
    assert_eq!(
        b.text(&format!("{node} > .unit-name")).await,
        "North territory"
    );
    assert_eq!(b.count(&format!("{node} #unit-{position}")).await, 1);
    assert_eq!(b.count(&format!("#unit-{team} {node}")).await, 1);

    // Refusals with their reason, changing nothing.
    move_unit(&b, url, territory, position).await;
    assert!(refused(&b, "under itself or a unit below it").await);
    move_unit(&b, url, position, team).await;
    assert!(refused(&b, "a position under a territory").await);
    let units = count(s, "org_units").await;
    create_under(&b, url, territory, "position", "ACME-P0001", "Taken").await;
    assert!(
        refused(&b, "has an org unit with this code already").await,
        "{}",
        b.text("body").await
    );
    assert_eq!(count(s, "org_units").await, units);
    b.goto(&format!("{url}/org/{territory}")).await;
    b.click("#end-unit").await;
    assert!(refused(&b, "still active").await);
    assert_eq!(
        stored(s, territory).await,
        (Some(team), "North territory".into(), None)
    );
    assert_eq!(stored(s, position).await.0, Some(territory));

    // The position first, then its territory, can be ended.
    b.goto(&format!("{url}/org/{position}")).await;
    b.click("#end-unit").await;
    assert!(b.text("#unit-state").await.starts_with("ended since"));
    b.goto(&format!("{url}/org/{territory}")).await;
    b.click("#end-unit").await;
    assert!(b.text("#unit-state").await.starts_with("ended since"));
    assert!(b.find_opt("#rename-unit").await.is_none());
    b.close().await;

    // Another distributor's key user: not in its tree, not by URL, and a post changes nothing.
    let other = logged_in(url, "other-kp").await;
    other.goto(&format!("{url}/org")).await;
    assert_eq!(other.count(&node).await, 0);
    assert_eq!(other.count("#org-OTHER").await, 1);
    assert_eq!(other.count("#org-ACME").await, 0);
    other.goto(&format!("{url}/org/{territory}")).await;
    assert!(other.find_opt("#error-message").await.is_some());
    other.goto(&format!("{url}/org")).await;
    let status = other
        .run_async(&format!(
            "const done = arguments[0];
             const csrf = document.querySelector('input[name=csrf]').value;
             fetch('/org/{team}/rename', {{method: 'POST', body: new URLSearchParams({{csrf, name: 'Stolen'}})}})
               .then(r => done(r.status));"
        ))
        .await;
    assert_eq!(status, 404);
    assert_eq!(stored(s, team).await.1, "Kyiv team 1");
    other.close().await;
    server.stop().await;
}
on_both_backends!(
    a_key_user_creates_renames_and_ends_org_units_and_bad_moves_and_other_distributors_are_refused,
    tree_editor
);

async fn moved_position(db: &TestDb) {
    let (server, agents, d, b) = world(db, 2).await;
    let (url, s) = (&server.url, &server.store);
    let (t1, t2) = (unit(s, "ACME-TR0001").await, unit(s, "ACME-TR0002").await);
    let p1 = unit(s, "ACME-P0001").await;
    let (first, second) = (
        Phone::activated(url, &agents[0]).await,
        Phone::activated(url, &agents[1]).await,
    );
    assert_eq!(first.outlet_ids(), outlets_of(s, t1).await);

    // A second position in the first territory, with a mobile user and a phone of its own.
    create_under(&b, url, t1, "position", "ACME-P-EXTRA", "Extra agent").await;
    let extra = unit(s, "ACME-P-EXTRA").await;
    let extra_agent = new_mobile_user(&b, url, extra, "acme.extra").await;
    let third = Phone::activated(url, &extra_agent).await;
    assert_eq!(third.outlet_ids(), outlets_of(s, t1).await);

    // Move the first agent's position to the second territory.
    move_unit(&b, url, p1, t2).await;
    assert!(b.text("#unit-parent").await.contains("Territory 2"));
    for phone in [&first, &second, &third] {
        phone.sync().await;
    }
    let (in_t1, in_t2) = (outlets_of(s, t1).await, outlets_of(s, t2).await);
    assert_eq!(
        first.outlet_ids(),
        in_t2,
        "the moved phone has the new territory's outlets only"
    );
    assert_eq!(
        second.outlet_ids(),
        in_t2,
        "the new territory's phone is unchanged"
    );
    assert_eq!(
        third.outlet_ids(),
        in_t1,
        "the old territory's phone keeps its outlets"
    );

    // An outlet of the second territory edited into the first: a newer change than the move's.
    let outlet = in_t2[0];
    let (_, form) = s.outlet_form(outlet).await.unwrap().unwrap();
    let form = OutletForm {
        name: "Moved later".into(),
        territory_id: Some(t1),
        ..form
    };
    s.save_outlet(d, Some(outlet), &form).await.unwrap();
    first.sync().await;
    third.sync().await;
    assert_eq!(first.outlet_name(outlet), None);
    assert_eq!(third.outlet_name(outlet).as_deref(), Some("Moved later"));

    // Back to the first territory: the phone has its outlets again, with the edited one.
    move_unit(&b, url, p1, t1).await;
    first.sync().await;
    let in_t1 = outlets_of(s, t1).await;
    assert!(in_t1.contains(&outlet));
    assert_eq!(first.outlet_ids(), in_t1);

    // A phone activated later on the position sees its territory's outlets and no others.
    let pin = s.generate_pin(&agents[0].login).await.unwrap();
    let later = SeededAgent {
        login: agents[0].login.clone(),
        pin,
    };
    let fresh = Phone::activated(url, &later).await;
    assert_eq!(fresh.outlet_ids(), in_t1);
    b.close().await;
    server.stop().await;
}
on_both_backends!(
    a_moved_position_takes_its_phone_to_the_new_territory_and_the_other_phones_keep_their_outlets,
    moved_position
);

async fn deleted_mobile_user(db: &TestDb) {
    let (server, agents, _, b) = world(db, 1).await;
    let (url, s) = (&server.url, &server.store);
    let agent = &agents[0];
    let (client, _) = RawClient::activated(url, agent).await;
    let session = uuid::Uuid::new_v4();
    let known = Known::from_changes(&client.pull_all(session).await);
    let mut m = MutationBuilder::new();
    let visit = m.start_visit(uuid::Uuid::new_v4(), &known.outlets[0]);
    assert_eq!(client.push(session, vec![visit]).await.status, 200);
    let (id, position): (i64, i64) =
        sqlx::query_as("SELECT id, position_id FROM mobile_users WHERE login = $1")
            .bind(&agent.login)
            .fetch_one(s.test_pool())
            .await
            .unwrap();

    // Deleted in the back office: its phone is refused at its very next request.
    b.goto(&format!("{url}/mobile-users/{id}")).await;
    b.click("#delete-user").await;
    assert!(b.text("#user-state").await.starts_with("deleted since"));
    let refused = client
        .push(
            session,
            vec![m.end_visit(uuid::Uuid::new_v4(), &known.outlets[0])],
        )
        .await;
    assert_eq!(refused.status, 401);
    assert_eq!(refused.error().code(), ErrorCode::DeviceRevoked);
    assert_eq!(count(s, "visits").await, 1, "what it pushed stays");
    assert!(s.generate_pin(&agent.login).await.is_err());
    b.goto(&format!("{url}/mobile-users")).await;
    assert!(!b.text("table.list").await.contains(&agent.login));

    // The position gets a new mobile user, whose phone works.
    let replacement = new_mobile_user(&b, url, position, "acme.replacement").await;
    let phone = Phone::activated(url, &replacement).await;
    assert!(!phone.outlet_ids().is_empty());
    b.goto(&format!("{url}/org/{position}")).await;
    assert_eq!(b.text("#unit-mobile-user").await, "acme.replacement");
    b.close().await;
    server.stop().await;
}
on_both_backends!(
    a_deleted_mobile_user_is_refused_at_once_and_its_position_gets_a_new_one,
    deleted_mobile_user
);
