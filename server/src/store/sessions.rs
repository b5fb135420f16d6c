//! Sync sessions: one record per sync of a device, with what it brought.
use fieldsync_protocol::v1;
use uuid::Uuid;

use super::devices::DeviceAuth;
use super::sql::IntoVal;
use super::{Result, Store, StoreError, now_ms};

/// What every request of a session says about itself.
#[derive(Debug, Clone)]
pub struct SessionCtx {
    pub id: Uuid,
    pub mode: v1::SyncMode,
    pub app_version: String,
    pub device_time_ms: i64,
    /// The phone's UTC offset in minutes (0 from apps that predate it, which count days in UTC).
    pub utc_offset_min: i32,
}

/// The widest UTC offsets in use (UTC−12 to UTC+14), in minutes.
pub const UTC_OFFSET_RANGE: std::ops::RangeInclusive<i32> = -720..=840;

pub fn mode_name(mode: v1::SyncMode) -> &'static str {
    match mode {
        v1::SyncMode::Initial => "initial",
        v1::SyncMode::FullResync => "full_resync",
        v1::SyncMode::Incremental | v1::SyncMode::Unspecified => "incremental",
    }
}

fn mode_from_name(s: &str) -> v1::SyncMode {
    match s {
        "initial" => v1::SyncMode::Initial,
        "full_resync" => v1::SyncMode::FullResync,
        _ => v1::SyncMode::Incremental,
    }
}

/// Measured clock skew of a request (device minus server); 0 when the device sent no time.
pub fn skew(s: &SessionCtx, now: i64) -> i64 {
    if s.device_time_ms > 0 {
        s.device_time_ms - now
    } else {
        0
    }
}

/// Counters one request adds to its session.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestTally {
    pub bytes_up: u64,
    pub bytes_down: u64,
    pub changes_pulled: u64,
    /// A pull's cursor position the device confirmed having stored (phase 1), recorded as the
    /// device's `pulled_seq`: card compaction leaves alone what some live device still lacks.
    pub pulled_seq: Option<i64>,
}

