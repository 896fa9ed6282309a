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
//! Mutual TLS is on by default: `--certs-dir DIR` holds `ca.pem` and this
//! member's `meta-<id>.pem` / `.key` (`certs issue --name meta-1 --dns
//! meta1`); clients need a certificate of the same CA whose name gives
//! them a role (SECURITY.md). `--insecure-plain-http` runs without TLS
//! and without authentication, for local development only, and says so
//! loudly in the log.
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
use meta_service::config::DEFAULT_LISTEN;
use meta_service::{MemberId, MetaConfig};

#[derive(Debug, Parser)]
#[command(
    name = "meta-service",
    about = "Raft-replicated source of truth of the cluster map"
)]
struct Args {
    /// This member's id (> 0, unique among meta members): a number, or a
    /// StatefulSet pod name `<name>-<N>`, which means N + 1.
    #[arg(long, env = "META_ID", value_parser = protocol::node_name::parse_node_id)]
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
    /// All voters of the cluster, `id=host:port,...` (this member included;
    /// ids as in --id, pod names allowed). The lowest id initialises the
    /// cluster if it is new.
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
    /// Certificate directory for mutual TLS (Raft and API): `ca.pem` and
    /// `<cert-name>.pem` / `.key`.
    #[arg(long, env = "CERTS_DIR")]
    certs_dir: Option<PathBuf>,
    /// This member's certificate in --certs-dir (default `meta-<id>`; its
    /// name must say `meta-<id>`, the role other members accept Raft from).
    #[arg(long, env = "CERT_NAME")]
    cert_name: Option<String>,
    /// Serve plain HTTP with no authentication: anyone who reaches the
    /// port can change the cluster. Local development only.
    #[arg(long, env = "META_INSECURE_PLAIN_HTTP", conflicts_with = "certs_dir")]
    insecure_plain_http: bool,
    #[command(flatten)]
    log: lifecycle::LogArgs,
    /// Check the flags and environment, print the resulting configuration
    /// and exit (binds nothing, writes nothing): what a deployment's
    /// checks run against each pod's command line.
    #[arg(long)]
    check_config: bool,
}

/// What the flags resolve to: the member's configuration and, for the
/// member that initialises a new cluster, the voters to initialise with.
#[derive(Debug)]
struct Plan {
    config: MetaConfig,
    init: Option<BTreeMap<MemberId, String>>,
    /// Certificate directory and name, `None` with `--insecure-plain-http`.
    tls: Option<(PathBuf, String)>,
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

/// Where the member's certificate is: required unless TLS is explicitly
/// switched off. Only names are checked here (`--check-config` runs
/// where the certificates are not); [`load_tls`] reads the files.
fn member_tls(args: &Args) -> anyhow::Result<Option<(PathBuf, String)>> {
    let Some(dir) = &args.certs_dir else {
        if args.insecure_plain_http {
            return Ok(None);
        }
        bail!(
            "the meta-service serves mutual TLS: give --certs-dir (ca.pem and meta-{id}.pem/.key), \
             or --insecure-plain-http for local development without any authentication",
            id = args.id
        );
    };
    let name = args
        .cert_name
        .clone()
        .unwrap_or_else(|| protocol::roles::meta_cert_name(args.id));
    if protocol::roles::Role::from_cert_name(&name) != Some(protocol::roles::Role::Meta(args.id)) {
        bail!(
            "certificate {name:?} is not member {}'s: other members accept Raft only from `meta-{}`",
            args.id,
            args.id
        );
    }
    Ok(Some((dir.clone(), name)))
}

fn load_tls(tls: &Option<(PathBuf, String)>) -> anyhow::Result<Option<meta_client::MetaTls>> {
    let Some((dir, name)) = tls else {
        return Ok(None);
    };
    let tls = meta_client::MetaTls::from_dir(dir, name)
        .with_context(|| format!("load certificate {name:?} from {}", dir.display()))?;
    Ok(Some(tls))
}

fn plan(args: &Args) -> anyhow::Result<Plan> {
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
    Ok(Plan {
        config,
        init,
        tls: member_tls(args)?,
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    args.log.init("info,openraft=warn");
    let Plan {
        mut config,
        init,
        tls,
    } = plan(&args)?;
    if args.check_config {
        println!(
            "meta-service config ok: id={} listen={} advertise={} data_dir={} certs_dir={} cert_name={} initialises={}",
            config.id,
            args.listen,
            config.advertise_addr,
            config.data_dir.display(),
            // One token: the deploy checks split this line on spaces.
            tls.as_ref().map_or("none_insecure_plain_http".to_string(), |(d, _)| d
                .display()
                .to_string()),
            tls.as_ref().map_or("none", |(_, n)| n.as_str()),
            init.as_ref().map_or("no".to_string(), |voters| voters
                .keys()
                .map(|id| id.to_string())
                .collect::<Vec<_>>()
                .join(",")),
        );
        return Ok(());
    }
    config.tls = load_tls(&tls)?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("bind {}", args.listen))?;
    meta_service::server::run(config, listener, init, lifecycle::shutdown_signal()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan_of(args: &[&str]) -> anyhow::Result<Plan> {
        plan_tls(args, &["--insecure-plain-http"])
    }

    fn plan_tls(args: &[&str], tls: &[&str]) -> anyhow::Result<Plan> {
        let args = Args::try_parse_from(
            std::iter::once("meta-service")
                .chain(args.iter().copied())
                .chain(tls.iter().copied()),
        )?;
        plan(&args)
    }

    #[test]
    fn tls_is_required_unless_switched_off_and_the_certificate_must_be_the_members() {
        let err = plan_tls(&["--id", "1", "--bootstrap"], &[]).expect_err("no TLS flag");
        assert!(err.to_string().contains("--certs-dir"), "{err}");
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        transport::certs::init_dir(d, "test-ca", false).expect("ca");
        transport::certs::issue_to_dir(d, "meta-1", &[], &[]).expect("meta-1");
        let d = d.to_str().expect("utf-8");
        let ok = plan_tls(&["--id", "1", "--bootstrap"], &["--certs-dir", d]).expect("meta-1");
        assert!(load_tls(&ok.tls).expect("load").is_some());
        let err = plan_tls(
            &["--id", "2", "--bootstrap"],
            &["--certs-dir", d, "--cert-name", "meta-1"],
        )
        .expect_err("member 2 with meta-1's certificate");
        assert!(err.to_string().contains("meta-2"), "{err}");
        let plain = plan_of(&["--id", "1", "--bootstrap"]).expect("plain");
        assert!(plain.tls.is_none());
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
}
