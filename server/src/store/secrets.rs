//! Password and PIN hashing on a bounded pool.
//!
//! An argon2 hash takes about 19 MiB and tens of milliseconds of one core. Left to
//! `spawn_blocking`, every concurrent login or activation ran its own (256 anonymous logins:
//! 4.7 GB). Here at most `workers` hashes run at once and at most `max_waiting` more wait
//! for a worker; anything beyond is refused at once with [`Busy`], which the HTTP layers
//! answer with 503 and `Retry-After`. Memory is bounded by `workers` x 19 MiB whatever the
//! load, and the async threads never run a hash.
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use tokio::sync::Semaphore;

/// The pool is full: the request is refused rather than queued without bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the server is busy; try again in a moment")]
pub struct Busy;

/// What the pool did so far (for `/metrics` and tests).
#[derive(Debug, Default)]
pub struct SecretStats {
    /// Hashes computed (new secrets and the dummy hash of an unknown login).
    pub hashed: AtomicU64,
    /// Secrets checked against a stored hash (each stored hash tried counts once).
    pub verified: AtomicU64,
    /// Requests refused because the pool and its queue were full.
    pub shed: AtomicU64,
    /// The most hashes that ever ran at the same moment.
    pub peak_running: AtomicU64,
    running: AtomicU64,
}

/// A bounded pool of argon2 workers with a bounded queue in front of it.
#[derive(Debug)]
pub struct SecretPool {
    workers: Arc<Semaphore>,
    admitted: Arc<Semaphore>,
    pub stats: Arc<SecretStats>,
}

impl Default for SecretPool {
    /// One worker per core and 64 waiting per worker (an honest morning of 100 agents
    /// activating at once queues rather than being refused).
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        SecretPool::new(cores, 64 * cores)
    }
}

/// Argon2id hash of a secret, on the calling thread (seeding hashes thousands of PINs in
/// parallel before the server serves anyone; everything else goes through [`SecretPool`]).
pub fn hash_now(secret: &str) -> String {
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    Argon2::default()
        .hash_password(secret.as_bytes(), &salt)
        .expect("argon2 hashing")
        .to_string()
}

fn verify_now(secret: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(secret.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

impl SecretPool {
    pub fn new(workers: usize, max_waiting: usize) -> Self {
        let workers = workers.max(1);
        SecretPool {
            workers: Arc::new(Semaphore::new(workers)),
            admitted: Arc::new(Semaphore::new(workers + max_waiting)),
            stats: Arc::default(),
        }
    }

    /// Runs `work` on a worker once one is free; refuses at once when the queue is full.
    /// The worker's permit travels with the blocking task, so a request that goes away
    /// mid-hash does not let another hash start before this one ends.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&SecretStats) -> T + Send + 'static,
    ) -> Result<T, Busy> {
        let Ok(admitted) = self.admitted.clone().try_acquire_owned() else {
            self.stats.shed.fetch_add(1, Ordering::Relaxed);
            return Err(Busy);
        };
        let worker = self
            .workers
            .clone()
            .acquire_owned()
            .await
            .expect("the secret pool is never closed");
        let stats = self.stats.clone();
        tokio::task::spawn_blocking(move || {
            let _permits = (admitted, worker);
            let running = stats.running.fetch_add(1, Ordering::SeqCst) + 1;
            stats.peak_running.fetch_max(running, Ordering::SeqCst);
            let out = work(&stats);
            stats.running.fetch_sub(1, Ordering::SeqCst);
            out
        })
        .await
        .map_err(|_| Busy)
    }

    /// Hashes a new secret.
    pub async fn hash(&self, secret: String) -> Result<String, Busy> {
        self.run(move |stats| {
            stats.hashed.fetch_add(1, Ordering::Relaxed);
            hash_now(&secret)
        })
        .await
    }

    /// Spends what checking a secret costs without a stored hash to check it against (an
    /// unknown login), so that timing does not tell which logins exist.
    pub async fn burn(&self, secret: String) -> Result<(), Busy> {
        self.hash(secret).await.map(|_| ())
    }

    /// Checks a secret against stored hashes; the index of the first that matches.
    pub async fn verify(&self, secret: String, hashes: Vec<String>) -> Result<Option<usize>, Busy> {
        self.run(move |stats| {
            hashes.iter().position(|h| {
                stats.verified.fetch_add(1, Ordering::Relaxed);
                verify_now(&secret, h)
            })
        })
        .await
    }

    /// The pool's counters in the Prometheus text format.
    pub fn render(&self) -> String {
        let s = &self.stats;
        format!(
            "# HELP fieldsync_secret_hashes_total Argon2 hashes computed.\n\
             # TYPE fieldsync_secret_hashes_total counter\n\
             fieldsync_secret_hashes_total {}\n\
             # HELP fieldsync_secret_verifications_total Secrets checked against a stored hash.\n\
             # TYPE fieldsync_secret_verifications_total counter\n\
             fieldsync_secret_verifications_total {}\n\
             # HELP fieldsync_secret_shed_total Password or PIN checks refused because the hashing pool was full.\n\
             # TYPE fieldsync_secret_shed_total counter\n\
             fieldsync_secret_shed_total {}\n\
             # HELP fieldsync_secret_peak_running The most argon2 hashes that ran at once.\n\
             # TYPE fieldsync_secret_peak_running gauge\n\
             fieldsync_secret_peak_running {}\n",
            s.hashed.load(Ordering::Relaxed),
            s.verified.load(Ordering::Relaxed),
            s.shed.load(Ordering::Relaxed),
            s.peak_running.load(Ordering::Relaxed),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_pool_refuses_at_once_and_never_runs_more_than_its_workers() {
        let pool = Arc::new(SecretPool::new(2, 3));
        let tasks: Vec<_> = (0..20)
            .map(|i| {
                let pool = pool.clone();
                tokio::spawn(async move { pool.hash(format!("secret{i}")).await })
            })
            .collect();
        let mut ok = 0;
        let mut busy = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(h) => {
                    assert!(h.starts_with("$argon2id$"));
                    ok += 1
                }
                Err(Busy) => busy += 1,
            }
        }
        // Two running and three waiting are admitted; the rest are refused.
        assert!(ok >= 5, "{ok} hashed");
        assert!(busy > 0, "nothing was refused");
        assert_eq!(ok + busy, 20);
        assert!(pool.stats.peak_running.load(Ordering::SeqCst) <= 2);
        assert_eq!(pool.stats.shed.load(Ordering::SeqCst), busy);
        // Once the burst is over the pool admits again, and a hash verifies.
        let h = pool.hash("right1234".into()).await.unwrap();
        assert_eq!(
            pool.verify("right1234".into(), vec!["junk".into(), h])
                .await,
            Ok(Some(1))
        );
    }
}
