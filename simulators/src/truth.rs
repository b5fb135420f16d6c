//! The truth mode: real agent engines make visits whose truth the simulator knows (where the
//! agent really was, whether the phone was tampered with), sync them to a real server, and
//! read back the signals the server raised; the summary scores the server against the truth.
//!
//! The noise model and the classes are described in `docs/field-truth.md`; in short:
//! - **honest**: the agent is in the shop (within 25 m of the reference location). Fixes
//!   follow the platform's accuracy semantics (the reported accuracy is a 68 % radius, the
//!   error is Rayleigh-distributed to match): outdoors a GPS fix of 3-20 m, indoors a fused
//!   or network fix of 15-250 m; each phase takes 1-3 fixes, and a cold start or a dead
//!   spot leaves a phase without any (5 % each).
//! - **offsite**: the agent is 300 m to 20 km away (log-uniform), with honest noise there.
//! - **mock**: a mock-location app puts the phone in the shop and the platform flags it.
//! - **spoof**: hidden spoofing, the flag not set: the reference point itself with 1 m
//!   accuracy; one fake fix on the reference added to a visit made kilometres away; a frozen
//!   position repeated to the last digit; accuracy no phone reaches; a teleport across the
//!   city minutes after the previous visit.
//! - **clock**: an honest visit back-dated by moving the phone's clock back 1-4 hours.
//!
//! Travel between visits takes the time a car in town needs from where the previous visit
//! was (really, and as the server saw it), so an honest visit never looks like a jump.
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use fieldsync_agent::{Clock, Engine, HttpTransport, Transport};
use fieldsync_protocol::v1;
use fieldsync_protocol::{PROTOCOL_VERSION, ids, paths};
use prost::Message;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

const MIN: i64 = 60_000;
/// Metres per degree of latitude.
const M_PER_DEG: f64 = 111_195.0;
/// Signal names, in the server's order, for the confusion matrix's columns.
pub const SIGNALS: [&str; 9] = fieldsync_protocol::signals::Signal::NAMES;

/// The share of each class among the visits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Mix {
    pub honest: f64,
    pub offsite: f64,
    pub mock: f64,
    pub spoof: f64,
    pub clock: f64,
}

impl Mix {
    /// Parses `honest=0.8,offsite=0.05,mock=0.05,spoof=0.05,clock=0.05` (shares are
    /// normalised; a class not named gets none).
    pub fn parse(spec: &str) -> Result<Mix, String> {
        let mut m = Mix {
            honest: 0.0,
            offsite: 0.0,
            mock: 0.0,
            spoof: 0.0,
            clock: 0.0,
        };
        crate::faults::parse_list(spec, |k, v| {
            let x: f64 = v.parse().map_err(|_| format!("{k}={v}: not a number"))?;
            if !(0.0..=1_000.0).contains(&x) {
                return Err(format!("{k}={v}: a share is 0 or more"));
            }
            match k {
                "honest" => m.honest = x,
                "offsite" => m.offsite = x,
                "mock" => m.mock = x,
                "spoof" => m.spoof = x,
                "clock" => m.clock = x,
                other => {
                    return Err(format!(
                        "unknown class {other:?} (honest, offsite, mock, spoof, clock)"
                    ));
                }
            }
            Ok(())
        })?;
        let total = m.honest + m.offsite + m.mock + m.spoof + m.clock;
        if total <= 0.0 {
            return Err("the mix names no class with a share above 0".into());
        }
        Ok(Mix {
            honest: m.honest / total,
            offsite: m.offsite / total,
            mock: m.mock / total,
            spoof: m.spoof / total,
            clock: m.clock / total,
        })
    }

    fn draw(&self, rng: &mut StdRng) -> Class {
        let x: f64 = rng.random();
        let mut edge = self.honest;
        if x < edge {
            return Class::Honest;
        }
        edge += self.offsite;
        if x < edge {
            return Class::Offsite;
        }
        edge += self.mock;
        if x < edge {
            return Class::Mock;
        }
        edge += self.spoof;
        if x < edge {
            let kinds = SpoofKind::ALL;
            return Class::Spoof(kinds[rng.random_range(0..kinds.len())]);
        }
        Class::Clock
    }
}

