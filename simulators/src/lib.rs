//! `fieldsync-sim`: synthetic field forces and benchmarks against a real fieldsync server.
//!
//! - [`field`]: one real agent engine per agent, realistic days, injected faults, a JSON
//!   summary of what was created, acknowledged and stored, and what was lost or doubled.
//! - [`faults`]: the fault-injecting transport.
//! - [`distributor`]: a distributor's system against the order feed and status API.
//! - [`cards`]: agents sharing outlets edit their shared cards concurrently; convergence.
//! - [`truth`]: visits with known truth, scored against the server's field-truth signals.
//! - [`bench`]: the measurements recorded in `BENCHMARKS.md`.

pub mod bench;
pub mod bench_cards;
pub mod bench_web;
pub mod cards;
pub mod distributor;
pub mod faults;
pub mod field;
pub mod truth;
