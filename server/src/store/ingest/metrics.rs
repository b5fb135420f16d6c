//! How pushes were written, for `/metrics`.
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
    pub(super) fn add(counter: &std::sync::atomic::AtomicU64, n: usize) {
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
