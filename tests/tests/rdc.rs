//! Distribution centres on SQLite and PostgreSQL: outlets attached by the outlet loader, the
//! RDC's invoices redistributed by shares, equally and by the outlets' orders, every part adding
//! up to its invoice line exactly (random invoices and shares), a run again changing nothing, and
//! the RDC's card with its re-run in a real Chromium.

use fieldsync_server::store::keyusers::Role;
use fieldsync_server::store::now_ms;
use fieldsync_server::store::rdc::{RdcForm, RunScope};
use fieldsync_tests::browser::Browser;
use fieldsync_tests::*;
use rand::{Rng, SeedableRng};

/// A decimal of `scale` places, as a file writes it.
fn dec(v: i64, scale: u32) -> String {
    let unit = 10i64.pow(scale);
    let sign = if v < 0 { "-" } else { "" };
    format!(
        "{sign}{}.{:0w$}",
        v.abs() / unit,
        v.abs() % unit,
        w = scale as usize
    )
}

/// The outlet codes of the distributor, in id order.
async fn outlet_codes(server: &TestServer, d: i64) -> Vec<String> {
    let rows: Vec<(String,)> =
        sqlx::query_as("SELECT code FROM outlets WHERE distributor_id = $1 ORDER BY id")
            .bind(d)
            .fetch_all(server.store.test_pool())
            .await
            .unwrap();
    rows.into_iter().map(|r| r.0).collect()
}

/// Every stored part, in key order: (invoice, line, outlet, quantity, amount).
async fn parts(server: &TestServer) -> Vec<(String, i64, i64, i64, i64)> {
    sqlx::query_as(
        "SELECT invoice_number, line_no, outlet_id, quantity_milli, amount_minor FROM rdc_distributed
         ORDER BY invoice_number, line_no, outlet_id",
    )
    .fetch_all(server.store.test_pool())
    .await
    .unwrap()
}

