//! The mail outbox: what the back office sends by mail waits here until a server's sender
//! (`crate::mail`) claims and sends it. Every claim and every outcome is one conditional
//! statement, so several servers on one database never send a message twice: a row is
//! claimed by moving it from `queued` to `sending` under the sender's lease, and only the
//! lease holder may mark it `sent`, put it back for a retry or give it up.
use sqlx::AnyConnection;

use super::sql::{IntoVal, Val, exec_on, rows_on};
use super::{Result, Store};

/// How many times a message is tried before it is given up.
pub const MAX_ATTEMPTS: i64 = 6;
/// How long a sender holds the messages it claimed (longer than any send may take: the
/// sender gives up a message whose lease would end before its send's timeout).
pub const LEASE_MS: i64 = 10 * 60 * 1000;
/// Sent and failed messages (and queued ones nobody sends: mail switched off) are removed
/// after this long.
pub const KEEP_MS: i64 = 30 * 24 * 60 * 60 * 1000;
/// Largest attachment a message carries (the refused rows of an import are capped well below).
pub const MAX_ATTACHMENT: usize = 5 * 1024 * 1024;

/// A message to queue.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outgoing {
    /// 'import' | 'rdc' | 'password_reset' | 'support' | 'digest'.
    pub kind: &'static str,
    pub to: String,
    pub subject: String,
    pub body: String,
    /// A file's name and bytes (CSV of refused rows, a request's attachment).
    pub attachment: Option<(String, Vec<u8>)>,
}

/// A message a sender claimed.
#[derive(Debug, Clone)]
pub struct ClaimedMail {
    pub id: i64,
    pub kind: String,
    pub to: String,
    pub subject: String,
    pub body: String,
    pub attachment: Option<(String, Vec<u8>)>,
    /// Attempts including this one.
    pub attempts: i64,
    pub created_at_ms: i64,
}

/// A row of the outbox as head office reads it.
#[derive(Debug, Clone)]
pub struct OutboxRow {
    pub id: i64,
    pub kind: String,
    pub to: String,
    pub subject: String,
    pub state: String,
    pub attempts: i64,
    pub last_error: String,
    pub created_at_ms: i64,
    pub sent_at_ms: Option<i64>,
}

/// Queues a message in a transaction that is writing something else (the message goes out
/// only if that commits).
pub(crate) async fn queue_on(conn: &mut AnyConnection, m: &Outgoing, now: i64) -> Result<()> {
    let (name, bytes) = match &m.attachment {
        Some((n, b)) if b.len() <= MAX_ATTACHMENT => (n.clone(), b.clone()),
        _ => (String::new(), Vec::new()),
    };
    exec_on(
        conn,
        "INSERT INTO mail_outbox (kind, to_addr, subject, body, attachment_name, attachment, next_attempt_ms, created_at_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
        &[
            m.kind.into_val(),
            (&m.to).into_val(),
            (&m.subject).into_val(),
            (&m.body).into_val(),
            name.into_val(),
            Val::B(bytes),
            now.into_val(),
        ],
    )
    .await?;
    Ok(())
}

/// Whether an address looks like one a mail server takes (`local@domain`, no spaces or
/// angle brackets, at most 254 characters). The SMTP library checks it again when sending.
pub fn valid_address(a: &str) -> bool {
    let a = a.trim();
    let Some((local, domain)) = a.rsplit_once('@') else {
        return false;
    };
    a.len() <= 254
        && !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !a.chars().any(|c| {
            c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',' | ';' | '"')
        })
}

impl Store {
    /// Queues a message on its own.
    pub async fn queue_mail(&self, m: &Outgoing, now: i64) -> Result<()> {
        let mut tx = self.begin_write().await?;
        queue_on(&mut tx, m, now).await?;
        tx.commit().await
    }

    /// Claims up to `limit` due messages for `owner`: one statement moves them from `queued`
    /// to `sending` and counts the attempt; of several servers each row goes to one.
    pub async fn claim_mail(&self, owner: &str, now: i64, limit: i64) -> Result<Vec<ClaimedMail>> {
        // On PostgreSQL rows another server is claiming right now are skipped rather than
        // waited for (each server gets other messages); the outer `state = 'queued'` is what
        // makes a row go to one server either way.
        let sql = match self.backend() {
            super::Backend::Postgres => {
                "UPDATE mail_outbox SET state = 'sending', lease_owner = $1, lease_until_ms = $2, \
                 attempts = attempts + 1 \
                 WHERE id IN (SELECT id FROM mail_outbox WHERE state = 'queued' AND next_attempt_ms <= $3 \
                              ORDER BY id LIMIT $4 FOR UPDATE SKIP LOCKED) \
                   AND state = 'queued' \
                 RETURNING id, kind, to_addr, subject, body, attachment_name, attachment, attempts, created_at_ms"
            }
            super::Backend::Sqlite => {
                "UPDATE mail_outbox SET state = 'sending', lease_owner = $1, lease_until_ms = $2, \
                 attempts = attempts + 1 \
                 WHERE id IN (SELECT id FROM mail_outbox WHERE state = 'queued' AND next_attempt_ms <= $3 \
                              ORDER BY id LIMIT $4) \
                   AND state = 'queued' \
                 RETURNING id, kind, to_addr, subject, body, attachment_name, attachment, attempts, created_at_ms"
            }
        };
        let mut tx = self.begin_write().await?;
        let rows: Vec<(
            i64,
            String,
            String,
            String,
            String,
            String,
            Option<Vec<u8>>,
            i64,
            i64,
        )> = rows_on(
            &mut tx,
            sql,
            &[
                owner.into_val(),
                (now + LEASE_MS).into_val(),
                now.into_val(),
                limit.into_val(),
            ],
        )
        .await?;
        tx.commit().await?;
        let mut out: Vec<ClaimedMail> = rows
            .into_iter()
            .map(|r| ClaimedMail {
                id: r.0,
                kind: r.1,
                to: r.2,
                subject: r.3,
                body: r.4,
                attachment: (!r.5.is_empty()).then(|| (r.5, r.6.unwrap_or_default())),
                attempts: r.7,
                created_at_ms: r.8,
            })
            .collect();
        out.sort_by_key(|m| m.id);
        Ok(out)
    }

