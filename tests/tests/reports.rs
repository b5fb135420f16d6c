//! The sales report on SQLite and PostgreSQL: its rows and totals against sums computed here
//! from what was pushed and imported, for orders and for invoices, every grouping; its export;
//! and the page with its chart in a real Chromium.

use std::collections::BTreeMap;

use fieldsync_server::store::keyusers::Role;
use fieldsync_server::store::now_ms;
use fieldsync_server::store::reports::{GroupBy, SalesParams, Source};
use fieldsync_tests::browser::{Browser, ensure_leaflet};
use fieldsync_tests::*;

/// Whether Chart.js drew the page's report chart.
async fn chart_drawn(b: &Browser) -> bool {
    b.run(
        "const c = document.getElementById('report-chart'); \
         return typeof Chart !== 'undefined' && !!c && !!Chart.getChart(c) && c.width > 0;",
    )
    .await
        == serde_json::Value::Bool(true)
}

/// The status of the page's XLSX export (and that it is a workbook: a zip).
async fn xlsx_status(b: &Browser) -> i64 {
    let got = b
        .run_async(
            "const done = arguments[0]; \
             fetch(document.getElementById('report-xlsx').href).then(r => r.arrayBuffer() \
               .then(a => { const v = new Uint8Array(a); done(v[0] === 0x50 && v[1] === 0x4b ? r.status : -1); }));",
        )
        .await;
    got.as_i64().unwrap_or(-2)
}

/// Pushes `n` visits with two orders each for an agent.
async fn orders(server: &TestServer, agent: &fieldsync_server::seed::SeededAgent, n: usize) {
    let mut device = SyncedDevice::new(&server.url, agent).await;
    for i in 0..n {
        let (_, _, batch) = device.visit_with_orders(&[1 + i % 4, 2]);
        assert_eq!(device.push(batch).await.status, 200);
    }
}

fn params(distributors: Vec<i64>, source: Source, group: GroupBy) -> SalesParams {
    let now = now_ms();
    SalesParams {
        distributors,
        source,
        group,
        from: "2026-01-01".into(),
        to: "2030-12-31".into(),
        from_ms: now - 86_400_000,
        to_ms: now + 86_400_000,
        utc_offset_min: 0,
        limit: 10_000,
    }
}

