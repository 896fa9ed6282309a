//! What the gateway itself observes about storage nodes: requests in
//! flight (the load signal for replica choice) and recent failures (a node
//! that failed lately is tried last for a while, even if the map still
//! says it is alive).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};
use protocol::NodeId;

#[derive(Default)]
pub struct NodeStats {
    in_flight: AtomicUsize,
    requests: AtomicU64,
    failures: AtomicU64,
    /// Last failure, cleared by the next success.
    last_failure: Mutex<Option<Instant>>,
}

impl NodeStats {
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }
}

/// Decrements the node's in-flight count when the call ends or is dropped
/// (a hedged call that lost the race is dropped, not awaited).
pub struct InFlight(Arc<NodeStats>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

pub struct Health {
    nodes: RwLock<HashMap<NodeId, Arc<NodeStats>>>,
    /// How long a failed node is tried last.
    penalty: Duration,
}

impl Health {
    pub fn new(penalty: Duration) -> Self {
        Self {
            nodes: RwLock::new(HashMap::new()),
            penalty,
        }
    }

    pub fn stats(&self, node: NodeId) -> Arc<NodeStats> {
        if let Some(s) = self.nodes.read().get(&node) {
            return s.clone();
        }
        self.nodes.write().entry(node).or_default().clone()
    }

    pub fn begin(&self, node: NodeId) -> InFlight {
        let s = self.stats(node);
        s.in_flight.fetch_add(1, Ordering::Relaxed);
        s.requests.fetch_add(1, Ordering::Relaxed);
        InFlight(s)
    }

    pub fn success(&self, node: NodeId) {
        *self.stats(node).last_failure.lock() = None;
    }

    pub fn failure(&self, node: NodeId) {
        let s = self.stats(node);
        s.failures.fetch_add(1, Ordering::Relaxed);
        *s.last_failure.lock() = Some(Instant::now());
    }

    /// Whether the node failed within the penalty window without a success
    /// since (the "suspected" nodes of the cluster metrics).
    pub fn suspected(&self, node: NodeId) -> bool {
        self.stats(node)
            .last_failure
            .lock()
            .is_some_and(|t| t.elapsed() < self.penalty)
    }

    pub fn in_flight(&self, node: NodeId) -> usize {
        self.stats(node).in_flight()
    }
}
