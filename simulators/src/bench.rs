//! `fieldsync-sim bench`: measured numbers for BENCHMARKS.md. Each subcommand prints a table.
//!
//! - `push`: ingest throughput and latency of realistic batches at several concurrency levels,
//!   against a real server (in this process, on a port-0 socket) on SQLite or PostgreSQL.
//! - `pull`: a first pull of a big world into a real agent engine.
//! - `wire`: bytes on the wire per GPS fix and per typical visit.
use std::time::{Duration, Instant};

use fieldsync_protocol::v1::{self, mutation::Kind};
use fieldsync_protocol::{PROTOCOL_VERSION, ids, money, paths};
use fieldsync_server::seed::{SeededAgent, WorldSpec};
use prost::Message;
use rand::Rng;
use uuid::Uuid;

use fieldsync_testkit::MutationBuilder;
/// A database for one benchmark run (removed afterwards) and a server in this process on a
/// port-0 socket: the test kit's.
pub use fieldsync_testkit::{TestDb as BenchDb, TestServer as LocalServer};

/// What most benchmarks start from: a fresh database (`None`: SQLite), a server in this
/// process, and a seeded world of distributor `code` with `agents` agents, `outlets` outlets
/// and `products` products.
pub async fn bench_world(
    postgres: Option<&str>,
    code: &str,
    agents: usize,
    outlets: usize,
    products: usize,
) -> anyhow::Result<(BenchDb, LocalServer, Vec<SeededAgent>)> {
    let db = BenchDb::create(postgres).await?;
    let server = LocalServer::start(&db).await;
    let spec = WorldSpec {
        distributor_name: format!("{code} bench"),
        outlets,
        products,
        ..fieldsync_testkit::small_world(code, agents)
    };
    let seeded = fieldsync_server::seed::seed_world(&server.store, &spec).await?;
    Ok((db, server, seeded))
}

/// A protocol-level device for load generation (no local database: the point is the server).
struct Device {
    http: reqwest::Client,
    url: String,
    token: String,
    /// Numbers this device's mutations.
    mutations: MutationBuilder,
    outlets: Vec<v1::Outlet>,
    products: Vec<v1::Product>,
    prices: std::collections::HashMap<(i64, i64), i64>,
    warehouse: i64,
}

