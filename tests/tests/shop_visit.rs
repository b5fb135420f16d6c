//! The whole shop visit through the real engine and a real server, on SQLite and PostgreSQL:
//! receivables imported by the distributor's system reach the phone (and an invoice paid in
//! full leaves it), the overdue-debt policy on orders, the order's number and reported
//! quantities on the phone, and "today" counted in the phone's time zone.

use fieldsync_agent::{OrderDraft, WorkflowError};
use fieldsync_protocol::v1;
use fieldsync_tests::*;
use serde_json::{Value, json};

/// The distributor's system posting JSON to the API.
async fn call(api: &ApiClient, path: &str, body: Value) -> (u16, Value) {
    let resp = api
        .http
        .post(format!("{}{path}", api.url))
        .bearer_auth(&api.key)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn scalar(server: &TestServer, sql: &str) -> String {
    let (v,): (String,) = sqlx::query_as(sqlx::AssertSqlSafe(sql.to_string()))
        .fetch_one(server.store.test_pool())
        .await
        .unwrap();
    v
}

/// A visit at `outlet` with one order of the first `lines` products (2 each), reason given.
fn order_in_visit(
    phone: &Phone,
    outlet: &fieldsync_agent::OutletView,
    lines: usize,
    overdue_reason: &str,
) -> Result<uuid::Uuid, WorkflowError> {
    let e = &phone.engine;
    let visit = e
        .start_visit(outlet.id, None, vec![fix_at(504_501_000, 305_234_000, 50)])
        .unwrap();
    let products = e.search_products("", outlet.price_list_id, 10).unwrap();
    let placed = e.place_order(OrderDraft {
        visit_id: Some(visit),
        outlet_id: outlet.id,
        warehouse_id: e.warehouses().unwrap()[0].id,
        lines: products.iter().take(lines).map(|p| (p.id, 2000)).collect(),
        overdue_reason: overdue_reason.into(),
        ..Default::default()
    });
    e.end_visit(visit, vec![]).unwrap();
    placed
}

async fn receivables(db: &TestDb) {
    let (server, agents) = acme_server(db, 1).await;
    let api = ApiClient::new(&server, "ACME", "erp").await;
    let phone = Phone::activated(&server.url, &agents[0]).await;
    let ids = phone.outlet_ids();
    let (a, b) = (
        phone.engine.outlet(ids[0]).unwrap().unwrap(),
        phone.engine.outlet(ids[1]).unwrap().unwrap(),
    );
    assert!(phone.engine.receivables(a.id).unwrap().invoices.is_empty());

    // Three invoices of outlet A (one overdue, one far ahead, one partly paid), one of B, and a
    // row with a broken date: the valid rows apply, the broken one is logged with its line.
    let csv = format!(
        "invoice_number,outlet_code,invoice_date,due_date,amount,paid,currency\n\
         R-1,{a},2020-01-01,2020-01-31,1000.00,250.00,\n\
         R-2,{a},2026-01-01,2099-12-31,500,,\n\
         R-3,{a},2026-01-01,2099-06-30,300,100,UAH\n\
         R-4,{b},2026-01-01,2020-02-01,70,0,\n\
         R-5,{a},yesterday,2099-01-01,10,0,\n",
        a = a.code,
        b = b.code
    );
    let (s, job) = api.import("receivables?format=csv", csv).await;
    assert_eq!(s, 200, "{job}");
    assert_eq!(job["rows_applied"], 4, "{job}");
    assert_eq!(job["rows_refused"], 1, "{job}");
    assert_eq!(job["errors"][0][0], 6, "{job}");
    assert!(
        job["errors"][0][1]
            .as_str()
            .unwrap()
            .contains("invoice_date"),
        "{job}"
    );

    phone.sync().await;
    let debt = phone.engine.receivables(a.id).unwrap();
    let numbers: Vec<&str> = debt.invoices.iter().map(|i| i.number.as_str()).collect();
    assert_eq!(numbers, vec!["R-1", "R-3", "R-2"], "oldest due first");
    assert_eq!(debt.totals.len(), 1);
    assert_eq!(debt.totals[0].currency, "UAH");
    assert_eq!(debt.totals[0].owed_minor, 75_000 + 50_000 + 20_000);
    assert_eq!(debt.totals[0].overdue_minor, 75_000);
    assert!(debt.has_overdue());
    assert_eq!(phone.engine.receivables(b.id).unwrap().invoices.len(), 1);

    // R-1 is paid in full: it leaves the phone; the invoices the file did not name stay.
    let (s, job) = api
        .import(
            "receivables?format=json",
            json!({"rows": [{"invoice_number": "R-1", "outlet_code": a.code, "invoice_date": "2020-01-01",
                    "due_date": "2020-01-31", "amount": "1000", "paid": "1000"}]})
            .to_string(),
        )
        .await;
    assert_eq!(s, 200, "{job}");
    phone.sync().await;
    let debt = phone.engine.receivables(a.id).unwrap();
    let numbers: Vec<&str> = debt.invoices.iter().map(|i| i.number.as_str()).collect();
    assert_eq!(numbers, vec!["R-3", "R-2"]);
    assert!(!debt.has_overdue());
    assert_eq!(phone.engine.receivables(b.id).unwrap().invoices.len(), 1);
    assert_eq!(count(&server.store, "receivables").await, 3);

    // Overdue debt at B: the default policy warns only; the order goes without a reason.
    assert_eq!(
        phone.engine.overdue_policy().unwrap(),
        v1::OverduePolicy::Warn
    );
    order_in_visit(&phone, &b, 1, "").unwrap();
    // The head office asks for a reason; the phone learns it with its next sync (its cursor
    // is kept: the profile comes on the last page).
    sqlx::query("UPDATE distributors SET overdue_policy = 'require_reason' WHERE code = 'ACME'")
        .execute(server.store.test_pool())
        .await
        .unwrap();
    phone.sync().await;
    assert_eq!(
        phone.engine.overdue_policy().unwrap(),
        v1::OverduePolicy::RequireReason
    );
    let before = phone.engine.outbox_status().unwrap().pending;
    assert!(matches!(
        order_in_visit(&phone, &b, 1, "  "),
        Err(WorkflowError::OverdueReasonRequired)
    ));
    assert_eq!(
        phone.engine.outbox_status().unwrap().pending,
        before + 2,
        "only the visit's start and end were queued, no order"
    );
    let order = order_in_visit(&phone, &b, 1, "The owner pays on Friday").unwrap();
    // Nothing overdue at A: no reason is asked for, none is kept.
    order_in_visit(&phone, &a, 1, "ignored").unwrap();
    phone.sync().await;
    assert_eq!(
        scalar(
            &server,
            &format!("SELECT overdue_reason FROM orders WHERE id = '{order}'")
        )
        .await,
        "The owner pays on Friday"
    );
    // The distributor's system reads the reason with the order.
    let got: Value = serde_json::from_str(
        &api.http
            .get(format!("{}/api/v1/orders/{order}", api.url))
            .bearer_auth(&api.key)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(got["overdue_reason"], "The owner pays on Friday");
    assert_eq!(
        count_where(
            &server.store,
            "SELECT COUNT(*) FROM orders WHERE CAST(outlet_id AS TEXT) = $1 AND overdue_reason <> ''",
            &[&a.id.to_string()]
        )
        .await,
        0
    );
    server.stop().await;
}
on_both_backends!(
    receivables_imported_by_the_distributor_reach_the_phone_and_overdue_debt_asks_for_a_reason,
    receivables
);

async fn order_fate(db: &TestDb) {
    let (server, agents) = acme_server(db, 1).await;
    let api = ApiClient::new(&server, "ACME", "erp").await;
    let phone = Phone::activated(&server.url, &agents[0]).await;
    let outlet = phone.engine.outlet(phone.outlet_ids()[0]).unwrap().unwrap();
    let order = order_in_visit(&phone, &outlet, 2, "").unwrap();
    assert_eq!(phone.engine.order_fate(order).unwrap().unwrap().number, 0);
    phone.sync().await;
    // The number the server gave the order is on the phone after the sync that sent it.
    let number: i64 = scalar(
        &server,
        &format!("SELECT CAST(number AS TEXT) FROM orders WHERE id = '{order}'"),
    )
    .await
    .parse()
    .unwrap();
    let fate = phone.engine.order_fate(order).unwrap().unwrap();
    assert_eq!(fate.number, number);
    assert!(
        fate.lines
            .iter()
            .all(|l| l.confirmed_milli.is_none() && l.shipped_milli.is_none())
    );

    // Confirmed with less of line 1; then shipped with less of line 2.
    let (s, v) = call(
        &api,
        &format!("/api/v1/orders/{order}/status"),
        json!({"state": "confirmed", "lines": [{"line_no": 1, "quantity_milli": 1500}]}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    phone.sync().await;
    let fate = phone.engine.order_fate(order).unwrap().unwrap();
    assert_eq!(fate.state, "confirmed");
    assert_eq!(fate.lines[0].confirmed_milli, Some(1500));
    assert!(fate.lines[0].differs());
    assert_eq!(fate.lines[1].confirmed_milli, None);
    assert!(!fate.lines[1].differs());
    let (s, v) = call(
        &api,
        &format!("/api/v1/orders/{order}/status"),
        json!({"state": "shipped", "document_number": "INV-9", "lines": [
            {"line_no": 1, "quantity_milli": 1500}, {"line_no": 2, "quantity_milli": 1000}]}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    phone.sync().await;
    let fate = phone.engine.order_fate(order).unwrap().unwrap();
    assert_eq!(
        (fate.state.as_str(), fate.document_number.as_str()),
        ("shipped", "INV-9")
    );
    assert_eq!(fate.number, number, "a later status keeps the number");
    let reported: Vec<(Option<i64>, Option<i64>)> = fate
        .lines
        .iter()
        .map(|l| (l.confirmed_milli, l.shipped_milli))
        .collect();
    assert_eq!(
        reported,
        vec![(Some(1500), Some(1500)), (None, Some(1000))],
        "ordered 2 of each"
    );
    server.stop().await;
}
on_both_backends!(
    the_order_number_and_the_confirmed_and_shipped_quantities_reach_the_phone,
    order_fate
);

async fn local_today(db: &TestDb) {
    use fieldsync_protocol::dates;
    let (server, agents) = acme_server(db, 1).await;
    let api = ApiClient::new(&server, "ACME", "erp").await;
    let (client, _) = RawClient::activated(&server.url, &agents[0]).await;
    // A UTC offset that puts the phone on another date than UTC right now, with an hour to
    // spare: UTC+14 from 11:00 UTC on (tomorrow), UTC−12 before (yesterday).
    let now = fieldsync_server::store::now_ms();
    let minute_of_day = now.rem_euclid(86_400_000) / 60_000;
    let (offset, shift) = if minute_of_day >= 11 * 60 {
        (840, 1)
    } else {
        (-720, -1)
    };
    let utc_day = dates::day_of_ms(now);
    let local_day = dates::local_day_of_ms(now, offset);
    assert_eq!(local_day, utc_day + shift);
    // A different first stop on each of the three days.
    let codes: Vec<String> = client
        .pull_all(fieldsync_protocol::ids::new_id())
        .await
        .iter()
        .filter_map(|c| match &c.entity {
            Some(v1::change::Entity::Outlet(o)) => Some(o.code.clone()),
            _ => None,
        })
        .take(3)
        .collect();
    let mut rows = String::from("date,position_code,stop,outlet_code\n");
    for (i, day) in [utc_day - 1, utc_day, utc_day + 1].iter().enumerate() {
        rows += &format!(
            "{},ACME-P0001,1,{}\n",
            dates::format_day_number(*day),
            codes[i]
        );
    }
    let (s, job) = api.import("routes?format=csv", rows).await;
    assert_eq!(s, 200, "{job}");
    let expected = codes[(1 + shift) as usize].clone();

    // A first pull with the offset: the priority page is the phone's day's route.
    let req = v1::PullRequest {
        protocol_version: fieldsync_protocol::PROTOCOL_VERSION,
        session_id: fieldsync_protocol::ids::to_wire(fieldsync_protocol::ids::new_id()),
        max_changes: 100,
        device_time_ms: now,
        utc_offset_minutes: offset,
        ..Default::default()
    };
    let page: v1::PullResponse = client.post("/sync/v1/pull", &req).await.decode();
    let route = page
        .changes
        .iter()
        .find_map(|c| match &c.entity {
            Some(v1::change::Entity::Route(r)) => Some(r.clone()),
            _ => None,
        })
        .expect("the priority page has a route");
    assert_eq!(route.date, dates::format_day_number(local_day));
    let first: Vec<String> = page
        .changes
        .iter()
        .filter_map(|c| match &c.entity {
            Some(v1::change::Entity::Outlet(o)) => Some(o.code.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(first, vec![expected]);
    // The server keeps the device's offset.
    assert_eq!(
        scalar(
            &server,
            "SELECT CAST(utc_offset_min AS TEXT) FROM devices ORDER BY id DESC LIMIT 1"
        )
        .await,
        offset.to_string()
    );
    // An offset no place on Earth has is refused, and nothing is recorded.
    let bad = client
        .post(
            "/sync/v1/pull",
            &v1::PullRequest {
                utc_offset_minutes: 15 * 60,
                ..req.clone()
            },
        )
        .await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.error().code(), v1::ErrorCode::MalformedRequest);
    server.stop().await;
}
on_both_backends!(
    the_priority_page_is_the_route_of_the_phones_own_date,
    local_today
);

async fn plans(db: &TestDb) {
    let (server, agents) = acme_server(db, 1).await;
    let api = ApiClient::new(&server, "ACME", "erp").await;
    let phone = Phone::activated(&server.url, &agents[0]).await;
    let e = &phone.engine;
    let outlet = e.outlet(phone.outlet_ids()[0]).unwrap().unwrap();
    let period: String = e.today().chars().take(7).collect();
    let products = e.search_products("", outlet.price_list_id, 5).unwrap();
    let category = scalar(
        &server,
        &format!(
            "SELECT category FROM products WHERE id = {}",
            products[0].id
        ),
    )
    .await;
    // An outlet plan in money for everything, the agent's own in quantity for one category,
    // and a row for an outlet that does not exist.
    let csv = format!(
        "period,outlet_code,position_code,category,measure,target\n\
         {period},{o},,,money,1000.00\n\
         {period},,ACME-P0001,{category},quantity,50\n\
         {period},NOPE,,,money,10\n",
        o = outlet.code
    );
    let (s, job) = api.import("plans?format=csv", csv).await;
    assert_eq!(s, 200, "{job}");
    assert_eq!(
        (job["rows_applied"].as_i64(), job["rows_refused"].as_i64()),
        (Some(2), Some(1)),
        "{job}"
    );
    phone.sync().await;
    let mine = e.plans(0).unwrap();
    let theirs = e.plans(outlet.id).unwrap();
    assert_eq!((mine.len(), theirs.len()), (1, 1));
    assert_eq!(theirs[0].target, 100_000);
    assert_eq!(
        (theirs[0].achieved, theirs[0].achieved_from.as_str()),
        (0, "orders")
    );
    assert_eq!(mine[0].category, category);
    assert_eq!(mine[0].measure, v1::PlanMeasure::PlanQuantity);

    // An order at the outlet counts toward both with the same sync that sends it.
    let visit = e.start_visit(outlet.id, None, vec![]).unwrap();
    let order = e
        .place_order(OrderDraft {
            visit_id: Some(visit),
            outlet_id: outlet.id,
            warehouse_id: e.warehouses().unwrap()[0].id,
            lines: vec![(products[0].id, 3000), (products[1].id, 1000)],
            ..Default::default()
        })
        .unwrap();
    e.end_visit(visit, vec![]).unwrap();
    phone.sync().await;
    let total: i64 = scalar(
        &server,
        &format!("SELECT CAST(total_minor AS TEXT) FROM orders WHERE id = '{order}'"),
    )
    .await
    .parse()
    .unwrap();
    // The phone counts its own order at once; the server sends the plan again with its
    // housekeeping (one claiming statement), and then the phone counts it once.
    let theirs = e.plans(outlet.id).unwrap();
    assert_eq!((theirs[0].achieved, theirs[0].pending), (0, total));
    assert_eq!(server.store.refresh_plans().await.unwrap(), 2);
    assert_eq!(
        server.store.refresh_plans().await.unwrap(),
        0,
        "claimed once"
    );
    phone.sync().await;
    let theirs = e.plans(outlet.id).unwrap();
    assert_eq!((theirs[0].achieved, theirs[0].pending), (total, 0));
    let mine = e.plans(0).unwrap();
    let same_category = if scalar(
        &server,
        &format!(
            "SELECT category FROM products WHERE id = {}",
            products[1].id
        ),
    )
    .await
        == category
    {
        1000
    } else {
        0
    };
    assert_eq!(mine[0].achieved, 3000 + same_category);

    // Imported invoices of the month take over from orders.
    let day = format!("{period}-01");
    let sales = format!(
        "invoice_number,invoice_date,outlet_code,product_code,quantity,amount\n\
         S-1,{day},{o},{p},2,123.45\n",
        o = outlet.code,
        p = products[0].code
    );
    let (s, job) = api.import("sales?format=csv", sales).await;
    assert_eq!(s, 200, "{job}");
    phone.sync().await;
    let theirs = e.plans(outlet.id).unwrap();
    assert_eq!(
        (theirs[0].achieved, theirs[0].achieved_from.as_str()),
        (12_345, "sales")
    );
    assert_eq!(
        e.plans(0).unwrap()[0].achieved,
        2000,
        "the territory's sales"
    );

    // A deleted plan leaves the phone.
    let d = server.store.distributor_id("ACME").await.unwrap();
    server.store.delete_plan(d, theirs[0].id).await.unwrap();
    phone.sync().await;
    assert!(e.plans(outlet.id).unwrap().is_empty());
    assert_eq!(e.plans(0).unwrap().len(), 1);
    server.stop().await;
}
on_both_backends!(
    plans_imported_reach_the_phone_and_count_orders_then_invoices,
    plans
);
