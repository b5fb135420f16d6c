//! Housekeeping every server process runs; safe with several servers on one database
//! (every step is one statement whose outcome does not depend on who runs it).
//! - Import jobs whose lease ran out (the server running them died) are marked failed.
//! - Lockout counts whose run has ended are forgotten.
//! - Plans whose fulfilment orders changed are sent to their phones again.
//! - Mail a stopped server was sending is given up (never sent twice); old mail is removed.
//! - Head office users past their morning hour get the digest of open support requests.
use std::time::Duration;

use super::{Result, Store, now_ms};

/// How often the housekeeping runs.
pub const PERIOD: Duration = Duration::from_secs(30);

/// One round; returns (import jobs recovered, lockout counts forgotten).
pub async fn run_once(store: &Store, now: i64) -> Result<(u64, u64)> {
    let jobs = store.recover_import_jobs(now).await?;
    let longest = super::keyusers::LOCKOUT_MS
        .max(super::devices::PIN_LOCK_MS)
        .max(super::password_reset::RESET_RULE.lock_ms);
    let attempts = store.forget_old_attempts(now, longest).await?;
    store.refresh_plans().await?;
    store.mail_housekeeping(now).await?;
    let base = store.public_url().to_string();
    store
        .queue_support_digests(now, |lang, to, day, open| {
            crate::mail::letters::digest(lang, to, day, open, &base)
        })
        .await?;
    Ok((jobs, attempts))
}

/// Runs [`run_once`] at start and then every [`PERIOD`] until the process ends.
pub fn spawn(store: Store) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(PERIOD);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match run_once(&store, now_ms()).await {
                Ok((0, _)) => {}
                Ok((jobs, _)) => {
                    tracing::warn!(jobs, "import jobs of a stopped server marked failed")
                }
                Err(e) => tracing::warn!(error = %e, "housekeeping failed"),
            }
        }
    })
}
