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
//!    collection's noise is not worth a copy) — across the cluster, or
//!    within one collection — one replica moves. Of all the moves, the
//!    one that lowers `2·Σ collection load² + Σ node load²` the most is
//!    taken, non-primary replicas first (moving a primary makes its
//!    executor hand the role over). Each collection's own spread counts
//!    twice: it is what spreads one collection's searches and writes over
//!    every node, and a node can hold its share in all while one
//!    collection crowds onto two nodes. A move must gain half a shard more
//!    than break even (`D' >= 3.5w` in [`Planner::best_move`]), so the
//!    objective falls by a fixed step each time: the cluster never
//!    oscillates, and shards of nearly equal size are not shuffled.
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

/// Per shard, its weight: the largest size its replicas report, plus one
/// (so that empty shards still spread). A shard no replica reports yet —
/// just switched to its new node, which has not heartbeated since — weighs
/// the mean of its collection's reported shards: weighing nothing, it
/// would make its new node look empty and draw more moves there, which
/// the next pass would then undo (seen in `bench-transfer.sh`: a shard
/// moved to the new node and straight back).
fn shard_weights(map: &ClusterMap, live: &Liveness) -> BTreeMap<(String, ShardId), u64> {
    let mut weights = BTreeMap::new();
    for c in map.collections.values() {
        let reported: Vec<(ShardId, Option<u64>)> = c
            .shards
            .values()
            .map(|s| {
                let max = s
                    .nodes()
                    .filter_map(|n| live.load(n, &c.name, s.id))
                    .map(|(_, bytes)| bytes)
                    .max();
                (s.id, max)
            })
            .collect();
        let known: Vec<u64> = reported.iter().filter_map(|(_, w)| *w).collect();
        let mean = known.iter().sum::<u64>() / (known.len() as u64).max(1);
        for (id, w) in reported {
            weights.insert((c.name.clone(), id), w.unwrap_or(mean) + 1);
        }
    }
    weights
}

/// The nodes that will hold the shard once its running transfer ends: a
/// move's source counts as already rid of it. Counted as still holding
/// it, the source could tie as the busiest node and give a second shard
/// that a later move has to bring back.
fn holders_after_moves(s: &ShardInfo) -> impl Iterator<Item = NodeId> + '_ {
    let leaving = s
        .migration
        .as_ref()
        .filter(|m| m.kind == TransferKind::Move)
        .map(|m| m.from);
    s.nodes().filter(move |n| Some(*n) != leaving)
}

/// Load of every placeable node: the weights of the shards it holds (or
/// is receiving, and not those it is handing over).
pub fn loads(map: &ClusterMap, live: &Liveness) -> BTreeMap<NodeId, u64> {
    let weights = shard_weights(map, live);
    let mut loads: BTreeMap<NodeId, u64> = map.placeable_nodes().map(|n| (n, 0)).collect();
    for c in map.collections.values() {
        for s in c.shards.values() {
            let w = weights[&(c.name.clone(), s.id)];
            for n in holders_after_moves(s) {
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
    /// The same, per collection (every placeable node, zeros included).
    collection_loads: BTreeMap<String, BTreeMap<NodeId, u64>>,
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
        let weights = shard_weights(map, live);
        let loads = loads(map, live);
        let collection_loads = map
            .collections
            .values()
            .map(|c| {
                let mut per: BTreeMap<NodeId, u64> = loads.keys().map(|n| (*n, 0)).collect();
                for s in c.shards.values() {
                    for n in holders_after_moves(s) {
                        if let Some(l) = per.get_mut(&n) {
                            *l += weights[&(c.name.clone(), s.id)];
                        }
                    }
                }
                (c.name.clone(), per)
            })
            .collect();
        Self {
            map,
            weights,
            loads,
            collection_loads,
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

    /// The placeable node that may receive this shard and holds the least
    /// of its collection, then the least in all.
    fn target_for(&self, collection: &str, s: &ShardInfo) -> Option<NodeId> {
        self.loads
            .iter()
            .filter(|(n, _)| !s.holds(**n) && !self.failed_recently(collection, s.id, **n))
            .min_by_key(|(n, l)| (self.collection_load(collection, **n), **l, **n))
            .map(|(n, _)| *n)
    }

    fn collection_load(&self, collection: &str, node: NodeId) -> u64 {
        self.collection_loads
            .get(collection)
            .and_then(|per| per.get(&node))
            .copied()
            .unwrap_or(0)
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
        let per = self
            .collection_loads
            .entry(collection.to_string())
            .or_default();
        if kind == TransferKind::Move {
            for loads in [&mut self.loads, &mut *per] {
                if let Some(l) = loads.get_mut(&from) {
                    *l = l.saturating_sub(w);
                }
            }
        }
        *self.loads.entry(to).or_default() += w;
        *per.entry(to).or_default() += w;
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

    /// Step 3: even out the load, per collection and cluster-wide.
    fn even_out(&mut self, threshold: f64, min_imbalance: u64) {
        while self.budget > 0 && self.loads.len() >= 2 {
            let uneven = |loads: &BTreeMap<NodeId, u64>| {
                let (Some(max), Some(min)) = (loads.values().max(), loads.values().min()) else {
                    return false;
                };
                let mean = loads.values().sum::<u64>() as f64 / loads.len() as f64;
                let spread = max - min;
                mean > 0.0 && (spread as f64) / mean > threshold && spread >= min_imbalance
            };
            if !uneven(&self.loads) && !self.collection_loads.values().any(uneven) {
                return;
            }
            let Some(best) = self.best_move() else { return };
            let (c, s, from, to) = best;
            self.push(c, s, from, to, TransferKind::Move);
        }
    }

    /// The move that lowers `2·Σ collection load² + Σ load²` the most, if
    /// one gains enough. Moving weight `w` from `a` to `b` changes that sum
    /// by `2w(3w - D')`, where `D' = 2·(how much more of the collection a
    /// holds than b) + (how much more a holds in all)`; `D' >= 3.5w` keeps
    /// only moves that gain at least `w²`.
    fn best_move(&self) -> Option<(&'a str, &'a ShardInfo, NodeId, NodeId)> {
        let mut best: Option<(i128, bool, &'a str, &'a ShardInfo, NodeId, NodeId)> = None;
        for (c, s) in self.shards() {
            if !self.free(c, s) {
                continue;
            }
            let w = i128::from(self.weights[&(c.to_string(), s.id)]);
            for from in s.nodes() {
                let Some(&from_load) = self.loads.get(&from) else {
                    continue;
                };
                for (&to, &to_load) in &self.loads {
                    if s.holds(to) || self.failed_recently(c, s.id, to) {
                        continue;
                    }
                    let d = 2
                        * (i128::from(self.collection_load(c, from))
                            - i128::from(self.collection_load(c, to)))
                        + i128::from(from_load)
                        - i128::from(to_load);
                    if 2 * d < 7 * w {
                        continue;
                    }
                    let gain = w * (d - 3 * w);
                    let primary = s.primary == Some(from);
                    // Larger gain first, then a non-primary replica.
                    let better = best
                        .as_ref()
                        .is_none_or(|(g, p, ..)| gain > *g || (gain == *g && *p && !primary));
                    if better {
                        best = Some((gain, primary, c, s, from, to));
                    }
                }
            }
        }
        best.map(|(_, _, c, s, from, to)| (c, s, from, to))
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
