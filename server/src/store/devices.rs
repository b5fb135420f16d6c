//! Mobile users, PINs and devices: binding a phone to a position.
use base64::Engine as _;
use rand::{Rng, RngCore};
use sha2::{Digest, Sha256};

use super::sql::{IntoVal, Val, exec_on};
use super::throttle::{Gate, Rule};
use super::{Result, Store, StoreError, now_ms};

/// Wrong PINs in a row that lock a login.
pub const PIN_MAX_FAILURES: i64 = 5;
/// How long a locked login stays locked after the last wrong PIN.
pub const PIN_LOCK_MS: i64 = 15 * 60 * 1000;
/// Attempts at a PIN per login: the fifth wrong PIN in a row locks.
pub const PIN_RULE: Rule = Rule {
    kind: "pin",
    allowed: PIN_MAX_FAILURES,
    lock_ms: PIN_LOCK_MS,
};
/// Older PINs checked to tell "used" and "revoked" apart from "wrong".
const PIN_HISTORY: i64 = 5;

/// Revokes the open PINs of a mobile user (`$1`) at `$2`.
const REVOKE_PINS: &str = "UPDATE mobile_user_pins SET revoked_at_ms = $2 WHERE mobile_user_id = $1 AND revoked_at_ms IS NULL";
/// Unbinds the devices of a mobile user (`$1`) at `$2`: their next request is refused.
const REVOKE_DEVICES: &str =
    "UPDATE devices SET revoked_at_ms = $2 WHERE mobile_user_id = $1 AND revoked_at_ms IS NULL";

/// The device behind a bearer token, with what it may see.
#[derive(Debug, Clone)]
pub struct DeviceAuth {
    pub device_id: i64,
    pub mobile_user_id: i64,
    pub distributor_id: i64,
    pub position_id: i64,
    /// The territory (parent org unit of the position) whose outlets the device sees.
    pub territory_id: i64,
    pub last_seq: i64,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("unknown device credential")]
    Unknown,
    #[error("this device was unbound: a new PIN was generated for its mobile user")]
    Revoked,
    /// The device is bound, but its distributor is deactivated (nothing is unbound).
    #[error(
        "this device's distributor is deactivated; keep the outbox and sync once it is active again"
    )]
    DistributorInactive,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ActivationError {
    #[error("wrong login or PIN")]
    Wrong,
    #[error("this PIN was already used to activate a device; ask for a new one")]
    Used,
    #[error("this PIN was replaced by a newer one; ask for the new PIN")]
    Revoked,
    #[error("too many wrong PINs; try again later")]
    Locked { retry_after_ms: i64 },
    /// The PIN is right, but its distributor is deactivated: the PIN stays unused.
    #[error("this mobile user's distributor is deactivated; the PIN works once it is active again")]
    DistributorInactive,
}

/// What a successful activation returns.
#[derive(Debug, Clone)]
pub struct Activated {
    pub token: String,
    pub auth: DeviceAuth,
    pub login: String,
}

/// Device details sent with an activation.
#[derive(Debug, Clone, Default)]
pub struct DeviceInfo {
    pub device_uid: String,
    pub model: String,
    pub app_version: String,
}

