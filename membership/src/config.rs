//! [`MembershipConfig`], and how the spec's SWIM settings map onto the
//! chitchat settings it holds.
//!
//! # SWIM → chitchat
//!
//! The spec describes SWIM (probe a random member every `probe_interval`,
//! indirect probes after `probe_timeout`, suspect for `suspect_timeout`,
//! gossip to `gossip_fanout` members). chitchat is scuttlebutt gossip with a
//! phi-accrual failure detector instead:
//!
//! - every `gossip_interval` a node exchanges digests (SYN / SYN-ACK / ACK)
//!   with up to 3 live peers, plus now and then a dead node and a seed. Each
//!   digest carries every known node's heartbeat counter, so it is a direct
//!   probe of the peer *and* an indirect probe of everyone the peer heard
//!   from (SWIM's ping-req comes for free).
//! - the receiver records the time between heartbeat increases of each
//!   node; phi = (time since the last increase) / (mean interval, smoothed
//!   towards `gossip_interval` while few samples exist). A node is dead when
//!   phi > `phi_threshold`. There is no separate suspect state: phi rising
//!   *is* the suspicion.
//!
//! | SWIM (spec)                      | here                                         |
//! |----------------------------------|----------------------------------------------|
//! | gossip loop period (100 ms)      | `gossip_interval` (= `probe_interval` / 10)   |
//! | `probe_timeout + suspect_timeout`| `phi_threshold × gossip_interval` (bound)     |
//! | `gossip_fanout` (3)              | fixed at 3 by chitchat 0.13 (`GOSSIP_COUNT`)  |
//! | dead member forgotten            | `dead_node_grace`                             |
//! | `max_message_size` (1 KB)        | chitchat fills UDP datagrams up to 65 507 B   |
//!
//! The budget row is an upper bound: the mean heartbeat interval is at most
//! about one gossip interval (every peer gossips each round) and shorter in
//! practice (~half on three nodes, less on larger clusters), so detection
//! comes no later than the SWIM budget and usually sooner.
//!
//! Our defaults are 100 ms (the spec's 1 s probe interval / 10) and phi 16. On a three-node cluster a peer's heartbeat arrives
//! every ~50 ms (several gossip paths), so a running node is declared dead
//! ~0.8 s after its last heartbeat, plus up to one round until the next
//! liveness check, and a stall shorter than that does not flap it.
//! Measured on loopback, a node killed after running a few seconds is
//! reported `Remove` after:
//! - 0.7–0.8 s for a real `kill -9` of a process (`examples/gossip_node.rs`,
//!   3 processes, 6 observations; phi 12: 0.6–0.7 s, phi 20: 0.8–1.1 s);
//! - 0.7–0.9 s in-process over UDP (`tests/cluster/udp.rs`).
//!
//! A node killed right after joining takes longer (up to ~2 s): its
//! detector has few samples and the prior (one gossip interval, weight 5)
//! dominates. A graceful [`shutdown`](crate::Membership::shutdown) is seen
//! in ~0.3 s. The spec's own values (0.5 s + 5 s) map to phi 55: ~3 s.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chitchat::{ChitchatConfig, ChitchatId, FailureDetectorConfig, ProtocolVersion};
use protocol::NodeId;

use crate::error::MembershipError;

/// The spec's `cluster.swim` timings (see the module doc for how they map).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SwimTimings {
    pub probe_interval: Duration,
    pub probe_timeout: Duration,
    pub suspect_timeout: Duration,
}

impl Default for SwimTimings {
    /// What gives the tuned defaults: 100 ms rounds, phi 16.
    fn default() -> Self {
        SwimTimings {
            probe_interval: Duration::from_secs(1),
            probe_timeout: Duration::from_millis(500),
            suspect_timeout: Duration::from_millis(1100),
        }
    }
}

/// Everything a node needs to join the gossip cluster.
#[derive(Clone, Debug)]
pub struct MembershipConfig {
    /// This storage node's id in the cluster map (gossiped in decimal).
    pub node_id: NodeId,
    /// Incarnation of this node; must grow on every restart. `None` = the
    /// start time in ms since the Unix epoch.
    pub generation: Option<u64>,
    /// Nodes only gossip with nodes of the same cluster id.
    pub cluster_id: String,
    /// UDP address to bind. Port 0 picks a free port (then also advertised).
    pub gossip_listen: SocketAddr,
    /// UDP address peers reach us on (differs from `gossip_listen` behind
    /// NAT or when listening on 0.0.0.0). Port 0 = the listen port.
    pub gossip_advertise: SocketAddr,
    /// `host:port` or `ip:port` of a few members; hostnames are re-resolved
    /// every minute (headless services).
    pub seeds: Vec<String>,
    /// Period of a gossip round (SWIM's probe / gossip loop).
    pub gossip_interval: Duration,
    /// Phi above which a node is declared dead; see the module doc.
    pub phi_threshold: f64,
    /// How long a dead node's state (and its version vector) is kept
    /// before it is garbage-collected.
    pub dead_node_grace: Duration,
    /// How long a deleted key's tombstone is kept so that peers learn of the
    /// delete; a peer away for longer is reset from scratch instead.
    pub tombstone_grace: Duration,
}

impl MembershipConfig {
    /// A config with the tuned defaults; advertise = listen, no seeds.
    pub fn new(node_id: NodeId, cluster_id: impl Into<String>, gossip_listen: SocketAddr) -> Self {
        MembershipConfig {
            node_id,
            generation: None,
            cluster_id: cluster_id.into(),
            gossip_listen,
            gossip_advertise: gossip_listen,
            seeds: Vec::new(),
            gossip_interval: Duration::from_millis(100),
            phi_threshold: 16.0,
            dead_node_grace: Duration::from_secs(60 * 60),
            tombstone_grace: Duration::from_secs(60 * 60),
        }
    }

