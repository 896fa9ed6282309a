//! The gateway's configuration: the cluster's file
//! (`lifecycle::config`: `cluster:` plus this service's `gateway:`
//! section; docs/configuration.md), then the environment, then flags;
//! later sources win.
//!
//! Environment read here (beside the flags' own, see `main.rs`):
//! `CLUSTER_ENABLED`, `NODE_ID`, `SEED_NODES` (comma separated), as in the
//! spec.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use lifecycle::config::schema::{GatewaySection, KeyAccess};
use lifecycle::config::ConfigFile;

use crate::api::{ApiKeys, CollectionKey, HttpOptions, ScopeAccess};
use crate::gateway::RoutingOptions;
use crate::tls::RestTls;

pub use lifecycle::config::parse_duration;

/// The spec's default REST port.
pub const DEFAULT_REST_PORT: u16 = 15001;
/// The spec's Raft (meta-service) port.
pub const DEFAULT_RAFT_PORT: u16 = 7947;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(transparent)]
    File(#[from] lifecycle::config::ConfigError),
    #[error("invalid value {value:?} for {name}: {reason}")]
    Value {
        name: &'static str,
        value: String,
        reason: String,
    },
}

/// Command-line overrides (see `main.rs` for the flags).
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub rest_port: Option<u16>,
    pub listen_host: Option<String>,
    pub meta_service: Vec<String>,
    pub api_key: Option<String>,
    pub read_only_api_key: Option<String>,
    pub node_id: Option<String>,
    pub certs_dir: Option<PathBuf>,
    pub cert_name: Option<String>,
}

/// The resolved configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub enabled: bool,
    pub node_id: String,
    pub seed_nodes: Vec<String>,
    pub listen: String,
    pub meta_service: Vec<String>,
    pub keys: ApiKeys,
    pub http: HttpOptions,
    pub routing: RoutingOptions,
    /// Where the QUIC client's CA and certificate are.
    pub certs_dir: PathBuf,
    pub cert_name: String,
    /// HTTPS on the REST port; plain HTTP without it.
    pub tls: Option<RestTls>,
}

impl Config {
    /// File (if any) → environment (through `env`) → overrides.
    pub fn load(
        path: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
        overrides: &Overrides,
    ) -> Result<Config, ConfigError> {
        let file = match path {
            Some(p) => lifecycle::config::load(p)?,
            None => ConfigFile::default(),
        };
        Self::resolve(file, env, overrides)
    }

    /// Parses a file's text (named `<text>` in errors).
    pub fn parse_file(text: &str) -> Result<ConfigFile, ConfigError> {
        Ok(lifecycle::config::parse(text, "<text>")?)
    }

