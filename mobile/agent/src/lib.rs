//! `fieldsync-agent`: the sales agent's offline engine, shared by the app and the simulators.
//!
//! Everything the agent does is written to a local SQLite file in one transaction together
//! with an outbox entry (a protocol `Mutation` with the next sequence number). A sync pushes
//! the outbox, then pulls pages of master data, each page stored with its cursor in one
//! transaction. Killing the process at any instant therefore loses nothing (the outbox is
//! durable) and doubles nothing (the server acknowledges replays without effect).

#![forbid(unsafe_code)]

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use fieldsync_protocol::v1;
use rusqlite::Connection;

/// `From<rusqlite::Error>` for an error enum whose `$variant` wraps an [`EngineError`], so
/// `?` works on local database calls in the workflows and the sync client alike.
macro_rules! from_db_error {
    ($error:ident :: $variant:ident) => {
        impl From<rusqlite::Error> for $error {
            fn from(e: rusqlite::Error) -> Self {
                $error::$variant(crate::EngineError::Db(e))
            }
        }
    };
}

mod cards;
mod claims;
mod drafts;
mod queries;
mod shop;
mod store;
pub mod sync;
mod workflows;

pub use sync::ProgressFn;

pub use cards::CardScreen;
pub use claims::{ClaimDraft, ClaimLineDraft, ClaimLineView, ClaimView, ClaimableLine};
pub use drafts::SavedDraft;
pub use queries::{
    Counts, KindCounts, OutboxItem, OutboxStatus, OutletView, ProductView, RefusedItem,
    RouteStopView, VisitActivity, VisitState, VisitView,
};
pub use shop::{DebtTotals, InvoiceView, LineFate, OrderFate, PlanView, Receivables};
pub use sync::{
    HttpTransport, SyncError, SyncPhase, SyncProgress, SyncReport, Transport, TransportError,
};
pub use workflows::{OrderDraft, WorkflowError};

/// Where time comes from; simulators skew it, tests fix it.
pub trait Clock: Send + Sync {
    fn now_ms(&self) -> i64;
    /// The phone's UTC offset in minutes at an instant: its time zone's rules (daylight saving
    /// included). The phone counts days and shows times at this offset. A clock that does not
    /// say is at UTC.
    fn utc_offset_min(&self, _at_ms: i64) -> i32 {
        0
    }
}

/// The phone's clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    }
    fn utc_offset_min(&self, at_ms: i64) -> i32 {
        fieldsync_protocol::dates::system_utc_offset_min(at_ms)
    }
}

/// Errors of the local store.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("local database: {0}")]
    Db(#[from] rusqlite::Error),
}

struct Inner {
    conn: Mutex<Connection>,
    clock: Arc<dyn Clock>,
}

/// The engine: cheap to clone, safe to share between the UI and a sync task.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").finish_non_exhaustive()
    }
}

/// Who the device is bound to, as the server said at activation and on pulls.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Profile {
    pub server_url: String,
    pub login: String,
    pub mobile_user: Option<v1::MobileUser>,
    pub position: Option<v1::OrgUnit>,
    pub distributor: Option<v1::Distributor>,
}

impl Engine {
    /// Opens or creates the local store at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Engine, EngineError> {
        Self::open_with_clock(path, Arc::new(SystemClock))
    }

    /// Opens with a given clock (simulators skew device clocks).
    pub fn open_with_clock(
        path: impl AsRef<Path>,
        clock: Arc<dyn Clock>,
    ) -> Result<Engine, EngineError> {
        let conn = store::open(path.as_ref())?;
        Ok(Engine {
            inner: Arc::new(Inner {
                conn: Mutex::new(conn),
                clock,
            }),
        })
    }

    /// The engine's current time (device clock).
    pub fn now_ms(&self) -> i64 {
        self.inner.clock.now_ms()
    }

    /// The phone's UTC offset in minutes at an instant.
    pub fn utc_offset_min(&self, at_ms: i64) -> i32 {
        self.inner.clock.utc_offset_min(at_ms)
    }

    /// An instant as the phone's wall clock reads it: milliseconds since 1970-01-01 00:00 local
    /// time. What the screens format; never stored or sent.
    pub fn local_ms(&self, at_ms: i64) -> i64 {
        at_ms + i64::from(self.utc_offset_min(at_ms)) * 60_000
    }

    /// The phone's calendar date of an instant, `YYYY-MM-DD`.
    pub fn local_date(&self, at_ms: i64) -> String {
        fieldsync_protocol::dates::format_day_number(fieldsync_protocol::dates::day_of_ms(
            self.local_ms(at_ms),
        ))
    }

    fn db(&self) -> MutexGuard<'_, Connection> {
        self.inner.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// True once a PIN bound this installation to a mobile user.
    pub fn is_activated(&self) -> Result<bool, EngineError> {
        Ok(store::get_meta(&self.db(), "token")?.is_some())
    }

    /// The binding and the profile the server sent last.
    pub fn profile(&self) -> Result<Option<Profile>, EngineError> {
        use prost::Message;
        let db = self.db();
        let Some(login) = store::get_meta_str(&db, "login")? else {
            return Ok(None);
        };
        let decode =
            |key: &str| -> Result<Option<Vec<u8>>, EngineError> { Ok(store::get_meta(&db, key)?) };
        Ok(Some(Profile {
            server_url: store::get_meta_str(&db, "server_url")?.unwrap_or_default(),
            login,
            mobile_user: decode("mobile_user")?
                .and_then(|b| v1::MobileUser::decode(b.as_slice()).ok()),
            position: decode("position")?.and_then(|b| v1::OrgUnit::decode(b.as_slice()).ok()),
            distributor: decode("distributor")?
                .and_then(|b| v1::Distributor::decode(b.as_slice()).ok()),
        }))
    }

    /// The distributor the phone works for (currency, distance bands), as last pulled.
    pub fn distributor(&self) -> Result<Option<v1::Distributor>, EngineError> {
        use prost::Message;
        Ok(store::get_meta(&self.db(), "distributor")?
            .and_then(|b| v1::Distributor::decode(b.as_slice()).ok()))
    }

    /// The bearer credential of this binding, if activated.
    pub fn device_token(&self) -> Result<Option<String>, EngineError> {
        Ok(store::get_meta_str(&self.db(), "token")?)
    }

    /// An app preference (language, server address, ...) kept in the local store.
    pub fn preference(&self, key: &str) -> Result<Option<String>, EngineError> {
        Ok(store::get_meta_str(&self.db(), &format!("pref.{key}"))?)
    }

    /// Stores an app preference.
    pub fn set_preference(&self, key: &str, value: &str) -> Result<(), EngineError> {
        Ok(store::set_meta(
            &self.db(),
            &format!("pref.{key}"),
            value.as_bytes(),
        )?)
    }

    /// This installation's id (generated on first use).
    pub fn device_uid(&self) -> Result<uuid::Uuid, EngineError> {
        let db = self.db();
        if let Some(v) = store::get_meta(&db, "device_uid")?
            && let Some(id) = fieldsync_protocol::ids::from_wire(&v)
        {
            return Ok(id);
        }
        let id = fieldsync_protocol::ids::new_id();
        store::set_meta(&db, "device_uid", id.as_bytes())?;
        Ok(id)
    }
}