pub fn hash_token(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A fresh 8-digit PIN.
pub fn new_pin() -> String {
    format!("{:08}", rand::rng().random_range(0..100_000_000u32))
}

impl Store {
    /// Generates a new PIN for a mobile user: earlier PINs are revoked and the bound device
    /// is unbound (its next sync is refused). Returns the PIN to dictate.
    pub async fn generate_pin(&self, login: &str) -> Result<String> {
        let pin = new_pin();
        let hash = self.secrets().hash(pin.clone()).await?;
        self.store_pin_hash(login, &hash).await?;
        Ok(pin)
    }

    /// Disables a mobile user (`enabled: false`): its PINs and devices are revoked, so its
    /// phone is refused at its next request and no PIN activates it; or enables it again (it
    /// then needs a new PIN). `NotFound` for no such mobile user of this distributor.
    pub async fn set_mobile_user_enabled(
        &self,
        distributor_id: i64,
        id: i64,
        enabled: bool,
        now: i64,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let disabled_at = (!enabled).then_some(now);
        let user_id = super::sql::id_on(
            &mut tx,
            "UPDATE mobile_users SET disabled_at_ms = $3 WHERE id = $1 AND distributor_id = $2 AND deleted_at_ms IS NULL RETURNING id",
            &[id.into_val(), distributor_id.into_val(), disabled_at.into_val()],
        )
        .await?;
        if !enabled {
            for sql in [REVOKE_PINS, REVOKE_DEVICES] {
                exec_on(&mut tx, sql, &[Val::I(user_id), Val::I(now)]).await?;
            }
        }
        tx.commit().await
    }

    /// Deletes a mobile user of `distributor_id` at `now`: its PINs and devices are revoked
    /// (its phone is refused at its next request), what it pushed stays, its login stays
    /// taken and its position can get a new mobile user. `NotFound` for no such live user.
    pub async fn delete_mobile_user(&self, distributor_id: i64, id: i64, now: i64) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let user_id = super::sql::id_on(
            &mut tx,
            "UPDATE mobile_users SET deleted_at_ms = $3
             WHERE id = $1 AND distributor_id = $2 AND deleted_at_ms IS NULL RETURNING id",
            &[id.into_val(), distributor_id.into_val(), now.into_val()],
        )
        .await?;
        for sql in [REVOKE_PINS, REVOKE_DEVICES] {
            exec_on(&mut tx, sql, &[Val::I(user_id), Val::I(now)]).await?;
        }
        tx.commit().await
    }

    /// Stores an already hashed PIN (used by seeding, which hashes in parallel).
    pub async fn store_pin_hash(&self, login: &str, pin_hash: &str) -> Result<()> {
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        // Read under the row's lock: a user disabled meanwhile gets no PIN.
        let sql = format!(
            "SELECT id, disabled_at_ms FROM mobile_users WHERE login = $1 AND deleted_at_ms IS NULL{}",
            self.for_update()
        );
        let (user_id, disabled): (i64, Option<i64>) = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(login)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound)?;
        if disabled.is_some() {
            return Err(StoreError::Refused(super::Problem::MobileUserDisabled));
        }
        let user = [Val::I(user_id), Val::I(now)];
        for sql in [REVOKE_PINS, REVOKE_DEVICES] {
            exec_on(&mut tx, sql, &user).await?;
        }
        exec_on(
            &mut tx,
            "INSERT INTO mobile_user_pins (mobile_user_id, pin_hash, created_at_ms) VALUES ($1, $2, $3)",
            &[Val::I(user_id), pin_hash.into_val(), Val::I(now)],
        )
        .await?;
        tx.commit().await?;
        // A new PIN opens a login that wrong PINs had locked.
        self.clear_attempts(PIN_RULE, login).await?;
        Ok(())
    }

    /// Binds a device with a PIN. Wrong PINs count towards a lockout of the login (unknown
    /// logins are counted and cost the same, see [`super::throttle`]); while locked the PIN
    /// is not checked.
    pub async fn activate(
        &self,
        login: &str,
        pin: &str,
        device: &DeviceInfo,
    ) -> Result<std::result::Result<Activated, ActivationError>> {
        let now = now_ms();
        // A place in the hashing queue first: a refused request costs nothing more.
        let ticket = self.secrets().admit()?;
        let last = match self.claim_attempt(PIN_RULE, login, now).await? {
            Gate::Locked { until_ms } => {
                return Ok(Err(ActivationError::Locked {
                    retry_after_ms: until_ms - now,
                }));
            }
            Gate::Check { last } => last,
        };
        let user: Option<(i64,)> = self
            .opt(
                "SELECT id FROM mobile_users WHERE login = $1",
                &[login.into_val()],
            )
            .await?;
        let pins: Vec<(i64, String, Option<i64>, Option<i64>)> = match user {
            Some((user_id,)) => {
                self.rows(
                    "SELECT id, pin_hash, used_at_ms, revoked_at_ms FROM mobile_user_pins
                     WHERE mobile_user_id = $1 ORDER BY id DESC LIMIT $2",
                    &[user_id.into_val(), PIN_HISTORY.into_val()],
                )
                .await?
            }
            None => Vec::new(),
        };
        let matched = if pins.is_empty() {
            // Same cost as a real check, so logins cannot be probed by timing.
            ticket.burn(pin.to_string()).await?;
            None
        } else {
            let hashes = pins.iter().map(|p| p.1.clone()).collect();
            ticket.verify(pin.to_string(), hashes).await?
        };
        let (Some((user_id,)), Some(index)) = (user, matched) else {
            return Ok(Err(if last {
                ActivationError::Locked {
                    retry_after_ms: PIN_LOCK_MS,
                }
            } else {
                ActivationError::Wrong
            }));
        };
        let (pin_id, _, used, revoked) = &pins[index];
        if self.mobile_user_distributor_inactive(user_id).await? {
            self.refund_attempt(PIN_RULE, login).await?;
            return Ok(Err(ActivationError::DistributorInactive));
        }
        if used.is_some() || revoked.is_some() {
            // The agent knows a PIN of theirs, only an old one: not a wrong PIN.
            self.refund_attempt(PIN_RULE, login).await?;
            return Ok(Err(if used.is_some() {
                ActivationError::Used
            } else {
                ActivationError::Revoked
            }));
        }
        let token = new_token();
        let mut tx = self.begin_write().await?;
        let claimed = exec_on(
            &mut tx,
            "UPDATE mobile_user_pins SET used_at_ms = $1
             WHERE id = $2 AND used_at_ms IS NULL AND revoked_at_ms IS NULL",
            &[Val::I(now), Val::I(*pin_id)],
        )
        .await?;
        if claimed != 1 {
            return Ok(Err(ActivationError::Used));
        }
        // One phone per mobile user: a new activation unbinds any other.
        exec_on(&mut tx, REVOKE_DEVICES, &[Val::I(user_id), Val::I(now)]).await?;
        exec_on(
            &mut tx,
            "INSERT INTO devices (mobile_user_id, device_uid, token_hash, model, app_version, activated_at_ms)
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                Val::I(user_id),
                (&device.device_uid).into_val(),
                hash_token(&token).into_val(),
                (&device.model).into_val(),
                (&device.app_version).into_val(),
                Val::I(now),
            ],
        )
        .await?;
        tx.commit().await?;
        self.clear_attempts(PIN_RULE, login).await?;
        let auth = match self.authenticate(&token).await? {
            Ok(auth) => auth,
            Err(_) => return Err(StoreError::NotFound),
        };
        Ok(Ok(Activated {
            token,
            auth,
            login: login.to_string(),
        }))
    }

    /// Whether the distributor of the mobile user `id` is deactivated.
    async fn mobile_user_distributor_inactive(&self, id: i64) -> Result<bool> {
        let (inactive,): (i64,) = self
            .one(
                "SELECT COUNT(*) FROM mobile_users m JOIN distributors t ON t.id = m.distributor_id
                 WHERE m.id = $1 AND t.deactivated_at_ms IS NOT NULL",
                &[id.into_val()],
            )
            .await?;
        Ok(inactive > 0)
    }

    /// The device behind a bearer token.
    pub async fn authenticate(
        &self,
        token: &str,
    ) -> Result<std::result::Result<DeviceAuth, AuthError>> {
        type Row = (
            i64,
            i64,
            Option<i64>,
            i64,
            i64,
            i64,
            Option<i64>,
            Option<i64>,
        );
        let row: Option<Row> = self.opt(
            "SELECT d.id, d.mobile_user_id, d.revoked_at_ms, d.last_seq, m.distributor_id, m.position_id, p.parent_id,
                    t.deactivated_at_ms
             FROM devices d
             JOIN mobile_users m ON m.id = d.mobile_user_id
             JOIN org_units p ON p.id = m.position_id
             JOIN distributors t ON t.id = m.distributor_id
             WHERE d.token_hash = $1",
            &[(hash_token(token)).into_val()],
        )
        .await?;
        Ok(match row {
            None => Err(AuthError::Unknown),
            Some((_, _, Some(_), ..)) => Err(AuthError::Revoked),
            Some((.., Some(_))) => Err(AuthError::DistributorInactive),
            Some((
                device_id,
                mobile_user_id,
                None,
                last_seq,
                distributor_id,
                position_id,
                parent,
                None,
            )) => Ok(DeviceAuth {
                device_id,
                mobile_user_id,
                distributor_id,
                position_id,
                territory_id: parent.unwrap_or(position_id),
                last_seq,
            }),
        })
    }
}

