//! The agent's configuration file: defaults and per-module overrides of limits, policy and
//! the config blob each gatherer can read. Plain serde types (JSON).

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::policy::ModulePolicy;
use crate::limits::{maxima, LimitError, LimitOverrides, Limits};

/// Per-module settings the operator controls.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct ModuleSettings {
    /// Limit overrides (unset fields keep the defaults). Unlike a publisher's suggestion,
    /// these may raise the agent-wide defaults.
    pub limits: Option<LimitOverrides>,
    /// What the module may do beyond GET on its declared paths.
    pub policy: ModulePolicy,
    /// JSON handed to the gatherer through the `config` host function.
    pub config: Option<serde_json::Value>,
    /// Skip this module entirely.
    pub disabled: bool,
}

/// The configuration file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct AgentConfig {
    /// Limits for every module (per-module `limits` override fields of these).
    pub limits: Limits,
    /// Per-module settings by gatherer name.
    pub modules: BTreeMap<String, ModuleSettings>,
    /// Gatherers run at once (the Insights Operator uses a small worker pool too).
    pub concurrency: usize,
    /// Uncompressed archive size cap in bytes.
    pub archive_max_bytes: u64,
    /// `gather-agent run` settings (each can also be a flag or an environment variable;
    /// flags win, then the environment, then this file).
    pub run: RunSettings,
    /// What the host obfuscates in every record, as the Insights Operator's
    /// `dataReporting.obfuscation` (`["networking"]`: IP addresses and the base domain).
    pub obfuscation: Vec<Obfuscation>,
}

/// A kind of obfuscation the host applies to every record of an archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Obfuscation {
    /// IPv4/IPv6 addresses and the cluster base domain (`crate::obfuscate`).
    Networking,
}

/// Settings of the periodic agent that may live in the config file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct RunSettings {
    /// kubeconfig path.
    pub kubeconfig: Option<std::path::PathBuf>,
    /// URL of the published `index.json`.
    pub index_url: Option<String>,
    /// A local directory of modules, watched for changes.
    pub modules_dir: Option<std::path::PathBuf>,
    /// Where archives are written.
    pub out_dir: Option<std::path::PathBuf>,
    /// The state directory (cache, last accepted index, status.json).
    pub state_dir: Option<std::path::PathBuf>,
    /// Time between periods, such as `2h` or `2s`.
    pub period: Option<String>,
    /// Time between index polls, such as `5m`.
    pub poll_interval: Option<String>,
    /// Random spread of each period and poll, as a fraction (0.1 = ±10%).
    pub jitter: Option<f64>,
    /// The publisher's ed25519 public key (base64, or a path to a file holding it).
    pub public_key: Option<String>,
    /// Address of the operator endpoints (`:8080`, `127.0.0.1:9000`, or `off`).
    pub listen: Option<String>,
    /// Keep at most this many archives.
    pub keep_archives: Option<usize>,
    /// Delete archives older than this (such as `12d`).
    pub max_archive_age: Option<String>,
    /// Upload each archive to this URL (multipart `file`, as the Insights Operator does).
    pub upload_url: Option<String>,
    /// File holding the upload bearer token.
    pub upload_token_file: Option<std::path::PathBuf>,
    /// On shutdown, how long a running period may take to finish (such as `20s`).
    pub shutdown_grace: Option<String>,
    /// Serve the endpoints over HTTPS: the certificate chain (PEM), with `tlsKey`.
    pub tls_cert: Option<std::path::PathBuf>,
    /// The private key (PEM) of `tlsCert`.
    pub tls_key: Option<std::path::PathBuf>,
    /// Serve the endpoints over HTTPS with `tls.crt` and `tls.key` from this directory.
    pub tls_dir: Option<std::path::PathBuf>,
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            limits: Limits::default(),
            modules: BTreeMap::new(),
            concurrency: 4,
            archive_max_bytes: hostapi::abi::limits::ARCHIVE_BYTES,
            run: RunSettings::default(),
            obfuscation: Vec::new(),
        }
    }
}

