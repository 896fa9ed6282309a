//! The storage node's configuration: [`StorageNodeConfig`], typed, what
//! [`super::start`] takes; and [`StorageNodeArgs`], the command-line flags
//! and environment variables the binary parses into it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use protocol::NodeId;

use crate::node::NodeOptions;
use crate::shard::{available_cores, default_builds, BuildBudget, ShardOptions};
use crate::wal::{SyncMode, WalOptions};

#[derive(Clone, Debug, Parser)]
#[command(
    name = "storage-node",
    about = "Storage node: FAISS-backed shard replicas, replicated over QUIC"
)]
pub struct StorageNodeArgs {
    /// This node's id (unique in the cluster, stable across restarts): a
    /// number, or a StatefulSet pod name `<name>-<N>`, which means N + 1.
    #[arg(long, env = "NODE_ID", value_parser = protocol::node_name::parse_node_id)]
    pub id: u64,
    #[arg(long, env = "DATA_DIR", default_value = "data/storage")]
    pub data_dir: PathBuf,
    /// QUIC data-plane address to bind.
    #[arg(long, env = "RPC_LISTEN", default_value = "0.0.0.0:7950")]
    pub rpc_listen: SocketAddr,
    /// `host:port` other nodes and gateways reach the QUIC server on
    /// (default: the bound address).
    #[arg(long, env = "RPC_ADVERTISE")]
    pub advertise: Option<String>,
    /// HTTP address for `/metrics` and `/health`.
    #[arg(long, env = "HTTP_LISTEN", default_value = "0.0.0.0:7960")]
    pub http_listen: SocketAddr,
    /// Meta-service members (`host:port`), comma separated.
    #[arg(
        long,
        env = "META_ADDRS",
        value_delimiter = ',',
        default_value = "127.0.0.1:7947"
    )]
    pub meta: Vec<String>,
    /// Folder with `ca.pem` and this node's `<cert-name>.pem` / `.key`.
    #[arg(long, env = "CERTS_DIR", default_value = "certs")]
    pub certs_dir: PathBuf,
    /// Certificate name (default `storage-<id>`; other nodes verify us by
    /// it, and the meta-service gives it the storage role for node `<id>`).
    #[arg(long = "cert-name", env = "CERT_NAME")]
    pub cert_name_flag: Option<String>,
    /// Talk plain HTTP to a meta-service run with `--insecure-plain-http`
    /// (local development only; by default mutual TLS with the certificate
    /// above).
    #[arg(long, env = "META_INSECURE_PLAIN_HTTP")]
    pub meta_insecure_plain_http: bool,
    /// Gossip (chitchat) UDP address; gossip is off when absent.
    #[arg(long, env = "GOSSIP_LISTEN")]
    pub gossip_listen: Option<SocketAddr>,
    /// Gossip address peers reach us on (required when listening on 0.0.0.0).
    #[arg(long, env = "GOSSIP_ADVERTISE")]
    pub gossip_advertise: Option<SocketAddr>,
    /// Gossip seeds (`host:port`), comma separated.
    #[arg(long, env = "SEED_NODES", value_delimiter = ',')]
    pub seeds: Vec<String>,
    #[arg(long, env = "CLUSTER_ID", default_value = "vectordb")]
    pub cluster_id: String,
    /// Heartbeat period to the meta-service (each acknowledgement renews the
    /// write lease). The meta-service's dead-node grace adapts to how
    /// regularly beats arrive, down to a few periods (600 ms by default).
    #[arg(long, env = "HEARTBEAT_MS", default_value_t = 100)]
    pub heartbeat_ms: u64,
    /// Write lease if the meta-service does not say (it does: half the node's current grace).
    #[arg(long, default_value_t = 2500)]
    pub lease_ms: u64,
    /// `always`: fsync the WAL before acknowledging (default); `never`: leave it to the OS.
    #[arg(long, env = "WAL_FSYNC", default_value = "always", value_parser = ["always", "never"])]
    pub fsync: String,
    #[arg(long, default_value_t = 20_000)]
    pub max_segment_points: usize,
    /// Index builds and merges at once across all of this node's replicas
    /// (default: half the cores, at least 1); each build then uses
    /// cores / this many FAISS threads.
    #[arg(long, env = "MAX_INDEX_BUILDS")]
    pub max_index_builds: Option<usize>,
    /// How long a write waits for its replicas.
    #[arg(long, default_value_t = 5000)]
    pub write_timeout_ms: u64,
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
    /// Plain HTTP to the meta-service instead of mutual TLS with
    /// `cert_name` (a meta-service without TLS: tests, local dev).
    pub meta_plain_http: bool,
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
            cert_name: protocol::roles::storage_cert_name(id),
            meta_plain_http: false,
            gossip: None,
            heartbeat: Duration::from_millis(300),
            lease: Duration::from_millis(2500),
            request_timeout: node.write_timeout.max(Duration::from_secs(1)),
            node,
        }
    }
}

