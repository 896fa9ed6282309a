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
//!    in-sync (`Active`) replica on an alive node that reported the highest
//!    applied sequence number (ties: the ring's order), with term + 1;
//! 3. a migration whose source or target is dead is aborted; a replica on a
//!    node dead for longer than `replica_replace_after` is replaced by the
//!    next alive node clockwise on the ring (it starts `Initializing`);
//! 4. an `Initializing` replica that reported the primary's sequence number
//!    under the current term is marked `Active` again;
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

use protocol::cluster::{ClusterCommand, ClusterMap, Heartbeat, NodeState, ReplicaState};
use protocol::ring::shard_key;
use protocol::{NodeId, SeqNo, ShardId, Term};

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
        // Highest applied seq wins; `Reverse(position)` keeps ring order on ties.
        let best = shard
            .replicas
            .iter()
            .enumerate()
            .filter(|(_, r)| {
                r.node != primary && r.state == ReplicaState::Active && is_alive(&sim, r.node)
            })
            .max_by_key(|(pos, r)| {
                let seq = live
                    .applied(r.node, &collection, shard_id)
                    .map_or(SeqNo(0), |(_, s)| s);
                (seq, std::cmp::Reverse(*pos))
            })
            .map(|(_, r)| r.node);
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
        if pterm != shard.term {
            continue;
        }
        let caught_up: Vec<NodeId> = shard
            .replicas
            .iter()
            .filter(|r| r.state == ReplicaState::Initializing && is_alive(&sim, r.node))
            .filter(|r| {
                live.applied(r.node, &collection, shard_id)
                    .is_some_and(|(t, s)| t == pterm && s >= pseq)
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
