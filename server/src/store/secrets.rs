//! Password and PIN hashing on a bounded pool.
//!
//! An argon2 hash takes about 19 MiB and tens of milliseconds of one core. Left to
//! `spawn_blocking`, every concurrent login or activation ran its own (256 anonymous logins:
//! 4.7 GB). Here `workers` dedicated threads run the hashes, at most `max_waiting` more wait
//! for one; anything beyond is refused at once with [`Busy`], which the HTTP layers answer
//! with 503 and `Retry-After`. The async threads never run a hash. The threads are long-lived
//! on purpose: the allocator keeps a freed 19 MiB block for the thread that freed it, so a few
//! fixed threads reuse their blocks, where the blocking pool's changing threads each kept
//! their own (500 logins at once with `spawn_blocking` and two permits: 660 MiB).
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};

use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

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

type Job = Box<dyn FnOnce() + Send>;

/// An admitted request's place in the pool's queue: spend it on one hash or check.
pub struct Ticket<'a> {
    pool: &'a SecretPool,
    permit: OwnedSemaphorePermit,
}

impl Ticket<'_> {
    /// Hashes a new secret.
    pub async fn hash(self, secret: String) -> Result<String, Busy> {
        self.pool
            .run(self.permit, move |stats| {
                stats.hashed.fetch_add(1, Ordering::Relaxed);
                hash_now(&secret)
            })
            .await
    }

    /// Spends what checking a secret costs without a stored hash to check it against (an
    /// unknown login), so that timing does not tell which logins exist.
    pub async fn burn(self, secret: String) -> Result<(), Busy> {
        self.hash(secret).await.map(|_| ())
    }

    /// Checks a secret against stored hashes; the index of the first that matches.
    pub async fn verify(self, secret: String, hashes: Vec<String>) -> Result<Option<usize>, Busy> {
        self.pool
            .run(self.permit, move |stats| {
                hashes.iter().position(|h| {
                    stats.verified.fetch_add(1, Ordering::Relaxed);
                    verify_now(&secret, h)
                })
            })
            .await
    }
}

/// A bounded pool of argon2 worker threads with a bounded queue in front of it.
#[derive(Debug)]
pub struct SecretPool {
    jobs: mpsc::Sender<Job>,
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

thread_local! {
    /// This thread's argon2 working memory (19 MiB), allocated once and reused. Allocating
    /// it per hash let glibc's adaptive mmap threshold move the freed blocks into the heap,
    /// where they stayed resident: RSS grew by 19 MiB per hash (20 logins: 333 MiB).
    static MEMORY: std::cell::RefCell<Vec<Block>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Most memory a stored hash may ask for (ours ask for 19 MiB).
const MAX_BLOCKS: usize = 64 * 1024;

/// Runs argon2 `params` over `secret` and `salt` into `out`, in this thread's memory.
fn argon2_into(
    algorithm: Algorithm,
    version: Version,
    params: Params,
    secret: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> Result<(), argon2::Error> {
    let blocks = params.block_count();
    if blocks > MAX_BLOCKS {
        return Err(argon2::Error::MemoryTooMuch);
    }
    MEMORY.with(|memory| {
        let mut memory = memory.borrow_mut();
        if memory.len() < blocks {
            memory.resize(blocks, Block::default());
        }
        Argon2::new(algorithm, version, params).hash_password_into_with_memory(
            secret,
            salt,
            out,
            &mut memory[..blocks],
        )
    })
}

/// Argon2id hash of a secret as a PHC string, on the calling thread (seeding hashes thousands
/// of PINs in parallel before the server serves anyone; everything else goes through
/// [`SecretPool`]).
pub fn hash_now(secret: &str) -> String {
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    let params = Params::default();
    let mut salt_bytes = [0u8; 64];
    let salt_bytes = salt
        .as_salt()
        .decode_b64(&mut salt_bytes)
        .expect("a generated salt decodes");
    let output = Output::init_with(Params::DEFAULT_OUTPUT_LEN, |out| {
        argon2_into(
            Algorithm::Argon2id,
            Version::V0x13,
            params.clone(),
            secret.as_bytes(),
            salt_bytes,
            out,
        )
        .map_err(Into::into)
    })
    .expect("argon2 hashing");
    PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).expect("default parameters"),
        salt: Some(salt.as_salt()),
        hash: Some(output),
    }
    .to_string()
}

/// Whether `secret` matches a stored PHC hash (constant-time comparison).
fn verify_now(secret: &str, stored: &str) -> bool {
    let check = || -> Option<bool> {
        let hash = PasswordHash::new(stored).ok()?;
        let expected = hash.hash?;
        let algorithm = Algorithm::try_from(hash.algorithm).ok()?;
        let version = match hash.version {
            Some(v) => Version::try_from(v).ok()?,
            None => Version::default(),
        };
        let params = Params::try_from(&hash).ok()?;
        let mut salt = [0u8; 64];
        let salt = hash.salt?.decode_b64(&mut salt).ok()?;
        let output = Output::init_with(expected.len(), |out| {
            argon2_into(algorithm, version, params, secret.as_bytes(), salt, out)
                .map_err(Into::into)
        })
        .ok()?;
        Some(output == expected)
    };
    check().unwrap_or(false)
}

impl SecretPool {
    /// Starts `workers` threads; they end when the pool is dropped.
    pub fn new(workers: usize, max_waiting: usize) -> Self {
        let workers = workers.max(1);
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..workers {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || {
                    loop {
                        // The lock is held only while taking a job, not while running it.
                        let job = match rx.lock() {
                            Ok(rx) => rx.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    }
                })
                .expect("spawn an argon2 worker thread");
        }
        SecretPool {
            jobs: tx,
            admitted: Arc::new(Semaphore::new(workers + max_waiting)),
            stats: Arc::default(),
        }
    }

