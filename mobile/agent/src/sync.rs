//! The sync client: activation, push, pull, finish, with errors classified as "retry" or
//! "refused". See `docs/protocol.md` for the exchanges.
//!
//! Crash safety: no local transaction is held across a network call. The outbox row stays
//! `pending` until the server's answer is stored, so a sync killed at any point simply pushes
//! the same mutations again, and the server acknowledges them without effect.
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use bytes::Bytes;
use fieldsync_protocol::v1::{self, ErrorCode, MutationOutcome, change::Entity};
use fieldsync_protocol::{PROTOCOL_VERSION, ids, paths};
use prost::Message;
use rand::Rng;
use rusqlite::params;

use crate::{Engine, EngineError, store};

/// A transport failure: nothing (or nothing readable) came back.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct TransportError(pub String);

/// The future a [`Transport`] returns: the HTTP status and the body.
pub type PostFuture<'a> =
    Pin<Box<dyn Future<Output = Result<(u16, Bytes), TransportError>> + Send + 'a>>;

/// Sends one request; the engine does not care how (HTTP, a fault injector, ...).
pub trait Transport: Send + Sync {
    /// POSTs `body` to `path`; returns the HTTP status and the body.
    fn post<'a>(&'a self, path: &'a str, body: Vec<u8>, bearer: Option<&'a str>) -> PostFuture<'a>;
}

/// HTTP transport on reqwest.
#[derive(Debug, Clone)]
pub struct HttpTransport {
    base: String,
    client: reqwest::Client,
}

impl HttpTransport {
    pub fn new(base_url: &str) -> Self {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            .tcp_nodelay(true)
            .build()
            .expect("http client");
        HttpTransport {
            base: base_url.trim_end_matches('/').to_string(),
            client,
        }
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// True when the server answers its health check within `timeout`: the app's "is the
    /// network back?" question before an automatic sync.
    pub async fn probe(&self, timeout: Duration) -> bool {
        match self
            .client
            .get(format!("{}/healthz", self.base))
            .timeout(timeout)
            .send()
            .await
        {
            Ok(r) => r.status().is_success(),
            Err(_) => false,
        }
    }
}

impl Transport for HttpTransport {
    fn post<'a>(&'a self, path: &'a str, body: Vec<u8>, bearer: Option<&'a str>) -> PostFuture<'a> {
        Box::pin(async move {
            let mut req = self
                .client
                .post(format!("{}{}", self.base, path))
                .header("content-type", fieldsync_protocol::CONTENT_TYPE)
                .body(body);
            if let Some(t) = bearer {
                req = req.bearer_auth(t);
            }
            let resp = req
                .send()
                .await
                .map_err(|e| TransportError(e.to_string()))?;
            let status = resp.status().as_u16();
            let bytes = resp
                .bytes()
                .await
                .map_err(|e| TransportError(e.to_string()))?;
            Ok((status, bytes))
        })
    }
}

/// Why a sync (or activation) did not complete.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// No answer, or one that was not ours: try again later.
    #[error("network: {0}")]
    Network(String),
    /// The server answered with an error.
    #[error("server refused ({code:?}, HTTP {status}): {message}")]
    Server {
        status: u16,
        code: ErrorCode,
        message: String,
        retry_after_ms: i64,
    },
    /// The device must be activated (again) before it can sync.
    #[error("this device is not activated")]
    NotActivated,
    #[error(transparent)]
    Local(#[from] EngineError),
}

from_db_error!(SyncError::Local);

impl SyncError {
    /// Worth trying again later without anyone doing anything.
    pub fn is_retryable(&self) -> bool {
        match self {
            SyncError::Network(_) => true,
            SyncError::Server { status, code, .. } => {
                *status >= 500 || matches!(code, ErrorCode::Unavailable | ErrorCode::Internal)
            }
            SyncError::NotActivated | SyncError::Local(_) => false,
        }
    }

