//! The developer subcommands of `gather-agent`: their arguments and drivers.
//!
//! - [`bench`]: the performance table of docs/PERFORMANCE.md, measured in one run.
//! - [`demo`]: the one-command tour on the simulator.

pub mod bench;
pub mod demo;