async fn post(
    http: &reqwest::Client,
    url: &str,
    path: &str,
    token: Option<&str>,
    body: Vec<u8>,
) -> anyhow::Result<(u16, Vec<u8>)> {
    let mut req = http
        .post(format!("{url}{path}"))
        .header("content-type", fieldsync_protocol::CONTENT_TYPE)
        .body(body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await?;
    let status = resp.status().as_u16();
    Ok((status, resp.bytes().await?.to_vec()))
}

impl Device {
    async fn activate(
        http: &reqwest::Client,
        url: &str,
        agent: &SeededAgent,
    ) -> anyhow::Result<Device> {
        let req = v1::ActivateRequest {
            protocol_version: PROTOCOL_VERSION,
            login: agent.login.clone(),
            pin: agent.pin.clone(),
            device_uid: ids::to_wire(ids::new_id()),
            device_model: "bench".into(),
            app_version: "bench".into(),
            device_time_ms: fieldsync_server::store::now_ms(),
        };
        let (status, body) = post(http, url, paths::ACTIVATE, None, req.encode_to_vec()).await?;
        anyhow::ensure!(
            status == 200,
            "activation of {} failed with {status}",
            agent.login
        );
        let resp = v1::ActivateResponse::decode(body.as_slice())?;
        let mut d = Device {
            http: http.clone(),
            url: url.to_string(),
            token: resp.device_token,
            mutations: MutationBuilder {
                next_seq: resp.next_seq,
            },
            outlets: vec![],
            products: vec![],
            prices: Default::default(),
            warehouse: 0,
        };
        let session = ids::to_wire(ids::new_id());
        let mut cursor = Vec::new();
        loop {
            let req = v1::PullRequest {
                protocol_version: PROTOCOL_VERSION,
                session_id: session.clone(),
                mode: v1::SyncMode::Initial as i32,
                cursor,
                max_changes: 5000,
                device_time_ms: 0,
                utc_offset_minutes: 0,
            };
            let (status, body) =
                post(http, url, paths::PULL, Some(&d.token), req.encode_to_vec()).await?;
            anyhow::ensure!(status == 200, "pull failed with {status}");
            let page = v1::PullResponse::decode(body.as_slice())?;
            for c in page.changes {
                match c.entity {
                    Some(v1::change::Entity::Outlet(o)) => d.outlets.push(o),
                    Some(v1::change::Entity::Product(p)) => d.products.push(p),
                    Some(v1::change::Entity::Price(p)) => {
                        d.prices
                            .insert((p.price_list_id, p.product_id), p.price_minor);
                    }
                    Some(v1::change::Entity::Warehouse(w)) => d.warehouse = w.id,
                    _ => {}
                }
            }
            cursor = page.next_cursor;
            if !page.has_more {
                break;
            }
        }
        d.outlets.dedup_by_key(|o| o.id);
        Ok(d)
    }

    /// A handle that can only push (for a spawned task).
    fn clone_for_push(&self) -> Device {
        Device {
            http: self.http.clone(),
            url: self.url.clone(),
            token: self.token.clone(),
            mutations: MutationBuilder { next_seq: 0 },
            outlets: vec![],
            products: vec![],
            prices: Default::default(),
            warehouse: 0,
        }
    }

    /// One typical visit: start with a fix, an order of `lines` lines, a distribution check of
    /// 10 products, end with a fix. Four mutations.
    fn visit(&mut self, n: usize, lines: usize) -> Vec<v1::Mutation> {
        let outlet = self.outlets[n % self.outlets.len()].clone();
        let visit = ids::new_id();
        let fix = v1::GpsFix {
            lat_e7: outlet.lat_e7 + 150,
            lon_e7: outlet.lon_e7 - 90,
            accuracy_dm: 85,
            provider: v1::LocationProvider::Fused as i32,
            mock: false,
            device_time_ms: fieldsync_server::store::now_ms(),
        };
        let order_lines: Vec<v1::OrderLine> = (0..lines)
            .map(|i| {
                let p = &self.products[(n * 7 + i * 13) % self.products.len()];
                let price = self
                    .prices
                    .get(&(outlet.price_list_id, p.id))
                    .copied()
                    .unwrap_or(1000);
                let q = 1000 * (1 + (i as i64 % 5));
                v1::OrderLine {
                    product_id: p.id,
                    quantity_milli: q,
                    price_minor: price,
                    sum_minor: money::line_sum(q, price).unwrap_or(0),
                    comment: String::new(),
                }
            })
            .collect();
        let total = order_lines.iter().map(|l| l.sum_minor).sum();
        let items = self
            .products
            .iter()
            .take(10)
            .enumerate()
            .map(|(i, p)| v1::DistributionItem {
                product_id: p.id,
                present: i % 3 != 0,
            })
            .collect();
        let (outlet_id, price_list_id, warehouse_id) =
            (outlet.id, outlet.price_list_id, self.warehouse);
        vec![
            self.mutations.wrap(Kind::VisitStarted(v1::VisitStarted {
                visit_id: ids::to_wire(visit),
                outlet_id,
                route_id: 0,
                fixes: vec![fix],
            })),
            self.mutations.wrap(Kind::OrderPlaced(v1::OrderPlaced {
                order_id: ids::to_wire(ids::new_id()),
                visit_id: ids::to_wire(visit),
                outlet_id,
                price_list_id,
                warehouse_id,
                lines: order_lines,
                total_minor: total,
                comment: String::new(),
                delivery_date: String::new(),
                overdue_reason: String::new(),
            })),
            self.mutations
                .wrap(Kind::DistributionChecked(v1::DistributionChecked {
                    check_id: ids::to_wire(ids::new_id()),
                    visit_id: ids::to_wire(visit),
                    items,
                })),
            self.mutations.wrap(Kind::VisitEnded(v1::VisitEnded {
                visit_id: ids::to_wire(visit),
                fixes: vec![fix],
            })),
        ]
    }

    async fn push(&self, mutations: Vec<v1::Mutation>) -> anyhow::Result<Duration> {
        let req = v1::PushRequest {
            protocol_version: PROTOCOL_VERSION,
            session_id: ids::to_wire(ids::new_id()),
            mode: v1::SyncMode::Incremental as i32,
            device_time_ms: fieldsync_server::store::now_ms(),
            utc_offset_minutes: 0,
            app_version: "bench".into(),
            mutations,
        };
        let started = Instant::now();
        let (status, body) = post(
            &self.http,
            &self.url,
            paths::PUSH,
            Some(&self.token),
            req.encode_to_vec(),
        )
        .await?;
        let elapsed = started.elapsed();
        anyhow::ensure!(status == 200, "push failed with {status}");
        let resp = v1::PushResponse::decode(body.as_slice())?;
        let refused = resp
            .results
            .iter()
            .filter(|r| r.outcome() == v1::MutationOutcome::Refused)
            .count();
        anyhow::ensure!(
            refused == 0,
            "bench batch had {refused} refusals: {:?}",
            resp.results.first()
        );
        Ok(elapsed)
    }
}

pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

/// One row of the push table.
#[derive(Debug, Clone)]
pub struct PushRow {
    pub backend: &'static str,
    pub agents: usize,
    pub mutations: usize,
    pub seconds: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// Push ingest at each concurrency level: every agent pushes batches of `batch_visits`
/// typical visits (4 mutations each) until `mutations_per_level` are in.
pub async fn push(
    postgres: Option<&str>,
    levels: &[usize],
    mutations_per_level: usize,
    batch_visits: usize,
    varied: bool,
) -> anyhow::Result<Vec<PushRow>> {
    let agents_needed = levels.iter().copied().max().unwrap_or(1);
    let (db, server, agents) =
        bench_world(postgres, "BENCH", agents_needed, agents_needed * 30, 2000).await?;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()?;
    let mut devices = Vec::new();
    for a in &agents {
        devices.push(Device::activate(&http, &server.url, a).await?);
    }
    let mut rows = Vec::new();
    for &level in levels {
        let per_batch = batch_visits * 4;
        let batches_total = mutations_per_level.div_ceil(per_batch);
        let batches_per_agent = batches_total.div_ceil(level);
        // Build the batches first, so the clock measures the server, not the generator.
        // Each agent's first batch is a warm-up pushed before the clock starts: the server
        // opens its database connections and prepares its statements on first use, a cost
        // paid once per process that would otherwise weigh on short runs with many agents.
        let mut work = Vec::new();
        let mut warmup = Vec::new();
        for d in devices.iter_mut().take(level) {
            let mut first = Vec::with_capacity(per_batch);
            for v in 0..batch_visits {
                first.extend(d.visit(batches_per_agent * batch_visits + v, 5));
            }
            warmup.push(first);
            let mut batches = Vec::new();
            for b in 0..batches_per_agent {
                let mut muts = Vec::with_capacity(per_batch);
                // Varied: from half to one and a half times the size, as real pushes are
                // (the same total); fixed: every batch the same.
                let visits = if varied {
                    batch_visits / 2 + (b * 7) % (batch_visits + 1)
                } else {
                    batch_visits
                };
                for v in 0..visits {
                    muts.extend(d.visit(b * batch_visits + v, 5));
                }
                batches.push(muts);
            }
            work.push(batches);
        }
        let mut warming = Vec::new();
        for (d, first) in devices.iter().take(level).zip(warmup) {
            let device = d.clone_for_push();
            warming.push(tokio::spawn(async move { device.push(first).await }));
        }
        for t in warming {
            t.await??;
        }
        let started = Instant::now();
        let mut tasks = Vec::new();
        for (d, batches) in devices.iter().take(level).zip(work) {
            let device = d.clone_for_push();
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::new();
                let mut count = 0;
                for b in batches {
                    count += b.len();
                    lat.push(device.push(b).await?.as_secs_f64() * 1000.0);
                }
                anyhow::Ok((count, lat))
            }));
        }
        let mut lat = Vec::new();
        let mut total = 0;
        for t in tasks {
            let (n, l) = t.await??;
            total += n;
            lat.extend(l);
        }
        let seconds = started.elapsed().as_secs_f64();
        lat.sort_by(f64::total_cmp);
        rows.push(PushRow {
            backend: db.label(),
            agents: level,
            mutations: total,
            seconds,
            p50_ms: percentile(&lat, 0.5),
            p99_ms: percentile(&lat, 0.99),
        });
    }
    server.stop().await;
    db.cleanup().await;
    Ok(rows)
}

