//! Push ingest: a batch of device mutations applied exactly once.
//!
//! The whole batch, the refusals and the device's `last_seq` commit in one transaction, with
//! the device row locked, so a replayed or concurrently duplicated request finds the batch
//! already applied and is acknowledged without effect. A mutation that cannot be accepted
//! is stored in `refused_mutations` with its reason and does not stop the ones behind it.
//!
//! The work is done in three steps so that a batch costs a fixed number of statements, not a
//! number per mutation: (1) everything the batch refers to is read with one query per kind;
//! (2) the mutations are validated and applied in order against that in-memory picture;
//! (3) the resulting rows are written with multi-row inserts.
use std::collections::{HashMap, HashSet};

use fieldsync_protocol::location::{self, Bands, Fix};
use fieldsync_protocol::v1::OrderState;
use fieldsync_protocol::v1::{self, ErrorCode, MutationOutcome, MutationResult, mutation::Kind};
use fieldsync_protocol::{dates, ids, money, questionnaire};
use prost::Message;
use sqlx::AnyConnection;
use uuid::Uuid;

use super::devices::DeviceAuth;
use super::sessions::SessionCtx;
use super::world::{ChangeRef, Val, insert_rows, record_changes};
use super::{Backend, Result, Store, StoreError, now_ms};

/// Why a whole batch is refused (nothing in it was stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchRefusal {
    /// The batch starts after the next expected sequence number.
    Gap { expected: u64 },
    /// Sequence numbers inside the batch are not consecutive.
    NotConsecutive,
    /// The device was unbound meanwhile.
    Revoked,
}

/// What a stored batch produced.
#[derive(Debug, Default, Clone)]
pub struct PushOutcome {
    pub acked_seq: u64,
    pub results: Vec<MutationResult>,
    pub applied: u32,
    pub duplicate: u32,
    pub refused: u32,
}

type Refusal = (ErrorCode, String);
type Checked<T> = std::result::Result<T, Refusal>;

fn refuse<T>(code: ErrorCode, reason: impl Into<String>) -> Checked<T> {
    Err((code, reason.into()))
}

/// Stable name of a mutation's kind, for logs and the refused list.
pub fn kind_name(m: &v1::Mutation) -> &'static str {
    m.kind.as_ref().map_or("empty", Kind::name)
}

fn provider_name(p: i32) -> &'static str {
    match v1::LocationProvider::try_from(p).unwrap_or_default() {
        v1::LocationProvider::Gps => "gps",
        v1::LocationProvider::Network => "network",
        v1::LocationProvider::Fused => "fused",
        v1::LocationProvider::Unspecified => "unknown",
    }
}

fn check_fixes(fixes: &[v1::GpsFix]) -> Checked<()> {
    if fixes.len() > 50 {
        return refuse(
            ErrorCode::InvalidMutation,
            "more than 50 fixes in one mutation",
        );
    }
    for f in fixes {
        if !(-900_000_000..=900_000_000).contains(&f.lat_e7)
            || !(-1_800_000_000..=1_800_000_000).contains(&f.lon_e7)
        {
            return refuse(
                ErrorCode::InvalidMutation,
                "a fix has coordinates outside the globe",
            );
        }
    }
    Ok(())
}

/// A fact id already stored, with the mobile user it belongs to: `Ok(false)` (a duplicate)
/// if it is this user's, `Err(())` if another user's; `None` if it is new.
fn stored_id(owner: Option<i64>, user: i64) -> Option<Result<bool, ()>> {
    owner.map(|o| if o == user { Ok(false) } else { Err(()) })
}

/// The refusal for a fact id another mobile user already used.
fn taken(what: &str, id: Uuid) -> Refusal {
    (
        ErrorCode::InvalidMutation,
        format!("{what} {id} is already taken"),
    )
}

fn parse_id(bytes: &[u8], what: &str) -> Checked<Uuid> {
    ids::from_wire(bytes).ok_or_else(|| {
        (
            ErrorCode::InvalidMutation,
            format!("{what} must be a 16-byte UUID"),
        )
    })
}

fn to_fix(f: &v1::GpsFix) -> Fix {
    Fix {
        lat_e7: f.lat_e7,
        lon_e7: f.lon_e7,
        accuracy_m: f.accuracy_dm as f64 / 10.0,
    }
}

/// A visit as the batch sees it.
#[derive(Debug, Clone)]
struct VisitState {
    owner: i64,
    outlet_id: i64,
    ended: bool,
    /// Already stored before this batch (otherwise it is inserted at the end).
    stored: bool,
    fixes: Vec<Fix>,
}

/// A visit started in this batch, written at the end.
struct NewVisit {
    id: Uuid,
    outlet_id: i64,
    route_id: Option<i64>,
    started_device_ms: i64,
    ended_device_ms: Option<i64>,
    ended: bool,
    band: &'static str,
    distance_m: Option<f64>,
    accuracy_m: Option<f64>,
    mock: bool,
}

/// An order placed in this batch; its number is handed out at the end.
struct NewOrder {
    id: Uuid,
    visit_id: Option<Uuid>,
    placed_device_ms: i64,
    o: v1::OrderPlaced,
    /// Cancelled later in the same batch: stored as cancelled, with this reason.
    cancel_reason: Option<String>,
}

/// Everything the batch refers to, read up front.
#[derive(Default)]
struct Picture {
    visits: HashMap<Uuid, VisitState>,
    open_visit: Option<Uuid>,
    /// Visible outlets and their reference locations.
    outlets: HashMap<i64, Option<(i32, i32)>>,
    products: HashSet<i64>,
    price_lists: HashSet<i64>,
    warehouses: HashSet<i64>,
    /// Orders by id: (owner, number, state).
    orders: HashMap<Uuid, (i64, i64, OrderState)>,
    /// Stored answer sets and distribution checks by id, with the mobile user who sent them.
    answer_sets: HashMap<Uuid, i64>,
    checks: HashMap<Uuid, i64>,
    questionnaires: HashMap<i64, v1::Questionnaire>,
}

