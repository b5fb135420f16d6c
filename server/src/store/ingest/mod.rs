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
//!
//! Read it top to bottom: [`Store::push`] (this file) takes a batch to a transaction, alone
//! on PostgreSQL or through the group-commit queue on SQLite (`queue.rs`); [`Store::stage`]
//! checks the device row and runs the batch: `picture.rs` reads what it refers to, `rules.rs`
//! decides each mutation with no database at all, `rows.rs` turns the decisions into rows and
//! writes them; `metrics.rs` counts transactions for `/metrics`.
mod metrics;
mod picture;
mod queue;
mod rows;
mod rules;
mod truth;

pub use metrics::IngestStats;
pub(crate) use queue::IngestQueue;
use rows::{RefusedRow, Rows};
use rules::{Picture, Writes, apply};

use super::devices::DeviceAuth;
use super::outlet_cards;
use super::sessions::SessionCtx;
use super::{Backend, Result, Store, now_ms};
use fieldsync_protocol::ids;
use fieldsync_protocol::location::Bands;
use fieldsync_protocol::v1::{self, ErrorCode, MutationOutcome, MutationResult, mutation::Kind};
use prost::Message;
use std::collections::HashMap;

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

/// Stable name of a mutation's kind, for logs and the refused list.
pub fn kind_name(m: &v1::Mutation) -> &'static str {
    m.kind.as_ref().map_or("empty", Kind::name)
}

/// One push request on its way through ingest.
pub(crate) struct PushJob {
    auth: DeviceAuth,
    session: SessionCtx,
    mutations: Vec<v1::Mutation>,
    bytes_up: u64,
    /// How many bytes the answer to this push will take on the wire (the sync layer's
    /// measure of what it sends), for the session's counters.
    response_len: ResponseLen,
    now: i64,
    /// The device's `last_seq` when `early` was read.
    seen_seq: u64,
    /// What the fresh mutations refer to, read before taking the write lock.
    early: Option<Picture>,
}

/// The length in bytes of the answer the sync layer sends for a push outcome.
pub type ResponseLen = fn(&PushOutcome) -> u64;

