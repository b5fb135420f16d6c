//! Warehouses and week plans kept in the back office, in a real headless Chromium on both
//! backends, followed to the agents' real engines:
//! - warehouses: a key user creates one (a taken code is refused), binds it to a position and
//!   that position's phone gets it after its next sync, renamed it gets the new name,
//!   deactivated it drops it and reactivated gets it back, unbound drops it; another
//!   position's phone never has it;
//! - week plans: a key user sets a position's outlets per weekday and generates two weeks of
//!   routes: the phone gets each generated date's route with its stops in order and loses the
//!   routes of weekdays without outlets, a route that has a visit is kept and the page says
//!   so, and nothing outside the range or of another position changes. An outlet of another
//!   distributor or of another territory, and more than 13 weeks, are refused with their
//!   reason and change nothing.
//!
//! Another distributor's key user cannot open either page, and its posts are answered 404.

use fieldsync_server::Store;
use fieldsync_server::seed::SeededAgent;
use fieldsync_server::store::editors::OutletForm;
use fieldsync_server::store::keyusers::Role;
use fieldsync_server::store::now_ms;
use fieldsync_tests::browser::{Browser, ensure_leaflet};
use fieldsync_tests::*;

const PASSWORD: &str = "secret123";

/// ACME with `agents` agents and OTHER with one, the key users `acme-kp` and `other-kp`, and
/// a browser logged in as `acme-kp`; returns the server, ACME's agents and the browser.
async fn world(db: &TestDb, agents: usize) -> (TestServer, Vec<SeededAgent>, Browser) {
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
    let b = logged_in(&server.url, "acme-kp").await;
    (server, agents, b)
}

async fn logged_in(url: &str, who: &str) -> Browser {
    let b = Browser::start().await;
    b.log_in(url, who, PASSWORD).await;
    assert!(b.text("#me").await.starts_with(who));
    b
}

/// Whether the page is an error page that says `text`.
async fn refused(b: &Browser, text: &str) -> bool {
    b.text("#error-message").await.contains(text)
}

/// The id of the org unit `code`.
async fn unit(s: &Store, code: &str) -> i64 {
    let (id,): (i64,) = sqlx::query_as("SELECT id FROM org_units WHERE code = $1")
        .bind(code)
        .fetch_one(s.test_pool())
        .await
        .unwrap();
    id
}

/// The warehouses on a phone, as (code, name).
fn phone_warehouses(phone: &Phone) -> Vec<(String, String)> {
    let all = phone.engine.warehouses().unwrap();
    let mut seen: Vec<_> = all.into_iter().map(|w| (w.code, w.name)).collect();
    seen.sort();
    seen
}

/// Whether the phone holds the warehouse `code`, and by which name.
fn on_phone(phone: &Phone, code: &str) -> Option<String> {
    phone_warehouses(phone)
        .into_iter()
        .find(|(c, _)| c == code)
        .map(|(_, n)| n)
}

/// `other-kp` opens `path` of ACME's and posts `body` (form fields, with its own CSRF token)
/// to `post`: an error page, and 404 for the post.
async fn hidden_from_other(url: &str, path: &str, post: &str, body: &str) {
    let other = logged_in(url, "other-kp").await;
    other.goto(&format!("{url}{path}")).await;
    assert!(other.find_opt("#error-message").await.is_some());
    other.goto(&format!("{url}/routes")).await;
    let status = other
        .run_async(&format!(
            "const done = arguments[0];
             const csrf = document.querySelector('input[name=csrf]').value;
             fetch('{post}', {{method: 'POST', body: new URLSearchParams({{csrf, {body}}})}})
               .then(r => done(r.status));"
        ))
        .await;
    assert_eq!(status, 404, "{post}");
    other.close().await;
}