/// Who a device is, as the wire describes it.
#[derive(Debug, Clone)]
pub struct DeviceProfile {
    pub mobile_user: fieldsync_protocol::v1::MobileUser,
    pub position: fieldsync_protocol::v1::OrgUnit,
    pub distributor: fieldsync_protocol::v1::Distributor,
}

impl Store {
    pub async fn device_profile(&self, auth: &DeviceAuth) -> Result<DeviceProfile> {
        use fieldsync_protocol::v1;
        let (login, pos_name, pos_kind, parent, d_code, d_name, currency, near, mid, far, overdue): (
            String, String, String, Option<i64>, String, String, String, i64, i64, i64, String,
        ) = self.one("SELECT m.login, p.name, p.kind, p.parent_id, d.code, d.name, d.currency,
                    d.band_near_m, d.band_mid_m, d.band_far_m, d.overdue_policy
             FROM mobile_users m JOIN org_units p ON p.id = m.position_id JOIN distributors d ON d.id = m.distributor_id
             WHERE m.id = $1",
            &[auth.mobile_user_id.into_val()],
        )
        .await?;
        let staff: Option<(String, String)> = self.opt(
            "SELECT s.first_name, s.last_name FROM position_staff ps JOIN staff s ON s.id = ps.staff_id
             WHERE ps.position_id = $1 AND ps.is_main = 1 AND ps.valid_to IS NULL ORDER BY ps.id DESC LIMIT 1",
            &[auth.position_id.into_val()],
        )
        .await?;
        Ok(DeviceProfile {
            mobile_user: v1::MobileUser {
                id: auth.mobile_user_id,
                login,
                staff_name: staff.map(|(f, l)| format!("{f} {l}")).unwrap_or_default(),
            },
            position: v1::OrgUnit {
                id: auth.position_id,
                parent_id: parent.unwrap_or(0),
                name: pos_name,
                kind: pos_kind,
            },
            distributor: v1::Distributor {
                id: auth.distributor_id,
                code: d_code,
                name: d_name,
                currency,
                band_near_m: near as u32,
                band_mid_m: mid as u32,
                band_far_m: far as u32,
                overdue_policy: match overdue.as_str() {
                    "require_reason" => v1::OverduePolicy::RequireReason,
                    _ => v1::OverduePolicy::Warn,
                } as i32,
            },
        })
    }
}