pub fn print_push(rows: &[PushRow], batch_visits: usize, varied: bool) {
    let size = if varied {
        format!(
            "{}..{} (varied)",
            batch_visits / 2,
            batch_visits / 2 + batch_visits
        )
    } else {
        batch_visits.to_string()
    };
    println!(
        "push ingest: batches of {size} visits x 4 mutations (start+fix, order of 5 lines, distribution check of 10, end+fix); one untimed warm-up batch per agent"
    );
    println!(
        "| backend | agents | mutations | seconds | mutations/s | p50 ms/request | p99 ms/request |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for r in rows {
        println!(
            "| {} | {} | {} | {:.2} | {:.0} | {:.1} | {:.1} |",
            r.backend,
            r.agents,
            r.mutations,
            r.seconds,
            r.mutations as f64 / r.seconds,
            r.p50_ms,
            r.p99_ms
        );
    }
}

/// Bytes on the wire: per GPS fix and per typical visit (protobuf, uncompressed).
pub fn wire() {
    let fix = v1::GpsFix {
        lat_e7: 504_501_234,
        lon_e7: 305_234_567,
        accuracy_dm: 125,
        provider: v1::LocationProvider::Fused as i32,
        mock: false,
        device_time_ms: 1_795_000_000_000,
    };
    let start = |fixes: Vec<v1::GpsFix>| v1::Mutation {
        seq: 1234,
        id: ids::to_wire(ids::new_id()),
        device_time_ms: 1_795_000_000_000,
        kind: Some(Kind::VisitStarted(v1::VisitStarted {
            visit_id: ids::to_wire(ids::new_id()),
            outlet_id: 40_123,
            route_id: 0,
            fixes,
        })),
    };
    let one = start(vec![fix]).encoded_len();
    let none = start(vec![]).encoded_len();
    let five = start(vec![fix; 5]).encoded_len();
    println!("| measure | bytes |");
    println!("|---|---:|");
    println!(
        "| one GPS fix inside a visit mutation (with and without it) | {} |",
        one - none
    );
    println!(
        "| GPS fix, average over 5 fixes in one mutation | {:.1} |",
        (five - none) as f64 / 5.0
    );
    let mut d = Device {
        http: reqwest::Client::new(),
        url: String::new(),
        token: String::new(),
        mutations: MutationBuilder { next_seq: 1000 },
        outlets: vec![v1::Outlet {
            id: 40_123,
            lat_e7: 504_501_234,
            lon_e7: 305_234_567,
            price_list_id: 3,
            ..Default::default()
        }],
        products: (0..2000)
            .map(|i| v1::Product {
                id: 10_000 + i,
                ..Default::default()
            })
            .collect(),
        prices: Default::default(),
        warehouse: 2,
    };
    for lines in [5usize, 30] {
        let visit = d.visit(1, lines);
        let bytes: usize = v1::PushRequest {
            protocol_version: 1,
            session_id: ids::to_wire(ids::new_id()),
            mode: 2,
            device_time_ms: 1_795_000_000_000,
            utc_offset_minutes: 0,
            app_version: "0.1.0".into(),
            mutations: visit.clone(),
        }
        .encoded_len();
        let mutations: usize = visit.iter().map(|m| m.encoded_len() + 3).sum();
        println!(
            "| typical visit: start+fix, order of {lines} lines, distribution check of 10, end+fix (mutations in a batch) | {mutations} |"
        );
        println!("| the same visit alone in a push request (with request header) | {bytes} |");
    }
}

