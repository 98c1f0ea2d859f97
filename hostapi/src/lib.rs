//! The gather-agent gatherer ABI: the contract between the host and wasm gatherers.
//!
//! `ABI.md` beside this crate is the language-neutral specification; this crate is its Rust
//! form, shared by the host (`agent`) and by guests (feature `guest`).
//!
//! # Layout
//! - [`abi`]: import module name, exports, custom section, status codes, log levels, limits.
//! - [`manifest`]: the module's declared name, version and permissions (plain serde types).
//! - [`http`]: the REST request and response a gatherer exchanges with the host.
//! - [`record`]: record name rules, shared so host and guest agree on what is valid.
//! - `guest` (feature `guest`): the Rust guest SDK: safe wrappers and the `gatherer!` macro.
//! - `objects` (feature `guest`): copying API objects into records with IO's error handling.

pub mod abi;
pub mod http;
pub mod manifest;
pub mod record;

#[cfg(feature = "guest")]
pub mod guest;
#[cfg(feature = "guest")]
pub mod objects;

pub use http::{Request, Response};
pub use manifest::{Manifest, Permission};
