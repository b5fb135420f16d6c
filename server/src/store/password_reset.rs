//! Password-reset links for key users who forgot their password. A link carries a random
//! token; only its SHA-256 is stored. It works once (one conditional UPDATE uses it) and
//! until [`RESET_MS`] after it was sent; setting the password ends every session of the user
//! and every other link. Asking for links is limited per login (an unknown login is counted
//! the same, so the answer tells nothing about which logins exist).
use super::devices::hash_token;
use super::keyusers::{LOGIN_RULE, password_problem};
use super::mail::{Outgoing, queue_on};
use super::sql::{IntoVal, Val, exec_on, rows_on};
use super::throttle::{Gate, Rule};
use super::{Result, Store, StoreError};

/// How long a link works.
pub const RESET_MS: i64 = 60 * 60 * 1000;
/// Links one login may be sent per hour.
pub const RESET_RULE: Rule = Rule {
    kind: "password_reset",
    allowed: 3,
    lock_ms: 60 * 60 * 1000,
};

/// Who a reset link is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResetTarget {
    pub key_user_id: i64,
    pub login: String,
    pub email: String,
    pub lang: String,
}

/// What asking for a link did. The page says the same for all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetAsked {
    /// A link is queued for the login's mail address.
    Queued,
    /// Unknown or disabled login, or one without a mail address: nothing sent.
    Nothing,
    /// Too many links asked for this login this hour.
    Limited,
}

/// What setting a new password through a link did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResetDone {
    /// The password is set; the user's login.
    Changed(String),
    /// The link is unknown, used or expired.
    BadLink,
}

impl Store {
    /// Queues a reset link for `login` (mail composed by `letter` from the target and the
    /// token) when the login exists, is active and has a mail address.
    pub async fn ask_password_reset(
        &self,
        login: &str,
        now: i64,
        letter: impl FnOnce(&ResetTarget, &str) -> Outgoing,
    ) -> Result<ResetAsked> {
        let login = login.trim();
        if let Gate::Locked { .. } = self.claim_attempt(RESET_RULE, login, now).await? {
            return Ok(ResetAsked::Limited);
        }
        let mut tx = self.begin_write().await?;
        let found: Vec<(i64, String, String, String)> = rows_on(
            &mut tx,
            "SELECT id, login, email, lang FROM key_users \
             WHERE login = $1 AND disabled_at_ms IS NULL AND email <> ''",
            &[login.into_val()],
        )
        .await?;
        let Some((id, login, email, lang)) = found.into_iter().next() else {
            return Ok(ResetAsked::Nothing);
        };
        let target = ResetTarget {
            key_user_id: id,
            login,
            email,
            lang,
        };
        let token = super::keyusers::new_form_token();
        exec_on(
            &mut tx,
            "INSERT INTO password_resets (token_hash, key_user_id, expires_at_ms, created_at_ms) \
             VALUES ($1, $2, $3, $4)",
            &[
                hash_token(&token).into_val(),
                Val::I(id),
                Val::I(now + RESET_MS),
                Val::I(now),
            ],
        )
        .await?;
        exec_on(
            &mut tx,
            "DELETE FROM password_resets WHERE key_user_id = $1 AND expires_at_ms < $2",
            &[Val::I(id), Val::I(now)],
        )
        .await?;
        queue_on(&mut tx, &letter(&target, &token), now).await?;
        tx.commit().await?;
        Ok(ResetAsked::Queued)
    }

    /// The user a link is for, while it works.
    pub async fn password_reset_target(&self, token: &str, now: i64) -> Result<Option<String>> {
        let rows: Vec<(String,)> = self
            .rows(
                "SELECT k.login FROM password_resets r JOIN key_users k ON k.id = r.key_user_id \
                 WHERE r.token_hash = $1 AND r.used_at_ms IS NULL AND r.expires_at_ms > $2 \
                   AND k.disabled_at_ms IS NULL",
                &[hash_token(token).into_val(), Val::I(now)],
            )
            .await?;
        Ok(rows.into_iter().next().map(|(l,)| l))
    }

    /// Sets a new password through a link. The link is used by one conditional UPDATE (of two
    /// concurrent requests with the same link, one changes the password); the password's
    /// rules are checked and it is hashed before, on the bounded hashing pool.
    pub async fn reset_password_with_link(
        &self,
        token: &str,
        password: &str,
        now: i64,
    ) -> Result<ResetDone> {
        if let Some(problem) = password_problem(password) {
            return Err(StoreError::Refused(problem));
        }
        if self.password_reset_target(token, now).await?.is_none() {
            return Ok(ResetDone::BadLink);
        }
        let hash = self.secrets().hash(password.to_string()).await?;
        let mut tx = self.begin_write().await?;
        let used: Vec<(i64,)> = rows_on(
            &mut tx,
            "UPDATE password_resets SET used_at_ms = $1 \
             WHERE token_hash = $2 AND used_at_ms IS NULL AND expires_at_ms > $1 \
             RETURNING key_user_id",
            &[Val::I(now), hash_token(token).into_val()],
        )
        .await?;
        let Some((id,)) = used.into_iter().next() else {
            return Ok(ResetDone::BadLink);
        };
        let changed: Vec<(String,)> = rows_on(
            &mut tx,
            "UPDATE key_users SET password_hash = $1 WHERE id = $2 AND disabled_at_ms IS NULL \
             RETURNING login",
            &[hash.into_val(), Val::I(id)],
        )
        .await?;
        let Some((login,)) = changed.into_iter().next() else {
            return Ok(ResetDone::BadLink);
        };
        exec_on(
            &mut tx,
            "DELETE FROM web_sessions WHERE key_user_id = $1",
            &[Val::I(id)],
        )
        .await?;
        exec_on(
            &mut tx,
            "UPDATE password_resets SET used_at_ms = $2 WHERE key_user_id = $1 AND used_at_ms IS NULL",
            &[Val::I(id), Val::I(now)],
        )
        .await?;
        tx.commit().await?;
        self.clear_attempts(LOGIN_RULE, &login).await?;
        Ok(ResetDone::Changed(login))
    }
}