/// The whole shop visit on the wire: the first pull of an agent whose `outlets` outlets each
/// have `invoices` open invoices and a plan (and the agent two plans of its own), into a real
/// agent engine over loopback, three times (a new phone each time); then the bytes of claims.
pub async fn shop(
    postgres: Option<&str>,
    outlets: usize,
    products: usize,
    invoices: usize,
) -> anyhow::Result<()> {
    let db = BenchDb::create(postgres).await?;
    let server = LocalServer::start(&db).await;
    let spec = WorldSpec {
        distributor_name: "SHOP bench".into(),
        outlets,
        products,
        invoices_per_outlet: invoices,
        plans: true,
        ..fieldsync_testkit::small_world("SHOP", 1)
    };
    let agents = fieldsync_server::seed::seed_world(&server.store, &spec).await?;
    println!(
        "| backend | outlets | invoices/outlet | products | rows pulled | invoices on phone | plans on phone | requests | seconds | bytes down |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for _ in 0..3 {
        let dir = tempfile::tempdir()?;
        let engine = fieldsync_agent::Engine::open(dir.path().join("agent.db"))?;
        let transport = fieldsync_agent::HttpTransport::new(&server.url);
        let pin = server.store.generate_pin(&agents[0].login).await?;
        engine
            .activate(
                &transport,
                &server.url,
                &agents[0].login,
                &pin,
                "bench",
                "bench",
            )
            .await?;
        let started = Instant::now();
        let report = engine.sync(&transport).await?;
        let secs = started.elapsed().as_secs_f64();
        let ids: Vec<i64> = engine
            .search_outlets("", 100_000)?
            .into_iter()
            .map(|o| o.id)
            .collect();
        let mut on_phone = 0;
        let mut plans = engine.plans(0)?.len();
        for id in &ids {
            on_phone += engine.receivables(*id)?.invoices.len();
            plans += engine.plans(*id)?.len();
        }
        println!(
            "| {} | {} | {invoices} | {products} | {} | {on_phone} | {plans} | {} | {:.3} | {} |",
            db.label(),
            ids.len(),
            report.pulled,
            report.requests,
            secs,
            report.bytes_down,
        );
    }
    server.stop().await;
    db.cleanup().await;
    println!();
    claim_bytes();
    Ok(())
}

