//! The storage node's configuration: [`StorageNodeConfig`], typed, what
//! [`super::start`] takes; and [`StorageNodeArgs`], the command-line flags
//! and environment variables the binary puts on top of the config file
//! (`lifecycle::config`: `cluster:` and `storage_node:`) to make it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use lifecycle::config::schema::Fsync;
use lifecycle::config::ConfigFile;
use membership::SwimTimings;
use protocol::NodeId;

use crate::node::NodeOptions;
use crate::shard::{available_cores, default_builds, BuildBudget, ShardOptions};
use crate::wal::{SyncMode, WalOptions};

/// The node's flags and environment variables. None has a default here:
/// a flag or variable that is absent leaves the config file's value (or
/// the default) in place, see [`StorageNodeArgs::into_config`].
#[derive(Clone, Debug, Default, Parser)]
#[command(
    name = "storage-node",
    about = "Storage node: FAISS-backed shard replicas, replicated over QUIC"
)]
pub struct StorageNodeArgs {
    /// This node's id (unique in the cluster, stable across restarts): a
    /// number, or a StatefulSet pod name `<name>-<N>`, which means N + 1.
    /// Also `cluster.node_id`; required from one of them.
    #[arg(long, env = "NODE_ID", value_parser = protocol::node_name::parse_node_id)]
    pub id: Option<u64>,
    /// Shards' directory (default data/storage).
    #[arg(long, env = "DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// QUIC data-plane address to bind (default 0.0.0.0:7950).
    #[arg(long, env = "RPC_LISTEN")]
    pub rpc_listen: Option<SocketAddr>,
    /// `host:port` other nodes and gateways reach the QUIC server on
    /// (default: the bound address).
    #[arg(long, env = "RPC_ADVERTISE")]
    pub advertise: Option<String>,
    /// HTTP address for `/metrics` and `/health` (default 0.0.0.0:7960).
    #[arg(long, env = "HTTP_LISTEN")]
    pub http_listen: Option<SocketAddr>,
    /// Meta-service members (`host:port`), comma separated (default
    /// 127.0.0.1 on `cluster.raft.port`, 7947).
    #[arg(long, env = "META_ADDRS", value_delimiter = ',')]
    pub meta: Vec<String>,
    /// Folder with `ca.pem` and this node's `<cert-name>.pem` / `.key`
    /// (default certs).
    #[arg(long, env = "CERTS_DIR")]
    pub certs_dir: Option<PathBuf>,
    /// Certificate name (default `storage-<id>`; other nodes verify us by it).
    #[arg(long = "cert-name", env = "CERT_NAME")]
    pub cert_name_flag: Option<String>,
    /// Gossip (chitchat) UDP address; gossip is off when absent (and no
    /// `cluster.swim.port`).
    #[arg(long, env = "GOSSIP_LISTEN")]
    pub gossip_listen: Option<SocketAddr>,
    /// Gossip address peers reach us on (required when listening on 0.0.0.0).
    #[arg(long, env = "GOSSIP_ADVERTISE")]
    pub gossip_advertise: Option<SocketAddr>,
    /// Gossip seeds (`host:port`), comma separated.
    #[arg(long, env = "SEED_NODES", value_delimiter = ',')]
    pub seeds: Vec<String>,
    /// Nodes only gossip with nodes of the same id (default vectordb).
    #[arg(long, env = "CLUSTER_ID")]
    pub cluster_id: Option<String>,
    /// Heartbeat period to the meta-service (default 100; each
    /// acknowledgement renews the write lease). The meta-service's
    /// dead-node grace adapts to how regularly beats arrive, down to a few
    /// periods (600 ms by default).
    #[arg(long, env = "HEARTBEAT_MS")]
    pub heartbeat_ms: Option<u64>,
    /// Write lease if the meta-service does not say (default 2500; it
    /// does: half the node's current grace).
    #[arg(long)]
    pub lease_ms: Option<u64>,
    /// `always`: fsync the WAL before acknowledging (default); `never`: leave it to the OS.
    #[arg(long, env = "WAL_FSYNC")]
    pub fsync: Option<Fsync>,
    /// Points per growing segment (default 20000).
    #[arg(long)]
    pub max_segment_points: Option<usize>,
    /// Index builds and merges at once across all of this node's replicas
    /// (default: half the cores, at least 1); each build then uses
    /// cores / this many FAISS threads.
    #[arg(long, env = "MAX_INDEX_BUILDS")]
    pub max_index_builds: Option<usize>,
    /// How long a write waits for its replicas (default 5000).
    #[arg(long)]
    pub write_timeout_ms: Option<u64>,
}