/// Rows to write.
#[derive(Default)]
struct Writes {
    new_visits: Vec<NewVisit>,
    ended_stored: Vec<(Uuid, Option<i64>, &'static str, Option<f64>, bool)>,
    fixes: Vec<Vec<Val>>,
    orders: Vec<NewOrder>,
    cancels: Vec<(Uuid, i64, String)>,
    answers: Vec<Vec<Val>>,
    checks: Vec<Vec<Val>>,
    refused: Vec<Vec<Val>>,
}

/// `$from, ..., $(from+n-1)`, or `?, ...` where anonymous (SQLite: binding by position
/// avoids its linear lookup of numbered parameter names).
fn placeholders(from: usize, n: usize, anonymous: bool) -> String {
    if anonymous {
        return vec!["?"; n].join(", ");
    }
    (from..from + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Runs `SELECT ... WHERE <col> IN (...)` in chunks; `$1..$fixed` are the fixed arguments.
///
/// On PostgreSQL these statements are not kept prepared: a cached generic plan is made while
/// the tables are small (a new database, the first minute before autovacuum analyses) and
/// then kept, and for `id IN (...)` that plan was a sequential scan whose cost grew with every
/// batch (measured: 12,000 scans reading 211 million rows in a 30 s benchmark). Planned per
/// execution they use the primary key whatever the statistics say.
macro_rules! select_in {
    ($tx:expr, $row:ty, $sql:expr, [$($fixed:expr),*], $items:expr) => {{
        let mut out: Vec<$row> = Vec::new();
        let items: Vec<_> = $items;
        let fixed_count = 0usize $(+ { let _ = &$fixed; 1 })*;
        let sqlite = $tx.backend_name() == "SQLite";
        for chunk in items.chunks(500) {
            let mut sql = format!($sql, placeholders(fixed_count + 1, chunk.len(), sqlite));
            if sqlite {
                // sqlx numbers anonymous parameters from 1 whatever named ones come before.
                for i in 1..=fixed_count {
                    sql = sql.replacen(&format!("${i}"), "?", 1);
                }
            }
            let mut q = sqlx::query_as::<_, $row>(sqlx::AssertSqlSafe(sql)).persistent(sqlite);
            $(q = q.bind($fixed);)*
            for item in chunk {
                q = q.bind(item.clone());
            }
            out.extend(q.fetch_all(&mut *$tx).await?);
        }
        out
    }};
}

/// One push request on its way through ingest.
pub(crate) struct PushJob {
    auth: DeviceAuth,
    session: SessionCtx,
    mutations: Vec<v1::Mutation>,
    bytes_up: u64,
    now: i64,
    /// The device's `last_seq` when `early` was read.
    seen_seq: u64,
    /// What the fresh mutations refer to, read before taking the write lock.
    early: Option<Picture>,
}

pub type PushResult = Result<std::result::Result<PushOutcome, BatchRefusal>>;

/// A push waiting for the SQLite writer, with where its answer goes.
pub(crate) struct QueuedPush {
    job: PushJob,
    reply: tokio::sync::oneshot::Sender<PushResult>,
}

/// Pushes waiting for the SQLite writer.
#[derive(Default)]
pub(crate) struct IngestQueue(std::sync::Mutex<std::collections::VecDeque<QueuedPush>>);

impl IngestQueue {
    fn lock(
        &self,
    ) -> std::sync::LockResult<std::sync::MutexGuard<'_, std::collections::VecDeque<QueuedPush>>>
    {
        self.0.lock()
    }
}

impl std::fmt::Debug for IngestQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IngestQueue")
    }
}

/// How pushes were written, for `/metrics`.
#[derive(Debug, Default)]
pub struct IngestStats {
    /// Write transactions that committed pushes.
    pub transactions: std::sync::atomic::AtomicU64,
    /// Pushes answered from a committed transaction (on SQLite several share one), including
    /// batches refused whole (gap, revoked device).
    pub pushes: std::sync::atomic::AtomicU64,
    /// Pushes tried again on their own after their transaction failed.
    pub retried: std::sync::atomic::AtomicU64,
}

impl IngestStats {
    fn add(counter: &std::sync::atomic::AtomicU64, n: usize) {
        counter.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
    }

    /// The counters in Prometheus' text format.
    pub fn render(&self) -> String {
        use std::sync::atomic::Ordering::Relaxed;
        format!(
            "# HELP fieldsync_push_transactions_total Write transactions that committed pushes.\n\
             # TYPE fieldsync_push_transactions_total counter\n\
             fieldsync_push_transactions_total {}\n\
             # HELP fieldsync_push_committed_total Pushes answered from a committed transaction (several may share one).\n\
             # TYPE fieldsync_push_committed_total counter\n\
             fieldsync_push_committed_total {}\n\
             # HELP fieldsync_push_retried_total Pushes tried again alone after their transaction failed.\n\
             # TYPE fieldsync_push_retried_total counter\n\
             fieldsync_push_retried_total {}\n",
            self.transactions.load(Relaxed),
            self.pushes.load(Relaxed),
            self.retried.load(Relaxed),
        )
    }
}

/// At most this many pushes (and mutations) share one SQLite transaction.
const GROUP_MAX_PUSHES: usize = 32;
const GROUP_MAX_MUTATIONS: usize = 4000;

/// Rows produced by one or more pushes, ready to be written together.
#[derive(Default)]
struct Rows {
    visits: Vec<Vec<Val>>,
    /// Visits stored earlier and ended now: (id, ended device time, band, distance, mock, now).
    ended_stored: Vec<(Uuid, Option<i64>, &'static str, Option<f64>, bool, i64)>,
    fixes: Vec<Vec<Val>>,
    /// Column 1 (the order number) is handed out when the rows are written.
    orders: Vec<Vec<Val>>,
    lines: Vec<Vec<Val>>,
    /// Orders stored earlier and cancelled now: (id, number, reason, now, distributor, position).
    cancels: Vec<(Uuid, i64, String, i64, i64, i64)>,
    answers: Vec<Vec<Val>>,
    checks: Vec<Vec<Val>>,
    items: Vec<Vec<Val>>,
    refused: Vec<Vec<Val>>,
}

impl Rows {
    fn append(&mut self, other: Rows) {
        self.visits.extend(other.visits);
        self.ended_stored.extend(other.ended_stored);
        self.fixes.extend(other.fixes);
        self.orders.extend(other.orders);
        self.lines.extend(other.lines);
        self.cancels.extend(other.cancels);
        self.answers.extend(other.answers);
        self.checks.extend(other.checks);
        self.items.extend(other.items);
        self.refused.extend(other.refused);
    }

    /// Turns what a batch decided into rows, stamped with its device, session and time.
    fn from_writes(w: Writes, auth: &DeviceAuth, session: &SessionCtx, now: i64) -> Rows {
        let sid = session.id.to_string();
        let mut r = Rows {
            fixes: w.fixes,
            answers: w.answers,
            checks: w.checks,
            refused: w.refused,
            ..Rows::default()
        };
        for v in &w.new_visits {
            r.items.push(vec![
                Val::S(sid.clone()),
                Val::S("visit".into()),
                Val::S(v.id.to_string()),
                Val::N(Some(v.outlet_id)),
                Val::O(None),
                Val::N(None),
            ]);
            r.visits.push(vec![
                Val::S(v.id.to_string()),
                Val::I(auth.distributor_id),
                Val::I(auth.device_id),
                Val::I(auth.mobile_user_id),
                Val::I(auth.position_id),
                Val::I(v.outlet_id),
                Val::N(v.route_id),
                Val::S(sid.clone()),
                Val::I(v.started_device_ms),
                Val::I(now),
                Val::N(if v.ended {
                    Some(v.ended_device_ms.unwrap_or(v.started_device_ms))
                } else {
                    None
                }),
                Val::N(v.ended.then_some(now)),
                Val::S(v.band.into()),
                Val::F(v.distance_m),
                Val::F(v.accuracy_m),
                Val::I(v.mock as i64),
            ]);
        }
        r.ended_stored = w
            .ended_stored
            .into_iter()
            .map(|(id, ended, band, distance, mock)| (id, ended, band, distance, mock, now))
            .collect();
        for order in &w.orders {
            let o = &order.o;
            let id = order.id.to_string();
            r.orders.push(vec![
                Val::S(id.clone()),
                Val::I(0),
                Val::I(auth.distributor_id),
                Val::I(auth.device_id),
                Val::I(auth.mobile_user_id),
                Val::I(auth.position_id),
                Val::O(order.visit_id.map(|v| v.to_string())),
                Val::I(o.outlet_id),
                Val::I(o.price_list_id),
                Val::I(o.warehouse_id),
                Val::I(o.total_minor),
                Val::I(o.lines.len() as i64),
                Val::S(o.comment.clone()),
                Val::S(o.delivery_date.clone()),
                Val::S(
                    if order.cancel_reason.is_some() {
                        OrderState::Cancelled
                    } else {
                        OrderState::Placed
                    }
                    .name()
                    .into(),
                ),
                Val::S(order.cancel_reason.clone().unwrap_or_default()),
                Val::I(order.placed_device_ms),
                Val::I(now),
                Val::I(now),
                Val::S(sid.clone()),
            ]);
            for (i, l) in o.lines.iter().enumerate() {
                r.lines.push(vec![
                    Val::S(id.clone()),
                    Val::I(i as i64 + 1),
                    Val::I(l.product_id),
                    Val::I(l.quantity_milli),
                    Val::I(l.price_minor),
                    Val::I(l.sum_minor),
                    Val::S(l.comment.clone()),
                ]);
            }
            r.items.push(vec![
                Val::S(sid.clone()),
                Val::S("order".into()),
                Val::O(order.visit_id.map(|v| v.to_string())),
                Val::N(Some(o.outlet_id)),
                Val::S(id),
                Val::N(Some(o.total_minor)),
            ]);
        }
        r.cancels = w
            .cancels
            .into_iter()
            .map(|(id, number, reason)| {
                (
                    id,
                    number,
                    reason,
                    now,
                    auth.distributor_id,
                    auth.position_id,
                )
            })
            .collect();
        r
    }
}

impl Store {
    /// Applies a batch of mutations from a device, exactly once.
    ///
    /// On PostgreSQL each push is its own transaction (the device row is locked, so pushes of
    /// different devices run in parallel). SQLite has a single writer: pushes queue for it, and
    /// whichever push gets the writer takes every queued push of other devices along into one
    /// transaction (group commit), so a busy server pays one commit and one set of statements
    /// for many pushes. A group that fails is retried push by push, so one push's error
    /// never becomes another's.
    pub async fn push(
        &self,
        auth: &DeviceAuth,
        session: &SessionCtx,
        mutations: Vec<v1::Mutation>,
        bytes_up: u64,
    ) -> PushResult {
        if mutations.first().is_some_and(|m| m.seq == 0) {
            return Ok(Err(BatchRefusal::NotConsecutive));
        }
        for pair in mutations.windows(2) {
            if pair[1].seq != pair[0].seq + 1 {
                return Ok(Err(BatchRefusal::NotConsecutive));
            }
        }
        let now = now_ms();
        // Read what the batch refers to before taking the write lock (SQLite has one writer):
        // the lock is then held only for the writes. If the device's sequence moved meanwhile
        // (a concurrent duplicate of this request), the picture is read again under the lock.
        let (seen_seq, early) = {
            let mut conn = self.pool().acquire().await?;
            let (seq,): (i64,) = sqlx::query_as("SELECT last_seq FROM devices WHERE id = $1")
                .bind(auth.device_id)
                .fetch_one(&mut *conn)
                .await?;
            let fresh: Vec<&v1::Mutation> =
                mutations.iter().filter(|m| m.seq > seq as u64).collect();
            let pic = if fresh.is_empty() {
                None
            } else {
                Some(self.picture(&mut conn, auth, &fresh).await?)
            };
            (seq as u64, pic)
        };
        let mut job = PushJob {
            auth: auth.clone(),
            session: session.clone(),
            mutations,
            bytes_up,
            now,
            seen_seq,
            early,
        };
        match self.backend() {
            Backend::Postgres => self.push_alone(&mut job).await,
            Backend::Sqlite => self.push_grouped(job).await,
        }
    }

