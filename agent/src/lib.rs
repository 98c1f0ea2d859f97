//! gather-agent: runs sandboxed WebAssembly gatherers against a Kubernetes API and writes
//! what they collect into Insights-Operator-style tar.gz archives.
//!
//! # Layout
//! - [`sim`]: an API-server-shaped cluster simulator (HTTPS, bearer token, discovery,
//!   selectors, paging) serving fixture objects; kube-rs and kubectl both accept it.
//! - [`kubeclient`]: the host's own kube-rs client and where its config comes from.
//! - [`tls`]: the single rustls crypto provider (ring) the whole process uses.

pub mod kubeclient;
pub mod sim;
pub mod tls;
