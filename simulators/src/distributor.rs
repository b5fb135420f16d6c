//! `fieldsync-sim distributor`: a distributor's accounting system against the real JSON API.
//!
//! It polls the order feed, acknowledges what it received and walks every order through the
//! states a real system reports (accepted → confirmed with quantities and a delivery date →
//! invoiced with a document → shipped → delivered → completed; some rejected), with faults:
//! `crash` (the system dies between receiving a page and acknowledging it: the page and the
//! cursor are forgotten), `dupack` (acknowledgements sent twice), `illegal` (a backwards move
//! that must be refused with 409). It stops when the feed is drained and every order it
//! received is in a final state, or at the deadline, and writes a JSON summary.
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use rand::Rng;
use serde_json::{Value, json};

/// Probabilities of the distributor's faults.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct DistributorFaults {
    pub crash: f64,
    pub dupack: f64,
    pub illegal: f64,
}

impl DistributorFaults {
    /// Parses `crash=0.2,dupack=0.3,illegal=0.1` (any subset).
    pub fn parse(spec: &str) -> Result<DistributorFaults, String> {
        let mut f = DistributorFaults::default();
        crate::faults::parse_list(spec, |k, v| {
            let p = crate::faults::probability(k, v)?;
            match k {
                "crash" => f.crash = p,
                "dupack" => f.dupack = p,
                "illegal" => f.illegal = p,
                _ => return Err(format!("unknown fault {k:?}: use crash, dupack, illegal")),
            }
            Ok(())
        })?;
        Ok(f)
    }
}

/// What the simulator was told to do.
#[derive(Debug, Clone)]
pub struct DistributorOptions {
    pub server: String,
    pub api_key: String,
    pub faults: DistributorFaults,
    /// Pause between two status steps of one order.
    pub step_delay: Duration,
    pub deadline: Duration,
    pub page_size: i64,
    pub seed: u64,
    /// Stop once the feed has stayed empty this long with nothing left to move.
    pub idle: Duration,
}

/// The next state a real system would report, given the current one.
fn next_state(state: &str, rng: &mut impl Rng) -> Option<&'static str> {
    match state {
        "placed" => Some(if rng.random_bool(0.05) {
            "rejected"
        } else {
            "accepted"
        }),
        "accepted" => Some("confirmed"),
        "confirmed" => Some("invoiced"),
        "invoiced" => Some("shipped"),
        "shipped" => Some("delivered"),
        "delivered" => Some("completed"),
        _ => None,
    }
}

fn is_final(state: &str) -> bool {
    matches!(state, "completed" | "rejected" | "cancelled")
}

struct Client {
    http: reqwest::Client,
    /// Base URLs of the servers; requests go to them in turn.
    urls: Vec<String>,
    next: usize,
    key: String,
    requests: u64,
    latencies_ms: Vec<f64>,
}

