//! The webhook registrations and their delivery state. What is posted, where it may go and
//! how it is signed is the exchange's business (`crate::exchange::webhooks`); here is what
//! the database records and the atomic claims several servers rely on.
use super::sql::IntoVal;
use super::sql::Val;
use super::{Result, Store};

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
    /// Registers (or replaces) a distributor's webhook with its signing secret; the delivery
    /// state starts afresh. The URL is checked by the caller.
    pub async fn save_webhook(
        &self,
        distributor_id: i64,
        url: &str,
        secret: &str,
        now: i64,
    ) -> Result<()> {
        self.exec(
            "INSERT INTO webhooks (distributor_id, url, secret, created_at_ms) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (distributor_id) DO UPDATE SET url = excluded.url, secret = excluded.secret, \
             attempts = 0, next_attempt_ms = 0, last_error = '', lease_owner = '', lease_until_ms = 0",
            &[Val::I(distributor_id), Val::S(url.to_string()), Val::S(secret.to_string()), Val::I(now)],
        )
        .await?;
        Ok(())
    }

    pub async fn remove_webhook(&self, distributor_id: i64) -> Result<()> {
        self.exec(
            "DELETE FROM webhooks WHERE distributor_id = $1",
            &[Val::I(distributor_id)],
        )
        .await?;
        Ok(())
    }

    pub async fn webhook(&self, distributor_id: i64) -> Result<Option<Webhook>> {
        Ok(self
            .webhooks("WHERE distributor_id = $1", distributor_id)
            .await?
            .pop())
    }

    /// Webhooks whose next attempt is due and that no server holds a lease on.
    pub async fn due_webhooks(&self, now: i64) -> Result<Vec<Webhook>> {
        self.webhooks("WHERE next_attempt_ms <= $1 AND lease_until_ms <= $1", now)
            .await
    }

    async fn webhooks(&self, filter: &'static str, arg: i64) -> Result<Vec<Webhook>> {
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

    /// Claims a due delivery for `owner` until `until_ms`. The claim and its condition are
    /// one statement: of several servers, one wins. `false` when another server has it, it
    /// is no longer due or its URL changed.
    pub async fn claim_webhook(
        &self,
        hook: &Webhook,
        owner: &str,
        now: i64,
        until_ms: i64,
    ) -> Result<bool> {
        let claimed = self
            .exec(
                "UPDATE webhooks SET lease_owner = $1, lease_until_ms = $2 \
             WHERE distributor_id = $3 AND next_attempt_ms <= $4 AND lease_until_ms <= $4 \
               AND url = $5",
                &[
                    owner.into_val(),
                    until_ms.into_val(),
                    hook.distributor_id.into_val(),
                    now.into_val(),
                    (&hook.url).into_val(),
                ],
            )
            .await?;
        Ok(claimed == 1)
    }

    /// Gives a claimed delivery back with nothing done (nothing was due).
    pub async fn release_webhook(&self, distributor_id: i64, owner: &str) -> Result<()> {
        self.exec(
            "UPDATE webhooks SET lease_owner = '', lease_until_ms = 0 \
             WHERE distributor_id = $1 AND lease_owner = $2",
            &[Val::I(distributor_id), Val::S(owner.to_string())],
        )
        .await?;
        Ok(())
    }

    /// Records a delivered batch (if the lease is still `owner`'s).
    pub async fn webhook_delivered(
        &self,
        distributor_id: i64,
        owner: &str,
        last_number: i64,
        orders: usize,
    ) -> Result<()> {
        self.exec(
            "UPDATE webhooks SET last_number = $1, attempts = 0, next_attempt_ms = 0, \
             delivered = delivered + $2, last_error = '', lease_owner = '', lease_until_ms = 0 \
             WHERE distributor_id = $3 AND lease_owner = $4",
            &[
                Val::I(last_number),
                Val::I(orders as i64),
                Val::I(distributor_id),
                Val::S(owner.to_string()),
            ],
        )
        .await?;
        Ok(())
    }

    /// Records a failed attempt and when to try again (if the lease is still `owner`'s).
    pub async fn webhook_failed(
        &self,
        distributor_id: i64,
        owner: &str,
        attempts: i64,
        next_attempt_ms: i64,
        error: &str,
    ) -> Result<()> {
        self.exec(
            "UPDATE webhooks SET attempts = $1, next_attempt_ms = $2, last_error = $3, \
             lease_owner = '', lease_until_ms = 0 WHERE distributor_id = $4 AND lease_owner = $5",
            &[
                Val::I(attempts),
                Val::I(next_attempt_ms),
                Val::S(error.to_string()),
                Val::I(distributor_id),
                Val::S(owner.to_string()),
            ],
        )
        .await?;
        Ok(())
    }
}