/// What really happened in a visit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    Honest,
    Offsite,
    Mock,
    Spoof(SpoofKind),
    Clock,
}

impl Class {
    pub fn name(self) -> &'static str {
        match self {
            Class::Honest => "honest",
            Class::Offsite => "offsite",
            Class::Mock => "mock",
            Class::Spoof(_) => "spoof",
            Class::Clock => "clock",
        }
    }
}

/// The ways of hidden spoofing (no mock flag).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SpoofKind {
    /// Every fix exactly on the reference location, 1 m accurate.
    Reference,
    /// A visit made kilometres away with one fake fix on the reference added.
    FakeFixAdded,
    /// One saved position near the shop, repeated to the last digit.
    Frozen,
    /// Near the shop, with an accuracy no phone reaches (0-1.5 m).
    TooPerfect,
    /// The farthest outlet of the territory, minutes after the previous visit.
    Teleport,
}

impl SpoofKind {
    pub const ALL: [SpoofKind; 5] = [
        SpoofKind::Reference,
        SpoofKind::FakeFixAdded,
        SpoofKind::Frozen,
        SpoofKind::TooPerfect,
        SpoofKind::Teleport,
    ];
    pub fn name(self) -> &'static str {
        match self {
            SpoofKind::Reference => "reference",
            SpoofKind::FakeFixAdded => "fake_fix_added",
            SpoofKind::Frozen => "frozen",
            SpoofKind::TooPerfect => "too_perfect",
            SpoofKind::Teleport => "teleport",
        }
    }
}

/// Options of a truth run.
#[derive(Debug, Clone)]
pub struct TruthOptions {
    pub server: String,
    pub agents: Vec<(String, String)>,
    pub visits: usize,
    pub mix: Mix,
    pub seed: u64,
    pub workdir: PathBuf,
    pub concurrency: usize,
}

struct TruthClock(AtomicI64);
impl Clock for TruthClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A point in degrees.
type Pt = (f64, f64);

fn to_pt(e7: (i32, i32)) -> Pt {
    (e7.0 as f64 / 1e7, e7.1 as f64 / 1e7)
}

/// `p` moved `metres` towards `bearing` (radians; flat earth, fine for a city).
fn moved(p: Pt, metres: f64, bearing: f64) -> Pt {
    let dlat = metres * bearing.cos() / M_PER_DEG;
    let dlon = metres * bearing.sin() / (M_PER_DEG * p.0.to_radians().cos());
    (p.0 + dlat, p.1 + dlon)
}

fn dist_m(a: Pt, b: Pt) -> f64 {
    fieldsync_protocol::location::distance_m(
        (a.0 * 1e7).round() as i32,
        (a.1 * 1e7).round() as i32,
        (b.0 * 1e7).round() as i32,
        (b.1 * 1e7).round() as i32,
    )
}

fn log_uniform(rng: &mut StdRng, lo: f64, hi: f64) -> f64 {
    (lo.ln() + rng.random::<f64>() * (hi.ln() - lo.ln())).exp()
}

/// A point uniformly inside a disk of `radius` metres around `p`.
fn in_disk(rng: &mut StdRng, p: Pt, radius: f64) -> Pt {
    let r = radius * rng.random::<f64>().sqrt();
    moved(p, r, rng.random::<f64>() * std::f64::consts::TAU)
}

fn gps_fix(
    at: Pt,
    accuracy_m: f64,
    provider: v1::LocationProvider,
    mock: bool,
    now: i64,
) -> v1::GpsFix {
    v1::GpsFix {
        lat_e7: (at.0 * 1e7).round() as i32,
        lon_e7: (at.1 * 1e7).round() as i32,
        accuracy_dm: (accuracy_m * 10.0).round().max(0.0) as u32,
        provider: provider as i32,
        mock,
        device_time_ms: now,
    }
}

/// Where a phone is: open sky or under a roof.
#[derive(Clone, Copy)]
enum Env {
    Outdoor,
    Indoor,
}

