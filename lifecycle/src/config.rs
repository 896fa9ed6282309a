//! The one configuration file of the cluster: the spec's `cluster:`
//! section, read by every service, plus a section per service
//! (`meta_service:`, `storage_node:`, `gateway:`).
//!
//! ```text
//! --config f.yml ──parse──▶ ConfigFile ──┐  (unknown / refused key: error
//!                                         │   naming the key and the file)
//!     environment (clap `env` or read) ───┼──▶ the service's own Config
//!     flags ──────────────────────────────┘    flag_or_env.or(file).unwrap_or(default)
//! ```
//!
//! Every binary parses the whole file, so a typo in any section fails every
//! service that is given the file, not only the one that reads the key.
//! Services own their defaults and the mapping onto their settings;
//! [`reference`] lists every key (and generates `docs/configuration.md`).
//!
//! # Layout
//!
//! - [`schema`]: the file's structs ([`ConfigFile`]), all `Option`s.
//! - [`duration`]: `150ms`-style durations and `150-300ms` ranges.
//! - [`reference`]: the table of keys and the reference page.
//! - `check` (feature `testsuite`): bad files run through a real binary.

#[cfg(any(test, feature = "testsuite"))]
pub mod check;
pub mod duration;
pub mod reference;
pub mod schema;

use std::path::{Path, PathBuf};

pub use duration::{parse_duration, DurationRange};
pub use schema::ConfigFile;

/// The file flag every binary flattens in (`--config`, `CONFIG_FILE`).
#[derive(Clone, Debug, Default, clap::Args)]
pub struct ConfigArgs {
    /// YAML configuration file: the spec's `cluster:` section plus a
    /// section per service (see docs/configuration.md). Environment
    /// variables and flags override it.
    #[arg(long = "config", env = "CONFIG_FILE", value_name = "FILE")]
    pub config: Option<PathBuf>,
}

impl ConfigArgs {
    /// The file's contents, or an empty [`ConfigFile`] without `--config`.
    pub fn load(&self) -> Result<ConfigFile, ConfigError> {
        match &self.config {
            Some(p) => load(p),
            None => Ok(ConfigFile::default()),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {file}: {source}")]
    Read {
        file: String,
        source: std::io::Error,
    },
    /// Malformed YAML, an unknown key, or a value of the wrong type.
    #[error("config file {file}: `{key}`: {message}")]
    Invalid {
        file: String,
        /// Dotted path of the offending key (`.` for the whole file).
        key: String,
        message: String,
    },
    /// A key of the spec that this implementation does not honour.
    #[error("config file {file}: `{key}` is not supported: {reason}")]
    Unsupported {
        file: String,
        key: String,
        reason: String,
    },
    #[error("config file {file}: invalid value for `{key}`: {reason}")]
    Value {
        file: String,
        key: String,
        reason: String,
    },
}

impl ConfigError {
    /// The dotted path of the key at fault, when there is one.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::Read { .. } => None,
            ConfigError::Invalid { key, .. }
            | ConfigError::Unsupported { key, .. }
            | ConfigError::Value { key, .. } => Some(key),
        }
    }
}

/// Reads and checks the file at `path`.
pub fn load(path: &Path) -> Result<ConfigFile, ConfigError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        file: file.clone(),
        source,
    })?;
    parse(&text, &file)
}

/// Parses and checks `text`; `file` names it in errors.
pub fn parse(text: &str, file: &str) -> Result<ConfigFile, ConfigError> {
    // An empty file (or only comments) is a file with no keys.
    let value: serde_yaml::Value =
        serde_yaml::from_str(text).map_err(|e| ConfigError::Invalid {
            file: file.into(),
            key: ".".into(),
            message: e.to_string(),
        })?;
    if value.is_null() {
        return Ok(ConfigFile::default());
    }
    let parsed: ConfigFile =
        serde_path_to_error::deserialize(value).map_err(|e| ConfigError::Invalid {
            file: file.into(),
            key: key_path(&e),
            message: e.inner().to_string(),
        })?;
    check(&parsed, file)?;
    Ok(parsed)
}

/// The path serde_path_to_error reports, with the unknown key itself
/// appended when that is the error (the path then stops at its parent).
fn key_path(e: &serde_path_to_error::Error<serde_yaml::Error>) -> String {
    let path = e.path().to_string();
    let message = e.inner().to_string();
    let unknown = message
        .strip_prefix("unknown field `")
        .and_then(|rest| rest.split_once('`'))
        .map(|(name, _)| name);
    match (path.as_str(), unknown) {
        (".", Some(name)) => name.to_string(),
        (p, Some(name)) if !p.ends_with(name) => format!("{p}.{name}"),
        (p, _) => p.to_string(),
    }
}

/// Refused keys and values no service could honour.
fn check(f: &ConfigFile, file: &str) -> Result<(), ConfigError> {
    let c = &f.cluster;
    let present = [
        ("cluster.region", c.region.is_some()),
        ("cluster.sharding.strategy", c.sharding.strategy.is_some()),
        (
            "cluster.sharding.total_shards",
            c.sharding.total_shards.is_some(),
        ),
        (
            "cluster.sharding.replication_factor",
            c.sharding.replication_factor.is_some(),
        ),
        (
            "cluster.sharding.virtual_nodes",
            c.sharding.virtual_nodes.is_some(),
        ),
        ("cluster.replication.method", c.replication.method.is_some()),
        (
            "cluster.replication.sync_interval",
            c.replication.sync_interval.is_some(),
        ),
        (
            "cluster.replication.batch_size",
            c.replication.batch_size.is_some(),
        ),
        (
            "cluster.replication.compression",
            c.replication.compression.is_some(),
        ),
    ];
    if let Some((key, _)) = present.iter().find(|(_, set)| *set) {
        let reason = match reference::key(key).map(|k| k.usage) {
            Some(reference::Use::Refused(reason)) => reason,
            _ => "not implemented",
        };
        return Err(ConfigError::Unsupported {
            file: file.into(),
            key: (*key).into(),
            reason: reason.into(),
        });
    }
    if let Some(n) = c.swim.gossip_fanout.filter(|n| *n != 3) {
        return Err(ConfigError::Value {
            file: file.into(),
            key: "cluster.swim.gossip_fanout".into(),
            reason: format!("{n}: only 3 is supported (chitchat gossips to 3 peers per round)"),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests;
