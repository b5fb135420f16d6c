//! Distributors (sync points) and key-user accounts as the back office keeps them, and every
//! rule about who may do what to them.
//!
//! - Distributors are kept by the head office only ([`SessionUser::may_keep_distributors`]):
//!   created with a unique code, edited (the code stays), deactivated and reactivated. A
//!   deactivated distributor keeps all its data; while it is inactive its phones' syncs and
//!   activations are refused with `DISTRIBUTOR_INACTIVE`, its API keys are refused, it leaves
//!   the scope of the key users granted it (see [`Store::web_session`]) and every picker.
//! - Accounts are kept by the head office (everyone) and by key users (accounts within their
//!   own sync points): [`Actor::may_manage`] says whom an actor may manage,
//!   [`Actor::grantable_roles`] which roles it may give and [`Actor::may_grant`] which sync
//!   points. Nobody manages their own account here (that is the Settings page).
use super::keyusers::{Role, SessionUser, password_problem};
use super::sql::{IntoVal, Val, exec_on, id_on, rows_on};
use super::{Problem, Result, Store, StoreError};

/// The longest distributor code and name accepted.
pub const MAX_CODE_CHARS: usize = super::editors::MAX_CODE_CHARS;
pub const MAX_NAME_CHARS: usize = super::editors::MAX_NAME_CHARS;
/// The farthest distance band accepted, in metres.
pub const MAX_BAND_M: i64 = 100_000;

/// A distributor as its form shows and sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DistributorForm {
    pub code: String,
    pub name: String,
    pub currency: String,
    pub timezone: String,
    pub band_near_m: i64,
    pub band_mid_m: i64,
    pub band_far_m: i64,
    /// What the phone does when an order is placed for an outlet with overdue debt:
    /// `warn`, or `require_reason` (warn and ask the agent why).
    pub overdue_policy: String,
}

/// The overdue-debt policies a distributor may choose.
pub const OVERDUE_POLICIES: [&str; 2] = ["warn", "require_reason"];

impl Default for DistributorForm {
    fn default() -> Self {
        let bands = fieldsync_protocol::location::Bands::default();
        DistributorForm {
            code: String::new(),
            name: String::new(),
            currency: "UAH".into(),
            timezone: "Europe/Kyiv".into(),
            band_near_m: bands.near_m as i64,
            band_mid_m: bands.mid_m as i64,
            band_far_m: bands.far_m as i64,
            overdue_policy: "warn".into(),
        }
    }
}

impl DistributorForm {
    /// The form trimmed and checked: the first problem it has, if any.
    fn checked(&self) -> Result<DistributorForm> {
        let f = DistributorForm {
            code: self.code.trim().to_string(),
            name: self.name.trim().to_string(),
            currency: self.currency.trim().to_ascii_uppercase(),
            timezone: self.timezone.trim().to_string(),
            ..self.clone()
        };
        let refuse = |p| Err(StoreError::Refused(p));
        let bad = |s: &str, max: usize| s.is_empty() || s.chars().count() > max;
        if bad(&f.code, MAX_CODE_CHARS)
            || f.code.chars().any(char::is_whitespace)
            || bad(&f.name, MAX_NAME_CHARS)
        {
            return refuse(Problem::DistributorCodeOrName);
        }
        if f.currency.len() != 3 || !f.currency.chars().all(|c| c.is_ascii_uppercase()) {
            return refuse(Problem::BadCurrency);
        }
        if f.timezone.is_empty() || jiff::tz::TimeZone::get(&f.timezone).is_err() {
            return refuse(Problem::BadTimezone);
        }
        if !(0 < f.band_near_m
            && f.band_near_m < f.band_mid_m
            && f.band_mid_m < f.band_far_m
            && f.band_far_m <= MAX_BAND_M)
        {
            return refuse(Problem::BadBands);
        }
        if !OVERDUE_POLICIES.contains(&f.overdue_policy.as_str()) {
            return refuse(Problem::BadOverduePolicy);
        }
        Ok(f)
    }
}

/// A distributor as the distributors page lists it.
#[derive(Debug, Clone)]
pub struct DistributorRow {
    pub id: i64,
    pub form: DistributorForm,
    /// When it was deactivated; `None` while active.
    pub deactivated_at_ms: Option<i64>,
    pub mobile_users: i64,
    pub key_users: i64,
}