    /// Marks a claimed message sent; `false` when `owner` no longer holds it.
    pub async fn mail_sent(&self, id: i64, owner: &str, now: i64) -> Result<bool> {
        Ok(self
            .exec(
                "UPDATE mail_outbox SET state = 'sent', sent_at_ms = $1, last_error = '', \
                 lease_owner = '', lease_until_ms = 0 \
                 WHERE id = $2 AND state = 'sending' AND lease_owner = $3",
                &[now.into_val(), id.into_val(), owner.into_val()],
            )
            .await?
            == 1)
    }

    /// Puts claimed messages of `owner` back to the queue untried (their attempt uncounted):
    /// all of them but `except` (the one a stopping server may have been sending), or only
    /// `only`. Returns how many.
    pub async fn unclaim_mail(&self, owner: &str, only: Option<i64>, except: i64) -> Result<u64> {
        self.exec(
            "UPDATE mail_outbox SET state = 'queued', attempts = attempts - 1, \
             lease_owner = '', lease_until_ms = 0 \
             WHERE state = 'sending' AND lease_owner = $1 AND id <> $2 AND ($3 = 0 OR id = $3)",
            &[
                owner.into_val(),
                except.into_val(),
                only.unwrap_or(0).into_val(),
            ],
        )
        .await
    }

    /// A send that failed: back to the queue for `next_attempt_ms`, or given up (`None`).
    pub async fn mail_not_sent(
        &self,
        id: i64,
        owner: &str,
        next_attempt_ms: Option<i64>,
        error: &str,
    ) -> Result<()> {
        let error: String = error.chars().take(500).collect();
        match next_attempt_ms {
            Some(next) => {
                self.exec(
                    "UPDATE mail_outbox SET state = 'queued', next_attempt_ms = $1, last_error = $2, \
                     lease_owner = '', lease_until_ms = 0 \
                     WHERE id = $3 AND state = 'sending' AND lease_owner = $4",
                    &[next.into_val(), error.into_val(), id.into_val(), owner.into_val()],
                )
                .await?
            }
            None => {
                self.exec(
                    "UPDATE mail_outbox SET state = 'failed', last_error = $1, \
                     lease_owner = '', lease_until_ms = 0 \
                     WHERE id = $2 AND state = 'sending' AND lease_owner = $3",
                    &[error.into_val(), id.into_val(), owner.into_val()],
                )
                .await?
            }
        };
        Ok(())
    }

    /// Gives up the messages a stopped server was sending (its lease ran out): whether the
    /// mail server took them is unknown, and a message is never sent twice. Removes messages
    /// older than [`KEEP_MS`]. Returns (given up, removed).
    pub async fn mail_housekeeping(&self, now: i64) -> Result<(u64, u64)> {
        let stalled = self
            .exec(
                "UPDATE mail_outbox SET state = 'failed', lease_owner = '', lease_until_ms = 0, \
                 last_error = 'the server sending this message stopped; it is not sent again so that it never arrives twice' \
                 WHERE state = 'sending' AND lease_until_ms < $1",
                &[now.into_val()],
            )
            .await?;
        let removed = self
            .exec(
                "DELETE FROM mail_outbox WHERE created_at_ms < $1",
                &[(now - KEEP_MS).into_val()],
            )
            .await?;
        self.exec(
            "DELETE FROM password_resets WHERE expires_at_ms < $1",
            &[now.into_val()],
        )
        .await?;
        // Digest claims of days long past (a day is `YYYY-MM-DD`, compared as text).
        let before = fieldsync_protocol::dates::format(fieldsync_protocol::dates::date_at(
            now - KEEP_MS,
            "UTC",
        ));
        self.exec(
            "DELETE FROM mail_digests WHERE day < $1",
            &[before.into_val()],
        )
        .await?;
        Ok((stalled, removed))
    }

    /// The newest messages of the outbox, newest first.
    pub async fn mail_outbox(&self, limit: i64) -> Result<Vec<OutboxRow>> {
        let rows: Vec<(i64, String, String, String, String, i64, String, i64, Option<i64>)> = self
            .rows(
                "SELECT id, kind, to_addr, subject, state, attempts, last_error, created_at_ms, sent_at_ms \
                 FROM mail_outbox ORDER BY id DESC LIMIT $1",
                &[limit.into_val()],
            )
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| OutboxRow {
                id: r.0,
                kind: r.1,
                to: r.2,
                subject: r.3,
                state: r.4,
                attempts: r.5,
                last_error: r.6,
                created_at_ms: r.7,
                sent_at_ms: r.8,
            })
            .collect())
    }

    /// Queued messages (for tests and the outbox page's count).
    pub async fn mail_waiting(&self) -> Result<i64> {
        let (n,): (i64,) = self
            .one(
                "SELECT COUNT(*) FROM mail_outbox WHERE state IN ('queued', 'sending')",
                &[],
            )
            .await?;
        Ok(n)
    }
}
