//! `vectordb cluster ...` run as a process against a gateway (the
//! in-process test cluster: a real meta-service, three storage nodes):
//! every subcommand's effect is checked in the meta-service's map, and a
//! refused or failed operation exits non-zero with the reason.
//!
//! Transfers are throttled to ~1 KB/s so that one started here is still
//! running while the test looks at it, and the controller is given no
//! transfer slot, so only the test's commands change the map.

use std::process::Output;
use std::time::{Duration, Instant};

use meta_client::MetaReadConsistency;
use protocol::cluster::{ClusterMap, NodeState, TransferOutcome};
use protocol::{NodeId, ShardId};
use serde_json::json;
use testsuite::{Options, TestCluster};

async fn cli(url: &str, args: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_vectordb"))
        .args(["cluster", "--url", url])
        .args(args)
        .env_remove("VECTORDB_API_KEY")
        .output()
        .await
        .expect("run vectordb")
}

fn out(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

async fn ok(url: &str, args: &[&str]) -> String {
    let o = cli(url, args).await;
    assert!(o.status.success(), "{args:?}: {}", out(&o));
    String::from_utf8_lossy(&o.stdout).to_string()
}

async fn fails(url: &str, args: &[&str]) -> String {
    let o = cli(url, args).await;
    assert!(!o.status.success(), "{args:?} should fail: {}", out(&o));
    String::from_utf8_lossy(&o.stderr).to_string()
}

async fn map(c: &TestCluster) -> ClusterMap {
    c.meta
        .cluster_map(MetaReadConsistency::Linearizable)
        .await
        .expect("map")
        .map
}

/// A follower of `shard` and a node that does not hold it.
fn move_pair(m: &ClusterMap, shard: u32) -> (u64, u64) {
    let s = m.shard("cli", ShardId(shard)).expect("shard");
    let from = s.nodes().find(|n| Some(*n) != s.primary).expect("follower");
    let to = m.nodes.keys().find(|n| !s.holds(**n)).expect("outsider");
    (from.0, to.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cluster_subcommands_against_a_gateway() {
    let c = TestCluster::start(Options::default()).await;
    let url = c.url.clone();
    let set = ok(&url, &["set", "auto_enabled", "false"]).await;
    assert!(set.contains("rebalancing.auto_enabled = false"), "{set}");
    ok(&url, &["set", "rebalancing.throttle_mb_per_sec", "0.001"]).await;
    // No slot for the controller's own transfers (drain, fill), so that
    // only this test's commands change the map.
    ok(&url, &["set", "max_concurrent_migrations", "0"]).await;
    let err = fails(&url, &["set", "colour", "blue"]).await;
    assert!(
        err.contains("HTTP 400") && err.contains("unknown setting"),
        "{err}"
    );
    assert_eq!(map(&c).await.config["rebalancing.auto_enabled"], "false");

    let (s, v) = c
        .put(
            "/collections/cli",
            json!({"vectors": {"size": 4, "distance": "Dot"}, "shard_number": 3, "replication_factor": 2}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let points: Vec<_> = (0..200u64)
        .map(|i| json!({"id": i, "vector": [i as f32, 1.0, 2.0, 3.0]}))
        .collect();
    let (s, v) = c
        .put(
            "/collections/cli/points?wait=true",
            json!({"points": points}),
        )
        .await;
    assert_eq!(s, 200, "{v}");

    let status = ok(&url, &["status"]).await;
    assert!(status.contains("nodes: 3 (3 alive"), "{status}");
    assert!(status.contains("running transfers: 0"), "{status}");
    let nodes = ok(&url, &["nodes"]).await;
    assert_eq!(
        nodes.lines().filter(|l| l.contains("alive")).count(),
        3,
        "{nodes}"
    );

    // move, listed, refused twice, aborted from the CLI while a watcher
    // follows it: the watcher exits non-zero with the reason.
    let m = map(&c).await;
    let (from, to) = move_pair(&m, 0);
    let (f, t) = (from.to_string(), to.to_string());
    let started = ok(&url, &["move", "cli", "0", &f, &t]).await;
    assert!(
        started.contains(&format!("cli/0 {from}→{to} started")),
        "{started}"
    );
    let running = map(&c).await;
    let mig = running
        .shard("cli", ShardId(0))
        .and_then(|s| s.migration.clone());
    assert_eq!(mig.map(|m| (m.from.0, m.to.0)), Some((from, to)));
    let list = ok(&url, &["transfers"]).await;
    assert!(
        list.contains(&format!("cli/0 {from}→{to} move snapshot")),
        "{list}"
    );
    let err = fails(&url, &["move", "cli", "0", &f, &t]).await;
    assert!(err.contains("HTTP 409"), "{err}");

    let watch_url = url.clone();
    let watcher =
        tokio::spawn(
            async move { cli(&watch_url, &["transfers", "--watch", "--timeout", "60"]).await },
        );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let aborted = ok(&url, &["abort", "cli", "0", &f, &t]).await;
    assert!(aborted.contains("aborted"), "{aborted}");
    let o = tokio::time::timeout(Duration::from_secs(30), watcher)
        .await
        .expect("the watcher ends once nothing runs")
        .expect("join");
    assert!(
        !o.status.success(),
        "a failed transfer fails the watch: {}",
        out(&o)
    );
    let stdout = String::from_utf8_lossy(&o.stdout);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stdout.contains(&format!(
            "transfer cli/0 {from}→{to} move snapshot: 0/0 points"
        )),
        "{}",
        out(&o)
    );
    assert!(stderr.contains("aborted by the operator"), "{}", out(&o));

    // move --wait returns when its transfer ends, here failed.
    let (from1, to1) = move_pair(&m, 1);
    let wait_url = url.clone();
    let (f1, t1) = (from1.to_string(), to1.to_string());
    let mover = tokio::spawn(async move {
        cli(
            &wait_url,
            &["move", "cli", "1", &f1, &t1, "--wait", "--timeout", "60"],
        )
        .await
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    while map(&c)
        .await
        .shard("cli", ShardId(1))
        .and_then(|s| s.migration.as_ref())
        .is_none()
    {
        assert!(Instant::now() < deadline, "the move never started");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (s, v) = c
        .post(
            "/collections/cli/cluster",
            json!({"abort_transfer": {"shard_id": 1, "from_peer_id": from1, "to_peer_id": to1}}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let o = tokio::time::timeout(Duration::from_secs(30), mover)
        .await
        .expect("move --wait returns")
        .expect("join");
    assert!(!o.status.success(), "{}", out(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("1 transfer(s) failed"),
        "{}",
        out(&o)
    );
    let m2 = map(&c).await;
    assert_eq!(m2.transfers.failed, 2);
    assert!(matches!(
        m2.transfers.recent.last().map(|r| &r.outcome),
        Some(TransferOutcome::Failed { .. })
    ));

    // drain, remove refused while it holds replicas; drop a replica; RF.
    let drained = ok(&url, &["drain", "3"]).await;
    assert!(drained.contains("node 3 draining"), "{drained}");
    assert_eq!(map(&c).await.nodes[&NodeId(3)].state, NodeState::Draining);
    let err = fails(&url, &["remove", "3"]).await;
    assert!(
        err.contains("HTTP 409") && err.contains("still holds"),
        "{err}"
    );
    let err = fails(&url, &["remove", "9"]).await;
    assert!(err.contains("HTTP 404"), "{err}");
    let s2 = m.shard("cli", ShardId(2)).expect("shard 2").clone();
    let peer = s2
        .nodes()
        .find(|n| Some(*n) != s2.primary)
        .expect("follower");
    ok(&url, &["drop", "cli", "2", &peer.0.to_string()]).await;
    assert!(!map(&c)
        .await
        .shard("cli", ShardId(2))
        .expect("shard 2")
        .holds(peer));
    ok(&url, &["replication-factor", "cli", "3"]).await;
    assert_eq!(
        map(&c).await.collections["cli"].config.replication_factor,
        3
    );
    let settings = ok(&url, &["settings"]).await;
    assert!(
        settings.contains("rebalancing.max_concurrent_migrations = 0"),
        "{settings}"
    );
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn write_commands_need_the_write_key() {
    let c = TestCluster::start(Options {
        keys: gateway::api::ApiKeys {
            read_write: Some("rw".into()),
            read_only: Some("ro".into()),
            ..Default::default()
        },
        ..Options::default()
    })
    .await;
    let url = c.url.clone();
    let err = fails(&url, &["drain", "1"]).await;
    assert!(err.contains("HTTP 401"), "{err}");
    let err = fails(&url, &["--api-key", "ro", "drain", "1"]).await;
    assert!(err.contains("HTTP 403"), "{err}");
    let nodes = ok(&url, &["--api-key", "ro", "nodes"]).await;
    assert!(nodes.contains("alive"), "{nodes}");
    ok(&url, &["--api-key", "rw", "drain", "1"]).await;
    assert_eq!(map(&c).await.nodes[&NodeId(1)].state, NodeState::Draining);
    c.shutdown().await;
}
