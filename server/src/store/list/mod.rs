//! The list engine's data side, behind every directory and document list of the back office:
//! combinable filters, sorting by any column, paging and counts, within the user's sync
//! points. A list is a [`ListSpec`] (`spec.rs`, the lists themselves in `specs.rs`); a
//! request becomes SQL and raw rows in `query.rs`. How rows are shown, exported and saved as
//! views is the back office's (`crate::web::list`). Every filter value is bound as a
//! parameter; column names in a URL are only ever looked up in the spec.
mod query;
mod spec;
pub mod specs;

pub use query::{ListQuery, MAX_QUERY_KEYS, RawCell, Selection, Value};
pub use spec::{COUNT_CAP, Col, EXPORT_CAP, Filter, Join, Kind, ListSpec, Lookup, PAGE_SIZE};
