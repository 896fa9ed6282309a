//! Configuration: the spec's YAML layout (`cluster:` shared by every
//! service, plus this service's own `gateway:` section), then the spec's
//! environment variables, then command-line flags; later sources win.
//!
//! ```yaml
//! cluster:
//!   enabled: true
//!   node_id: "gateway-1"
//!   seed_nodes: ["node-1.cluster.local:7946"]
//!   raft: { port: 7947 }          # the meta-service port
//!   # swim, sharding, replication, rebalancing: read by other services
//! gateway:
//!   rest_port: 15001
//!   listen_host: "0.0.0.0"
//!   meta_service: ["meta-1:7947"] # default: every seed host on raft.port
//!   api_key: "secret"             # read-write
//!   read_only_api_key: "peek"
//!   collection_keys:              # keys that reach only some collections
//!     - { key: "team-a", collections: ["a"], access: read_write }
//!     - { key: "viewer", collections: ["a", "b"], access: read }
//!   max_body_bytes: 33554432
//!   request_timeout: 30s
//!   max_concurrent_requests: 512
//!   shard_timeout: 10s
//!   hedge_delay: 200ms            # or "off"
//!   failure_penalty: 5s
//!   write_attempts: 6
//!   certs_dir: "certs"            # ca.pem + <cert_name>.pem/.key (QUIC mTLS)
//!   cert_name: "gateway"
//!   tls:                          # optional: HTTPS only on rest_port
//!     cert: "rest.pem"            # chain, leaf first
//!     key: "rest.key"
//! ```
//!
//! Environment: `CLUSTER_ENABLED`, `NODE_ID`, `SEED_NODES` (comma
//! separated), as in the spec.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::api::{ApiKeys, CollectionKey, HttpOptions};
use crate::gateway::RoutingOptions;
use crate::tls::RestTls;

/// The spec's default REST port.
pub const DEFAULT_REST_PORT: u16 = 15001;
/// The spec's Raft (meta-service) port.
pub const DEFAULT_RAFT_PORT: u16 = 7947;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid config file: {0}")]
    Yaml(#[from] serde_yaml::Error),
    #[error("invalid value {value:?} for {name}: {reason}")]
    Value {
        name: &'static str,
        value: String,
        reason: String,
    },
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct File {
    pub cluster: ClusterSection,
    pub gateway: GatewaySection,
}

#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct ClusterSection {
    pub enabled: bool,
    pub node_id: Option<String>,
    pub seed_nodes: Vec<String>,
    pub raft: RaftSection,
}