async fn sales_report(db: &TestDb) {
    let (server, agents) = acme_server(db, 2).await;
    seed(&server.store, &small_world("OTHER", 1)).await;
    let s = &server.store;
    let d = s.distributor_id("ACME").await.unwrap();
    orders(&server, &agents[0], 4).await;
    orders(&server, &agents[1], 3).await;
    // The other distributor's orders never count in ACME's report.
    let other = seed(&server.store, &small_world("THIRD", 1)).await;
    orders(&server, &other[0], 2).await;

    // Independently: every ACME order line with its position, outlet, brand, category.
    type Line = (String, i64, String, String, i64, i64);
    let lines: Vec<Line> = sqlx::query_as(
        "SELECT u.code, o.outlet_id, p.brand, p.category, l.quantity_milli, l.sum_minor
         FROM orders o JOIN order_lines l ON l.order_id = o.id JOIN products p ON p.id = l.product_id
         JOIN org_units u ON u.id = o.position_id WHERE o.distributor_id = $1",
    )
    .bind(d)
    .fetch_all(s.test_pool())
    .await
    .unwrap();
    assert!(lines.len() > 10);
    let by = |f: &dyn Fn(&Line) -> String| {
        let mut m: BTreeMap<String, (i64, i64, i64)> = BTreeMap::new();
        for l in &lines {
            let e = m.entry(f(l)).or_default();
            e.0 += l.4;
            e.1 += l.5;
            e.2 += 1;
        }
        m
    };
    let total_qty: i64 = lines.iter().map(|l| l.4).sum();
    let total_money: i64 = lines.iter().map(|l| l.5).sum();
    for (group, expected) in [
        (GroupBy::Brand, by(&|l| l.2.clone())),
        (GroupBy::Category, by(&|l| l.3.clone())),
        (GroupBy::Outlet, by(&|l| l.1.to_string())),
    ] {
        let r = s
            .sales_report(&params(vec![d], Source::Orders, group))
            .await
            .unwrap();
        let got: BTreeMap<String, (i64, i64, i64)> = r
            .rows
            .iter()
            .map(|r| (r.key.clone(), (r.quantity_milli, r.amount_minor, r.lines)))
            .collect();
        assert_eq!(got, expected, "{group:?}");
        assert_eq!(
            (r.total.quantity_milli, r.total.amount_minor, r.total.lines),
            (total_qty, total_money, lines.len() as i64)
        );
        // Largest amounts first.
        assert!(
            r.rows
                .windows(2)
                .all(|w| w[0].amount_minor >= w[1].amount_minor)
        );
    }
    let agents_report = s
        .sales_report(&params(vec![d], Source::Orders, GroupBy::Agent))
        .await
        .unwrap();
    let by_agent = by(&|l| l.0.clone());
    assert_eq!(agents_report.rows.len(), by_agent.len());
    for r in &agents_report.rows {
        let code = r.label.split(" · ").next().unwrap();
        assert_eq!(by_agent[code].1, r.amount_minor, "{}", r.label);
    }
    // A limit keeps the totals whole.
    let mut small = params(vec![d], Source::Orders, GroupBy::Outlet);
    small.limit = 1;
    let r = s.sales_report(&small).await.unwrap();
    assert!(r.truncated && r.rows.len() == 1);
    assert_eq!(r.total.amount_minor, total_money);
    // Outside the dates: nothing.
    let mut later = params(vec![d], Source::Orders, GroupBy::Day);
    later.from_ms = now_ms() + 2 * 86_400_000;
    later.to_ms = later.from_ms + 86_400_000;
    assert_eq!(s.sales_report(&later).await.unwrap().total.lines, 0);
    // By day: today's UTC date carries everything.
    let r = s
        .sales_report(&params(vec![d], Source::Orders, GroupBy::Day))
        .await
        .unwrap();
    assert_eq!(r.rows.len(), 1);
    assert_eq!(r.rows[0].label, today());

    // Invoices: an imported file, by brand and by day.
    let api = ApiClient::new(&server, "ACME", "erp").await;
    let codes: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT o.code, p.code, p.brand FROM outlets o, products p
         WHERE o.distributor_id = $1 AND p.distributor_id = $1 ORDER BY o.id, p.id LIMIT 30",
    )
    .bind(d)
    .fetch_all(s.test_pool())
    .await
    .unwrap();
    let mut csv =
        String::from("invoice_number,invoice_date,outlet_code,product_code,quantity,amount\n");
    let mut brands: BTreeMap<String, i64> = BTreeMap::new();
    for (i, (outlet, product, brand)) in codes.iter().enumerate() {
        let amount = 1_000 + i as i64 * 137;
        csv += &format!(
            "INV-{},2026-11-{:02},{outlet},{product},{},{}.{:02}\n",
            i / 3,
            1 + i % 3,
            i + 1,
            amount / 100,
            amount % 100
        );
        *brands.entry(brand.clone()).or_default() += amount;
    }
    let (st, job) = api.import("sales?format=csv", csv).await;
    assert_eq!(st, 200, "{job}");
    let mut p = params(vec![d], Source::Sales, GroupBy::Brand);
    p.from = "2026-11-01".into();
    p.to = "2026-11-02".into();
    let r = s.sales_report(&p).await.unwrap();
    let first_two_days: i64 = codes
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 3 < 2)
        .map(|(i, _)| 1_000 + i as i64 * 137)
        .sum();
    assert_eq!(
        r.total.amount_minor, first_two_days,
        "the dates include both ends"
    );
    p.to = "2026-11-30".into();
    let r = s.sales_report(&p).await.unwrap();
    let got: BTreeMap<String, i64> = r
        .rows
        .iter()
        .map(|r| (r.key.clone(), r.amount_minor))
        .collect();
    assert_eq!(got, brands);
    let quantity: i64 = (1..=codes.len() as i64).map(|q| q * 1000).sum();
    assert_eq!(r.total.quantity_milli, quantity);
    server.stop().await;
}
on_both_backends!(
    the_sales_report_adds_up_to_the_orders_and_invoices_it_covers,
    sales_report
);