/// One honest fix of a phone really at `truth`: the reported accuracy is the platform's
/// 68 % radius, the error Rayleigh-distributed to match (sigma = accuracy / 1.5096).
fn honest_fix(rng: &mut StdRng, truth: Pt, env: Env, now: i64) -> v1::GpsFix {
    let (accuracy, provider) = match env {
        Env::Outdoor => (rng.random_range(3.0..20.0), v1::LocationProvider::Gps),
        Env::Indoor => {
            if rng.random_bool(0.5) {
                (log_uniform(rng, 15.0, 150.0), v1::LocationProvider::Fused)
            } else {
                (log_uniform(rng, 20.0, 250.0), v1::LocationProvider::Network)
            }
        }
    };
    let sigma = accuracy / 1.5096;
    let u: f64 = rng.random_range(f64::MIN_POSITIVE..1.0);
    let r = sigma * (-2.0 * u.ln()).sqrt();
    let at = moved(truth, r, rng.random::<f64>() * std::f64::consts::TAU);
    gps_fix(at, accuracy, provider, false, now)
}

/// The honest fixes of one phase: 1-3 of them, or none (a cold start, a dead spot: 5 %).
fn honest_phase(rng: &mut StdRng, truth: Pt, env: Env, now: i64) -> Vec<v1::GpsFix> {
    if rng.random_bool(0.05) {
        return Vec::new();
    }
    let n = rng.random_range(1..=3);
    (0..n)
        .map(|i| honest_fix(rng, truth, env, now + i * 2_000))
        .collect()
}

fn env(rng: &mut StdRng, indoor_share: f64) -> Env {
    if rng.random_bool(indoor_share) {
        Env::Indoor
    } else {
        Env::Outdoor
    }
}

/// One visit as the simulator plans it.
struct Plan {
    outlet: usize,
    start: Vec<v1::GpsFix>,
    end: Vec<v1::GpsFix>,
    stay_ms: i64,
    /// Where the agent really is during the visit.
    truth: Pt,
    /// Moves the phone's clock back this much for the visit.
    backdate_ms: i64,
    /// Minutes from the previous visit's end, when the class decides it (a teleport).
    gap_ms: Option<i64>,
}

/// What one agent's run produced: the truth of each of its visits, and the device token.
struct AgentRun {
    visits: Vec<(uuid::Uuid, Class)>,
    token: String,
}

async fn sync_retrying(engine: &Engine, t: &HttpTransport) -> anyhow::Result<()> {
    let mut delay = Duration::from_millis(200);
    for attempt in 0.. {
        match engine.sync(t).await {
            Ok(_) if engine.outbox_status()?.pending == 0 => return Ok(()),
            Ok(_) => {}
            Err(e) if e.is_retryable() && attempt < 20 => {}
            Err(e) => anyhow::bail!("sync: {e}"),
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(5));
    }
    unreachable!()
}

