//! Tunables of one meta member. Defaults follow the spec's `raft` section
//! (election timeout 150–300 ms, heartbeat 50 ms, snapshot every 10,000
//! entries, port 7947).

use std::path::PathBuf;
use std::time::Duration;

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
    /// Controller: a storage node silent this long is marked dead.
    pub node_dead_after: Duration,
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
    /// several nodes beating every 300 ms, a longer gap is the leader's.
    pub hearing_gap_cap: Duration,
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
            // The measured default. A 0.6 s grace (100 ms beats) marked
            // healthy nodes dead 25 times in 2 minutes of the chaos
            // suite's `saturate` scenario on 2 loaded cores (issue 14), even
            // with silence counted on the hearing clock.
            node_dead_after: Duration::from_secs(5),
            replica_replace_after: Duration::from_secs(60),
            controller_interval: Duration::from_millis(250),
            new_leader_grace: Duration::from_secs(3),
            node_dead_backstop: Duration::from_secs(15),
            hearing_gap_cap: Duration::from_secs(1),
        }
    }

    /// How long (half the grace) a storage node may act as primary after sending a
    /// heartbeat that was acknowledged: shorter than `node_dead_after`, so
    /// a primary cut off from the meta-service stops acknowledging writes
    /// before the controller can promote another replica.
    pub fn write_lease(&self) -> Duration {
        self.node_dead_after / 2
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
