//! Webhook push of new orders. A distributor may register a URL; the server then posts its
//! placed orders that were not handed over yet, in order-number order, as
//! `{"orders": [...]}` with the header
//! `X-Fieldsync-Signature: t=UNIX_SECONDS,v1=HEX(HMAC-SHA256(secret, "UNIX_SECONDS.BODY"))`.
//! A 2xx answer hands the orders over (as an acknowledgement would); any other answer or a
//! network error backs off exponentially (2 s, 4 s, … at most 10 min, with jitter) and the
//! same orders are posted again. The feed keeps working beside it: whatever a system
//! acknowledges through the feed is not posted.
//!
//! Targets must be public addresses: a URL naming a private, loopback or link-local address
//! is refused when it is set, a host name is resolved at every delivery and its private
//! addresses are never connected to, redirects are not followed and no proxy is used (a key
//! user must not be able to make the server post to, or scan, its own network). An operator
//! can allow private targets with `FIELDSYNC_WEBHOOK_ALLOW_PRIVATE=1`.
//!
//! Several servers may share one database: a delivery is leased (one atomic `UPDATE` sets
//! the lease's owner and expiry), so only one server posts a batch; a server killed
//! mid-delivery hands the batch on when its lease runs out.
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use rand::{Rng, RngCore};
use serde_json::json;
use sha2::{Digest, Sha256};

pub use crate::store::webhooks::Webhook;
use crate::store::{Problem, Result, Store, StoreError};

/// Orders per webhook post.
const BATCH: i64 = 100;
/// How long a server owns a delivery it claimed (longer than a post may take).
pub const LEASE_MS: i64 = 60_000;
/// How long a post may take.
const POST_TIMEOUT: Duration = Duration::from_secs(15);

/// Which addresses webhooks may post to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Targets {
    /// Private, loopback and link-local addresses too (an operator's setting).
    pub allow_private: bool,
}

/// Whether an address is on the public internet: not loopback, private, link-local,
/// carrier-grade NAT, multicast, documentation or otherwise reserved.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            !(v4.is_unspecified()
                || v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 192 && b == 0 && c == 0)
                || (a == 198 && (b == 18 || b == 19))
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_unspecified()
                || v6.is_loopback()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || (first & 0xffc0) == 0xfec0
                || first == 0x2001 && v6.segments()[1] == 0x0db8
                // NAT64 and IPv4-compatible forms carry an IPv4 address inside.
                || first == 0x0064 && v6.segments()[1] == 0xff9b
                || v6.segments()[..6] == [0; 6])
        }
    }
}

/// Why a webhook URL is refused, if it is.
pub fn url_problem(url: &str, targets: Targets) -> Option<String> {
    let parsed = match reqwest::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => u,
        _ => {
            return Some("a webhook URL starts with https:// (or http://) and names a host".into());
        }
    };
    if url.len() > 2000 {
        return Some("a webhook URL is at most 2000 characters".into());
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Some("a webhook URL carries no user name or password".into());
    }
    // The URL parser normalises numeric hosts ("2130706433" is 127.0.0.1).
    let literal = parsed
        .host_str()
        .map(|h| h.trim_start_matches('[').trim_end_matches(']'))
        .and_then(|h| h.parse::<IpAddr>().ok());
    if let Some(ip) = literal
        && !targets.allow_private
        && !is_public(ip)
    {
        return Some(format!(
            "{ip} is not a public address; webhooks post to the internet only"
        ));
    }
    None
}

/// [`url_problem`], and for a host name whether it resolves to a public address now (it is
/// checked again at every delivery: an address can change after it was set).
pub async fn target_problem(url: &str, targets: Targets) -> Option<String> {
    if let Some(problem) = url_problem(url, targets) {
        return Some(problem);
    }
    if targets.allow_private {
        return None;
    }
    let parsed = reqwest::Url::parse(url).ok()?;
    let host = parsed.host_str()?.to_string();
    let port = parsed.port_or_known_default().unwrap_or(443);
    match tokio::net::lookup_host((host.as_str(), port)).await {
        Ok(found) => {
            let found: Vec<SocketAddr> = found.collect();
            (!found.iter().any(|a| is_public(a.ip()))).then(|| {
                format!("{host} resolves to no public address; webhooks post to the internet only")
            })
        }
        Err(_) => Some(format!("{host} cannot be resolved")),
    }
}

