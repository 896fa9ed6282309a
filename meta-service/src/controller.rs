//! The controller: what the leader does about storage-node failures.
//!
//! [`plan`] is a pure function from (map, liveness, now) to the commands
//! that repair the map; [`run`] is the thin loop around it on the leader.
//! One pass, in order:
//!
//! 1. a node silent for longer than `node_dead_after` is marked `Dead`; a
//!    dead node heard from again is marked `Alive` (the state machine then
//!    puts its non-primary replicas back to `Initializing`: they missed
//!    writes);
//! 2. every shard whose primary is on a dead node gets a new primary: the
//!    in-sync (`Active`) replica on an alive node with the most advanced
//!    history (last term, applied sequence number; ties: the ring's
//!    order), with term + 1 — but only when enough replicas reported that
//!    one of them must hold every acknowledged write
//!    ([`failover_candidate`]);
//! 3. a migration whose source or target is dead is aborted; a replica on a
//!    node dead for longer than `replica_replace_after` is replaced by the
//!    next alive node clockwise on the ring (it starts `Initializing`);
//! 4. an `Initializing` replica level with its primary's reported history
//!    is marked `Active` again (also on an idle shard whose primary has not
//!    written under its new term yet);
//! 5. when nothing needed repair and `rebalancing.auto_enabled` is set,
//!    replicas move from the busiest to the idlest nodes ([`rebalance`]).
//!
//! Heartbeats (liveness and applied sequence numbers) are soft state kept
//! only by the leader, not replicated: they change every second and are
//! worthless after a few. A new leader starts every node's clock at its own
//! takeover, so a failover never declares the whole cluster dead.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use protocol::cluster::{
    ClusterCommand, ClusterMap, Heartbeat, NodeState, ReplicaState, ShardInfo,
};
use protocol::ring::shard_key;
use protocol::{NodeId, SeqNo, ShardId, Term, WriteConsistency};

use crate::commands::{apply, placement_ring};

/// Grace periods of the controller.
#[derive(Clone, Copy, Debug)]
pub struct Policy {
    pub node_dead_after_ms: u64,
    pub replica_replace_after_ms: u64,
}

/// What the leader has heard from storage nodes.
#[derive(Clone, Debug, Default)]
pub struct Liveness {
    /// When this member became leader (ms since the Unix epoch); a node not
    /// heard from since counts as heard from at this time.
    pub leader_since_ms: u64,
    pub nodes: HashMap<NodeId, NodeReport>,
}

#[derive(Clone, Debug, Default)]
pub struct NodeReport {
    pub last_seen_ms: u64,
    /// Per shard: (term followed, highest sequence number applied).
    pub applied: HashMap<(String, ShardId), (Term, SeqNo)>,
}

impl Liveness {
    pub fn record(&mut self, hb: &Heartbeat, now_ms: u64) {
        let report = self.nodes.entry(hb.node).or_default();
        report.last_seen_ms = now_ms;
        report.applied = hb
            .replicas
            .iter()
            .map(|r| ((r.collection.clone(), r.shard), (r.term, r.applied)))
            .collect();
    }

    /// Forget everything and start the clocks now (on becoming leader).
    pub fn reset(&mut self, now_ms: u64) {
        self.leader_since_ms = now_ms;
        self.nodes.clear();
    }

    fn last_seen(&self, node: NodeId) -> u64 {
        self.nodes.get(&node).map_or(self.leader_since_ms, |r| {
            r.last_seen_ms.max(self.leader_since_ms)
        })
    }

    /// Heard from since becoming leader (not just assumed alive).
    fn heard_since(&self, node: NodeId, since_ms: u64) -> bool {
        self.nodes
            .get(&node)
            .is_some_and(|r| r.last_seen_ms > since_ms)
    }

    fn applied(&self, node: NodeId, collection: &str, shard: ShardId) -> Option<(Term, SeqNo)> {
        self.nodes
            .get(&node)?
            .applied
            .get(&(collection.to_string(), shard))
            .copied()
    }
}