    /// One push in its own transaction. If that fails it is tried once more with everything
    /// read again under the lock: the picture read before the lock cannot know what another
    /// device committed meanwhile (two phones sending the same visit id, say), and the second
    /// attempt turns such a clash into the refusal of that one mutation.
    /// (On SQLite the caller holds the write gate.)
    async fn push_alone(&self, job: &mut PushJob) -> PushResult {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = async {
                let mut tx = match self.backend() {
                    Backend::Postgres => self.begin_write().await?,
                    Backend::Sqlite => self.begin_write_gated().await?,
                };
                let out = self.run_jobs(&mut tx, std::slice::from_mut(job)).await?;
                tx.commit().await?;
                IngestStats::add(&self.ingest_stats.transactions, 1);
                IngestStats::add(&self.ingest_stats.pushes, 1);
                Ok(out.into_iter().next().expect("one job, one outcome"))
            }
            .await;
            match result {
                Err(e) if attempt == 1 => {
                    tracing::debug!(error = %e, "push failed; trying once more with a fresh picture");
                    IngestStats::add(&self.ingest_stats.retried, 1);
                    job.early = None;
                }
                other => return other,
            }
        }
    }

    /// SQLite: queue the push, then either receive its result or become the writer.
    async fn push_grouped(&self, job: PushJob) -> PushResult {
        let (reply, mut answer) = tokio::sync::oneshot::channel();
        self.ingest_queue
            .lock()
            .expect("ingest queue lock")
            .push_back(QueuedPush { job, reply });
        loop {
            tokio::select! {
                biased;
                result = &mut answer => {
                    // The writer went away without answering (it panicked): the phone is told
                    // to try again (503); if the push had committed, the retry is a replay.
                    return result.unwrap_or(Err(StoreError::Other(sqlx::Error::WorkerCrashed)));
                }
                permit = self.write_gate.clone().acquire_owned() => {
                    let permit = permit.expect("the write gate is never closed");
                    // The group runs to its end even if this request goes away meanwhile:
                    // its results belong to other requests too.
                    let store = self.clone();
                    let _ = tokio::spawn(async move { store.run_group(permit).await }).await;
                }
            }
        }
    }

    /// Takes the queued pushes that may share a transaction: at most one per device (a
    /// device's second request waits for the first to commit), within the group limits.
    /// Pushes whose requests went away are dropped, as if they never arrived.
    fn take_group(&self) -> Vec<QueuedPush> {
        let mut queue = self.ingest_queue.lock().expect("ingest queue lock");
        queue.retain(|q| !q.reply.is_closed());
        let mut group = Vec::new();
        let mut devices = HashSet::new();
        let mut mutations = 0;
        let mut i = 0;
        while i < queue.len() && group.len() < GROUP_MAX_PUSHES && mutations < GROUP_MAX_MUTATIONS {
            if devices.insert(queue[i].job.auth.device_id) {
                let q = queue.remove(i).expect("index in range");
                mutations += q.job.mutations.len();
                group.push(q);
            } else {
                i += 1;
            }
        }
        group
    }

    /// Writes one group of queued pushes while holding the write gate, and answers them.
    async fn run_group(&self, _gate: tokio::sync::OwnedSemaphorePermit) {
        let group = self.take_group();
        if group.is_empty() {
            return;
        }
        let (mut jobs, replies): (Vec<PushJob>, Vec<_>) =
            group.into_iter().map(|q| (q.job, q.reply)).unzip();
        if let ([job], [_]) = (jobs.as_mut_slice(), replies.as_slice()) {
            let result = self.push_alone(job).await;
            let _ = replies.into_iter().next().expect("one reply").send(result);
            return;
        }
        let together = async {
            let mut tx = self.begin_write_gated().await?;
            let out = self.run_jobs(&mut tx, &mut jobs).await?;
            tx.commit().await?;
            IngestStats::add(&self.ingest_stats.transactions, 1);
            IngestStats::add(&self.ingest_stats.pushes, jobs.len());
            Ok::<_, StoreError>(out)
        }
        .await;
        match together {
            Ok(outcomes) => {
                for (reply, outcome) in replies.into_iter().zip(outcomes) {
                    let _ = reply.send(Ok(outcome));
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, pushes = jobs.len(), "group push failed; retrying one by one");
                IngestStats::add(&self.ingest_stats.retried, jobs.len());
                for (mut job, reply) in jobs.into_iter().zip(replies) {
                    job.early = None;
                    let _ = reply.send(self.push_alone(&mut job).await);
                }
            }
        }
    }

    /// Stages every job in the transaction, writes their rows together, counts them.
    async fn run_jobs(
        &self,
        tx: &mut super::WriteTx,
        jobs: &mut [PushJob],
    ) -> Result<Vec<std::result::Result<PushOutcome, BatchRefusal>>> {
        let mut outcomes = Vec::with_capacity(jobs.len());
        let mut rows = Rows::default();
        for job in jobs.iter_mut() {
            let (outcome, job_rows) = self.stage(tx, job).await?;
            rows.append(job_rows);
            outcomes.push(outcome);
        }
        self.write_rows(tx, rows).await?;
        for (job, outcome) in jobs.iter().zip(&outcomes) {
            if let Ok(out) = outcome {
                self.count_push(tx, job, out).await?;
            }
        }
        Ok(outcomes)
    }