/// Errors reading the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("reading config {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a valid configuration.
    #[error("config {path}: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// A limit is out of range.
    #[error("config {path}: {source}")]
    Limit {
        /// The file.
        path: String,
        /// Which limit and why.
        #[source]
        source: LimitError,
    },
}

/// Largest agent-wide settings outside [`Limits`].
pub mod agent_maxima {
    /// Gatherers run at once.
    pub const CONCURRENCY: usize = 256;
}

impl AgentConfig {
    /// Reads a JSON config file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read(path).map_err(|source| ConfigError::Read { path: path.display().to_string(), source })?;
        let cfg: AgentConfig = serde_json::from_slice(&text)
            .map_err(|e| ConfigError::Invalid { path: path.display().to_string(), message: e.to_string() })?;
        cfg.validate().map_err(|source| ConfigError::Limit { path: path.display().to_string(), source })?;
        Ok(cfg)
    }

    /// Checks every value against the host's ranges (the library entry points call this too,
    /// so a config built in code is held to the same rules as a file).
    pub fn validate(&self) -> Result<(), LimitError> {
        let range = |field, value: u64, min, max| {
            if (min..=max).contains(&value) {
                Ok(())
            } else {
                Err(LimitError::OutOfRange { field, value, min, max })
            }
        };
        range("concurrency", self.concurrency as u64, 1, agent_maxima::CONCURRENCY as u64)?;
        range("archiveMaxBytes", self.archive_max_bytes, 1, maxima::RECORD_BYTES)?;
        self.limits.check()?;
        for name in self.modules.keys() {
            self.limits_for(name)?;
        }
        Ok(())
    }

    /// The effective limits for `module`: defaults overlaid with its overrides.
    pub fn limits_for(&self, module: &str) -> Result<Limits, LimitError> {
        self.limits_with_publisher(module, None)
    }

    /// The effective limits. The operator's limits are ceilings: the agent-wide `limits`,
    /// replaced field by field by `modules.<module>.limits` (which may raise or lower them);
    /// then the publisher's suggestion from the index, which may only lower them. Every value
    /// from every source must be within the host's ranges ([`crate::limits::maxima`]).
    pub fn limits_with_publisher(&self, module: &str, publisher: Option<&serde_json::Value>) -> Result<Limits, LimitError> {
        let mut ceiling = self.limits.clone();
        if let Some(o) = self.modules.get(module).and_then(|m| m.limits.as_ref()) {
            o.check()?;
            o.apply_to(&mut ceiling);
        }
        ceiling.check()?;
        let limits = match publisher {
            Some(p) => LimitOverrides::from_json(&format!("the index's limits for {module}"), p)?.lower(&ceiling),
            None => ceiling,
        };
        limits.check()?;
        Ok(limits)
    }

    /// Whether `"obfuscation": ["networking"]` is set.
    pub fn obfuscates_networking(&self) -> bool {
        self.obfuscation.contains(&Obfuscation::Networking)
    }

    /// The settings for `module` (defaults when not configured).
    pub fn module(&self, module: &str) -> ModuleSettings {
        self.modules.get(module).cloned().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_module_limits_overlay_defaults() {
        let cfg: AgentConfig = serde_json::from_str(
            r#"{"limits": {"deadlineSeconds": 30}, "modules": {"pods": {"limits": {"fuel": 5}, "policy": {"allowSecrets": true}}}}"#,
        )
        .unwrap();
        let pods = cfg.limits_for("pods").unwrap();
        assert_eq!((pods.fuel, pods.deadline_seconds), (5, 30));
        assert_eq!(pods.memory_bytes, hostapi::abi::limits::MEMORY_BYTES);
        assert!(cfg.module("pods").policy.allow_secrets);
        assert!(!cfg.module("nodes").policy.allow_secrets);
        assert_eq!(cfg.limits_for("nodes").unwrap().fuel, hostapi::abi::limits::FUEL);
    }

    #[test]
    fn the_publisher_may_only_lower_and_the_operator_may_raise() {
        let cfg: AgentConfig = serde_json::from_str(
            r#"{"limits": {"memoryBytes": 16777216, "deadlineSeconds": 30},
                "modules": {"big": {"limits": {"memoryBytes": 268435456}}}}"#,
        )
        .unwrap();
        let greedy = serde_json::json!({"memoryBytes": 1u64 << 30, "fuel": 1000, "deadlineSeconds": 3600});
        let small = cfg.limits_with_publisher("small", Some(&greedy)).unwrap();
        assert_eq!((small.memory_bytes, small.fuel, small.deadline()), (16 << 20, 1000, std::time::Duration::from_secs(30)));
        let big = cfg.limits_with_publisher("big", Some(&greedy)).unwrap();
        assert_eq!(big.memory_bytes, 256 << 20, "the operator's per-module setting is the ceiling");
        let lower = serde_json::json!({"memoryBytes": 1u64 << 20, "deadlineMs": 500});
        let l = cfg.limits_with_publisher("big", Some(&lower)).unwrap();
        assert_eq!((l.memory_bytes, l.deadline()), (1 << 20, std::time::Duration::from_millis(500)));
    }

    #[test]
    fn absurd_values_are_refused_from_every_source() {
        let huge = serde_json::json!({"deadlineSeconds": u64::MAX});
        let err = AgentConfig::default().limits_with_publisher("x", Some(&huge)).unwrap_err();
        assert!(matches!(err, LimitError::OutOfRange { field: "deadlineSeconds", .. }), "{err}");
        for bad in [
            r#"{"limits": {"deadlineSeconds": 18446744073709551615}}"#,
            r#"{"limits": {"memoryBytes": 8589934592}}"#,
            r#"{"limits": {"fuel": 0}}"#,
            r#"{"modules": {"x": {"limits": {"deadlineMs": 18446744073709551615}}}}"#,
            r#"{"concurrency": 100000}"#,
            r#"{"archiveMaxBytes": 0}"#,
        ] {
            let cfg: AgentConfig = serde_json::from_str(bad).unwrap();
            assert!(matches!(cfg.validate(), Err(LimitError::OutOfRange { .. })), "{bad}");
        }
        let l = Limits { deadline_seconds: u64::MAX, ..Limits::default() };
        assert_eq!(l.deadline(), std::time::Duration::from_secs(maxima::DEADLINE_SECS), "clamped even unchecked");
        let now = std::time::Instant::now();
        assert!(l.deadline_from(now) > now);
    }

    #[test]
    fn run_settings_nest_under_run() {
        let cfg: AgentConfig = serde_json::from_str(r#"{"run": {"indexUrl": "http://x/index.json", "period": "2h"}}"#).unwrap();
        assert_eq!(cfg.run.period.as_deref(), Some("2h"));
        assert!(serde_json::from_str::<AgentConfig>(r#"{"run": {"perod": "2h"}}"#).is_err());
    }

    #[test]
    fn obfuscation_takes_networking_only() {
        let cfg: AgentConfig = serde_json::from_str(r#"{"obfuscation": ["networking"]}"#).unwrap();
        assert!(cfg.obfuscates_networking());
        assert!(!AgentConfig::default().obfuscates_networking());
        assert!(serde_json::from_str::<AgentConfig>(r#"{"obfuscation": ["workload"]}"#).is_err());
    }

    #[test]
    fn typos_are_errors() {
        assert!(serde_json::from_str::<AgentConfig>(r#"{"limitz": {}}"#).is_err());
        let err = serde_json::from_str::<AgentConfig>(r#"{"modules": {"x": {"limits": {"fuell": 1}}}}"#).unwrap_err();
        assert!(err.to_string().contains("fuell"), "{err}");
    }
}