/// The commands that repair `map`, in the order they must be applied, each
/// wrapped in [`ClusterCommand::IfEpoch`]. Each was checked against the map
/// as changed by the ones before it, so they apply cleanly unless the map
/// moved on meanwhile (then the state machine refuses them and the next
/// pass re-plans).
pub fn plan(
    map: &ClusterMap,
    live: &Liveness,
    now_ms: u64,
    policy: &Policy,
) -> Vec<ClusterCommand> {
    let mut sim = map.clone();
    let mut out = Vec::new();

    // 1. Liveness.
    let nodes: Vec<_> = map.nodes.values().cloned().collect();
    for node in &nodes {
        let silent_for = now_ms.saturating_sub(live.last_seen(node.id));
        let stale = silent_for > policy.node_dead_after_ms;
        if node.state != NodeState::Dead && stale {
            push(
                &mut sim,
                &mut out,
                ClusterCommand::SetNodeState {
                    node: node.id,
                    state: NodeState::Dead,
                    at_ms: now_ms,
                },
            );
        } else if node.state == NodeState::Dead
            && !stale
            && live.heard_since(node.id, node.state_since_ms)
        {
            push(
                &mut sim,
                &mut out,
                ClusterCommand::SetNodeState {
                    node: node.id,
                    state: NodeState::Alive,
                    at_ms: now_ms,
                },
            );
            // (the state machine marks its replicas behind)
        }
    }
    let is_alive =
        |m: &ClusterMap, n: NodeId| m.nodes.get(&n).is_some_and(|i| i.state == NodeState::Alive);

    // 2. Failover.
    for (collection, shard_id) in all_shards(&sim) {
        let Some(shard) = sim.shard(&collection, shard_id) else {
            continue;
        };
        let Some(primary) = shard.primary else {
            continue;
        };
        if sim
            .nodes
            .get(&primary)
            .is_none_or(|n| n.state != NodeState::Dead)
        {
            continue;
        }
        let required = sim
            .collections
            .get(&collection)
            .map_or(WriteConsistency::Majority, |c| c.config.write_consistency);
        let best = failover_candidate(shard, primary, required, |n| {
            if is_alive(&sim, n) {
                live.applied(n, &collection, shard_id)
            } else {
                None
            }
        });
        match best {
            Some(node) => {
                let expected_term = Some(shard.term);
                push(
                    &mut sim,
                    &mut out,
                    ClusterCommand::PromotePrimary {
                        collection,
                        shard: shard_id,
                        node,
                        expected_term,
                    },
                );
            }
            None => {
                tracing::debug!(%collection, shard = %shard_id, "primary is dead and no in-sync replica is alive")
            }
        }
    }

    // 3. Re-replication. First abort migrations with a dead end: they
    //    cannot finish, and they block changes to their shard's replicas.
    for (collection, shard_id) in all_shards(&sim) {
        let Some(m) = sim
            .shard(&collection, shard_id)
            .and_then(|s| s.migration.clone())
        else {
            continue;
        };
        let dead = |n: NodeId| sim.nodes.get(&n).is_none_or(|i| i.state == NodeState::Dead);
        if dead(m.from) || dead(m.to) {
            let cmd = ClusterCommand::AbortMigration {
                collection,
                shard: shard_id,
            };
            push(&mut sim, &mut out, cmd);
        }
    }
    let ring = placement_ring(&sim);
    for (collection, shard_id) in all_shards(&sim) {
        let Some(shard) = sim.shard(&collection, shard_id) else {
            continue;
        };
        if shard.migration.is_some() {
            continue;
        }
        let expired = |n: NodeId| {
            sim.nodes.get(&n).is_some_and(|i| {
                i.state == NodeState::Dead
                    && now_ms.saturating_sub(i.state_since_ms) > policy.replica_replace_after_ms
            })
        };
        if !shard.nodes().any(expired) {
            continue;
        }
        let mut set: Vec<NodeId> = shard.nodes().collect();
        let candidates = ring.replicas_for(shard_key(&collection, shard_id).as_bytes(), ring.len());
        let mut free = candidates.into_iter().filter(|n| !shard.holds(*n));
        for slot in set.iter_mut() {
            if expired(*slot) {
                if let Some(n) = free.next() {
                    *slot = n;
                }
            }
        }
        if set != shard.nodes().collect::<Vec<_>>() {
            push(
                &mut sim,
                &mut out,
                ClusterCommand::SetReplicas {
                    collection,
                    shard: shard_id,
                    replicas: set,
                },
            );
        }
    }

    // 4. Catch-up: an initializing replica level with its primary is in sync.
    for (collection, shard_id) in all_shards(&sim) {
        let Some(shard) = sim.shard(&collection, shard_id) else {
            continue;
        };
        let Some(primary) = shard.primary else {
            continue;
        };
        let Some((pterm, pseq)) = live.applied(primary, &collection, shard_id) else {
            continue;
        };
        // Under the current term a replica at or past the primary's report
        // has a prefix of its history. A primary that has not written in
        // its term yet (an idle shard after a failover) reports the term
        // of its last operation: then only an identical history (same last
        // term and sequence number) is in sync — a replica further along
        // that term holds writes of the old primary this one never had.
        let in_step = |(t, s): (Term, SeqNo)| {
            t == pterm
                && if pterm == shard.term {
                    s >= pseq
                } else {
                    s == pseq
                }
        };
        let caught_up: Vec<NodeId> = shard
            .replicas
            .iter()
            .filter(|r| r.state == ReplicaState::Initializing && is_alive(&sim, r.node))
            .filter(|r| {
                live.applied(r.node, &collection, shard_id)
                    .is_some_and(in_step)
            })
            .map(|r| r.node)
            .collect();
        for node in caught_up {
            let state = ReplicaState::Active;
            push(
                &mut sim,
                &mut out,
                ClusterCommand::SetReplicaState {
                    collection: collection.clone(),
                    shard: shard_id,
                    node,
                    state,
                },
            );
        }
    }

    // 5. Rebalancing, only when there was nothing to repair.
    if out.is_empty() {
        if let Some(plan) = rebalance::plan(&sim, now_ms) {
            push(&mut sim, &mut out, ClusterCommand::RebalanceShards { plan });
        }
    }
    out
}

