//! The agent's configuration file: defaults and per-module overrides of limits, policy and
//! the config blob each gatherer can read. Plain serde types (JSON).

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::policy::ModulePolicy;
use crate::sandbox::Limits;

/// Per-module settings the operator controls.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct ModuleSettings {
    /// Limit overrides (unset fields keep the defaults).
    pub limits: Option<serde_json::Value>,
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
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            limits: Limits::default(),
            modules: BTreeMap::new(),
            concurrency: 4,
            archive_max_bytes: hostapi::abi::limits::ARCHIVE_BYTES,
            run: RunSettings::default(),
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
}

impl AgentConfig {
    /// Reads a JSON config file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read(path).map_err(|source| ConfigError::Read { path: path.display().to_string(), source })?;
        let cfg: AgentConfig = serde_json::from_slice(&text)
            .map_err(|e| ConfigError::Invalid { path: path.display().to_string(), message: e.to_string() })?;
        cfg.validate().map_err(|message| ConfigError::Invalid { path: path.display().to_string(), message })?;
        Ok(cfg)
    }

    fn validate(&self) -> Result<(), String> {
        if self.concurrency == 0 {
            return Err("concurrency must be at least 1".into());
        }
        self.limits.check().map_err(|e| format!("limits: {e}"))?;
        for name in self.modules.keys() {
            self.limits_for(name)?;
        }
        Ok(())
    }

    /// The effective limits for `module`: defaults overlaid with its overrides.
    pub fn limits_for(&self, module: &str) -> Result<Limits, String> {
        self.limits_with_publisher(module, None)
    }

    /// The effective limits: the agent's defaults, then what the publisher suggests for the
    /// module, then the operator's per-module overrides (the operator always wins).
    pub fn limits_with_publisher(&self, module: &str, publisher: Option<&serde_json::Value>) -> Result<Limits, String> {
        let mut base = serde_json::to_value(&self.limits).map_err(|e| e.to_string())?;
        let operator = self.modules.get(module).and_then(|m| m.limits.as_ref());
        for (who, overrides) in [("the index", publisher), ("modules", operator)] {
            let Some(overrides) = overrides else { continue };
            let (Some(b), Some(o)) = (base.as_object_mut(), overrides.as_object()) else {
                return Err(format!("{who}: limits for {module} must be an object"));
            };
            for (k, v) in o {
                b.insert(k.clone(), v.clone());
            }
        }
        let limits: Limits = serde_json::from_value(base).map_err(|e| format!("modules.{module}.limits: {e}"))?;
        limits.check().map_err(|e| format!("modules.{module}.limits: {e}"))?;
        Ok(limits)
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
    fn run_settings_nest_under_run() {
        let cfg: AgentConfig = serde_json::from_str(r#"{"run": {"indexUrl": "http://x/index.json", "period": "2h"}}"#).unwrap();
        assert_eq!(cfg.run.period.as_deref(), Some("2h"));
        assert!(serde_json::from_str::<AgentConfig>(r#"{"run": {"perod": "2h"}}"#).is_err());
    }

    #[test]
    fn typos_are_errors() {
        assert!(serde_json::from_str::<AgentConfig>(r#"{"limitz": {}}"#).is_err());
        let cfg: AgentConfig = serde_json::from_str(r#"{"modules": {"x": {"limits": {"fuell": 1}}}}"#).unwrap();
        assert!(cfg.validate().unwrap_err().contains("fuell"));
    }
}
