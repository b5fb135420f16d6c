//! SQLite's group commit: pushes queue for the single writer, and whoever gets it writes
//! every queued push of other devices along in one transaction.
use super::{IngestStats, PushJob, PushResult};
use crate::store::{Store, StoreError};
use std::collections::HashSet;

/// A push waiting for the SQLite writer, with where its answer goes.
pub(crate) struct QueuedPush {
    pub(super) job: PushJob,
    pub(super) reply: tokio::sync::oneshot::Sender<PushResult>,
}

/// Pushes waiting for the SQLite writer.
#[derive(Default)]
pub(crate) struct IngestQueue(std::sync::Mutex<std::collections::VecDeque<QueuedPush>>);

impl IngestQueue {
    pub(super) fn lock(
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

/// At most this many pushes (and mutations) share one SQLite transaction.
pub(super) const GROUP_MAX_PUSHES: usize = 32;

pub(super) const GROUP_MAX_MUTATIONS: usize = 4000;

impl Store {
    /// SQLite: queue the push, then either receive its result or become the writer.
    pub(super) async fn push_grouped(&self, job: PushJob) -> PushResult {
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
    pub(super) fn take_group(&self) -> Vec<QueuedPush> {
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
    pub(super) async fn run_group(&self, _gate: tokio::sync::OwnedSemaphorePermit) {
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
}
