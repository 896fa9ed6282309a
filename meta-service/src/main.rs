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
//!
//! Ids may be StatefulSet pod names (`vectordb-meta-0` is member 1, see
//! `protocol::node_name`); `--check-config` prints what the flags resolve
//! to, including whether this member would initialise, and exits.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Parser;
use lifecycle::config::schema::RebalancingSection;
use lifecycle::config::ConfigFile;
use meta_service::{MemberId, MetaConfig};
use protocol::cluster::RebalanceSettings;

/// The spec's Raft port: the default of `cluster.raft.port`.
const DEFAULT_RAFT_PORT: u16 = 7947;

/// Flags and environment variables; none has a default here, so an absent
/// one leaves the config file's value (or the default) in place.
#[derive(Debug, Parser)]
#[command(
    name = "meta-service",
    about = "Raft-replicated source of truth of the cluster map"
)]
struct Args {
    #[command(flatten)]
    config: lifecycle::config::ConfigArgs,
    /// This member's id (> 0, unique among meta members): a number, or a
    /// StatefulSet pod name `<name>-<N>`, which means N + 1. Also
    /// `cluster.node_id`; required from one of them.
    #[arg(long, env = "META_ID", value_parser = protocol::node_name::parse_node_id)]
    id: Option<MemberId>,
    /// Address to listen on (HTTP: Raft RPCs, API, admin, metrics; default
    /// 0.0.0.0 on `cluster.raft.port`, 7947).
    #[arg(long, env = "META_LISTEN")]
    listen: Option<SocketAddr>,
    /// Address other members and clients use; defaults to this member's
    /// --peers entry, else --listen (with 127.0.0.1 if it is a wildcard).
    #[arg(long, env = "META_ADVERTISE")]
    advertise: Option<String>,
    /// Directory of the Raft log, vote and snapshots (default data/meta-<id>).
    #[arg(long, env = "META_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// All voters of the cluster, `id=host:port,...` (this member included;
    /// ids as in --id, pod names allowed). The lowest id initialises the
    /// cluster if it is new.
    #[arg(long, env = "META_PEERS", value_delimiter = ',')]
    peers: Vec<String>,
    /// Single-member mode: initialise a cluster of this member alone.
    #[arg(long)]
    bootstrap: bool,
    /// Default 150 (`cluster.raft.election_timeout`).
    #[arg(long)]
    election_timeout_min_ms: Option<u64>,
    /// Default 300.
    #[arg(long)]
    election_timeout_max_ms: Option<u64>,
    /// Default 50 (`cluster.raft.heartbeat_interval`).
    #[arg(long)]
    heartbeat_ms: Option<u64>,
    /// Snapshot (and compact the log) every this many entries (default 10000).
    #[arg(long)]
    snapshot_interval: Option<u64>,
    /// Log entries kept behind a snapshot for lagging followers (default 1000).
    #[arg(long)]
    keep_logs_after_snapshot: Option<u64>,
    /// Longest a write or linearizable read waits for a quorum (default 5000).
    #[arg(long)]
    write_timeout_ms: Option<u64>,
    /// The longest a storage node may stay silent before it is marked
    /// dead: the grace of a node with no heartbeat history yet, and the
    /// cap of the adaptive grace (its write lease is half its grace;
    /// default 5000).
    #[arg(long, env = "NODE_DEAD_AFTER_MS")]
    node_dead_after_ms: Option<u64>,
    /// The shortest grace, for a node whose heartbeats arrive regularly
    /// (three times the longest recent gap between them, within the
    /// bounds; default 600).
    #[arg(long, env = "NODE_DEAD_AFTER_MIN_MS")]
    node_dead_after_min_ms: Option<u64>,
    /// A dead node's replicas are re-created elsewhere after this long
    /// (default 60000).
    #[arg(long)]
    replica_replace_after_ms: Option<u64>,
    #[command(flatten)]
    log: lifecycle::LogArgs,
    /// Check the config file, environment and flags, print the resulting
    /// configuration and exit (binds nothing, writes nothing): what a
    /// deployment's checks run against each pod's command line.
    #[arg(long)]
    check_config: bool,
}

/// What the file, environment and flags resolve to: the member's
/// configuration, its listen address and, for the member that initialises
/// a new cluster, the voters to initialise with.
#[derive(Debug)]
struct Plan {
    config: MetaConfig,
    listen: SocketAddr,
    init: Option<BTreeMap<MemberId, String>>,
}