async fn drive(opts: &TruthOptions, index: usize, visits: usize) -> anyhow::Result<AgentRun> {
    let (login, pin) = &opts.agents[index];
    let mut rng = StdRng::seed_from_u64(opts.seed.wrapping_mul(7_919).wrapping_add(index as u64));
    // The days are laid out in the past (a visit and the road to the next take at most 90
    // minutes), so that no visit is dated after the server's clock.
    let wall = fieldsync_agent::SystemClock.now_ms();
    let clock = Arc::new(TruthClock(AtomicI64::new(
        wall - (visits as i64 + 2) * 90 * MIN,
    )));
    let path = opts.workdir.join(format!("truth-{index:05}.db"));
    let _ = std::fs::remove_file(&path);
    let engine = Engine::open_with_clock(&path, clock.clone() as Arc<dyn Clock>)?;
    let t = HttpTransport::new(opts.server.trim_end_matches('/'));
    engine
        .activate(&t, &opts.server, login, pin, "fieldsync-sim truth", "sim")
        .await
        .map_err(|e| anyhow::anyhow!("activation of {login}: {e}"))?;
    sync_retrying(&engine, &t).await?;
    let outlets: Vec<(i64, Pt)> = engine
        .search_outlets("", 1000)?
        .into_iter()
        .filter_map(|o| Some((o.id, to_pt(o.location?))))
        .collect();
    anyhow::ensure!(
        !outlets.is_empty(),
        "{login}'s territory has no outlet with a reference location"
    );
    let mut out = Vec::with_capacity(visits);
    // Where the agent really is, and where the server last saw the phone.
    let mut here = outlets[0].1;
    let mut seen = here;
    let mut first = true;
    for n in 0..visits {
        let class = opts.mix.draw(&mut rng);
        let plan = plan(&mut rng, class, &outlets, here, seen);
        let (outlet_id, reference) = outlets[plan.outlet];
        // On the road: a car in town (25-40 km/h) from wherever is farther, the real place
        // or the one the server saw, plus parking; a teleport takes what it says.
        let road = dist_m(here, plan.truth).max(dist_m(seen, reference)) / 1000.0;
        let gap = plan.gap_ms.unwrap_or_else(|| {
            (road / rng.random_range(25.0..40.0) * 60.0 * MIN as f64) as i64
                + rng.random_range(3..10) * MIN
        });
        if !first {
            clock.0.fetch_add(gap, Ordering::Relaxed);
        }
        first = false;
        clock.0.fetch_sub(plan.backdate_ms, Ordering::Relaxed);
        let start = stamp(plan.start, clock.now_ms());
        let visit = engine.start_visit(outlet_id, None, start)?;
        clock.0.fetch_add(plan.stay_ms, Ordering::Relaxed);
        let end = stamp(plan.end, clock.now_ms());
        if let Some(last) = end.last() {
            seen = to_pt((last.lat_e7, last.lon_e7));
        }
        engine.end_visit(visit, end)?;
        clock.0.fetch_add(plan.backdate_ms, Ordering::Relaxed);
        here = plan.truth;
        out.push((visit, class));
        if n % 8 == 7 {
            sync_retrying(&engine, &t).await?;
        }
    }
    sync_retrying(&engine, &t).await?;
    let token = engine
        .device_token()?
        .ok_or_else(|| anyhow::anyhow!("{login}'s engine is not activated"))?;
    Ok(AgentRun { visits: out, token })
}

/// Gives fixes planned with relative times the phone's clock of the moment.
fn stamp(mut fixes: Vec<v1::GpsFix>, now: i64) -> Vec<v1::GpsFix> {
    for f in &mut fixes {
        f.device_time_ms += now;
    }
    fixes
}

