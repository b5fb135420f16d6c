//! Storage: one set of domain operations over SQLite or PostgreSQL.
//!
//! The SQL is written once in the dialect both accept (`$1` placeholders, `ON CONFLICT`,
//! `RETURNING`) and runs through sqlx's `Any` driver; the few statements that differ per
//! backend (transaction start, row locks) go through [`Store::backend`]. Domain operations
//! live in the submodules and never see HTTP.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{Any, AnyConnection, AnyPool, Executor, Transaction};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use uuid::Uuid;

pub mod backoffice;
pub mod cards;
pub mod claims;
pub mod devices;
pub mod editors;
pub mod exchange;
pub mod imports;
pub mod ingest;
pub mod keyusers;
pub mod list;
pub mod mail;
pub mod maintenance;
pub mod migrate;
pub mod orders;
pub mod org;
pub mod outlet_cards;
pub mod password_reset;
pub mod plans;
pub mod pricing;
pub mod pull;
pub mod questionnaires;
pub mod rdc;
pub mod receivables;
pub mod reports;
pub mod routes;
pub mod secrets;
pub mod sessions;
pub mod sql;
pub mod staff;
pub mod support;
pub mod tenants;
pub mod throttle;
pub mod views;
pub mod warehouses;
pub mod webhooks;
pub mod world;

/// Which database is behind the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Why a store operation refused what it was asked, as each surface tells it: the back office
/// translates [`Problem::code`] through its catalogue, the APIs send the code and this
/// English text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error("a login is 1 to 64 characters without spaces")]
    BadLogin,
    #[error("a password needs at least 8 characters")]
    PasswordTooShort,
    #[error("a password needs at least one letter")]
    PasswordNeedsLetter,
    #[error("a password needs at least one digit")]
    PasswordNeedsDigit,
    #[error("this role needs at least one distributor")]
    RoleNeedsDistributor,
    #[error("no distributor {0}")]
    UnknownDistributor(String),
    #[error("this session id belongs to another device")]
    ForeignSession,
    #[error("this mobile user is disabled; enable it first")]
    MobileUserDisabled,
    /// A webhook URL that may not be posted to, and why.
    #[error("{0}")]
    WebhookTarget(String),
    #[error("a price list needs a name of 1 to 120 characters")]
    PriceListName,
    #[error("a payment form is cash, credit or bank_transfer")]
    PaymentForm,
    #[error("the distributor has a price list of this name already")]
    PriceListNameTaken,
    #[error("a price is an amount of 0 or more, like 12.50")]
    BadPrice,
    #[error("a price's first day is a date like 2026-12-31, or empty for since always")]
    BadValidFrom,
    #[error("a product is must-stock for at most 50 channels of at most 64 characters each")]
    MustStockChannels,
    #[error("the distributor has no product with this code")]
    UnknownProduct,
    #[error("the distributor has an outlet with this code already")]
    OutletCodeTaken,
    #[error("an outlet needs a code (up to 64 characters, no spaces) and a name")]
    OutletCodeOrName,
    #[error("the distributor has no such territory")]
    UnknownTerritory,
    #[error("the distributor has no such price list")]
    UnknownPriceList,
    #[error("the distributor has a product with this code already")]
    ProductCodeTaken,
    #[error("a product needs a code (up to 64 characters, no spaces) and a name")]
    ProductCodeOrName,
    #[error("a distributor needs a code (up to 64 characters, no spaces) and a name")]
    DistributorCodeOrName,
    #[error("there is a distributor with this code already")]
    DistributorCodeTaken,
    #[error("a currency is a three-letter code like UAH")]
    BadCurrency,
    #[error("unknown time zone; use a name like Europe/Kyiv")]
    BadTimezone,
    #[error("distance bands are whole metres with 0 < near < mid < far <= 100000")]
    BadBands,
    #[error("the overdue-debt policy is warn or require_reason")]
    BadOverduePolicy,
    #[error("there is a key user with this login already")]
    LoginTaken,
    #[error("you may not give this role")]
    RoleNotGrantable,
    #[error("you may only grant active sync points that you have yourself")]
    SyncPointNotGrantable,
    #[error("an account you create needs at least one of your sync points")]
    AccountNeedsSyncPoint,
    #[error("change your own account in Settings")]
    OwnAccount,
    #[error("an org unit needs a code (up to 64 characters, no spaces) and a name")]
    OrgCodeOrName,
    #[error("the distributor has an org unit with this code already")]
    OrgCodeTaken,
    #[error("an org unit is a region, team, territory or position")]
    OrgBadKind,
    #[error("the distributor has no such org unit to place it under")]
    OrgUnknownParent,
    #[error(
        "a region is at the top, a team under a region, a territory under a team or region, a position under a territory"
    )]
    OrgBadParent,
    #[error("a unit cannot be moved under itself or a unit below it")]
    OrgCycle,
    #[error("this org unit is ended")]
    OrgEnded,
    #[error("units below this one are still active; end them first")]
    OrgActiveBelow,
    #[error("staff are still bound to this position; end their bindings first")]
    OrgHasStaff,
    #[error("this position still has a mobile user; delete it first")]
    OrgHasMobileUser,
    #[error("a warehouse needs a code (up to 64 characters, no spaces) and a name")]
    WarehouseCodeOrName,
    #[error("the distributor has a warehouse with this code already")]
    WarehouseCodeTaken,
    #[error("the distributor has no such active position")]
    WarehouseUnknownPosition,
    #[error("a week plan is for an active position of the distributor")]
    WeekPlanPosition,
    #[error("a week plan needs a start date (YYYY-MM-DD) and 1 to 13 weeks")]
    WeekPlanDates,
    #[error("{0} is not an outlet of this position's territory")]
    WeekPlanOutlet(String),
    #[error("a day of a week plan has at most 200 stops, each outlet once")]
    WeekPlanStops,
    /// A questionnaire or question edit that does not hold, and why.
    #[error("{0}")]
    Questionnaire(questionnaires::Refusal),
    #[error("only the head office marks records global or local and changes global ones")]
    GlobalsHeadOfficeOnly,
    #[error("another global record has this code already")]
    GlobalCodeTaken,
    #[error("{0} local records are mapped to this global one; map them elsewhere first")]
    GlobalStillMapped(i64),
    #[error("a support request needs a subject and a text")]
    SupportEmpty,
    #[error("the attached file is larger than 5 MB")]
    SupportFileTooLarge,
    #[error("the request has moved on since this page was opened; look at it again")]
    SupportWrongState,
    #[error("this is not a mail address")]
    BadEmail,
}

