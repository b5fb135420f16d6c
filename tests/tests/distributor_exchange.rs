//! The distributors' API over real sockets, on SQLite and PostgreSQL: exactly-once handoff of
//! orders (also under crashes and retries, as a property test), status changes reaching the
//! agent's engine, refusals of illegal moves, isolation between distributors, and the OpenAPI
//! document against the routes.

use std::collections::{HashMap, HashSet};

use fieldsync_agent::{Engine, HttpTransport, OrderDraft};
use fieldsync_protocol::ids;
use fieldsync_server::store::now_ms;
use fieldsync_tests::*;
use proptest::prelude::*;
use serde_json::{Value, json};

/// A distributor's system talking JSON.
struct Api(ApiClient);

impl Api {
    async fn new(server: &TestServer, distributor: &str) -> Api {
        Api(ApiClient::new(server, distributor, "test").await)
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let url = format!("{}{path}", self.0.url);
        let mut req = match method {
            "GET" => self.0.http.get(url),
            _ => self.0.http.post(url),
        }
        .bearer_auth(&self.0.key);
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn feed(&self, after: i64, limit: i64) -> Value {
        let (s, v) = self
            .call(
                "GET",
                &format!("/api/v1/orders/feed?after={after}&limit={limit}"),
                None,
            )
            .await;
        assert_eq!(s, 200, "{v}");
        v
    }

    async fn ack(&self, ids: &[String]) -> Vec<String> {
        let (s, v) = self
            .call(
                "POST",
                "/api/v1/orders/ack",
                Some(json!({ "order_ids": ids })),
            )
            .await;
        assert_eq!(s, 200, "{v}");
        v["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["result"].as_str().unwrap().to_string())
            .collect()
    }

    async fn status(&self, id: &str, body: Value) -> (u16, Value) {
        self.call("POST", &format!("/api/v1/orders/{id}/status"), Some(body))
            .await
    }
}

fn order_ids(page: &Value) -> Vec<String> {
    page["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap().to_string())
        .collect()
}

/// An activated, synced engine that placed one order in a visit (and kept one draft).
async fn engine_with_order(
    server: &TestServer,
    agent: &fieldsync_server::seed::SeededAgent,
    dir: &tempfile::TempDir,
) -> (Engine, uuid::Uuid) {
    let e = Engine::open(dir.path().join("agent.db")).unwrap();
    let t = HttpTransport::new(&server.url);
    e.activate(
        &t,
        &server.url,
        &agent.login,
        &agent.pin,
        "test phone",
        "1.0",
    )
    .await
    .unwrap();
    e.sync(&t).await.unwrap();
    let today = fieldsync_app::fmt::date(e.now_ms());
    let stop = e
        .route(&today)
        .unwrap()
        .into_iter()
        .next()
        .expect("a route today");
    let (lat, lon) = stop.outlet.location.unwrap_or((504_501_000, 305_234_000));
    let visit = e
        .start_visit(
            stop.outlet.id,
            Some(stop.route_id),
            vec![fix_at(lat, lon, 50)],
        )
        .unwrap();
    let products = e
        .search_products("", stop.outlet.price_list_id, 10)
        .unwrap();
    let draft = OrderDraft {
        visit_id: Some(visit),
        outlet_id: stop.outlet.id,
        warehouse_id: e.warehouses().unwrap()[0].id,
        lines: products.iter().take(3).map(|p| (p.id, 2000)).collect(),
        ..Default::default()
    };
    e.save_order_draft(&draft).unwrap();
    let order = e.place_order(draft).unwrap();
    e.end_visit(visit, vec![fix_at(lat, lon, 50)]).unwrap();
    e.sync(&t).await.unwrap();
    (e, order)
}

async fn handoff_and_status(db: &TestDb) {
    let (server, agents) = acme_server(db, 1).await;
    let dir = tempfile::tempdir().unwrap();
    let (engine, order) = engine_with_order(&server, &agents[0], &dir).await;
    let api = Api::new(&server, "ACME").await;

    // The placed order is in the feed with its lines; the draft never is.
    let page = api.feed(0, 100).await;
    assert_eq!(order_ids(&page), vec![order.to_string()]);
    let o = &page["orders"][0];
    assert_eq!(o["state"], "placed");
    assert_eq!(o["lines"].as_array().unwrap().len(), 3);
    assert_eq!(o["agent_login"], agents[0].login.as_str());
    // Not acknowledged: it comes again (a crash before the acknowledgement loses nothing).
    assert_eq!(order_ids(&api.feed(0, 100).await), vec![order.to_string()]);
    // Acknowledged: never again. Acknowledging twice is harmless.
    assert_eq!(api.ack(&[order.to_string()]).await, vec!["acknowledged"]);
    assert!(order_ids(&api.feed(0, 100).await).is_empty());
    assert_eq!(
        api.ack(&[order.to_string(), "no-such-order".into()]).await,
        vec!["already_acknowledged", "unknown"]
    );

    // Confirmed with other quantities and a delivery date.
    let (s, v) = api
        .status(
            &order.to_string(),
            json!({"state": "confirmed", "delivery_date": "2026-12-01",
                   "lines": [{"line_no": 1, "quantity_milli": 1000}]}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["state"], "confirmed");
    assert_eq!(v["lines"][0]["confirmed_quantity_milli"], 1000);
    // Illegal moves are refused with the current state; nothing changes.
    let (s, v) = api
        .status(&order.to_string(), json!({"state": "accepted"}))
        .await;
    assert_eq!(s, 409, "{v}");
    assert_eq!(v["code"], "illegal_transition");
    assert_eq!(v["current_state"], "confirmed");
    let (s, v) = api
        .status(&order.to_string(), json!({"state": "rejected"}))
        .await;
    assert_eq!(
        (s, v["code"].as_str()),
        (400, Some("invalid")),
        "a rejection needs a reason"
    );
    let (s, v) = api
        .status(&order.to_string(), json!({"state": "lost"}))
        .await;
    assert_eq!((s, v["code"].as_str()), (400, Some("unknown_state")));
    let (s, _) = api
        .status(
            &order.to_string(),
            json!({"state": "confirmed", "delivery_date": "tomorrow"}),
        )
        .await;
    assert_eq!(s, 400);

    // The agent's phone learns the new state with its next sync.
    let t = HttpTransport::new(&server.url);
    engine.sync(&t).await.unwrap();
    let (state, _) = engine.order_state(order).unwrap().unwrap();
    assert_eq!(state, "confirmed");
    let (s, _) = api
        .status(
            &order.to_string(),
            json!({"state": "shipped", "document_number": "INV-77", "document_date": "2026-11-30",
                   "total_minor": 1234, "lines": [{"line_no": 1, "quantity_milli": 1000}]}),
        )
        .await;
    assert_eq!(s, 200);
    engine.sync(&t).await.unwrap();
    assert_eq!(engine.order_state(order).unwrap().unwrap().0, "shipped");
    let (s, v) = api
        .call("GET", &format!("/api/v1/orders/{order}/history"), None)
        .await;
    assert_eq!(s, 200);
    let states: Vec<&str> = v["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, vec!["confirmed", "shipped"]);
    server.stop().await;
}
on_both_backends!(
    an_order_is_handed_over_once_and_its_status_reaches_the_agent,
    handoff_and_status
);

async fn isolation_and_refusals(db: &TestDb) {
    let (server, agents) = acme_server(db, 1).await;
    seed(&server.store, &small_world("OTHER", 1)).await;
    let dir = tempfile::tempdir().unwrap();
    let (_engine, order) = engine_with_order(&server, &agents[0], &dir).await;
    let other = Api::new(&server, "OTHER").await;
    assert!(order_ids(&other.feed(0, 100).await).is_empty());
    let (s, _) = other
        .call("GET", &format!("/api/v1/orders/{order}"), None)
        .await;
    assert_eq!(s, 404);
    assert_eq!(other.ack(&[order.to_string()]).await, vec!["unknown"]);
    let (s, _) = other
        .status(&order.to_string(), json!({"state": "accepted"}))
        .await;
    assert_eq!(s, 404);
    // ACME's own key still finds it untouched in the feed.
    let acme = Api::new(&server, "ACME").await;
    assert_eq!(order_ids(&acme.feed(0, 100).await), vec![order.to_string()]);

    // No key, a wrong key, a revoked key.
    let http = reqwest::Client::new();
    let r = http
        .get(format!("{}/api/v1/orders/feed", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let wrong = Api(ApiClient {
        key: "fsk_wrong".into(),
        ..Api::new(&server, "ACME").await.0
    });
    assert_eq!(wrong.call("GET", "/api/v1/orders/feed", None).await.0, 401);
    let d = server.store.distributor_id("OTHER").await.unwrap();
    let keys = server.store.api_keys(&[d]).await.unwrap();
    server
        .store
        .revoke_api_key(d, keys[0].id, now_ms())
        .await
        .unwrap();
    assert_eq!(other.call("GET", "/api/v1/orders/feed", None).await.0, 401);
    // Malformed bodies and parameters get a clear refusal and change nothing.
    let (s, v) = acme
        .call("POST", "/api/v1/orders/ack", Some(json!({"orders": 1})))
        .await;
    assert_eq!((s, v["code"].as_str()), (400, Some("malformed")), "{v}");
    let r = http
        .post(format!("{}/api/v1/orders/{order}/status", server.url))
        .bearer_auth(&acme.0.key)
        .header("content-type", "application/json")
        .body("{\"state\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert_eq!(
        acme.call("GET", "/api/v1/orders/feed?limit=0", None)
            .await
            .0,
        400
    );
    assert_eq!(
        acme.call("GET", "/api/v1/orders/feed?after=x", None)
            .await
            .0,
        400
    );
    assert_eq!(order_ids(&acme.feed(0, 100).await), vec![order.to_string()]);
    server.stop().await;
}
on_both_backends!(
    a_distributors_key_never_reaches_another_distributors_orders,
    isolation_and_refusals
);

async fn openapi(db: &TestDb) {
    let server = TestServer::start(db).await;
    let http = reqwest::Client::new();
    let doc = get_json(&format!("{}/api/v1/openapi.json", server.url)).await;
    assert_eq!(doc["openapi"], "3.0.3");
    // Every documented operation is a route and every route is documented.
    let mut documented = HashSet::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            documented.insert((method.clone(), path.clone()));
            assert!(op["operationId"].is_string(), "{method} {path}");
            assert!(
                op["responses"]["401"].is_object(),
                "{method} {path} documents 401"
            );
        }
    }
    let routes: HashSet<(String, String)> = fieldsync_server::exchange::ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(documented, routes);
    // Each route answers (401 without a key), so it exists with that method.
    for (method, path) in &routes {
        let url = format!("{}{}", server.url, path.replace("{id}", "x"));
        let r = match method.as_str() {
            "get" => http.get(url),
            _ => http.post(url),
        }
        .send()
        .await
        .unwrap();
        assert_eq!(r.status().as_u16(), 401, "{method} {path}");
    }
    // Every $ref points at a schema that exists.
    let text = doc.to_string();
    for part in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
        let name = part.split('"').next().unwrap();
        assert!(
            doc["components"]["schemas"][name].is_object(),
            "missing schema {name}"
        );
    }
    server.stop().await;
}
on_both_backends!(the_openapi_document_describes_exactly_the_routes, openapi);

/// Counts what a page hands over; returns how many were handed over after their ack.
fn read(page: &Value, acked: &HashSet<String>, received: &mut HashMap<String, usize>) -> usize {
    let mut twice = 0;
    for id in order_ids(page) {
        if acked.contains(&id) {
            twice += 1;
        }
        *received.entry(id).or_default() += 1;
    }
    twice
}

/// What the property test does, step by step.
#[derive(Debug, Clone)]
enum Step {
    /// Agents place this many orders.
    Place(usize),
    /// The distributor reads a page of this size, and then: 0 = acknowledges, 1 = crashes
    /// before acknowledging (forgets the page and its cursor), 2 = acknowledges twice.
    Read(i64, u8),
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    prop::collection::vec(
        prop_oneof![
            (1usize..4).prop_map(Step::Place),
            ((1i64..5), 0u8..3).prop_map(|(n, f)| Step::Read(n, f)),
        ],
        4..14,
    )
}

async fn exactly_once(db: &TestDb, steps: Vec<Step>) {
    let (server, agents) = acme_server(db, 1).await;
    let (device, session, known) = synced_device(&server.url, &agents[0]).await;
    let outlet = known.outlets[0].clone();
    let mut b = MutationBuilder::new();
    let api = Api::new(&server, "ACME").await;
    let mut placed = HashSet::new();
    let mut acked: HashSet<String> = HashSet::new();
    let mut received: HashMap<String, usize> = HashMap::new();
    let mut handed_twice = 0;
    let mut cursor = 0;
    for step in steps.into_iter().chain([Step::Read(500, 0)]) {
        match step {
            Step::Place(n) => {
                let visit = ids::new_id();
                let mut batch = vec![b.start_visit(visit, &outlet)];
                for _ in 0..n {
                    let (id, m) = b.order(&known, visit, &outlet, 2);
                    placed.insert(id.to_string());
                    batch.push(m);
                }
                batch.push(b.end_visit(visit, &outlet));
                assert_eq!(device.push(session, batch).await.status, 200);
            }
            Step::Read(limit, fate) => loop {
                let page = api.feed(cursor, limit).await;
                handed_twice += read(&page, &acked, &mut received);
                let ids = order_ids(&page);
                match fate {
                    1 => {
                        cursor = 0;
                        break;
                    }
                    _ => {
                        api.ack(&ids).await;
                        if fate == 2 {
                            api.ack(&ids).await;
                        }
                        acked.extend(ids);
                        cursor = page["next_cursor"].as_i64().unwrap();
                    }
                }
                if !page["has_more"].as_bool().unwrap() || limit < 500 {
                    break;
                }
            },
        }
    }
    // Drain what is left (the last step read up to 500 and acknowledged).
    loop {
        let page = api.feed(0, 500).await;
        let ids = order_ids(&page);
        if ids.is_empty() {
            break;
        }
        handed_twice += read(&page, &acked, &mut received);
        api.ack(&ids).await;
        acked.extend(ids);
    }
    assert_eq!(
        handed_twice, 0,
        "an order came again after its acknowledgement"
    );
    assert_eq!(
        acked, placed,
        "every placed order was handed over and acknowledged"
    );
    server.stop().await;
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, ..ProptestConfig::default() })]

    #[test]
    fn orders_are_handed_over_exactly_once_whatever_the_crashes_on_sqlite_and_postgres(steps in steps()) {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let db = TestDb::new(Backend::Sqlite).await.unwrap();
            exactly_once(&db, steps.clone()).await;
            db.cleanup().await;
            if let Some(db) = TestDb::new(Backend::Postgres).await {
                exactly_once(&db, steps).await;
                db.cleanup().await;
            }
        });
    }
}

