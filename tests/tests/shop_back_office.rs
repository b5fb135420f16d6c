//! The back office and the distributor's portal for the whole shop visit, in a real headless
//! Chromium against a real server, on SQLite and PostgreSQL: the payment calendar, the plan
//! editor, and a claim from the field walked through its stages in the portal.

use fieldsync_agent::{ClaimDraft, ClaimLineDraft, OrderDraft};
use fieldsync_server::store::keyusers::Role;
use fieldsync_server::store::now_ms;
use fieldsync_tests::browser::Browser;
use fieldsync_tests::*;

const PASSWORD: &str = "secret123";

/// ACME with agents, OTHER with one; logins `acme-kp` (key user), `acme-portal` (the
/// distributor's portal) and `other-kp`.
async fn world(
    db: &TestDb,
    agents: usize,
) -> (TestServer, Vec<fieldsync_server::seed::SeededAgent>) {
    let (server, acme) = acme_server(db, agents).await;
    seed(&server.store, &small_world("OTHER", 1)).await;
    let s = &server.store;
    for (login, role, d) in [
        ("acme-kp", Role::KeyUser, "ACME"),
        ("acme-portal", Role::Distributor, "ACME"),
        ("other-kp", Role::KeyUser, "OTHER"),
    ] {
        s.create_key_user(login, PASSWORD, role, &[d.into()], now_ms())
            .await
            .unwrap();
    }
    (server, acme)
}

async fn logged_in(url: &str, who: &str) -> Browser {
    let b = Browser::start().await;
    b.log_in(url, who, PASSWORD).await;
    assert!(
        b.text("#me").await.starts_with(who),
        "{}",
        b.text("body").await
    );
    b
}

/// The code of the outlet with this id.
async fn outlet_code(server: &TestServer, id: i64) -> String {
    let (code,): (String,) = sqlx::query_as("SELECT code FROM outlets WHERE id = $1")
        .bind(id)
        .fetch_one(server.store.test_pool())
        .await
        .unwrap();
    code
}

async fn payment_calendar(db: &TestDb) {
    use fieldsync_protocol::dates;
    let (server, agents) = world(db, 2).await;
    let url = &server.url;
    let api = ApiClient::new(&server, "ACME", "erp").await;
    let phone = Phone::activated(url, &agents[0]).await;
    let a = outlet_code(&server, phone.outlet_ids()[0]).await;
    let today = dates::day_of_ms(now_ms());
    let day = |d: i64| dates::format_day_number(today + d);
    // Overdue, due today, due in three weeks; one with a partial payment.
    let csv = format!(
        "invoice_number,outlet_code,invoice_date,due_date,amount,paid\n\
         C-1,{a},{},{},1000,400\n\
         C-2,{a},{},{},250,\n\
         C-3,{a},{},{},99.99,\n",
        day(-40),
        day(-10),
        day(-14),
        day(0),
        day(-1),
        day(21),
    );
    let (s, job) = api.import("receivables?format=csv", csv).await;
    assert_eq!(s, 200, "{job}");

    let b = logged_in(url, "acme-kp").await;
    b.goto(&format!("{url}/receivables")).await;
    assert_eq!(b.text("#calendar-totals td.owed").await, "949.99");
    assert_eq!(b.text("#calendar-totals td.overdue").await, "600.00");
    assert_eq!(b.count("#bucket-overdue tr.invoice").await, 1);
    assert!(b.text("#bucket-overdue").await.contains("C-1"));
    assert_eq!(
        b.count("section.bucket").await,
        3,
        "overdue, this week, in 3 weeks"
    );
    shot(&b, db, "payment-calendar").await;
    // One agent's outlets: the second agent's territory owes nothing.
    let (other_position,): (i64,) =
        sqlx::query_as("SELECT id FROM org_units WHERE code = 'ACME-P0002'")
            .fetch_one(server.store.test_pool())
            .await
            .unwrap();
    b.goto(&format!("{url}/receivables?position_id={other_position}"))
        .await;
    assert!(b.find_opt("#calendar-empty").await.is_some());
    // One outlet, from its page.
    b.goto(&format!("{url}/outlets/{}", phone.outlet_ids()[0]))
        .await;
    b.click("#outlet-payment-calendar").await;
    assert_eq!(b.count("tr.invoice").await, 3);
    b.close().await;

    // The distributor's portal has it too; another distributor sees none of it.
    let p = logged_in(url, "acme-portal").await;
    p.goto(&format!("{url}/receivables")).await;
    assert_eq!(p.count("tr.invoice").await, 3);
    p.close().await;
    let o = logged_in(url, "other-kp").await;
    o.goto(&format!("{url}/receivables")).await;
    assert!(o.find_opt("#calendar-empty").await.is_some());
    o.close().await;
    server.stop().await;
}
on_both_backends!(
    the_payment_calendar_shows_overdue_and_coming_invoices_by_agent_and_outlet,
    payment_calendar
);

