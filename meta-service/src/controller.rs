//! The controller: what the leader does about storage-node failures.
//!
//! [`plan`] is a pure function from (map, liveness, now) to the commands
//! that repair the map; [`run`] is the thin loop around it on the leader.
//! One pass, in order:
//!
//! 1. a node silent for longer than `node_dead_after` — counted while the
//!    leader kept hearing other nodes (a leader that stalls blames nobody;
//!    `node_dead_backstop` bounds that) — or whose presence connection
//!    closed (its process died), is marked `Dead` once every lease it was
//!    granted has run out; a
//!    dead node heard from again is marked `Alive` (the state machine then
//!    puts its non-primary replicas back to `Initializing`: they missed
//!    writes);
//! 2. every shard whose primary is on a dead node, or reported its WAL
//!    poisoned (a failed write or fsync: it refuses writes until it
//!    reopens), gets a new primary: the
//!    in-sync (`Active`) replica on an alive node with the most advanced
//!    history (last term, applied sequence number; ties: the ring's
//!    order), with term + 1 — but only when enough replicas reported, since
//!    the primary was declared dead, that one of them must hold every
//!    acknowledged write ([`failover_candidate`]);
//! 3. a transfer whose target is dead, or that reported no progress for
//!    `rebalancing.stall_after_ms`, is aborted (recorded as failed; the
//!    rebalancer plans it again later); a replica on a node dead for
//!    longer than `replica_replace_after` is replaced by the next alive
//!    node clockwise on the ring (it starts `Initializing`) — except in a
//!    shard whose primary is still dead (step 2 found no safe successor):
//!    its replica set waits, so that no successor is ever chosen around
//!    [`failover_candidate`]; a shard with more replicas than its
//!    collection's replication factor drops the surplus (never its primary
//!    or a transfer's target), once the replicas it keeps are level with
//!    the primary;
//! 4. an `Initializing` replica level with its primary's reported history
//!    is marked `Active` again (also on an idle shard whose primary has not
//!    written under its new term yet) — not a transfer's target, which
//!    becomes `Active` only through its verified switch;
//! 5. when nothing needed repair, shard transfers start
//!    ([`rebalance`]: drains, missing replicas, imbalance).
//!
//! Before all of this, once, [`seed_settings`] writes the config file's
//! rebalancing settings into a map that has none yet.
//!
//! Heartbeats (liveness and applied sequence numbers, [`Liveness`]) are
//! soft state kept only by the leader, not replicated: they change every
//! second and are worthless after a few. A new leader starts every node's
//! clock at its own takeover, so a failover never declares the whole
//! cluster dead.

use std::sync::Arc;
use std::time::Duration;

use protocol::cluster::{
    ClusterCommand, ClusterMap, NodeState, RebalanceSettings, ReplicaState, ShardInfo,
};
use protocol::ring::shard_key;
use protocol::{NodeId, SeqNo, ShardId, Term, WriteConsistency};

use crate::app::App;
use crate::commands::{apply, placement_ring};
use crate::liveness::{now_ms, DeadAfter, Liveness};
// `tests.rs` builds heartbeats with the names in scope here.
#[cfg(test)]
use protocol::cluster::Heartbeat;

/// Grace periods of the controller.
#[derive(Clone, Copy, Debug)]
pub struct Policy {
    /// Bounds of the grace of a node heard from as leader (adapted per node
    /// to how regularly its heartbeats arrive, see [`Liveness::dead_after`]).
    pub dead_after: DeadAfter,
    /// Grace of a node not heard from since this member became leader:
    /// after a leader change every storage node must first find the new
    /// leader (its heartbeat to the old one times out), which takes longer
    /// than the grace of a node that simply stops beating.
    pub new_leader_grace_ms: u64,
    /// A node silent this long is dead even if no other node was heard
    /// from meanwhile either (see [`Plan::mark_liveness`]).
    pub node_dead_backstop_ms: u64,
    pub replica_replace_after_ms: u64,
}