async fn warehouse_editor(db: &TestDb) {
    let (server, agents, b) = world(db, 2).await;
    let (url, s) = (&server.url, &server.store);
    let (first, second) = (
        Phone::activated(url, &agents[0]).await,
        Phone::activated(url, &agents[1]).await,
    );
    let seeded = phone_warehouses(&first);
    assert_eq!(seeded.len(), 2, "the seed binds two warehouses");
    let position = unit(s, "ACME-P0001").await;

    // A new warehouse from the list; its name is shown as typed, not as markup.
    b.goto(&format!("{url}/warehouses")).await;
    b.run("document.getElementById('create-warehouse').open = true")
        .await;
    b.fill("#warehouse-code", "ACME-W9").await;
    b.fill("#warehouse-name", "North <b>depot</b>").await;
    b.click("#save-new-warehouse").await;
    assert_eq!(b.text("#warehouse-code").await, "ACME-W9");
    assert_eq!(b.text("h1").await, "North <b>depot</b>");
    assert_eq!(b.text("#warehouse-state").await, "active");
    let card = b.current_url().await;
    let id: i64 = card.rsplit('/').next().unwrap().parse().unwrap();

    // The same code again is refused and creates nothing.
    let warehouses = count(s, "warehouses").await;
    b.goto(&format!("{url}/warehouses")).await;
    b.run("document.getElementById('create-warehouse').open = true")
        .await;
    b.fill("#warehouse-code", "ACME-W9").await;
    b.fill("#warehouse-name", "Twin").await;
    b.click("#save-new-warehouse").await;
    assert!(refused(&b, "has a warehouse with this code already").await);
    assert_eq!(count(s, "warehouses").await, warehouses);

    // Bound to the first position: its phone gets it, the other phone does not.
    b.goto(&card).await;
    b.run(&format!(
        "document.querySelector('select[name=position_id]').value = '{position}'"
    ))
    .await;
    b.click("#bind-position").await;
    assert_eq!(b.count(&format!("#bound-{position}")).await, 1);
    first.sync().await;
    second.sync().await;
    assert_eq!(
        on_phone(&first, "ACME-W9").as_deref(),
        Some("North <b>depot</b>")
    );
    assert_eq!(on_phone(&second, "ACME-W9"), None);

    // Renamed: the phone follows.
    b.fill("#warehouse-name", "North depot").await;
    b.click("#rename-warehouse").await;
    first.sync().await;
    assert_eq!(on_phone(&first, "ACME-W9").as_deref(), Some("North depot"));

    // Deactivated: the phone drops it, the binding stays; reactivated: it is back.
    b.click("#deactivate-warehouse").await;
    assert_eq!(b.text("#warehouse-state").await, "inactive");
    assert_eq!(b.count(&format!("#bound-{position}")).await, 1);
    first.sync().await;
    assert_eq!(on_phone(&first, "ACME-W9"), None);
    assert_eq!(phone_warehouses(&first), seeded);
    b.click("#reactivate-warehouse").await;
    assert_eq!(b.text("#warehouse-state").await, "active");
    first.sync().await;
    assert_eq!(on_phone(&first, "ACME-W9").as_deref(), Some("North depot"));

    // Unbound: the phone drops it with its next sync.
    b.click(&format!("#bound-{position} .unbind-position"))
        .await;
    assert_eq!(b.count(&format!("#bound-{position}")).await, 0);
    first.sync().await;
    assert_eq!(on_phone(&first, "ACME-W9"), None);
    assert_eq!(phone_warehouses(&first), seeded);
    second.sync().await;
    assert_eq!(on_phone(&second, "ACME-W9"), None);

    // The list shows it with its state.
    b.goto(&format!("{url}/warehouses")).await;
    assert!(b.text("table.list").await.contains("ACME-W9"));
    b.close().await;

    // Another distributor's key user: not in its list, not by URL, a post changes nothing.
    let other = logged_in(url, "other-kp").await;
    other.goto(&format!("{url}/warehouses")).await;
    assert!(!other.text("table.list").await.contains("ACME-W9"));
    other.close().await;
    let rename = format!("/warehouses/{id}/rename");
    hidden_from_other(url, &format!("/warehouses/{id}"), &rename, "name: 'Stolen'").await;
    let bind = format!("/warehouses/{id}/bind");
    let body = format!("position_id: '{position}'");
    hidden_from_other(url, &format!("/warehouses/{id}"), &bind, &body).await;
    let (name,): (String,) = sqlx::query_as("SELECT name FROM warehouses WHERE id = $1")
        .bind(id)
        .fetch_one(s.test_pool())
        .await
        .unwrap();
    assert_eq!(name, "North depot");
    let (bound,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM warehouse_positions WHERE warehouse_id = $1")
            .bind(id)
            .fetch_one(s.test_pool())
            .await
            .unwrap();
    assert_eq!(bound, 0);
    server.stop().await;
}
on_both_backends!(
    a_key_user_creates_binds_renames_deactivates_and_unbinds_a_warehouse_and_only_its_positions_phone_follows,
    warehouse_editor
);

/// Every route of a position with its stops' outlet ids, by date.
async fn routes_of(s: &Store, position: i64) -> Vec<(String, Vec<i64>)> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT r.route_date, s.outlet_id FROM routes r JOIN route_stops s ON s.route_id = r.id
         WHERE r.position_id = $1 ORDER BY r.route_date, s.stop_order",
    )
    .bind(position)
    .fetch_all(s.test_pool())
    .await
    .unwrap();
    let mut out: Vec<(String, Vec<i64>)> = Vec::new();
    for (date, outlet) in rows {
        match out.last_mut() {
            Some((d, stops)) if *d == date => stops.push(outlet),
            _ => out.push((date, vec![outlet])),
        }
    }
    out
}

