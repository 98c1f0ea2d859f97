//! What the `gather-agent` binary carries with it, so a copied binary works with no source
//! tree: the default gatherer modules (as the Insights Operator carries its compiled-in
//! gatherers) and the sample fixture cluster the demo serves.
//!
//! # Layout
//! - `build.rs`: collects the files and generates the `include_bytes!` tables.
//! - [`modules`]: the default gatherer set, `<name>.wasm` → bytes.
//! - [`sample_cluster`]: the sample cluster's fixture files, relative path → bytes.

/// One embedded file.
#[derive(Debug, Clone, Copy)]
pub struct EmbeddedFile {
    /// File name (modules) or path relative to the fixture root (cluster), `/`-separated.
    pub name: &'static str,
    /// Its bytes.
    pub bytes: &'static [u8],
}

include!(concat!(env!("OUT_DIR"), "/embedded.rs"));

/// The default gatherer modules, sorted by file name.
pub fn modules() -> &'static [EmbeddedFile] {
    MODULES
}

/// The sample fixture cluster (`testdata/cluster/sample`), sorted by path.
pub fn sample_cluster() -> &'static [EmbeddedFile] {
    SAMPLE_CLUSTER
}