impl Problem {
    /// A stable code; the back office's catalogue key of the message.
    pub fn code(&self) -> &'static str {
        match self {
            Problem::BadLogin => "bad_login",
            Problem::PasswordTooShort => "password_too_short",
            Problem::PasswordNeedsLetter => "password_needs_letter",
            Problem::PasswordNeedsDigit => "password_needs_digit",
            Problem::RoleNeedsDistributor => "role_needs_distributor",
            Problem::UnknownDistributor(_) => "unknown_distributor",
            Problem::ForeignSession => "foreign_session",
            Problem::MobileUserDisabled => "mobile_users.disabled_refusal",
            Problem::WebhookTarget(_) => "webhook_target",
            Problem::PriceListName => "price_lists.bad_name",
            Problem::PaymentForm => "price_lists.bad_payment_form",
            Problem::PriceListNameTaken => "price_lists.name_taken",
            Problem::BadPrice => "price_lists.bad_price",
            Problem::BadValidFrom => "price_lists.bad_valid_from",
            Problem::MustStockChannels => "products.bad_must_stock_channels",
            Problem::UnknownProduct => "price_lists.unknown_product",
            Problem::OutletCodeTaken => "outlets.code_taken",
            Problem::OutletCodeOrName => "outlets.code_or_name",
            Problem::UnknownTerritory => "outlets.unknown_territory",
            Problem::UnknownPriceList => "outlets.unknown_price_list",
            Problem::ProductCodeTaken => "products.code_taken",
            Problem::ProductCodeOrName => "products.code_or_name",
            Problem::DistributorCodeOrName => "distributors.code_or_name",
            Problem::DistributorCodeTaken => "distributors.code_taken",
            Problem::BadCurrency => "distributors.bad_currency",
            Problem::BadTimezone => "distributors.bad_timezone",
            Problem::BadBands => "distributors.bad_bands",
            Problem::BadOverduePolicy => "distributors.bad_overdue_policy",
            Problem::LoginTaken => "key_users.login_taken",
            Problem::RoleNotGrantable => "key_users.role_not_grantable",
            Problem::SyncPointNotGrantable => "key_users.sync_point_not_grantable",
            Problem::AccountNeedsSyncPoint => "key_users.needs_sync_point",
            Problem::OwnAccount => "key_users.own_account",
            Problem::OrgCodeOrName => "org.code_or_name",
            Problem::OrgCodeTaken => "org.code_taken",
            Problem::OrgBadKind => "org.bad_kind",
            Problem::OrgUnknownParent => "org.unknown_parent",
            Problem::OrgBadParent => "org.bad_parent",
            Problem::OrgCycle => "org.cycle",
            Problem::OrgEnded => "org.ended",
            Problem::OrgActiveBelow => "org.active_below",
            Problem::OrgHasStaff => "org.has_staff",
            Problem::OrgHasMobileUser => "org.has_mobile_user",
            Problem::WarehouseCodeOrName => "warehouses.code_or_name",
            Problem::WarehouseCodeTaken => "warehouses.code_taken",
            Problem::WarehouseUnknownPosition => "warehouses.unknown_position",
            Problem::WeekPlanPosition => "week_plan.bad_position",
            Problem::WeekPlanDates => "week_plan.bad_dates",
            Problem::WeekPlanOutlet(_) => "week_plan.unknown_outlet",
            Problem::WeekPlanStops => "week_plan.bad_stops",
            Problem::Questionnaire(r) => r.code(),
            Problem::GlobalsHeadOfficeOnly => "globals.head_office_only",
            Problem::GlobalCodeTaken => "globals.code_taken",
            Problem::GlobalStillMapped(_) => "globals.still_mapped",
            Problem::SupportEmpty => "support.empty",
            Problem::SupportFileTooLarge => "support.file_too_large",
            Problem::SupportWrongState => "support.wrong_state",
            Problem::BadEmail => "settings.bad_email",
        }
    }
}

