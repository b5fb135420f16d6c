//! A fault-injecting transport: connections dropped before and after the server commits,
//! requests sent twice, offline stretches, and engine "process kills" in the middle of a sync.
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use bytes::Bytes;
use fieldsync_agent::sync::PostFuture;
use fieldsync_agent::{Transport, TransportError};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// What can go wrong, as probabilities per request (offline: per sync attempt).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct FaultSpec {
    pub drop: f64,
    pub dup: f64,
    /// Device clocks are off by up to this much either way.
    pub skew_ms: i64,
    pub offline: f64,
    pub restart: f64,
}

impl FaultSpec {
    /// Parses `drop=0.2,dup=0.2,skew=72h,offline=0.3,restart=0.05` (any subset).
    pub fn parse(spec: &str) -> Result<FaultSpec, String> {
        let mut f = FaultSpec::default();
        parse_list(spec, |k, v| {
            match k {
                "drop" => f.drop = probability(k, v)?,
                "dup" => f.dup = probability(k, v)?,
                "offline" => f.offline = probability(k, v)?,
                "restart" => f.restart = probability(k, v)?,
                "skew" => f.skew_ms = parse_duration_ms(v)?,
                other => {
                    return Err(format!(
                        "unknown fault {other:?} (drop, dup, skew, offline, restart)"
                    ));
                }
            }
            Ok(())
        })?;
        Ok(f)
    }
}

/// Splits a `name=value,name=value` list (blank entries skipped) and hands each pair to `set`,
/// as the simulators' `--faults` options are written.
pub fn parse_list(
    spec: &str,
    mut set: impl FnMut(&str, &str) -> Result<(), String>,
) -> Result<(), String> {
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) = part
            .split_once('=')
            .ok_or_else(|| format!("{part:?}: expected name=value"))?;
        set(k, v)?;
    }
    Ok(())
}

/// The value `v` of `k` as a probability, 0 to 1.
pub fn probability(k: &str, v: &str) -> Result<f64, String> {
    let p: f64 = v
        .parse()
        .map_err(|_| format!("{k}: {v:?} is not a number"))?;
    if (0.0..=1.0).contains(&p) {
        Ok(p)
    } else {
        Err(format!("{k}: {p} is not a probability between 0 and 1"))
    }
}

/// "72h", "30m", "10s", "500ms" to milliseconds.
pub fn parse_duration_ms(v: &str) -> Result<i64, String> {
    let (num, unit) = v
        .find(|c: char| !c.is_ascii_digit())
        .map(|i| v.split_at(i))
        .unwrap_or((v, "ms"));
    let n: i64 = num
        .parse()
        .map_err(|_| format!("{v:?} is not a duration"))?;
    let mult = match unit {
        "ms" => 1,
        "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(format!("{v:?}: unknown unit (ms, s, m, h, d)")),
    };
    Ok(n * mult)
}

/// Traffic counters shared by all of an agent's transports.
#[derive(Debug, Default)]
pub struct NetStats {
    pub requests: AtomicU64,
    pub bytes_up: AtomicU64,
    pub bytes_down: AtomicU64,
    pub latencies_ms: Mutex<Vec<f64>>,
    /// Latencies of push requests only.
    pub push_latencies_ms: Mutex<Vec<f64>>,
    pub injected: AtomicU64,
}

/// Wraps a transport and injects faults with a seeded RNG.
pub struct FaultTransport<T: Transport> {
    inner: T,
    spec: FaultSpec,
    rng: Mutex<StdRng>,
    offline: AtomicBool,
    /// Set when a "kill" was injected; the driver drops the sync and reopens the engine.
    pub killed: tokio::sync::Notify,
    pub stats: std::sync::Arc<NetStats>,
}

impl<T: Transport> FaultTransport<T> {
    pub fn new(inner: T, spec: FaultSpec, seed: u64, stats: std::sync::Arc<NetStats>) -> Self {
        FaultTransport {
            inner,
            spec,
            rng: Mutex::new(StdRng::seed_from_u64(seed)),
            offline: AtomicBool::new(false),
            killed: tokio::sync::Notify::new(),
            stats,
        }
    }