fn parse_peers(peers: &[String]) -> anyhow::Result<BTreeMap<MemberId, String>> {
    let mut out = BTreeMap::new();
    for p in peers.iter().filter(|p| !p.is_empty()) {
        let (id, addr) = p
            .split_once('=')
            .with_context(|| format!("peer `{p}` is not id=host:port"))?;
        let id: MemberId =
            protocol::node_name::parse_node_id(id).with_context(|| format!("peer id in `{p}`"))?;
        if out.insert(id, addr.trim().to_string()).is_some() {
            bail!("peer id {id} given twice");
        }
    }
    Ok(out)
}

fn plan(args: &Args, file: &ConfigFile) -> anyhow::Result<Plan> {
    let c = &file.cluster;
    let f = &file.meta_service;
    let id = match (args.id, &c.node_id) {
        (Some(id), _) => id,
        (None, Some(v)) => protocol::node_name::parse_node_id(v)
            .with_context(|| format!("cluster.node_id {v:?}"))?,
        (None, None) => {
            bail!("no member id: set cluster.node_id in the config file, META_ID or --id")
        }
    };
    if id == 0 {
        bail!("--id must be > 0");
    }
    let peer_list = if args.peers.is_empty() {
        f.peers.clone().unwrap_or_default()
    } else {
        args.peers.clone()
    };
    let peers = parse_peers(&peer_list)?;
    let bootstrap = args.bootstrap || f.bootstrap.unwrap_or(false);
    if bootstrap && !peers.is_empty() {
        bail!("bootstrap (single-member mode) and peers exclude each other");
    }
    if !peers.is_empty() && !peers.contains_key(&id) {
        bail!("--peers must include this member ({id})");
    }
    let raft_port = c.raft.port.unwrap_or(DEFAULT_RAFT_PORT);
    let listen = args
        .listen
        .or(f.listen)
        .unwrap_or(SocketAddr::from(([0, 0, 0, 0], raft_port)));
    let advertise = match (
        args.advertise.clone().or_else(|| f.advertise.clone()),
        peers.get(&id),
    ) {
        (Some(a), _) => a,
        (None, Some(a)) => a.clone(),
        (None, None) if listen.ip().is_unspecified() => format!("127.0.0.1:{}", listen.port()),
        (None, None) => listen.to_string(),
    };
    let data_dir = args
        .data_dir
        .clone()
        .or_else(|| f.data_dir.clone())
        .unwrap_or_else(|| PathBuf::from(format!("data/meta-{id}")));

    let mut config = MetaConfig::new(id, advertise, data_dir);
    let ms = |d: Duration| d.as_millis() as u64;
    let election = c.raft.election_timeout;
    config.election_timeout_min_ms = args
        .election_timeout_min_ms
        .or(election.map(|r| ms(r.min)))
        .unwrap_or(config.election_timeout_min_ms);
    config.election_timeout_max_ms = args
        .election_timeout_max_ms
        .or(election.map(|r| ms(r.max)))
        .unwrap_or(config.election_timeout_max_ms);
    config.heartbeat_interval_ms = args
        .heartbeat_ms
        .or(c.raft.heartbeat_interval.map(ms))
        .unwrap_or(config.heartbeat_interval_ms);
    config.snapshot_interval = args
        .snapshot_interval
        .or(c.raft.snapshot_interval)
        .unwrap_or(config.snapshot_interval);
    config.max_in_snapshot_log_to_keep = args
        .keep_logs_after_snapshot
        .or(f.keep_logs_after_snapshot)
        .unwrap_or(config.max_in_snapshot_log_to_keep);
    let duration = |flag: Option<u64>, file: Option<Duration>, default: Duration| {
        flag.map(Duration::from_millis).or(file).unwrap_or(default)
    };
    config.write_timeout = duration(args.write_timeout_ms, f.write_timeout, config.write_timeout);
    config.node_dead_after = duration(
        args.node_dead_after_ms,
        f.node_dead_after,
        config.node_dead_after,
    );
    config.node_dead_after_min = duration(
        args.node_dead_after_min_ms,
        f.node_dead_after_min,
        config.node_dead_after_min,
    );
    config.replica_replace_after = duration(
        args.replica_replace_after_ms,
        f.replica_replace_after,
        config.replica_replace_after,
    );
    config.initial_settings = initial_settings(&c.rebalancing);
    // What openraft would refuse at start, refused now (and by --check-config).
    config
        .raft_config()
        .map_err(|e| anyhow::anyhow!("raft settings: {e}"))?;

    let init = if bootstrap {
        Some(BTreeMap::from([(id, config.advertise_addr.clone())]))
    } else if peers.keys().next() == Some(&id) {
        Some(peers)
    } else {
        None
    };
    Ok(Plan {
        config,
        listen,
        init,
    })
}