/// A configuration the flags, environment and file cannot make.
#[derive(Debug, thiserror::Error)]
pub enum StorageConfigError {
    #[error("no node id: set cluster.node_id in the config file, NODE_ID or --id")]
    NoId,
    #[error("cluster.node_id {value:?}: {reason}")]
    BadId { value: String, reason: String },
}

/// Everything [`super::start`] needs to run one storage node.
#[derive(Clone, Debug)]
pub struct StorageNodeConfig {
    pub id: NodeId,
    pub data_dir: PathBuf,
    /// QUIC data-plane address to bind (port 0: the OS picks).
    pub rpc_listen: SocketAddr,
    /// `host:port` others reach the QUIC server on (default: the bound address).
    pub advertise: Option<String>,
    /// HTTP address for `/metrics` and `/health`.
    pub http_listen: SocketAddr,
    /// Meta-service members (`host:port`).
    pub meta: Vec<String>,
    /// Folder with `ca.pem` and this node's `<cert_name>.pem` / `.key`.
    pub certs_dir: PathBuf,
    pub cert_name: String,
    /// Gossip; off when `None`.
    pub gossip: Option<membership::MembershipConfig>,
    /// Heartbeat period to the meta-service (each ack renews the write lease).
    pub heartbeat: Duration,
    /// Write lease until the meta-service says otherwise.
    pub lease: Duration,
    /// Timeout of calls to other storage nodes.
    pub request_timeout: Duration,
    pub node: NodeOptions,
}

impl StorageNodeConfig {
    /// Defaults of the flags, with ports chosen by the OS on loopback.
    pub fn new(id: NodeId, data_dir: PathBuf, meta: Vec<String>, certs_dir: PathBuf) -> Self {
        let node = NodeOptions::default();
        StorageNodeConfig {
            id,
            data_dir,
            rpc_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            advertise: None,
            http_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            meta,
            certs_dir,
            cert_name: format!("storage-{}", id.0),
            gossip: None,
            heartbeat: Duration::from_millis(300),
            lease: Duration::from_millis(2500),
            request_timeout: node.write_timeout.max(Duration::from_secs(1)),
            node,
        }
    }
}