async fn plan_editor(db: &TestDb) {
    let (server, agents) = world(db, 1).await;
    let url = &server.url;
    let phone = Phone::activated(url, &agents[0]).await;
    let outlet_id = phone.outlet_ids()[0];
    let code = outlet_code(&server, outlet_id).await;
    let b = logged_in(url, "acme-kp").await;
    b.goto(&format!("{url}/plans")).await;
    assert!(b.text("#plans").await.contains("No plans"));
    b.run("document.getElementById('create-plan').open = true")
        .await;
    b.fill("#plan-outlet", &code).await;
    b.fill("#plan-target", "1000,50").await;
    b.click("#save-plan").await;
    assert_eq!(b.count("tr.plan").await, 1, "{}", b.text("body").await);
    assert_eq!(b.text("tr.plan td.target").await, "1000.50");
    assert_eq!(b.text("tr.plan td.achieved").await, "0.00");
    // A wrong code is refused with a message, and nothing changes.
    b.goto(&format!("{url}/plans")).await;
    b.run("document.getElementById('create-plan').open = true")
        .await;
    b.fill("#plan-outlet", "NO-SUCH").await;
    b.fill("#plan-target", "5").await;
    b.click("#save-plan").await;
    assert!(b.text("#error-message").await.contains("No outlet"));
    assert_eq!(count(&server.store, "plans").await, 1);

    // The agent orders there; the plan counts it and the phone shows it.
    let e = &phone.engine;
    let visit = e.start_visit(outlet_id, None, vec![]).unwrap();
    let outlet = e.outlet(outlet_id).unwrap().unwrap();
    let products = e.search_products("", outlet.price_list_id, 3).unwrap();
    e.place_order(OrderDraft {
        visit_id: Some(visit),
        outlet_id,
        warehouse_id: e.warehouses().unwrap()[0].id,
        lines: vec![(products[0].id, 1000)],
        ..Default::default()
    })
    .unwrap();
    e.end_visit(visit, vec![]).unwrap();
    phone.sync().await;
    server.store.refresh_plans().await.unwrap();
    phone.sync().await;
    let on_phone = e.plans(outlet_id).unwrap();
    assert_eq!(on_phone.len(), 1);
    assert!(on_phone[0].achieved > 0);
    assert_eq!(on_phone[0].pending, 0);
    b.goto(&format!("{url}/plans")).await;
    assert_eq!(
        b.text("tr.plan td.achieved").await,
        fieldsync_server::web::fmt_money(on_phone[0].achieved)
    );
    shot(&b, db, "plan-editor").await;
    b.click("tr.plan button.delete-plan").await;
    assert_eq!(b.count("tr.plan").await, 0);
    phone.sync().await;
    assert!(e.plans(outlet_id).unwrap().is_empty());
    b.close().await;
    server.stop().await;
}
on_both_backends!(
    a_key_user_sets_a_plan_that_counts_the_agents_orders_and_reaches_the_phone,
    plan_editor
);

