//! The field simulator: one real `fieldsync-agent` engine per agent, working through realistic
//! days against a real server over the real protocol, with injected faults.
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use fieldsync_agent::{
    Clock, Counts, Engine, HttpTransport, KindCounts, OrderDraft, SyncError, Transport,
    WorkflowError,
};
use fieldsync_protocol::v1::{self, answer::Value};
use fieldsync_protocol::{PROTOCOL_VERSION, paths};
use prost::Message;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

use crate::faults::{FaultSpec, FaultTransport, NetStats};

/// Options of a field run.
#[derive(Debug, Clone)]
pub struct FieldOptions {
    pub server: String,
    pub agents: Vec<(String, String)>,
    pub days: u32,
    pub concurrency: usize,
    pub faults: FaultSpec,
    pub faults_text: String,
    pub deadline: Duration,
    pub seed: u64,
    pub workdir: PathBuf,
    /// Visits per working day: the day's route, topped up with other outlets of the phone's
    /// territory (or cut) to this many; 0 keeps the route as it is.
    pub visits_per_day: usize,
    pub phase: Phase,
}

/// Which part of the agents' days a run plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Activation, first pull, the days with their syncs, the evening sync.
    Full,
    /// Activation, first pull and the days' work with no sync at all: every engine keeps its
    /// outbox full and stays in the work directory for an `Evening` run.
    Day,
    /// Only the evening: the engines a `Day` run left in the work directory all sync at once
    /// until their outboxes are empty.
    Evening,
}

impl std::str::FromStr for Phase {
    type Err = String;
    fn from_str(s: &str) -> Result<Phase, String> {
        match s {
            "full" => Ok(Phase::Full),
            "day" => Ok(Phase::Day),
            "evening" => Ok(Phase::Evening),
            other => Err(format!("unknown phase {other:?} (full, day, evening)")),
        }
    }
}

/// Reads a `login,pin` CSV file (with its header).
pub fn read_pins(path: &Path) -> anyhow::Result<Vec<(String, String)>> {
    let text = std::fs::read_to_string(path)?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || (i == 0 && line.eq_ignore_ascii_case("login,pin")) {
            continue;
        }
        let (login, pin) = line
            .split_once(',')
            .ok_or_else(|| anyhow::anyhow!("{}:{}: expected login,pin", path.display(), i + 1))?;
        out.push((login.trim().to_string(), pin.trim().to_string()));
    }
    anyhow::ensure!(!out.is_empty(), "{} has no login,pin lines", path.display());
    Ok(out)
}

/// A device clock the driver moves through simulated days, off by a fixed skew.
#[derive(Debug)]
pub struct SimClock {
    now: AtomicI64,
    skew: i64,
}

impl Clock for SimClock {
    fn now_ms(&self) -> i64 {
        self.now.load(Ordering::Relaxed) + self.skew
    }
}

/// What one agent did.
#[derive(Debug, Default, Clone)]
pub struct AgentOutcome {
    pub counts: Counts,
    pub server: KindCounts,
    pub server_refused: u64,
    pub error: Option<String>,
    pub restarts: u64,
    /// Mutations waiting in the outbox when the evening sync began.
    pub pending_at_evening: u64,
    /// The device token, once everything is in (for asking the server what it holds).
    pub token: Option<String>,
}

/// The result of a run, as the JSON summary reports it.
#[derive(Debug, Clone)]
pub struct Summary {
    pub json: serde_json::Value,
    pub lost: u64,
    pub duplicated: u64,
}

fn kind_json(k: &KindCounts) -> serde_json::Value {
    json!({
        "visits": k.visits, "gps_fixes": k.gps_fixes, "orders": k.orders, "order_lines": k.order_lines,
        "questionnaire_answers": k.questionnaire_answers, "distribution_checks": k.distribution_checks,
    })
}

fn add(a: &mut KindCounts, b: &KindCounts) {
    a.visits += b.visits;
    a.gps_fixes += b.gps_fixes;
    a.orders += b.orders;
    a.order_lines += b.order_lines;
    a.questionnaire_answers += b.questionnaire_answers;
    a.distribution_checks += b.distribution_checks;
}