impl StorageNodeArgs {
    /// The typed configuration of the config file (`lifecycle::config`:
    /// `cluster:` and `storage_node:`) with these flags and environment
    /// variables on top.
    pub fn into_config(self, file: &ConfigFile) -> Result<StorageNodeConfig, StorageConfigError> {
        let c = &file.cluster;
        let f = &file.storage_node;
        let id = match self.id {
            Some(id) => id,
            None => {
                let value = c.node_id.clone().ok_or(StorageConfigError::NoId)?;
                protocol::node_name::parse_node_id(&value).map_err(|e| {
                    StorageConfigError::BadId {
                        value,
                        reason: e.to_string(),
                    }
                })?
            }
        };
        let raft_port = c.raft.port.unwrap_or(DEFAULT_META_PORT);
        let meta = non_empty(self.meta)
            .or_else(|| f.meta.clone())
            .unwrap_or_else(|| vec![format!("127.0.0.1:{raft_port}")]);
        let write_timeout = self
            .write_timeout_ms
            .map(Duration::from_millis)
            .or(f.write_timeout)
            .unwrap_or(Duration::from_secs(5));
        let fsync = self.fsync.or(f.fsync).unwrap_or(Fsync::Always);
        let max_segment_points = self
            .max_segment_points
            .or(f.max_segment_points)
            .unwrap_or(20_000);
        let cores = available_cores();
        let builds = self
            .max_index_builds
            .or(f.max_index_builds)
            .unwrap_or_else(|| default_builds(cores));
        let node = NodeOptions {
            shard: ShardOptions {
                wal: WalOptions {
                    sync: match fsync {
                        Fsync::Always => SyncMode::Always,
                        Fsync::Never => SyncMode::Never,
                    },
                    ..WalOptions::default()
                },
                max_segment_points,
                build_budget: BuildBudget::new(builds, cores),
                ..ShardOptions::default()
            },
            write_timeout,
            ..NodeOptions::default()
        };
        let gossip_listen = self
            .gossip_listen
            .or(f.gossip_listen)
            .or_else(|| c.swim.port.map(|p| SocketAddr::from(([0, 0, 0, 0], p))));
        let gossip = gossip_listen.map(|listen| {
            let swim = SwimTimings::default();
            let swim = SwimTimings {
                probe_interval: c.swim.probe_interval.unwrap_or(swim.probe_interval),
                probe_timeout: c.swim.probe_timeout.unwrap_or(swim.probe_timeout),
                suspect_timeout: c.swim.suspect_timeout.unwrap_or(swim.suspect_timeout),
            };
            let cluster_id = self
                .cluster_id
                .clone()
                .or_else(|| f.cluster_id.clone())
                .unwrap_or_else(|| "vectordb".into());
            let seeds = non_empty(self.seeds.clone())
                .or_else(|| c.seed_nodes.clone())
                .unwrap_or_default();
            let mut config = membership::MembershipConfig::new(NodeId(id), cluster_id, listen)
                .with_seeds(seeds)
                .with_swim(swim);
            if let Some(advertise) = self.gossip_advertise.or(f.gossip_advertise) {
                config.gossip_advertise = advertise;
            }
            config
        });
        Ok(StorageNodeConfig {
            id: NodeId(id),
            data_dir: self
                .data_dir
                .or_else(|| f.data_dir.clone())
                .unwrap_or_else(|| PathBuf::from("data/storage")),
            rpc_listen: self
                .rpc_listen
                .or(f.rpc_listen)
                .unwrap_or(SocketAddr::from(([0, 0, 0, 0], 7950))),
            advertise: self.advertise.or_else(|| f.advertise.clone()),
            http_listen: self
                .http_listen
                .or(f.http_listen)
                .unwrap_or(SocketAddr::from(([0, 0, 0, 0], 7960))),
            meta,
            certs_dir: self
                .certs_dir
                .or_else(|| f.certs_dir.clone())
                .unwrap_or_else(|| PathBuf::from("certs")),
            cert_name: self
                .cert_name_flag
                .or_else(|| f.cert_name.clone())
                .unwrap_or_else(|| format!("storage-{id}")),
            gossip,
            heartbeat: self
                .heartbeat_ms
                .map(Duration::from_millis)
                .or(f.heartbeat)
                .unwrap_or(Duration::from_millis(100)),
            lease: self
                .lease_ms
                .map(Duration::from_millis)
                .or(f.lease)
                .unwrap_or(Duration::from_millis(2500)),
            request_timeout: write_timeout.max(Duration::from_secs(1)),
            node,
        })
    }
}

/// The meta-service's port when the file does not say (`cluster.raft.port`).
const DEFAULT_META_PORT: u16 = 7947;