    /// Rolls whether the network is down for the next sync attempt.
    pub fn roll_offline(&self) -> bool {
        let off = self.roll(self.spec.offline);
        self.offline.store(off, Ordering::Relaxed);
        off
    }

    pub fn set_offline(&self, off: bool) {
        self.offline.store(off, Ordering::Relaxed);
    }

    fn roll(&self, p: f64) -> bool {
        p > 0.0 && self.rng.lock().expect("rng").random_bool(p)
    }

    async fn send(
        &self,
        path: &str,
        body: Vec<u8>,
        bearer: Option<&str>,
    ) -> Result<(u16, Bytes), TransportError> {
        let started = Instant::now();
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        self.stats
            .bytes_up
            .fetch_add(body.len() as u64, Ordering::Relaxed);
        let r = self.inner.post(path, body, bearer).await;
        if let Ok((_, b)) = &r {
            self.stats
                .bytes_down
                .fetch_add(b.len() as u64, Ordering::Relaxed);
            let ms = started.elapsed().as_secs_f64() * 1000.0;
            self.stats.latencies_ms.lock().expect("latencies").push(ms);
            if path == fieldsync_protocol::paths::PUSH {
                self.stats
                    .push_latencies_ms
                    .lock()
                    .expect("latencies")
                    .push(ms);
            }
        }
        r
    }

    /// Never returns: signals the driver to drop the sync future here, like a killed process.
    async fn kill(&self) -> ! {
        self.stats.injected.fetch_add(1, Ordering::Relaxed);
        self.killed.notify_one();
        std::future::pending::<()>().await;
        unreachable!("a killed sync is dropped")
    }
}

impl<T: Transport> Transport for FaultTransport<T> {
    fn post<'a>(&'a self, path: &'a str, body: Vec<u8>, bearer: Option<&'a str>) -> PostFuture<'a> {
        Box::pin(async move {
            if self.offline.load(Ordering::Relaxed) {
                return Err(TransportError("offline".into()));
            }
            if self.roll(self.spec.restart) {
                if self.roll(0.5) {
                    // Killed after the server committed.
                    let _ = self.send(path, body, bearer).await;
                }
                self.kill().await;
            }
            if self.roll(self.spec.drop) {
                self.stats.injected.fetch_add(1, Ordering::Relaxed);
                if self.roll(0.5) {
                    return Err(TransportError("connection dropped before sending".into()));
                }
                let _ = self.send(path, body, bearer).await;
                return Err(TransportError(
                    "connection dropped after the server answered".into(),
                ));
            }
            if self.roll(self.spec.dup) {
                self.stats.injected.fetch_add(1, Ordering::Relaxed);
                let (a, b) = tokio::join!(
                    self.send(path, body.clone(), bearer),
                    self.send(path, body, bearer)
                );
                return match (a, b) {
                    (_, Ok(r)) => Ok(r),
                    (r, Err(_)) => r,
                };
            }
            self.send(path, body, bearer).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_specs_parse_and_bad_ones_are_explained() {
        let f = FaultSpec::parse("drop=0.2,dup=0.2,skew=72h,offline=0.3,restart=0.05").unwrap();
        assert_eq!(
            f,
            FaultSpec {
                drop: 0.2,
                dup: 0.2,
                skew_ms: 72 * 3_600_000,
                offline: 0.3,
                restart: 0.05
            }
        );
        assert_eq!(FaultSpec::parse("").unwrap(), FaultSpec::default());
        assert!(
            FaultSpec::parse("drop=2")
                .unwrap_err()
                .contains("probability")
        );
        assert!(
            FaultSpec::parse("lag=1")
                .unwrap_err()
                .contains("unknown fault")
        );
        assert!(FaultSpec::parse("skew=3w").is_err());
    }
}
