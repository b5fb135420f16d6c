//! `fieldsync-sim bench visits-list`: the back office's visits list at a million visits.
//!
//! Seeds a world (100 agents, 5,000 outlets), writes `--visits` visits spread over the last
//! year straight into the database (bands, distances and agents varied), then logs in as a
//! head-office key user through the real login form and requests list pages with filters and
//! sorts over HTTP. Reports the server's own time per request (its `Server-Timing` header) and
//! the time on the loopback socket, p50 and p99.
use std::time::Instant;

use fieldsync_server::store::Backend;
use fieldsync_server::store::keyusers::Role;

use crate::bench::{LocalServer, bench_world, import_file, percentile};

/// One device per mobile user of the world, written straight into the database; returns the
/// number of agents, and the smallest outlet id and the number of outlets (synthetic rows
/// spread over the outlets from there).
async fn bench_devices(server: &LocalServer) -> anyhow::Result<(i64, i64, i64)> {
    let pool = server.store.test_pool();
    sqlx::query(
        "INSERT INTO devices (mobile_user_id, device_uid, token_hash, model, app_version, activated_at_ms) \
         SELECT id, 'bench-' || CAST(id AS TEXT), 'bench-token-' || CAST(id AS TEXT), 'bench phone', '1.0', 0 FROM mobile_users",
    )
    .execute(pool)
    .await?;
    let (agents,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM mobile_users")
        .fetch_one(pool)
        .await?;
    let (min_outlet, outlets): (i64, i64) = sqlx::query_as("SELECT MIN(id), COUNT(*) FROM outlets")
        .fetch_one(pool)
        .await?;
    Ok((agents, min_outlet, outlets))
}

/// A CTE `n(i)` counting 1..=n in the backend's dialect, and a UUID-shaped text id made of
/// `n.i` with `tag` as its fourth group.
fn series(server: &LocalServer, n: usize, tag: &str) -> (String, String) {
    match server.store.backend() {
        Backend::Sqlite => (
            format!(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {n}), "
            ),
            format!("printf('00000000-0000-7000-{tag}-%012d', n.i)"),
        ),
        Backend::Postgres => (
            format!("WITH n(i) AS (SELECT generate_series(CAST(1 AS BIGINT), {n})), "),
            format!("'00000000-0000-7000-{tag}-' || lpad(n.i::text, 12, '0')"),
        ),
    }
}

/// Writes `n` synthetic visits for the world's agents (one device each) over the last year.
async fn fill_visits(server: &LocalServer, n: usize) -> anyhow::Result<()> {
    let pool = server.store.test_pool();
    let (agents, min_outlet, outlets) = bench_devices(server).await?;
    let (distributor,): (i64,) = sqlx::query_as("SELECT MIN(id) FROM distributors")
        .fetch_one(pool)
        .await?;
    let now = fieldsync_server::store::now_ms();
    let year_ms: i64 = 365 * 86_400_000;
    let (series, id_expr) = series(server, n, "8000");
    let sql = format!(
        "{series} mu AS (SELECT m.id, m.position_id, dv.id AS device_id, ROW_NUMBER() OVER (ORDER BY m.id) - 1 AS k \
           FROM mobile_users m JOIN devices dv ON dv.mobile_user_id = m.id) \
         INSERT INTO visits (id, distributor_id, device_id, mobile_user_id, position_id, outlet_id, \
           started_device_ms, started_received_ms, ended_device_ms, ended_received_ms, location_band, distance_m, accuracy_m, mock_location) \
         SELECT {id_expr}, {distributor}, mu.device_id, mu.id, mu.position_id, {min_outlet} + (n.i * 7919) % {outlets}, \
           {now} - (n.i * {year_ms}) / {n}, {now} - (n.i * {year_ms}) / {n} + 60000, \
           {now} - (n.i * {year_ms}) / {n} + 600000, {now} - (n.i * {year_ms}) / {n} + 660000, \
           CASE WHEN (n.i * 13) % 100 < 60 THEN 'within' WHEN (n.i * 13) % 100 < 80 THEN 'near' \
                WHEN (n.i * 13) % 100 < 90 THEN 'beyond' WHEN (n.i * 13) % 100 < 96 THEN 'far_beyond' \
                WHEN (n.i * 13) % 100 < 99 THEN 'no_fix' ELSE 'no_reference' END, \
           CAST((n.i * 37) % 5000 AS DOUBLE PRECISION), CAST((n.i * 11) % 300 AS DOUBLE PRECISION), \
           CASE WHEN n.i % 97 = 0 THEN 1 ELSE 0 END \
         FROM n JOIN mu ON mu.k = n.i % {agents}"
    );
    sqlx::query(sqlx::AssertSqlSafe(sql)).execute(pool).await?;
    sqlx::query("ANALYZE").execute(pool).await?;
    Ok(())
}