/// Resolves host names and keeps only public addresses (all of them when allowed).
#[derive(Debug)]
struct PublicOnly {
    targets: Targets,
}

/// The error of a host that resolves to no public address (matched by its text below).
const NOT_PUBLIC: &str = "the host resolves to no public address";

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let targets = self.targets;
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0))
                .await?
                .filter(|a| targets.allow_private || is_public(a.ip()))
                .collect();
            if found.is_empty() {
                return Err(NOT_PUBLIC.into());
            }
            Ok(Box::new(found.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Posts webhooks for one server process: its HTTP client (public targets only, no
/// redirects, no proxy) and the owner name of its leases.
#[derive(Debug, Clone)]
pub struct Deliverer {
    http: reqwest::Client,
    targets: Targets,
    owner: String,
}

impl Deliverer {
    pub fn new(targets: Targets) -> Deliverer {
        let http = reqwest::Client::builder()
            .timeout(POST_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(Arc::new(PublicOnly { targets }))
            .build()
            .expect("http client");
        Deliverer {
            http,
            targets,
            owner: uuid::Uuid::new_v4().to_string(),
        }
    }
}

/// HMAC-SHA256 (RFC 2104).
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(k.map(|b| b ^ 0x36));
    inner.update(message);
    let mut outer = Sha256::new();
    outer.update(k.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

/// The signature header's value for a body sent at `unix_seconds`.
pub fn signature(secret: &str, unix_seconds: i64, body: &[u8]) -> String {
    let mut msg = format!("{unix_seconds}.").into_bytes();
    msg.extend_from_slice(body);
    let mac = hmac_sha256(secret.as_bytes(), &msg);
    let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
    format!("t={unix_seconds},v1={hex}")
}

/// The wait before attempt `attempts + 1`: 2 s doubling up to 10 min, ±20 % jitter.
pub fn backoff_ms(attempts: i64, base_ms: i64) -> i64 {
    let exp = base_ms.saturating_mul(1i64 << attempts.clamp(0, 20).saturating_sub(1).max(0));
    let capped = exp.min(600_000);
    let jitter = rand::rng().random_range(0.8..1.2);
    (capped as f64 * jitter) as i64
}

impl Store {
    /// Registers (or replaces) a distributor's webhook after checking its target; returns
    /// the new signing secret.
    pub async fn set_webhook(
        &self,
        distributor_id: i64,
        url: &str,
        targets: Targets,
        now: i64,
    ) -> Result<String> {
        let url = url.trim();
        if let Some(problem) = target_problem(url, targets).await {
            return Err(StoreError::Refused(Problem::WebhookTarget(problem)));
        }
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let secret = format!(
            "whsec_{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
        );
        self.save_webhook(distributor_id, url, &secret, now).await?;
        Ok(secret)
    }
}

/// One pass over the webhooks whose next attempt is due: claims each (a lease no other
/// server holds) and posts one batch. Returns the number of orders handed over.
pub async fn deliver_due(
    store: &Store,
    deliverer: &Deliverer,
    now: i64,
    base_backoff_ms: i64,
) -> Result<usize> {
    let pass = Pass {
        store,
        deliverer,
        now,
        base_backoff_ms,
    };
    let mut handed = 0;
    for hook in store.due_webhooks(now).await? {
        if !store
            .claim_webhook(&hook, &deliverer.owner, now, now + LEASE_MS)
            .await?
        {
            continue;
        }
        handed += pass.deliver(&hook).await?;
    }
    Ok(handed)
}

/// One pass over the due webhooks: the store, the server that posts, the pass's time and the
/// first wait after a failure.
#[derive(Clone, Copy)]
struct Pass<'a> {
    store: &'a Store,
    deliverer: &'a Deliverer,
    now: i64,
    base_backoff_ms: i64,
}

impl Pass<'_> {
    /// Posts one batch of a claimed webhook and records the outcome (if the lease is still
    /// ours).
    async fn deliver(self, hook: &Webhook) -> Result<usize> {
        let Pass {
            store,
            deliverer,
            now,
            base_backoff_ms,
        } = self;
        let page = store
            .order_feed(hook.distributor_id, hook.last_number, BATCH)
            .await?;
        if page.orders.is_empty() {
            store
                .release_webhook(hook.distributor_id, &deliverer.owner)
                .await?;
            return Ok(0);
        }
        let error = match url_problem(&hook.url, deliverer.targets) {
            // Set before the rules were stricter, or the setting changed since.
            Some(problem) => Some(problem),
            None => {
                let body = json!({ "orders": page.orders }).to_string();
                let sig = signature(&hook.secret, now / 1000, body.as_bytes());
                let result = deliverer
                    .http
                    .post(&hook.url)
                    .header("content-type", "application/json")
                    .header("x-fieldsync-signature", sig)
                    .body(body)
                    .send()
                    .await;
                match result {
                    Ok(resp) if resp.status().is_success() => None,
                    Ok(resp) => Some(format!("HTTP {}", resp.status().as_u16())),
                    Err(e) => Some(describe(&e)),
                }
            }
        };
        match error {
            None => {
                let ids: Vec<String> = page.orders.iter().map(|o| o.id.clone()).collect();
                store
                    .acknowledge_orders(hook.distributor_id, &ids, now)
                    .await?;
                store
                    .webhook_delivered(
                        hook.distributor_id,
                        &deliverer.owner,
                        page.next_cursor,
                        ids.len(),
                    )
                    .await?;
                Ok(ids.len())
            }
            Some(e) => {
                let attempts = hook.attempts + 1;
                store
                    .webhook_failed(
                        hook.distributor_id,
                        &deliverer.owner,
                        attempts,
                        now + backoff_ms(attempts, base_backoff_ms),
                        &e,
                    )
                    .await?;
                tracing::warn!(distributor = hook.distributor_id, error = %e, attempts, "webhook delivery failed");
                Ok(0)
            }
        }
    }
}

/// A delivery error as the key user reads it: what kind of failure, never more (no
/// addresses or bodies of the network behind the target).
fn describe(e: &reqwest::Error) -> String {
    let mut source: Option<&dyn std::error::Error> = Some(e);
    while let Some(s) = source {
        if s.to_string().contains(NOT_PUBLIC) {
            return NOT_PUBLIC.to_string();
        }
        source = s.source();
    }
    if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_connect() {
        "could not connect".to_string()
    } else {
        "request failed".to_string()
    }
}

/// Runs deliveries every second until the process ends.
pub fn spawn(store: Store, targets: Targets) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let deliverer = Deliverer::new(targets);
        loop {
            if let Err(e) = deliver_due(&store, &deliverer, crate::store::now_ms(), 2_000).await {
                tracing::error!(error = %e, "webhook pass failed");
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231_test_case_2() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn private_loopback_and_link_local_targets_are_refused_unless_allowed() {
        let strict = Targets::default();
        for url in [
            "http://127.0.0.1:8080/hook",
            "http://169.254.169.254/latest/meta-data",
            "http://10.1.2.3/",
            "http://192.168.0.10/",
            "http://172.16.5.4/",
            "http://100.64.0.1/",
            "http://0.0.0.0/",
            "http://[::1]/",
            "http://[fd00::1]/",
            "http://[fe80::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://2130706433/",
        ] {
            assert!(url_problem(url, strict).is_some(), "{url} accepted");
            assert_eq!(
                url_problem(
                    url,
                    Targets {
                        allow_private: true
                    }
                ),
                None,
                "{url}"
            );
        }
        assert_eq!(url_problem("https://erp.example.com/orders", strict), None);
        assert_eq!(url_problem("http://8.8.8.8/", strict), None);
        assert!(url_problem("ftp://example.com/", strict).is_some());
        assert!(url_problem("https://user:pw@example.com/", strict).is_some());
        assert!(url_problem("https://", strict).is_some());
    }

    #[test]
    fn backoff_doubles_and_stops_at_ten_minutes() {
        assert!((1_600..=2_400).contains(&backoff_ms(1, 2_000)));
        assert!((3_200..=4_800).contains(&backoff_ms(2, 2_000)));
        assert!(backoff_ms(30, 2_000) <= 720_000);
    }
}