async fn claim_in_portal(db: &TestDb) {
    let (server, agents) = world(db, 1).await;
    let url = &server.url;
    let phone = Phone::activated(url, &agents[0]).await;
    let e = &phone.engine;
    let outlet_id = phone.outlet_ids()[0];
    let outlet = e.outlet(outlet_id).unwrap().unwrap();

    // The key user adds a subtype; the phone gets it.
    let kp = logged_in(url, "acme-kp").await;
    kp.goto(&format!("{url}/claim-types")).await;
    kp.fill("#claim-type-name", "Broken seal").await;
    kp.run(
        "const s = document.getElementById('claim-type-parent'); \
         s.value = [...s.options].find(o => o.text.endsWith('Quality')).value;",
    )
    .await;
    kp.click("#save-claim-type").await;
    assert!(kp.text("body").await.contains("Broken seal"));
    kp.close().await;
    phone.sync().await;
    let reasons = e.claim_reasons().unwrap();
    let quality = reasons.iter().find(|r| r.2 == "Quality").unwrap().0;
    let seal = reasons.iter().find(|r| r.2 == "Broken seal").unwrap();
    assert_eq!(seal.1, quality, "a subtype of Quality");

    // An order, then a registered claim on it.
    let visit = e.start_visit(outlet_id, None, vec![]).unwrap();
    let products = e.search_products("", outlet.price_list_id, 3).unwrap();
    let order = e
        .place_order(OrderDraft {
            visit_id: Some(visit),
            outlet_id,
            warehouse_id: e.warehouses().unwrap()[0].id,
            lines: vec![(products[0].id, 4000)],
            ..Default::default()
        })
        .unwrap();
    let claim = e
        .save_claim(ClaimDraft {
            visit_id: Some(visit),
            outlet_id,
            lines: vec![ClaimLineDraft {
                order_id: order,
                line_no: 1,
                quantity_milli: 1500,
                type_id: quality,
                subtype_id: seal.0,
            }],
            comment: "Seal <b>broken</b>".into(),
            register: true,
            ..Default::default()
        })
        .unwrap();
    e.end_visit(visit, vec![]).unwrap();
    phone.sync().await;

    let p = logged_in(url, "acme-portal").await;
    // Times in the user's own zone: Tokyo is 9 hours ahead of UTC all year.
    p.goto(&format!("{url}/settings")).await;
    p.fill("#timezone", "Asia/Tokyo").await;
    p.click("#save-settings").await;
    p.goto(&format!("{url}/claims?stage=registered")).await;
    assert_eq!(p.count("tr.claim").await, 1);
    p.click("tr.claim a").await;
    assert_eq!(p.text("#claim-stage").await, "Registered");
    let (received,): (i64,) = sqlx::query_as("SELECT received_at_ms FROM claims WHERE id = $1")
        .bind(claim.to_string())
        .fetch_one(server.store.test_pool())
        .await
        .unwrap();
    let tokyo = fieldsync_server::web::fmt_time(received, "Asia/Tokyo");
    assert_ne!(tokyo, fieldsync_server::web::fmt_time(received, "UTC"));
    assert_eq!(p.text("#claim-received").await, tokyo);
    assert!(p.text("#claim-lines").await.contains("Broken seal"));
    assert!(
        p.text("body").await.contains("Seal <b>broken</b>"),
        "escaped"
    );
    // Declining without an answer is refused; nothing changes.
    p.run("document.getElementById('next-stage').value = 'declined'")
        .await;
    p.click("#change-stage").await;
    assert!(p.text("#error-message").await.contains("answer"));
    p.goto(&format!("{url}/claims/{claim}")).await;
    p.run("document.getElementById('next-stage').value = 'being_considered'")
        .await;
    p.click("#change-stage").await;
    assert_eq!(p.text("#claim-stage").await, "Being considered");
    p.run("document.getElementById('next-stage').value = 'declined'")
        .await;
    p.fill("#stage-answer", "Photos show no damage").await;
    p.click("#change-stage").await;
    assert_eq!(p.text("#claim-stage").await, "Declined");
    assert!(p.find_opt("#claim-stage-form").await.is_none(), "final");
    assert!(
        p.text("#claim-history")
            .await
            .contains("portal:acme-portal")
    );
    shot(&p, db, "claim-portal").await;
    // The claim types page is the key users', not the portal's.
    p.goto(&format!("{url}/claim-types")).await;
    assert!(p.text("#error-message").await.contains("may not"));
    p.close().await;
    // Another distributor's key user cannot open it.
    let o = logged_in(url, "other-kp").await;
    o.goto(&format!("{url}/claims/{claim}")).await;
    assert!(o.text("#error-message").await.contains("Not found"));
    o.close().await;

    phone.sync().await;
    let c = e.claim(claim).unwrap().unwrap();
    assert_eq!(
        (c.stage.as_str(), c.answer.as_str()),
        ("declined", "Photos show no damage")
    );
    server.stop().await;
}
on_both_backends!(
    a_claim_from_the_field_is_considered_and_declined_in_the_portal_and_the_phone_learns_it,
    claim_in_portal
);
