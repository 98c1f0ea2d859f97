//! The shared harness lives in the `testkit` crate; `mod common;` keeps working through this
//! re-export.

#[allow(unused_imports)]
pub use testkit::*;