    /// Checks a job against the device row and validates its mutations, under the lock.
    /// Nothing is written for a refused batch.
    async fn stage(
        &self,
        tx: &mut super::WriteTx,
        job: &mut PushJob,
    ) -> Result<(std::result::Result<PushOutcome, BatchRefusal>, Rows)> {
        let early = job.early.take();
        let (auth, session, mutations, now) = (&job.auth, &job.session, &job.mutations, job.now);
        let sql = format!(
            "SELECT last_seq, revoked_at_ms FROM devices WHERE id = $1{}",
            self.for_update()
        );
        let (last_seq, revoked): (i64, Option<i64>) = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(auth.device_id)
            .fetch_one(&mut **tx)
            .await?;
        if revoked.is_some() {
            return Ok((Err(BatchRefusal::Revoked), Rows::default()));
        }
        let last_seq = last_seq as u64;
        if let Some(first) = mutations.first()
            && first.seq > last_seq + 1
        {
            return Ok((
                Err(BatchRefusal::Gap {
                    expected: last_seq + 1,
                }),
                Rows::default(),
            ));
        }
        self.ensure_session(tx, auth, session, now).await?;
        let fresh: Vec<&v1::Mutation> = mutations.iter().filter(|m| m.seq > last_seq).collect();
        let mut out = PushOutcome {
            acked_seq: last_seq,
            ..Default::default()
        };
        // A replay whose first answer was lost must still tell the phone what was refused.
        let replayed: Vec<&v1::Mutation> = mutations.iter().filter(|m| m.seq <= last_seq).collect();
        let refused_before: HashMap<i64, (String, String)> =
            match (replayed.first(), replayed.last()) {
                (Some(first), Some(last)) => {
                    let rows: Vec<(i64, String, String)> = sqlx::query_as(
                        "SELECT seq, error_code, reason FROM refused_mutations
                     WHERE device_id = $1 AND seq >= $2 AND seq <= $3",
                    )
                    .bind(auth.device_id)
                    .bind(first.seq as i64)
                    .bind(last.seq as i64)
                    .fetch_all(&mut **tx)
                    .await?;
                    rows.into_iter()
                        .map(|(seq, code, reason)| (seq, (code, reason)))
                        .collect()
                }
                _ => HashMap::new(),
            };
        for m in replayed {
            out.duplicate += 1;
            out.results.push(match refused_before.get(&(m.seq as i64)) {
                Some((code, reason)) => MutationResult {
                    seq: m.seq,
                    outcome: MutationOutcome::Refused as i32,
                    code: ErrorCode::from_str_name(code).unwrap_or(ErrorCode::InvalidMutation)
                        as i32,
                    reason: reason.clone(),
                },
                None => MutationResult {
                    seq: m.seq,
                    outcome: MutationOutcome::Duplicate as i32,
                    ..Default::default()
                },
            });
        }
        if fresh.is_empty() {
            return Ok((Ok(out), Rows::default()));
        }
        let (near, mid, far): (i64, i64, i64) = sqlx::query_as(
            "SELECT band_near_m, band_mid_m, band_far_m FROM distributors WHERE id = $1",
        )
        .bind(auth.distributor_id)
        .fetch_one(&mut **tx)
        .await?;
        let bands = Bands {
            near_m: near as u32,
            mid_m: mid as u32,
            far_m: far as u32,
        };
        let mut pic = match early {
            Some(pic) if job.seen_seq == last_seq => pic,
            _ => self.picture(tx, auth, &fresh).await?,
        };
        let mut w = Writes::default();
        for m in &fresh {
            let result = apply(&mut pic, &mut w, auth, bands, now, m);
            let (outcome, code, reason) = match result {
                Ok(true) => {
                    out.applied += 1;
                    (
                        MutationOutcome::Applied,
                        ErrorCode::Unspecified,
                        String::new(),
                    )
                }
                Ok(false) => {
                    out.duplicate += 1;
                    (
                        MutationOutcome::Duplicate,
                        ErrorCode::Unspecified,
                        String::new(),
                    )
                }
                Err((code, reason)) => {
                    out.refused += 1;
                    let mutation_id = ids::from_wire(&m.id)
                        .map(|u| u.to_string())
                        .unwrap_or_else(|| format!("invalid:{}", m.seq));
                    w.refused.push(vec![
                        Val::I(auth.device_id),
                        Val::I(auth.mobile_user_id),
                        Val::I(auth.distributor_id),
                        Val::S(session.id.to_string()),
                        Val::I(m.seq as i64),
                        Val::S(mutation_id),
                        Val::S(kind_name(m).into()),
                        Val::S(code.as_str_name().into()),
                        Val::S(reason.clone()),
                        Val::B(m.encode_to_vec()),
                        Val::I(m.device_time_ms),
                        Val::I(now),
                    ]);
                    (MutationOutcome::Refused, code, reason)
                }
            };
            out.results.push(MutationResult {
                seq: m.seq,
                outcome: outcome as i32,
                code: code as i32,
                reason,
            });
            out.acked_seq = m.seq;
        }
        Ok((Ok(out), Rows::from_writes(w, auth, session, now)))
    }