/// Bytes of a claim on the wire: its mutation alone and in a push request, by line count.
pub fn claim_bytes() {
    println!("| claim | mutation bytes | in a push request alone |");
    println!("|---|---:|---:|");
    for lines in [1usize, 3, 10] {
        let m = v1::Mutation {
            seq: 1234,
            id: ids::to_wire(ids::new_id()),
            device_time_ms: 1_795_000_000_000,
            kind: Some(Kind::ClaimSaved(v1::ClaimSaved {
                claim_id: ids::to_wire(ids::new_id()),
                visit_id: ids::to_wire(ids::new_id()),
                outlet_id: 40_123,
                lines: (0..lines)
                    .map(|i| v1::ClaimLine {
                        order_id: ids::to_wire(ids::new_id()),
                        line_no: i as u32 + 1,
                        quantity_milli: 2_000,
                        type_id: 101,
                        subtype_id: 104,
                    })
                    .collect(),
                comment: "Torn boxes, two bottles broken".into(),
                register: true,
            })),
        };
        let request = v1::PushRequest {
            protocol_version: 1,
            session_id: ids::to_wire(ids::new_id()),
            mode: 2,
            device_time_ms: 1_795_000_000_000,
            app_version: "0.1.0".into(),
            mutations: vec![m.clone()],
            utc_offset_minutes: 120,
        };
        println!(
            "| registered claim of {lines} line(s), 30-character comment | {} | {} |",
            m.encoded_len(),
            request.encoded_len()
        );
    }
}

/// A first pull of a world of `outlets` outlets (all in one agent's territory) and
/// `products` products into a real agent engine over loopback.
pub async fn pull(postgres: Option<&str>, outlets: usize, products: usize) -> anyhow::Result<()> {
    let (db, server, agents) = bench_world(postgres, "PULL", 1, outlets, products).await?;
    println!(
        "| backend | outlets | products | rows pulled | requests | seconds | rows/s | bytes down | bytes/row |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for _ in 0..3 {
        let dir = tempfile::tempdir()?;
        let engine = fieldsync_agent::Engine::open(dir.path().join("agent.db"))?;
        let transport = fieldsync_agent::HttpTransport::new(&server.url);
        // A fresh PIN per round: each round is a new phone.
        let pin = if engine.is_activated()? {
            unreachable!()
        } else {
            server.store.generate_pin(&agents[0].login).await?
        };
        engine
            .activate(
                &transport,
                &server.url,
                &agents[0].login,
                &pin,
                "bench",
                "bench",
            )
            .await?;
        let started = Instant::now();
        let report = engine.sync(&transport).await?;
        let secs = started.elapsed().as_secs_f64();
        println!(
            "| {} | {outlets} | {products} | {} | {} | {:.3} | {:.0} | {} | {:.1} |",
            db.label(),
            report.pulled,
            report.requests,
            secs,
            report.pulled as f64 / secs,
            report.bytes_down,
            report.bytes_down as f64 / report.pulled.max(1) as f64
        );
    }
    server.stop().await;
    db.cleanup().await;
    Ok(())
}

