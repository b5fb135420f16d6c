//! The fieldsync sync protocol, version 1.
//!
//! The `.proto` files under `proto/fieldsync/v1` are the single source of truth of the wire;
//! this crate compiles them with `protox` + `prost` and holds every rule that the phone and
//! the server must compute identically: ids ([`ids`]), money: line sums and order totals
//! ([`money`]), the classification of a visit's distance from its outlet ([`location`]), the
//! field-truth signals a visit's record can raise ([`signals`], not wired into the ingest yet),
//! calendar dates ([`dates`]), the order's states and moves ([`orders`]), what makes a filled
//! questionnaire valid ([`questionnaire`]), the names of mutation kinds ([`v1::mutation::Kind::name`])
//! and the translation catalogue format ([`i18n`]).
//!
//! One sync, step by step (see `docs/protocol.md` for the full walk-through):
//!
//! 1. Once per installation the phone sends `ActivateRequest { login, pin }` to
//!    `POST /sync/v1/activate` and receives a bearer `device_token`.
//! 2. `POST /sync/v1/push` sends the outbox in order: `Mutation`s numbered 1, 2, 3, ... per
//!    device. The server stores the batch and the device's `last_seq` in one transaction and
//!    answers `acked_seq`; replays are acknowledged without effect, gaps are refused with
//!    `SEQUENCE_GAP` and the sequence number to resume from.
//! 3. `POST /sync/v1/pull` with the opaque cursor of the last page returns pages of
//!    `Change`s (today's route first on a first pull); the phone stores each page and its
//!    `next_cursor` in one local transaction.
//! 4. `POST /sync/v1/finish` closes the sync session and returns its summary.

#![forbid(unsafe_code)]

/// Generated protobuf types of `fieldsync.v1`.
#[allow(clippy::all, missing_docs)]
pub mod v1 {
    include!(concat!(env!("OUT_DIR"), "/fieldsync.v1.rs"));
}

/// The CRDT library the outlet cards are made with, for the crates that read and merge them.
pub use automerge;
pub mod cards;
pub mod claims;
pub mod dates;
pub mod i18n;
pub mod ids;
pub mod location;
pub mod money;
pub mod orders;
pub mod questionnaire;
pub mod signals;

impl v1::mutation::Kind {
    /// The kind's name, as outboxes, refusals and sync results show it.
    pub fn name(&self) -> &'static str {
        use v1::mutation::Kind;
        match self {
            Kind::VisitStarted(_) => "visit_started",
            Kind::VisitEnded(_) => "visit_ended",
            Kind::OrderPlaced(_) => "order_placed",
            Kind::OrderCancelled(_) => "order_cancelled",
            Kind::QuestionnaireAnswered(_) => "questionnaire_answered",
            Kind::DistributionChecked(_) => "distribution_checked",
            Kind::CardChanged(_) => "card_changed",
            Kind::ClaimSaved(_) => "claim_saved",
            Kind::ClaimDeleted(_) => "claim_deleted",
        }
    }
}

/// The protocol version this crate speaks; sent in every request.
pub const PROTOCOL_VERSION: u32 = 1;

/// Content type of every request and response body.
pub const CONTENT_TYPE: &str = "application/x-protobuf";

/// Largest request body a server accepts (bytes).
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// Largest page the server sends on pull.
pub const MAX_PULL_PAGE: u32 = 5000;

/// Paths of the endpoints.
pub mod paths {
    pub const ACTIVATE: &str = "/sync/v1/activate";
    pub const PUSH: &str = "/sync/v1/push";
    pub const PULL: &str = "/sync/v1/pull";
    pub const FINISH: &str = "/sync/v1/finish";
    pub const STATS: &str = "/sync/v1/stats";
}
