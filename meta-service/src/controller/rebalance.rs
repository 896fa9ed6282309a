//! Which shard transfers to start, as a pure function of the map and what
//! the storage nodes report.
//!
//! In order, while transfer slots are free
//! (`rebalancing.max_concurrent_migrations`, default 2, counting the ones
//! already running, cluster-wide):
//!
//! 1. **Drain**: every replica on a `Draining` node moves to the
//!    least-loaded placeable node that does not hold the shard.
//! 2. **Under-replicated shards** (fewer replicas than the collection's
//!    replication factor: a factor raised, or placed when there were too
//!    few nodes) get a `Replicate` transfer from their primary to the
//!    least-loaded placeable node.
//! 3. **Imbalance**, only when `rebalancing.auto_enabled` (default on) or
//!    asked for (`POST /v1/rebalance`): while the busiest and the idlest
//!    node differ by more than `rebalancing.trigger_threshold` (default
//!    0.20) of the mean load and by at least
//!    `rebalancing.min_imbalance_bytes` (default 64 KiB: a tiny
//!    collection's noise is not worth a copy), a replica moves from the busiest to the
//!    idlest node, non-primary replicas first (moving a primary makes its
//!    executor hand the role over), choosing the shard that brings the
//!    two closest; a move that would not shrink their difference is never
//!    made, so the cluster does not oscillate.
//!
//! Load is the stored bytes of a node's replicas, each shard weighing what
//! its replicas report (the largest report, plus one so that empty shards
//! still spread). A transfer that failed is not planned again for the same
//! shard and target for [`RETRY_AFTER_MS`].
//!
//! The storage nodes carry out what is planned here: the shard's primary
//! streams to the target, verifies and asks for the switch
//! (`CompleteMigration`).

use std::collections::{BTreeMap, BTreeSet};

use protocol::cluster::{
    ClusterMap, NodeState, RebalancePlan, RebalanceSettings, ShardInfo, ShardMove, TransferKind,
    TransferOutcome,
};
use protocol::{NodeId, ShardId};

use crate::liveness::Liveness;

/// How long a failed transfer's shard and target are left alone.
pub const RETRY_AFTER_MS: u64 = 30_000;

/// Per shard, its weight (reported bytes + 1).
fn shard_weights(map: &ClusterMap, live: &Liveness) -> BTreeMap<(String, ShardId), u64> {
    let mut weights = BTreeMap::new();
    for c in map.collections.values() {
        for s in c.shards.values() {
            let reported = s
                .nodes()
                .filter_map(|n| live.load(n, &c.name, s.id))
                .map(|(_, bytes)| bytes)
                .max()
                .unwrap_or(0);
            weights.insert((c.name.clone(), s.id), reported + 1);
        }
    }
    weights
}

/// Load of every placeable node: the weights of the shards it holds.
pub fn loads(map: &ClusterMap, live: &Liveness) -> BTreeMap<NodeId, u64> {
    let weights = shard_weights(map, live);
    let mut loads: BTreeMap<NodeId, u64> = map.placeable_nodes().map(|n| (n, 0)).collect();
    for c in map.collections.values() {
        for s in c.shards.values() {
            let w = weights[&(c.name.clone(), s.id)];
            for n in s.nodes() {
                if let Some(l) = loads.get_mut(&n) {
                    *l += w;
                }
            }
        }
    }
    loads
}

/// A plan being made: loads and shards as the moves so far leave them.
struct Planner<'a> {
    map: &'a ClusterMap,
    weights: BTreeMap<(String, ShardId), u64>,
    loads: BTreeMap<NodeId, u64>,
    /// Shards already given a move (or migrating): one transfer per shard.
    busy: BTreeSet<(String, ShardId)>,
    budget: usize,
    moves: Vec<ShardMove>,
    now_ms: u64,
}

impl<'a> Planner<'a> {
    fn new(
        map: &'a ClusterMap,
        live: &Liveness,
        settings: &RebalanceSettings,
        now_ms: u64,
    ) -> Self {
        let busy: BTreeSet<_> = map
            .collections
            .values()
            .flat_map(|c| c.shards.values().map(move |s| (c, s)))
            .filter(|(_, s)| s.migration.is_some())
            .map(|(c, s)| (c.name.clone(), s.id))
            .collect();
        Self {
            map,
            weights: shard_weights(map, live),
            loads: loads(map, live),
            budget: settings
                .max_concurrent_migrations
                .saturating_sub(busy.len()),
            busy,
            moves: Vec::new(),
            now_ms,
        }
    }

    fn shards(&self) -> Vec<(&'a str, &'a ShardInfo)> {
        let map = self.map;
        map.collections
            .values()
            .flat_map(|c| c.shards.values().map(move |s| (c.name.as_str(), s)))
            .collect()
    }

    /// Whether a transfer of this shard to `to` failed recently.
    fn failed_recently(&self, collection: &str, shard: ShardId, to: NodeId) -> bool {
        self.map.transfers.recent.iter().any(|r| {
            r.collection == collection
                && r.shard == shard
                && r.to == to
                && matches!(r.outcome, TransferOutcome::Failed { .. })
                && self.now_ms.saturating_sub(r.finished_at_ms) < RETRY_AFTER_MS
        })
    }