    pub fn with_seeds(mut self, seeds: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.seeds = seeds.into_iter().map(Into::into).collect();
        self
    }

    /// The spec's SWIM timings mapped as the module doc's table says:
    /// a gossip round of `probe_interval / 10`, and the phi threshold
    /// that makes `probe_timeout + suspect_timeout` the detection budget
    /// (the defaults 1 s, 500 ms, 1.1 s give the tuned 100 ms and 16).
    pub fn with_swim(mut self, swim: SwimTimings) -> Self {
        self.gossip_interval = swim.probe_interval / 10;
        let round = self.gossip_interval.as_secs_f64();
        let budget = (swim.probe_timeout + swim.suspect_timeout).as_secs_f64();
        // A zero round is refused by `validate`; keep phi finite meanwhile.
        self.phi_threshold = if round > 0.0 {
            // Rounded to a thousandth: 1.6 s / 0.1 s is 16, not 16.000000000000004.
            (budget / round * 1000.0).round() / 1000.0
        } else {
            self.phi_threshold
        };
        self
    }

    /// What [`crate::Membership::join`] checks before binding anything
    /// (public so a binary's `--check-config` refuses the same configs).
    pub fn validate(&self) -> Result<(), MembershipError> {
        let invalid = |reason: &str| {
            Err(MembershipError::InvalidConfig {
                reason: reason.to_string(),
            })
        };
        if self.cluster_id.is_empty() {
            return invalid("cluster_id is empty");
        }
        if self.gossip_advertise.ip().is_unspecified() {
            return invalid("gossip_advertise is 0.0.0.0 / ::: set the address peers reach us on");
        }
        if self.gossip_interval.is_zero() {
            return invalid("gossip_interval is zero");
        }
        if !(self.phi_threshold.is_finite() && self.phi_threshold > 0.0) {
            return invalid("phi_threshold must be a positive number");
        }
        Ok(())
    }

    /// The chitchat config for a node listening on `listen` (port resolved).
    pub(crate) fn to_chitchat(&self, listen: SocketAddr) -> ChitchatConfig {
        let mut advertise = self.gossip_advertise;
        if advertise.port() == 0 {
            advertise.set_port(listen.port());
        }
        let generation = self.generation.unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0)
        });
        ChitchatConfig {
            chitchat_id: ChitchatId::new(self.node_id.to_string(), generation, advertise),
            cluster_id: self.cluster_id.clone(),
            gossip_interval: self.gossip_interval,
            listen_addr: listen,
            seed_nodes: self.seeds.clone(),
            failure_detector_config: FailureDetectorConfig {
                phi_threshold: self.phi_threshold,
                sampling_window_size: 1_000,
                // A gap longer than this (a pause, a partition) is not a
                // sample: it would inflate the mean and slow detection
                // for a long time after.
                max_interval: (self.gossip_interval * 10).max(Duration::from_secs(1)),
                // The prior the mean is smoothed towards (weight 5 samples).
                initial_interval: self.gossip_interval,
                dead_node_grace_period: self.dead_node_grace,
            },
            marked_for_deletion_grace_period: self.tombstone_grace,
            catchup_callback: None,
            extra_liveness_predicate: None,
            // V1 compresses digests but older nodes cannot read it; every
            // node of ours runs the same chitchat, so V0 is just the safe
            // choice until a rolling upgrade story exists.
            protocol_version: ProtocolVersion::V0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> MembershipConfig {
        MembershipConfig::new(NodeId(1), "c", "127.0.0.1:0".parse().unwrap())
    }

    #[test]
    fn swim_timings_map_to_the_round_and_phi() {
        let tuned = config();
        let c = config().with_swim(SwimTimings::default());
        assert_eq!(c.gossip_interval, tuned.gossip_interval);
        assert_eq!(c.phi_threshold, tuned.phi_threshold);
        // The spec's own values: 0.5 s + 5 s over 100 ms rounds.
        let spec = config().with_swim(SwimTimings {
            suspect_timeout: Duration::from_secs(5),
            ..SwimTimings::default()
        });
        assert_eq!(spec.phi_threshold, 55.0);
        let slow = config().with_swim(SwimTimings {
            probe_interval: Duration::from_secs(2),
            ..SwimTimings::default()
        });
        assert_eq!(slow.gossip_interval, Duration::from_millis(200));
        assert_eq!(slow.phi_threshold, 8.0);
    }

    #[test]
    fn invalid_configs_are_refused() {
        let mut c = config();
        c.phi_threshold = f64::NAN;
        assert!(c.validate().is_err());
        let mut c = config();
        c.cluster_id.clear();
        assert!(c.validate().is_err());
        let c = MembershipConfig::new(NodeId(1), "c", "0.0.0.0:7946".parse().unwrap());
        assert!(c.validate().is_err(), "unspecified advertise address");
        assert!(config().validate().is_ok());
    }

    #[test]
    fn advertise_port_zero_takes_the_listen_port() {
        let listen: SocketAddr = "127.0.0.1:4567".parse().unwrap();
        let mut c = config();
        c.gossip_advertise = "10.0.0.1:0".parse().unwrap();
        c.generation = Some(3);
        let cc = c.to_chitchat(listen);
        assert_eq!(
            cc.chitchat_id.gossip_advertise_addr,
            "10.0.0.1:4567".parse().unwrap()
        );
        assert_eq!(cc.chitchat_id.generation_id, 3);
        assert_eq!(cc.listen_addr, listen);
    }
}