    /// The phone was unbound (a new PIN was generated) or is unknown: activate again.
    pub fn needs_activation(&self) -> bool {
        matches!(self, SyncError::NotActivated)
            || matches!(self, SyncError::Server { code, .. } if matches!(code, ErrorCode::DeviceRevoked | ErrorCode::DeviceUnknown))
    }

    /// The server's error code, if it answered.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            SyncError::Server { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// What one sync did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SyncReport {
    pub mode: i32,
    pub pushed: u64,
    pub acknowledged: u64,
    pub refused: u64,
    pub pulled: u64,
    pub requests: u64,
    pub bytes_up: u64,
    pub bytes_down: u64,
    pub summary: Option<v1::SyncSessionSummary>,
}

/// Where a running sync is, for a progress display.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncPhase {
    /// Comparing what the server holds with the outbox.
    Reconciling,
    /// Sending the outbox: `done` of `total` mutations.
    Pushing { done: u64, total: u64 },
    /// Receiving master data: `pages` pages, `changes` changes so far.
    Pulling { pages: u64, changes: u64 },
    /// Closing the sync session.
    Finishing,
}

/// A progress report: the phase and the bytes moved so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncProgress {
    pub phase: SyncPhase,
    pub bytes_up: u64,
    pub bytes_down: u64,
}

/// Called with each progress step; must not block.
pub type ProgressFn<'a> = &'a (dyn Fn(SyncProgress) + Send + Sync);

/// Mutations per push request.
pub const PUSH_BATCH: usize = 500;
/// Changes per pull page.
pub const PULL_PAGE: u32 = 5000;

impl Engine {
    async fn call<T: Message + Default>(
        &self,
        transport: &dyn Transport,
        path: &str,
        request: &impl Message,
        bearer: Option<&str>,
        report: &mut SyncReport,
    ) -> Result<T, SyncError> {
        let body = request.encode_to_vec();
        report.requests += 1;
        report.bytes_up += body.len() as u64;
        let (status, bytes) = transport
            .post(path, body, bearer)
            .await
            .map_err(|e| SyncError::Network(e.0))?;
        report.bytes_down += bytes.len() as u64;
        if status == 200 {
            return T::decode(bytes.as_ref())
                .map_err(|e| SyncError::Network(format!("undecodable answer: {e}")));
        }
        match v1::Error::decode(bytes.as_ref()) {
            Ok(e) if e.code != 0 => {
                self.note_epoch(e.meta.as_ref())?;
                Err(SyncError::Server {
                    status,
                    code: e.code(),
                    message: e.message,
                    retry_after_ms: e.retry_after_ms,
                })
            }
            // Not our error body (a proxy's page): treat as a network problem.
            _ => Err(SyncError::Network(format!(
                "HTTP {status} without a protocol error"
            ))),
        }
    }

    /// Remembers the server's epoch an answer carries (if any); a new one means the database
    /// was replaced or restored, so the next pull starts over. Returns true when it changed.
    fn note_epoch(&self, meta: Option<&v1::ResponseMeta>) -> Result<bool, SyncError> {
        let Some(meta) = meta.filter(|m| !m.server_epoch.is_empty()) else {
            return Ok(false);
        };
        let db = self.db();
        let known = store::get_meta(&db, "epoch")?;
        if known.as_deref() == Some(meta.server_epoch.as_slice()) {
            return Ok(false);
        }
        let tx = db.unchecked_transaction()?;
        if known.is_some() {
            store::del_meta(&tx, "cursor")?;
        }
        store::set_meta(&tx, "epoch", &meta.server_epoch)?;
        tx.commit()?;
        Ok(known.is_some())
    }

    fn token(&self) -> Result<String, SyncError> {
        store::get_meta_str(&self.db(), "token")?.ok_or(SyncError::NotActivated)
    }

