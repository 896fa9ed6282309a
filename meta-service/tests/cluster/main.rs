//! Multi-process tests: real `meta-service` processes on loopback.
//!
//! - `failover`: SIGKILL the leader → a new leader within 1 s, nothing
//!   committed lost, writes continue, the killed member catches up.
//! - `restart`: kill and restart every member → exactly the same map
//!   (snapshots and log compaction exercised on the way).
//! - `membership`: grow a standalone member into three through the admin
//!   API (add learners, change membership), then survive losing the first.
//! - `quorum`: a member alone cannot commit; the write fails in bounded time.
//! - `standalone`: one `--bootstrap` member, no other process; the
//!   controller fails a shard over when its primary stops heartbeating.
//! - `transfers`: the rebalance route, transfer switch refusals and the
//!   map's transfer counters.
//! - `logs`: the binary's log on a pipe: plain text without colour codes,
//!   or JSON lines with `LOG_FORMAT=json` / `--log-format json`.
//! - `config_file`: the binary refuses a config file with a bad key
//!   (naming it and the file) and shows a good file's values.

mod config_file;
mod failover;
mod in_process;
mod logs;
mod membership;
mod quorum;
mod restart;
mod standalone;
mod transfers;
mod util;

use meta_client::MetaClient;
use protocol::cluster::{ClusterCommand, NodeInfo};
use protocol::{CollectionConfig, Distance, Epoch, NodeId};

/// Registers storage nodes 1..=n (fake addresses: nothing dials them).
pub async fn register_nodes(client: &MetaClient, n: u64) -> Epoch {
    let mut epoch = Epoch(0);
    for id in 1..=n {
        let node = NodeInfo::new(NodeId(id), format!("127.0.0.1:{}", 20_000 + id));
        epoch = client.register_node(&node).await.expect("register node");
    }
    epoch
}

pub fn collection_config(shards: u32, rf: u32) -> CollectionConfig {
    let mut c = CollectionConfig::new(8, Distance::Cosine);
    c.shard_number = shards;
    c.replication_factor = rf;
    c
}

pub fn config_cmd(i: usize) -> ClusterCommand {
    ClusterCommand::UpdateConfig {
        key: format!("key-{i}"),
        value: format!("value-{i}"),
    }
}