impl Api {
    async fn import(
        &self,
        kind: &str,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> (u16, Value) {
        let (status, text) = self
            .0
            .import_raw(&format!("{kind}?file_name=test"), Some(content_type), body)
            .await;
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}

const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

fn xlsx(rows: &[&[&str]]) -> Vec<u8> {
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    for (r, row) in rows.iter().enumerate() {
        for (c, v) in row.iter().enumerate() {
            match v.parse::<f64>() {
                Ok(n) if r > 0 => sheet.write_number(r as u32, c as u16, n).unwrap(),
                _ => sheet.write_string(r as u32, c as u16, *v).unwrap(),
            };
        }
    }
    book.save_to_buffer().unwrap()
}

async fn count(server: &TestServer, sql: &str) -> i64 {
    count_where(&server.store, sql, &[]).await
}

async fn imports(db: &TestDb) {
    let (server, _) = acme_server(db, 1).await;
    seed(&server.store, &small_world("OTHER", 1)).await;
    let api = Api::new(&server, "ACME").await;
    let acme = server.store.distributor_id("ACME").await.unwrap();
    // A key user renamed an outlet in the back office; the distributor's file wins.
    sqlx::query(
        "UPDATE outlets SET name = 'Edited here' WHERE code = 'O000001' AND distributor_id = $1",
    )
    .bind(acme)
    .execute(server.store.test_pool())
    .await
    .unwrap();

    // Outlets, CSV, rows independent: two applied, one refused with its line and reason.
    let csv = "code;name;address;latitude;longitude;territory_code\n\
               O000001;Market Sonyachnyi;Khreshchatyk 1;50.4501;30.5234;ACME-TR0001\n\
               N-1;New kiosk;Podil 2;50.46;30.51;\n\
               N-2;Far away;;95.0;30.5;\n";
    let (s, job) = api.import("outlets", "text/csv", csv).await;
    assert_eq!(s, 200, "{job}");
    assert_eq!(job["status"], "partial");
    assert_eq!(
        (
            job["rows_read"].as_i64(),
            job["rows_applied"].as_i64(),
            job["rows_refused"].as_i64()
        ),
        (Some(3), Some(2), Some(1))
    );
    assert_eq!(job["errors"][0][0], 4);
    assert!(job["errors"][0][1].as_str().unwrap().contains("globe"));
    assert_eq!(
        count(
            &server,
            "SELECT COUNT(*) FROM outlets WHERE name = 'Market Sonyachnyi' AND lat_e7 = 504501000"
        )
        .await,
        1,
        "the import overwrote the back-office edit"
    );
    assert_eq!(
        count(&server, "SELECT COUNT(*) FROM outlets WHERE code = 'N-2'").await,
        0
    );

    // Products, XLSX.
    let (s, job) = api
        .import(
            "products",
            XLSX,
            xlsx(&[
                &["code", "name", "unit", "must_stock"],
                &["LP-1", "Local tea", "box", "yes"],
                &["LP-2", "Local coffee", "", "0"],
            ]),
        )
        .await;
    assert_eq!(
        (s, job["status"].as_str(), job["rows_applied"].as_i64()),
        (200, Some("done"), Some(2)),
        "{job}"
    );
    assert_eq!(
        count(
            &server,
            "SELECT COUNT(*) FROM products WHERE code = 'LP-1' AND must_stock = 1 AND unit = 'box'"
        )
        .await,
        1
    );

    // Warehouses, JSON.
    let (s, job) = api
        .import(
            "warehouses",
            "application/json",
            json!({"rows": [{"code": "W-NEW", "name": "New warehouse"}]})
                .to_string()
                .into_bytes(),
        )
        .await;
    assert_eq!((s, job["status"].as_str()), (200, Some("done")), "{job}");

    // Stock is all or nothing: one unknown product refuses the whole file.
    let bad = "warehouse_code,product_code,quantity\nW-NEW,LP-1,12\nW-NEW,NOPE,3\n";
    let (s, job) = api.import("stock", "text/csv", bad).await;
    assert_eq!(
        (s, job["status"].as_str(), job["rows_applied"].as_i64()),
        (422, Some("failed"), Some(0)),
        "{job}"
    );
    assert_eq!(job["errors"][0][0], 3);
    assert_eq!(
        count(&server, "SELECT COUNT(*) FROM stock").await,
        0,
        "nothing half-applied"
    );
    let good = "warehouse_code,product_code,quantity\nW-NEW,LP-1,12.5\nW-NEW,LP-2,3\n";
    let (s, _) = api.import("stock", "text/csv", good).await;
    assert_eq!(s, 200);
    assert_eq!(
        count(
            &server,
            "SELECT COUNT(*) FROM stock WHERE quantity_milli = 12500"
        )
        .await,
        1
    );

    // Actual sales: invoices with lines; a re-sent invoice replaces the earlier one.
    let sales = "invoice_number,invoice_date,outlet_code,product_code,quantity,amount\n\
                 INV-1,2026-11-20,O000001,LP-1,2,120.50\nINV-1,2026-11-20,O000001,LP-2,1,80\n\
                 INV-2,2026-11-21,N-1,LP-1,5,300\n";
    let (s, job) = api.import("sales", "text/csv", sales).await;
    assert_eq!((s, job["rows_applied"].as_i64()), (200, Some(3)), "{job}");
    assert_eq!(
        count(
            &server,
            "SELECT COUNT(*) FROM actual_sales WHERE amount_minor = 12050"
        )
        .await,
        1
    );
    let resent = "invoice_number,invoice_date,outlet_code,product_code,quantity,amount\nINV-1,2026-11-20,O000001,LP-1,3,180\n";
    let (s, _) = api.import("sales", "text/csv", resent).await;
    assert_eq!(s, 200);
    assert_eq!(
        count(
            &server,
            "SELECT COUNT(*) FROM actual_sales WHERE invoice_number = 'INV-1'"
        )
        .await,
        1
    );
    let broken = "invoice_number,invoice_date,outlet_code,product_code,quantity,amount\nINV-3,2026-11-22,N-1,LP-1,1,10\nINV-3,22.11.2026,N-1,LP-1,1,10\n";
    let (s, job) = api.import("sales", "text/csv", broken).await;
    assert_eq!((s, job["errors"][0][0].as_i64()), (422, Some(3)), "{job}");
    assert_eq!(
        count(&server, "SELECT COUNT(*) FROM actual_sales").await,
        2,
        "the broken file applied nothing"
    );

    // Routes, XLSX (the route loader).
    let (s, job) = api
        .import(
            "routes",
            XLSX,
            xlsx(&[
                &["date", "position_code", "stop", "outlet_code"],
                &["2026-12-01", "ACME-P0001", "2", "O000001"],
                &["2026-12-01", "ACME-P0001", "1", "N-1"],
            ]),
        )
        .await;
    assert_eq!((s, job["rows_applied"].as_i64()), (200, Some(2)), "{job}");
    let (first,): (String,) = sqlx::query_as(
        "SELECT o.code FROM route_stops rs JOIN routes r ON r.id = rs.route_id JOIN outlets o ON o.id = rs.outlet_id \
         JOIN org_units p ON p.id = r.position_id \
         WHERE r.route_date = '2026-12-01' AND p.code = 'ACME-P0001' ORDER BY rs.stop_order LIMIT 1",
    )
    .fetch_one(server.store.test_pool())
    .await
    .unwrap();
    assert_eq!(first, "N-1");

    // Broken files: refused cleanly, with a message, and nothing applied.
    let before = count(&server, "SELECT COUNT(*) FROM outlets").await;
    let (s, job) = api
        .import(
            "outlets",
            XLSX,
            b"PK\x03\x04 not really a workbook".to_vec(),
        )
        .await;
    assert_eq!((s, job["status"].as_str()), (422, Some("failed")));
    assert!(
        job["message"]
            .as_str()
            .unwrap()
            .contains("not an XLSX workbook"),
        "{job}"
    );
    let (s, job) = api
        .import("outlets", "text/csv", b"code,address\nX,Y\n".to_vec())
        .await;
    assert_eq!(s, 422);
    assert_eq!(job["message"], "required columns missing: name");
    let (s, job) = api
        .import("outlets", "text/csv", vec![0xff, 0xfe, b'a', b'\n'])
        .await;
    assert_eq!(
        (s, job["message"].as_str()),
        (422, Some("the file is not UTF-8 text"))
    );
    let (s, job) = api
        .import(
            "warehouses",
            "application/json",
            b"{\"rows\": [{\"code\": ".to_vec(),
        )
        .await;
    assert_eq!(s, 422);
    assert!(
        job["message"].as_str().unwrap().contains("not JSON"),
        "{job}"
    );
    let (s, _) = api
        .import("warehouses", "application/json", b"{\"rows\": 5}".to_vec())
        .await;
    assert_eq!(s, 422);
    let (s, _) = api
        .import("planets", "text/csv", b"code,name\n".to_vec())
        .await;
    assert_eq!(s, 422);
    assert_eq!(count(&server, "SELECT COUNT(*) FROM outlets").await, before);

    // The job log is readable later, by its own distributor only.
    let id = job["id"].as_i64().unwrap();
    let (s, again) = api
        .call("GET", &format!("/api/v1/import-jobs/{id}"), None)
        .await;
    assert_eq!((s, again["status"].as_str()), (200, Some("failed")));
    let other = Api::new(&server, "OTHER").await;
    assert_eq!(
        other
            .call("GET", &format!("/api/v1/import-jobs/{id}"), None)
            .await
            .0,
        404
    );
    server.stop().await;
}
on_both_backends!(
    imports_apply_valid_rows_log_refused_ones_and_refuse_broken_files,
    imports
);

/// A distributor's receiver: refuses the first `fail_first` posts with 500, checks every
/// signature, and records the order ids of the posts it accepted.
#[derive(Clone, Default)]
struct Receiver {
    posts: std::sync::Arc<std::sync::Mutex<Vec<(bool, Vec<String>)>>>,
}

async fn start_receiver(
    secret: std::sync::Arc<std::sync::Mutex<String>>,
    fail_first: usize,
) -> (String, Receiver) {
    let recv = Receiver::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks/orders", listener.local_addr().unwrap());
    let r = recv.clone();
    let app = axum::Router::new().route(
        "/hooks/orders",
        axum::routing::post(
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let r = r.clone();
                let secret = secret.clone();
                async move {
                    let sig = headers
                        .get("x-fieldsync-signature")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_string();
                    let t: i64 = sig
                        .strip_prefix("t=")
                        .and_then(|s| s.split(',').next())
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(0);
                    let expected = fieldsync_server::exchange::webhooks::signature(
                        &secret.lock().unwrap(),
                        t,
                        &body,
                    );
                    assert_eq!(sig, expected, "the signature checks out");
                    let v: Value = serde_json::from_slice(&body).unwrap();
                    let ids = order_ids(&v);
                    let mut posts = r.posts.lock().unwrap();
                    let accept = posts.len() >= fail_first;
                    posts.push((accept, ids));
                    if accept {
                        axum::http::StatusCode::OK
                    } else {
                        axum::http::StatusCode::INTERNAL_SERVER_ERROR
                    }
                }
            },
        ),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, recv)
}

async fn webhook_push(db: &TestDb) {
    use fieldsync_server::exchange::webhooks::{Deliverer, Targets, deliver_due};
    // The receiver listens on loopback: an operator's setting allows that.
    let targets = Targets {
        allow_private: true,
    };
    let (server, agents) = acme_server(db, 1).await;
    let mut device = SyncedDevice::new(&server.url, &agents[0]).await;
    let (_, orders, batch) = device.visit_with_orders(&[2, 1]);
    let (o1, o2) = (orders[0], orders[1]);
    assert_eq!(device.push(batch).await.status, 200);

    let secret = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let (url, recv) = start_receiver(secret.clone(), 2).await;
    let d = server.store.distributor_id("ACME").await.unwrap();
    assert!(
        server
            .store
            .set_webhook(d, "ftp://nope", targets, now_ms())
            .await
            .is_err()
    );
    *secret.lock().unwrap() = server
        .store
        .set_webhook(d, &url, targets, now_ms())
        .await
        .unwrap();
    let http = Deliverer::new(targets);
    let mut now = now_ms();
    // Two refusals: nothing handed over, the next attempt waits (and is not made early).
    assert_eq!(
        deliver_due(&server.store, &http, now, 1_000).await.unwrap(),
        0
    );
    assert_eq!(
        deliver_due(&server.store, &http, now, 1_000).await.unwrap(),
        0,
        "backing off"
    );
    let hook = server.store.webhook(d).await.unwrap().unwrap();
    assert_eq!((hook.attempts, hook.last_error.as_str()), (1, "HTTP 500"));
    now += 60_000;
    assert_eq!(
        deliver_due(&server.store, &http, now, 1_000).await.unwrap(),
        0
    );
    assert_eq!(server.store.webhook(d).await.unwrap().unwrap().attempts, 2);
    now += 60_000;
    // Accepted: both orders handed over, the feed no longer has them, nothing is posted again.
    assert_eq!(
        deliver_due(&server.store, &http, now, 1_000).await.unwrap(),
        2
    );
    let api = Api::new(&server, "ACME").await;
    assert!(order_ids(&api.feed(0, 100).await).is_empty());
    now += 60_000;
    assert_eq!(
        deliver_due(&server.store, &http, now, 1_000).await.unwrap(),
        0
    );
    let posts = recv.posts.lock().unwrap().clone();
    assert_eq!(posts.len(), 3, "two refused posts and one accepted");
    let accepted: Vec<&Vec<String>> = posts.iter().filter(|p| p.0).map(|p| &p.1).collect();
    assert_eq!(accepted, vec![&vec![o1.to_string(), o2.to_string()]]);
    let hook = server.store.webhook(d).await.unwrap().unwrap();
    assert_eq!((hook.attempts, hook.delivered), (0, 2));
    server.stop().await;
}
on_both_backends!(
    new_orders_are_pushed_to_a_signed_webhook_with_retries_and_handed_over_once,
    webhook_push
);