async fn report_page(db: &TestDb) {
    ensure_leaflet();
    let (server, agents) = acme_server(db, 1).await;
    orders(&server, &agents[0], 3).await;
    server
        .store
        .create_key_user(
            "acme-kp",
            "secret123",
            Role::KeyUser,
            &["ACME".into()],
            now_ms(),
        )
        .await
        .unwrap();
    let d = server.store.distributor_id("ACME").await.unwrap();
    let (total,): (i64,) = sqlx::query_as(
        "SELECT CAST(SUM(total_minor) AS BIGINT) FROM orders WHERE distributor_id = $1",
    )
    .bind(d)
    .fetch_one(server.store.test_pool())
    .await
    .unwrap();
    let b = Browser::start().await;
    b.log_in(&server.url, "acme-kp", "secret123").await;
    b.goto(&format!("{}/reports", server.url)).await;
    b.click("#report-sales").await;
    b.run("document.getElementById('report-group').value = 'category'")
        .await;
    b.click("#report-apply").await;
    assert_eq!(
        b.text("#report-total td.amount").await,
        fieldsync_server::web::fmt_money(total)
    );
    // The chart was drawn by Chart.js, served from its npm package.
    let drawn = b
        .run(
            "const c = document.getElementById('report-chart'); \
             return typeof Chart !== 'undefined' && !!Chart.getChart(c) && c.width > 0;",
        )
        .await;
    assert_eq!(
        drawn,
        serde_json::Value::Bool(true),
        "{}",
        b.text("body").await
    );
    shot(&b, db, "report-sales").await;
    // The export has the same total on its last line.
    let csv = b
        .run_async(
            "const done = arguments[0]; \
             fetch(document.getElementById('report-csv').href).then(r => r.text()).then(done);",
        )
        .await;
    let csv = csv.as_str().unwrap().to_string();
    let last = csv.trim_end().lines().last().unwrap().to_string();
    assert!(
        last.contains(&fieldsync_server::web::fmt_money(total)),
        "{csv}"
    );
    // The other reports, from the index.
    b.goto(&format!("{}/reports", server.url)).await;
    b.click("#report-recon").await;
    assert_eq!(
        b.text("#report-total td.ordered-money").await,
        fieldsync_server::web::fmt_money(total)
    );
    assert!(chart_drawn(&b).await, "reconciliation chart");
    assert_eq!(xlsx_status(&b).await, 200);
    b.goto(&format!("{}/reports", server.url)).await;
    b.click("#report-coverage").await;
    assert_eq!(b.text("#report-total td.visits").await, "3");
    assert!(chart_drawn(&b).await, "coverage chart");
    assert_eq!(xlsx_status(&b).await, 200);
    let csv = b
        .run_async(
            "const done = arguments[0]; \
             fetch(document.getElementById('report-csv').href).then(r => r.text()).then(done);",
        )
        .await;
    let last = csv
        .as_str()
        .unwrap()
        .trim_end()
        .lines()
        .last()
        .unwrap()
        .to_string();
    assert!(
        last.starts_with("Total,,") && last.contains(",3,"),
        "{last}"
    );
    // Coverage reads every stop and visit of its range: a range too long is refused.
    b.goto(&format!(
        "{}/reports/coverage?from=2025-01-01&to=2025-12-31",
        server.url
    ))
    .await;
    assert!(b.text("#error-message").await.contains("at most 93 days"));
    b.close().await;
    server.stop().await;
}
on_both_backends!(
    the_sales_report_page_draws_its_chart_and_exports_its_total,
    report_page
);