    /// The least-loaded placeable node that may receive this shard.
    fn target_for(&self, collection: &str, s: &ShardInfo) -> Option<NodeId> {
        self.loads
            .iter()
            .filter(|(n, _)| !s.holds(**n) && !self.failed_recently(collection, s.id, **n))
            .min_by_key(|(n, l)| (**l, **n))
            .map(|(n, _)| *n)
    }

    fn push(
        &mut self,
        collection: &str,
        s: &ShardInfo,
        from: NodeId,
        to: NodeId,
        kind: TransferKind,
    ) {
        let w = self.weights[&(collection.to_string(), s.id)];
        if kind == TransferKind::Move {
            if let Some(l) = self.loads.get_mut(&from) {
                *l = l.saturating_sub(w);
            }
        }
        *self.loads.entry(to).or_default() += w;
        self.busy.insert((collection.to_string(), s.id));
        self.budget -= 1;
        self.moves.push(ShardMove {
            collection: collection.to_string(),
            shard: s.id,
            from,
            to,
            kind,
        });
    }

    fn free(&self, collection: &str, s: &ShardInfo) -> bool {
        self.budget > 0
            && s.primary.is_some()
            && !self.busy.contains(&(collection.to_string(), s.id))
    }

    /// Step 1: every replica on a draining node moves off it.
    fn drain(&mut self) {
        for (collection, s) in self.shards() {
            for node in s.nodes() {
                let draining = self
                    .map
                    .nodes
                    .get(&node)
                    .is_some_and(|n| n.state == NodeState::Draining);
                if !draining || !self.free(collection, s) {
                    continue;
                }
                if let Some(to) = self.target_for(collection, s) {
                    self.push(collection, s, node, to, TransferKind::Move);
                }
            }
        }
    }

    /// Step 2: shards with fewer replicas than their collection asks for.
    fn fill(&mut self) {
        for (collection, s) in self.shards() {
            let Some(rf) = self
                .map
                .collections
                .get(collection)
                .map(|c| c.config.replication_factor as usize)
            else {
                continue;
            };
            let Some(primary) = s.primary else { continue };
            if s.replicas.len() >= rf || !self.free(collection, s) {
                continue;
            }
            let primary_alive = self
                .map
                .nodes
                .get(&primary)
                .is_some_and(|n| n.state != NodeState::Dead);
            if !primary_alive {
                continue;
            }
            if let Some(to) = self.target_for(collection, s) {
                self.push(collection, s, primary, to, TransferKind::Replicate);
            }
        }
    }

    /// Step 3: even out the load between the busiest and the idlest node.
    fn even_out(&mut self, threshold: f64, min_imbalance: u64) {
        while self.budget > 0 && self.loads.len() >= 2 {
            let total: u64 = self.loads.values().sum();
            let mean = total as f64 / self.loads.len() as f64;
            let Some((&busiest, &max)) = self
                .loads
                .iter()
                .max_by_key(|(n, l)| (**l, std::cmp::Reverse(**n)))
            else {
                return;
            };
            let Some((&idlest, &min)) = self.loads.iter().min_by_key(|(n, l)| (**l, **n)) else {
                return;
            };
            let spread = max - min;
            if mean == 0.0 || (spread as f64) / mean <= threshold || spread < min_imbalance {
                return;
            }
            // The shard that leaves the two closest: |spread - 2w| smallest,
            // and only if it narrows their difference by at least its own
            // weight: a move that gains less (a shard nearly as heavy as
            // the difference, say) costs a whole copy for a small gain and
            // invites the next one back.
            let best = self
                .shards()
                .into_iter()
                .filter(|(c, s)| {
                    s.holds(busiest)
                        && !s.holds(idlest)
                        && self.free(c, s)
                        && !self.failed_recently(c, s.id, idlest)
                })
                .map(|(c, s)| {
                    let w = self.weights[&(c.to_string(), s.id)];
                    let after = spread.abs_diff(2 * w);
                    (after, w, s.primary == Some(busiest), c, s)
                })
                .filter(|(after, w, ..)| spread.saturating_sub(*after) >= (*w).max(1))
                .min_by_key(|(after, _, primary, c, s)| (*after, *primary, *c, s.id));
            let Some((_, _, _, c, s)) = best else { return };
            self.push(c, s, busiest, idlest, TransferKind::Move);
        }
    }
}

/// The transfers to start now. `forced` plans the imbalance step even when
/// automatic rebalancing is off (an operator's explicit request).
pub fn plan(map: &ClusterMap, live: &Liveness, now_ms: u64, forced: bool) -> Option<RebalancePlan> {
    let settings = RebalanceSettings::from_map(map);
    let mut planner = Planner::new(map, live, &settings, now_ms);
    planner.drain();
    planner.fill();
    if settings.auto_enabled || forced {
        planner.even_out(settings.trigger_threshold, settings.min_imbalance_bytes);
    }
    (!planner.moves.is_empty()).then_some(RebalancePlan {
        moves: planner.moves,
        created_at_ms: now_ms,
    })
}

#[cfg(test)]
mod tests;