    /// A place in the queue, taken before any other work of a request (a request refused
    /// here costs nothing else: no database round trip, no lockout attempt).
    pub fn admit(&self) -> Result<Ticket<'_>, Busy> {
        match self.admitted.clone().try_acquire_owned() {
            Ok(permit) => Ok(Ticket { pool: self, permit }),
            Err(_) => {
                self.stats.shed.fetch_add(1, Ordering::Relaxed);
                Err(Busy)
            }
        }
    }

    /// Runs `work` on a worker thread once one is free. The admission permit travels with
    /// the job, so a request that goes away while its hash waits or runs still holds its
    /// place until the hash ends.
    async fn run<T: Send + 'static>(
        &self,
        admitted: OwnedSemaphorePermit,
        work: impl FnOnce(&SecretStats) -> T + Send + 'static,
    ) -> Result<T, Busy> {
        let stats = self.stats.clone();
        let (done, answer) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _admitted = admitted;
            let running = stats.running.fetch_add(1, Ordering::SeqCst) + 1;
            stats.peak_running.fetch_max(running, Ordering::SeqCst);
            let out = work(&stats);
            stats.running.fetch_sub(1, Ordering::SeqCst);
            let _ = done.send(out);
        });
        self.jobs.send(job).map_err(|_| Busy)?;
        answer.await.map_err(|_| Busy)
    }

    /// Hashes a new secret (admission and hash in one).
    pub async fn hash(&self, secret: String) -> Result<String, Busy> {
        self.admit()?.hash(secret).await
    }

    /// Checks a secret against stored hashes (admission and check in one).
    pub async fn verify(&self, secret: String, hashes: Vec<String>) -> Result<Option<usize>, Busy> {
        self.admit()?.verify(secret, hashes).await
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

    #[test]
    fn hashes_are_standard_phc_strings_both_ways() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        // Ours verify with the argon2 crate's own verifier...
        let ours = hash_now("pin-12345678");
        assert!(
            ours.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{ours}"
        );
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"pin-12345678", &parsed)
                .is_ok()
        );
        // ...and hashes stored before (made by the crate) verify with ours.
        let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
        let theirs = Argon2::default()
            .hash_password(b"secret123", &salt)
            .unwrap()
            .to_string();
        assert!(verify_now("secret123", &theirs));
        assert!(!verify_now("secret124", &theirs));
        assert!(!verify_now("secret123", "not a hash"));
        assert!(verify_now("pin-12345678", &ours));
        assert_ne!(hash_now("pin-12345678"), ours, "salted");
    }

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
