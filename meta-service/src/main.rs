//! `meta-service`: one member of the meta cluster.
//!
//! Standalone (one member, no other process needed):
//!
//! ```text
//! meta-service --id 1 --listen 127.0.0.1:7947 --data-dir data/meta-1 --bootstrap
//! ```
//!
//! Three members: start each with the same `--peers`; the member with the
//! lowest id initialises the cluster on its first start (later starts find
//! it initialised and just rejoin):
//!
//! ```text
//! meta-service --id 1 --listen 127.0.0.1:7001 --data-dir d1 --peers 1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003
//! ```

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Parser;
use meta_service::config::DEFAULT_LISTEN;
use meta_service::{MemberId, MetaConfig};

#[derive(Debug, Parser)]
#[command(
    name = "meta-service",
    about = "Raft-replicated source of truth of the cluster map"
)]
struct Args {
    /// This member's id (> 0, unique among meta members).
    #[arg(long, env = "META_ID")]
    id: MemberId,
    /// Address to listen on (HTTP: Raft RPCs, API, admin, metrics).
    #[arg(long, env = "META_LISTEN", default_value = DEFAULT_LISTEN)]
    listen: SocketAddr,
    /// Address other members and clients use; defaults to --listen (with
    /// 127.0.0.1 if --listen is a wildcard).
    #[arg(long, env = "META_ADVERTISE")]
    advertise: Option<String>,
    /// Directory of the Raft log, vote and snapshots (default data/meta-<id>).
    #[arg(long, env = "META_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// All voters of the cluster, `id=host:port,...` (this member included).
    /// The lowest id initialises the cluster if it is new.
    #[arg(long, env = "META_PEERS", value_delimiter = ',')]
    peers: Vec<String>,
    /// Single-member mode: initialise a cluster of this member alone.
    #[arg(long, conflicts_with = "peers")]
    bootstrap: bool,
    #[arg(long, default_value_t = 150)]
    election_timeout_min_ms: u64,
    #[arg(long, default_value_t = 300)]
    election_timeout_max_ms: u64,
    #[arg(long, default_value_t = 50)]
    heartbeat_ms: u64,
    /// Snapshot (and compact the log) every this many entries.
    #[arg(long, default_value_t = 10_000)]
    snapshot_interval: u64,
    /// Log entries kept behind a snapshot for lagging followers.
    #[arg(long, default_value_t = 1_000)]
    keep_logs_after_snapshot: u64,
    /// Longest a write or linearizable read waits for a quorum.
    #[arg(long, default_value_t = 5_000)]
    write_timeout_ms: u64,
    /// The longest a storage node may stay silent before it is marked
    /// dead: the grace of a node with no heartbeat history yet, and the
    /// cap of the adaptive grace (its write lease is half its grace).
    #[arg(long, env = "NODE_DEAD_AFTER_MS", default_value_t = 5_000)]
    node_dead_after_ms: u64,
    /// The shortest grace, for a node whose heartbeats arrive regularly
    /// (three times the longest recent gap between them, within the bounds).
    #[arg(long, env = "NODE_DEAD_AFTER_MIN_MS", default_value_t = 600)]
    node_dead_after_min_ms: u64,
    /// A dead node's replicas are re-created elsewhere after this long.
    #[arg(long, default_value_t = 60_000)]
    replica_replace_after_ms: u64,
    /// Log as JSON lines instead of text.
    #[arg(long)]
    log_json: bool,
}

fn parse_peers(peers: &[String]) -> anyhow::Result<BTreeMap<MemberId, String>> {
    let mut out = BTreeMap::new();
    for p in peers.iter().filter(|p| !p.is_empty()) {
        let (id, addr) = p
            .split_once('=')
            .with_context(|| format!("peer `{p}` is not id=host:port"))?;
        let id: MemberId = id
            .trim()
            .parse()
            .with_context(|| format!("peer id in `{p}`"))?;
        if out.insert(id, addr.trim().to_string()).is_some() {
            bail!("peer id {id} given twice");
        }
    }
    Ok(out)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,openraft=warn"));
    if args.log_json {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .json()
            .init();
    } else {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init();
    }
    if args.id == 0 {
        bail!("--id must be > 0");
    }
    let peers = parse_peers(&args.peers)?;
    if !peers.is_empty() && !peers.contains_key(&args.id) {
        bail!("--peers must include this member ({})", args.id);
    }
    let advertise = match (&args.advertise, peers.get(&args.id)) {
        (Some(a), _) => a.clone(),
        (None, Some(a)) => a.clone(),
        (None, None) if args.listen.ip().is_unspecified() => {
            format!("127.0.0.1:{}", args.listen.port())
        }
        (None, None) => args.listen.to_string(),
    };
    let data_dir = args
        .data_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("data/meta-{}", args.id)));

    let mut config = MetaConfig::new(args.id, advertise, data_dir);
    config.election_timeout_min_ms = args.election_timeout_min_ms;
    config.election_timeout_max_ms = args.election_timeout_max_ms;
    config.heartbeat_interval_ms = args.heartbeat_ms;
    config.snapshot_interval = args.snapshot_interval;
    config.max_in_snapshot_log_to_keep = args.keep_logs_after_snapshot;
    config.write_timeout = Duration::from_millis(args.write_timeout_ms);
    config.node_dead_after = Duration::from_millis(args.node_dead_after_ms);
    config.node_dead_after_min = Duration::from_millis(args.node_dead_after_min_ms);
    config.replica_replace_after = Duration::from_millis(args.replica_replace_after_ms);

    let init = if args.bootstrap {
        Some(BTreeMap::from([(args.id, config.advertise_addr.clone())]))
    } else if peers.keys().next() == Some(&args.id) {
        Some(peers)
    } else {
        None
    };

    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("bind {}", args.listen))?;
    meta_service::server::run(config, listener, init, lifecycle::shutdown_signal()).await
}