/// The commands that repair `map`, in the order they must be applied, each
/// wrapped in [`ClusterCommand::IfEpoch`]. Each was checked against the map
/// as changed by the ones before it, so they apply cleanly unless the map
/// moved on meanwhile (then the state machine refuses them and the next
/// pass re-plans). The steps are the ones listed in the module doc, and
/// each sees the map as the steps before it left it.
pub fn plan(
    map: &ClusterMap,
    live: &Liveness,
    now_ms: u64,
    policy: &Policy,
) -> Vec<ClusterCommand> {
    let mut plan = Plan {
        sim: map.clone(),
        out: Vec::new(),
    };
    plan.mark_liveness(live, now_ms, policy);
    plan.fail_over(live);
    plan.re_replicate(live, now_ms, policy);
    plan.catch_up(live);
    plan.rebalance(live, now_ms);
    plan.out
}

/// A plan being made: the commands so far, and the map as they leave it.
struct Plan {
    /// The map with every command of `out` applied.
    sim: ClusterMap,
    out: Vec<ClusterCommand>,
}

impl Plan {
    /// Step 1: a node silent for too long is `Dead`; a dead node heard from
    /// again is `Alive` (the state machine marks its replicas behind).
    fn mark_liveness(&mut self, live: &Liveness, now_ms: u64, policy: &Policy) {
        let nodes: Vec<_> = self.sim.nodes.values().cloned().collect();
        for node in &nodes {
            let last_seen = live.last_seen(node.id);
            let silent_for = now_ms.saturating_sub(last_seen);
            let grace = if live.heard_as_leader(node.id) {
                live.dead_after(node.id, policy.dead_after)
            } else {
                policy.dead_after.max_ms.max(policy.new_leader_grace_ms)
            };
            // Silent while other heartbeats kept arriving: when the leader
            // itself stalls every node looks silent at once, and none of
            // them is dead. The backstop covers a leader that hears no
            // storage node at all for long.
            let heard_silent = live.silent_while_others_heard(node.id, now_ms);
            // A node that registered again (or was revived) within the
            // grace was heard from then, whatever the heartbeats say: a
            // restarted node's registration reaches the leader before its
            // first heartbeat, and its last one is from before it died.
            let just_alive = node.state != NodeState::Dead
                && now_ms.saturating_sub(node.state_since_ms) <= grace;
            // A node whose presence connection closed since it registered
            // (its process died) need not be waited for: only its leases
            // are.
            let gone = live
                .gone_since(node.id)
                .is_some_and(|lost| lost >= node.state_since_ms);
            // Whatever the grace, never while a lease granted to it may
            // still run: a hung primary must not acknowledge a write after
            // its successor took over.
            let stale = (gone
                || !just_alive
                    && (heard_silent > grace
                        || silent_for > policy.node_dead_backstop_ms.max(grace)))
                && live.leases_over(node.id, now_ms);
            let state = if node.state != NodeState::Dead && stale {
                NodeState::Dead
            } else if node.state == NodeState::Dead
                && !stale
                && live.heard_since(node.id, node.state_since_ms)
            {
                NodeState::Alive
            } else {
                continue;
            };
            self.push(ClusterCommand::SetNodeState {
                node: node.id,
                state,
                at_ms: now_ms,
            });
        }
    }