impl Default for ClusterSection {
    fn default() -> Self {
        Self {
            enabled: true,
            node_id: None,
            seed_nodes: Vec::new(),
            raft: RaftSection::default(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct RaftSection {
    pub port: u16,
}

impl Default for RaftSection {
    fn default() -> Self {
        Self {
            port: DEFAULT_RAFT_PORT,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GatewaySection {
    pub rest_port: u16,
    pub listen_host: String,
    pub meta_service: Vec<String>,
    pub api_key: Option<String>,
    pub read_only_api_key: Option<String>,
    pub collection_keys: Vec<CollectionKey>,
    pub max_body_bytes: usize,
    #[serde(deserialize_with = "duration")]
    pub request_timeout: Duration,
    pub max_concurrent_requests: usize,
    #[serde(deserialize_with = "duration")]
    pub shard_timeout: Duration,
    #[serde(deserialize_with = "optional_duration")]
    pub hedge_delay: Option<Duration>,
    #[serde(deserialize_with = "duration")]
    pub failure_penalty: Duration,
    pub write_attempts: u32,
    pub certs_dir: PathBuf,
    pub cert_name: String,
    pub tls: Option<RestTls>,
}

impl Default for GatewaySection {
    fn default() -> Self {
        let http = HttpOptions::default();
        let routing = RoutingOptions::default();
        Self {
            rest_port: DEFAULT_REST_PORT,
            listen_host: "0.0.0.0".into(),
            meta_service: Vec::new(),
            api_key: None,
            read_only_api_key: None,
            collection_keys: Vec::new(),
            max_body_bytes: http.max_body_bytes,
            request_timeout: http.request_timeout,
            max_concurrent_requests: http.max_concurrent_requests,
            shard_timeout: routing.shard_timeout,
            hedge_delay: routing.hedge_delay,
            failure_penalty: routing.failure_penalty,
            write_attempts: routing.write_attempts,
            certs_dir: PathBuf::from("certs"),
            cert_name: "gateway".into(),
            tls: None,
        }
    }
}

/// `"150ms"`, `"1s"`, `"2m"`, `"1h"` or a bare number of milliseconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().map_err(|_| format!("not a duration: {s:?}"))?;
    let secs = match unit.trim() {
        "" | "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        other => return Err(format!("unknown unit {other:?} in {s:?}")),
    };
    Duration::try_from_secs_f64(secs).map_err(|e| e.to_string())
}

#[derive(Deserialize)]
#[serde(untagged)]
enum DurationIn {
    Millis(u64),
    Text(String),
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    match DurationIn::deserialize(d)? {
        DurationIn::Millis(ms) => Ok(Duration::from_millis(ms)),
        DurationIn::Text(s) => parse_duration(&s).map_err(serde::de::Error::custom),
    }
}

fn optional_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    match DurationIn::deserialize(d)? {
        DurationIn::Text(s) if s == "off" || s == "none" => Ok(None),
        DurationIn::Millis(0) => Ok(None),
        DurationIn::Millis(ms) => Ok(Some(Duration::from_millis(ms))),
        DurationIn::Text(s) => parse_duration(&s)
            .map(Some)
            .map_err(serde::de::Error::custom),
    }
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
    /// Plain HTTP to a meta-service run with `--insecure-plain-http`
    /// (local development); by default mutual TLS with `cert_name`, whose
    /// name gives the gateway role. Set by the binary's
    /// `--meta-insecure-plain-http`.
    pub meta_plain_http: bool,
}

impl Config {
    /// File (if any) → environment (through `env`) → overrides.
    pub fn load(
        path: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
        overrides: &Overrides,
    ) -> Result<Config, ConfigError> {
        let file: File = match path {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                    path: p.display().to_string(),
                    source,
                })?;
                Self::parse_file(&text)?
            }
            None => File::default(),
        };
        Self::resolve(file, env, overrides)
    }

    pub fn parse_file(text: &str) -> Result<File, ConfigError> {
        if text.trim().is_empty() {
            return Ok(File::default());
        }
        Ok(serde_yaml::from_str(text)?)
    }

    pub fn resolve(
        file: File,
        env: impl Fn(&str) -> Option<String>,
        o: &Overrides,
    ) -> Result<Config, ConfigError> {
        let mut cluster = file.cluster;
        let mut g = file.gateway;
        if let Some(v) = env("CLUSTER_ENABLED") {
            cluster.enabled = match v.to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" => true,
                "false" | "0" | "no" => false,
                _ => {
                    return Err(ConfigError::Value {
                        name: "CLUSTER_ENABLED",
                        value: v,
                        reason: "use true or false".into(),
                    })
                }
            };
        }
        if let Some(v) = env("NODE_ID") {
            cluster.node_id = Some(v);
        }
        if let Some(v) = env("SEED_NODES") {
            cluster.seed_nodes = v
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect();
        }
        if let Some(p) = o.rest_port {
            g.rest_port = p;
        }
        if let Some(h) = &o.listen_host {
            g.listen_host = h.clone();
        }
        if !o.meta_service.is_empty() {
            g.meta_service = o.meta_service.clone();
        }
        if o.api_key.is_some() {
            g.api_key = o.api_key.clone();
        }
        if o.read_only_api_key.is_some() {
            g.read_only_api_key = o.read_only_api_key.clone();
        }
        if let Some(d) = &o.certs_dir {
            g.certs_dir = d.clone();
        }
        if let Some(n) = &o.cert_name {
            g.cert_name = n.clone();
        }
        if let Some(id) = &o.node_id {
            cluster.node_id = Some(id.clone());
        }
        let meta_service = if !g.meta_service.is_empty() {
            g.meta_service
        } else if cluster.enabled && !cluster.seed_nodes.is_empty() {
            cluster
                .seed_nodes
                .iter()
                .map(|s| {
                    let host = s.rsplit_once(':').map_or(s.as_str(), |(h, _)| h);
                    format!("{host}:{}", cluster.raft.port)
                })
                .collect()
        } else {
            vec![format!("127.0.0.1:{}", cluster.raft.port)]
        };
        if g.write_attempts == 0 {
            return Err(ConfigError::Value {
                name: "gateway.write_attempts",
                value: "0".into(),
                reason: "must be at least 1".into(),
            });
        }
        let keys = ApiKeys {
            read_write: g.api_key.filter(|k| !k.is_empty()),
            read_only: g.read_only_api_key.filter(|k| !k.is_empty()),
            collection_keys: g.collection_keys,
        };
        check_collection_keys(&keys)?;
        let defaults = RoutingOptions::default();
        Ok(Config {
            enabled: cluster.enabled,
            node_id: cluster.node_id.unwrap_or_else(|| "gateway".into()),
            seed_nodes: cluster.seed_nodes,
            listen: format!("{}:{}", g.listen_host, g.rest_port),
            meta_service,
            keys,
            http: HttpOptions {
                max_body_bytes: g.max_body_bytes,
                request_timeout: g.request_timeout,
                max_concurrent_requests: g.max_concurrent_requests,
            },
            routing: RoutingOptions {
                shard_timeout: g.shard_timeout,
                hedge_delay: g.hedge_delay,
                failure_penalty: g.failure_penalty,
                write_attempts: g.write_attempts,
                ..defaults
            },
            certs_dir: g.certs_dir,
            cert_name: g.cert_name,
            tls: g.tls,
            meta_plain_http: false,
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
mod tests {
    use super::*;

    const SPEC: &str = r#"
cluster:
  enabled: true
  node_id: "node-1"
  region: "us-east-1"
  swim:
    probe_interval: 1s
    port: 7946
  raft:
    election_timeout: 150-300ms
    heartbeat_interval: 50ms
    port: 7947
  sharding:
    strategy: "hybrid"
    total_shards: 256
  seed_nodes:
    - "node-1.cluster.local:7946"
    - "node-2.cluster.local:7946"
gateway:
  rest_port: 16000
  api_key: "rw"
  hedge_delay: off
  request_timeout: 2s
  shard_timeout: 1500
"#;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn spec_layout_parses() {
        let c = Config::resolve(
            Config::parse_file(SPEC).unwrap(),
            no_env,
            &Overrides::default(),
        )
        .unwrap();
        assert_eq!(c.node_id, "node-1");
        assert_eq!(c.listen, "0.0.0.0:16000");
        assert_eq!(
            c.meta_service,
            vec!["node-1.cluster.local:7947", "node-2.cluster.local:7947"]
        );
        assert_eq!(c.keys.read_write.as_deref(), Some("rw"));
        assert_eq!(c.routing.hedge_delay, None);
        assert_eq!(c.http.request_timeout, Duration::from_secs(2));
        assert_eq!(c.routing.shard_timeout, Duration::from_millis(1500));
    }

    #[test]
    fn defaults_env_and_flags() {
        let c = Config::resolve(File::default(), no_env, &Overrides::default()).unwrap();
        assert_eq!(c.listen, "0.0.0.0:15001");
        assert_eq!(c.meta_service, vec!["127.0.0.1:7947"]);
        assert!(!c.keys.enabled());
        let env = |k: &str| match k {
            "SEED_NODES" => Some("a:7946, b:7946".to_string()),
            "NODE_ID" => Some("gw-9".to_string()),
            "CLUSTER_ENABLED" => Some("true".to_string()),
            _ => None,
        };
        let o = Overrides {
            rest_port: Some(1234),
            ..Overrides::default()
        };
        let c = Config::resolve(File::default(), env, &o).unwrap();
        assert_eq!(c.node_id, "gw-9");
        assert_eq!(c.meta_service, vec!["a:7947", "b:7947"]);
        assert_eq!(c.listen, "0.0.0.0:1234");
        let o = Overrides {
            meta_service: vec!["m:1".into()],
            ..Overrides::default()
        };
        assert_eq!(
            Config::resolve(File::default(), env, &o)
                .unwrap()
                .meta_service,
            vec!["m:1"]
        );
        let bad = |k: &str| (k == "CLUSTER_ENABLED").then(|| "maybe".to_string());
        assert!(Config::resolve(File::default(), bad, &Overrides::default()).is_err());
    }

    #[test]
    fn example_file_parses() {
        let text = include_str!("../config.example.yml");
        let c = Config::resolve(
            Config::parse_file(text).unwrap(),
            no_env,
            &Overrides::default(),
        )
        .unwrap();
        assert_eq!(c.listen, "0.0.0.0:15001");
        assert_eq!(c.routing.hedge_delay, Some(Duration::from_millis(200)));
        assert_eq!(c.cert_name, "gateway");
    }

    #[test]
    fn collection_keys_parse_and_are_checked() {
        let text = "gateway:\n  collection_keys:\n    - {key: k1, collections: [a, b], access: read}\n    - {key: k2, collections: [a], access: read_write}\n";
        let c = Config::resolve(
            Config::parse_file(text).unwrap(),
            no_env,
            &Overrides::default(),
        )
        .unwrap();
        assert!(c.keys.enabled());
        assert_eq!(c.keys.collection_keys.len(), 2);
        assert_eq!(
            c.keys.collection_keys[0].access,
            crate::api::ScopeAccess::Read
        );
        for bad in [
            "gateway:\n  collection_keys: [{key: k, collections: [a], access: write}]\n",
            "gateway:\n  collection_keys: [{key: k, collections: [a]}]\n",
        ] {
            assert!(Config::parse_file(bad).is_err(), "{bad}");
        }
        for bad in [
            "gateway:\n  collection_keys: [{key: k, collections: [], access: read}]\n",
            "gateway:\n  collection_keys: [{key: '', collections: [a], access: read}]\n",
            "gateway:\n  collection_keys: [{key: k, collections: ['..'], access: read}]\n",
            "gateway:\n  api_key: k\n  collection_keys: [{key: k, collections: [a], access: read}]\n",
        ] {
            let file = Config::parse_file(bad).unwrap();
            assert!(
                Config::resolve(file, no_env, &Overrides::default()).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn bad_files_are_refused() {
        assert!(Config::parse_file("gateway:\n  rest_prot: 1\n").is_err());
        assert!(Config::parse_file("gateway:\n  request_timeout: soon\n").is_err());
        assert!(Config::parse_file("").is_ok());
        assert!(Config::parse_file("gateway:\n  tls: {cert: a.pem}\n").is_err());
        let tls = Config::parse_file("gateway:\n  tls: {cert: a.pem, key: a.key}\n").unwrap();
        assert_eq!(tls.gateway.tls.map(|t| t.key), Some(PathBuf::from("a.key")));
        assert_eq!(parse_duration("150ms").unwrap(), Duration::from_millis(150));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert!(parse_duration("5 parsecs").is_err());
    }
}
