//! The file's layout: the spec's `cluster:` section plus one section per
//! service. Every struct refuses unknown keys, and every value is optional
//! so a service can tell "not in the file" from a value and put the
//! environment and flags on top (`flag_or_env.or(file).unwrap_or(default)`).
//! Defaults live with the services; `reference` lists them.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::de::IgnoredAny;
use serde::{Deserialize, Deserializer};

use super::duration::{self, DurationRange};

/// One configuration file for the whole cluster.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConfigFile {
    pub cluster: ClusterSection,
    pub meta_service: MetaServiceSection,
    pub storage_node: StorageNodeSection,
    pub gateway: GatewaySection,
}

/// The spec's `cluster:` section, shared by every service.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterSection {
    pub enabled: Option<bool>,
    /// A number, or a StatefulSet pod name (`name-N`).
    #[serde(deserialize_with = "string_or_number")]
    pub node_id: Option<String>,
    /// Refused (see `reference`): present only so the refusal names it.
    pub region: Option<IgnoredAny>,
    pub swim: SwimSection,
    pub raft: RaftSection,
    pub sharding: ShardingSection,
    pub replication: ReplicationSection,
    pub seed_nodes: Option<Vec<String>>,
    pub rebalancing: RebalancingSection,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SwimSection {
    #[serde(deserialize_with = "duration::option")]
    pub probe_interval: Option<Duration>,
    #[serde(deserialize_with = "duration::option")]
    pub probe_timeout: Option<Duration>,
    #[serde(deserialize_with = "duration::option")]
    pub suspect_timeout: Option<Duration>,
    pub gossip_fanout: Option<u32>,
    pub port: Option<u16>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RaftSection {
    #[serde(deserialize_with = "duration::option_range")]
    pub election_timeout: Option<DurationRange>,
    #[serde(deserialize_with = "duration::option")]
    pub heartbeat_interval: Option<Duration>,
    /// Log entries between snapshots.
    pub snapshot_interval: Option<u64>,
    pub port: Option<u16>,
}

/// Every key refused: sharding is per collection here.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ShardingSection {
    pub strategy: Option<IgnoredAny>,
    pub total_shards: Option<IgnoredAny>,
    pub replication_factor: Option<IgnoredAny>,
    pub virtual_nodes: Option<IgnoredAny>,
}

/// Every key refused: replication is primary–backup over QUIC here.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReplicationSection {
    pub method: Option<IgnoredAny>,
    pub sync_interval: Option<IgnoredAny>,
    pub batch_size: Option<IgnoredAny>,
    pub compression: Option<IgnoredAny>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RebalancingSection {
    pub auto_enabled: Option<bool>,
    pub trigger_threshold: Option<f64>,
    pub max_concurrent_migrations: Option<u64>,
    pub throttle_mb_per_sec: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetaServiceSection {
    pub listen: Option<SocketAddr>,
    pub advertise: Option<String>,
    pub data_dir: Option<PathBuf>,
    /// `id=host:port` per voter.
    pub peers: Option<Vec<String>>,
    pub bootstrap: Option<bool>,
    pub keep_logs_after_snapshot: Option<u64>,
    #[serde(deserialize_with = "duration::option")]
    pub write_timeout: Option<Duration>,
    #[serde(deserialize_with = "duration::option")]
    pub node_dead_after: Option<Duration>,
    #[serde(deserialize_with = "duration::option")]
    pub node_dead_after_min: Option<Duration>,
    #[serde(deserialize_with = "duration::option")]
    pub replica_replace_after: Option<Duration>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageNodeSection {
    pub data_dir: Option<PathBuf>,
    pub rpc_listen: Option<SocketAddr>,
    pub advertise: Option<String>,
    pub http_listen: Option<SocketAddr>,
    pub meta: Option<Vec<String>>,
    pub certs_dir: Option<PathBuf>,
    pub cert_name: Option<String>,
    pub gossip_listen: Option<SocketAddr>,
    pub gossip_advertise: Option<SocketAddr>,
    pub cluster_id: Option<String>,
    #[serde(deserialize_with = "duration::option")]
    pub heartbeat: Option<Duration>,
    #[serde(deserialize_with = "duration::option")]
    pub lease: Option<Duration>,
    pub fsync: Option<Fsync>,
    pub max_segment_points: Option<usize>,
    pub max_index_builds: Option<usize>,
    #[serde(deserialize_with = "duration::option")]
    pub write_timeout: Option<Duration>,
}

/// When the WAL is fsynced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fsync {
    /// Before a write is acknowledged.
    Always,
    /// Left to the OS.
    Never,
}

impl std::str::FromStr for Fsync {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "always" => Ok(Fsync::Always),
            "never" => Ok(Fsync::Never),
            other => Err(format!("`{other}` is not one of: always, never")),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GatewaySection {
    pub rest_port: Option<u16>,
    pub listen_host: Option<String>,
    pub meta_service: Option<Vec<String>>,
    pub api_key: Option<String>,
    pub read_only_api_key: Option<String>,
    pub collection_keys: Option<Vec<CollectionKeyEntry>>,
    pub max_body_bytes: Option<usize>,
    #[serde(deserialize_with = "duration::option")]
    pub request_timeout: Option<Duration>,
    pub max_concurrent_requests: Option<usize>,
    #[serde(deserialize_with = "duration::option")]
    pub shard_timeout: Option<Duration>,
    /// `Some(None)`: hedging off.
    #[serde(deserialize_with = "duration::option_or_off")]
    pub hedge_delay: Option<Option<Duration>>,
    #[serde(deserialize_with = "duration::option")]
    pub failure_penalty: Option<Duration>,
    pub write_attempts: Option<u32>,
    pub certs_dir: Option<PathBuf>,
    pub cert_name: Option<String>,
    pub tls: Option<TlsEntry>,
}

/// `gateway.collection_keys[]`: a key that reaches only some collections.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollectionKeyEntry {
    pub key: String,
    pub collections: Vec<String>,
    pub access: KeyAccess,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyAccess {
    Read,
    ReadWrite,
}

/// `gateway.tls`: the REST port's certificate chain and key (PEM).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsEntry {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// YAML reads `node_id: 3` as a number and `node_id: db-0` as a string;
/// both are ids.
fn string_or_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Id {
        Number(u64),
        Text(String),
    }
    Ok(Some(match Id::deserialize(d)? {
        Id::Number(n) => n.to_string(),
        Id::Text(s) => s,
    }))
}