    /// Moves the device's sequence and adds the push to its session's counters.
    async fn count_push(
        &self,
        tx: &mut super::WriteTx,
        job: &PushJob,
        out: &PushOutcome,
    ) -> Result<()> {
        let (auth, session, now) = (&job.auth, &job.session, job.now);
        let bytes_down = v1::PushResponse {
            meta: Some(v1::ResponseMeta {
                server_time_ms: now,
                server_epoch: self.epoch().as_bytes().to_vec(),
            }),
            acked_seq: out.acked_seq,
            results: out.results.clone(),
        }
        .encoded_len() as i64;
        sqlx::query(
            "UPDATE devices SET last_seq = $1, last_sync_at_ms = $2,
                app_version = CASE WHEN $3 = '' THEN app_version ELSE $3 END WHERE id = $4",
        )
        .bind(out.acked_seq as i64)
        .bind(now)
        .bind(&session.app_version)
        .bind(auth.device_id)
        .execute(&mut **tx)
        .await?;
        sqlx::query(
            "UPDATE sync_sessions SET mutations_applied = mutations_applied + $1,
                mutations_duplicate = mutations_duplicate + $2, mutations_refused = mutations_refused + $3,
                requests = requests + 1, bytes_up = bytes_up + $4, bytes_down = bytes_down + $5,
                last_request_at_ms = $6, clock_skew_ms = CASE WHEN $7 = 0 THEN clock_skew_ms ELSE $7 END
             WHERE id = $8 AND device_id = $9",
        )
        .bind(out.applied as i64)
        .bind(out.duplicate as i64)
        .bind(out.refused as i64)
        .bind(job.bytes_up as i64)
        .bind(bytes_down)
        .bind(now)
        .bind(super::sessions::skew(session, now))
        .bind(session.id.to_string())
        .bind(auth.device_id)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// Reads everything the fresh mutations refer to, one query per kind.
    async fn picture(
        &self,
        conn: &mut AnyConnection,
        auth: &DeviceAuth,
        fresh: &[&v1::Mutation],
    ) -> Result<Picture> {
        let mut visit_ids = HashSet::new();
        let mut outlet_ids = HashSet::new();
        let mut product_ids = HashSet::new();
        let mut order_ids = HashSet::new();
        let mut answer_ids = HashSet::new();
        let mut check_ids = HashSet::new();
        let mut questionnaire_ids = HashSet::new();
        let mut need_price_lists = false;
        for m in fresh {
            match &m.kind {
                Some(Kind::VisitStarted(v)) => {
                    visit_ids.extend(ids::from_wire(&v.visit_id));
                    outlet_ids.insert(v.outlet_id);
                }
                Some(Kind::VisitEnded(v)) => {
                    visit_ids.extend(ids::from_wire(&v.visit_id));
                }
                Some(Kind::OrderPlaced(o)) => {
                    order_ids.extend(ids::from_wire(&o.order_id));
                    visit_ids.extend(ids::from_wire(&o.visit_id));
                    outlet_ids.insert(o.outlet_id);
                    product_ids.extend(o.lines.iter().map(|l| l.product_id));
                    need_price_lists = true;
                }
                Some(Kind::OrderCancelled(c)) => {
                    order_ids.extend(ids::from_wire(&c.order_id));
                }
                Some(Kind::QuestionnaireAnswered(q)) => {
                    answer_ids.extend(ids::from_wire(&q.answers_id));
                    visit_ids.extend(ids::from_wire(&q.visit_id));
                    questionnaire_ids.insert(q.questionnaire_id);
                }
                Some(Kind::DistributionChecked(d)) => {
                    check_ids.extend(ids::from_wire(&d.check_id));
                    visit_ids.extend(ids::from_wire(&d.visit_id));
                    product_ids.extend(d.items.iter().map(|i| i.product_id));
                }
                None => {}
            }
        }
        let mut pic = Picture::default();
        let visit_strs: Vec<String> = visit_ids.iter().map(|u| u.to_string()).collect();
        let visits = select_in!(
            conn,
            (String, i64, i64, Option<i64>),
            "SELECT id, mobile_user_id, outlet_id, ended_received_ms FROM visits WHERE id IN ({})",
            [],
            visit_strs.clone()
        );
        for (id, owner, outlet, ended) in visits {
            if let Ok(id) = Uuid::parse_str(&id) {
                outlet_ids.insert(outlet);
                pic.visits.insert(
                    id,
                    VisitState {
                        owner,
                        outlet_id: outlet,
                        ended: ended.is_some(),
                        stored: true,
                        fixes: Vec::new(),
                    },
                );
            }
        }
        // Fixes of stored, still open visits: an end re-classifies with all of them.
        let open_stored: Vec<String> = pic
            .visits
            .iter()
            .filter(|(_, v)| !v.ended && v.owner == auth.mobile_user_id)
            .map(|(id, _)| id.to_string())
            .collect();
        let fixes = select_in!(
            conn,
            (String, i64, i64, i64),
            "SELECT visit_id, lat_e7, lon_e7, accuracy_dm FROM gps_fixes WHERE visit_id IN ({})",
            [],
            open_stored
        );
        for (id, lat, lon, acc) in fixes {
            if let Some(v) = Uuid::parse_str(&id)
                .ok()
                .and_then(|id| pic.visits.get_mut(&id))
            {
                v.fixes.push(Fix {
                    lat_e7: lat as i32,
                    lon_e7: lon as i32,
                    accuracy_m: acc as f64 / 10.0,
                });
            }
        }
        let open: Option<(String,)> = sqlx::query_as(
            "SELECT id FROM visits WHERE device_id = $1 AND ended_received_ms IS NULL LIMIT 1",
        )
        .bind(auth.device_id)
        .fetch_optional(&mut *conn)
        .await?;
        pic.open_visit = open.and_then(|(id,)| Uuid::parse_str(&id).ok());
        let outlets = select_in!(
            conn,
            (i64, Option<i64>, Option<i64>),
            "SELECT id, lat_e7, lon_e7 FROM outlets
             WHERE distributor_id = $1 AND territory_id = $2 AND deleted = 0 AND id IN ({})",
            [auth.distributor_id, auth.territory_id],
            outlet_ids.into_iter().collect()
        );
        for (id, lat, lon) in outlets {
            pic.outlets
                .insert(id, lat.zip(lon).map(|(a, b)| (a as i32, b as i32)));
        }
        let products = select_in!(
            conn,
            (i64,),
            "SELECT id FROM products WHERE distributor_id = $1 AND deleted = 0 AND id IN ({})",
            [auth.distributor_id],
            product_ids.into_iter().collect()
        );
        pic.products = products.into_iter().map(|r| r.0).collect();
        if need_price_lists {
            let rows: Vec<(i64,)> =
                sqlx::query_as("SELECT id FROM price_lists WHERE distributor_id = $1")
                    .bind(auth.distributor_id)
                    .fetch_all(&mut *conn)
                    .await?;
            pic.price_lists = rows.into_iter().map(|r| r.0).collect();
            let rows: Vec<(i64,)> = sqlx::query_as(
                "SELECT warehouse_id FROM warehouse_positions WHERE position_id = $1 AND document_type = 'order'",
            )
            .bind(auth.position_id)
            .fetch_all(&mut *conn)
            .await?;
            pic.warehouses = rows.into_iter().map(|r| r.0).collect();
        }
        let orders = select_in!(
            conn,
            (String, i64, i64, String),
            "SELECT id, mobile_user_id, number, state FROM orders WHERE id IN ({})",
            [],
            order_ids.iter().map(|u| u.to_string()).collect()
        );
        for (id, owner, number, state) in orders {
            if let Ok(id) = Uuid::parse_str(&id) {
                pic.orders.insert(
                    id,
                    (
                        owner,
                        number,
                        OrderState::from_name(&state).unwrap_or(OrderState::Unspecified),
                    ),
                );
            }
        }
        // With the visit's owner: an id another user already used is refused, not taken for
        // a duplicate of one's own. The owner is a correlated lookup by primary key: written
        // as a join it cost PostgreSQL a third of its ingest throughput (measured).
        let answers = select_in!(
            conn,
            (String, i64),
            "SELECT DISTINCT a.answers_id,
                (SELECT v.mobile_user_id FROM visits v WHERE v.id = a.visit_id)
             FROM questionnaire_answers a WHERE a.answers_id IN ({})",
            [],
            answer_ids.iter().map(|u| u.to_string()).collect()
        );
        pic.answer_sets = answers
            .iter()
            .filter_map(|r| Some((Uuid::parse_str(&r.0).ok()?, r.1)))
            .collect();
        let checks = select_in!(
            conn,
            (String, i64),
            "SELECT DISTINCT d.check_id,
                (SELECT v.mobile_user_id FROM visits v WHERE v.id = d.visit_id)
             FROM distribution_checks d WHERE d.check_id IN ({})",
            [],
            check_ids.iter().map(|u| u.to_string()).collect()
        );
        pic.checks = checks
            .iter()
            .filter_map(|r| Some((Uuid::parse_str(&r.0).ok()?, r.1)))
            .collect();
        for qid in questionnaire_ids {
            if let Some(defs) = load_questionnaire(conn, auth.distributor_id, qid).await? {
                pic.questionnaires.insert(qid, defs);
            }
        }
        Ok(pic)
    }

    /// Writes the rows of one or more pushes, one multi-row statement per table.
    async fn write_rows(&self, tx: &mut super::WriteTx, mut r: Rows) -> Result<()> {
        insert_rows(
            tx,
            "visits",
            &[
                "id",
                "distributor_id",
                "device_id",
                "mobile_user_id",
                "position_id",
                "outlet_id",
                "route_id",
                "session_id",
                "started_device_ms",
                "started_received_ms",
                "ended_device_ms",
                "ended_received_ms",
                "location_band",
                "distance_m",
                "accuracy_m",
                "mock_location",
            ],
            &r.visits,
        )
        .await?;
        for (id, ended_device, band, distance, mock, now) in &r.ended_stored {
            let q = sqlx::query(
                "UPDATE visits SET ended_device_ms = COALESCE($1, started_device_ms), ended_received_ms = $2,
                    location_band = $3, distance_m = $4, mock_location = CASE WHEN $5 = 1 THEN 1 ELSE mock_location END
                 WHERE id = $6",
            )
            .bind(*ended_device)
            .bind(*now)
            .bind(*band);
            // See `Val::F`: a NULL float goes as f32 to dodge a sqlx Any bug on PostgreSQL.
            let q = match distance {
                Some(d) => q.bind(*d),
                None => q.bind(None::<f32>),
            };
            q.bind(*mock as i64)
                .bind(id.to_string())
                .execute(&mut **tx)
                .await?;
        }
        insert_rows(
            tx,
            "gps_fixes",
            &[
                "visit_id",
                "phase",
                "fix_no",
                "lat_e7",
                "lon_e7",
                "accuracy_dm",
                "provider",
                "mock",
                "device_time_ms",
                "received_at_ms",
            ],
            &r.fixes,
        )
        .await?;
        let numbers = self.order_numbers(tx, r.orders.len()).await?;
        for (row, number) in r.orders.iter_mut().zip(numbers) {
            row[1] = Val::I(number);
        }
        insert_rows(
            tx,
            "orders",
            &[
                "id",
                "number",
                "distributor_id",
                "device_id",
                "mobile_user_id",
                "position_id",
                "visit_id",
                "outlet_id",
                "price_list_id",
                "warehouse_id",
                "total_minor",
                "line_count",
                "comment",
                "delivery_date",
                "state",
                "state_reason",
                "placed_device_ms",
                "received_at_ms",
                "state_changed_ms",
                "session_id",
            ],
            &r.orders,
        )
        .await?;
        insert_rows(
            tx,
            "order_lines",
            &[
                "order_id",
                "line_no",
                "product_id",
                "quantity_milli",
                "price_minor",
                "sum_minor",
                "comment",
            ],
            &r.lines,
        )
        .await?;
        for (id, number, reason, now, distributor_id, position_id) in &r.cancels {
            sqlx::query(
                "UPDATE orders SET state = 'cancelled', state_reason = $1, state_changed_ms = $2 WHERE id = $3",
            )
            .bind(reason)
            .bind(*now)
            .bind(id.to_string())
            .execute(&mut **tx)
            .await?;
            record_changes(
                tx,
                *distributor_id,
                &[ChangeRef::upsert(
                    v1::EntityKind::OrderStatus,
                    *number,
                    *position_id,
                )],
            )
            .await?;
        }
        insert_rows(
            tx,
            "questionnaire_answers",
            &[
                "answers_id",
                "visit_id",
                "questionnaire_id",
                "question_id",
                "value_kind",
                "value_text",
                "value_number",
            ],
            &r.answers,
        )
        .await?;
        insert_rows(
            tx,
            "distribution_checks",
            &["check_id", "visit_id", "product_id", "present"],
            &r.checks,
        )
        .await?;
        insert_rows(
            tx,
            "sync_session_items",
            &[
                "session_id",
                "item_kind",
                "visit_id",
                "outlet_id",
                "order_id",
                "order_total_minor",
            ],
            &r.items,
        )
        .await?;
        insert_rows(
            tx,
            "refused_mutations",
            &[
                "device_id",
                "mobile_user_id",
                "distributor_id",
                "session_id",
                "seq",
                "mutation_id",
                "mutation_kind",
                "error_code",
                "reason",
                "payload",
                "device_time_ms",
                "received_at_ms",
            ],
            &r.refused,
        )
        .await?;
        Ok(())
    }

    /// Hands out `n` new order numbers.
    async fn order_numbers(&self, tx: &mut super::WriteTx, n: usize) -> Result<Vec<i64>> {
        if n == 0 {
            return Ok(Vec::new());
        }
        Ok(match self.backend() {
            Backend::Postgres => {
                let rows: Vec<(i64,)> = sqlx::query_as(
                    "SELECT nextval('order_number_seq') FROM generate_series(1, $1)",
                )
                .bind(n as i64)
                .fetch_all(&mut **tx)
                .await?;
                rows.into_iter().map(|r| r.0).collect()
            }
            Backend::Sqlite => {
                let (last,): (i64,) =
                    sqlx::query_as("UPDATE counters SET value = value + $1 WHERE name = 'order_number' RETURNING value")
                        .bind(n as i64)
                        .fetch_one(&mut **tx)
                        .await?;
                (last - n as i64 + 1..=last).collect()
            }
        })
    }
}

async fn load_questionnaire(
    conn: &mut AnyConnection,
    distributor_id: i64,
    id: i64,
) -> Result<Option<v1::Questionnaire>> {
    let found: Option<(i64,)> = sqlx::query_as(
        "SELECT id FROM questionnaires WHERE id = $1 AND distributor_id = $2 AND active = 1",
    )
    .bind(id)
    .bind(distributor_id)
    .fetch_optional(&mut *conn)
    .await?;
    if found.is_none() {
        return Ok(None);
    }
    let questions: Vec<(i64, String, i64, Option<i64>, i64, Option<i64>)> = sqlx::query_as(
        "SELECT id, question_type, required, condition_question_id, condition_yes, condition_choice_id
         FROM questions WHERE questionnaire_id = $1 ORDER BY position",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    let choices: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT c.question_id, c.id FROM question_choices c JOIN questions q ON q.id = c.question_id
         WHERE q.questionnaire_id = $1",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    let questions = questions
        .into_iter()
        .map(|(qid, kind, required, cq, cy, cc)| {
            let mut q = v1::Question {
                id: qid,
                required: required != 0,
                condition: cq.map(|question_id| v1::Condition {
                    question_id,
                    equals_yes: cy != 0,
                    equals_choice_id: cc.unwrap_or(0),
                }),
                choices: choices
                    .iter()
                    .filter(|c| c.0 == qid)
                    .map(|c| v1::Choice {
                        id: c.1,
                        label: String::new(),
                    })
                    .collect(),
                ..Default::default()
            };
            q.set_type(questionnaire::type_from_name(&kind));
            q
        })
        .collect();
    Ok(Some(v1::Questionnaire {
        id,
        name: String::new(),
        questions,
    }))
}

/// Validates one mutation against the picture and records its effects. `Ok(true)` applied,
/// `Ok(false)` already there, `Err` refused with a reason. A refusal changes nothing.
fn apply(
    pic: &mut Picture,
    w: &mut Writes,
    auth: &DeviceAuth,
    bands: Bands,
    now: i64,
    m: &v1::Mutation,
) -> Checked<bool> {
    if ids::from_wire(&m.id).is_none() {
        return refuse(
            ErrorCode::InvalidMutation,
            "mutation id must be a 16-byte UUID",
        );
    }
    let user = auth.mobile_user_id;
    let own_visit = |pic: &Picture, id: Uuid| -> Checked<()> {
        match pic.visits.get(&id) {
            Some(v) if v.owner == user => Ok(()),
            _ => refuse(
                ErrorCode::UnknownReference,
                format!("visit {id} was never started by this mobile user"),
            ),
        }
    };
    match &m.kind {
        None => refuse(ErrorCode::InvalidMutation, "the mutation carries no action"),
        Some(Kind::VisitStarted(v)) => {
            let visit_id = parse_id(&v.visit_id, "visit_id")?;
            check_fixes(&v.fixes)?;
            if let Some(known) = stored_id(pic.visits.get(&visit_id).map(|v| v.owner), user) {
                return known.map_err(|()| taken("visit id", visit_id));
            }
            let Some(reference) = pic.outlets.get(&v.outlet_id).copied() else {
                return refuse(
                    ErrorCode::NotVisible,
                    format!("outlet {} is not in this device's territory", v.outlet_id),
                );
            };
            if let Some(open) = pic.open_visit {
                return refuse(
                    ErrorCode::VisitAlreadyOpen,
                    format!("visit {open} is still in progress; end it before starting another"),
                );
            }
            let fixes: Vec<Fix> = v.fixes.iter().map(to_fix).collect();
            let class = location::classify(&fixes, reference, bands);
            push_fixes(w, visit_id, "start", &v.fixes, now);
            w.new_visits.push(NewVisit {
                id: visit_id,
                outlet_id: v.outlet_id,
                route_id: (v.route_id > 0).then_some(v.route_id),
                started_device_ms: m.device_time_ms,
                ended_device_ms: None,
                ended: false,
                band: class.band.as_str(),
                distance_m: class.distance_m,
                accuracy_m: v
                    .fixes
                    .iter()
                    .map(|f| f.accuracy_dm as f64 / 10.0)
                    .reduce(f64::min),
                mock: v.fixes.iter().any(|f| f.mock),
            });
            pic.visits.insert(
                visit_id,
                VisitState {
                    owner: user,
                    outlet_id: v.outlet_id,
                    ended: false,
                    stored: false,
                    fixes,
                },
            );
            pic.open_visit = Some(visit_id);
            Ok(true)
        }
        Some(Kind::VisitEnded(v)) => {
            let visit_id = parse_id(&v.visit_id, "visit_id")?;
            check_fixes(&v.fixes)?;
            own_visit(pic, visit_id)?;
            let state = pic.visits.get_mut(&visit_id).expect("checked");
            if state.ended {
                return Ok(false);
            }
            state.ended = true;
            state.fixes.extend(v.fixes.iter().map(to_fix));
            let reference = pic.outlets.get(&state.outlet_id).copied().flatten();
            let class = location::classify(&state.fixes, reference, bands);
            let ended_device = Some(m.device_time_ms);
            let mock = v.fixes.iter().any(|f| f.mock);
            if state.stored {
                w.ended_stored.push((
                    visit_id,
                    ended_device,
                    class.band.as_str(),
                    class.distance_m,
                    mock,
                ));
            } else if let Some(nv) = w.new_visits.iter_mut().find(|nv| nv.id == visit_id) {
                nv.ended = true;
                nv.ended_device_ms = ended_device;
                nv.band = class.band.as_str();
                nv.distance_m = class.distance_m;
                nv.mock |= mock;
            }
            push_fixes(w, visit_id, "end", &v.fixes, now);
            if pic.open_visit == Some(visit_id) {
                pic.open_visit = None;
            }
            Ok(true)
        }
        Some(Kind::OrderPlaced(o)) => {
            let order_id = parse_id(&o.order_id, "order_id")?;
            if let Some(known) = stored_id(pic.orders.get(&order_id).map(|o| o.0), user) {
                return known.map_err(|()| taken("order id", order_id));
            }
            let visit_id = if o.visit_id.is_empty() {
                None
            } else {
                let id = parse_id(&o.visit_id, "visit_id")?;
                own_visit(pic, id)?;
                Some(id)
            };
            if !pic.outlets.contains_key(&o.outlet_id) {
                return refuse(
                    ErrorCode::NotVisible,
                    format!("outlet {} is not in this device's territory", o.outlet_id),
                );
            }
            if o.lines.is_empty() {
                return refuse(
                    ErrorCode::InvalidMutation,
                    "an order needs at least one line",
                );
            }
            if o.lines.len() > 1000 {
                return refuse(
                    ErrorCode::InvalidMutation,
                    "an order has at most 1000 lines",
                );
            }
            if !pic.price_lists.contains(&o.price_list_id) {
                return refuse(
                    ErrorCode::NotVisible,
                    format!("price list {} is not available", o.price_list_id),
                );
            }
            if !pic.warehouses.contains(&o.warehouse_id) {
                return refuse(
                    ErrorCode::NotVisible,
                    format!(
                        "warehouse {} is not bound to this position for orders",
                        o.warehouse_id
                    ),
                );
            }
            for (i, line) in o.lines.iter().enumerate() {
                if !pic.products.contains(&line.product_id) {
                    return refuse(
                        ErrorCode::NotVisible,
                        format!(
                            "line {}: product {} is not available",
                            i + 1,
                            line.product_id
                        ),
                    );
                }
                if line.quantity_milli <= 0 {
                    return refuse(
                        ErrorCode::InvalidMutation,
                        format!("line {}: quantity must be positive", i + 1),
                    );
                }
                if money::line_sum(line.quantity_milli, line.price_minor) != Some(line.sum_minor) {
                    return refuse(
                        ErrorCode::OrderSumsMismatch,
                        format!(
                            "line {}: sum {} does not equal quantity {} x price {}",
                            i + 1,
                            line.sum_minor,
                            line.quantity_milli,
                            line.price_minor
                        ),
                    );
                }
            }
            if money::order_total(o.lines.iter().map(|l| l.sum_minor)) != Some(o.total_minor) {
                return refuse(
                    ErrorCode::OrderSumsMismatch,
                    format!(
                        "order total {} does not equal the sum of its lines",
                        o.total_minor
                    ),
                );
            }
            if !o.delivery_date.is_empty() && !dates::is_date(&o.delivery_date) {
                return refuse(
                    ErrorCode::InvalidMutation,
                    "delivery_date must be YYYY-MM-DD",
                );
            }
            pic.orders.insert(order_id, (user, 0, OrderState::Placed));
            w.orders.push(NewOrder {
                id: order_id,
                visit_id,
                placed_device_ms: m.device_time_ms,
                o: o.clone(),
                cancel_reason: None,
            });
            Ok(true)
        }
        Some(Kind::OrderCancelled(c)) => {
            let order_id = parse_id(&c.order_id, "order_id")?;
            let Some((owner, number, state)) = pic.orders.get_mut(&order_id) else {
                return refuse(
                    ErrorCode::UnknownReference,
                    format!("order {order_id} is unknown"),
                );
            };
            if *owner != user {
                return refuse(
                    ErrorCode::UnknownReference,
                    format!("order {order_id} is unknown"),
                );
            }
            if *state == OrderState::Cancelled {
                return Ok(false);
            }
            if !state.agent_may_cancel() {
                return refuse(
                    ErrorCode::InvalidState,
                    format!(
                        "order {order_id} is {} at the distributor and can no longer be cancelled",
                        state.name()
                    ),
                );
            }
            *state = OrderState::Cancelled;
            if *number == 0 {
                // Placed in this very batch: it is written as cancelled.
                if let Some(o) = w.orders.iter_mut().find(|o| o.id == order_id) {
                    o.cancel_reason = Some(c.reason.chars().take(1000).collect());
                }
                return Ok(true);
            }
            w.cancels
                .push((order_id, *number, c.reason.chars().take(1000).collect()));
            Ok(true)
        }
        Some(Kind::QuestionnaireAnswered(q)) => {
            let answers_id = parse_id(&q.answers_id, "answers_id")?;
            let visit_id = parse_id(&q.visit_id, "visit_id")?;
            if let Some(known) = stored_id(pic.answer_sets.get(&answers_id).copied(), user) {
                return known.map_err(|()| taken("answers id", answers_id));
            }
            own_visit(pic, visit_id)?;
            let Some(form) = pic.questionnaires.get(&q.questionnaire_id) else {
                return refuse(
                    ErrorCode::NotVisible,
                    format!("questionnaire {} is not available", q.questionnaire_id),
                );
            };
            if let Err(problem) = questionnaire::validate(form, &q.answers) {
                return refuse(ErrorCode::InvalidMutation, problem.to_string());
            }
            let rows = answer_rows(&q.answers);
            w.answers
                .extend(rows.into_iter().map(|(question_id, kind, text, number)| {
                    vec![
                        Val::S(answers_id.to_string()),
                        Val::S(visit_id.to_string()),
                        Val::I(q.questionnaire_id),
                        Val::I(question_id),
                        Val::S(kind.to_string()),
                        Val::S(text),
                        Val::F(number),
                    ]
                }));
            pic.answer_sets.insert(answers_id, user);
            Ok(true)
        }
        Some(Kind::DistributionChecked(d)) => {
            let check_id = parse_id(&d.check_id, "check_id")?;
            let visit_id = parse_id(&d.visit_id, "visit_id")?;
            if let Some(known) = stored_id(pic.checks.get(&check_id).copied(), user) {
                return known.map_err(|()| taken("check id", check_id));
            }
            own_visit(pic, visit_id)?;
            if d.items.is_empty() {
                return refuse(
                    ErrorCode::InvalidMutation,
                    "a distribution check needs at least one product",
                );
            }
            let mut seen = HashSet::new();
            for item in &d.items {
                if !seen.insert(item.product_id) {
                    return refuse(
                        ErrorCode::InvalidMutation,
                        format!("product {} is checked twice", item.product_id),
                    );
                }
                if !pic.products.contains(&item.product_id) {
                    return refuse(
                        ErrorCode::NotVisible,
                        format!("product {} is not available", item.product_id),
                    );
                }
            }
            w.checks.extend(d.items.iter().map(|i| {
                vec![
                    Val::S(check_id.to_string()),
                    Val::S(visit_id.to_string()),
                    Val::I(i.product_id),
                    Val::I(i.present as i64),
                ]
            }));
            pic.checks.insert(check_id, user);
            Ok(true)
        }
    }
}

fn push_fixes(w: &mut Writes, visit_id: Uuid, phase: &str, fixes: &[v1::GpsFix], now: i64) {
    w.fixes.extend(fixes.iter().enumerate().map(|(i, f)| {
        vec![
            Val::S(visit_id.to_string()),
            Val::S(phase.to_string()),
            Val::I(i as i64),
            Val::I(f.lat_e7 as i64),
            Val::I(f.lon_e7 as i64),
            Val::I(f.accuracy_dm as i64),
            Val::S(provider_name(f.provider).to_string()),
            Val::I(f.mock as i64),
            Val::I(f.device_time_ms),
            Val::I(now),
        ]
    }));
}

/// The rows a validated questionnaire is stored as: (question id, value kind, text, number).
fn answer_rows(answers: &[v1::Answer]) -> Vec<(i64, &'static str, String, Option<f64>)> {
    use v1::answer::Value;
    answers
        .iter()
        .filter_map(|a| {
            let (kind, text, number) = match a.value.as_ref()? {
                Value::YesNo(b) => (
                    "yes_no",
                    if *b { "yes" } else { "no" }.to_string(),
                    Some(*b as i64 as f64),
                ),
                Value::Number(n) => ("number", n.to_string(), Some(*n)),
                Value::Text(t) => ("text", t.clone(), None),
                Value::SingleChoice(c) => ("single_choice", c.to_string(), None),
                Value::MultipleChoice(c) => (
                    "multiple_choice",
                    c.ids
                        .iter()
                        .map(|i| i.to_string())
                        .collect::<Vec<_>>()
                        .join(","),
                    None,
                ),
                Value::Date(d) => ("date", d.clone(), None),
            };
            Some((a.question_id, kind, text, number))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seed::{WorldSpec, seed_world};
    use crate::store::devices::DeviceInfo;

    /// A store on a fresh SQLite file with a small seeded world of `agents` agents.
    async fn sqlite_world(
        agents: usize,
    ) -> (tempfile::TempDir, Store, Vec<crate::seed::SeededAgent>) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("ingest.db").display());
        let store = Store::connect(&url).await.unwrap();
        let spec = WorldSpec {
            agents,
            outlets: agents * 20,
            products: 20,
            ..WorldSpec::demo()
        };
        let seeded = seed_world(&store, &spec).await.unwrap();
        (dir, store, seeded)
    }

    async fn phone(store: &Store, agent: &crate::seed::SeededAgent) -> DeviceAuth {
        let device = DeviceInfo {
            device_uid: format!("uid-{}", agent.login),
            ..Default::default()
        };
        store
            .activate(&agent.login, &agent.pin, &device)
            .await
            .unwrap()
            .expect("the seeded PIN activates")
            .auth
    }

    /// A batch of one mutation: a visit started at the first outlet of the phone's territory.
    async fn visit_started(store: &Store, auth: &DeviceAuth) -> (Uuid, Vec<v1::Mutation>) {
        let (outlet, lat, lon): (i64, i64, i64) = sqlx::query_as(
            "SELECT id, lat_e7, lon_e7 FROM outlets WHERE territory_id = $1 ORDER BY id LIMIT 1",
        )
        .bind(auth.territory_id)
        .fetch_one(store.pool())
        .await
        .unwrap();
        let visit = ids::new_id();
        let fix = v1::GpsFix {
            lat_e7: lat as i32,
            lon_e7: lon as i32,
            accuracy_dm: 80,
            provider: v1::LocationProvider::Gps as i32,
            mock: false,
            device_time_ms: now_ms(),
        };
        let m = v1::Mutation {
            seq: 1,
            id: ids::to_wire(ids::new_id()),
            device_time_ms: now_ms(),
            kind: Some(Kind::VisitStarted(v1::VisitStarted {
                visit_id: ids::to_wire(visit),
                outlet_id: outlet,
                route_id: 0,
                fixes: vec![fix],
            })),
        };
        (visit, vec![m])
    }

    fn session() -> SessionCtx {
        SessionCtx {
            id: ids::new_id(),
            mode: v1::SyncMode::Incremental,
            app_version: "test".into(),
            device_time_ms: now_ms(),
        }
    }

    async fn visits_of(store: &Store, visit: Uuid) -> i64 {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM visits WHERE id = $1")
            .bind(visit.to_string())
            .fetch_one(store.pool())
            .await
            .unwrap();
        n
    }

    /// The phone's retry of a batch that was not written is applied as new, once.
    async fn retry_is_applied(
        store: &Store,
        auth: &DeviceAuth,
        visit: Uuid,
        batch: Vec<v1::Mutation>,
    ) {
        let again = store
            .push(auth, &session(), batch, 100)
            .await
            .unwrap()
            .expect("the retry is accepted");
        assert_eq!((again.applied, again.duplicate), (1, 0));
        assert_eq!(visits_of(store, visit).await, 1);
    }

    /// SQLite: a push that waits for the writer and whose request goes away meanwhile (the
    /// phone's connection dropped) is not written with the next group; the phone's retry of the
    /// same batch is then applied as new, not answered as a duplicate of something it was never
    /// told about.
    #[tokio::test]
    async fn queued_pushes_whose_requests_went_away_are_not_written() {
        let (_dir, store, agents) = sqlite_world(2).await;
        let (a, b) = (
            phone(&store, &agents[0]).await,
            phone(&store, &agents[1]).await,
        );
        let (visit_a, batch_a) = visit_started(&store, &a).await;
        let (visit_b, batch_b) = visit_started(&store, &b).await;

        // The writer is busy: both pushes queue behind it.
        let writer = store.write_gate.clone().acquire_owned().await.unwrap();
        let push_a = tokio::spawn({
            let (store, a, batch) = (store.clone(), a.clone(), batch_a.clone());
            async move { store.push(&a, &session(), batch, 100).await }
        });
        let push_b = tokio::spawn({
            let (store, b, batch) = (store.clone(), b.clone(), batch_b.clone());
            async move { store.push(&b, &session(), batch, 100).await }
        });
        let queued = || store.ingest_queue.lock().unwrap().len();
        for _ in 0..500 {
            if queued() == 2 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(queued(), 2, "both pushes wait for the writer");
        // B's request goes away.
        push_b.abort();
        assert!(push_b.await.unwrap_err().is_cancelled());
        drop(writer);

        let outcome = push_a.await.unwrap().unwrap().expect("A is accepted");
        assert_eq!((outcome.acked_seq, outcome.applied), (1, 1));
        assert_eq!(visits_of(&store, visit_a).await, 1);
        assert_eq!(visits_of(&store, visit_b).await, 0, "B's push was dropped");
        assert_eq!(queued(), 0);
        let (seq,): (i64,) = sqlx::query_as("SELECT last_seq FROM devices WHERE id = $1")
            .bind(b.device_id)
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert_eq!(seq, 0);

        // The phone sends the batch again: applied now, once.
        retry_is_applied(&store, &b, visit_b, batch_b).await;
        store.close().await;
    }

    /// SQLite: if the writer takes a queued push and goes away without answering (its task
    /// panicked), the push's request gets a storage error, which the phone receives as 503
    /// "unavailable, try again"; nothing of it was written and its retry is applied.
    #[tokio::test]
    async fn a_writer_that_dies_without_answering_means_try_again() {
        let (_dir, store, agents) = sqlite_world(1).await;
        let a = phone(&store, &agents[0]).await;
        let (visit, batch) = visit_started(&store, &a).await;

        let writer = store.write_gate.clone().acquire_owned().await.unwrap();
        let push = tokio::spawn({
            let (store, a, batch) = (store.clone(), a.clone(), batch.clone());
            async move { store.push(&a, &session(), batch, 100).await }
        });
        let mut taken = Vec::new();
        for _ in 0..500 {
            taken.extend(store.ingest_queue.lock().unwrap().drain(..));
            if !taken.is_empty() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(taken.len(), 1, "the push waits for the writer");
        // The writer that took it dies: its reply is dropped unanswered.
        drop(taken);
        let err = tokio::time::timeout(std::time::Duration::from_secs(20), push)
            .await
            .expect("the push is answered while the writer's gate is still held")
            .unwrap()
            .expect_err("no answer is an error");
        let http = crate::error::AppError::from(err);
        assert_eq!(
            (http.status, http.code),
            (
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::Unavailable
            )
        );
        assert_eq!(visits_of(&store, visit).await, 0);
        drop(writer);

        retry_is_applied(&store, &a, visit, batch).await;
        store.close().await;
    }
}