    /// Step 2: every shard whose primary is on a dead node gets the
    /// replica [`failover_candidate`] picks, if any, with term + 1.
    fn fail_over(&mut self, live: &Liveness) {
        for (collection, shard_id) in all_shards(&self.sim) {
            let Some(shard) = self.sim.shard(&collection, shard_id) else {
                continue;
            };
            let Some(primary) = shard.primary else {
                continue;
            };
            if !is_dead(&self.sim, primary) && !live.poisoned(primary, &collection, shard_id) {
                continue;
            }
            let required = self
                .sim
                .collections
                .get(&collection)
                .map_or(WriteConsistency::Majority, |c| c.config.write_consistency);
            // Only reports heard after the primary was declared dead (or,
            // for a live primary whose WAL is poisoned, after its last
            // heartbeat, which said so) count: an older one (a replica cut
            // off together with the primary, not yet declared dead itself)
            // may predate writes the primary acknowledged until its lease
            // ran out. The lease (half the dead-node grace, from a
            // heartbeat's sending) ends before the primary is declared
            // dead, and a heartbeat received after that was sent less than
            // its timeout earlier, after the lease's end.
            let since = match self.sim.nodes.get(&primary) {
                Some(n) if n.state == NodeState::Dead => n.state_since_ms,
                Some(_) => live.last_seen(primary),
                None => u64::MAX,
            };
            let report = |n| {
                if is_alive(&self.sim, n) && live.heard_since(n, since) {
                    live.applied(n, &collection, shard_id)
                } else {
                    None
                }
            };
            // A replica whose own WAL refuses writes cannot lead, but what
            // it holds still counts against promoting one behind it.
            let eligible = |n| !live.poisoned(n, &collection, shard_id);
            let best = eligible_failover_candidate(shard, primary, required, report, eligible);
            match best {
                Some(node) => {
                    let expected_term = Some(shard.term);
                    self.push(ClusterCommand::PromotePrimary {
                        collection,
                        shard: shard_id,
                        node,
                        expected_term,
                    });
                }
                None => {
                    tracing::debug!(%collection, shard = %shard_id, "primary is dead and no in-sync replica is alive")
                }
            }
        }
    }

    /// Step 3: re-replication. First abort migrations with a dead end: they
    /// cannot finish, and they block changes to their shard's replicas.
    /// Then replace every replica on a node dead for longer than
    /// `replica_replace_after` by the next alive node clockwise, in shards
    /// with a live primary.
    fn re_replicate(&mut self, live: &Liveness, now_ms: u64, policy: &Policy) {
        self.abort_failed_transfers(now_ms);
        self.replace_long_dead_replicas(now_ms, policy);
        self.drop_surplus_replicas(live);
    }

    /// Transfers that cannot finish: the target is dead (a dead source
    /// does not matter, the primary streams), or the executor has been
    /// silent for longer than `rebalancing.stall_after_ms` (its primary is
    /// dead with no successor, or it keeps failing before reporting).
    fn abort_failed_transfers(&mut self, now_ms: u64) {
        let stall_after = RebalanceSettings::from_map(&self.sim).stall_after_ms;
        for (collection, shard_id) in all_shards(&self.sim) {
            let Some(m) = self
                .sim
                .shard(&collection, shard_id)
                .and_then(|s| s.migration.clone())
            else {
                continue;
            };
            let target_dead = self
                .sim
                .nodes
                .get(&m.to)
                .is_none_or(|i| i.state == NodeState::Dead);
            let silent_for = now_ms.saturating_sub(m.updated_at_ms);
            let reason = if target_dead {
                format!("target node {} is dead", m.to)
            } else if silent_for > stall_after {
                format!("no progress reported for {} s", silent_for / 1000)
            } else {
                continue;
            };
            self.push(ClusterCommand::AbortMigration {
                collection,
                shard: shard_id,
                reason,
                at_ms: now_ms,
            });
        }
    }