/// The live outlets (id, code) of a territory, by code.
async fn outlets_of(s: &Store, territory: i64) -> Vec<(i64, String)> {
    sqlx::query_as(
        "SELECT id, code FROM outlets WHERE territory_id = $1 AND deleted = 0 ORDER BY code",
    )
    .bind(territory)
    .fetch_all(s.test_pool())
    .await
    .unwrap()
}

/// The outlet ids of the phone's route of a date, in order.
fn phone_route(phone: &Phone, date: &str) -> Vec<i64> {
    let stops = phone.engine.route(date).unwrap();
    stops.into_iter().map(|s| s.outlet.id).collect()
}

/// The date `days` after `date`.
fn plus(date: &str, days: i64) -> String {
    use fieldsync_protocol::dates;
    dates::format_day_number(dates::parse_day_number(date).unwrap() + days)
}

/// Monday-first weekday of a date, as the plan's boxes are numbered.
fn weekday(date: &str) -> usize {
    let day = fieldsync_protocol::dates::parse_day_number(date).unwrap();
    (day + 3).rem_euclid(7) as usize
}

/// Fills the week plan form: each weekday's box from `days` (weekday, codes), the others
/// empty, then the range; submits it.
async fn submit_plan(b: &Browser, days: &[(usize, Vec<&str>)], from: &str, weeks: &str) {
    b.run("document.querySelectorAll('#week-plan-form textarea').forEach(t => t.value = '')")
        .await;
    for (day, codes) in days {
        b.fill(&format!("#day-{day}"), &codes.join("\n")).await;
    }
    b.fill("#plan-from", from).await;
    // The server is the one that enforces the range.
    b.run("document.getElementById('plan-weeks').removeAttribute('max')")
        .await;
    b.fill("#plan-weeks", weeks).await;
    b.click("#save-week-plan").await;
}