/// A logged-in browser-like client (cookie kept by hand).
struct WebClient {
    http: reqwest::Client,
    url: String,
    cookie: String,
}

fn set_cookie(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .find(|kv| kv.starts_with(&format!("{name}=")))
        .map(str::to_string)
}

impl WebClient {
    async fn login(url: &str, login: &str, password: &str) -> anyhow::Result<WebClient> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let form = http.get(format!("{url}/login")).send().await?;
        let csrf_cookie =
            set_cookie(&form, "fs_login_csrf").ok_or_else(|| anyhow::anyhow!("no login cookie"))?;
        let csrf = csrf_cookie
            .split_once('=')
            .map(|(_, v)| v.to_string())
            .unwrap_or_default();
        let body = format!("login={login}&password={password}&csrf={csrf}");
        let resp = http
            .post(format!("{url}/login"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("cookie", &csrf_cookie)
            .body(body)
            .send()
            .await?;
        let cookie =
            set_cookie(&resp, "fs_session").ok_or_else(|| anyhow::anyhow!("login refused"))?;
        Ok(WebClient {
            http,
            url: url.to_string(),
            cookie,
        })
    }

    /// One page: (server ms from Server-Timing, loopback ms, the page's row count text).
    async fn get(&self, path: &str) -> anyhow::Result<(f64, f64, String)> {
        let started = Instant::now();
        let resp = self
            .http
            .get(format!("{}{path}", self.url))
            .header("cookie", &self.cookie)
            .send()
            .await?;
        anyhow::ensure!(resp.status().is_success(), "{path}: {}", resp.status());
        let server_ms = resp
            .headers()
            .get("server-timing")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split("dur=").nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0);
        let body = resp.text().await?;
        let total = started.elapsed().as_secs_f64() * 1000.0;
        let count = fieldsync_testkit::text_between(&body, "id=\"row-count\">", '<')
            .unwrap_or("")
            .to_string();
        Ok((server_ms, total, count))
    }
}

/// The visits list at `visits` visits: filters and sorts, server time p50/p99.
pub async fn visits_list(
    postgres: Option<&str>,
    visits: usize,
    requests: usize,
) -> anyhow::Result<()> {
    let (db, server, _agents) = bench_world(postgres, "BENCH", 100, 5_000, 200).await?;
    let t = Instant::now();
    fill_visits(&server, visits).await?;
    eprintln!(
        "{}: seeded {visits} visits in {:.1}s",
        db.label(),
        t.elapsed().as_secs_f64()
    );
    let password = "bench1234";
    server
        .store
        .create_key_user(
            "bench",
            password,
            Role::HeadOffice,
            &[],
            fieldsync_server::store::now_ms(),
        )
        .await?;
    let client = WebClient::login(&server.url, "bench", password).await?;
    let today = jiff::Zoned::now().date();
    let ago = |days: i64| {
        today
            .checked_sub(jiff::Span::new().days(days))
            .unwrap_or(today)
            .to_string()
    };
    let queries: Vec<(&str, String)> = vec![
        ("default: last 7 days, newest first", "/visits".into()),
        (
            "last 30 days, band far away, sorted by outlet",
            format!(
                "/visits?f.started.from={}&f.started.to={today}&f.band=far_beyond&sort=outlet&dir=asc",
                ago(29)
            ),
        ),
        (
            "one agent, whole year, sorted by distance desc",
            format!(
                "/visits?f.started.from={}&f.started.to={today}&f.agent=agent0042&sort=distance&dir=desc",
                ago(364)
            ),
        ),
        (
            "whole year, outlet name contains, band beyond",
            format!(
                "/visits?f.started.from={}&f.started.to={today}&f.outlet=market&f.band=beyond",
                ago(364)
            ),
        ),
        ("last 7 days, page 20", "/visits?page=20".into()),
    ];
    println!(
        "| backend | visits | query | matching rows | requests | server p50 ms | server p99 ms | loopback p50 ms | loopback p99 ms |"
    );
    println!("|---|---:|---|---|---:|---:|---:|---:|---:|");
    for (label, path) in &queries {
        // Warm up the statement cache and the database's pages.
        for _ in 0..5 {
            client.get(path).await?;
        }
        let mut server_ms = Vec::with_capacity(requests);
        let mut total_ms = Vec::with_capacity(requests);
        let mut count = String::new();
        for _ in 0..requests {
            let (s, t, c) = client.get(path).await?;
            server_ms.push(s);
            total_ms.push(t);
            count = c;
        }
        server_ms.sort_by(f64::total_cmp);
        total_ms.sort_by(f64::total_cmp);
        println!(
            "| {} | {visits} | {label} | {count} | {requests} | {:.1} | {:.1} | {:.1} | {:.1} |",
            db.label(),
            percentile(&server_ms, 0.5),
            percentile(&server_ms, 0.99),
            percentile(&total_ms, 0.5),
            percentile(&total_ms, 0.99),
        );
    }
    server.stop().await;
    db.cleanup().await;
    Ok(())
}

