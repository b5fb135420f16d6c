//! Lockouts of secrets (passwords, PINs), decided by one atomic statement.
//!
//! Every attempt first claims a numbered slot for its subject with one upsert; only slots up
//! to the rule's limit may check the secret at all, and the attempt that uses the last slot
//! and fails locks the subject. Because the claim and the decision are one statement, 200
//! concurrent attempts, on one server or on several sharing the database, check the secret
//! exactly `allowed` times. Subjects are counted whether or not they exist (an unknown login
//! locks like a real one), so a lockout tells nothing about which logins exist. A success
//! clears the subject's count.
use super::sql::IntoVal;
use super::{Result, Store};

/// How many times a secret may be tried, and how long a lock lasts.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    pub kind: &'static str,
    /// Attempts that may check the secret in a row; the last of them, if wrong, locks.
    pub allowed: i64,
    /// A lock (and a run of failures) ends this long after the last counted attempt.
    pub lock_ms: i64,
}

/// Whether an attempt may check its secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// Check it; `last` says a wrong secret now locks the subject.
    Check { last: bool },
    /// Locked: refused without checking, until this time.
    Locked { until_ms: i64 },
}

/// Longest subject kept (logins are at most 64 characters; anything longer is cut).
const MAX_SUBJECT: usize = 128;

impl Store {
    /// Claims one attempt for `subject` under `rule`, atomically.
    pub async fn claim_attempt(&self, rule: Rule, subject: &str, now: i64) -> Result<Gate> {
        let subject: String = subject.chars().take(MAX_SUBJECT).collect();
        // Old values on the right-hand side: a run older than lock_ms starts again at 1; a
        // locked subject keeps its last attempt time, so hammering does not extend the lock.
        let mut tx = self.begin_write().await?;
        let (attempts, last): (i64, i64) = sqlx::query_as(
            "INSERT INTO auth_attempts (kind, subject, attempts, last_attempt_ms) VALUES ($1, $2, 1, $3) \
             ON CONFLICT (kind, subject) DO UPDATE SET \
               attempts = CASE WHEN auth_attempts.last_attempt_ms <= $4 THEN 1 \
                               ELSE auth_attempts.attempts + 1 END, \
               last_attempt_ms = CASE WHEN auth_attempts.last_attempt_ms > $4 \
                                       AND auth_attempts.attempts >= $5 \
                                      THEN auth_attempts.last_attempt_ms ELSE $3 END \
             RETURNING attempts, last_attempt_ms",
        )
        .bind(rule.kind)
        .bind(&subject)
        .bind(now)
        .bind(now - rule.lock_ms)
        .bind(rule.allowed)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(if attempts > rule.allowed {
            Gate::Locked {
                until_ms: last + rule.lock_ms,
            }
        } else {
            Gate::Check {
                last: attempts == rule.allowed,
            }
        })
    }

    /// Forgets the attempts of a subject (after a success, or a new PIN).
    pub async fn clear_attempts(&self, rule: Rule, subject: &str) -> Result<()> {
        let subject: String = subject.chars().take(MAX_SUBJECT).collect();
        self.exec(
            "DELETE FROM auth_attempts WHERE kind = $1 AND subject = $2",
            &[rule.kind.into_val(), subject.into_val()],
        )
        .await?;
        Ok(())
    }

    /// Gives back the slot of an attempt that turned out not to be a failure (a PIN that
    /// matched but was already used or replaced). Every wrong secret still holds its slot,
    /// so no interleaving of such attempts lets more wrong secrets be checked.
    pub async fn refund_attempt(&self, rule: Rule, subject: &str) -> Result<()> {
        let subject: String = subject.chars().take(MAX_SUBJECT).collect();
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "UPDATE auth_attempts SET attempts = attempts - 1 \
             WHERE kind = $1 AND subject = $2 AND attempts > 0",
        )
        .bind(rule.kind)
        .bind(subject)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Drops counts whose run has ended (they would start again at 1 anyway); keeps the
    /// table as small as the attempts of the last lock period.
    pub async fn forget_old_attempts(&self, now: i64, longest_lock_ms: i64) -> Result<u64> {
        self.exec(
            "DELETE FROM auth_attempts WHERE last_attempt_ms <= $1",
            &[(now - longest_lock_ms).into_val()],
        )
        .await
    }
}