pub type PushResult = Result<std::result::Result<PushOutcome, BatchRefusal>>;

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
        response_len: ResponseLen,
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
            response_len,
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

    /// Stages every job in the transaction, writes their rows together, counts them.
    async fn run_jobs(
        &self,
        tx: &mut crate::store::WriteTx,
        jobs: &mut [PushJob],
    ) -> Result<Vec<std::result::Result<PushOutcome, BatchRefusal>>> {
        let mut outcomes = Vec::with_capacity(jobs.len());
        let mut rows = Rows::default();
        for job in jobs.iter_mut() {
            let (outcome, job_rows) = self.stage(tx, job).await?;
            rows.append(job_rows);
            outcomes.push(outcome);
        }
        let touched = std::mem::take(&mut rows.touched_visits);
        let started: std::collections::HashSet<String> =
            rows.visits.iter().map(|v| v.id.clone()).collect();
        let batch_fixes = truth::fixes_of(&rows.fixes, &started);
        let numbers = self.write_rows(tx, rows).await?;
        truth::record_signals(tx, &touched, &started, batch_fixes).await?;
        self.answer_order_numbers(tx, jobs, &mut outcomes, numbers)
            .await?;
        for (job, outcome) in jobs.iter().zip(&outcomes) {
            if let Ok(out) = outcome {
                self.count_push(tx, job, out).await?;
            }
        }
        Ok(outcomes)
    }

    /// Puts the number of each order placed (now, or earlier for a DUPLICATE) into its
    /// mutation's result, so the phone learns it from the push's answer. Orders stored by an
    /// earlier batch are read in one statement.
    async fn answer_order_numbers(
        &self,
        tx: &mut crate::store::WriteTx,
        jobs: &[PushJob],
        outcomes: &mut [std::result::Result<PushOutcome, BatchRefusal>],
        mut numbers: HashMap<String, i64>,
    ) -> Result<()> {
        let mut placed: Vec<(usize, usize, String)> = Vec::new();
        for (j, (job, outcome)) in jobs.iter().zip(outcomes.iter()).enumerate() {
            let Ok(out) = outcome else { continue };
            for (r, result) in out.results.iter().enumerate() {
                if result.outcome == MutationOutcome::Refused as i32 {
                    continue;
                }
                let order =
                    job.mutations
                        .iter()
                        .find(|m| m.seq == result.seq)
                        .and_then(|m| match &m.kind {
                            Some(Kind::OrderPlaced(o)) => ids::from_wire(&o.order_id),
                            _ => None,
                        });
                if let Some(order) = order {
                    placed.push((j, r, order.to_string()));
                }
            }
        }
        // Orders stored by earlier batches, each read as its own mobile user's only.
        let mut earlier: HashMap<i64, Vec<String>> = HashMap::new();
        for (j, _, order) in &placed {
            if !numbers.contains_key(order) {
                earlier
                    .entry(jobs[*j].auth.mobile_user_id)
                    .or_default()
                    .push(order.clone());
            }
        }
        for (user, orders) in earlier {
            let found = crate::store::sql::select_in!(
                *tx,
                (String, i64),
                "SELECT id, number FROM orders WHERE mobile_user_id = $1 AND id IN ({})",
                [user],
                orders
            );
            numbers.extend(found);
        }
        for (j, r, order) in placed {
            if let (Ok(out), Some(n)) = (&mut outcomes[j], numbers.get(&order)) {
                out.results[r].order_number = *n;
            }
        }
        Ok(())
    }

    /// Checks a job against the device row and validates its mutations, under the lock.
    /// Nothing is written for a refused batch.
    async fn stage(
        &self,
        tx: &mut crate::store::WriteTx,
        job: &mut PushJob,
    ) -> Result<(std::result::Result<PushOutcome, BatchRefusal>, Rows)> {
        let early = job.early.take();
        let (auth, session, mutations, now) = (&job.auth, &job.session, &job.mutations, job.now);
        let sql = format!(
            "SELECT last_seq, revoked_at_ms, last_device_ms FROM devices WHERE id = $1{}",
            self.for_update()
        );
        let (last_seq, revoked, last_device_ms): (i64, Option<i64>, Option<i64>) =
            sqlx::query_as(sqlx::AssertSqlSafe(sql))
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
                    order_number: 0,
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
        picture::recheck_questionnaires(tx, auth.distributor_id, &mut pic).await?;
        // Cards are read only now, under their row locks: a card's document read before the
        // lock could miss another device's change committed meanwhile.
        let card_ids: Vec<i64> = fresh
            .iter()
            .filter_map(|m| match &m.kind {
                Some(Kind::CardChanged(c)) if pic.outlets.contains_key(&c.outlet_id) => {
                    Some(c.outlet_id)
                }
                _ => None,
            })
            .collect();
        if !card_ids.is_empty() {
            pic.cards =
                outlet_cards::lock_cards(tx, self.for_update(), auth.distributor_id, &card_ids)
                    .await?;
            pic.card_actors = outlet_cards::device_actors(tx, auth.mobile_user_id).await?;
        }
        let mut w = Writes::default();
        // The device time of the action the device recorded before each mutation: the one
        // before it in this batch, or the last one of the device's previous batch.
        let mut preceding = mutations
            .iter()
            .rev()
            .find(|m| m.seq <= last_seq)
            .map(|m| m.device_time_ms)
            .or(last_device_ms);
        for m in &fresh {
            let started = w.new_visits.len();
            let result = apply(&mut pic, &mut w, auth, bands, now, m);
            if w.new_visits.len() > started
                && let Some(v) = w.new_visits.last_mut()
            {
                v.preceding_device_ms = preceding;
            }
            preceding = Some(m.device_time_ms);
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
                    w.refused.push(RefusedRow {
                        device_id: auth.device_id,
                        mobile_user_id: auth.mobile_user_id,
                        distributor_id: auth.distributor_id,
                        session_id: session.id.to_string(),
                        seq: m.seq as i64,
                        mutation_id,
                        mutation_kind: kind_name(m).into(),
                        error_code: code.as_str_name().into(),
                        reason: reason.clone(),
                        payload: m.encode_to_vec(),
                        device_time_ms: m.device_time_ms,
                        received_at_ms: now,
                    });
                    (MutationOutcome::Refused, code, reason)
                }
            };
            out.results.push(MutationResult {
                seq: m.seq,
                outcome: outcome as i32,
                code: code as i32,
                reason,
                order_number: 0,
            });
            out.acked_seq = m.seq;
        }
        // Written now, not with the batch's other rows: a later push of the same group
        // (SQLite) that changes the same card must read this push's document.
        let card_changes = std::mem::take(&mut w.card_changes);
        let scopes: HashMap<i64, i64> = card_changes
            .iter()
            .map(|c| (c.outlet_id, auth.territory_id))
            .collect();
        outlet_cards::store_changes(
            tx,
            auth.distributor_id,
            &scopes,
            &card_changes,
            &pic.cards,
            now,
        )
        .await?;
        Ok((Ok(out), Rows::from_writes(w, auth, session, now)))
    }

    /// Moves the device's sequence and adds the push to its session's counters.
    async fn count_push(
        &self,
        tx: &mut crate::store::WriteTx,
        job: &PushJob,
        out: &PushOutcome,
    ) -> Result<()> {
        let (auth, session, now) = (&job.auth, &job.session, job.now);
        let bytes_down = (job.response_len)(out) as i64;
        sqlx::query(
            "UPDATE devices SET last_seq = $1, last_sync_at_ms = $2,
                app_version = CASE WHEN $3 = '' THEN app_version ELSE $3 END,
                last_device_ms = COALESCE($4, last_device_ms) WHERE id = $5",
        )
        .bind(out.acked_seq as i64)
        .bind(now)
        .bind(&session.app_version)
        .bind(
            job.mutations
                .iter()
                .rfind(|m| m.seq <= out.acked_seq)
                .map(|m| m.device_time_ms),
        )
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
        .bind(crate::store::sessions::skew(session, now))
        .bind(session.id.to_string())
        .bind(auth.device_id)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seed::{WorldSpec, seed_world};
    use crate::store::devices::DeviceInfo;
    use uuid::Uuid;

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
            utc_offset_min: 0,
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
            .push(auth, &session(), batch, 100, |_| 0)
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
            async move { store.push(&a, &session(), batch, 100, |_| 0).await }
        });
        let push_b = tokio::spawn({
            let (store, b, batch) = (store.clone(), b.clone(), batch_b.clone());
            async move { store.push(&b, &session(), batch, 100, |_| 0).await }
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
            async move { store.push(&a, &session(), batch, 100, |_| 0).await }
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