/// An account as the key-users page lists it.
#[derive(Debug, Clone)]
pub struct Account {
    pub id: i64,
    pub login: String,
    pub role: Role,
    pub disabled_at_ms: Option<i64>,
    /// Its sync points: (distributor id, code, active), by code.
    pub sync_points: Vec<(i64, String, bool)>,
}

impl Account {
    fn grants(&self) -> impl Iterator<Item = i64> + '_ {
        self.sync_points.iter().map(|(d, _, _)| *d)
    }
}

/// Who manages accounts, with every sync point granted to it (active or not): what the
/// rules of this module decide on.
#[derive(Debug, Clone)]
pub struct Actor {
    pub id: i64,
    pub role: Role,
    /// Every distributor granted to the actor, active or not.
    pub grants: Vec<i64>,
    /// The granted distributors that are active.
    pub active: Vec<i64>,
}

impl SessionUser {
    /// Only the head office keeps distributors.
    pub fn may_keep_distributors(&self) -> bool {
        self.role == Role::HeadOffice
    }

    /// Only the head office marks outlets and products global or local and changes global
    /// ones; a distributor's key user keeps its local records.
    pub fn may_keep_globals(&self) -> bool {
        self.role == Role::HeadOffice
    }

    /// The head office and key users keep accounts (key users within their sync points).
    pub fn may_keep_accounts(&self) -> bool {
        matches!(self.role, Role::HeadOffice | Role::KeyUser)
    }
}

impl Actor {
    /// The roles the actor may give.
    pub fn grantable_roles(&self) -> &'static [Role] {
        match self.role {
            Role::HeadOffice => &[
                Role::HeadOffice,
                Role::KeyUser,
                Role::ReadOnly,
                Role::Distributor,
            ],
            Role::KeyUser => &[Role::KeyUser, Role::ReadOnly],
            Role::ReadOnly | Role::Distributor => &[],
        }
    }

    /// Whether the actor may manage `target`: the head office anyone but itself; a key user
    /// a key user or read-only account that has sync points, all of them the actor's own
    /// (inactive ones count too, so a reactivation never hands the actor wider powers).
    pub fn may_manage(&self, target: &Account) -> bool {
        if target.id == self.id {
            return false;
        }
        match self.role {
            Role::HeadOffice => true,
            Role::KeyUser => {
                self.grantable_roles().contains(&target.role)
                    && !target.sync_points.is_empty()
                    && target.grants().all(|d| self.grants.contains(&d))
            }
            Role::ReadOnly | Role::Distributor => false,
        }
    }

    /// Whether the actor may grant the distributor `d` (`active`: whether it is): an active
    /// one, and for a key user one of its own active sync points.
    pub fn may_grant(&self, d: i64, active: bool) -> bool {
        active && (self.role == Role::HeadOffice || self.active.contains(&d))
    }

    /// Why an account of `role` with the sync points `grants` may not be given by the actor.
    pub(crate) fn refusal(&self, role: Role, grants: &[i64]) -> Option<Problem> {
        if !self.grantable_roles().contains(&role) {
            Some(Problem::RoleNotGrantable)
        } else if matches!(role, Role::KeyUser | Role::Distributor) && grants.is_empty() {
            Some(Problem::RoleNeedsDistributor)
        } else if self.role != Role::HeadOffice && grants.is_empty() {
            // A read-only account without sync points sees every distributor.
            Some(Problem::AccountNeedsSyncPoint)
        } else {
            None
        }
    }
}

/// What the account form sends: a new account has a login and a password too.
#[derive(Debug, Clone)]
pub struct AccountForm {
    pub login: String,
    pub password: String,
    pub role: String,
    /// The distributors ticked.
    pub sync_points: Vec<i64>,
}

impl Store {
    /// Every distributor with what the distributors page shows, by code.
    pub async fn distributor_rows(&self) -> Result<Vec<DistributorRow>> {
        type Row = (
            i64,
            String,
            String,
            String,
            String,
            i64,
            i64,
            i64,
            Option<i64>,
            String,
            i64,
            i64,
        );
        let rows: Vec<Row> = self
            .rows(
                "SELECT d.id, d.code, d.name, d.currency, d.timezone, d.band_near_m, d.band_mid_m,
                        d.band_far_m, d.deactivated_at_ms, d.overdue_policy,
                        (SELECT COUNT(*) FROM mobile_users m WHERE m.distributor_id = d.id AND m.deleted_at_ms IS NULL),
                        (SELECT COUNT(*) FROM key_user_sync_points g WHERE g.distributor_id = d.id)
                 FROM distributors d ORDER BY d.code",
                &[],
            )
            .await?;
        Ok(rows
            .into_iter()
            .map(
                |(
                    id,
                    code,
                    name,
                    currency,
                    timezone,
                    near,
                    mid,
                    far,
                    off,
                    overdue_policy,
                    mobile,
                    keys,
                )| {
                    DistributorRow {
                        id,
                        form: DistributorForm {
                            code,
                            name,
                            currency,
                            timezone,
                            band_near_m: near,
                            band_mid_m: mid,
                            band_far_m: far,
                            overdue_policy,
                        },
                        deactivated_at_ms: off,
                        mobile_users: mobile,
                        key_users: keys,
                    }
                },
            )
            .collect())
    }