impl Client {
    async fn call(
        &mut self,
        post: bool,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<(u16, Value)> {
        let url = format!("{}{path}", self.urls[self.next % self.urls.len()]);
        self.next += 1;
        let mut req = if post {
            self.http.post(url)
        } else {
            self.http.get(url)
        }
        .bearer_auth(&self.key);
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        let started = Instant::now();
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        let text = resp.text().await?;
        self.requests += 1;
        self.latencies_ms
            .push(started.elapsed().as_secs_f64() * 1000.0);
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
    }
}

/// Runs the simulation; returns the JSON summary.
pub async fn run_distributor(opts: &DistributorOptions) -> anyhow::Result<Value> {
    let started = Instant::now();
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(opts.seed);
    let mut c = Client {
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()?,
        urls: crate::field::server_list(&opts.server)?,
        next: 0,
        key: opts.api_key.clone(),
        requests: 0,
        latencies_ms: Vec::new(),
    };
    let mut cursor = 0i64;
    let mut received: HashMap<String, usize> = HashMap::new();
    let mut acked: HashSet<String> = HashSet::new();
    // Orders in progress: id -> (state, line count, when the next step is due).
    let mut open: HashMap<String, (String, usize, Instant)> = HashMap::new();
    let mut handed_twice = 0u64;
    let mut crashes = 0u64;
    let mut duplicate_acks = 0u64;
    let mut status_changes = 0u64;
    let mut illegal_sent = 0u64;
    let mut illegal_refused = 0u64;
    let mut illegal_accepted = 0u64;
    let mut unknown_acks = 0u64;
    let mut errors = 0u64;
    let mut idle_since = Instant::now();
    let mut finals: HashMap<String, u64> = HashMap::new();
    loop {
        if started.elapsed() > opts.deadline {
            break;
        }
        // 1. The feed.
        let (s, page) = match c
            .call(
                false,
                &format!(
                    "/api/v1/orders/feed?after={cursor}&limit={}",
                    opts.page_size
                ),
                None,
            )
            .await
        {
            Ok(r) => r,
            Err(_) => {
                errors += 1;
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        if s != 200 {
            errors += 1;
            anyhow::ensure!(s != 401, "the server refused the API key: {page}");
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        let orders = page["orders"].as_array().cloned().unwrap_or_default();
        let ids: Vec<String> = orders
            .iter()
            .filter_map(|o| o["id"].as_str().map(str::to_string))
            .collect();
        for (o, id) in orders.iter().zip(&ids) {
            if acked.contains(id) {
                handed_twice += 1;
            }
            *received.entry(id.clone()).or_default() += 1;
            let lines = o["lines"].as_array().map(Vec::len).unwrap_or(0);
            open.entry(id.clone())
                .or_insert_with(|| ("placed".into(), lines, Instant::now()));
        }
        if !ids.is_empty() {
            idle_since = Instant::now();
            if rng.random_bool(opts.faults.crash) {
                // Died before acknowledging: the page and the cursor are gone.
                crashes += 1;
                cursor = 0;
                for id in &ids {
                    if !acked.contains(id) {
                        open.remove(id);
                    }
                }
                continue;
            }
            let times = if rng.random_bool(opts.faults.dupack) {
                2
            } else {
                1
            };
            for n in 0..times {
                // An acknowledgement is repeated until a server answers it (one may be
                // down): only an answered one hands the orders over.
                loop {
                    match c
                        .call(
                            true,
                            "/api/v1/orders/ack",
                            Some(json!({ "order_ids": ids })),
                        )
                        .await
                    {
                        Ok((200, v)) => {
                            if n == 0 {
                                unknown_acks += v["results"]
                                    .as_array()
                                    .map(|r| {
                                        r.iter().filter(|x| x["result"] == "unknown").count() as u64
                                    })
                                    .unwrap_or(0);
                            } else {
                                duplicate_acks += 1;
                            }
                            break;
                        }
                        _ if started.elapsed() < opts.deadline => {
                            errors += 1;
                            tokio::time::sleep(Duration::from_millis(200)).await;
                        }
                        _ => {
                            errors += 1;
                            break;
                        }
                    }
                }
            }
            acked.extend(ids.iter().cloned());
            cursor = page["next_cursor"].as_i64().unwrap_or(cursor);
        }
        // 2. Status steps that are due.
        let now = Instant::now();
        let due: Vec<String> = open
            .iter()
            .filter(|(id, (st, _, at))| acked.contains(*id) && !is_final(st) && *at <= now)
            .map(|(id, _)| id.clone())
            .collect();
        for id in due {
            let (state, lines, _) = open.get(&id).cloned().expect("open");
            if rng.random_bool(opts.faults.illegal) && state != "placed" {
                illegal_sent += 1;
                match c
                    .call(
                        true,
                        &format!("/api/v1/orders/{id}/status"),
                        Some(json!({"state": "accepted"})),
                    )
                    .await
                {
                    Ok((409, _)) => illegal_refused += 1,
                    Ok((200, _)) if state == "placed" => {}
                    Ok(_) => illegal_accepted += 1,
                    Err(_) => errors += 1,
                }
            }
            let Some(next) = next_state(&state, &mut rng) else {
                continue;
            };
            let mut body = json!({ "state": next });
            match next {
                "rejected" => body["reason"] = json!("out of stock"),
                "confirmed" => {
                    body["delivery_date"] = json!("2026-12-01");
                    body["lines"] = json!((1..=lines)
                        .map(|n| json!({"line_no": n, "quantity_milli": 1000 * (n as i64 % 3 + 1)}))
                        .collect::<Vec<_>>());
                }
                "invoiced" => {
                    body["document_number"] = json!(format!("INV-{}", &id[..8]));
                    body["document_date"] = json!("2026-11-30");
                }
                _ => {}
            }
            match c
                .call(true, &format!("/api/v1/orders/{id}/status"), Some(body))
                .await
            {
                Ok((200, v)) => {
                    status_changes += 1;
                    let st = v["state"].as_str().unwrap_or(next).to_string();
                    if is_final(&st) {
                        *finals.entry(st.clone()).or_default() += 1;
                    }
                    open.insert(id, (st, lines, Instant::now() + opts.step_delay));
                }
                Ok((409, v)) => {
                    // The agent cancelled it meanwhile: take the server's state.
                    let st = v["current_state"]
                        .as_str()
                        .unwrap_or("cancelled")
                        .to_string();
                    if is_final(&st) {
                        *finals.entry(st.clone()).or_default() += 1;
                    }
                    open.insert(id, (st, lines, Instant::now()));
                }
                _ => errors += 1,
            }
        }
        let pending = open.values().any(|(st, _, _)| !is_final(st));
        if pending {
            idle_since = Instant::now();
        } else if idle_since.elapsed() >= opts.idle {
            break;
        }
        if ids.is_empty() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    // What is still in the feed now was never handed over: lost, as far as this run goes.
    let (_, rest) = c
        .call(false, "/api/v1/orders/feed?after=0&limit=500", None)
        .await?;
    let still_in_feed = rest["orders"].as_array().map(Vec::len).unwrap_or(0) as u64;
    let mut lat = c.latencies_ms.clone();
    lat.sort_by(f64::total_cmp);
    let pct = |p: f64| crate::bench::percentile(&lat, p);
    Ok(json!({
        "received": received.len(),
        "received_total": received.values().sum::<usize>(),
        "acknowledged": acked.len(),
        "handed_twice": handed_twice,
        "lost": still_in_feed + unknown_acks,
        "still_in_feed": still_in_feed,
        "status_changes": status_changes,
        "final_states": finals,
        "open_orders": open.values().filter(|(st, _, _)| !is_final(st)).count(),
        "faults": {
            "crashes_before_ack": crashes,
            "duplicate_acks": duplicate_acks,
            "illegal_sent": illegal_sent,
            "illegal_refused": illegal_refused,
            "illegal_accepted": illegal_accepted,
        },
        "errors": errors,
        "requests": c.requests,
        "latency_ms": {"p50": pct(0.5), "p99": pct(0.99)},
        "seconds": started.elapsed().as_secs_f64(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_specs_parse_and_refuse_nonsense() {
        let f = DistributorFaults::parse("crash=0.2,dupack=0.3,illegal=0.1").unwrap();
        assert_eq!(
            f,
            DistributorFaults {
                crash: 0.2,
                dupack: 0.3,
                illegal: 0.1
            }
        );
        assert!(DistributorFaults::parse("crash=2").is_err());
        assert!(DistributorFaults::parse("boom=0.1").is_err());
        assert_eq!(
            DistributorFaults::parse("").unwrap(),
            DistributorFaults::default()
        );
    }
}