/// Errors of domain operations. Database errors map here once; how each becomes an HTTP
/// answer is decided once too (`crate::error::status_of`).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("conflict: {0}")]
    Conflict(String),
    /// The request was refused for a reason its sender can act on.
    #[error("{0}")]
    Refused(Problem),
    /// The server's own configuration or stored state is not usable (an operator's matter).
    #[error("invalid: {0}")]
    Invalid(String),
    /// Too much expensive work at once (password hashing): refused, try again shortly.
    #[error(transparent)]
    Busy(#[from] secrets::Busy),
    #[error(transparent)]
    Other(sqlx::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::RowNotFound => StoreError::NotFound,
            sqlx::Error::Database(ref db) if db.is_unique_violation() => {
                StoreError::Conflict(db.message().to_string())
            }
            other => StoreError::Other(other),
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Handle to the database; cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// Re-read from the database every [`EPOCH_REFRESH`], so that `rotate-epoch` run
    /// anywhere reaches every server process within seconds.
    epoch: Arc<std::sync::RwLock<Uuid>>,
    /// SQLite has one writer. Writers queue here, in FIFO order, and are woken the moment the
    /// previous one commits; left to SQLite's busy handler they would poll with sleeps of up to
    /// 100 ms (measured: p99 ~1 s at 10 pushing agents).
    write_gate: Arc<Semaphore>,
    /// SQLite pushes waiting to be written together (see [`Store::push`]).
    ingest_queue: Arc<ingest::IngestQueue>,
    ingest_stats: Arc<ingest::IngestStats>,
    /// Password and PIN hashing (bounded; see [`secrets::SecretPool`]).
    secrets: Arc<secrets::SecretPool>,
    /// Imports admitted (running or waiting) and running, see [`Store::start_import`].
    import_admitted: Arc<Semaphore>,
    import_running: Arc<Semaphore>,
    /// The address key users reach the back office at, for links in mail
    /// ([`Store::with_public_url`]).
    public_url: Arc<str>,
}

/// A write transaction. On SQLite it also holds the store's write gate until it ends.
/// Dereferences to the connection, so `&mut *tx` is an executor.
pub struct WriteTx {
    tx: Transaction<'static, Any>,
    _gate: Option<OwnedSemaphorePermit>,
}

impl WriteTx {
    pub async fn commit(self) -> Result<()> {
        self.tx.commit().await?;
        Ok(())
    }

    /// Rolls back now (dropping the transaction does it too, later).
    pub async fn rollback(self) -> Result<()> {
        self.tx.rollback().await?;
        Ok(())
    }
}

impl std::ops::Deref for WriteTx {
    type Target = AnyConnection;
    fn deref(&self) -> &AnyConnection {
        &self.tx
    }
}

impl std::ops::DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        &mut self.tx
    }
}

