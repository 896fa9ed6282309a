//! A storage node's presence connection to the meta leader: a killed
//! node (the kernel closes its connections) is declared dead as soon as
//! its write lease has run out, while a hung node (SIGSTOP: connections
//! open) is judged by its silence and waits out the whole grace.

use std::time::{Duration, Instant};

use protocol::cluster::NodeState;
use protocol::NodeId;
use testsuite::{ProcessCluster, ProcessOptions};

use super::BINARY;

/// Long, so that the two ways of dying are far apart: the lease granted
/// with each heartbeat is half of it.
const GRACE: Duration = Duration::from_secs(10);

async fn dead_after(cluster: &mut ProcessCluster, node: NodeId, since: Instant) -> Duration {
    cluster
        .wait_map(GRACE * 3, |m| {
            m.nodes
                .get(&node)
                .is_some_and(|n| n.state == NodeState::Dead)
        })
        .await;
    since.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_node_is_dead_when_its_lease_ends_a_hung_one_after_its_grace() {
    let mut options = ProcessOptions::new(BINARY, 3);
    options.node_dead_after = GRACE;
    let mut cluster = ProcessCluster::start(options).await;
    // Heartbeats (every 200 ms) have renewed leases of GRACE / 2 by now.
    tokio::time::sleep(Duration::from_secs(1)).await;

    let killed = NodeId(3);
    let at = Instant::now();
    cluster.kill(killed);
    let killed_dead = dead_after(&mut cluster, killed, at).await;
    // Its last lease (5 s, counted from the grant) plus the margin and a
    // controller pass; never the 10 s grace.
    assert!(
        killed_dead < GRACE * 3 / 4,
        "killed node declared dead after {killed_dead:?}: the grace, not its lease"
    );
    assert!(
        killed_dead >= GRACE / 2 - Duration::from_millis(300),
        "declared dead after {killed_dead:?}, while its lease may still run"
    );

    let hung = NodeId(2);
    cluster.pause(hung);
    let at = Instant::now();
    let hung_dead = dead_after(&mut cluster, hung, at).await;
    cluster.resume(hung);
    // Its grace counts from its last heartbeat (up to a few hundred ms
    // before the SIGSTOP on a loaded machine): well past the killed one's.
    assert!(
        hung_dead >= GRACE * 3 / 4,
        "hung node declared dead after {hung_dead:?}, long before its grace ended"
    );
    eprintln!("killed: dead after {killed_dead:?}; hung: dead after {hung_dead:?}");
    cluster.stop().await;
}
