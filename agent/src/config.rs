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
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            limits: Limits::default(),
            modules: BTreeMap::new(),
            concurrency: 4,
            archive_max_bytes: hostapi::abi::limits::ARCHIVE_BYTES,
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
        let Some(overrides) = self.modules.get(module).and_then(|m| m.limits.as_ref()) else {
            return Ok(self.limits.clone());
        };
        let mut base = serde_json::to_value(&self.limits).map_err(|e| e.to_string())?;
        let (Some(b), Some(o)) = (base.as_object_mut(), overrides.as_object()) else {
            return Err(format!("modules.{module}.limits must be an object"));
        };
        for (k, v) in o {
            b.insert(k.clone(), v.clone());
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
    fn typos_are_errors() {
        assert!(serde_json::from_str::<AgentConfig>(r#"{"limitz": {}}"#).is_err());
        let cfg: AgentConfig = serde_json::from_str(r#"{"modules": {"x": {"limits": {"fuell": 1}}}}"#).unwrap();
        assert!(cfg.validate().unwrap_err().contains("fuell"));
    }
}