/// Plans one visit of `class` (fix times relative to the start of their phase).
fn plan(rng: &mut StdRng, class: Class, outlets: &[(i64, Pt)], here: Pt, seen: Pt) -> Plan {
    let outlet = rng.random_range(0..outlets.len());
    let reference = outlets[outlet].1;
    let in_shop = in_disk(rng, reference, 25.0);
    let honest_stay = rng.random_range(5..40) * MIN + rng.random_range(0..MIN);
    let mut p = Plan {
        outlet,
        start: Vec::new(),
        end: Vec::new(),
        stay_ms: honest_stay,
        truth: in_shop,
        backdate_ms: 0,
        gap_ms: None,
    };
    match class {
        Class::Honest | Class::Clock => {
            let e = env(rng, 0.6);
            p.start = honest_phase(rng, in_shop, e, 0);
            p.end = honest_phase(rng, in_shop, e, 0);
            if class == Class::Clock {
                p.backdate_ms = (log_uniform(rng, 60.0, 240.0) * MIN as f64) as i64;
            }
        }
        Class::Offsite => {
            let away = moved(
                reference,
                log_uniform(rng, 300.0, 20_000.0),
                rng.random::<f64>() * std::f64::consts::TAU,
            );
            let e = env(rng, 0.4);
            p.truth = away;
            p.start = honest_phase(rng, away, e, 0);
            p.end = honest_phase(rng, away, e, 0);
            p.stay_ms = rng.random_range(MIN..15 * MIN);
        }
        Class::Mock => {
            let fake = |rng: &mut StdRng| {
                let at = in_disk(rng, reference, 10.0);
                gps_fix(
                    at,
                    rng.random_range(3.0..10.0),
                    v1::LocationProvider::Fused,
                    true,
                    0,
                )
            };
            p.truth = moved(reference, log_uniform(rng, 1_000.0, 15_000.0), 1.0);
            p.start = vec![fake(rng)];
            p.end = vec![fake(rng)];
        }
        Class::Spoof(kind) => {
            let fused = v1::LocationProvider::Fused;
            match kind {
                SpoofKind::Reference => {
                    p.start = vec![gps_fix(reference, 1.0, fused, false, 0)];
                    p.end = vec![gps_fix(reference, 1.0, fused, false, 0)];
                }
                SpoofKind::FakeFixAdded => {
                    let away = moved(
                        reference,
                        log_uniform(rng, 2_000.0, 20_000.0),
                        rng.random::<f64>() * std::f64::consts::TAU,
                    );
                    p.truth = away;
                    p.start = honest_phase(rng, away, Env::Outdoor, 0);
                    p.start.push(gps_fix(
                        reference,
                        rng.random_range(3.0..6.0),
                        v1::LocationProvider::Gps,
                        false,
                        4_000,
                    ));
                    p.end = honest_phase(rng, away, Env::Outdoor, 0);
                    p.stay_ms = rng.random_range(2 * MIN..12 * MIN);
                }
                SpoofKind::Frozen => {
                    let saved = in_disk(rng, reference, 30.0);
                    let acc = rng.random_range(5.0..15.0);
                    p.truth = moved(reference, log_uniform(rng, 1_000.0, 15_000.0), 2.0);
                    p.start = vec![gps_fix(saved, acc, fused, false, 0)];
                    p.end = vec![gps_fix(saved, acc, fused, false, 0)];
                }
                SpoofKind::TooPerfect => {
                    let jitter = |rng: &mut StdRng| {
                        let at = in_disk(rng, reference, 15.0);
                        gps_fix(
                            at,
                            rng.random_range(0.0..1.5),
                            v1::LocationProvider::Gps,
                            false,
                            0,
                        )
                    };
                    p.truth = moved(reference, log_uniform(rng, 1_000.0, 15_000.0), 3.0);
                    p.start = vec![jitter(rng)];
                    p.end = vec![jitter(rng)];
                }
                SpoofKind::Teleport => {
                    // The outlet farthest from where the server last saw the phone, a few
                    // minutes later; plausible fixes there.
                    let (far, _) = outlets
                        .iter()
                        .enumerate()
                        .map(|(i, o)| (i, dist_m(seen, o.1)))
                        .max_by(|a, b| a.1.total_cmp(&b.1))
                        .expect("outlets");
                    p.outlet = far;
                    let reference = outlets[far].1;
                    let jitter = |rng: &mut StdRng| {
                        let at = in_disk(rng, reference, 15.0);
                        gps_fix(
                            at,
                            rng.random_range(4.0..12.0),
                            v1::LocationProvider::Gps,
                            false,
                            0,
                        )
                    };
                    p.truth = here;
                    p.start = vec![jitter(rng)];
                    p.end = vec![jitter(rng)];
                    p.gap_ms = Some(rng.random_range(2 * MIN..6 * MIN));
                }
            }
        }
    }
    p
}

/// The signals the server raised for each visit of the device behind `token`.
async fn read_back(server: &str, token: &str) -> anyhow::Result<HashMap<uuid::Uuid, Vec<String>>> {
    let t = HttpTransport::new(server.trim_end_matches('/'));
    let (status, body) = t
        .post(
            paths::STATS,
            v1::DeviceStatsRequest {
                protocol_version: PROTOCOL_VERSION,
                visit_signals: true,
            }
            .encode_to_vec(),
            Some(token),
        )
        .await
        .map_err(|e| anyhow::anyhow!("stats: {e}"))?;
    if status == 403 {
        anyhow::bail!(
            "the server withholds visits' signals from devices: start it with FIELDSYNC_DEVICE_SIGNALS=true"
        );
    }
    anyhow::ensure!(status == 200, "stats: HTTP {status}");
    let stats = v1::DeviceStats::decode(body.as_ref())?;
    Ok(stats
        .visit_signals
        .into_iter()
        .filter_map(|v| Some((ids::from_wire(&v.visit_id)?, v.signals)))
        .collect())
}

