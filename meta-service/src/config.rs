//! Tunables of one meta member. Defaults follow the spec's `raft` section
//! (election timeout 150–300 ms, heartbeat 50 ms, snapshot every 10,000
//! entries, port 7947).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::liveness::DeadAfter;

/// Default listen address (the spec's Raft port).
pub const DEFAULT_LISTEN: &str = "0.0.0.0:7947";

#[derive(Clone, Debug)]
pub struct MetaConfig {
    /// This member's id (unique among meta members, > 0).
    pub id: crate::MemberId,
    /// Address other members and clients use to reach this one.
    pub advertise_addr: String,
    /// Where the Raft log, vote and snapshots live.
    pub data_dir: PathBuf,
    pub election_timeout_min_ms: u64,
    pub election_timeout_max_ms: u64,
    pub heartbeat_interval_ms: u64,
    /// Build a snapshot (and compact the log) every this many entries.
    pub snapshot_interval: u64,
    /// Log entries kept behind a snapshot for slow followers.
    pub max_in_snapshot_log_to_keep: u64,
    /// Longest a client write (or linearizable read) waits for a quorum.
    pub write_timeout: Duration,
    /// Controller: the longest a storage node may stay silent before it is
    /// marked dead (a node with no heartbeat history yet gets this much).
    pub node_dead_after: Duration,
    /// Controller: the shortest grace, for a node whose heartbeats arrive
    /// regularly; each node's grace adapts between the two
    /// (`Liveness::dead_after`).
    pub node_dead_after_min: Duration,
    /// Controller: a dead node's replicas are re-created elsewhere after this.
    pub replica_replace_after: Duration,
    /// Controller: how often the leader evaluates the map.
    pub controller_interval: Duration,
    /// Dead-node grace for nodes not yet heard from by a new leader.
    pub new_leader_grace: Duration,
    /// A node silent this long is dead even when the leader heard no other
    /// node meanwhile (then the leader may be the one that stalled).
    pub node_dead_backstop: Duration,
    /// Longest gap between two heartbeats (from any node) that counts
    /// towards a node's silence; see `Liveness::hearing_gap_cap_ms`. With
    /// several nodes beating every 100 ms, a longer gap is the leader's.
    /// Half the shortest grace: a leader that stalls for longer must not
    /// find every node past its grace when it wakes.
    pub hearing_gap_cap: Duration,
    /// Cluster-wide settings from the config file (`cluster.rebalancing.*`
    /// as `rebalancing.*` keys of the map's `config`): the leader writes
    /// each one the map has no value for yet
    /// (`controller::seed_settings`); run-time changes win afterwards.
    pub initial_settings: BTreeMap<String, String>,
}

impl MetaConfig {
    pub fn new(
        id: crate::MemberId,
        advertise_addr: impl Into<String>,
        data_dir: impl Into<PathBuf>,
    ) -> Self {
        Self {
            id,
            advertise_addr: advertise_addr.into(),
            data_dir: data_dir.into(),
            election_timeout_min_ms: 150,
            election_timeout_max_ms: 300,
            heartbeat_interval_ms: 50,
            snapshot_interval: 10_000,
            max_in_snapshot_log_to_keep: 1_000,
            write_timeout: Duration::from_secs(5),
            // A fixed 0.6 s grace (100 ms beats) marked healthy nodes dead
            // 25 times in 2 minutes of the chaos suite's `saturate`
            // scenario on 2 loaded cores (issue 14): the grace now adapts
            // per node between these bounds to how its beats arrive.
            node_dead_after: Duration::from_secs(5),
            node_dead_after_min: Duration::from_millis(600),
            replica_replace_after: Duration::from_secs(60),
            // A tenth of a second: with a 0.6 s grace the tick is a large
            // part of the pause after a primary dies.
            controller_interval: Duration::from_millis(100),
            new_leader_grace: Duration::from_secs(3),
            node_dead_backstop: Duration::from_secs(15),
            hearing_gap_cap: Duration::from_millis(300),
            initial_settings: BTreeMap::new(),
        }
    }

    /// The bounds of the dead-node grace. The write lease a heartbeat ack
    /// grants is half the node's grace at that moment, so a primary cut
    /// off from the meta-service stops acknowledging writes before the
    /// controller can promote another replica.
    pub fn dead_after(&self) -> DeadAfter {
        DeadAfter {
            min_ms: self.node_dead_after_min.as_millis() as u64,
            max_ms: self.node_dead_after.as_millis() as u64,
        }
    }

    /// The openraft configuration derived from these settings.
    #[allow(clippy::result_large_err)] // openraft's error type, returned once at start-up
    pub fn raft_config(&self) -> Result<openraft::Config, openraft::ConfigError> {
        openraft::Config {
            cluster_name: "meta-service".to_string(),
            election_timeout_min: self.election_timeout_min_ms,
            election_timeout_max: self.election_timeout_max_ms,
            heartbeat_interval: self.heartbeat_interval_ms,
            snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(self.snapshot_interval),
            max_in_snapshot_log_to_keep: self.max_in_snapshot_log_to_keep,
            ..Default::default()
        }
        .validate()
    }
}
