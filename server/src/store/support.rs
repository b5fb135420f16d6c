//! Support requests: a distributor's key user asks head office (subject, text, the page it
//! concerns, a file), head office answers, the requester confirms the fix or reopens the
//! request with a comment. Every step is one conditional UPDATE of the request's state (two
//! concurrent steps cannot both apply) with its message and its mail in the same transaction.
//! Head office hears of new, reopened and confirmed requests; the requester of answers. Each
//! morning head office users get a digest of the requests still open.
use fieldsync_protocol::dates;

use super::mail::{Outgoing, queue_on};
use super::sql::{IntoVal, Val, exec_on, id_on, rows_on};
use super::{Problem, Result, Store, StoreError};

/// States of a request.
pub const STATES: &[&str] = &["open", "answered", "closed"];
/// Longest subject and text.
pub const MAX_SUBJECT: usize = 200;
pub const MAX_TEXT: usize = 10_000;
/// Largest attached file.
pub const MAX_ATTACHMENT: usize = 5 * 1024 * 1024;
/// The local hour from which the morning digest goes out.
pub const DIGEST_HOUR: i8 = 8;
/// Requests a digest lists at most.
const DIGEST_ROWS: i64 = 200;

/// A request as its page shows it.
#[derive(Debug, Clone)]
pub struct SupportRequest {
    pub id: i64,
    pub distributor_id: i64,
    pub distributor_code: String,
    pub opened_by: i64,
    pub opened_by_login: String,
    pub subject: String,
    pub page: String,
    pub state: String,
    pub attachment_name: String,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

/// One message of a request's thread.
#[derive(Debug, Clone)]
pub struct SupportMessage {
    pub author: String,
    pub kind: String,
    pub body: String,
    pub at_ms: i64,
}

/// A new request.
#[derive(Debug, Clone, Default)]
pub struct NewRequest {
    pub distributor_id: i64,
    pub subject: String,
    pub text: String,
    pub page: String,
    /// File name, content type and bytes.
    pub attachment: Option<(String, String, Vec<u8>)>,
}

/// A step after opening.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Head office answers (open or answered requests).
    Answer,
    /// The requester confirms the fix (answered requests).
    Confirm,
    /// The requester reopens it with a comment (answered or closed requests).
    Reopen,
}

impl Step {
    pub fn kind(self) -> &'static str {
        match self {
            Step::Answer => "answer",
            Step::Confirm => "confirmed",
            Step::Reopen => "reopened",
        }
    }
}

/// Composes a step's letter for a recipient: (request id, language, address) -> message.
pub type Letter<'a> = &'a (dyn Fn(i64, &str, &str) -> Outgoing + Send + Sync);

/// Head office users with a mail address: (address, language).
const HEAD_OFFICE_MAIL: &str = "SELECT email, lang FROM key_users \
     WHERE role = 'head_office' AND email <> '' AND disabled_at_ms IS NULL ORDER BY id";

/// A text as stored: trimmed and at most `max` characters.
pub fn clean(s: &str, max: usize) -> String {
    s.trim().chars().take(max).collect()
}

impl Store {
    /// Opens a request by key user `by`; head office is told by mail. Returns its id.
    pub async fn open_support_request(
        &self,
        by: i64,
        r: &NewRequest,
        now: i64,
        letter: Letter<'_>,
    ) -> Result<i64> {
        let subject = clean(&r.subject, MAX_SUBJECT);
        let text = clean(&r.text, MAX_TEXT);
        if subject.is_empty() || text.is_empty() {
            return Err(StoreError::Refused(Problem::SupportEmpty));
        }
        let (name, kind, bytes) = match &r.attachment {
            Some((_, _, b)) if b.len() > MAX_ATTACHMENT => {
                return Err(StoreError::Refused(Problem::SupportFileTooLarge));
            }
            Some((n, k, b)) if !b.is_empty() => (clean(n, 200), clean(k, 100), b.clone()),
            _ => (String::new(), String::new(), Vec::new()),
        };
        let mut tx = self.begin_write().await?;
        let id = id_on(
            &mut tx,
            "INSERT INTO support_requests (distributor_id, opened_by, subject, page, attachment_name, \
             attachment_type, attachment, created_at_ms, updated_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) RETURNING id",
            &[
                Val::I(r.distributor_id),
                Val::I(by),
                subject.into_val(),
                clean(&r.page, 500).into_val(),
                name.into_val(),
                kind.into_val(),
                Val::B(bytes),
                Val::I(now),
            ],
        )
        .await?;
        add_message(&mut tx, id, by, "opened", &text, now).await?;
        let to: Vec<(String, String)> = rows_on(&mut tx, HEAD_OFFICE_MAIL, &[]).await?;
        for (email, lang) in &to {
            queue_on(&mut tx, &letter(id, lang, email), now).await?;
        }
        tx.commit().await?;
        Ok(id)
    }