impl Store {
    /// Creates the session row on its first request (inside the caller's transaction).
    pub(crate) async fn ensure_session(
        &self,
        tx: &mut super::WriteTx,
        auth: &DeviceAuth,
        s: &SessionCtx,
        now: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO sync_sessions (id, device_id, mobile_user_id, distributor_id, mode, app_version,
                started_at_ms, last_request_at_ms, clock_skew_ms, utc_offset_min)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8, $9)
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(s.id.to_string())
        .bind(auth.device_id)
        .bind(auth.mobile_user_id)
        .bind(auth.distributor_id)
        .bind(mode_name(s.mode))
        .bind(&s.app_version)
        .bind(now)
        .bind(skew(s, now))
        .bind(s.utc_offset_min)
        .execute(&mut **tx)
        .await?;
        let (owner,): (i64,) = sqlx::query_as("SELECT device_id FROM sync_sessions WHERE id = $1")
            .bind(s.id.to_string())
            .fetch_one(&mut **tx)
            .await?;
        if owner != auth.device_id {
            return Err(StoreError::Refused(super::Problem::ForeignSession));
        }
        Ok(())
    }

    /// Adds a request's bytes and counts to its session (creating it if needed).
    pub async fn tally_request(
        &self,
        auth: &DeviceAuth,
        s: &SessionCtx,
        t: RequestTally,
    ) -> Result<()> {
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        self.ensure_session(&mut tx, auth, s, now).await?;
        sqlx::query(
            "UPDATE sync_sessions SET requests = requests + 1, bytes_up = bytes_up + $1,
                bytes_down = bytes_down + $2, changes_pulled = changes_pulled + $3,
                last_request_at_ms = $4, clock_skew_ms = CASE WHEN $5 = 0 THEN clock_skew_ms ELSE $5 END
             WHERE id = $6 AND device_id = $7",
        )
        .bind(t.bytes_up as i64)
        .bind(t.bytes_down as i64)
        .bind(t.changes_pulled as i64)
        .bind(now)
        .bind(skew(s, now))
        .bind(s.id.to_string())
        .bind(auth.device_id)
        .execute(&mut *tx)
        .await?;
        if let Some(seq) = t.pulled_seq {
            sqlx::query(
                "UPDATE devices SET pulled_seq = CASE WHEN pulled_seq < $1 THEN $1 ELSE pulled_seq END,
                    pulled_at_ms = $2, utc_offset_min = $4 WHERE id = $3",
            )
            .bind(seq)
            .bind(now)
            .bind(auth.device_id)
            .bind(s.utc_offset_min)
            .execute(&mut *tx)
            .await?;
        } else {
            sqlx::query("UPDATE devices SET utc_offset_min = $1 WHERE id = $2")
                .bind(s.utc_offset_min)
                .bind(auth.device_id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Closes a session and returns its summary; `None` if the session is not this device's.
    pub async fn finish_session(
        &self,
        auth: &DeviceAuth,
        s: &SessionCtx,
        client_error: &str,
    ) -> Result<Option<v1::SyncSessionSummary>> {
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        self.ensure_session(&mut tx, auth, s, now).await?;
        sqlx::query(
            "UPDATE sync_sessions SET finished_at_ms = $1, last_request_at_ms = $1,
                error = CASE WHEN $2 = '' THEN error ELSE $2 END
             WHERE id = $3 AND device_id = $4",
        )
        .bind(now)
        .bind(client_error)
        .bind(s.id.to_string())
        .bind(auth.device_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.session_summary(auth.device_id, s.id).await
    }

    pub async fn session_summary(
        &self,
        device_id: i64,
        id: Uuid,
    ) -> Result<Option<v1::SyncSessionSummary>> {
        let row: Option<(String, i64, Option<i64>, i64, i64, i64, i64, i64, i64, i64)> = self.opt(
            "SELECT mode, started_at_ms, finished_at_ms, mutations_applied, mutations_duplicate, mutations_refused,
                    changes_pulled, bytes_up, bytes_down, clock_skew_ms
             FROM sync_sessions WHERE id = $1 AND device_id = $2",
            &[id.to_string().into_val(), device_id.into_val()],
        )
        .await?;
        let Some((mode, started, finished, applied, dup, refused, pulled, up, down, skew)) = row
        else {
            return Ok(None);
        };
        let (visits, orders, total): (i64, i64, Option<i64>) = self.one(
            "SELECT CAST(COALESCE(SUM(CASE WHEN item_kind = 'visit' THEN 1 ELSE 0 END), 0) AS BIGINT), COUNT(order_id),
                    CAST(SUM(order_total_minor) AS BIGINT)
             FROM sync_session_items WHERE session_id = $1",
            &[id.to_string().into_val()],
        )
        .await?;
        Ok(Some(v1::SyncSessionSummary {
            meta: None,
            session_id: id.as_bytes().to_vec(),
            mode: mode_from_name(&mode) as i32,
            started_at_ms: started,
            finished_at_ms: finished.unwrap_or(0),
            mutations_applied: applied as u32,
            mutations_duplicate: dup as u32,
            mutations_refused: refused as u32,
            changes_pulled: pulled as u32,
            bytes_up: up as u64,
            bytes_down: down as u64,
            clock_skew_ms: skew,
            visits: visits.max(0) as u32,
            orders: orders as u32,
            orders_total_minor: total.unwrap_or(0),
        }))
    }

    /// What the server holds from one device.
    pub async fn device_stats(&self, device_id: i64) -> Result<v1::DeviceStats> {
        let q = |sql: &'static str| async move {
            let (n,): (i64,) = sqlx::query_as(sql)
                .bind(device_id)
                .fetch_one(self.pool())
                .await?;
            Ok::<u64, StoreError>(n as u64)
        };
        Ok(v1::DeviceStats {
            meta: None,
            last_seq: q("SELECT last_seq FROM devices WHERE id = $1").await?,
            visits: q("SELECT COUNT(*) FROM visits WHERE device_id = $1").await?,
            gps_fixes: q("SELECT COUNT(*) FROM gps_fixes f JOIN visits v ON v.id = f.visit_id WHERE v.device_id = $1")
                .await?,
            orders: q("SELECT COUNT(*) FROM orders WHERE device_id = $1").await?,
            order_lines: q(
                "SELECT COUNT(*) FROM order_lines l JOIN orders o ON o.id = l.order_id WHERE o.device_id = $1",
            )
            .await?,
            questionnaire_answers: q(
                "SELECT COUNT(*) FROM questionnaire_answers a JOIN visits v ON v.id = a.visit_id WHERE v.device_id = $1",
            )
            .await?,
            distribution_checks: q(
                "SELECT COUNT(*) FROM distribution_checks c JOIN visits v ON v.id = c.visit_id WHERE v.device_id = $1",
            )
            .await?,
            refused: q("SELECT COUNT(*) FROM refused_mutations WHERE device_id = $1").await?,
            visit_signals: Vec::new(),
        })
    }

    /// Every visit of a device with the signals it raised (see [`Store::device_stats`]).
    pub async fn device_visit_signals(&self, device_id: i64) -> Result<Vec<v1::VisitSignals>> {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT id, signals FROM visits WHERE device_id = $1 ORDER BY started_device_ms, id",
        )
        .bind(device_id)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(id, list)| {
                Some(v1::VisitSignals {
                    visit_id: fieldsync_protocol::ids::to_wire(uuid::Uuid::parse_str(&id).ok()?),
                    signals: fieldsync_protocol::signals::decode_list(&list)
                        .map(str::to_string)
                        .collect(),
                })
            })
            .collect())
    }
}