async fn week_plan_editor(db: &TestDb) {
    let (server, agents, b) = world(db, 2).await;
    let (url, s) = (&server.url, &server.store);
    let phone = Phone::activated(url, &agents[0]).await;
    let (position, neighbour) = (unit(s, "ACME-P0001").await, unit(s, "ACME-P0002").await);
    let territory = unit(s, "ACME-TR0001").await;
    let outlets = outlets_of(s, territory).await;
    let (o1, o2, o3, o4) = (&outlets[0], &outlets[1], &outlets[2], &outlets[3]);
    let today = today();
    let neighbours_before = routes_of(s, neighbour).await;
    let before = routes_of(s, position).await;
    assert!(
        before.iter().any(|(d, _)| *d == today),
        "the seed plans today"
    );

    // The agent visits an outlet of today's route: that route has a visit now.
    let todays = phone.engine.route(&today).unwrap();
    let visited = &todays[0];
    let visit = phone
        .engine
        .start_visit(visited.outlet.id, Some(visited.route_id), vec![])
        .unwrap();
    phone.engine.end_visit(visit, vec![]).unwrap();
    phone.sync().await;
    let todays_stops = phone_route(&phone, &today);

    // The week plan of the position, reached from the routes list.
    b.goto(&format!("{url}/routes")).await;
    b.run(&format!(
        "document.querySelector('#open-week-plan select').value = '{position}'"
    ))
    .await;
    b.click("#choose-position").await;
    assert!(
        b.current_url()
            .await
            .ends_with(&format!("/routes/week-plan/{position}"))
    );
    assert!(b.text("#territory-outlets").await.contains(&o1.1));

    // Tomorrow's weekday visits three outlets in this order, the day after's one; two weeks.
    let (tomorrow, after) = (plus(&today, 1), plus(&today, 2));
    let plan = [
        (
            weekday(&tomorrow),
            vec![o3.1.as_str(), o1.1.as_str(), o2.1.as_str()],
        ),
        (weekday(&after), vec![o4.1.as_str()]),
    ];
    submit_plan(&b, &plan, &today, "2").await;
    assert_eq!(
        b.text("#plan-written").await,
        format!(
            "4 routes written, {} removed.",
            before.iter().filter(|(d, _)| *d > after).count()
        ),
        "{}",
        b.text("body").await
    );
    assert!(b.text("#plan-kept").await.contains(&today));

    // What is stored: the generated dates, the visited route as it was, nothing else in range,
    // and everything outside the range and of the other position as before.
    let three = vec![o3.0, o1.0, o2.0];
    let mut expected: Vec<(String, Vec<i64>)> = before
        .iter()
        .filter(|(d, _)| *d < today || *d > plus(&today, 13))
        .cloned()
        .collect();
    expected.extend([
        (today.clone(), todays_stops.clone()),
        (tomorrow.clone(), three.clone()),
        (after.clone(), vec![o4.0]),
        (plus(&today, 8), three.clone()),
        (plus(&today, 9), vec![o4.0]),
    ]);
    expected.sort();
    let stored = routes_of(s, position).await;
    assert_eq!(stored, expected);
    assert_eq!(routes_of(s, neighbour).await, neighbours_before);

    // The phone after its next sync: the generated routes in order, the others gone.
    phone.sync().await;
    assert_eq!(phone_route(&phone, &tomorrow), three);
    assert_eq!(phone_route(&phone, &plus(&today, 8)), three);
    assert_eq!(phone_route(&phone, &plus(&today, 9)), vec![o4.0]);
    assert_eq!(phone_route(&phone, &today), todays_stops);
    assert!(phone_route(&phone, &plus(&today, 3)).is_empty());
    assert_eq!(
        phone_route(&phone, &plus(&today, -1)),
        before
            .iter()
            .find(|(d, _)| *d == plus(&today, -1))
            .unwrap()
            .1
    );

    // The page lists the coming routes and shows the plan it generated.
    assert!(
        b.text("#planned-routes").await.contains(&tomorrow),
        "{}",
        b.text("#planned-routes").await
    );
    b.goto(&format!("{url}/routes/week-plan/{position}")).await;
    let box_text = b
        .run(&format!(
            "return document.getElementById('day-{}').value",
            weekday(&tomorrow)
        ))
        .await;
    assert_eq!(
        box_text
            .as_str()
            .unwrap()
            .split_whitespace()
            .collect::<Vec<_>>(),
        [o3.1.as_str(), o1.1.as_str(), o2.1.as_str()]
    );

    // Refusals, each with its reason, changing nothing.
    let d_other = s.distributor_id("OTHER").await.unwrap();
    let foreign = OutletForm {
        code: "OTHER-ONLY".into(),
        name: "Not ACME's".into(),
        territory_id: Some(unit(s, "OTHER-TR0001").await),
        ..OutletForm::default()
    };
    s.save_outlet(d_other, None, &foreign).await.unwrap();
    b.goto(&format!("{url}/routes/week-plan/{position}")).await;
    submit_plan(&b, &[(0, vec![o1.1.as_str(), "OTHER-ONLY"])], &today, "1").await;
    assert!(
        refused(
            &b,
            "OTHER-ONLY is not an outlet of this position's territory"
        )
        .await,
        "{}",
        b.text("body").await
    );
    let elsewhere = &outlets_of(s, unit(s, "ACME-TR0002").await).await[0];
    b.goto(&format!("{url}/routes/week-plan/{position}")).await;
    submit_plan(&b, &[(0, vec![elsewhere.1.as_str()])], &today, "1").await;
    assert!(refused(&b, "is not an outlet of this position's territory").await);
    b.goto(&format!("{url}/routes/week-plan/{position}")).await;
    submit_plan(&b, &[(0, vec![o1.1.as_str()])], &today, "14").await;
    assert!(
        refused(&b, "1 to 13 weeks").await,
        "{}",
        b.text("body").await
    );
    b.goto(&format!("{url}/routes/week-plan/{position}")).await;
    submit_plan(&b, &[(0, vec![o1.1.as_str()])], "next monday", "1").await;
    assert!(refused(&b, "a start date (YYYY-MM-DD)").await);
    assert_eq!(routes_of(s, position).await, expected);
    b.close().await;

    // Another distributor's key user can neither open the plan nor save one.
    let post = format!("/routes/week-plan/{position}");
    let body = format!("from: '{today}', weeks: '1', day0: '{}'", o1.1);
    hidden_from_other(url, &post, &post, &body).await;
    assert_eq!(routes_of(s, position).await, expected);
    server.stop().await;
}
on_both_backends!(
    a_week_plan_generates_the_positions_routes_keeps_visited_ones_and_the_phone_gets_them_in_order,
    week_plan_editor
);