    /// Applies a step by key user `by` with its text. Refused (`Problem::WrongState`) when the
    /// request is not in a state the step starts from; who may take which step is the
    /// caller's check. The mail goes to the requester (answers) or head office (the rest).
    pub async fn support_step(
        &self,
        id: i64,
        by: i64,
        step: Step,
        text: &str,
        now: i64,
        letter: Letter<'_>,
    ) -> Result<()> {
        let text = clean(text, MAX_TEXT);
        if text.is_empty() && step != Step::Confirm {
            return Err(StoreError::Refused(Problem::SupportEmpty));
        }
        let sql = match step {
            Step::Answer => {
                "UPDATE support_requests SET state = 'answered', updated_at_ms = $1, messages = messages + 1 \
                 WHERE id = $2 AND state IN ('open', 'answered') RETURNING opened_by"
            }
            Step::Confirm => {
                "UPDATE support_requests SET state = 'closed', updated_at_ms = $1, messages = messages + 1 \
                 WHERE id = $2 AND state = 'answered' RETURNING opened_by"
            }
            Step::Reopen => {
                "UPDATE support_requests SET state = 'open', updated_at_ms = $1, messages = messages + 1 \
                 WHERE id = $2 AND state IN ('answered', 'closed') RETURNING opened_by"
            }
        };
        let mut tx = self.begin_write().await?;
        let changed: Vec<(i64,)> = rows_on(&mut tx, sql, &[Val::I(now), Val::I(id)]).await?;
        let Some((requester,)) = changed.into_iter().next() else {
            return Err(StoreError::Refused(Problem::SupportWrongState));
        };
        add_message(&mut tx, id, by, step.kind(), &text, now).await?;
        let to: Vec<(String, String)> = match step {
            Step::Answer => {
                rows_on(
                    &mut tx,
                    "SELECT email, lang FROM key_users WHERE id = $1 AND email <> '' AND disabled_at_ms IS NULL",
                    &[Val::I(requester)],
                )
                .await?
            }
            Step::Confirm | Step::Reopen => rows_on(&mut tx, HEAD_OFFICE_MAIL, &[]).await?,
        };
        for (email, lang) in &to {
            queue_on(&mut tx, &letter(id, lang, email), now).await?;
        }
        tx.commit().await
    }

    /// A request, if it exists.
    pub async fn support_request(&self, id: i64) -> Result<Option<SupportRequest>> {
        let rows: Vec<(i64, i64, String, i64, String, String, String, String, String, i64, i64)> =
            self.rows(
                "SELECT sr.id, sr.distributor_id, d.code, sr.opened_by, COALESCE(ku.login, ''), sr.subject, \
                 sr.page, sr.state, sr.attachment_name, sr.created_at_ms, sr.updated_at_ms \
                 FROM support_requests sr JOIN distributors d ON d.id = sr.distributor_id \
                 LEFT JOIN key_users ku ON ku.id = sr.opened_by WHERE sr.id = $1",
                &[Val::I(id)],
            )
            .await?;
        Ok(rows.into_iter().next().map(|r| SupportRequest {
            id: r.0,
            distributor_id: r.1,
            distributor_code: r.2,
            opened_by: r.3,
            opened_by_login: r.4,
            subject: r.5,
            page: r.6,
            state: r.7,
            attachment_name: r.8,
            created_at_ms: r.9,
            updated_at_ms: r.10,
        }))
    }