async fn reconciliation(db: &TestDb) {
    let (server, agents) = acme_server(db, 1).await;
    let s = &server.store;
    let d = s.distributor_id("ACME").await.unwrap();
    orders(&server, &agents[0], 3).await;
    // The distributor confirms one order with less of its first line and ships it.
    let (order, outlet_id, outlet_code, line_qty): (String, i64, String, i64) = sqlx::query_as(
        "SELECT o.id, o.outlet_id, ot.code, l.quantity_milli FROM orders o
         JOIN order_lines l ON l.order_id = o.id AND l.line_no = 1
         JOIN outlets ot ON ot.id = o.outlet_id WHERE o.distributor_id = $1 ORDER BY o.number LIMIT 1",
    )
    .bind(d)
    .fetch_one(s.test_pool())
    .await
    .unwrap();
    let api = ApiClient::new(&server, "ACME", "erp").await;
    let status = |body: serde_json::Value| {
        let api = &api;
        let order = order.clone();
        async move {
            api.http
                .post(format!("{}/api/v1/orders/{order}/status", api.url))
                .bearer_auth(&api.key)
                .header("content-type", "application/json")
                .body(body.to_string())
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    let confirmed = line_qty - 1000;
    assert_eq!(
        status(serde_json::json!({"state": "confirmed", "lines": [{"line_no": 1, "quantity_milli": confirmed}]})).await,
        200
    );
    assert_eq!(
        status(serde_json::json!({"state": "shipped", "lines": [{"line_no": 1, "quantity_milli": confirmed}]})).await,
        200
    );
    // An invoice for that outlet, and one for an outlet without orders.
    let (product,): (String,) =
        sqlx::query_as("SELECT code FROM products WHERE distributor_id = $1 ORDER BY id LIMIT 1")
            .bind(d)
            .fetch_one(s.test_pool())
            .await
            .unwrap();
    let (lonely,): (String,) = sqlx::query_as(
        "SELECT code FROM outlets WHERE distributor_id = $1 AND id NOT IN (SELECT outlet_id FROM orders)
         ORDER BY id LIMIT 1",
    )
    .bind(d)
    .fetch_one(s.test_pool())
    .await
    .unwrap();
    let day = today();
    let csv = format!(
        "invoice_number,invoice_date,outlet_code,product_code,quantity,amount\n\
         I-1,{day},{outlet_code},{product},2,40.00\nI-2,{day},{lonely},{product},1,5.55\n"
    );
    assert_eq!(api.import("sales?format=csv", csv).await.0, 200);

    // Independently.
    let (ordered_qty, ordered_money): (i64, i64) = sqlx::query_as(
        "SELECT CAST(SUM(l.quantity_milli) AS BIGINT), CAST(SUM(l.sum_minor) AS BIGINT)
         FROM orders o JOIN order_lines l ON l.order_id = o.id WHERE o.outlet_id = $1",
    )
    .bind(outlet_id)
    .fetch_one(s.test_pool())
    .await
    .unwrap();
    let mut p = params(vec![d], Source::Orders, GroupBy::Outlet);
    p.from = day.clone();
    p.to = day.clone();
    let r = s.reconciliation(&p).await.unwrap();
    let row = r.rows.iter().find(|x| x.outlet_id == outlet_id).unwrap();
    assert_eq!(row.ordered_milli, ordered_qty);
    assert_eq!(row.ordered_minor, ordered_money);
    assert_eq!(
        (row.confirmed_milli, row.shipped_milli),
        (confirmed, confirmed)
    );
    assert_eq!((row.invoiced_milli, row.invoiced_minor), (2000, 4000));
    assert_eq!(row.difference_minor(), 4000 - ordered_money);
    let lonely_row = r
        .rows
        .iter()
        .find(|x| x.outlet.starts_with(&lonely))
        .unwrap();
    assert_eq!(
        (lonely_row.ordered_minor, lonely_row.invoiced_minor),
        (0, 555)
    );
    let all_orders: (i64,) = sqlx::query_as(
        "SELECT CAST(SUM(l.sum_minor) AS BIGINT) FROM orders o JOIN order_lines l ON l.order_id = o.id
         WHERE o.distributor_id = $1",
    )
    .bind(d)
    .fetch_one(s.test_pool())
    .await
    .unwrap();
    assert_eq!(r.total.ordered_minor, all_orders.0);
    assert_eq!(r.total.invoiced_minor, 4555);
    assert!(
        r.rows
            .windows(2)
            .all(|w| w[0].difference_minor().abs() >= w[1].difference_minor().abs()),
        "largest difference first"
    );
    server.stop().await;
}
on_both_backends!(
    orders_against_invoices_add_up_per_outlet_with_what_was_confirmed_and_shipped,
    reconciliation
);

async fn coverage(db: &TestDb) {
    let (server, agents) = acme_server(db, 1).await;
    let s = &server.store;
    let d = s.distributor_id("ACME").await.unwrap();
    let day = today();
    let route: Vec<(i64,)> = sqlx::query_as(
        "SELECT st.outlet_id FROM routes r JOIN route_stops st ON st.route_id = r.id
         JOIN org_units u ON u.id = r.position_id WHERE u.code = 'ACME-P0001' AND r.route_date = $1
         ORDER BY st.stop_order",
    )
    .bind(&day)
    .fetch_all(s.test_pool())
    .await
    .unwrap();
    assert!(route.len() >= 2, "a route today");
    let on_route: Vec<i64> = route.iter().map(|r| r.0).collect();
    let (client, session, known) = synced_device(&server.url, &agents[0]).await;
    let off = known
        .outlets
        .iter()
        .find(|o| !on_route.contains(&o.id))
        .unwrap()
        .clone();
    let mut b = MutationBuilder::new();
    let mut batch = Vec::new();
    for outlet in [
        known.outlets.iter().find(|o| o.id == on_route[0]).unwrap(),
        known.outlets.iter().find(|o| o.id == on_route[1]).unwrap(),
        &off,
    ] {
        let visit = uuid::Uuid::now_v7();
        batch.push(b.start_visit(visit, outlet));
        batch.push(b.end_visit(visit, outlet));
    }
    assert_eq!(client.push(session, batch).await.status, 200);
    let (flagged,): (i64,) = sqlx::query_as(
        "SELECT COUNT(DISTINCT visit_id) FROM visit_signals WHERE visit_id IN (SELECT id FROM visits)",
    )
    .fetch_one(s.test_pool())
    .await
    .unwrap();
    let mut p = params(vec![d], Source::Orders, GroupBy::Agent);
    p.from = day.clone();
    p.to = day.clone();
    let r = s.visit_coverage(&p).await.unwrap();
    let row = r
        .rows
        .iter()
        .find(|x| x.agent.starts_with("ACME-P0001") && x.day == day)
        .expect("the agent's day");
    assert_eq!(
        (
            row.planned,
            row.covered,
            row.visits,
            row.unplanned,
            row.flagged
        ),
        (on_route.len() as i64, 2, 3, 1, flagged)
    );
    assert_eq!(row.percent(), 200 / on_route.len() as i64);
    assert_eq!(r.total.visits, 3);
    assert_eq!(r.total.planned, on_route.len() as i64);
    server.stop().await;
}
on_both_backends!(
    visit_coverage_counts_the_route_stops_visited_and_the_visits_off_the_route,
    coverage
);

async fn plan_report(db: &TestDb) {
    use fieldsync_server::store::plans::PlanForm;
    ensure_leaflet();
    let (server, agents) = acme_server(db, 2).await;
    let s = &server.store;
    let d = s.distributor_id("ACME").await.unwrap();
    orders(&server, &agents[0], 3).await;
    orders(&server, &agents[1], 2).await;
    let (tz,): (String,) = sqlx::query_as("SELECT timezone FROM distributors WHERE id = $1")
        .bind(d)
        .fetch_one(s.test_pool())
        .await
        .unwrap();
    let month = fieldsync_server::store::plans::period_of(now_ms(), &tz);
    let previous = {
        use fieldsync_protocol::dates;
        let first = dates::parse(&format!("{month}-01")).unwrap();
        dates::format(first.yesterday().unwrap())[..7].to_string()
    };
    // Independently: each outlet's ordered money this month, and each position's quantity.
    let by_outlet: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT o.outlet_id, CAST(SUM(l.sum_minor) AS BIGINT) FROM orders o
         JOIN order_lines l ON l.order_id = o.id WHERE o.distributor_id = $1
         AND o.state NOT IN ('cancelled', 'rejected') GROUP BY o.outlet_id ORDER BY o.outlet_id",
    )
    .bind(d)
    .fetch_all(s.test_pool())
    .await
    .unwrap();
    let by_position: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT o.position_id, CAST(SUM(l.quantity_milli) AS BIGINT) FROM orders o
         JOIN order_lines l ON l.order_id = o.id WHERE o.distributor_id = $1
         AND o.state NOT IN ('cancelled', 'rejected') GROUP BY o.position_id ORDER BY o.position_id",
    )
    .bind(d)
    .fetch_all(s.test_pool())
    .await
    .unwrap();
    assert!(by_outlet.len() >= 2 && by_position.len() == 2);
    let plan = |period: &str, scope: &str, scope_id: i64, measure: &str, target: i64| PlanForm {
        period: period.into(),
        scope: scope.into(),
        scope_id,
        measure: measure.into(),
        target,
        ..Default::default()
    };
    let mut money_target = 0;
    let mut money_achieved = 0;
    for (i, (outlet, sum)) in by_outlet.iter().take(2).enumerate() {
        let target = 100_000 + i as i64 * 50_000;
        money_target += target;
        money_achieved += sum;
        s.save_plan(
            d,
            &plan(&month, "outlet", *outlet, "money", target),
            now_ms(),
        )
        .await
        .unwrap()
        .unwrap();
    }
    let mut qty_target = 0;
    let mut qty_achieved = 0;
    for (position, qty) in &by_position {
        qty_target += 7_000;
        qty_achieved += qty;
        s.save_plan(
            d,
            &plan(&month, "position", *position, "quantity", 7_000),
            now_ms(),
        )
        .await
        .unwrap()
        .unwrap();
    }
    // Last month: a target and nothing achieved.
    s.save_plan(
        d,
        &plan(&previous, "outlet", by_outlet[0].0, "money", 30_000),
        now_ms(),
    )
    .await
    .unwrap()
    .unwrap();
    // Another distributor's plan is never counted.
    let other = seed(s, &small_world("OTHER", 1)).await;
    let od = s.distributor_id("OTHER").await.unwrap();
    let (other_outlet,): (i64,) =
        sqlx::query_as("SELECT MIN(id) FROM outlets WHERE distributor_id = $1")
            .bind(od)
            .fetch_one(s.test_pool())
            .await
            .unwrap();
    let _ = other;
    s.save_plan(
        od,
        &plan(&month, "outlet", other_outlet, "money", 999_999),
        now_ms(),
    )
    .await
    .unwrap()
    .unwrap();

    let months = vec![previous.clone(), month.clone()];
    let r = s.plan_report(&[d], &months, "", 10_000).await.unwrap();
    assert_eq!(r.rows.len(), 5);
    assert_eq!(r.months.len(), 2);
    assert_eq!(
        (r.months[0].money_target, r.months[0].money_achieved),
        (30_000, 0)
    );
    assert_eq!(
        (r.months[1].money_target, r.months[1].money_achieved),
        (money_target, money_achieved)
    );
    assert_eq!(
        (r.months[1].quantity_target, r.months[1].quantity_achieved),
        (qty_target, qty_achieved)
    );
    assert_eq!(
        (r.total.money_target, r.total.money_achieved),
        (money_target + 30_000, money_achieved)
    );
    // Only the agents' plans.
    let agents_only = s
        .plan_report(&[d], &months, "position", 10_000)
        .await
        .unwrap();
    assert_eq!(agents_only.rows.len(), 2);
    assert_eq!(agents_only.total.money_target, 0);
    assert_eq!(agents_only.total.quantity_achieved, qty_achieved);
    // Months: in order and at most twelve.
    assert!(fieldsync_server::store::reports::months_between("2026-12", "2026-11").is_none());
    assert!(fieldsync_server::store::reports::months_between("2025-01", "2026-01").is_none());
    assert_eq!(
        fieldsync_server::store::reports::months_between("2025-11", "2026-02").unwrap(),
        ["2025-11", "2025-12", "2026-01", "2026-02"]
    );

    // The page: totals, chart, exports.
    s.create_key_user(
        "acme-kp",
        "secret123",
        Role::KeyUser,
        &["ACME".into()],
        now_ms(),
    )
    .await
    .unwrap();
    let b = Browser::start().await;
    b.log_in(&server.url, "acme-kp", "secret123").await;
    b.goto(&format!("{}/reports", server.url)).await;
    b.click("#report-plans").await;
    // The default months: this one and the two before.
    assert_eq!(
        b.text("#report-total-money td.target").await,
        fieldsync_server::web::fmt_money(money_target + 30_000)
    );
    assert_eq!(
        b.text("#report-total-money td.achieved").await,
        fieldsync_server::web::fmt_money(money_achieved)
    );
    assert_eq!(b.count("#report tbody tr.row").await, 5);
    assert!(chart_drawn(&b).await);
    assert_eq!(xlsx_status(&b).await, 200);
    b.goto(&format!(
        "{}/reports/plans?from=2024-01&to=2026-12",
        server.url
    ))
    .await;
    assert!(b.text("#error-message").await.contains("at most 12"));
    b.close().await;
    server.stop().await;
}
on_both_backends!(
    the_plan_report_adds_up_targets_and_what_was_achieved,
    plan_report
);
