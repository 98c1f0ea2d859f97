//! The gather-agent gatherer ABI: the contract between the host and wasm gatherers.
//!
//! See `ABI.md` beside this crate for the language-neutral specification.
