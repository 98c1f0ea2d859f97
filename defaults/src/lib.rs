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

#[cfg(test)]
mod tests {
    use super::*;

    /// The binary carries every default gatherer (Rust and Go) and the whole sample, by
    /// relative name only: no build-machine path leaks into what is embedded.
    #[test]
    fn the_default_set_and_the_sample_are_embedded_by_relative_name() {
        let names: Vec<&str> = modules().iter().map(|m| m.name).collect();
        for g in ["clusterconfig", "clusteroperators", "clusterversion", "machineconfigpools", "nodes", "pods", "pdbs", "webhookconfigurations"] {
            assert!(names.contains(&format!("{g}.wasm").as_str()), "{g} missing from {names:?}");
        }
        assert!(modules().iter().all(|m| m.bytes.starts_with(b"\0asm")), "wasm modules only");
        assert!(names.iter().all(|n| !n.starts_with("bench")), "benchmark probes are not defaults");
        let sample = sample_cluster();
        assert!(sample.iter().filter(|f| f.name.ends_with(".json")).count() >= 10);
        assert!(sample.iter().chain(modules()).all(|f| !f.name.starts_with('/') && !f.name.contains("..")));
    }
}