    /// A request's thread, oldest first.
    pub async fn support_messages(&self, id: i64) -> Result<Vec<SupportMessage>> {
        let rows: Vec<(String, String, String, i64)> = self
            .rows(
                "SELECT COALESCE(ku.login, ''), m.kind, m.body, m.at_ms FROM support_messages m \
                 LEFT JOIN key_users ku ON ku.id = m.author_id WHERE m.request_id = $1 ORDER BY m.id",
                &[Val::I(id)],
            )
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| SupportMessage {
                author: r.0,
                kind: r.1,
                body: r.2,
                at_ms: r.3,
            })
            .collect())
    }

    /// A request's attached file: (name, content type, bytes).
    pub async fn support_attachment(&self, id: i64) -> Result<Option<(String, String, Vec<u8>)>> {
        let rows: Vec<(String, String, Option<Vec<u8>>)> = self
            .rows(
                "SELECT attachment_name, attachment_type, attachment FROM support_requests \
                 WHERE id = $1 AND attachment_name <> ''",
                &[Val::I(id)],
            )
            .await?;
        Ok(rows
            .into_iter()
            .next()
            .map(|(n, k, b)| (n, k, b.unwrap_or_default())))
    }

    /// Queues the morning digest for every head office user with a mail address whose local
    /// time is past [`DIGEST_HOUR`] and who has not had today's. Inserting the (user, day)
    /// row is the claim: with several servers, one queues it. A day without unclosed
    /// requests sends nothing. Returns the digests queued.
    pub async fn queue_support_digests(
        &self,
        now: i64,
        letter: impl Fn(&str, &str, &str, &[(i64, String, String, String, i64)]) -> Outgoing,
    ) -> Result<usize> {
        let users: Vec<(i64, String, String, String)> = self
            .rows(
                "SELECT id, email, lang, timezone FROM key_users \
                 WHERE role = 'head_office' AND email <> '' AND disabled_at_ms IS NULL",
                &[],
            )
            .await?;
        let Ok(ts) = jiff::Timestamp::from_millisecond(now) else {
            return Ok(0);
        };
        let mut queued = 0;
        for (id, email, lang, tz) in users {
            let local = ts.to_zoned(dates::zone(&tz));
            if local.hour() < DIGEST_HOUR {
                continue;
            }
            let day = dates::format(local.date());
            // Most rounds find today's digest claimed already: a read, no write transaction.
            let claimed: Vec<(i64,)> = self
                .rows(
                    "SELECT key_user_id FROM mail_digests WHERE key_user_id = $1 AND day = $2",
                    &[Val::I(id), day.clone().into_val()],
                )
                .await?;
            if !claimed.is_empty() {
                continue;
            }
            let mut tx = self.begin_write().await?;
            let claimed = exec_on(
                &mut tx,
                "INSERT INTO mail_digests (key_user_id, day) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                &[Val::I(id), day.clone().into_val()],
            )
            .await?;
            if claimed == 0 {
                continue;
            }
            let open: Vec<(i64, String, String, String, i64)> = rows_on(
                &mut tx,
                "SELECT sr.id, d.code, sr.subject, sr.state, sr.updated_at_ms \
                 FROM support_requests sr JOIN distributors d ON d.id = sr.distributor_id \
                 WHERE sr.state <> 'closed' ORDER BY sr.updated_at_ms LIMIT $1",
                &[Val::I(DIGEST_ROWS)],
            )
            .await?;
            if !open.is_empty() {
                let open: Vec<_> = open
                    .into_iter()
                    .map(|(i, d, s, st, at)| (i, d, s, st, (now - at).max(0) / 86_400_000))
                    .collect();
                queue_on(&mut tx, &letter(&lang, &email, &day, &open), now).await?;
                queued += 1;
            }
            tx.commit().await?;
        }
        Ok(queued)
    }

    /// A key user's mail address and language, if they gave one.
    pub async fn key_user_mail(&self, id: i64) -> Result<Option<(String, String)>> {
        let rows: Vec<(String, String)> = self
            .rows(
                "SELECT email, lang FROM key_users WHERE id = $1 AND email <> '' AND disabled_at_ms IS NULL",
                &[Val::I(id)],
            )
            .await?;
        Ok(rows.into_iter().next())
    }

    /// A key user's mail address ('' for none).
    pub async fn key_user_email(&self, id: i64) -> Result<String> {
        let rows: Vec<(String,)> = self
            .rows("SELECT email FROM key_users WHERE id = $1", &[Val::I(id)])
            .await?;
        Ok(rows.into_iter().next().map(|(e,)| e).unwrap_or_default())
    }

    /// Sets a key user's mail address ('' removes it); the caller checks its form. (An
    /// operator's or a test's: a user's own change goes through [`Store::change_email`].)
    pub async fn set_key_user_email(&self, id: i64, email: &str) -> Result<()> {
        self.exec(
            "UPDATE key_users SET email = $1 WHERE id = $2",
            &[email.trim().into_val(), Val::I(id)],
        )
        .await?;
        Ok(())
    }

    /// A user changes their own mail address: the current password is checked first (the
    /// address receives password-reset links, so a borrowed session must not redirect them),
    /// and the old address is told, in the same transaction as the change.
    pub async fn change_email(
        &self,
        id: i64,
        current_password: &str,
        email: &str,
        now: i64,
        notice: impl FnOnce(&str, &str, &str) -> Outgoing,
    ) -> Result<super::keyusers::PasswordChange> {
        if let Some(refused) = self
            .check_current_password(id, current_password, now)
            .await?
        {
            return Ok(refused);
        }
        let mut tx = self.begin_write().await?;
        let old: Vec<(String, String, String)> = rows_on(
            &mut tx,
            "SELECT email, lang, login FROM key_users WHERE id = $1",
            &[Val::I(id)],
        )
        .await?;
        exec_on(
            &mut tx,
            "UPDATE key_users SET email = $1 WHERE id = $2",
            &[email.trim().into_val(), Val::I(id)],
        )
        .await?;
        if let Some((old, lang, login)) = old.into_iter().next()
            && !old.is_empty()
            && old != email.trim()
        {
            let mut m = notice(&lang, &old, &login);
            m.to = old;
            queue_on(&mut tx, &m, now).await?;
        }
        tx.commit().await?;
        Ok(super::keyusers::PasswordChange::Changed)
    }
}

async fn add_message(
    conn: &mut sqlx::AnyConnection,
    request_id: i64,
    author: i64,
    kind: &str,
    body: &str,
    now: i64,
) -> Result<()> {
    exec_on(
        conn,
        "INSERT INTO support_messages (request_id, author_id, kind, body, at_ms) VALUES ($1, $2, $3, $4, $5)",
        &[
            Val::I(request_id),
            Val::I(author),
            kind.into_val(),
            body.into_val(),
            Val::I(now),
        ],
    )
    .await?;
    Ok(())
}