impl StorageNodeArgs {
    /// The typed configuration these flags describe.
    pub fn into_config(self) -> StorageNodeConfig {
        StorageNodeConfig {
            id: self.node_id(),
            cert_name: self.cert_name(),
            meta_plain_http: self.meta_insecure_plain_http,
            heartbeat: self.heartbeat(),
            lease: Duration::from_millis(self.lease_ms),
            request_timeout: self.request_timeout(),
            node: self.node_options(),
            gossip: self.membership_config(),
            data_dir: self.data_dir,
            rpc_listen: self.rpc_listen,
            advertise: self.advertise,
            http_listen: self.http_listen,
            meta: self.meta,
            certs_dir: self.certs_dir,
        }
    }

    pub fn node_id(&self) -> NodeId {
        NodeId(self.id)
    }

    pub fn cert_name(&self) -> String {
        self.cert_name_flag
            .clone()
            .unwrap_or_else(|| protocol::roles::storage_cert_name(self.node_id()))
    }

    pub fn heartbeat(&self) -> Duration {
        Duration::from_millis(self.heartbeat_ms)
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.write_timeout_ms.max(1000))
    }

    pub fn node_options(&self) -> NodeOptions {
        NodeOptions {
            shard: ShardOptions {
                wal: WalOptions {
                    sync: if self.fsync == "never" {
                        SyncMode::Never
                    } else {
                        SyncMode::Always
                    },
                    ..WalOptions::default()
                },
                max_segment_points: self.max_segment_points,
                build_budget: self.build_budget(),
                ..ShardOptions::default()
            },
            write_timeout: Duration::from_millis(self.write_timeout_ms),
            ..NodeOptions::default()
        }
    }

    /// The node's index-build budget: `--max-index-builds`, or the
    /// default for this machine.
    pub fn build_budget(&self) -> Arc<BuildBudget> {
        let cores = available_cores();
        BuildBudget::new(
            self.max_index_builds
                .unwrap_or_else(|| default_builds(cores)),
            cores,
        )
    }

    pub fn membership_config(&self) -> Option<membership::MembershipConfig> {
        let listen = self.gossip_listen?;
        let mut config =
            membership::MembershipConfig::new(self.node_id(), self.cluster_id.clone(), listen)
                .with_seeds(self.seeds.clone());
        if let Some(advertise) = self.gossip_advertise {
            config.gossip_advertise = advertise;
        }
        Some(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(extra: &[&str]) -> Result<StorageNodeArgs, clap::Error> {
        StorageNodeArgs::try_parse_from(
            std::iter::once("storage-node").chain(extra.iter().copied()),
        )
    }

    /// A StatefulSet pod name as the id: ordinal N is node N + 1, and the
    /// default certificate follows the numeric id.
    #[test]
    fn a_pod_name_id_is_its_ordinal_plus_one() {
        let config = args(&["--id", "vectordb-storage-2"])
            .expect("pod name")
            .into_config();
        assert_eq!(config.id, NodeId(3));
        assert_eq!(config.cert_name, "storage-3");
        assert_eq!(args(&["--id", "7"]).expect("number").node_id(), NodeId(7));
    }

    #[test]
    fn a_malformed_id_or_fsync_mode_is_refused_naming_the_value() {
        let err = args(&["--id", "storage"]).expect_err("no ordinal");
        assert!(err.to_string().contains("`storage`"), "{err}");
        let err = args(&["--id", "1", "--fsync", "sometimes"]).expect_err("fsync");
        assert!(err.to_string().contains("sometimes"), "{err}");
    }
}