    /// A shard with more replicas than its collection's replication factor
    /// (the factor was lowered) drops the surplus: replicas on dead or
    /// draining nodes first, then `Initializing` ones, then the last in
    /// preference order; never the primary. Only when every replica kept
    /// reported the primary's history, so that the acknowledgements the
    /// dropped ones gave are held by the rest.
    fn drop_surplus_replicas(&mut self, live: &Liveness) {
        for (collection, shard_id) in all_shards(&self.sim) {
            let sim = &self.sim;
            let Some(coll) = sim.collections.get(&collection) else {
                continue;
            };
            let rf = coll.config.replication_factor as usize;
            let Some(shard) = sim.shard(&collection, shard_id) else {
                continue;
            };
            let Some(primary) = shard.primary else {
                continue;
            };
            if shard.migration.is_some() || shard.replicas.len() <= rf || is_dead(sim, primary) {
                continue;
            }
            let node_state = |n: NodeId| sim.nodes.get(&n).map(|i| i.state);
            let mut ranked: Vec<(usize, NodeId)> = shard
                .replicas
                .iter()
                .enumerate()
                .filter(|(_, r)| r.node != primary)
                .map(|(pos, r)| {
                    let rank = match (node_state(r.node), r.state) {
                        (Some(NodeState::Dead) | None, _) => 0,
                        (Some(NodeState::Draining), _) => 1,
                        (_, ReplicaState::Initializing) => 2,
                        _ => 3,
                    };
                    (rank * 1_000 + (1_000 - pos.min(999)), r.node)
                })
                .collect();
            ranked.sort();
            let surplus = shard.replicas.len() - rf;
            let dropped: Vec<NodeId> = ranked.iter().take(surplus).map(|(_, n)| *n).collect();
            let kept: Vec<NodeId> = shard.nodes().filter(|n| !dropped.contains(n)).collect();
            let Some(level) = live.applied(primary, &collection, shard_id) else {
                continue;
            };
            let all_level = kept
                .iter()
                .filter(|n| **n != primary)
                .all(|n| live.applied(*n, &collection, shard_id) == Some(level));
            if !all_level {
                continue;
            }
            self.push(ClusterCommand::SetReplicas {
                collection,
                shard: shard_id,
                replicas: kept,
            });
        }
    }