/// Milliseconds since the Unix epoch, from the server clock.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Store {
    /// Connects (creating an SQLite file if needed), applies migrations and loads the epoch.
    pub async fn connect(url: &str) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(StoreError::Invalid(format!(
                "unsupported database URL {url:?}: use sqlite://PATH or postgres://..."
            )));
        };
        let url = match backend {
            Backend::Sqlite if !url.contains("mode=") => {
                let sep = if url.contains('?') { '&' } else { '?' };
                format!("{url}{sep}mode=rwc")
            }
            _ => url.to_string(),
        };
        let options = AnyConnectOptions::from_str(&url)?;
        let pool = AnyPoolOptions::new()
            .max_connections(match backend {
                Backend::Sqlite => 8,
                Backend::Postgres => 16,
            })
            .acquire_timeout(Duration::from_secs(30))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // Checkpoints run in the background (see `sqlite_checkpointer`), not
                        // in the commit of whichever write happens to cross the threshold.
                        conn.execute(
                            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                             PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 30000; \
                             PRAGMA wal_autocheckpoint = 0;",
                        )
                        .await?;
                    } else {
                        // Ingest and the back office run short statements; some of them
                        // (the id lookups of a push) are estimated above jit_above_cost and
                        // had LLVM compile their expressions on every execution: 3.5 % of
                        // all CPU in a `bench push` run, for no faster execution.
                        conn.execute("SET jit = off").await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        migrate::run(&pool, backend).await?;
        let epoch = load_or_create_epoch(&pool).await?;
        let store = Store {
            pool,
            backend,
            epoch: Arc::new(std::sync::RwLock::new(epoch)),
            write_gate: Arc::new(Semaphore::new(1)),
            ingest_queue: Arc::default(),
            ingest_stats: Arc::default(),
            secrets: Arc::default(),
            import_admitted: Arc::new(Semaphore::new(
                imports::IMPORTS_AT_ONCE + imports::IMPORTS_WAITING,
            )),
            import_running: Arc::new(Semaphore::new(imports::IMPORTS_AT_ONCE)),
            public_url: Arc::from("http://127.0.0.1:8080"),
        };
        if backend == Backend::Sqlite {
            tokio::spawn(sqlite_checkpointer(store.clone()));
        }
        tokio::spawn(epoch_refresher(store.clone()));
        Ok(store)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Identity of this database; changes when it is replaced or restored (`epoch rotate`).
    pub fn epoch(&self) -> Uuid {
        *self.epoch.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Reads the epoch from the database again (the refresher does it every few seconds).
    pub async fn refresh_epoch(&self) -> Result<Uuid> {
        let (value,): (String,) =
            sqlx::query_as("SELECT value FROM server_meta WHERE key = 'epoch'")
                .fetch_one(&self.pool)
                .await?;
        let epoch = Uuid::parse_str(&value)
            .map_err(|e| StoreError::Invalid(format!("stored epoch: {e}")))?;
        *self.epoch.write().unwrap_or_else(|e| e.into_inner()) = epoch;
        Ok(epoch)
    }

    /// The connection pool, for the store's own modules (nothing outside `store/` runs SQL).
    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The connection pool for tests that check stored rows directly (the `test-access`
    /// feature, which only the test kit turns on).
    #[cfg(feature = "test-access")]
    pub fn test_pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Whether the database answers a trivial query (for `/healthz`).
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }

    /// Starts a transaction that will write. On SQLite it first waits for the store's write
    /// gate, then takes the write lock at once (`BEGIN IMMEDIATE`), so writers of this process
    /// queue in order and never fail when a read lock cannot be upgraded. Dropping the
    /// transaction without committing rolls it back and opens the gate.
    pub async fn begin_write(&self) -> Result<WriteTx> {
        Ok(match self.backend {
            Backend::Sqlite => {
                let gate = self
                    .write_gate
                    .clone()
                    .acquire_owned()
                    .await
                    .expect("the write gate is never closed");
                WriteTx {
                    tx: self.pool.begin_with("BEGIN IMMEDIATE").await?,
                    _gate: Some(gate),
                }
            }
            Backend::Postgres => WriteTx {
                tx: self.pool.begin().await?,
                _gate: None,
            },
        })
    }

    /// The bounded pool that hashes and checks passwords and PINs.
    pub fn secrets(&self) -> &secrets::SecretPool {
        &self.secrets
    }

    /// The same store with its own hashing pool of `workers` workers and `max_waiting`
    /// queued requests (a setting; tests make it small).
    pub fn with_secret_pool(mut self, workers: usize, max_waiting: usize) -> Store {
        self.secrets = Arc::new(secrets::SecretPool::new(workers, max_waiting));
        self
    }

    /// The same store whose mail links point at `url` (the `public_url` setting).
    pub fn with_public_url(mut self, url: &str) -> Store {
        self.public_url = Arc::from(url.trim_end_matches('/'));
        self
    }

    /// The address key users reach the back office at.
    pub fn public_url(&self) -> &str {
        &self.public_url
    }

    /// Admission of an import: refused at once when too many are running or waiting.
    pub(crate) fn import_admission(&self) -> Result<OwnedSemaphorePermit> {
        self.import_admitted
            .clone()
            .try_acquire_owned()
            .map_err(|_| StoreError::Busy(secrets::Busy))
    }

    /// An admitted import's turn to run (one of the few that run at once).
    pub(crate) async fn import_turn(&self) -> OwnedSemaphorePermit {
        self.import_running
            .clone()
            .acquire_owned()
            .await
            .expect("the import gate is never closed")
    }

    /// How pushes were written so far (for `/metrics`).
    pub fn ingest_stats(&self) -> &ingest::IngestStats {
        &self.ingest_stats
    }

    /// Begins an SQLite write transaction for a caller that already holds the write gate.
    pub(crate) async fn begin_write_gated(&self) -> Result<WriteTx> {
        Ok(WriteTx {
            tx: self.pool.begin_with("BEGIN IMMEDIATE").await?,
            _gate: None,
        })
    }

    /// Gives the database a new epoch: devices re-pull everything and re-push what the
    /// server lacks. Run it after restoring a backup.
    pub async fn rotate_epoch(&mut self) -> Result<Uuid> {
        let epoch = Uuid::new_v4();
        sqlx::query("UPDATE server_meta SET value = $1 WHERE key = 'epoch'")
            .bind(epoch.to_string())
            .execute(&self.pool)
            .await?;
        *self.epoch.write().unwrap_or_else(|e| e.into_inner()) = epoch;
        Ok(epoch)
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Copies the SQLite write-ahead log back into the database file, off the write path.
///
/// SQLite's automatic checkpoint runs inside the commit that crosses 1,000 WAL pages, so
/// one push in a dozen paid for copying and syncing everyone's pages (measured: commit time
/// per push 1.2-1.6 ms, most of it in those commits). Here a passive checkpoint runs every
/// 250 ms on its own connection and never blocks writers; if the log still grows past
/// `WAL_TRUNCATE_PAGES` (readers kept it pinned) a truncating checkpoint runs under the
/// write gate so the file cannot grow without bound. Ends when the pool closes.
async fn sqlite_checkpointer(store: Store) {
    const WAL_TRUNCATE_PAGES: i64 = 16_384;
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if store.pool.is_closed() {
            return;
        }
        let passive: std::result::Result<(i64, i64, i64), sqlx::Error> =
            sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
                .fetch_one(&store.pool)
                .await;
        match passive {
            Ok((_, log_pages, _)) if log_pages > WAL_TRUNCATE_PAGES => {
                let _gate = store.write_gate.acquire().await;
                if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                    .execute(&store.pool)
                    .await
                {
                    tracing::warn!(error = %e, "SQLite truncating checkpoint failed");
                }
            }
            Ok(_) => {}
            Err(_) if store.pool.is_closed() => return,
            Err(e) => tracing::warn!(error = %e, "SQLite checkpoint failed"),
        }
    }
}

/// How often a server re-reads the epoch.
pub const EPOCH_REFRESH: Duration = Duration::from_secs(2);

/// Keeps the store's epoch in step with the database's. Ends when the pool closes.
async fn epoch_refresher(store: Store) {
    let mut tick = tokio::time::interval(EPOCH_REFRESH);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        if store.pool.is_closed() {
            return;
        }
        match store.refresh_epoch().await {
            Ok(_) => {}
            Err(_) if store.pool.is_closed() => return,
            Err(e) => tracing::warn!(error = %e, "reading the epoch failed"),
        }
    }
}

async fn load_or_create_epoch(pool: &AnyPool) -> Result<Uuid> {
    sqlx::query(
        "INSERT INTO server_meta (key, value) VALUES ('epoch', $1) ON CONFLICT (key) DO NOTHING",
    )
    .bind(Uuid::new_v4().to_string())
    .execute(pool)
    .await?;
    let (value,): (String,) = sqlx::query_as("SELECT value FROM server_meta WHERE key = 'epoch'")
        .fetch_one(pool)
        .await?;
    Uuid::parse_str(&value).map_err(|e| StoreError::Invalid(format!("stored epoch: {e}")))
}