/// Runs the visits and scores the server's signals against the truth.
pub async fn run_truth(opts: TruthOptions) -> anyhow::Result<Value> {
    anyhow::ensure!(!opts.agents.is_empty(), "no agents");
    anyhow::ensure!(opts.visits > 0, "--visits must be at least 1");
    let agents = opts.agents.len().min(opts.visits);
    let per = opts.visits.div_ceil(agents);
    let opts = Arc::new(opts);
    let gate = Arc::new(tokio::sync::Semaphore::new(opts.concurrency.max(1)));
    let mut tasks = Vec::new();
    for i in 0..agents {
        let n = per.min(opts.visits - (i * per).min(opts.visits));
        if n == 0 {
            break;
        }
        let (opts, gate) = (opts.clone(), gate.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = gate.acquire_owned().await?;
            drive(&opts, i, n).await
        }));
    }
    let mut truth: Vec<(uuid::Uuid, Class)> = Vec::new();
    let mut raised: HashMap<uuid::Uuid, Vec<String>> = HashMap::new();
    for task in tasks {
        let run = task.await??;
        raised.extend(read_back(&opts.server, &run.token).await?);
        truth.extend(run.visits);
    }
    Ok(score(&truth, &raised, opts.mix))
}

/// The summary: per class the count, the share flagged and the signals raised; per hidden
/// spoofing kind the same; the confusion matrix (class by signal, a visit counted under each
/// signal it raised, `none` when it raised none).
pub fn score(
    truth: &[(uuid::Uuid, Class)],
    raised: &HashMap<uuid::Uuid, Vec<String>>,
    mix: Mix,
) -> Value {
    #[derive(Default)]
    struct Tally {
        count: u64,
        flagged: u64,
        by: HashMap<String, u64>,
    }
    let mut classes: HashMap<&str, Tally> = HashMap::new();
    let mut kinds: HashMap<&str, Tally> = HashMap::new();
    let mut missing = 0u64;
    for (id, class) in truth {
        let Some(signals) = raised.get(id) else {
            missing += 1;
            continue;
        };
        let add = |t: &mut Tally| {
            t.count += 1;
            if signals.is_empty() {
                *t.by.entry("none".into()).or_default() += 1;
            } else {
                t.flagged += 1;
                for s in signals {
                    *t.by.entry(s.clone()).or_default() += 1;
                }
            }
        };
        add(classes.entry(class.name()).or_default());
        if let Class::Spoof(k) = class {
            add(kinds.entry(k.name()).or_default());
        }
    }
    let share = |t: Option<&Tally>| {
        t.filter(|t| t.count > 0)
            .map(|t| t.flagged as f64 / t.count as f64)
    };
    let row = |t: &Tally| {
        let mut cols = serde_json::Map::new();
        for s in SIGNALS.iter().copied().chain(["none"]) {
            cols.insert(s.into(), json!(t.by.get(s).copied().unwrap_or(0)));
        }
        json!({
            "count": t.count,
            "flagged": t.flagged,
            "share_flagged": if t.count > 0 { t.flagged as f64 / t.count as f64 } else { 0.0 },
            "signals": Value::Object(cols),
        })
    };
    let order = ["honest", "offsite", "mock", "spoof", "clock"];
    let mut class_obj = serde_json::Map::new();
    let mut confusion = serde_json::Map::new();
    for c in order {
        if let Some(t) = classes.get(c) {
            let r = row(t);
            confusion.insert(c.into(), r["signals"].clone());
            class_obj.insert(c.into(), r);
        }
    }
    let mut kind_obj = serde_json::Map::new();
    for k in SpoofKind::ALL {
        if let Some(t) = kinds.get(k.name()) {
            kind_obj.insert(k.name().into(), row(t));
        }
    }
    json!({
        "visits": truth.len(),
        "scored": truth.len() as u64 - missing,
        "missing": missing,
        "mix": {"honest": mix.honest, "offsite": mix.offsite, "mock": mix.mock, "spoof": mix.spoof, "clock": mix.clock},
        "honest_flagged": share(classes.get("honest")),
        "offsite_flagged": share(classes.get("offsite")),
        "mock_flagged": share(classes.get("mock")),
        "spoof_flagged": share(classes.get("spoof")),
        "clock_flagged": share(classes.get("clock")),
        "classes": Value::Object(class_obj),
        "spoof_kinds": Value::Object(kind_obj),
        "confusion": Value::Object(confusion),
    })
}