/// Writes `n` placed orders of 5 lines each for the world's agents straight into the database.
async fn fill_orders(server: &LocalServer, n: usize) -> anyhow::Result<()> {
    let pool = server.store.test_pool();
    let (agents, min_outlet, outlets) = bench_devices(server).await?;
    let (min_product, products): (i64, i64) =
        sqlx::query_as("SELECT MIN(id), COUNT(*) FROM products")
            .fetch_one(pool)
            .await?;
    let (distributor, price_list, warehouse): (i64, i64, i64) = sqlx::query_as(
        "SELECT MIN(d.id), MIN(pl.id), MIN(w.id) FROM distributors d, price_lists pl, warehouses w",
    )
    .fetch_one(pool)
    .await?;
    let now = fieldsync_server::store::now_ms();
    let (series, id_expr) = series(server, n, "9000");
    let sql = format!(
        "{series} mu AS (SELECT m.id, m.position_id, dv.id AS device_id, ROW_NUMBER() OVER (ORDER BY m.id) - 1 AS k \
           FROM mobile_users m JOIN devices dv ON dv.mobile_user_id = m.id) \
         INSERT INTO orders (id, number, distributor_id, device_id, mobile_user_id, position_id, outlet_id, price_list_id, \
           warehouse_id, total_minor, line_count, state, placed_device_ms, received_at_ms, state_changed_ms) \
         SELECT {id_expr}, n.i, {distributor}, mu.device_id, mu.id, mu.position_id, {min_outlet} + (n.i * 7919) % {outlets}, \
           {price_list}, {warehouse}, 5000, 5, 'placed', {now}, {now}, {now} \
         FROM n JOIN mu ON mu.k = n.i % {agents}"
    );
    sqlx::query(sqlx::AssertSqlSafe(sql)).execute(pool).await?;
    for line in 1..=5 {
        let sql = format!(
            "INSERT INTO order_lines (order_id, line_no, product_id, quantity_milli, price_minor, sum_minor) \
             SELECT o.id, {line}, {min_product} + (o.number * {line} * 31) % {products}, 1000, 1000, 1000 FROM orders o"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql)).execute(pool).await?;
    }
    sqlx::query("UPDATE counters SET value = $1 WHERE name = 'order_number'")
        .bind(n as i64)
        .execute(pool)
        .await?;
    sqlx::query("ANALYZE").execute(pool).await?;
    Ok(())
}