    pub fn resolve(
        file: ConfigFile,
        env: impl Fn(&str) -> Option<String>,
        o: &Overrides,
    ) -> Result<Config, ConfigError> {
        let cluster = file.cluster;
        let g: GatewaySection = file.gateway;
        let enabled = match env("CLUSTER_ENABLED") {
            Some(v) => match v.to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" => true,
                "false" | "0" | "no" => false,
                _ => {
                    return Err(ConfigError::Value {
                        name: "CLUSTER_ENABLED",
                        value: v,
                        reason: "use true or false".into(),
                    })
                }
            },
            None => cluster.enabled.unwrap_or(true),
        };
        let node_id = o
            .node_id
            .clone()
            .or_else(|| env("NODE_ID"))
            .or(cluster.node_id)
            .unwrap_or_else(|| "gateway".into());
        let seed_nodes = match env("SEED_NODES") {
            Some(v) => v
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect(),
            None => cluster.seed_nodes.unwrap_or_default(),
        };
        let raft_port = cluster.raft.port.unwrap_or(DEFAULT_RAFT_PORT);
        let explicit_meta = if o.meta_service.is_empty() {
            g.meta_service.unwrap_or_default()
        } else {
            o.meta_service.clone()
        };
        let meta_service = if !explicit_meta.is_empty() {
            explicit_meta
        } else if enabled && !seed_nodes.is_empty() {
            seed_nodes
                .iter()
                .map(|s| {
                    let host = s.rsplit_once(':').map_or(s.as_str(), |(h, _)| h);
                    format!("{host}:{raft_port}")
                })
                .collect()
        } else {
            vec![format!("127.0.0.1:{raft_port}")]
        };
        let http_defaults = HttpOptions::default();
        let routing_defaults = RoutingOptions::default();
        let write_attempts = g.write_attempts.unwrap_or(routing_defaults.write_attempts);
        if write_attempts == 0 {
            return Err(ConfigError::Value {
                name: "gateway.write_attempts",
                value: "0".into(),
                reason: "must be at least 1".into(),
            });
        }
        let keys = ApiKeys {
            read_write: o.api_key.clone().or(g.api_key).filter(|k| !k.is_empty()),
            read_only: o
                .read_only_api_key
                .clone()
                .or(g.read_only_api_key)
                .filter(|k| !k.is_empty()),
            collection_keys: g
                .collection_keys
                .unwrap_or_default()
                .into_iter()
                .map(|k| CollectionKey {
                    key: k.key,
                    collections: k.collections.into_iter().collect::<BTreeSet<_>>(),
                    access: match k.access {
                        KeyAccess::Read => ScopeAccess::Read,
                        KeyAccess::ReadWrite => ScopeAccess::ReadWrite,
                    },
                })
                .collect(),
        };
        check_collection_keys(&keys)?;
        let rest_port = o.rest_port.or(g.rest_port).unwrap_or(DEFAULT_REST_PORT);
        let listen_host = o
            .listen_host
            .clone()
            .or(g.listen_host)
            .unwrap_or_else(|| "0.0.0.0".into());
        Ok(Config {
            enabled,
            node_id,
            seed_nodes,
            listen: format!("{listen_host}:{rest_port}"),
            meta_service,
            keys,
            http: HttpOptions {
                max_body_bytes: g.max_body_bytes.unwrap_or(http_defaults.max_body_bytes),
                request_timeout: g.request_timeout.unwrap_or(http_defaults.request_timeout),
                max_concurrent_requests: g
                    .max_concurrent_requests
                    .unwrap_or(http_defaults.max_concurrent_requests),
            },
            routing: RoutingOptions {
                shard_timeout: g.shard_timeout.unwrap_or(routing_defaults.shard_timeout),
                hedge_delay: g.hedge_delay.unwrap_or(routing_defaults.hedge_delay),
                failure_penalty: g
                    .failure_penalty
                    .unwrap_or(routing_defaults.failure_penalty),
                write_attempts,
                ..routing_defaults
            },
            certs_dir: o
                .certs_dir
                .clone()
                .or(g.certs_dir)
                .unwrap_or_else(|| PathBuf::from("certs")),
            cert_name: o
                .cert_name
                .clone()
                .or(g.cert_name)
                .unwrap_or_else(|| "gateway".into()),
            tls: g.tls.map(|t| RestTls {
                cert: t.cert,
                key: t.key,
            }),
        })
    }
}

/// A scoped key is non-empty, unlike every other key (one key, one
/// meaning), and names at least one collection, each a valid name.
fn check_collection_keys(keys: &ApiKeys) -> Result<(), ConfigError> {
    let bad = |value: &str, reason: &str| ConfigError::Value {
        name: "gateway.collection_keys",
        value: value.chars().take(4).chain("…".chars()).collect(),
        reason: reason.to_string(),
    };
    let mut seen: Vec<&str> = keys
        .read_write
        .iter()
        .chain(keys.read_only.iter())
        .map(String::as_str)
        .collect();
    for k in &keys.collection_keys {
        if k.key.is_empty() {
            return Err(bad("", "a key must not be empty"));
        }
        if seen.contains(&k.key.as_str()) {
            return Err(bad(&k.key, "the same key is configured twice"));
        }
        seen.push(&k.key);
        if k.collections.is_empty() {
            return Err(bad(
                &k.key,
                "`collections` must name at least one collection",
            ));
        }
        for name in &k.collections {
            protocol::names::validate_collection_name(name)
                .map_err(|e| bad(&k.key, &e.to_string()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