/// The agent app on a synced territory: cold start (open the local database, start the app's
/// context, build and render the Today screen with its route) and catalogue search over the
/// whole catalogue, the same call the order screen makes on every keystroke.
pub async fn app(
    outlets: usize,
    products: usize,
    starts: usize,
    searches: usize,
) -> anyhow::Result<()> {
    use dioxus::prelude::*;
    use fieldsync_app::ui::ShellProps;

    let (db, server, agents) = bench_world(None, "APP", 1, outlets, products).await?;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("agent.db");
    let (route_len, territory, catalogue, price_list) = {
        let (engine, transport) =
            fieldsync_testkit::activated_engine(&server.url, &agents[0], &path, "bench", "bench")
                .await?;
        engine.sync(&transport).await?;
        let today = fieldsync_app::fmt::date(engine.now_ms());
        let route = engine.route(&today)?;
        let territory = engine.search_outlets("", 100_000)?.len();
        let catalogue = engine.search_products("", 0, 100_000)?;
        let price_list = route.first().map(|s| s.outlet.price_list_id).unwrap_or(0);
        (route.len(), territory, catalogue, price_list)
    };
    server.stop().await;
    db.cleanup().await;
    anyhow::ensure!(route_len > 0, "the territory has no route for today");

    // Cold start, in a fresh thread each time (no warm statement caches survive).
    let mut start_ms = Vec::with_capacity(starts);
    let mut html_len = 0;
    for _ in 0..starts {
        let path = path.clone();
        let (ms, len) = std::thread::spawn(move || {
            let started = Instant::now();
            let engine = fieldsync_agent::Engine::open(&path).expect("open");
            let location = std::sync::Arc::new(fieldsync_app::location::SimulatedLocation::fixed(
                fieldsync_app::location::Position {
                    lat: 50.45,
                    lon: 30.52,
                    accuracy_m: 10.0,
                    mock: false,
                },
            ));
            let ctx = fieldsync_app::start(engine, location, "", None);
            let mut dom = VirtualDom::new_with_props(
                fieldsync_app::Shell,
                ShellProps {
                    initial: fieldsync_app::Screen::Today,
                },
            )
            .with_root_context(ctx);
            dom.rebuild_in_place();
            let html = dioxus_ssr::render(&dom);
            assert!(html.contains("id=\"route\""), "Today shows the route");
            (started.elapsed().as_secs_f64() * 1000.0, html.len())
        })
        .join()
        .map_err(|_| anyhow::anyhow!("cold start panicked"))?;
        start_ms.push(ms);
        html_len = len;
    }
    start_ms.sort_by(f64::total_cmp);

    // Search: fragments of real names and codes, 1 to 6 characters, as an agent types them.
    let engine = fieldsync_agent::Engine::open(&path)?;
    let mut rng = rand::rng();
    let mut search_us = Vec::with_capacity(searches);
    let mut hits = 0usize;
    for i in 0..searches {
        let p = &catalogue[rng.random_range(0..catalogue.len())];
        let source: Vec<char> = if i % 4 == 0 {
            p.code.chars().collect()
        } else {
            p.name.chars().collect()
        };
        let len = rng.random_range(1..=6usize.min(source.len()));
        let at = rng.random_range(0..=source.len() - len);
        let q: String = source[at..at + len].iter().collect();
        let started = Instant::now();
        let found = engine.search_products(&q, price_list, 30)?;
        search_us.push(started.elapsed().as_secs_f64() * 1e6);
        hits += found.len();
    }
    search_us.sort_by(f64::total_cmp);

    println!("| measure | territory | catalogue | runs | p50 | p99 | max |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    println!(
        "| cold start to Today ({route_len} stops, {html_len} bytes of HTML) | {territory} outlets | {} products | {starts} | {:.1} ms | {:.1} ms | {:.1} ms |",
        catalogue.len(),
        percentile(&start_ms, 0.5),
        percentile(&start_ms, 0.99),
        start_ms.last().copied().unwrap_or(0.0)
    );
    println!(
        "| catalogue search (30 first matches, {:.1} on average) | {territory} outlets | {} products | {searches} | {:.2} ms | {:.2} ms | {:.2} ms |",
        hits as f64 / searches as f64,
        catalogue.len(),
        percentile(&search_us, 0.5) / 1000.0,
        percentile(&search_us, 0.99) / 1000.0,
        search_us.last().copied().unwrap_or(0.0) / 1000.0
    );
    Ok(())
}