    /// Binds this installation to a mobile user with a PIN.
    pub async fn activate(
        &self,
        transport: &dyn Transport,
        server_url: &str,
        login: &str,
        pin: &str,
        device_model: &str,
        app_version: &str,
    ) -> Result<v1::ActivateResponse, SyncError> {
        let req = v1::ActivateRequest {
            protocol_version: PROTOCOL_VERSION,
            login: login.trim().to_string(),
            pin: pin.trim().to_string(),
            device_uid: ids::to_wire(self.device_uid()?),
            device_model: device_model.to_string(),
            app_version: app_version.to_string(),
            device_time_ms: self.now_ms(),
        };
        let mut report = SyncReport::default();
        let resp: v1::ActivateResponse = self
            .call(transport, paths::ACTIVATE, &req, None, &mut report)
            .await?;
        self.note_epoch(resp.meta.as_ref())?;
        let mut db = self.db();
        let tx = db.transaction()?;
        store::set_meta(&tx, "token", resp.device_token.as_bytes())?;
        store::set_meta(&tx, "login", login.trim().as_bytes())?;
        store::set_meta(&tx, "server_url", server_url.as_bytes())?;
        store_profile(&tx, &resp)?;
        // A new binding numbers from the server's next_seq: renumber what is still pending and
        // keep what an earlier binding sent as history (negative seq).
        tx.execute(
            "UPDATE outbox SET seq = -seq WHERE seq > 0 AND state != 'pending'",
            [],
        )?;
        let pending: Vec<(i64, Vec<u8>)> = {
            let mut stmt = tx.prepare("SELECT seq, body FROM outbox WHERE seq > 0 ORDER BY seq")?;
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?
        };
        let offset = 1_000_000_000i64;
        for (seq, _) in &pending {
            tx.execute(
                "UPDATE outbox SET seq = ?1 WHERE seq = ?2",
                params![seq + offset, seq],
            )?;
        }
        for (i, (seq, body)) in pending.iter().enumerate() {
            let new_seq = resp.next_seq as i64 + i as i64;
            let mut m = v1::Mutation::decode(body.as_slice()).map_err(|e| {
                EngineError::Db(rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
            })?;
            m.seq = new_seq as u64;
            tx.execute(
                "UPDATE outbox SET seq = ?1, body = ?2 WHERE seq = ?3",
                params![new_seq, m.encode_to_vec(), seq + offset],
            )?;
        }
        store::set_meta(&tx, "seq_base", resp.next_seq.to_string().as_bytes())?;
        tx.commit()?;
        Ok(resp)
    }

    /// Initial (never pulled), incremental (have a cursor) or full re-sync (cursor dropped).
    fn sync_mode(&self) -> Result<v1::SyncMode, SyncError> {
        let db = self.db();
        Ok(
            match (
                store::get_meta(&db, "cursor")?,
                store::get_meta(&db, "pulled_once")?,
            ) {
                (Some(c), _) if !c.is_empty() => v1::SyncMode::Incremental,
                (_, Some(_)) => v1::SyncMode::FullResync,
                _ => v1::SyncMode::Initial,
            },
        )
    }

    /// One sync: compare with the server, push the outbox, pull every page, close the session.
    pub async fn sync(&self, transport: &dyn Transport) -> Result<SyncReport, SyncError> {
        self.sync_observed(transport, &|_| {}).await
    }

    /// [`Engine::sync`] that reports its progress to `observe` after every request.
    pub async fn sync_observed(
        &self,
        transport: &dyn Transport,
        observe: ProgressFn<'_>,
    ) -> Result<SyncReport, SyncError> {
        let token = self.token()?;
        let session = ids::to_wire(ids::new_id());
        let mut report = SyncReport::default();
        let result = async {
            observe(progress(SyncPhase::Reconciling, &report));
            self.reconcile(transport, &token, &mut report).await?;
            let mode = self.sync_mode()?;
            report.mode = mode as i32;
            let leg = Leg {
                transport,
                token: &token,
                session: &session,
                mode,
                observe,
            };
            self.push_all(leg, &mut report).await?;
            self.pull_all(leg, &mut report).await
        }
        .await;
        observe(progress(SyncPhase::Finishing, &report));
        let client_error = match &result {
            Ok(()) => String::new(),
            Err(e) => e.to_string(),
        };
        if result.as_ref().err().is_none_or(|e| !e.needs_activation()) {
            // Best effort: a session that could not be closed is still recorded by the server.
            let req = v1::FinishRequest {
                protocol_version: PROTOCOL_VERSION,
                session_id: session.clone(),
                device_time_ms: self.now_ms(),
                client_error,
            };
            if let Ok(summary) = self
                .call::<v1::SyncSessionSummary>(
                    transport,
                    paths::FINISH,
                    &req,
                    Some(&token),
                    &mut report,
                )
                .await
            {
                report.summary = Some(summary);
            }
        }
        let now = self.now_ms();
        {
            let db = self.db();
            db.execute(
                "INSERT INTO sync_log (started_ms, finished_ms, ok, summary, error) VALUES (?1, ?1, ?2, ?3, ?4)",
                params![
                    now,
                    result.is_ok() as i64,
                    report.summary.as_ref().map(|s| s.encode_to_vec()),
                    result.as_ref().err().map(|e| e.to_string())
                ],
            )?;
            if result.is_ok() {
                store::set_meta(&db, "last_sync_ms", now.to_string().as_bytes())?;
            }
        }
        result.map(|()| report)
    }

    async fn push_all(&self, leg: Leg<'_>, report: &mut SyncReport) -> Result<(), SyncError> {
        let total: i64 = self.db().query_row(
            "SELECT COUNT(*) FROM outbox WHERE state = 'pending' AND seq > 0",
            [],
            |r| r.get(0),
        )?;
        let mut done = 0u64;
        loop {
            (leg.observe)(progress(
                SyncPhase::Pushing {
                    done,
                    total: (total as u64).max(done),
                },
                report,
            ));
            let batch: Vec<(i64, Vec<u8>)> = {
                let db = self.db();
                let mut stmt = db.prepare_cached(
                    "SELECT seq, body FROM outbox WHERE state = 'pending' AND seq > 0 ORDER BY seq LIMIT ?1",
                )?;
                stmt.query_map([PUSH_BATCH as i64], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<Result<_, _>>()?
            };
            if batch.is_empty() {
                return Ok(());
            }
            let mutations: Vec<v1::Mutation> = batch
                .iter()
                .filter_map(|(_, b)| v1::Mutation::decode(b.as_slice()).ok())
                .collect();
            let req = v1::PushRequest {
                protocol_version: PROTOCOL_VERSION,
                session_id: leg.session.to_vec(),
                mode: leg.mode as i32,
                device_time_ms: self.now_ms(),
                app_version: env!("CARGO_PKG_VERSION").to_string(),
                mutations,
                utc_offset_minutes: self.utc_offset_min(self.now_ms()),
            };
            report.pushed += batch.len() as u64;
            let resp = match self
                .call::<v1::PushResponse>(leg.transport, paths::PUSH, &req, Some(leg.token), report)
                .await
            {
                Ok(r) => r,
                Err(SyncError::Server {
                    code: ErrorCode::SequenceGap,
                    ..
                }) => {
                    self.reconcile(leg.transport, leg.token, report).await?;
                    continue;
                }
                Err(e) => return Err(e),
            };
            self.note_epoch(resp.meta.as_ref())?;
            let now = self.now_ms();
            let mut db = self.db();
            let tx = db.transaction()?;
            for r in &resp.results {
                if r.outcome() == MutationOutcome::Refused {
                    if let Some((_, body)) = batch.iter().find(|(seq, _)| *seq == r.seq as i64)
                        && let Ok(m) = v1::Mutation::decode(body.as_slice())
                    {
                        crate::cards::forget_refused(&tx, &m)?;
                    }
                    tx.execute(
                        "UPDATE outbox SET state = 'refused', code = ?1, reason = ?2, acked_ms = ?3 WHERE seq = ?4",
                        params![r.code().as_str_name(), r.reason, now, r.seq as i64],
                    )?;
                    report.refused += 1;
                } else if r.order_number > 0
                    && let Some((_, body)) = batch.iter().find(|(seq, _)| *seq == r.seq as i64)
                    && let Ok(m) = v1::Mutation::decode(body.as_slice())
                    && let Some(v1::mutation::Kind::OrderPlaced(o)) = &m.kind
                    && let Some(id) = ids::from_wire(&o.order_id)
                {
                    // The number the server gave the order, to quote to the shop.
                    tx.execute(
                        "UPDATE orders SET number = ?1, acked_ms = ?3 WHERE id = ?2",
                        params![r.order_number, id.to_string(), now],
                    )?;
                }
            }
            let acked = tx.execute(
                "UPDATE outbox SET state = 'acked', acked_ms = ?1 WHERE state = 'pending' AND seq > 0 AND seq <= ?2",
                params![now, resp.acked_seq as i64],
            )?;
            report.acknowledged += acked as u64;
            tx.commit()?;
            done += batch.len() as u64;
            if (resp.acked_seq as i64) < batch[0].0 {
                // The server stored nothing of this batch: do not loop forever.
                return Err(SyncError::Server {
                    status: 200,
                    code: ErrorCode::SequenceGap,
                    message: format!("server acknowledged up to {} only", resp.acked_seq),
                    retry_after_ms: 0,
                });
            }
        }
    }

    /// Compares what the server holds from this device with the outbox. After a restored
    /// backup (new epoch, lower `last_seq`), everything the server no longer has is marked
    /// pending again, so it is pushed again. Called at the start of every sync and on
    /// `SEQUENCE_GAP`.
    async fn reconcile(
        &self,
        transport: &dyn Transport,
        token: &str,
        report: &mut SyncReport,
    ) -> Result<(), SyncError> {
        let req = v1::DeviceStatsRequest {
            protocol_version: PROTOCOL_VERSION,
            ..Default::default()
        };
        let stats: v1::DeviceStats = self
            .call(transport, paths::STATS, &req, Some(token), report)
            .await?;
        self.note_epoch(stats.meta.as_ref())?;
        let expected = stats.last_seq as i64 + 1;
        let db = self.db();
        let (lowest, highest_sent): (Option<i64>, Option<i64>) = db.query_row(
            "SELECT MIN(seq), MAX(CASE WHEN state != 'pending' THEN seq END) FROM outbox WHERE seq > 0",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        if highest_sent.is_none_or(|h| h < expected) {
            return Ok(()); // the server has everything we sent
        }
        if lowest.is_none_or(|l| l > expected) {
            return Err(SyncError::Server {
                status: 409,
                code: ErrorCode::SequenceGap,
                message: format!(
                    "the server expects mutation {expected}, which this phone no longer has"
                ),
                retry_after_ms: 0,
            });
        }
        db.execute(
            "UPDATE outbox SET state = 'pending', code = NULL, reason = NULL WHERE seq >= ?1",
            [expected],
        )?;
        Ok(())
    }

    async fn pull_all(&self, leg: Leg<'_>, report: &mut SyncReport) -> Result<(), SyncError> {
        let mut mode = leg.mode;
        let mut pages = 0u64;
        loop {
            (leg.observe)(progress(
                SyncPhase::Pulling {
                    pages,
                    changes: report.pulled,
                },
                report,
            ));
            let cursor = store::get_meta(&self.db(), "cursor")?.unwrap_or_default();
            let req = v1::PullRequest {
                protocol_version: PROTOCOL_VERSION,
                session_id: leg.session.to_vec(),
                mode: mode as i32,
                cursor: cursor.clone(),
                max_changes: PULL_PAGE,
                device_time_ms: self.now_ms(),
                utc_offset_minutes: self.utc_offset_min(self.now_ms()),
            };
            let page: v1::PullResponse = self
                .call(leg.transport, paths::PULL, &req, Some(leg.token), report)
                .await?;
            if self.note_epoch(page.meta.as_ref())? && !cursor.is_empty() {
                // A new database answered: this page continues nothing we have. Start over.
                mode = v1::SyncMode::FullResync;
                continue;
            }
            report.pulled += page.changes.len() as u64;
            pages += 1;
            self.store_page(&page)?;
            if !page.has_more {
                return Ok(());
            }
        }
    }

    /// Stores one pull page and its cursor in one local transaction. Sync calls it for every
    /// page it receives; fixtures and benchmarks call it to load master data without a server.
    pub fn store_page(&self, page: &v1::PullResponse) -> Result<(), SyncError> {
        let now = self.now_ms();
        let mut db = self.db();
        let tx = db.transaction()?;
        store_profile(&tx, page)?;
        if page.card_actor.len() == 16 {
            store::set_meta(&tx, "card_actor", &page.card_actor)?;
        }
        for change in &page.changes {
            apply_change(&tx, change, now)?;
        }
        store::set_meta(&tx, "cursor", &page.next_cursor)?;
        store::set_meta(&tx, "pulled_once", b"1")?;
        tx.commit()?;
        Ok(())
    }

    /// Keeps syncing until one sync succeeds, a refusal needs a person, or the deadline passes.
    /// Retryable failures back off exponentially (200 ms doubling to 10 s) with jitter.
    pub async fn sync_with_retry(
        &self,
        transport: &dyn Transport,
        deadline: Instant,
    ) -> Result<SyncReport, SyncError> {
        let mut delay = Duration::from_millis(200);
        loop {
            match self.sync(transport).await {
                Ok(r) => return Ok(r),
                Err(e) if e.is_retryable() && Instant::now() + delay < deadline => {
                    let jitter = rand::rng().random_range(0.5..1.5);
                    tokio::time::sleep(delay.mul_f64(jitter)).await;
                    delay = (delay * 2).min(Duration::from_secs(10));
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// What the push and the pull of one sync send with every request, and where they report.
#[derive(Clone, Copy)]
struct Leg<'a> {
    transport: &'a dyn Transport,
    token: &'a str,
    session: &'a [u8],
    mode: v1::SyncMode,
    observe: ProgressFn<'a>,
}

/// An answer that tells who the device is bound to (activation and every pull page do).
trait CarriesProfile {
    /// The parts it carries, by the meta key [`Engine::profile`] reads them from.
    fn profile_parts(&self) -> [(&'static str, Option<Vec<u8>>); 3];
}

macro_rules! carries_profile {
    ($($answer:ty),*) => {$(
        impl CarriesProfile for $answer {
            fn profile_parts(&self) -> [(&'static str, Option<Vec<u8>>); 3] {
                [
                    ("mobile_user", self.mobile_user.as_ref().map(Message::encode_to_vec)),
                    ("position", self.position.as_ref().map(Message::encode_to_vec)),
                    ("distributor", self.distributor.as_ref().map(Message::encode_to_vec)),
                ]
            }
        }
    )*};
}

carries_profile!(v1::ActivateResponse, v1::PullResponse);

/// Stores the profile parts an answer carries; a part it leaves out keeps its stored value.
fn store_profile(
    tx: &rusqlite::Transaction<'_>,
    answer: &impl CarriesProfile,
) -> rusqlite::Result<()> {
    for (key, body) in answer.profile_parts() {
        if let Some(body) = body {
            store::set_meta(tx, key, &body)?;
        }
    }
    Ok(())
}

/// Applies one pulled change; `now` is the phone's time of storing it.
fn apply_change(
    tx: &rusqlite::Transaction<'_>,
    change: &v1::Change,
    now: i64,
) -> rusqlite::Result<()> {
    match &change.entity {
        Some(Entity::Outlet(o)) => {
            let search = store::fold(&format!("{} {} {}", o.name, o.code, o.address));
            tx.prepare_cached(
                "INSERT OR REPLACE INTO outlets (id, code, name, address, contact_name, phone, lat_e7, lon_e7,
                    price_list_id, channel, search) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            )?
            .execute(params![
                o.id,
                o.code,
                o.name,
                o.address,
                o.contact_name,
                o.phone,
                o.has_location.then_some(o.lat_e7),
                o.has_location.then_some(o.lon_e7),
                o.price_list_id,
                o.channel,
                search
            ])?;
        }
        Some(Entity::Product(p)) => {
            let search = store::fold(&format!("{} {}", p.name, p.code));
            tx.prepare_cached(
                "INSERT OR REPLACE INTO products (id, code, name, unit, category, must_stock, step_milli, search, brand)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?
            .execute(params![p.id, p.code, p.name, p.unit, p.category, p.must_stock as i64, p.quantity_step_milli, search, p.brand])?;
            tx.prepare_cached("DELETE FROM product_must_stock_channels WHERE product_id = ?1")?
                .execute([p.id])?;
            if p.must_stock {
                let mut insert = tx.prepare_cached(
                    "INSERT OR IGNORE INTO product_must_stock_channels (product_id, channel) VALUES (?1, ?2)",
                )?;
                for channel in &p.must_stock_channels {
                    insert.execute(params![p.id, channel])?;
                }
            }
        }
        Some(Entity::PriceList(p)) => {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO price_lists (id, name, payment_form) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![p.id, p.name, p.payment_form])?;
        }
        Some(Entity::Price(p)) => {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO prices (id, price_list_id, product_id, price_minor, valid_from)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![p.id, p.price_list_id, p.product_id, p.price_minor, p.valid_from])?;
        }
        Some(Entity::Warehouse(w)) => {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO warehouses (id, code, name, stock_updated_at_ms) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![w.id, w.code, w.name, w.stock_updated_at_ms])?;
            tx.prepare_cached("DELETE FROM stock WHERE warehouse_id = ?1")?
                .execute([w.id])?;
            let mut stmt = tx.prepare_cached(
                "INSERT OR REPLACE INTO stock (warehouse_id, product_id, quantity_milli) VALUES (?1, ?2, ?3)",
            )?;
            for l in &w.stock {
                stmt.execute(params![w.id, l.product_id, l.quantity_milli])?;
            }
        }
        Some(Entity::Route(r)) => {
            tx.prepare_cached("INSERT OR REPLACE INTO routes (id, route_date) VALUES (?1, ?2)")?
                .execute(params![r.id, r.date])?;
            tx.prepare_cached("DELETE FROM route_stops WHERE route_id = ?1")?
                .execute([r.id])?;
            let mut stmt = tx.prepare_cached("INSERT OR REPLACE INTO route_stops (route_id, position, outlet_id) VALUES (?1, ?2, ?3)")?;
            for s in &r.stops {
                stmt.execute(params![r.id, s.position, s.outlet_id])?;
            }
        }
        Some(Entity::Questionnaire(q)) => {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO questionnaires (id, name, body) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![q.id, q.name, q.encode_to_vec()])?;
        }
        Some(Entity::OrderStatus(s)) => {
            if let Some(id) = ids::from_wire(&s.order_id) {
                let state = s.state().name();
                // A server that predates the number sends 0: keep the one we have.
                tx.prepare_cached(
                    "UPDATE orders SET state = ?1, state_reason = ?2, document_number = ?3,
                        number = CASE WHEN ?5 > 0 THEN ?5 ELSE number END WHERE id = ?4",
                )?
                .execute(params![
                    state,
                    s.reason,
                    s.document_number,
                    id.to_string(),
                    s.number
                ])?;
                // The lines' reported quantities come whole with every status.
                tx.prepare_cached(
                    "UPDATE order_lines SET confirmed_quantity_milli = NULL, shipped_quantity_milli = NULL
                     WHERE order_id = ?1",
                )?
                .execute([id.to_string()])?;
                let mut line = tx.prepare_cached(
                    "UPDATE order_lines SET confirmed_quantity_milli = ?1, shipped_quantity_milli = ?2
                     WHERE order_id = ?3 AND line_no = ?4",
                )?;
                for l in &s.lines {
                    line.execute(params![
                        l.confirmed_quantity_milli,
                        l.shipped_quantity_milli,
                        id.to_string(),
                        l.line_no
                    ])?;
                }
            }
        }
        Some(Entity::Receivables(r)) => {
            tx.prepare_cached("DELETE FROM invoices WHERE outlet_id = ?1")?
                .execute([r.outlet_id])?;
            let mut ins = tx.prepare_cached(
                "INSERT OR REPLACE INTO invoices (outlet_id, number, invoice_date, due_date, amount_minor,
                    paid_minor, currency) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            for i in &r.invoices {
                ins.execute(params![
                    r.outlet_id,
                    i.number,
                    i.invoice_date,
                    i.due_date,
                    i.amount_minor,
                    i.paid_minor,
                    i.currency
                ])?;
            }
        }
        Some(Entity::Plan(p)) => {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO plans (id, period, outlet_id, category, brand, measure, target,
                    achieved, achieved_from, computed_at_ms, received_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            )?
            .execute(params![
                p.id,
                p.period,
                p.outlet_id,
                p.category,
                p.brand,
                p.measure,
                p.target,
                p.achieved,
                p.achieved_from,
                p.computed_at_ms,
                now
            ])?;
        }
        Some(Entity::ClaimReason(r)) => {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO claim_reasons (id, parent_id, name) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![r.id, r.parent_id, r.name])?;
        }
        Some(Entity::ClaimStatus(c)) => {
            // A status sent before the phone registered the claim never makes it a draft again.
            if let Some(id) = ids::from_wire(&c.claim_id) {
                tx.prepare_cached(
                    "UPDATE claims SET number = ?1, answer = ?3,
                        stage = CASE WHEN ?2 = 'draft' AND stage <> 'draft' THEN stage ELSE ?2 END
                     WHERE id = ?4",
                )?
                .execute(params![
                    c.number,
                    fieldsync_protocol::claims::stage_name(c.stage()),
                    c.answer,
                    id.to_string()
                ])?;
            }
        }
        Some(Entity::OutletCard(c)) => crate::cards::store_pulled(tx, c)?,
        Some(Entity::Deleted(t)) => {
            let table = match v1::EntityKind::try_from(t.kind) {
                Ok(v1::EntityKind::Outlet) => {
                    crate::cards::drop_card(tx, t.id)?;
                    tx.execute("DELETE FROM invoices WHERE outlet_id = ?1", [t.id])?;
                    "outlets"
                }
                Ok(v1::EntityKind::Product) => {
                    tx.execute(
                        "DELETE FROM product_must_stock_channels WHERE product_id = ?1",
                        [t.id],
                    )?;
                    "products"
                }
                Ok(v1::EntityKind::PriceList) => "price_lists",
                Ok(v1::EntityKind::Price) => "prices",
                Ok(v1::EntityKind::Warehouse) => {
                    tx.execute("DELETE FROM stock WHERE warehouse_id = ?1", [t.id])?;
                    "warehouses"
                }
                Ok(v1::EntityKind::Route) => {
                    tx.execute("DELETE FROM route_stops WHERE route_id = ?1", [t.id])?;
                    "routes"
                }
                Ok(v1::EntityKind::Questionnaire) => "questionnaires",
                Ok(v1::EntityKind::Plan) => "plans",
                Ok(v1::EntityKind::ClaimReason) => "claim_reasons",
                _ => return Ok(()),
            };
            tx.execute(&format!("DELETE FROM {table} WHERE id = ?1"), [t.id])?;
        }
        None => {}
    }
    Ok(())
}

fn progress(phase: SyncPhase, report: &SyncReport) -> SyncProgress {
    SyncProgress {
        phase,
        bytes_up: report.bytes_up,
        bytes_down: report.bytes_down,
    }
}