/// A list flag given no values is the same as an absent one.
fn non_empty(v: Vec<String>) -> Option<Vec<String>> {
    (!v.is_empty()).then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(extra: &[&str]) -> Result<StorageNodeArgs, clap::Error> {
        StorageNodeArgs::try_parse_from(
            std::iter::once("storage-node").chain(extra.iter().copied()),
        )
    }

    fn config(extra: &[&str], file: &str) -> StorageNodeConfig {
        let file = lifecycle::config::parse(file, "test.yml").expect("file");
        args(extra)
            .expect("flags")
            .into_config(&file)
            .expect("config")
    }

    /// A StatefulSet pod name as the id: ordinal N is node N + 1, and the
    /// default certificate follows the numeric id; from a flag or the file.
    #[test]
    fn a_pod_name_id_is_its_ordinal_plus_one() {
        let c = config(&["--id", "vectordb-storage-2"], "");
        assert_eq!(c.id, NodeId(3));
        assert_eq!(c.cert_name, "storage-3");
        assert_eq!(config(&["--id", "7"], "").id, NodeId(7));
        let c = config(&[], "cluster: {node_id: vectordb-storage-0}");
        assert_eq!(c.id, NodeId(1));
        let file = lifecycle::config::parse("cluster: {node_id: storage}", "t").expect("file");
        let err = args(&[])
            .expect("flags")
            .into_config(&file)
            .expect_err("bad id");
        assert!(err.to_string().contains("storage"), "{err}");
        let err = args(&[])
            .expect("flags")
            .into_config(&ConfigFile::default())
            .expect_err("no id");
        assert!(matches!(err, StorageConfigError::NoId));
    }

    #[test]
    fn a_malformed_id_or_fsync_mode_is_refused_naming_the_value() {
        let err = args(&["--id", "storage"]).expect_err("no ordinal");
        assert!(err.to_string().contains("`storage`"), "{err}");
        let err = args(&["--id", "1", "--fsync", "sometimes"]).expect_err("fsync");
        assert!(err.to_string().contains("sometimes"), "{err}");
    }

    /// Every key of the file reaches the node's settings; the swim timings
    /// become the gossip round and phi.
    #[test]
    fn the_file_sets_every_storage_setting() {
        let file = "\
cluster:
  node_id: 4
  swim: {probe_interval: 2s, probe_timeout: 1s, suspect_timeout: 1s, port: 7999}
  raft: {port: 9000}
  seed_nodes: ['a:7999']
storage_node:
  data_dir: /d
  rpc_listen: 127.0.0.1:1
  advertise: n4:1
  http_listen: 127.0.0.1:2
  certs_dir: /c
  cert_name: n4
  gossip_advertise: 10.0.0.4:7999
  cluster_id: cid
  heartbeat: 250ms
  lease: 3s
  fsync: never
  max_segment_points: 77
  max_index_builds: 3
  write_timeout: 7s
";
        let c = config(&[], file);
        assert_eq!(c.id, NodeId(4));
        assert_eq!(c.data_dir, PathBuf::from("/d"));
        assert_eq!(c.rpc_listen.to_string(), "127.0.0.1:1");
        assert_eq!(c.advertise.as_deref(), Some("n4:1"));
        assert_eq!(c.http_listen.to_string(), "127.0.0.1:2");
        assert_eq!(c.meta, vec!["127.0.0.1:9000"]);
        assert_eq!(c.certs_dir, PathBuf::from("/c"));
        assert_eq!(c.cert_name, "n4");
        assert_eq!(c.heartbeat, Duration::from_millis(250));
        assert_eq!(c.lease, Duration::from_secs(3));
        assert_eq!(c.node.shard.wal.sync, SyncMode::Never);
        assert_eq!(c.node.shard.max_segment_points, 77);
        assert_eq!(c.node.shard.build_budget.limit(), 3);
        assert_eq!(c.node.write_timeout, Duration::from_secs(7));
        let g = c.gossip.expect("swim.port turns gossip on");
        assert_eq!(g.gossip_listen.to_string(), "0.0.0.0:7999");
        assert_eq!(g.gossip_advertise.to_string(), "10.0.0.4:7999");
        assert_eq!(g.cluster_id, "cid");
        assert_eq!(g.seeds, vec!["a:7999"]);
        assert_eq!(g.gossip_interval, Duration::from_millis(200));
        assert_eq!(g.phi_threshold, 10.0);
        let defaults = config(&["--id", "1"], "");
        assert!(defaults.gossip.is_none(), "gossip off unless asked");
        assert_eq!(defaults.meta, vec!["127.0.0.1:7947"]);
        assert_eq!(defaults.rpc_listen.to_string(), "0.0.0.0:7950");
        assert_eq!(defaults.heartbeat, Duration::from_millis(100));
    }

    /// The file, then the environment, then flags. The only test of this
    /// binary that sets these variables (the process's environment is
    /// shared by the tests running in parallel).
    #[test]
    fn file_then_env_then_flags() {
        let file = "cluster: {node_id: 1}\nstorage_node: {data_dir: /file, heartbeat: 300ms, cluster_id: file, gossip_listen: 127.0.0.1:5}\n";
        assert_eq!(config(&[], file).data_dir, PathBuf::from("/file"));
        std::env::set_var("DATA_DIR", "/env");
        std::env::set_var("HEARTBEAT_MS", "400");
        let from_env = config(&[], file);
        let from_flags = config(&["--data-dir", "/flag", "--cluster-id", "flag"], file);
        std::env::remove_var("DATA_DIR");
        std::env::remove_var("HEARTBEAT_MS");
        assert_eq!(from_env.data_dir, PathBuf::from("/env"));
        assert_eq!(from_env.heartbeat, Duration::from_millis(400));
        assert_eq!(
            from_env.gossip.map(|g| g.cluster_id).as_deref(),
            Some("file")
        );
        assert_eq!(from_flags.data_dir, PathBuf::from("/flag"));
        assert_eq!(from_flags.heartbeat, Duration::from_millis(400));
        assert_eq!(
            from_flags.gossip.map(|g| g.cluster_id).as_deref(),
            Some("flag")
        );
    }

    /// Every flag the reference page names for the storage node exists,
    /// with the environment variable it names.
    #[test]
    fn the_reference_pages_flags_exist() {
        use clap::CommandFactory;
        use lifecycle::config::{check, reference::Service};
        check::reference_flags_exist(&StorageNodeArgs::command(), Service::Storage, false);
    }
}