/// `cluster.rebalancing.*` as the cluster map's settings (the keys of
/// `RebalanceSettings`), which the leader writes when the map lacks them.
fn initial_settings(r: &RebalancingSection) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut put = |key: &str, value: Option<String>| {
        if let Some(v) = value {
            out.insert(key.to_string(), v);
        }
    };
    put(
        RebalanceSettings::KEY_ENABLED,
        r.auto_enabled.map(|v| v.to_string()),
    );
    put(
        RebalanceSettings::KEY_THRESHOLD,
        r.trigger_threshold.map(|v| v.to_string()),
    );
    put(
        RebalanceSettings::KEY_MAX_CONCURRENT,
        r.max_concurrent_migrations.map(|v| v.to_string()),
    );
    put(
        RebalanceSettings::KEY_THROTTLE,
        r.throttle_mb_per_sec.map(|v| v.to_string()),
    );
    out
}

/// What `--check-config` prints: every resolved setting.
fn check_config_line(plan: &Plan) -> String {
    let c = &plan.config;
    format!(
        "meta-service config ok: id={} listen={} advertise={} data_dir={} initialises={} \
         election_timeout_ms={}-{} heartbeat_ms={} snapshot_interval={} keep_logs_after_snapshot={} \
         write_timeout_ms={} node_dead_after_ms={} node_dead_after_min_ms={} \
         replica_replace_after_ms={} initial_settings={}",
        c.id,
        plan.listen,
        c.advertise_addr,
        c.data_dir.display(),
        plan.init.as_ref().map_or("no".to_string(), |voters| voters
            .keys()
            .map(|id| id.to_string())
            .collect::<Vec<_>>()
            .join(",")),
        c.election_timeout_min_ms,
        c.election_timeout_max_ms,
        c.heartbeat_interval_ms,
        c.snapshot_interval,
        c.max_in_snapshot_log_to_keep,
        c.write_timeout.as_millis(),
        c.node_dead_after.as_millis(),
        c.node_dead_after_min.as_millis(),
        c.replica_replace_after.as_millis(),
        c.initial_settings
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(","),
    )
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    args.log.init("info,openraft=warn");
    let file = args.config.load()?;
    let plan = plan(&args, &file)?;
    if args.check_config {
        println!("{}", check_config_line(&plan));
        return Ok(());
    }
    let Plan {
        config,
        listen,
        init,
    } = plan;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("bind {listen}"))?;
    meta_service::server::run(config, listener, init, lifecycle::shutdown_signal()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan_of(args: &[&str]) -> anyhow::Result<Plan> {
        plan_with(args, "")
    }

    fn plan_with(args: &[&str], file: &str) -> anyhow::Result<Plan> {
        let args =
            Args::try_parse_from(std::iter::once("meta-service").chain(args.iter().copied()))?;
        plan(&args, &lifecycle::config::parse(file, "test.yml")?)
    }

    const PEERS: &str = "vectordb-meta-0=vectordb-meta-0.vectordb-meta:7947,\
vectordb-meta-1=vectordb-meta-1.vectordb-meta:7947,\
vectordb-meta-2=vectordb-meta-2.vectordb-meta:7947";

    /// The StatefulSet shape: ids and peers by pod name; ordinal 0 (id 1)
    /// initialises the cluster, the others join it.
    #[test]
    fn pod_names_give_ids_and_ordinal_zero_initialises() {
        let first = plan_of(&["--id", "vectordb-meta-0", "--peers", PEERS]).expect("member 0");
        assert_eq!(first.config.id, 1);
        assert_eq!(
            first.config.advertise_addr,
            "vectordb-meta-0.vectordb-meta:7947"
        );
        let voters: Vec<_> = first
            .init
            .expect("member 0 initialises")
            .into_keys()
            .collect();
        assert_eq!(voters, vec![1, 2, 3]);
        for (name, id) in [("vectordb-meta-1", 2), ("vectordb-meta-2", 3)] {
            let other = plan_of(&["--id", name, "--peers", PEERS]).expect(name);
            assert_eq!(other.config.id, id);
            assert!(other.init.is_none(), "{name} must not initialise");
        }
    }

    #[test]
    fn a_malformed_id_or_a_member_missing_from_its_peers_is_refused() {
        let err = plan_of(&["--id", "meta", "--bootstrap"]).expect_err("bad id");
        assert!(err.to_string().contains("`meta`"), "{err}");
        let err = plan_of(&["--id", "vectordb-meta-5", "--peers", PEERS]).expect_err("not a peer");
        assert!(
            err.to_string().contains("must include this member (6)"),
            "{err}"
        );
        let err = plan_of(&["--id", "0", "--bootstrap"]).expect_err("id 0");
        assert!(err.to_string().contains("> 0"), "{err}");
    }

    /// Every key the meta-service reads from the file reaches its config.
    #[test]
    fn the_file_sets_every_meta_setting() {
        let file = "\
cluster:
  node_id: vectordb-meta-1
  raft: {election_timeout: 400-800ms, heartbeat_interval: 100ms, snapshot_interval: 500, port: 9100}
  rebalancing: {auto_enabled: false, trigger_threshold: 0.5, max_concurrent_migrations: 4, throttle_mb_per_sec: 12.5}
meta_service:
  data_dir: /m
  peers: ['1=a:9100', '2=b:9100']
  keep_logs_after_snapshot: 50
  write_timeout: 2s
  node_dead_after: 4s
  node_dead_after_min: 1s
  replica_replace_after: 90s
";
        let p = plan_with(&[], file).expect("plan");
        let c = &p.config;
        assert_eq!(c.id, 2);
        assert_eq!(p.listen.to_string(), "0.0.0.0:9100");
        assert_eq!(c.advertise_addr, "b:9100");
        assert!(p.init.is_none());
        assert_eq!(c.data_dir, PathBuf::from("/m"));
        assert_eq!(
            (c.election_timeout_min_ms, c.election_timeout_max_ms),
            (400, 800)
        );
        assert_eq!(c.heartbeat_interval_ms, 100);
        assert_eq!(c.snapshot_interval, 500);
        assert_eq!(c.max_in_snapshot_log_to_keep, 50);
        assert_eq!(c.write_timeout, Duration::from_secs(2));
        assert_eq!(c.node_dead_after, Duration::from_secs(4));
        assert_eq!(c.node_dead_after_min, Duration::from_secs(1));
        assert_eq!(c.replica_replace_after, Duration::from_secs(90));
        let settings: Vec<(&str, &str)> = c
            .initial_settings
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            settings,
            vec![
                ("rebalancing.auto_enabled", "false"),
                ("rebalancing.max_concurrent_migrations", "4"),
                ("rebalancing.throttle_mb_per_sec", "12.5"),
                ("rebalancing.trigger_threshold", "0.5"),
            ]
        );
        for (key, value) in &c.initial_settings {
            assert_eq!(RebalanceSettings::check(key, value), Some(Ok(())), "{key}");
        }
        let err = plan_with(
            &[],
            "cluster: {raft: {heartbeat_interval: 1s}}\nmeta_service: {bootstrap: true}",
        )
        .map(|_| ())
        .expect_err("no id");
        assert!(err.to_string().contains("no member id"), "{err}");
        let err = plan_with(
            &["--id", "1"],
            "meta_service: {bootstrap: true, peers: ['1=a:1']}",
        )
        .map(|_| ())
        .expect_err("both");
        assert!(err.to_string().contains("exclude"), "{err}");
        let err = plan_with(
            &["--id", "1", "--bootstrap"],
            "cluster: {raft: {heartbeat_interval: 1s}}",
        )
        .map(|_| ())
        .expect_err("heartbeat above the election timeout");
        assert!(err.to_string().contains("raft settings"), "{err}");
    }

    /// The file, then the environment, then flags. The only test here that
    /// sets these variables (the environment is shared by parallel tests).
    #[test]
    fn file_then_env_then_flags() {
        let file = "cluster: {node_id: 1}\nmeta_service: {bootstrap: true, data_dir: /file, node_dead_after: 3s}";
        let p = plan_with(&[], file).expect("file");
        assert_eq!(p.config.data_dir, PathBuf::from("/file"));
        std::env::set_var("META_DATA_DIR", "/env");
        std::env::set_var("NODE_DEAD_AFTER_MS", "4000");
        let from_env = plan_with(&[], file);
        let from_flags = plan_with(&["--data-dir", "/flag", "--id", "3"], file);
        std::env::remove_var("META_DATA_DIR");
        std::env::remove_var("NODE_DEAD_AFTER_MS");
        let (from_env, from_flags) = (from_env.expect("env"), from_flags.expect("flags"));
        assert_eq!(from_env.config.data_dir, PathBuf::from("/env"));
        assert_eq!(from_env.config.node_dead_after, Duration::from_secs(4));
        assert_eq!(from_env.config.id, 1);
        assert_eq!(from_flags.config.data_dir, PathBuf::from("/flag"));
        assert_eq!(from_flags.config.node_dead_after, Duration::from_secs(4));
        assert_eq!(from_flags.config.id, 3);
    }

    /// Every flag the reference page names for the meta-service exists,
    /// with the environment variable it names.
    #[test]
    fn the_reference_pages_flags_exist() {
        use clap::CommandFactory;
        use lifecycle::config::{check, reference::Service};
        check::reference_flags_exist(&Args::command(), Service::Meta, false);
    }
}