/// The replica to promote when `primary` is lost, if one is certain to
/// hold every acknowledged write.
///
/// A write acknowledged at consistency `w` (of `n` replicas) is on at least
/// `w` of them, so any `n - w + 1` replicas include one that has it. The
/// candidate is the in-sync (`Active`) replica with the most advanced
/// history, (last term, applied sequence number), among the replicas
/// reachable (`report` gives their progress, `None` when dead or silent);
/// it is promoted only when at least `n - w + 1` replicas reported and
/// none of them is ahead of it. Otherwise the shard stays without a
/// writable primary (writes fail, reads go on) until enough replicas are
/// back: a minority must never elect itself and drop what the majority
/// acknowledged. Collections writing at `one` are held to `majority` here:
/// a `one` write only ever promised the primary's copy, but a `majority`
/// write to the same collection must survive.
pub(crate) fn failover_candidate(
    shard: &ShardInfo,
    primary: NodeId,
    consistency: WriteConsistency,
    report: impl Fn(NodeId) -> Option<(Term, SeqNo)>,
) -> Option<NodeId> {
    let n = shard.replicas.len();
    let w = match consistency {
        WriteConsistency::One => WriteConsistency::Majority,
        c => c,
    }
    .required_acks(n);
    let reported: Vec<_> = shard
        .replicas
        .iter()
        .enumerate()
        .filter(|(_, r)| r.node != primary)
        .filter_map(|(pos, r)| Some((pos, r, report(r.node)?)))
        .collect();
    if reported.len() < n.saturating_sub(w) + 1 {
        return None;
    }
    let most_advanced = reported.iter().map(|(_, _, p)| *p).max()?;
    // `Reverse(position)` keeps ring order on ties.
    let (_, best, progress) = reported
        .iter()
        .filter(|(_, r, _)| r.state == ReplicaState::Active)
        .max_by_key(|(pos, _, p)| (*p, std::cmp::Reverse(*pos)))?;
    (*progress >= most_advanced).then_some(best.node)
}

/// Adds `cmd` to the plan, guarded by the epoch it was decided at, if it
/// applies to the simulated map. Every decision is guarded (`IfEpoch`), so
/// a plan made on a stale map (a new leader still applying, an operator
/// command in between) is refused instead of undoing newer changes.
fn push(sim: &mut ClusterMap, out: &mut Vec<ClusterCommand>, cmd: ClusterCommand) {
    let guarded = ClusterCommand::IfEpoch {
        epoch: sim.epoch,
        command: Box::new(cmd),
    };
    if apply(sim, &guarded).is_ok() {
        out.push(guarded);
    }
}

fn all_shards(map: &ClusterMap) -> Vec<(String, ShardId)> {
    map.collections
        .values()
        .flat_map(|c| c.shards.keys().map(|s| (c.name.clone(), *s)))
        .collect()
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The loop: while this member leads, plan and submit every `interval`.
/// Ends when `stop` fires.
pub async fn run(app: Arc<crate::server::App>, mut stop: tokio::sync::watch::Receiver<bool>) {
    let policy = Policy {
        node_dead_after_ms: app.config.node_dead_after.as_millis() as u64,
        replica_replace_after_ms: app.config.replica_replace_after.as_millis() as u64,
    };
    let mut was_leader = false;
    let mut tick = tokio::time::interval(app.config.controller_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        let leader = app.is_leader();
        if leader && !was_leader {
            tracing::info!("became leader: controller starts, node clocks reset");
            app.liveness.lock().reset(now_ms());
        }
        was_leader = leader;
        if !leader {
            continue;
        }
        let map = app.map.borrow().clone();
        let live = app.liveness.lock().clone();
        for cmd in plan(&map, &live, now_ms(), &policy) {
            tracing::info!(?cmd, "controller submits");
            metrics::counter!("meta_controller_commands_total", "kind" => cmd.kind()).increment(1);
            let res =
                tokio::time::timeout(Duration::from_secs(5), app.raft.client_write(cmd)).await;
            match res {
                Ok(Ok(r)) => {
                    // Stop at the first refusal: the epoch guards of the
                    // later commands assume this one applied.
                    if let Err(refusal) = r.data {
                        tracing::info!(%refusal, "controller command refused; re-planning next pass");
                        break;
                    }
                }
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "controller write failed");
                    break;
                }
                Err(_) => {
                    tracing::warn!("controller write timed out");
                    break;
                }
            }
        }
    }
}

pub mod rebalance;
#[cfg(test)]
mod tests;