    /// One distributor as its page shows it.
    pub async fn distributor_row(&self, id: i64) -> Result<Option<DistributorRow>> {
        Ok(self
            .distributor_rows()
            .await?
            .into_iter()
            .find(|d| d.id == id))
    }

    /// Creates a distributor (`existing` None) or changes the distributor `existing` (its
    /// code stays); the head office only. Returns its id.
    pub async fn save_distributor(
        &self,
        actor: &SessionUser,
        existing: Option<i64>,
        form: &DistributorForm,
    ) -> Result<i64> {
        if !actor.may_keep_distributors() {
            return Err(StoreError::Refused(Problem::RoleNotGrantable));
        }
        let f = match existing {
            // The code is not edited: the stored one is checked with the rest.
            Some(id) => {
                let stored = self
                    .distributor_row(id)
                    .await?
                    .ok_or(StoreError::NotFound)?;
                DistributorForm {
                    code: stored.form.code,
                    ..form.clone()
                }
                .checked()?
            }
            None => form.checked()?,
        };
        let fields = [
            f.name.into_val(),
            f.currency.into_val(),
            f.timezone.into_val(),
            Val::I(f.band_near_m),
            Val::I(f.band_mid_m),
            Val::I(f.band_far_m),
            f.overdue_policy.into_val(),
        ];
        let mut tx = self.begin_write().await?;
        let saved = match existing {
            Some(id) => {
                let mut vals = fields.to_vec();
                vals.push(Val::I(id));
                id_on(
                    &mut tx,
                    "UPDATE distributors SET name = $1, currency = $2, timezone = $3,
                        band_near_m = $4, band_mid_m = $5, band_far_m = $6, overdue_policy = $7
                     WHERE id = $8 RETURNING id",
                    &vals,
                )
                .await
            }
            None => {
                let mut vals = fields.to_vec();
                vals.push(f.code.into_val());
                // The code's uniqueness is the table's: one statement decides.
                id_on(
                    &mut tx,
                    "INSERT INTO distributors (name, currency, timezone, band_near_m, band_mid_m, band_far_m,
                        overdue_policy, code)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
                    &vals,
                )
                .await
            }
        };
        let id = saved.map_err(|e| match e {
            StoreError::Conflict(_) => StoreError::Refused(Problem::DistributorCodeTaken),
            other => other,
        })?;
        tx.commit().await?;
        Ok(id)
    }

    /// Deactivates (`active` false) or reactivates a distributor; the head office only.
    /// Nothing is deleted. Deactivating an inactive one keeps its first date.
    pub async fn set_distributor_active(
        &self,
        actor: &SessionUser,
        id: i64,
        active: bool,
        now: i64,
    ) -> Result<()> {
        if !actor.may_keep_distributors() {
            return Err(StoreError::Refused(Problem::RoleNotGrantable));
        }
        if active {
            let sql = "UPDATE distributors SET deactivated_at_ms = NULL WHERE id = $1 RETURNING id";
            self.one_id(sql, &[Val::I(id)]).await?;
        } else {
            let sql = "UPDATE distributors SET deactivated_at_ms = COALESCE(deactivated_at_ms, $2)
                       WHERE id = $1 RETURNING id";
            self.one_id(sql, &[Val::I(id), Val::I(now)]).await?;
        }
        Ok(())
    }

    /// Every distributor (id, code, active), by code.
    pub async fn distributor_states(&self) -> Result<Vec<(i64, String, bool)>> {
        let rows: Vec<(i64, String, Option<i64>)> = self
            .rows(
                "SELECT id, code, deactivated_at_ms FROM distributors ORDER BY code",
                &[],
            )
            .await?;
        Ok(rows
            .into_iter()
            .map(|(id, code, off)| (id, code, off.is_none()))
            .collect())
    }

    /// The session's user as an actor on accounts, with all its grants.
    pub async fn actor(&self, user: &SessionUser) -> Result<Actor> {
        let rows: Vec<(i64, Option<i64>)> = self
            .rows(
                "SELECT g.distributor_id, d.deactivated_at_ms FROM key_user_sync_points g
                 JOIN distributors d ON d.id = g.distributor_id WHERE g.key_user_id = $1
                 ORDER BY g.distributor_id",
                &[user.id.into_val()],
            )
            .await?;
        Ok(Actor {
            id: user.id,
            role: user.role,
            grants: rows.iter().map(|(d, _)| *d).collect(),
            active: rows
                .iter()
                .filter(|(_, off)| off.is_none())
                .map(|(d, _)| *d)
                .collect(),
        })
    }

    /// Every account, by login, with its sync points.
    async fn all_accounts(&self) -> Result<Vec<Account>> {
        let users: Vec<(i64, String, String, Option<i64>)> = self
            .rows(
                "SELECT id, login, role, disabled_at_ms FROM key_users ORDER BY login",
                &[],
            )
            .await?;
        let grants: Vec<(i64, i64, String, Option<i64>)> = self
            .rows(
                "SELECT g.key_user_id, d.id, d.code, d.deactivated_at_ms FROM key_user_sync_points g
                 JOIN distributors d ON d.id = g.distributor_id ORDER BY d.code",
                &[],
            )
            .await?;
        Ok(users
            .into_iter()
            .map(|(id, login, role, disabled_at_ms)| Account {
                id,
                login,
                role: Role::parse(&role).unwrap_or(Role::ReadOnly),
                disabled_at_ms,
                sync_points: grants
                    .iter()
                    .filter(|g| g.0 == id)
                    .map(|(_, d, code, off)| (*d, code.clone(), off.is_none()))
                    .collect(),
            })
            .collect())
    }

    /// The accounts the actor may manage, by login.
    pub async fn accounts(&self, actor: &Actor) -> Result<Vec<Account>> {
        let all = self.all_accounts().await?;
        Ok(all.into_iter().filter(|a| actor.may_manage(a)).collect())
    }

    /// The account `id` if the actor may manage it; `NotFound` otherwise (another
    /// distributor's account reveals nothing). The actor's own account is refused.
    pub async fn account(&self, actor: &Actor, id: i64) -> Result<Account> {
        if id == actor.id {
            return Err(StoreError::Refused(Problem::OwnAccount));
        }
        let all = self.all_accounts().await?;
        all.into_iter()
            .find(|a| a.id == id && actor.may_manage(a))
            .ok_or(StoreError::NotFound)
    }

    /// The distributors the actor may grant: (id, code), by code.
    pub async fn grantable_sync_points(&self, actor: &Actor) -> Result<Vec<(i64, String)>> {
        let all = self.distributor_states().await?;
        Ok(all
            .into_iter()
            .filter(|(d, _, active)| actor.may_grant(*d, *active))
            .map(|(d, code, _)| (d, code))
            .collect())
    }

    /// Checks the role and sync points of a form against what the actor may give.
    async fn checked_grant(&self, actor: &Actor, form: &AccountForm) -> Result<(Role, Vec<i64>)> {
        let role =
            Role::parse(form.role.trim()).ok_or(StoreError::Refused(Problem::RoleNotGrantable))?;
        let states = self.distributor_states().await?;
        let mut grants = form.sync_points.clone();
        grants.sort_unstable();
        grants.dedup();
        for d in &grants {
            let active = states.iter().any(|(id, _, active)| id == d && *active);
            if !actor.may_grant(*d, active) {
                return Err(StoreError::Refused(Problem::SyncPointNotGrantable));
            }
        }
        Ok((role, grants))
    }

    /// Creates an account: login, role, sync points and an initial password (the rules of
    /// the change-password form, hashed in the bounded pool). Returns its id.
    pub async fn create_account(&self, actor: &Actor, form: &AccountForm, now: i64) -> Result<i64> {
        let (role, grants) = self.checked_grant(actor, form).await?;
        if let Some(p) = actor.refusal(role, &grants) {
            return Err(StoreError::Refused(p));
        }
        self.insert_key_user(&form.login, &form.password, role, &grants, now)
            .await
    }

    /// Stores a new key user with the distributors `grants`; the login's uniqueness is the
    /// table's (one statement decides).
    pub(crate) async fn insert_key_user(
        &self,
        login: &str,
        password: &str,
        role: Role,
        grants: &[i64],
        now: i64,
    ) -> Result<i64> {
        let login = login.trim();
        if login.is_empty() || login.len() > 64 || login.chars().any(char::is_whitespace) {
            return Err(StoreError::Refused(Problem::BadLogin));
        }
        if let Some(problem) = password_problem(password) {
            return Err(StoreError::Refused(problem));
        }
        let hash = self.secrets().hash(password.to_string()).await?;
        let mut tx = self.begin_write().await?;
        let id = id_on(
            &mut tx,
            "INSERT INTO key_users (login, password_hash, role, created_at_ms) \
             VALUES ($1, $2, $3, $4) RETURNING id",
            &[
                login.into_val(),
                hash.into_val(),
                role.as_str().into_val(),
                Val::I(now),
            ],
        )
        .await
        .map_err(|e| match e {
            StoreError::Conflict(_) => StoreError::Refused(Problem::LoginTaken),
            other => other,
        })?;
        for d in grants {
            exec_on(
                &mut tx,
                "INSERT INTO key_user_sync_points (key_user_id, distributor_id) VALUES ($1, $2)",
                &[Val::I(id), Val::I(*d)],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(id)
    }

    /// Changes an account's role and sync points. Only the sync points the actor may grant
    /// are touched (ticked ones added, unticked ones removed); the others it has stay. The
    /// change applies to its open sessions at their next request.
    pub async fn update_account(&self, actor: &Actor, id: i64, form: &AccountForm) -> Result<()> {
        let target = self.account(actor, id).await?;
        let (role, ticked) = self.checked_grant(actor, form).await?;
        let editable: Vec<i64> = self
            .grantable_sync_points(actor)
            .await?
            .into_iter()
            .map(|(d, _)| d)
            .collect();
        let mut after: Vec<i64> = target
            .grants()
            .filter(|d| !editable.contains(d))
            .chain(ticked.iter().copied())
            .collect();
        after.sort_unstable();
        after.dedup();
        if let Some(p) = actor.refusal(role, &after) {
            return Err(StoreError::Refused(p));
        }
        let mut tx = self.begin_write().await?;
        exec_on(
            &mut tx,
            "UPDATE key_users SET role = $2 WHERE id = $1",
            &[Val::I(id), role.as_str().into_val()],
        )
        .await?;
        let before: Vec<(i64,)> = rows_on(
            &mut tx,
            "SELECT distributor_id FROM key_user_sync_points WHERE key_user_id = $1",
            &[Val::I(id)],
        )
        .await?;
        for (d,) in &before {
            if editable.contains(d) && !after.contains(d) {
                exec_on(
                    &mut tx,
                    "DELETE FROM key_user_sync_points WHERE key_user_id = $1 AND distributor_id = $2",
                    &[Val::I(id), Val::I(*d)],
                )
                .await?;
            }
        }
        for d in &after {
            exec_on(
                &mut tx,
                "INSERT INTO key_user_sync_points (key_user_id, distributor_id) VALUES ($1, $2)
                 ON CONFLICT (key_user_id, distributor_id) DO NOTHING",
                &[Val::I(id), Val::I(*d)],
            )
            .await?;
        }
        tx.commit().await
    }

    /// Disables (`enabled` false: its sessions end at once and its login is refused) or
    /// enables an account the actor may manage.
    pub async fn set_account_enabled(
        &self,
        actor: &Actor,
        id: i64,
        enabled: bool,
        now: i64,
    ) -> Result<()> {
        let target = self.account(actor, id).await?;
        if enabled {
            self.exec(
                "UPDATE key_users SET disabled_at_ms = NULL WHERE id = $1",
                &[Val::I(target.id)],
            )
            .await?;
            Ok(())
        } else {
            self.disable_key_user(&target.login, now).await
        }
    }

    /// Sets a new password for an account the actor may manage: its sessions end.
    pub async fn reset_account_password(
        &self,
        actor: &Actor,
        id: i64,
        password: &str,
    ) -> Result<()> {
        let target = self.account(actor, id).await?;
        self.reset_key_user_password(&target.login, password).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn actor(role: Role, grants: &[i64], active: &[i64]) -> Actor {
        Actor {
            id: 1,
            role,
            grants: grants.to_vec(),
            active: active.to_vec(),
        }
    }

    fn account(id: i64, role: Role, grants: &[i64]) -> Account {
        Account {
            id,
            login: format!("u{id}"),
            role,
            disabled_at_ms: None,
            sync_points: grants.iter().map(|d| (*d, format!("D{d}"), true)).collect(),
        }
    }

    #[test]
    fn a_key_user_manages_only_accounts_within_its_own_sync_points() {
        let kp = actor(Role::KeyUser, &[10, 11], &[10, 11]);
        assert!(kp.may_manage(&account(2, Role::ReadOnly, &[10])));
        assert!(kp.may_manage(&account(2, Role::KeyUser, &[10, 11])));
        assert!(!kp.may_manage(&account(2, Role::KeyUser, &[10, 12])));
        assert!(!kp.may_manage(&account(2, Role::HeadOffice, &[10])));
        assert!(!kp.may_manage(&account(2, Role::Distributor, &[10])));
        // A read-only account without sync points sees every distributor.
        assert!(!kp.may_manage(&account(2, Role::ReadOnly, &[])));
        assert!(!kp.may_manage(&account(1, Role::KeyUser, &[10])), "itself");
        let ho = actor(Role::HeadOffice, &[], &[]);
        assert!(ho.may_manage(&account(2, Role::HeadOffice, &[])));
        assert!(!ho.may_manage(&account(1, Role::HeadOffice, &[])), "itself");
        for role in [Role::ReadOnly, Role::Distributor] {
            assert!(!actor(role, &[10], &[10]).may_manage(&account(2, Role::ReadOnly, &[10])));
        }
    }

    #[test]
    fn only_active_sync_points_of_the_actor_are_grantable() {
        let kp = actor(Role::KeyUser, &[10, 11], &[10]);
        assert!(kp.may_grant(10, true));
        assert!(!kp.may_grant(11, false), "deactivated");
        assert!(!kp.may_grant(12, true), "not its own");
        let ho = actor(Role::HeadOffice, &[], &[]);
        assert!(ho.may_grant(12, true));
        assert!(!ho.may_grant(12, false));
    }

    #[test]
    fn roles_and_empty_grants_are_refused_by_rule() {
        let kp = actor(Role::KeyUser, &[10], &[10]);
        assert_eq!(
            kp.refusal(Role::HeadOffice, &[10]),
            Some(Problem::RoleNotGrantable)
        );
        assert_eq!(
            kp.refusal(Role::ReadOnly, &[]),
            Some(Problem::AccountNeedsSyncPoint)
        );
        assert_eq!(kp.refusal(Role::ReadOnly, &[10]), None);
        let ho = actor(Role::HeadOffice, &[], &[]);
        assert_eq!(ho.refusal(Role::ReadOnly, &[]), None);
        assert_eq!(
            ho.refusal(Role::KeyUser, &[]),
            Some(Problem::RoleNeedsDistributor)
        );
    }

    #[test]
    fn a_distributor_form_needs_ordered_bands_a_currency_and_a_known_time_zone() {
        let ok = DistributorForm {
            code: " NEW ".into(),
            name: "New".into(),
            currency: "eur".into(),
            ..DistributorForm::default()
        };
        let checked = ok.checked().unwrap();
        assert_eq!(
            (checked.code.as_str(), checked.currency.as_str()),
            ("NEW", "EUR")
        );
        let refused = |f: DistributorForm| match f.checked() {
            Err(StoreError::Refused(p)) => p,
            other => panic!("{other:?}"),
        };
        let with = |g: fn(&mut DistributorForm)| {
            let mut f = ok.clone();
            g(&mut f);
            f
        };
        assert_eq!(
            refused(with(|f| f.band_mid_m = f.band_near_m)),
            Problem::BadBands
        );
        assert_eq!(refused(with(|f| f.band_near_m = 0)), Problem::BadBands);
        assert_eq!(
            refused(with(|f| f.band_far_m = MAX_BAND_M + 1)),
            Problem::BadBands
        );
        assert_eq!(
            refused(with(|f| f.currency = "hryvnia".into())),
            Problem::BadCurrency
        );
        assert_eq!(
            refused(with(|f| f.timezone = "Mars/Olympus".into())),
            Problem::BadTimezone
        );
        assert_eq!(
            refused(with(|f| f.code = "A B".into())),
            Problem::DistributorCodeOrName
        );
        assert_eq!(
            refused(with(|f| f.name = " ".into())),
            Problem::DistributorCodeOrName
        );
    }
}
