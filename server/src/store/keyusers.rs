//! Key users of the back office: logins with argon2 passwords, lockout after repeated
//! failures, browser sessions with a CSRF token, and the sync points each one may see.
use base64::Engine;
use rand::RngCore;

use super::devices::hash_token;
use super::sql::{IntoVal, Val, exec_on, id_on};
use super::throttle::{Gate, Rule};
use super::{Problem, Result, Store, StoreError};

/// More than this many failed attempts in a row lock the login.
pub const MAX_FAILED_ATTEMPTS: i64 = 3;
/// How long a locked login stays locked after its last failed attempt.
pub const LOCKOUT_MS: i64 = 15 * 60 * 1000;
/// Attempts at a back-office password: the failure after [`MAX_FAILED_ATTEMPTS`] locks.
pub const LOGIN_RULE: Rule = Rule {
    kind: "login",
    allowed: MAX_FAILED_ATTEMPTS + 1,
    lock_ms: LOCKOUT_MS,
};
/// Attempts at the current password in the password-change form, per key user.
pub const PASSWORD_CHANGE_RULE: Rule = Rule {
    kind: "password_change",
    allowed: MAX_FAILED_ATTEMPTS + 1,
    lock_ms: LOCKOUT_MS,
};
/// How long a browser session lives.
pub const SESSION_MS: i64 = 12 * 60 * 60 * 1000;

/// What a key user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The brand's head office: every distributor, read and write.
    HeadOffice,
    /// A distributor's key user: its sync points, read and write.
    KeyUser,
    /// Read only: its sync points, or every distributor when it has none.
    ReadOnly,
    /// A distributor's own staff in the portal: its orders and imports, nothing else.
    Distributor,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::HeadOffice => "head_office",
            Role::KeyUser => "key_user",
            Role::ReadOnly => "read_only",
            Role::Distributor => "distributor",
        }
    }
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "head_office" => Some(Role::HeadOffice),
            "key_user" => Some(Role::KeyUser),
            "read_only" => Some(Role::ReadOnly),
            "distributor" => Some(Role::Distributor),
            _ => None,
        }
    }
}

/// Which distributors a key user sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    All,
    Only(Vec<i64>),
}

impl Scope {
    pub fn allows(&self, distributor_id: i64) -> bool {
        match self {
            Scope::All => true,
            Scope::Only(ids) => ids.contains(&distributor_id),
        }
    }
}

/// A logged-in key user, as a session yields it.
#[derive(Debug, Clone)]
pub struct SessionUser {
    pub id: i64,
    pub login: String,
    pub role: Role,
    pub lang: String,
    pub timezone: String,
    pub scope: Scope,
    pub csrf_token: String,
}

/// The result of a login attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginOutcome {
    /// Logged in: the session token for the cookie.
    Ok { token: String },
    /// Unknown login or wrong password (not told apart).
    Wrong,
    /// Too many failures: refused until this time.
    Locked { until_ms: i64 },
}

/// The result of a password change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordChange {
    Changed,
    WrongCurrent,
    /// Too many wrong current passwords: refused until this time.
    Locked {
        until_ms: i64,
    },
}

