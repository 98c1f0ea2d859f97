//! Developer tools for gather-agent: the benchmark, the native build of the default gatherers
//! and the demo driver. None of this ships in the operator's image: the `gather-agent` command
//! has them behind its `devtools` feature (on by default for developers).
//!
//! # Layout
//! - [`native`]: the same gatherers built natively, served by the same host (tests, baseline).
//! - [`bench`]: the performance benchmark's measurements.
//! - [`cmd`]: the `gather-agent bench` and `gather-agent demo` subcommands.

pub mod bench;
pub mod cmd;
pub mod native;