    fn replace_long_dead_replicas(&mut self, now_ms: u64, policy: &Policy) {
        let ring = placement_ring(&self.sim);
        for (collection, shard_id) in all_shards(&self.sim) {
            let sim = &self.sim;
            let Some(shard) = sim.shard(&collection, shard_id) else {
                continue;
            };
            if shard.migration.is_some() {
                continue;
            }
            // A primary still dead here is one `fail_over` found no safe
            // successor for. Replacing it would elect one around
            // `failover_candidate` (the state machine refuses that), and
            // replacing its dead peers would add fresh replicas that count
            // towards the rule's quorum of reports without holding any
            // acknowledged write — nor could they copy from a dead
            // primary. The shard waits for its replicas to come back.
            if shard.primary.is_some_and(|p| is_dead(sim, p)) {
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
            let candidates =
                ring.replicas_for(shard_key(&collection, shard_id).as_bytes(), ring.len());
            let mut free = candidates.into_iter().filter(|n| !shard.holds(*n));
            for slot in set.iter_mut() {
                if expired(*slot) {
                    if let Some(n) = free.next() {
                        *slot = n;
                    }
                }
            }
            if set != shard.nodes().collect::<Vec<_>>() {
                self.push(ClusterCommand::SetReplicas {
                    collection,
                    shard: shard_id,
                    replicas: set,
                });
            }
        }
    }

    /// Step 4: an `Initializing` replica level with its primary is in sync.
    fn catch_up(&mut self, live: &Liveness) {
        for (collection, shard_id) in all_shards(&self.sim) {
            let Some(shard) = self.sim.shard(&collection, shard_id) else {
                continue;
            };
            let Some(primary) = shard.primary else {
                continue;
            };
            let Some((pterm, pseq)) = live.applied(primary, &collection, shard_id) else {
                continue;
            };
            // Under the current term a replica at or past the primary's
            // report has a prefix of its history. A primary that has not
            // written in its term yet (an idle shard after a failover)
            // reports the term of its last operation: then only an
            // identical history (same last term and sequence number) is in
            // sync — a replica further along that term holds writes of the
            // old primary this one never had.
            let in_step = |(t, s): (Term, SeqNo)| {
                t == pterm
                    && if pterm == shard.term {
                        s >= pseq
                    } else {
                        s == pseq
                    }
            };
            let target = shard.migration.as_ref().map(|m| m.to);
            let caught_up: Vec<NodeId> = shard
                .replicas
                .iter()
                .filter(|r| Some(r.node) != target)
                .filter(|r| r.state == ReplicaState::Initializing && is_alive(&self.sim, r.node))
                .filter(|r| {
                    live.applied(r.node, &collection, shard_id)
                        .is_some_and(in_step)
                })
                .map(|r| r.node)
                .collect();
            for node in caught_up {
                self.push(ClusterCommand::SetReplicaState {
                    collection: collection.clone(),
                    shard: shard_id,
                    node,
                    state: ReplicaState::Active,
                });
            }
        }
    }

    /// Step 5: shard transfers, only when there was nothing to repair.
    fn rebalance(&mut self, live: &Liveness, now_ms: u64) {
        if !self.out.is_empty() {
            return;
        }
        if let Some(plan) = rebalance::plan(&self.sim, live, now_ms, false) {
            self.push(ClusterCommand::RebalanceShards { plan });
        }
    }

    /// Adds `cmd` to the plan, guarded by the epoch it was decided at, if
    /// it applies to the simulated map. Every decision is guarded
    /// (`IfEpoch`), so a plan made on a stale map (a new leader still
    /// applying, an operator command in between) is refused instead of
    /// undoing newer changes.
    fn push(&mut self, cmd: ClusterCommand) {
        let guarded = ClusterCommand::IfEpoch {
            epoch: self.sim.epoch,
            command: Box::new(cmd),
        };
        if apply(&mut self.sim, &guarded).is_ok() {
            self.out.push(guarded);
        }
    }
}

fn is_alive(map: &ClusterMap, node: NodeId) -> bool {
    map.nodes
        .get(&node)
        .is_some_and(|i| i.state == NodeState::Alive)
}

/// Known and `Dead` (a node missing from the map is not "dead" here: its
/// replicas are someone else's problem, e.g. `RemoveNode`'s refusal).
fn is_dead(map: &ClusterMap, node: NodeId) -> bool {
    map.nodes
        .get(&node)
        .is_some_and(|i| i.state == NodeState::Dead)
}

/// The replica to promote when `primary` is lost, if one is certain to
/// hold every acknowledged write.
///
/// A write acknowledged at consistency `w` (of the `n` `Active` replicas)
/// is on at least `w` of them, so any `n - w + 1` of them include one that
/// has it. The candidate is the `Active` replica with the most advanced
/// history, (last term, applied sequence number), among the replicas
/// reachable (`report` gives their progress, `None` when dead or silent);
/// it is promoted only when at least `n - w + 1` `Active` replicas
/// reported and no replica that reported is ahead of it. Otherwise the shard stays without a
/// writable primary (writes fail, reads go on) until enough replicas are
/// back: a minority must never elect itself and drop what the majority
/// acknowledged. Collections writing at `one` are held to `majority` here:
/// a `one` write only ever promised the primary's copy, but a `majority`
/// write to the same collection must survive.
// The controller calls the `eligible_` form; the rule's tests this one.
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) fn failover_candidate(
    shard: &ShardInfo,
    primary: NodeId,
    consistency: WriteConsistency,
    report: impl Fn(NodeId) -> Option<(Term, SeqNo)>,
) -> Option<NodeId> {
    eligible_failover_candidate(shard, primary, consistency, report, |_| true)
}