/// This process's resident memory now, in MiB (Linux `/proc/self/status`).
fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Samples RSS and `/healthz` latency until `stop` is set: (peak RSS MiB, healthz latencies ms).
fn watch(
    url: String,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> tokio::task::JoinHandle<(f64, Vec<f64>)> {
    use std::sync::atomic::Ordering;
    tokio::spawn(async move {
        let http = reqwest::Client::new();
        let mut peak = rss_mib();
        let mut health = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            let t = Instant::now();
            let ok = http
                .get(format!("{url}/healthz"))
                .timeout(Duration::from_secs(30))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ok {
                health.push(t.elapsed().as_secs_f64() * 1000.0);
            } else {
                health.push(f64::INFINITY);
            }
            peak = peak.max(rss_mib());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        health.sort_by(f64::total_cmp);
        (peak, health)
    })
}

/// `concurrency` anonymous logins (unknown logins, so no lockout) and as many activations with
/// unknown logins, all at once, against a server in this process: the server's memory and
/// `/healthz` latency while they run. RSS is this process's (server and load generator; the
/// generator's part is a few MiB).
pub async fn login_flood(postgres: Option<&str>, concurrency: usize) -> anyhow::Result<()> {
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;
    let db = BenchDb::create(postgres).await?;
    let server = LocalServer::start(&db).await;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()?;
    println!(
        "| backend | what | requests at once | answered 401 | refused 503 | other | RSS before MiB | RSS peak MiB | /healthz p50 ms | p99 ms | max ms | seconds |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for what in ["login", "activate"] {
        let before = rss_mib();
        let stop = Arc::new(AtomicBool::new(false));
        let watcher = watch(server.url.clone(), stop.clone());
        tokio::time::sleep(Duration::from_millis(100)).await;
        let started = Instant::now();
        let tasks: Vec<_> = (0..concurrency)
            .map(|i| {
                let (http, url) = (http.clone(), server.url.clone());
                tokio::spawn(async move {
                    let login = format!("stranger-{i}-{}", Uuid::new_v4().simple());
                    let resp = if what == "login" {
                        http.post(format!("{url}/login"))
                            .header("cookie", "fs_login_csrf=tok")
                            .form(&[
                                ("login", login.as_str()),
                                ("password", "guess-12345"),
                                ("csrf", "tok"),
                            ])
                            .send()
                            .await
                    } else {
                        let req = v1::ActivateRequest {
                            protocol_version: PROTOCOL_VERSION,
                            login,
                            pin: "12345678".into(),
                            device_uid: ids::to_wire(ids::new_id()),
                            device_model: "bench".into(),
                            app_version: "bench".into(),
                            device_time_ms: fieldsync_server::store::now_ms(),
                        };
                        http.post(format!("{url}{}", paths::ACTIVATE))
                            .body(req.encode_to_vec())
                            .send()
                            .await
                    };
                    resp.map(|r| r.status().as_u16()).unwrap_or(0)
                })
            })
            .collect();
        let mut statuses = Vec::new();
        for t in tasks {
            statuses.push(t.await?);
        }
        let seconds = started.elapsed().as_secs_f64();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let (peak, health) = watcher.await?;
        let n = |s: u16| statuses.iter().filter(|x| **x == s).count();
        println!(
            "| {} | {what} | {concurrency} | {} | {} | {} | {before:.0} | {peak:.0} | {:.1} | {:.1} | {:.1} | {seconds:.2} |",
            db.label(),
            n(401),
            n(503),
            concurrency - n(401) - n(503),
            percentile(&health, 0.5),
            percentile(&health, 0.99),
            health.last().copied().unwrap_or(0.0),
        );
    }
    server.stop().await;
    db.cleanup().await;
    Ok(())
}

/// Posts a file to the JSON API's imports (`what`: the kind and the query string, as in
/// `outlets?format=csv`) with its `content_type` if given; returns the job, and fails unless
/// all `rows` rows were applied.
pub(crate) async fn import_file(
    http: &reqwest::Client,
    url: &str,
    key: &str,
    what: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
    rows: usize,
) -> anyhow::Result<serde_json::Value> {
    let mut req = http
        .post(format!("{url}/api/v1/imports/{what}"))
        .bearer_auth(key);
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    let resp = req.body(body).send().await?;
    let status = resp.status();
    let mut job: serde_json::Value = serde_json::from_str(&resp.text().await?)?;
    if status.as_u16() == 202 {
        job = follow_import(http, url, key, &job).await?;
    }
    anyhow::ensure!(
        status.is_success() && job["rows_applied"].as_u64() == Some(rows as u64),
        "import failed: {status} {job}"
    );
    Ok(job)
}

/// A job the server answered `202 Accepted` for (still running in the background), polled at
/// its URL until it ends.
pub(crate) async fn follow_import(
    http: &reqwest::Client,
    url: &str,
    key: &str,
    job: &serde_json::Value,
) -> anyhow::Result<serde_json::Value> {
    let id = job["id"].as_i64().unwrap_or_default();
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let text = http
            .get(format!("{url}/api/v1/import-jobs/{id}"))
            .bearer_auth(key)
            .send()
            .await?
            .text()
            .await?;
        let job: serde_json::Value = serde_json::from_str(&text)?;
        if job["status"] != "running" {
            return Ok(job);
        }
    }
}

