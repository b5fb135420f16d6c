//! The end-to-end tests live in `tests/`; what they are built with is the test kit
//! (`fieldsync-testkit`), re-exported here so that each test file can `use fieldsync_tests::*`.
pub use fieldsync_testkit::*;
