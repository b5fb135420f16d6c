//! Webhook push of new orders. A distributor may register a URL; the server then posts its
//! placed orders that were not handed over yet, in order-number order, as
//! `{"orders": [...]}` with the header
//! `X-Fieldsync-Signature: t=UNIX_SECONDS,v1=HEX(HMAC-SHA256(secret, "UNIX_SECONDS.BODY"))`.
//! A 2xx answer hands the orders over (as an acknowledgement would); any other answer or a
//! network error backs off exponentially (2 s, 4 s, … at most 10 min, with jitter) and the
//! same orders are posted again. The feed keeps working beside it: whatever a system
//! acknowledges through the feed is not posted.
use std::time::Duration;

use base64::Engine;
use rand::{Rng, RngCore};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::store::{Result, Store, StoreError};

/// Orders per webhook post.
const BATCH: i64 = 100;

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

/// A registered webhook.
#[derive(Debug, Clone)]
pub struct Webhook {
    pub distributor_id: i64,
    pub url: String,
    pub secret: String,
    pub last_number: i64,
    pub attempts: i64,
    pub delivered: i64,
    pub last_error: String,
}

impl Store {
    /// Registers (or replaces) a distributor's webhook; returns the new signing secret.
    pub async fn set_webhook(&self, distributor_id: i64, url: &str, now: i64) -> Result<String> {
        let url = url.trim();
        if !(url.starts_with("https://") || url.starts_with("http://")) || url.len() > 2000 {
            return Err(StoreError::Invalid(
                "a webhook URL starts with https:// (or http://)".into(),
            ));
        }
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let secret = format!(
            "whsec_{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
        );
        sqlx::query(
            "INSERT INTO webhooks (distributor_id, url, secret, created_at_ms) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (distributor_id) DO UPDATE SET url = excluded.url, secret = excluded.secret, \
             attempts = 0, next_attempt_ms = 0, last_error = ''",
        )
        .bind(distributor_id)
        .bind(url)
        .bind(&secret)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(secret)
    }

    pub async fn remove_webhook(&self, distributor_id: i64) -> Result<()> {
        sqlx::query("DELETE FROM webhooks WHERE distributor_id = $1")
            .bind(distributor_id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    pub async fn webhook(&self, distributor_id: i64) -> Result<Option<Webhook>> {
        Ok(self
            .webhooks("WHERE distributor_id = $1", distributor_id)
            .await?
            .pop())
    }

    async fn webhooks(&self, filter: &str, arg: i64) -> Result<Vec<Webhook>> {
        let rows: Vec<(i64, String, String, i64, i64, i64, String)> =
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT distributor_id, url, secret, last_number, attempts, delivered, last_error \
                 FROM webhooks {filter} ORDER BY distributor_id"
            )))
            .bind(arg)
            .fetch_all(self.pool())
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| Webhook {
                distributor_id: r.0,
                url: r.1,
                secret: r.2,
                last_number: r.3,
                attempts: r.4,
                delivered: r.5,
                last_error: r.6,
            })
            .collect())
    }
}

/// One pass over the webhooks whose next attempt is due: posts one batch each. Returns the
/// number of orders handed over.
pub async fn deliver_due(
    store: &Store,
    http: &reqwest::Client,
    now: i64,
    base_backoff_ms: i64,
) -> Result<usize> {
    let mut handed = 0;
    for hook in store.webhooks("WHERE next_attempt_ms <= $1", now).await? {
        let page = store
            .order_feed(hook.distributor_id, hook.last_number, BATCH)
            .await?;
        if page.orders.is_empty() {
            continue;
        }
        let body = json!({ "orders": page.orders }).to_string();
        let sig = signature(&hook.secret, now / 1000, body.as_bytes());
        let result = http
            .post(&hook.url)
            .header("content-type", "application/json")
            .header("x-fieldsync-signature", sig)
            .body(body)
            .send()
            .await;
        let error = match result {
            Ok(resp) if resp.status().is_success() => None,
            Ok(resp) => Some(format!("HTTP {}", resp.status().as_u16())),
            Err(e) => Some(if e.is_timeout() {
                "timed out".to_string()
            } else if e.is_connect() {
                "could not connect".to_string()
            } else {
                "request failed".to_string()
            }),
        };
        match error {
            None => {
                let ids: Vec<String> = page.orders.iter().map(|o| o.id.clone()).collect();
                store
                    .acknowledge_orders(hook.distributor_id, &ids, now)
                    .await?;
                sqlx::query(
                    "UPDATE webhooks SET last_number = $1, attempts = 0, next_attempt_ms = 0, \
                     delivered = delivered + $2, last_error = '' WHERE distributor_id = $3",
                )
                .bind(page.next_cursor)
                .bind(ids.len() as i64)
                .bind(hook.distributor_id)
                .execute(store.pool())
                .await?;
                handed += ids.len();
            }
            Some(e) => {
                let attempts = hook.attempts + 1;
                sqlx::query(
                    "UPDATE webhooks SET attempts = $1, next_attempt_ms = $2, last_error = $3 WHERE distributor_id = $4",
                )
                .bind(attempts)
                .bind(now + backoff_ms(attempts, base_backoff_ms))
                .bind(&e)
                .bind(hook.distributor_id)
                .execute(store.pool())
                .await?;
                tracing::warn!(distributor = hook.distributor_id, error = %e, attempts, "webhook delivery failed");
            }
        }
    }
    Ok(handed)
}

/// Runs deliveries every second until the process ends.
pub fn spawn(store: Store) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .build()
            .expect("http client");
        loop {
            if let Err(e) = deliver_due(&store, &http, crate::store::now_ms(), 2_000).await {
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
    fn backoff_doubles_and_stops_at_ten_minutes() {
        assert!((1_600..=2_400).contains(&backoff_ms(1, 2_000)));
        assert!((3_200..=4_800).contains(&backoff_ms(2, 2_000)));
        assert!(backoff_ms(30, 2_000) <= 720_000);
    }
}