/// [`failover_candidate`] among the replicas `eligible` accepts only; the
/// others' reports still count towards the quorum of reports and the
/// most advanced history.
pub(crate) fn eligible_failover_candidate(
    shard: &ShardInfo,
    primary: NodeId,
    consistency: WriteConsistency,
    report: impl Fn(NodeId) -> Option<(Term, SeqNo)>,
    eligible: impl Fn(NodeId) -> bool,
) -> Option<NodeId> {
    // Writes count only `Active` replicas, in their acknowledgements and in
    // their quorum's denominator (a replica still being filled is neither),
    // so the rule reasons over the same set.
    let active: Vec<(usize, NodeId)> = shard
        .replicas
        .iter()
        .enumerate()
        .filter(|(_, r)| r.state == ReplicaState::Active)
        .map(|(pos, r)| (pos, r.node))
        .collect();
    let n = active.len();
    let w = match consistency {
        WriteConsistency::One => WriteConsistency::Majority,
        c => c,
    }
    .required_acks(n);
    let reported: Vec<_> = active
        .iter()
        .filter(|(_, node)| *node != primary)
        .filter_map(|(pos, node)| Some((*pos, *node, report(*node)?)))
        .collect();
    if reported.is_empty() || reported.len() < n.saturating_sub(w) + 1 {
        return None;
    }
    // `Reverse(position)` keeps ring order on ties.
    let (_, best, progress) = reported
        .iter()
        .filter(|(_, node, _)| eligible(*node))
        .max_by_key(|(pos, _, p)| (*p, std::cmp::Reverse(*pos)))?;
    // A replica no longer `Active` (its node died and came back) may still
    // hold writes it acknowledged while it was: nobody behind one that
    // reports more is promoted.
    let most_advanced = shard
        .replicas
        .iter()
        .filter(|r| r.node != primary)
        .filter_map(|r| report(r.node))
        .max()?;
    (*progress >= most_advanced).then_some(*best)
}

fn all_shards(map: &ClusterMap) -> Vec<(String, ShardId)> {
    map.collections
        .values()
        .flat_map(|c| c.shards.keys().map(|s| (c.name.clone(), *s)))
        .collect()
}

/// Step 0, before any repair: the file's cluster-wide settings
/// (`cluster.rebalancing.*`, [`crate::MetaConfig::initial_settings`])
/// written into the map for each key the map has no value for yet. The
/// file seeds them; a value already in the map — a run-time change
/// (`UpdateConfig`, the gateway's `PUT /api/cluster/settings`) or an
/// earlier seed — is never overwritten, by this member or by a later
/// leader started with another file.
pub fn seed_settings(
    map: &ClusterMap,
    settings: &std::collections::BTreeMap<String, String>,
) -> Vec<ClusterCommand> {
    if settings.keys().all(|k| map.config.contains_key(k)) {
        return Vec::new();
    }
    let mut plan = Plan {
        sim: map.clone(),
        out: Vec::new(),
    };
    for (key, value) in settings {
        if !plan.sim.config.contains_key(key) {
            plan.push(ClusterCommand::UpdateConfig {
                key: key.clone(),
                value: value.clone(),
            });
        }
    }
    plan.out
}

/// The loop: while this member leads, plan and submit every `interval`.
/// Ends when `stop` fires.
pub async fn run(app: Arc<App>, mut stop: tokio::sync::watch::Receiver<bool>) {
    let policy = Policy {
        dead_after: app.config.dead_after(),
        new_leader_grace_ms: app.config.new_leader_grace.as_millis() as u64,
        node_dead_backstop_ms: app.config.node_dead_backstop.as_millis() as u64,
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
            let mut live = app.liveness.lock();
            live.hearing_gap_cap_ms = Some(app.config.hearing_gap_cap.as_millis() as u64);
            live.reset(now_ms());
        }
        was_leader = leader;
        if !leader {
            continue;
        }
        let map = app.map.borrow().clone();
        let live = app.liveness.lock().clone();
        let mut commands = seed_settings(&map, &app.config.initial_settings);
        if commands.is_empty() {
            commands = plan(&map, &live, now_ms(), &policy);
        }
        for cmd in commands {
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