fn fields(k: &KindCounts) -> [(&'static str, u64); 6] {
    [
        ("visits", k.visits),
        ("gps_fixes", k.gps_fixes),
        ("orders", k.orders),
        ("order_lines", k.order_lines),
        ("questionnaire_answers", k.questionnaire_answers),
        ("distribution_checks", k.distribution_checks),
    ]
}

/// Runs every agent through its days; returns the summary.
pub async fn run_field(opts: FieldOptions) -> anyhow::Result<Summary> {
    let started = Instant::now();
    let deadline = started + opts.deadline;
    let stats = Arc::new(NetStats::default());
    let limit = Arc::new(tokio::sync::Semaphore::new(opts.concurrency.max(1)));
    let mut tasks = Vec::new();
    for (i, (login, pin)) in opts.agents.iter().cloned().enumerate() {
        let opts = opts.clone();
        let stats = stats.clone();
        let limit = limit.clone();
        tasks.push(tokio::spawn(async move {
            let _permit = limit.acquire_owned().await.expect("semaphore");
            // An agent whose day failed still reports what it got through.
            let mut out = AgentOutcome::default();
            if let Err(e) = drive(&opts, i, &login, &pin, stats, deadline, &mut out).await {
                out.error = Some(format!("{login}: {e}"));
            }
            out
        }));
    }
    let mut outcomes = Vec::with_capacity(tasks.len());
    for t in tasks {
        outcomes.push(t.await?);
    }
    // Every phone has synced: that is the time a run takes. Then ask the server, phone by
    // phone, what it holds.
    let elapsed_s = started.elapsed().as_secs_f64();
    let servers = server_list(&opts.server)?;
    let mut checks = Vec::new();
    for (i, mut o) in outcomes.into_iter().enumerate() {
        let limit = limit.clone();
        let servers = servers.clone();
        checks.push(tokio::spawn(async move {
            if let (Some(token), None) = (o.token.clone(), &o.error) {
                let _permit = limit.acquire_owned().await.expect("semaphore");
                let http = Spread::new(&servers, i);
                if let Err(e) = server_counts(&http, &token, deadline, &mut o).await {
                    o.error = Some(format!("agent {i}: {e}"));
                }
            }
            o
        }));
    }
    let mut created = KindCounts::default();
    let mut acknowledged = KindCounts::default();
    let mut refused = KindCounts::default();
    let mut server = KindCounts::default();
    let mut refused_mutations = 0;
    let mut server_refused = 0;
    let mut errors = Vec::new();
    let mut restarts = 0;
    let mut pending_at_evening = 0;
    for t in checks {
        let o = t.await?;
        add(&mut created, &o.counts.created);
        add(&mut acknowledged, &o.counts.acknowledged);
        add(&mut refused, &o.counts.refused);
        add(&mut server, &o.server);
        refused_mutations += o.counts.refused_mutations;
        server_refused += o.server_refused;
        restarts += o.restarts;
        pending_at_evening += o.pending_at_evening;
        if let Some(e) = o.error {
            errors.push(e);
        }
    }
    let mut lost = serde_json::Map::new();
    let mut duplicated = serde_json::Map::new();
    let (mut lost_total, mut dup_total) = (0u64, 0u64);
    for ((name, c), ((_, r), (_, s))) in fields(&created)
        .into_iter()
        .zip(fields(&refused).into_iter().zip(fields(&server)))
    {
        let expected = c.saturating_sub(r);
        // A day phase leaves everything on the phones: nothing is asked of the server.
        let measured = opts.phase != Phase::Day;
        let l = if measured {
            expected.saturating_sub(s)
        } else {
            0
        };
        let d = if measured {
            s.saturating_sub(expected)
        } else {
            0
        };
        lost_total += l;
        dup_total += d;
        lost.insert(name.into(), l.into());
        duplicated.insert(name.into(), d.into());
    }
    lost.insert("total".into(), lost_total.into());
    duplicated.insert("total".into(), dup_total.into());
    let verified_s = started.elapsed().as_secs_f64() - elapsed_s;
    let mut lat = stats.latencies_ms.lock().expect("latencies").clone();
    lat.sort_by(f64::total_cmp);
    let mut push_lat = stats.push_latencies_ms.lock().expect("latencies").clone();
    push_lat.sort_by(f64::total_cmp);
    let json = json!({
        "phase": format!("{:?}", opts.phase).to_lowercase(),
        "visits_per_day": opts.visits_per_day,
        "concurrency": opts.concurrency,
        "servers": server_list(&opts.server)?.len(),
        "agents": opts.agents.len(),
        "days": opts.days,
        "faults": opts.faults_text,
        "elapsed_s": elapsed_s,
        "verified_s": verified_s,
        "evening": {
            "mutations": pending_at_evening,
            "mutations_per_s": pending_at_evening as f64 / elapsed_s.max(1e-9),
        },
        "created": kind_json(&created),
        "acknowledged": kind_json(&acknowledged),
        "server": kind_json(&server),
        "lost": lost,
        "duplicated": duplicated,
        "refused": { "mutations": refused_mutations, "server_count": server_refused, "by_kind": kind_json(&refused) },
        "requests": stats.requests.load(Ordering::Relaxed),
        "faults_injected": stats.injected.load(Ordering::Relaxed),
        "engine_restarts": restarts,
        "bytes_up": stats.bytes_up.load(Ordering::Relaxed),
        "bytes_down": stats.bytes_down.load(Ordering::Relaxed),
        "latency_ms": { "p50": crate::bench::percentile(&lat, 0.5), "p99": crate::bench::percentile(&lat, 0.99) },
        "pushes": push_lat.len(),
        "push_latency_ms": { "p50": crate::bench::percentile(&push_lat, 0.5), "p99": crate::bench::percentile(&push_lat, 0.99) },
        "errors": errors,
    });
    Ok(Summary {
        json,
        lost: lost_total,
        duplicated: dup_total,
    })
}

const DAY_MS: i64 = 86_400_000;

#[allow(clippy::too_many_arguments)]
async fn drive(
    opts: &FieldOptions,
    index: usize,
    login: &str,
    pin: &str,
    stats: Arc<NetStats>,
    deadline: Instant,
    out: &mut AgentOutcome,
) -> anyhow::Result<()> {
    let mut rng =
        StdRng::seed_from_u64(opts.seed.wrapping_mul(1_000_003).wrapping_add(index as u64));
    let skew = if opts.faults.skew_ms > 0 {
        rng.random_range(-opts.faults.skew_ms..=opts.faults.skew_ms)
    } else {
        0
    };
    let wall = fieldsync_agent::SystemClock.now_ms();
    let today = wall.div_euclid(DAY_MS);
    let clock = Arc::new(SimClock {
        now: AtomicI64::new(wall),
        skew,
    });
    let path = opts.workdir.join(format!("agent-{index:05}.db"));
    if opts.phase == Phase::Evening {
        anyhow::ensure!(
            path.exists(),
            "{} is missing: run the day phase first, with the same --pins and --workdir",
            path.display()
        );
    } else {
        let _ = std::fs::remove_file(&path);
    }
    let open = || Engine::open_with_clock(&path, clock.clone() as Arc<dyn Clock>);
    let mut engine = open()?;
    let servers = server_list(&opts.server)?;
    let http = Spread::new(&servers, index);
    let faulty = FaultTransport::new(
        Spread::new(&servers, index),
        opts.faults,
        rng.random(),
        stats,
    );
    if opts.phase == Phase::Evening {
        return evening(&mut engine, &open, &faulty, &path, deadline, out).await;
    }

    // Activation over a clean line, retried while the server is unreachable.
    let mut delay = Duration::from_millis(200);
    loop {
        match engine
            .activate(&http, &servers[0], login, pin, "fieldsync-sim", "sim")
            .await
        {
            Ok(_) => break,
            Err(e) if e.is_retryable() && Instant::now() + delay < deadline => {
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
            Err(e) => anyhow::bail!("activation: {e}"),
        }
    }
    // Nobody can work without master data: the first pull is retried until it is in.
    sync(&mut engine, &open, &faulty, deadline, true, out).await?;
    let syncs_during_day = opts.phase == Phase::Full;
    let mut catalogue: Option<Vec<i64>> = None;
    for day in 0..opts.days as i64 {
        let date = format_date(today + day);
        clock
            .now
            .store((today + day) * DAY_MS + 8 * 3_600_000, Ordering::Relaxed);
        let mut stops: Vec<(i64, Option<i64>, Option<(i32, i32)>, i64)> = engine
            .route(&date)?
            .into_iter()
            .map(|s| {
                (
                    s.outlet.id,
                    Some(s.route_id),
                    s.outlet.location,
                    s.outlet.price_list_id,
                )
            })
            .collect();
        if stops.is_empty() && opts.visits_per_day == 0 {
            let all = engine.search_outlets("", 1000)?;
            let n = rng.random_range(15..=40).min(all.len());
            for _ in 0..n {
                let o = &all[rng.random_range(0..all.len())];
                stops.push((o.id, None, o.location, o.price_list_id));
            }
        }
        if opts.visits_per_day > 0 {
            // Unplanned visits to the territory's other outlets after the route, as an agent
            // fills a short day; then, if the territory is small, its outlets again.
            stops.truncate(opts.visits_per_day);
            let all = engine.search_outlets("", 1000)?;
            let planned: Vec<i64> = stops.iter().map(|s| s.0).collect();
            let unplanned: Vec<_> = all.iter().filter(|o| !planned.contains(&o.id)).collect();
            let mut extra = unplanned.into_iter().chain(all.iter().cycle());
            while stops.len() < opts.visits_per_day && !all.is_empty() {
                let Some(o) = extra.next() else { break };
                stops.push((o.id, None, o.location, o.price_list_id));
            }
        }
        let sync_points: Vec<usize> = if syncs_during_day {
            (1..=3).map(|k| stops.len() * k / 4).collect()
        } else {
            Vec::new()
        };
        for (n, (outlet_id, route_id, location, price_list)) in stops.iter().enumerate() {
            visit(
                &engine,
                &mut rng,
                *outlet_id,
                *route_id,
                *location,
                *price_list,
                &mut catalogue,
            )?;
            clock.now.fetch_add(10 * 60_000, Ordering::Relaxed);
            if sync_points.contains(&(n + 1)) {
                sync(&mut engine, &open, &faulty, deadline, false, out).await?;
            }
        }
        if syncs_during_day {
            sync(&mut engine, &open, &faulty, deadline, false, out).await?;
        }
    }
    if opts.phase == Phase::Day {
        out.counts = engine.counts()?;
        return Ok(());
    }
    evening(&mut engine, &open, &faulty, &path, deadline, out).await
}

/// The evening: keep trying until everything is in or the deadline passes, then ask the
/// server what it holds for this device.
async fn evening(
    engine: &mut Engine,
    open: &(dyn Fn() -> Result<Engine, fieldsync_agent::EngineError> + Send + Sync),
    faulty: &FaultTransport<Spread>,
    path: &Path,
    deadline: Instant,
    out: &mut AgentOutcome,
) -> anyhow::Result<()> {
    out.pending_at_evening = engine.outbox_status()?.pending;
    faulty.set_offline(false);
    sync(engine, open, faulty, deadline, true, out).await?;
    out.counts = engine.counts()?;
    out.token = Some(
        engine
            .device_token()?
            .ok_or_else(|| anyhow::anyhow!("engine at {} is not activated", path.display()))?,
    );
    Ok(())
}

/// What the server holds for one device, asked until a server answers (one may be
/// restarting). Asked once every agent has synced, so that counting does not slow the sync.
async fn server_counts(
    http: &Spread,
    token: &str,
    deadline: Instant,
    out: &mut AgentOutcome,
) -> anyhow::Result<()> {
    let mut delay = Duration::from_millis(200);
    let (status, body) = loop {
        let answer = http
            .post(
                paths::STATS,
                v1::DeviceStatsRequest {
                    protocol_version: PROTOCOL_VERSION,
                    ..Default::default()
                }
                .encode_to_vec(),
                Some(token),
            )
            .await;
        match answer {
            Ok((status, body)) if status < 500 => break (status, body),
            _ if Instant::now() + delay < deadline => {
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
            Ok((status, _)) => anyhow::bail!("stats: HTTP {status}"),
            Err(e) => anyhow::bail!("stats: {e}"),
        }
    };
    anyhow::ensure!(status == 200, "stats: HTTP {status}");
    let s = v1::DeviceStats::decode(body.as_ref())?;
    out.server = KindCounts {
        visits: s.visits,
        gps_fixes: s.gps_fixes,
        orders: s.orders,
        order_lines: s.order_lines,
        questionnaire_answers: s.questionnaire_answers,
        distribution_checks: s.distribution_checks,
    };
    out.server_refused = s.refused;
    Ok(())
}

/// The base URLs of `--server a,b,c`.
pub fn server_list(servers: &str) -> anyhow::Result<Vec<String>> {
    let list: Vec<String> = servers
        .split(',')
        .map(|s| s.trim().trim_end_matches('/').to_string())
        .filter(|s| !s.is_empty())
        .collect();
    anyhow::ensure!(!list.is_empty(), "--server names no server");
    Ok(list)
}

/// Several servers behind one address, as a load balancer spreads requests: each request
/// goes to the next server in turn (agents start at different servers).
pub struct Spread {
    servers: Vec<HttpTransport>,
    next: std::sync::atomic::AtomicUsize,
}

impl Spread {
    pub fn new(urls: &[String], start: usize) -> Spread {
        Spread {
            servers: urls.iter().map(|u| HttpTransport::new(u)).collect(),
            next: std::sync::atomic::AtomicUsize::new(start),
        }
    }
}

impl Transport for Spread {
    fn post<'a>(
        &'a self,
        path: &'a str,
        body: Vec<u8>,
        bearer: Option<&'a str>,
    ) -> fieldsync_agent::sync::PostFuture<'a> {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.servers.len();
        self.servers[i].post(path, body, bearer)
    }
}

/// One sync attempt during the day (may fail: the next one catches up), or the final one
/// (retried until everything is in or the deadline passes). Handles injected kills by
/// dropping the sync mid-flight and reopening the engine from its file.
pub(crate) async fn sync(
    engine: &mut Engine,
    open: &(dyn Fn() -> Result<Engine, fieldsync_agent::EngineError> + Send + Sync),
    faulty: &FaultTransport<Spread>,
    deadline: Instant,
    final_sync: bool,
    out: &mut AgentOutcome,
) -> anyhow::Result<()> {
    let mut delay = Duration::from_millis(100);
    let attempts = if final_sync { usize::MAX } else { 2 };
    let mut last_error = String::new();
    for _ in 0..attempts {
        if !final_sync {
            faulty.roll_offline();
        }
        let result = tokio::select! {
            r = engine.sync(faulty) => Some(r),
            _ = faulty.killed.notified() => None,
        };
        match result {
            None => {
                out.restarts += 1;
                *engine = open()?;
            }
            Some(Ok(_)) => {
                let status = engine.outbox_status()?;
                if !final_sync || status.pending == 0 {
                    return Ok(());
                }
            }
            Some(Err(e)) if e.is_retryable() => last_error = e.to_string(),
            Some(Err(SyncError::Server { code, message, .. })) => {
                anyhow::bail!("sync refused: {code:?}: {message}")
            }
            Some(Err(e)) => anyhow::bail!("sync: {e}"),
        }
        if Instant::now() + delay >= deadline {
            if final_sync {
                anyhow::bail!("deadline passed with work still pending (last error: {last_error})");
            }
            return Ok(());
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(2));
    }
    Ok(())
}

fn fix_near(rng: &mut StdRng, location: Option<(i32, i32)>, now: i64) -> Option<v1::GpsFix> {
    let (lat, lon) = location.unwrap_or((504_501_000, 305_234_000));
    let roll: f64 = rng.random();
    let metres = if roll < 0.03 {
        return None;
    } else if roll < 0.06 {
        rng.random_range(2000.0..8000.0)
    } else if roll < 0.16 {
        rng.random_range(50.0..500.0)
    } else {
        rng.random_range(0.0..30.0)
    };
    let angle: f64 = rng.random_range(0.0..std::f64::consts::TAU);
    let dlat = metres * angle.cos() / 111_195.0;
    let dlon = metres * angle.sin() / (111_195.0 * (lat as f64 / 1e7).to_radians().cos());
    Some(v1::GpsFix {
        lat_e7: lat + (dlat * 1e7) as i32,
        lon_e7: lon + (dlon * 1e7) as i32,
        accuracy_dm: rng.random_range(30..800),
        provider: v1::LocationProvider::Fused as i32,
        mock: rng.random_bool(0.02),
        device_time_ms: now,
    })
}

/// One visit: start with a fix, maybe an order, a questionnaire, a distribution check, end.
#[allow(clippy::too_many_arguments)]
fn visit(
    engine: &Engine,
    rng: &mut StdRng,
    outlet_id: i64,
    route_id: Option<i64>,
    location: Option<(i32, i32)>,
    price_list: i64,
    catalogue: &mut Option<Vec<i64>>,
) -> anyhow::Result<()> {
    if let Some((open, _)) = engine.open_visit()? {
        engine.end_visit(open, vec![])?;
    }
    let now = engine.now_ms();
    let fixes: Vec<v1::GpsFix> = (0..rng.random_range(1..=2))
        .filter_map(|_| fix_near(rng, location, now))
        .collect();
    let visit = engine.start_visit(outlet_id, route_id, fixes)?;
    if rng.random_bool(0.7) {
        let products = catalogue.get_or_insert_with(|| {
            engine
                .search_products("", price_list, 5000)
                .map(|p| {
                    p.into_iter()
                        .filter(|p| p.price_minor.is_some())
                        .map(|p| p.id)
                        .collect()
                })
                .unwrap_or_default()
        });
        let warehouses = engine.warehouses()?;
        if !products.is_empty() && !warehouses.is_empty() {
            let n = if rng.random_bool(0.1) {
                rng.random_range(8..=30)
            } else {
                rng.random_range(3..=7)
            };
            let mut lines: Vec<(i64, i64)> = Vec::new();
            for _ in 0..n {
                let p = products[rng.random_range(0..products.len())];
                if !lines.iter().any(|l| l.0 == p) {
                    lines.push((p, rng.random_range(1..=24) * 1000));
                }
            }
            let draft = OrderDraft {
                visit_id: Some(visit),
                outlet_id,
                price_list_id: 0,
                warehouse_id: warehouses[0].id,
                lines,
                comment: String::new(),
                delivery_date: String::new(),
                draft_id: None,
                overdue_reason: String::new(),
            };
            match engine.place_order(draft) {
                Ok(_) | Err(WorkflowError::NoPrice(..)) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    if rng.random_bool(0.5) {
        let qs = engine.questionnaires_for_visit(visit)?;
        if !qs.is_empty() {
            let q = &qs[rng.random_range(0..qs.len())];
            let answers = answer_all(rng, q);
            if !answers.is_empty() {
                engine.answer_questionnaire(visit, q.id, answers)?;
            }
        }
    }
    if rng.random_bool(0.6) {
        let items: Vec<(i64, bool)> = engine
            .must_stock_for(outlet_id)?
            .iter()
            .map(|p| (p.id, rng.random_bool(0.8)))
            .collect();
        if !items.is_empty() {
            engine.check_distribution(visit, items)?;
        }
    }
    let end_fix: Vec<v1::GpsFix> = fix_near(rng, location, engine.now_ms() + 9 * 60_000)
        .into_iter()
        .collect();
    engine.end_visit(visit, end_fix)?;
    Ok(())
}

/// A valid answer to every question that is shown, in order.
fn answer_all(rng: &mut StdRng, q: &v1::Questionnaire) -> Vec<v1::Answer> {
    let mut answers: Vec<v1::Answer> = Vec::new();
    for question in &q.questions {
        let shown = Engine::visible_questions(q, &answers)
            .iter()
            .any(|x| x.id == question.id);
        if !shown || (!question.required && rng.random_bool(0.3)) {
            continue;
        }
        let value = match question.r#type() {
            v1::QuestionType::YesNo => Value::YesNo(rng.random_bool(0.6)),
            v1::QuestionType::Number => Value::Number(rng.random_range(0..100) as f64),
            v1::QuestionType::Text => Value::Text("all good".into()),
            v1::QuestionType::SingleChoice if !question.choices.is_empty() => Value::SingleChoice(
                question.choices[rng.random_range(0..question.choices.len())].id,
            ),
            v1::QuestionType::MultipleChoice if !question.choices.is_empty() => {
                Value::MultipleChoice(v1::ChoiceIds {
                    ids: vec![question.choices[0].id],
                })
            }
            v1::QuestionType::Date => Value::Date("2026-12-01".into()),
            _ => continue,
        };
        answers.push(v1::Answer {
            question_id: question.id,
            value: Some(value),
        });
    }
    answers
}

fn format_date(days: i64) -> String {
    fieldsync_protocol::dates::format_day_number(days)
}