/// The summary as a Markdown table: a row per class and spoofing kind, with the aims.
pub fn table(summary: &Value) -> String {
    let mut out = String::from(
        "| class | visits | flagged | aim | signals raised |\n|---|---:|---:|---|---|\n",
    );
    let aims = [
        ("honest", "no flag on >= 99 %"),
        ("offsite", ">= 98 % flagged"),
        ("mock", "100 % flagged"),
        ("spoof", ">= 90 % flagged"),
        ("clock", ">= 90 % flagged"),
    ];
    let line = |name: &str, aim: &str, c: &Value| {
        let mut raised: Vec<String> = SIGNALS
            .iter()
            .copied()
            .chain(["none"])
            .filter_map(|s| {
                let n = c["signals"][s].as_u64().unwrap_or(0);
                (n > 0).then(|| format!("{s} {n}"))
            })
            .collect();
        raised.sort();
        format!(
            "| {name} | {} | {:.1} % | {aim} | {} |\n",
            c["count"],
            c["share_flagged"].as_f64().unwrap_or(0.0) * 100.0,
            raised.join(", ")
        )
    };
    for (class, aim) in aims {
        if let Some(c) = summary["classes"].get(class) {
            out += &line(class, aim, c);
        }
    }
    for k in SpoofKind::ALL {
        if let Some(c) = summary["spoof_kinds"].get(k.name()) {
            out += &line(&format!("spoof: {}", k.name()), "", c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mix_is_parsed_and_normalised_and_bad_ones_are_refused() {
        let m = Mix::parse("honest=8,offsite=1,mock=1").unwrap();
        assert!((m.honest - 0.8).abs() < 1e-9 && (m.mock - 0.1).abs() < 1e-9);
        assert_eq!(m.spoof, 0.0);
        assert!(Mix::parse("honest=x").is_err());
        assert!(Mix::parse("lying=1").is_err());
        assert!(Mix::parse("honest=0").is_err());
        assert!(Mix::parse("honest=-1").is_err());
    }

    #[test]
    fn honest_noise_matches_the_platforms_68_percent_accuracy_radius() {
        let mut rng = StdRng::seed_from_u64(7);
        let truth = (50.45, 30.52);
        let (mut inside, n) = (0, 20_000);
        for _ in 0..n {
            let f = honest_fix(&mut rng, truth, Env::Indoor, 0);
            let d = dist_m(truth, to_pt((f.lat_e7, f.lon_e7)));
            if d <= f.accuracy_dm as f64 / 10.0 {
                inside += 1;
            }
        }
        let share = inside as f64 / n as f64;
        assert!((0.66..0.70).contains(&share), "{share}");
    }

    #[test]
    fn the_score_counts_each_class_and_the_confusion_matrix() {
        let a = uuid::Uuid::from_u128(1);
        let b = uuid::Uuid::from_u128(2);
        let c = uuid::Uuid::from_u128(3);
        let truth = vec![
            (a, Class::Honest),
            (b, Class::Spoof(SpoofKind::Reference)),
            (c, Class::Honest),
        ];
        let raised = HashMap::from([
            (a, vec![]),
            (
                b,
                vec!["on_reference".to_string(), "too_accurate".to_string()],
            ),
        ]);
        let s = score(&truth, &raised, Mix::parse("honest=1").unwrap());
        assert_eq!(s["missing"], 1);
        assert_eq!(s["honest_flagged"], 0.0);
        assert_eq!(s["spoof_flagged"], 1.0);
        assert_eq!(s["confusion"]["spoof"]["on_reference"], 1);
        assert_eq!(s["confusion"]["honest"]["none"], 1);
        assert_eq!(s["spoof_kinds"]["reference"]["count"], 1);
        assert!(s["clock_flagged"].is_null());
        assert!(table(&s).contains("| spoof: reference | 1 | 100.0 % |"));
    }
}