/// Why a password is not acceptable.
pub fn password_problem(password: &str) -> Option<Problem> {
    if password.chars().count() < 8 {
        Some(Problem::PasswordTooShort)
    } else if !password.chars().any(|c| c.is_alphabetic()) {
        Some(Problem::PasswordNeedsLetter)
    } else if !password.chars().any(|c| c.is_ascii_digit()) {
        Some(Problem::PasswordNeedsDigit)
    } else {
        None
    }
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A random token for forms that have no session yet (the login form).
pub fn new_form_token() -> String {
    random_token()
}

impl Store {
    /// Creates a key user. `distributor_codes` are its sync points.
    pub async fn create_key_user(
        &self,
        login: &str,
        password: &str,
        role: Role,
        distributor_codes: &[String],
        now: i64,
    ) -> Result<i64> {
        if matches!(role, Role::KeyUser | Role::Distributor) && distributor_codes.is_empty() {
            return Err(StoreError::Refused(Problem::RoleNeedsDistributor));
        }
        let mut ids = Vec::new();
        for code in distributor_codes {
            ids.push(
                self.distributor_id(code)
                    .await
                    .map_err(|_| StoreError::Refused(Problem::UnknownDistributor(code.clone())))?,
            );
        }
        self.insert_key_user(login, password, role, &ids, now).await
    }

    /// Checks a login and password. More than [`MAX_FAILED_ATTEMPTS`] failures in a row lock
    /// the login until [`LOCKOUT_MS`] after the last failure; while locked the password is not
    /// even checked. Unknown logins are counted and locked the same way, and cost the same
    /// hash, so neither the answer nor its timing tells which logins exist.
    pub async fn login(&self, login: &str, password: &str, now: i64) -> Result<LoginOutcome> {
        let login = login.trim();
        // A place in the hashing queue first: a refused request costs nothing more.
        let ticket = self.secrets().admit()?;
        let last = match self.claim_attempt(LOGIN_RULE, login, now).await? {
            Gate::Locked { until_ms } => return Ok(LoginOutcome::Locked { until_ms }),
            Gate::Check { last } => last,
        };
        let row: Option<(i64, String)> = self
            .opt(
                "SELECT id, password_hash FROM key_users WHERE login = $1 AND disabled_at_ms IS NULL",
                &[login.into_val()],
            )
            .await?;
        let verified = match &row {
            Some((_, hash)) => ticket
                .verify(password.to_string(), vec![hash.clone()])
                .await?
                .is_some(),
            None => {
                ticket.burn(password.to_string()).await?;
                false
            }
        };
        let Some((id, _)) = row.filter(|_| verified) else {
            return Ok(if last {
                LoginOutcome::Locked {
                    until_ms: now + LOCKOUT_MS,
                }
            } else {
                LoginOutcome::Wrong
            });
        };
        self.clear_attempts(LOGIN_RULE, login).await?;
        let token = random_token();
        let session = [
            hash_token(&token).into_val(),
            Val::I(id),
            random_token().into_val(),
            Val::I(now),
            Val::I(now + SESSION_MS),
        ];
        self.exec_each(&[
            (
                "DELETE FROM web_sessions WHERE key_user_id = $1 AND expires_at_ms < $2",
                &[Val::I(id), Val::I(now)],
            ),
            (
                "INSERT INTO web_sessions (token_hash, key_user_id, csrf_token, created_at_ms, expires_at_ms) \
                 VALUES ($1, $2, $3, $4, $5)",
                &session,
            ),
        ])
        .await?;
        Ok(LoginOutcome::Ok { token })
    }

    /// Disables a key user: the login is refused like a wrong password from now on and every
    /// session of it ends at once. `NotFound` for an unknown login.
    pub async fn disable_key_user(&self, login: &str, now: i64) -> Result<()> {
        self.update_key_user_ending_sessions(
            "UPDATE key_users SET disabled_at_ms = $2 WHERE login = $1 RETURNING id",
            &[login.trim().into_val(), Val::I(now)],
        )
        .await
    }

    /// Sets a key user's password (an operator's or a head office's reset): its sessions end,
    /// its failed-login count is forgotten, and a disabled login stays disabled.
    pub async fn reset_key_user_password(&self, login: &str, password: &str) -> Result<()> {
        if let Some(problem) = password_problem(password) {
            return Err(StoreError::Refused(problem));
        }
        let login = login.trim();
        let hash = self.secrets().hash(password.to_string()).await?;
        self.update_key_user_ending_sessions(
            "UPDATE key_users SET password_hash = $2 WHERE login = $1 RETURNING id",
            &[login.into_val(), hash.into_val()],
        )
        .await?;
        self.clear_attempts(LOGIN_RULE, login).await
    }

    /// Runs an update of one key user that returns its id (`NotFound` when it matches none)
    /// and ends every session of that user, in one transaction.
    async fn update_key_user_ending_sessions(&self, sql: &'static str, vals: &[Val]) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let id = id_on(&mut tx, sql, vals).await?;
        exec_on(
            &mut tx,
            "DELETE FROM web_sessions WHERE key_user_id = $1",
            &[Val::I(id)],
        )
        .await?;
        tx.commit().await
    }

    /// The key user behind a session cookie, if the session is alive.
    pub async fn web_session(&self, token: &str, now: i64) -> Result<Option<SessionUser>> {
        let row: Option<(i64, String, String, String, String, String)> = self
            .opt(
                "SELECT u.id, u.login, u.role, u.lang, u.timezone, s.csrf_token \
             FROM web_sessions s JOIN key_users u ON u.id = s.key_user_id \
             WHERE s.token_hash = $1 AND s.expires_at_ms > $2 AND u.disabled_at_ms IS NULL",
                &[(hash_token(token)).into_val(), now.into_val()],
            )
            .await?;
        let Some((id, login, role, lang, timezone, csrf_token)) = row else {
            return Ok(None);
        };
        let role = Role::parse(&role).unwrap_or(Role::ReadOnly);
        let scope = if role == Role::HeadOffice {
            Scope::All
        } else {
            // A deactivated distributor leaves the scope; a read-only user whose sync points
            // are all deactivated sees nothing (not everything).
            let ids: Vec<(i64, Option<i64>)> = self
                .rows(
                    "SELECT g.distributor_id, d.deactivated_at_ms FROM key_user_sync_points g \
                 JOIN distributors d ON d.id = g.distributor_id \
                 WHERE g.key_user_id = $1 ORDER BY g.distributor_id",
                    &[id.into_val()],
                )
                .await?;
            if ids.is_empty() && role == Role::ReadOnly {
                Scope::All
            } else {
                Scope::Only(
                    ids.into_iter()
                        .filter(|(_, off)| off.is_none())
                        .map(|(d, _)| d)
                        .collect(),
                )
            }
        };
        Ok(Some(SessionUser {
            id,
            login,
            role,
            lang,
            timezone,
            scope,
            csrf_token,
        }))
    }

    pub async fn logout(&self, token: &str) -> Result<()> {
        self.exec(
            "DELETE FROM web_sessions WHERE token_hash = $1",
            &[(hash_token(token)).into_val()],
        )
        .await?;
        Ok(())
    }

    /// Changes a password after checking the current one; other sessions of the user end.
    /// Wrong current passwords lock the form like the login form (`locked` with the minutes
    /// left), so a stolen session cannot guess the password.
    pub async fn change_password(
        &self,
        user_id: i64,
        current: &str,
        new: &str,
        keep_token: &str,
        now: i64,
    ) -> Result<PasswordChange> {
        if let Some(refused) = self.check_current_password(user_id, current, now).await? {
            return Ok(refused);
        }
        if let Some(problem) = password_problem(new) {
            return Err(StoreError::Refused(problem));
        }
        let hash = self.secrets().hash(new.to_string()).await?;
        // Other sessions end: whoever else knew the old password is logged out.
        self.exec_each(&[
            (
                "UPDATE key_users SET password_hash = $1 WHERE id = $2",
                &[Val::S(hash), Val::I(user_id)],
            ),
            (
                "DELETE FROM web_sessions WHERE key_user_id = $1 AND token_hash <> $2",
                &[Val::I(user_id), hash_token(keep_token).into_val()],
            ),
        ])
        .await?;
        Ok(PasswordChange::Changed)
    }

    /// Checks a logged-in user's current password before a change that needs it (a new
    /// password, a new mail address); wrong ones lock like the login form. `None` when it is
    /// right, else why not.
    pub(crate) async fn check_current_password(
        &self,
        user_id: i64,
        current: &str,
        now: i64,
    ) -> Result<Option<PasswordChange>> {
        let subject = user_id.to_string();
        let ticket = self.secrets().admit()?;
        let last = match self
            .claim_attempt(PASSWORD_CHANGE_RULE, &subject, now)
            .await?
        {
            Gate::Locked { until_ms } => return Ok(Some(PasswordChange::Locked { until_ms })),
            Gate::Check { last } => last,
        };
        let (hash,): (String,) = self
            .one(
                "SELECT password_hash FROM key_users WHERE id = $1",
                &[user_id.into_val()],
            )
            .await?;
        if ticket
            .verify(current.to_string(), vec![hash])
            .await?
            .is_none()
        {
            return Ok(Some(if last {
                PasswordChange::Locked {
                    until_ms: now + LOCKOUT_MS,
                }
            } else {
                PasswordChange::WrongCurrent
            }));
        }
        self.clear_attempts(PASSWORD_CHANGE_RULE, &subject).await?;
        Ok(None)
    }

    /// Language and time zone of a key user.
    pub async fn set_key_user_preferences(&self, user_id: i64, lang: &str, tz: &str) -> Result<()> {
        self.exec(
            "UPDATE key_users SET lang = $1, timezone = $2 WHERE id = $3",
            &[lang.into_val(), tz.into_val(), user_id.into_val()],
        )
        .await?;
        Ok(())
    }
}
