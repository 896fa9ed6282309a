//! The members task: turns chitchat's live-node map into [`Snapshot`]s of
//! parsed members, logs every change and keeps the gauges current.
//!
//! chitchat refreshes its live-node map at the end of every gossip round,
//! and only when a node appears, disappears or changes a key (heartbeats do
//! not count), so the task does work proportional to changes.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Weak};
use std::time::Duration;

use chitchat::{Chitchat, ChitchatId, NodeState};
use protocol::NodeId;
use tokio::sync::{watch, Mutex};
use tracing::{debug, info, warn};

use crate::change::{diff, ClusterChange, Snapshot};
use crate::member::{self, Member};

/// Parses chitchat's live nodes into members: unusable nodes and nodes that
/// are leaving are left out; of two live generations of one node id (a
/// restart seen before the old one is declared dead) the newest wins.
fn live_members(
    live_nodes: &BTreeMap<ChitchatId, NodeState>,
    warned: &mut HashSet<String>,
) -> BTreeMap<NodeId, Member> {
    let mut members: BTreeMap<NodeId, Member> = BTreeMap::new();
    for (id, state) in live_nodes {
        let parsed = match member::parse(
            &id.node_id,
            id.generation_id,
            id.gossip_advertise_addr,
            state.key_values(),
        ) {
            Ok(parsed) => parsed,
            Err(e) => {
                warn_once(
                    warned,
                    format!("{id:?}: {e}"),
                    || warn!(node = ?id, error = %e, "ignoring node with unusable gossip state"),
                );
                continue;
            }
        };
        for warning in &parsed.warnings {
            warn_once(
                warned,
                format!("{id:?}: {warning}"),
                || warn!(node = ?id, %warning, "ignoring malformed gossip value"),
            );
        }
        if parsed.leaving {
            continue;
        }
        let m = parsed.member;
        match members.get(&m.node_id) {
            Some(existing) if existing.generation >= m.generation => {}
            _ => {
                members.insert(m.node_id, m);
            }
        }
    }
    members
}

/// Logs a warning once per distinct message (gossip state is re-parsed on
/// every change, a bad value would otherwise be logged again and again).
fn warn_once(warned: &mut HashSet<String>, key: String, log: impl FnOnce()) {
    if warned.len() > 10_000 {
        warned.clear();
    }
    if warned.insert(key) {
        log();
    }
}

pub(crate) fn dead_members(chitchat: &Chitchat, live: &BTreeMap<NodeId, Member>) -> Vec<Member> {
    let mut dead: BTreeMap<NodeId, Member> = BTreeMap::new();
    for id in chitchat.dead_nodes() {
        let Some(state) = chitchat.node_state(id) else {
            continue;
        };
        // Unusable states were already warned about when the node was live.
        let Ok(parsed) = member::parse(
            &id.node_id,
            id.generation_id,
            id.gossip_advertise_addr,
            state.key_values(),
        ) else {
            continue;
        };
        let m = parsed.member;
        if live.contains_key(&m.node_id) {
            continue;
        }
        match dead.get(&m.node_id) {
            Some(existing) if existing.generation >= m.generation => {}
            _ => {
                dead.insert(m.node_id, m);
            }
        }
    }
    dead.into_values().collect()
}

/// Turns chitchat's live-node map into member snapshots, logs changes and
/// keeps the gauges current. Ends when chitchat goes away.
pub(crate) async fn run_members_task(
    mut live_nodes: watch::Receiver<BTreeMap<ChitchatId, NodeState>>,
    chitchat: Weak<Mutex<Chitchat>>,
    members_tx: watch::Sender<Snapshot>,
    gossip_interval: Duration,
) {
    let mut warned = HashSet::new();
    // The dead set also shrinks by garbage collection, which does not touch
    // the live map: refresh the gauge on a timer too.
    let mut gauge_tick = tokio::time::interval((gossip_interval * 10).max(Duration::from_secs(1)));
    gauge_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    live_nodes.mark_changed();
    loop {
        tokio::select! {
            changed = live_nodes.changed() => {
                if changed.is_err() {
                    return;
                }
                let next = live_members(&live_nodes.borrow_and_update(), &mut warned);
                let prev = members_tx.borrow().clone();
                if *prev == next {
                    continue;
                }
                for change in diff(&prev, &next) {
                    log_change(&change);
                }
                metrics::gauge!("membership_live_nodes").set(next.len() as f64);
                members_tx.send_replace(Arc::new(next));
            }
            _ = gauge_tick.tick() => {}
        }
        let Some(chitchat) = chitchat.upgrade() else {
            return;
        };
        let live = members_tx.borrow().clone();
        let dead = dead_members(&*chitchat.lock().await, &live).len();
        metrics::gauge!("membership_dead_nodes").set(dead as f64);
    }
}

fn log_change(change: &ClusterChange) {
    match change {
        ClusterChange::Add(m) => info!(
            node_id = %m.node_id, generation = m.generation,
            rpc_addr = %m.rpc_addr, "member live"
        ),
        ClusterChange::Update(m) => debug!(node_id = %m.node_id, "member updated"),
        ClusterChange::Remove(m) => warn!(
            node_id = %m.node_id, generation = m.generation,
            "member dead or left"
        ),
    }
}