async fn redistribution(db: &TestDb) {
    let (server, _) = acme_server(db, 1).await;
    let s = &server.store;
    let d = s.distributor_id("ACME").await.unwrap();
    let api = ApiClient::new(&server, "ACME", "erp").await;
    let codes = outlet_codes(&server, d).await;
    let products: Vec<(String,)> =
        sqlx::query_as("SELECT code FROM products WHERE distributor_id = $1 ORDER BY id LIMIT 5")
            .bind(d)
            .fetch_all(s.test_pool())
            .await
            .unwrap();
    let rdc_code = codes[0].clone();
    let rdc = s
        .save_rdc(
            d,
            None,
            &RdcForm {
                outlet_code: rdc_code.clone(),
                name: "Central RDC".into(),
                method: "shares".into(),
                active: true,
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .unwrap();

    for seed in 1..=3u64 {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed + db.label().len() as u64);
        // Random shares (some 0), loaded with the outlet loader; one bad RDC code.
        let attached: Vec<&String> = codes[1..].iter().take(rng.random_range(2..8)).collect();
        let mut csv = String::from("code,name,rdc_code,rdc_share\n");
        for c in &attached {
            csv += &format!(
                "{c},Outlet {c},{rdc_code},{}.{}\n",
                rng.random_range(0..60),
                rng.random_range(0..1000)
            );
        }
        csv += &format!("{},Stray,NO-SUCH-RDC,10\n", codes[9]);
        let (st, job) = api.import("outlets?format=csv", csv).await;
        assert_eq!(st, 200, "{job}");
        assert!(
            job["errors"][0][1].as_str().unwrap().contains("no RDC"),
            "{job}"
        );
        // Random invoices to the RDC, returns (negative lines) included.
        let mut sales =
            String::from("invoice_number,invoice_date,outlet_code,product_code,quantity,amount\n");
        let mut expected: std::collections::BTreeMap<(String, i64), (i64, i64)> =
            Default::default();
        for inv in 0..rng.random_range(3..12) {
            for line in 1..=rng.random_range(1..5) {
                let q: i64 = rng.random_range(-5_000..50_000);
                let a: i64 = rng.random_range(-100_000..10_000_000);
                let number = format!("S{seed}-{inv}");
                sales += &format!(
                    "{number},2026-11-{:02},{rdc_code},{},{},{}\n",
                    1 + inv % 28,
                    products[line as usize % products.len()].0,
                    dec(q, 3),
                    dec(a, 2)
                );
                expected.insert((number, line), (q, a));
            }
        }
        let (st, job) = api.import("sales?format=csv", sales).await;
        assert_eq!(st, 200, "{job}");
        let scope = RunScope {
            from: "2026-11-01".into(),
            to: "2026-11-30".into(),
            rdc_ids: vec![rdc],
            invoices: vec![],
        };
        let report = s.redistribute(d, &scope, now_ms()).await.unwrap();
        let first = parts(&server).await;
        // Every line of this round adds up exactly, to the thousandth and the minor unit.
        for ((invoice, line), (q, a)) in &expected {
            let mine: Vec<_> = first
                .iter()
                .filter(|p| &p.0 == invoice && p.1 == *line)
                .collect();
            let failed = report
                .failures
                .iter()
                .any(|f| &f.0 == invoice && f.1 == *line);
            if failed {
                assert!(mine.is_empty());
                continue;
            }
            assert_eq!(
                mine.iter().map(|p| p.3).sum::<i64>(),
                *q,
                "{invoice}/{line}"
            );
            assert_eq!(
                mine.iter().map(|p| p.4).sum::<i64>(),
                *a,
                "{invoice}/{line}"
            );
        }
        // Again: the same rows, whatever ran before.
        s.redistribute(d, &scope, now_ms()).await.unwrap();
        assert_eq!(
            parts(&server).await,
            first,
            "seed {seed}: a re-run changed something"
        );
    }

    // Equally, counting the RDC itself: three recipients of one invoice line of 100.00.
    let mut csv = String::from("code,name,rdc_code,rdc_share\n");
    for c in &codes[1..] {
        csv += &format!("{c},Outlet {c},,\n");
    }
    csv += &format!(
        "{},Two,{rdc_code},\n{},Three,{rdc_code},\n",
        codes[2], codes[3]
    );
    assert_eq!(api.import("outlets?format=csv", csv).await.0, 200);
    s.save_rdc(
        d,
        Some(rdc),
        &RdcForm {
            outlet_code: rdc_code.clone(),
            name: "Central RDC".into(),
            method: "equal".into(),
            to_self: true,
            active: true,
            ..Default::default()
        },
    )
    .await
    .unwrap()
    .unwrap();
    let sale = format!(
        "invoice_number,invoice_date,outlet_code,product_code,quantity,amount\nEQ-1,2026-12-02,{rdc_code},{},1,100\n",
        products[0].0
    );
    assert_eq!(api.import("sales?format=csv", sale).await.0, 200);
    let one = RunScope {
        from: "2026-12-01".into(),
        to: "2026-12-31".into(),
        rdc_ids: vec![],
        invoices: vec!["EQ-1".into()],
    };
    let report = s.redistribute(d, &one, now_ms()).await.unwrap();
    assert_eq!((report.lines, report.parts), (1, 3));
    let eq: Vec<i64> = parts(&server)
        .await
        .into_iter()
        .filter(|p| p.0 == "EQ-1")
        .map(|p| p.4)
        .collect();
    let mut sorted = eq.clone();
    sorted.sort();
    assert_eq!(sorted, vec![3333, 3333, 3334]);

    // By orders: no orders of the attached outlets in December → a failure, nothing written.
    s.save_rdc(
        d,
        Some(rdc),
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
    let report = s.redistribute(d, &one, now_ms()).await.unwrap();
    assert_eq!(report.failures.len(), 1, "{report:?}");
    assert!(report.failures[0].2.contains("no orders"), "{report:?}");
    assert!(
        parts(&server).await.iter().all(|p| p.0 != "EQ-1"),
        "the failed line's earlier parts are replaced by nothing"
    );
    server.stop().await;
}
on_both_backends!(
    rdc_invoices_are_redistributed_exactly_and_a_rerun_changes_nothing,
    redistribution
);

async fn rdc_card(db: &TestDb) {
    let (server, _) = acme_server(db, 1).await;
    let s = &server.store;
    let d = s.distributor_id("ACME").await.unwrap();
    let api = ApiClient::new(&server, "ACME", "erp").await;
    let codes = outlet_codes(&server, d).await;
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
    b.goto(&format!("{}/rdcs", server.url)).await;
    b.run("document.getElementById('create-rdc').open = true")
        .await;
    b.fill("#rdc-outlet", &codes[0]).await;
    b.fill("#rdc-name", "Kyiv RDC").await;
    b.click("#save-new-rdc").await;
    assert!(b.text("#rdc-outlets").await.contains("No outlets"));
    // Attach two outlets, 70 % and 30 %, and import an invoice to the RDC.
    let csv = format!(
        "code,name,rdc_code,rdc_share\n{},A,{r},70\n{},B,{r},30\n",
        codes[1],
        codes[2],
        r = codes[0]
    );
    assert_eq!(api.import("outlets?format=csv", csv).await.0, 200);
    let (product,): (String,) =
        sqlx::query_as("SELECT code FROM products WHERE distributor_id = $1 ORDER BY id LIMIT 1")
            .bind(d)
            .fetch_one(s.test_pool())
            .await
            .unwrap();
    let sale = format!(
        "invoice_number,invoice_date,outlet_code,product_code,quantity,amount\nR-1,2026-11-10,{},{product},3,100.01\n",
        codes[0]
    );
    assert_eq!(api.import("sales?format=csv", sale).await.0, 200);
    b.run("location.reload()").await;
    b.goto(&b.current_url().await).await;
    assert_eq!(b.text("#share-total").await, "100 %");
    // Date inputs take their value as typed in the browser's locale: set it directly.
    b.run(
        "document.getElementById('run-from').value = '2026-11-01'; \
         document.getElementById('run-to').value = '2026-11-30';",
    )
    .await;
    b.click("#run-now").await;
    assert!(
        b.find_opt("#run-done").await.is_some(),
        "{}",
        b.text("body").await
    );
    assert_eq!(b.count("#rdc-result tr.part").await, 2);
    assert_eq!(b.text("#result-money").await, "100.01");
    assert_eq!(b.text("#result-qty").await, "3");
    shot(&b, db, "rdc-card").await;
    // Run again: the same two parts, and a second run in the list.
    b.click("#run-now").await;
    assert_eq!(b.count("#rdc-result tr.part").await, 2);
    assert_eq!(b.text("#result-money").await, "100.01");
    assert_eq!(b.count("#rdc-runs tr").await, 2);
    b.close().await;
    server.stop().await;
}
on_both_backends!(
    the_rdc_card_shows_attached_outlets_and_reruns_its_redistribution,
    rdc_card
);