/// Orders handed over per second through the feed: pages of `page` orders read and
/// acknowledged until the feed is empty, then every order confirmed.
pub async fn handoff(postgres: Option<&str>, orders: usize, page: i64) -> anyhow::Result<()> {
    let (db, server, _agents) = bench_world(postgres, "BENCH", 50, 3_000, 2_000).await?;
    fill_orders(&server, orders).await?;
    let d = server.store.distributor_id("BENCH").await?;
    let (_, key) = server
        .store
        .create_api_key(d, "bench", fieldsync_server::store::now_ms())
        .await?;
    let http = reqwest::Client::new();
    let mut feed_ms = Vec::new();
    let mut ack_ms = Vec::new();
    let mut handed = 0usize;
    let mut cursor = 0i64;
    let started = Instant::now();
    loop {
        let t = Instant::now();
        let v: serde_json::Value = serde_json::from_str(
            &http
                .get(format!(
                    "{}/api/v1/orders/feed?after={cursor}&limit={page}",
                    server.url
                ))
                .bearer_auth(&key)
                .send()
                .await?
                .text()
                .await?,
        )?;
        feed_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        let ids: Vec<String> = v["orders"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|o| o["id"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        if ids.is_empty() {
            break;
        }
        let t = Instant::now();
        let r = http
            .post(format!("{}/api/v1/orders/ack", server.url))
            .bearer_auth(&key)
            .header("content-type", "application/json")
            .body(serde_json::json!({ "order_ids": ids }).to_string())
            .send()
            .await?;
        anyhow::ensure!(r.status().is_success(), "ack: {}", r.status());
        ack_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        handed += ids.len();
        cursor = v["next_cursor"].as_i64().unwrap_or(cursor);
    }
    let handoff_s = started.elapsed().as_secs_f64();
    anyhow::ensure!(handed == orders, "handed over {handed} of {orders}");
    // Status updates: confirm a sample of orders one by one, as a system would.
    let sample = orders.min(2_000);
    let mut status_ms = Vec::with_capacity(sample);
    let t0 = Instant::now();
    for i in 1..=sample {
        let id = format!("00000000-0000-7000-9000-{i:012}");
        let t = Instant::now();
        let r = http
            .post(format!("{}/api/v1/orders/{id}/status", server.url))
            .bearer_auth(&key)
            .header("content-type", "application/json")
            .body(r#"{"state":"confirmed","delivery_date":"2026-12-01","lines":[{"line_no":1,"quantity_milli":500}]}"#)
            .send()
            .await?;
        anyhow::ensure!(r.status().is_success(), "status: {}", r.status());
        status_ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let status_s = t0.elapsed().as_secs_f64();
    for v in [&mut feed_ms, &mut ack_ms, &mut status_ms] {
        v.sort_by(f64::total_cmp);
    }
    println!(
        "| backend | orders | page | measure | per second | p50 ms/request | p99 ms/request |"
    );
    println!("|---|---:|---:|---|---:|---:|---:|");
    for (count, page, measure, seconds, latencies) in [
        (
            orders,
            page,
            "handed over (feed + ack)",
            handoff_s,
            vec![&feed_ms, &ack_ms],
        ),
        (
            sample,
            1,
            "status updates (confirmed with a line quantity), one at a time",
            status_s,
            vec![&status_ms],
        ),
    ] {
        // Each latency column holds one p50 (p99) per measured request kind, "feed / ack".
        let column = |p: f64| {
            latencies
                .iter()
                .map(|v| format!("{:.1}", percentile(v, p)))
                .collect::<Vec<_>>()
                .join(" / ")
        };
        println!(
            "| {} | {count} | {page} | {measure} | {:.0} | {} | {} |",
            db.label(),
            count as f64 / seconds,
            column(0.5),
            column(0.99),
        );
    }
    server.stop().await;
    db.cleanup().await;
    Ok(())
}

/// Import throughput: an actual-sales CSV of `rows` lines (invoices of 5 lines) posted to the
/// import API, timed end to end; then the same as XLSX.
pub async fn import(postgres: Option<&str>, rows: usize) -> anyhow::Result<()> {
    let (db, server, _agents) = bench_world(postgres, "BENCH", 10, 5_000, 2_000).await?;
    let d = server.store.distributor_id("BENCH").await?;
    let (_, key) = server
        .store
        .create_api_key(d, "bench", fieldsync_server::store::now_ms())
        .await?;
    let line = |i: usize, prefix: &str| {
        (
            format!("{prefix}{:07}", i / 5),
            format!("2026-11-{:02}", i % 28 + 1),
            format!("O{:06}", (i * 7919) % 5_000 + 1),
            format!("P{:05}", (i * 31) % 2_000 + 1),
            format!("{}.{}", i % 20 + 1, i % 10),
            format!("{}.{:02}", i % 5_000 + 10, i % 100),
        )
    };
    // The columns of a sales file, as the server's import declares them.
    let (_, columns, _, _) = fieldsync_server::store::imports::KINDS
        .iter()
        .find(|kind| kind.0 == "sales")
        .expect("sales imports");
    let mut csv = format!("{}\n", columns.join(","));
    for i in 0..rows {
        let (a, b, c, dd, e, f) = line(i, "C");
        csv.push_str(&format!("{a},{b},{c},{dd},{e},{f}\n"));
    }
    let mut book = rust_xlsxwriter::Workbook::new();
    {
        let sheet = book.add_worksheet();
        for (c, h) in columns.iter().enumerate() {
            sheet.write_string(0, c as u16, *h)?;
        }
        for i in 0..rows {
            let (a, b, c, dd, e, f) = line(i, "X");
            let r = i as u32 + 1;
            sheet.write_string(r, 0, &a)?;
            sheet.write_string(r, 1, &b)?;
            sheet.write_string(r, 2, &c)?;
            sheet.write_string(r, 3, &dd)?;
            sheet.write_number(r, 4, e.parse::<f64>()?)?;
            sheet.write_number(r, 5, f.parse::<f64>()?)?;
        }
    }
    let xlsx = book.save_to_buffer()?;
    let http = reqwest::Client::new();
    println!("| backend | format | rows | bytes | seconds | rows/s | status |");
    println!("|---|---|---:|---:|---:|---:|---|");
    for (format, body, ct) in [
        ("csv", csv.into_bytes(), "text/csv"),
        (
            "xlsx",
            xlsx,
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        ),
    ] {
        let len = body.len();
        let t = Instant::now();
        let job = import_file(
            &http,
            &server.url,
            &key,
            &format!("sales?file_name=bench.{format}"),
            Some(ct),
            body,
            rows,
        )
        .await?;
        let s = t.elapsed().as_secs_f64();
        println!(
            "| {} | {format} | {rows} | {len} | {s:.2} | {:.0} | {} |",
            db.label(),
            rows as f64 / s,
            job["status"].as_str().unwrap_or("")
        );
    }
    server.stop().await;
    db.cleanup().await;
    Ok(())
}

/// An outlet re-import as a distributor's system sends it every night: a file of all
/// `outlets` outlets (`code,name,address`) of which `changed` differ from what is stored,
/// `in_territory` of those in the territory of the first agent. A dry run, then the real run,
/// each timed end to end through the import API; then that agent's phone (a real engine,
/// synced before the import) pulls what changed: changes, bytes and seconds.
pub async fn outlet_reimport(
    postgres: Option<&str>,
    outlets: usize,
    agents: usize,
    changed: usize,
    in_territory: usize,
) -> anyhow::Result<()> {
    anyhow::ensure!(agents > 0 && changed <= outlets, "nothing to change");
    let (db, server, seeded) = bench_world(postgres, "BENCH", agents, outlets, 500).await?;
    let d = server.store.distributor_id("BENCH").await?;
    let (_, key) = server
        .store
        .create_api_key(d, "bench", fieldsync_server::store::now_ms())
        .await?;
    let http = reqwest::Client::new();
    // The seed shares outlet `i` (1-based) out to territory `(i - 1) % agents`: the first
    // agent's outlets are 1, 1 + agents, ...
    let first_agents = |i: usize| (i - 1).is_multiple_of(agents);
    let mut picked = std::collections::HashSet::new();
    picked.extend(
        (1..=outlets)
            .filter(|&i| first_agents(i))
            .take(in_territory),
    );
    let others = outlets - outlets.div_ceil(agents);
    let wanted = changed - picked.len();
    picked.extend(
        (1..=outlets)
            .filter(|&i| !first_agents(i))
            .step_by((others / wanted.max(1)).max(1))
            .take(wanted),
    );
    let file = |renamed: &std::collections::HashSet<usize>| {
        let mut csv = String::from("code,name,address\n");
        for i in 1..=outlets {
            let mark = if renamed.contains(&i) {
                " (new owner)"
            } else {
                ""
            };
            csv.push_str(&format!("O{i:06},Shop {i}{mark},Street {i}\n"));
        }
        csv.into_bytes()
    };
    let base = server.url.clone();
    let post = |query: &'static str, body: Vec<u8>| {
        let http = http.clone();
        let base = base.clone();
        let url = format!("{base}/api/v1/imports/outlets?file_name=outlets.csv{query}");
        let key = key.clone();
        async move {
            let t = Instant::now();
            let resp = http
                .post(url)
                .bearer_auth(&key)
                .header("content-type", "text/csv")
                .body(body)
                .send()
                .await?;
            let status = resp.status();
            let mut job: serde_json::Value = serde_json::from_str(&resp.text().await?)?;
            if status.as_u16() == 202 {
                job = crate::bench::follow_import(&http, &base, &key, &job).await?;
            }
            anyhow::ensure!(status.is_success(), "import failed: {status} {job}");
            anyhow::Ok((t.elapsed().as_secs_f64(), job))
        }
    };
    // The stored names become the file's (not timed), and the phone syncs them.
    post("", file(&Default::default())).await?;
    let dir = tempfile::tempdir()?;
    let engine = fieldsync_agent::Engine::open(dir.path().join("agent.db"))?;
    let transport = fieldsync_agent::HttpTransport::new(&server.url);
    let agent = &seeded[0];
    engine
        .activate(
            &transport,
            &server.url,
            &agent.login,
            &agent.pin,
            "bench",
            "bench",
        )
        .await?;
    engine.sync(&transport).await?;

    let body = file(&picked);
    println!("| backend | outlets | changed | run | seconds | rows/s | status | counts |");
    println!("|---|---:|---:|---|---:|---:|---|---|");
    for (run, query) in [("dry run", "&dry_run=1"), ("real", "")] {
        let (secs, job) = post(query, body.clone()).await?;
        let message = job["message"].as_str().unwrap_or("");
        let counts = message
            .trim_start_matches("dry run, nothing was written: ")
            .split(';')
            .next()
            .unwrap_or("");
        println!(
            "| {} | {outlets} | {} | {run} | {secs:.2} | {:.0} | {} | {counts} |",
            db.label(),
            picked.len(),
            outlets as f64 / secs,
            job["status"].as_str().unwrap_or("")
        );
    }
    let t = Instant::now();
    let report = engine.sync(&transport).await?;
    let secs = t.elapsed().as_secs_f64();
    println!();
    println!(
        "| backend | territory outlets changed | changes pulled | requests | bytes down | seconds |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    println!(
        "| {} | {in_territory} | {} | {} | {} | {secs:.3} |",
        db.label(),
        report.pulled,
        report.requests,
        report.bytes_down
    );
    server.stop().await;
    db.cleanup().await;
    Ok(())
}

/// RDC redistribution of a month: `lines` invoice lines to one RDC (imported as actual sales)
/// split by shares over `outlets` attached outlets; then the same run again (it replaces what
/// the first wrote). Prints the seconds of each and checks the totals.
pub async fn rdc(postgres: Option<&str>, lines: usize, outlets: usize) -> anyhow::Result<()> {
    let (db, server, _agents) = bench_world(postgres, "RDCB", 1, outlets + 1, 2_000).await?;
    let store = &server.store;
    let d = store.distributor_id("RDCB").await?;
    let (_, key) = store
        .create_api_key(d, "bench", fieldsync_server::store::now_ms())
        .await?;
    let http = reqwest::Client::new();
    let codes: Vec<String> = (1..=outlets + 1).map(|i| format!("O{i:06}")).collect();
    let rdc = store
        .save_rdc(
            d,
            None,
            &fieldsync_server::store::rdc::RdcForm {
                outlet_code: codes[0].clone(),
                name: "Bench RDC".into(),
                method: "shares".into(),
                active: true,
                ..Default::default()
            },
        )
        .await?
        .map_err(anyhow::Error::msg)?;
    let mut csv = String::from("code,name,rdc_code,rdc_share\n");
    for (i, c) in codes[1..].iter().enumerate() {
        csv.push_str(&format!(
            "{c},Shop {c},{},{}.{}\n",
            codes[0],
            i % 7 + 1,
            i % 1000
        ));
    }
    import_file(
        &http,
        &server.url,
        &key,
        "outlets?format=csv",
        None,
        csv.into_bytes(),
        outlets,
    )
    .await?;
    let mut sales =
        String::from("invoice_number,invoice_date,outlet_code,product_code,quantity,amount\n");
    for i in 0..lines {
        sales.push_str(&format!(
            "R{:07},2026-11-{:02},{},P{:05},{}.{},{}.{:02}\n",
            i / 10,
            i % 28 + 1,
            codes[0],
            (i * 31) % 2_000 + 1,
            i % 20 + 1,
            i % 10,
            i % 5_000 + 10,
            i % 100
        ));
    }
    import_file(
        &http,
        &server.url,
        &key,
        "sales?format=csv",
        None,
        sales.into_bytes(),
        lines,
    )
    .await?;
    let scope = fieldsync_server::store::rdc::RunScope {
        from: "2026-11-01".into(),
        to: "2026-11-30".into(),
        rdc_ids: vec![rdc],
        invoices: vec![],
    };
    println!("| backend | invoice lines | outlets | run | seconds | parts written | lines/s |");
    println!("|---|---:|---:|---|---:|---:|---:|");
    for run in ["first", "again"] {
        let t = Instant::now();
        let report = store
            .redistribute(d, &scope, fieldsync_server::store::now_ms())
            .await?;
        let s = t.elapsed().as_secs_f64();
        anyhow::ensure!(
            report.failures.is_empty(),
            "failures: {:?}",
            report.failures
        );
        println!(
            "| {} | {} | {outlets} | {run} | {s:.2} | {} | {:.0} |",
            db.label(),
            report.lines,
            report.parts,
            report.lines as f64 / s
        );
    }
    server.stop().await;
    db.cleanup().await;
    Ok(())
}

/// The sales report at `orders` × 5 order lines and `sales` invoice lines over the last year:
/// server time p50/p99 per request, for each grouping and source.
pub async fn report(
    postgres: Option<&str>,
    orders: usize,
    sales: usize,
    requests: usize,
) -> anyhow::Result<()> {
    let (db, server, _agents) = bench_world(postgres, "BENCH", 100, 5_000, 2_000).await?;
    let t = Instant::now();
    fill_report_data(&server, orders, sales).await?;
    eprintln!(
        "{}: seeded {} order lines and {sales} invoice lines in {:.1}s",
        db.label(),
        orders * 5,
        t.elapsed().as_secs_f64()
    );
    let password = "bench1234";
    server
        .store
        .create_key_user(
            "bench",
            password,
            Role::HeadOffice,
            &[],
            fieldsync_server::store::now_ms(),
        )
        .await?;
    let client = WebClient::login(&server.url, "bench", password).await?;
    let today = jiff::Zoned::now().date();
    let ago = |days: i64| {
        today
            .checked_sub(jiff::Span::new().days(days))
            .unwrap_or(today)
            .to_string()
    };
    let month = format!("from={}&to={today}", ago(29));
    let year = format!("from={}&to={today}", ago(364));
    let queries: Vec<(String, String)> = [
        ("orders", "agent", &month, "30 days"),
        ("orders", "outlet", &month, "30 days"),
        ("orders", "brand", &year, "a year"),
        ("orders", "day", &year, "a year"),
        ("sales", "category", &month, "30 days"),
        ("sales", "outlet", &year, "a year"),
        ("sales", "day", &year, "a year"),
    ]
    .iter()
    .map(|(source, group, range, label)| {
        (
            format!("{source} by {group}, {label}"),
            format!("/reports/sales?source={source}&group={group}&{range}"),
        )
    })
    .collect();
    println!(
        "| backend | order lines | invoice lines | report | requests | server p50 ms | server p99 ms | loopback p99 ms |"
    );
    println!("|---|---:|---:|---|---:|---:|---:|---:|");
    for (label, path) in &queries {
        for _ in 0..2 {
            client.get(path).await?;
        }
        let mut server_ms = Vec::with_capacity(requests);
        let mut total_ms = Vec::with_capacity(requests);
        for _ in 0..requests {
            let (s, t, _) = client.get(path).await?;
            server_ms.push(s);
            total_ms.push(t);
        }
        server_ms.sort_by(f64::total_cmp);
        total_ms.sort_by(f64::total_cmp);
        println!(
            "| {} | {} | {sales} | {label} | {requests} | {:.1} | {:.1} | {:.1} |",
            db.label(),
            orders * 5,
            percentile(&server_ms, 0.5),
            percentile(&server_ms, 0.99),
            percentile(&total_ms, 0.99),
        );
    }
    server.stop().await;
    db.cleanup().await;
    Ok(())
}

/// `orders` orders of 5 lines over the last year (every 20th cancelled) and `sales` invoice
/// lines over the last year, straight into the database.
async fn fill_report_data(server: &LocalServer, orders: usize, sales: usize) -> anyhow::Result<()> {
    let pool = server.store.test_pool();
    let (agents, min_outlet, outlets) = bench_devices(server).await?;
    let (min_product, products): (i64, i64) =
        sqlx::query_as("SELECT MIN(id), COUNT(*) FROM products")
            .fetch_one(pool)
            .await?;
    let (distributor, price_list, warehouse): (i64, i64, i64) = sqlx::query_as(
        "SELECT MIN(d.id), MIN(pl.id), MIN(w.id) FROM distributors d, price_lists pl, warehouses w",
    )
    .fetch_one(pool)
    .await?;
    let now = fieldsync_server::store::now_ms();
    let year_ms: i64 = 365 * 86_400_000;
    let (order_series, id_expr) = series(server, orders, "9100");
    let sql = format!(
        "{order_series} mu AS (SELECT m.id, m.position_id, dv.id AS device_id, ROW_NUMBER() OVER (ORDER BY m.id) - 1 AS k \
           FROM mobile_users m JOIN devices dv ON dv.mobile_user_id = m.id) \
         INSERT INTO orders (id, number, distributor_id, device_id, mobile_user_id, position_id, outlet_id, price_list_id, \
           warehouse_id, total_minor, line_count, state, placed_device_ms, received_at_ms, state_changed_ms) \
         SELECT {id_expr}, n.i, {distributor}, mu.device_id, mu.id, mu.position_id, {min_outlet} + (n.i * 7919) % {outlets}, \
           {price_list}, {warehouse}, 5000, 5, CASE WHEN n.i % 20 = 0 THEN 'cancelled' ELSE 'placed' END, \
           {now} - (n.i * {year_ms}) / {orders}, {now}, {now} \
         FROM n JOIN mu ON mu.k = n.i % {agents}"
    );
    sqlx::query(sqlx::AssertSqlSafe(sql)).execute(pool).await?;
    for line in 1..=5 {
        let sql = format!(
            "INSERT INTO order_lines (order_id, line_no, product_id, quantity_milli, price_minor, sum_minor) \
             SELECT o.id, {line}, {min_product} + (o.number * {line} * 31) % {products}, 1000 * {line}, 1000, 1000 * {line} \
             FROM orders o"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql)).execute(pool).await?;
    }
    let (sales_series, _) = series(server, sales, "9200");
    let date = match server.store.backend() {
        Backend::Sqlite => "date('now', '-' || (n.i % 365) || ' days')",
        Backend::Postgres => "to_char(current_date - CAST(n.i % 365 AS INTEGER), 'YYYY-MM-DD')",
    };
    let sql = format!(
        "{sales_series} x AS (SELECT 1) \
         INSERT INTO actual_sales (distributor_id, invoice_number, line_no, invoice_date, outlet_id, product_id, \
           quantity_milli, amount_minor, job_id) \
         SELECT {distributor}, 'S' || CAST(n.i / 5 AS TEXT), n.i % 5 + 1, {date}, {min_outlet} + (n.i * 7919) % {outlets}, \
           {min_product} + (n.i * 31) % {products}, 1000 + n.i % 7000, 100 + n.i % 9000, 0 FROM n"
    );
    sqlx::query(sqlx::AssertSqlSafe(sql)).execute(pool).await?;
    sqlx::query("ANALYZE").execute(pool).await?;
    Ok(())
}