/// A `rows`-row outlet import through the API while `agents` phones push a visit every
/// 100 ms: push latency while the import runs.
pub async fn import_push(postgres: Option<&str>, rows: usize, agents: usize) -> anyhow::Result<()> {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let (db, server, seeded) = bench_world(postgres, "BENCH", agents, agents * 30, 500).await?;
    let d = server.store.distributor_id("BENCH").await?;
    let (_, key) = server
        .store
        .create_api_key(d, "bench", fieldsync_server::store::now_ms())
        .await?;
    let http = reqwest::Client::builder().build()?;
    let mut devices = Vec::new();
    for a in &seeded {
        let mut dev = Device::activate(&http, &server.url, a).await?;
        // Warm-up push: connections open, statements prepared.
        let first = dev.visit(0, 5);
        dev.push(first).await?;
        devices.push(dev);
    }
    let mut csv = String::from("code,name,address,latitude,longitude\n");
    for i in 0..rows {
        csv.push_str(&format!(
            "IMP{i:07},Shop {i},Street {i},{}.{:04},{}.{:04}\n",
            50 + i % 2,
            i % 10_000,
            30 + i % 3,
            (i * 7) % 10_000
        ));
    }
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for mut dev in devices {
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut n = 1;
            while !stop.load(Ordering::Relaxed) {
                let batch = dev.visit(n, 5);
                n += 1;
                lat.push(dev.push(batch).await?.as_secs_f64() * 1000.0);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            anyhow::Ok(lat)
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let imported = import_file(
        &http,
        &server.url,
        &key,
        "outlets?format=csv&file_name=bench.csv",
        None,
        csv.into_bytes(),
        rows,
    )
    .await;
    let seconds = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    imported?;
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await??);
    }
    lat.sort_by(f64::total_cmp);
    println!(
        "| backend | import rows | import s | phones | pushes during it | push p50 ms | p99 ms | max ms |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    println!(
        "| {} | {rows} | {seconds:.1} | {agents} | {} | {:.1} | {:.1} | {:.1} |",
        db.label(),
        lat.len(),
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        lat.last().copied().unwrap_or(0.0)
    );
    server.stop().await;
    db.cleanup().await;
    Ok(())
}
