//! Applying a [`ClusterCommand`] to a [`ClusterMap`]: validation and
//! effect, one small function per command.
//!
//! This is the whole state machine of the meta-service. It must be
//! deterministic (every member applies the same log and must end with the
//! same map), so it never reads a clock or a random number: times come in
//! the commands. A refused command leaves the map untouched (each command
//! validates against the map before its first write); an accepted one
//! bumps the epoch by one, here in [`apply`] and nowhere else.
//!
//! The commands, by what they change:
//!
//! - `collections`: create and delete collections and shards.
//! - `nodes`: register, remove, and set the state of storage nodes.
//! - `replicas`: replica sets, replica states, primaries.
//! - `migrations`: start, advance, complete and abort migrations.
//! - `aliases`: collection aliases, changed all at once.
//! - `lookup`: the checks and lookups they share, and their refusals.

mod aliases;
mod collections;
mod lookup;
mod migrations;
mod nodes;
mod replicas;

use protocol::cluster::{ClusterCommand, ClusterMap, CommandError, RebalanceSettings};
use protocol::ring::HashRing;
use protocol::Epoch;

// `tests.rs` uses the names in scope here (`use super::*`).
#[cfg(test)]
use protocol::{
    cluster::{MigrationPhase, NodeState, ReplicaState, ShardInfo},
    NodeId, ShardId, Term,
};

/// Applies `cmd` to `map`. On `Ok` the map changed and its epoch is the
/// returned one; on `Err` the map is exactly as before.
pub fn apply(map: &mut ClusterMap, cmd: &ClusterCommand) -> Result<Epoch, CommandError> {
    use ClusterCommand as C;
    match cmd {
        // The inner command bumps the epoch (once) if it applies.
        C::IfEpoch { epoch, command } => return if_epoch(map, *epoch, command),
        C::CreateCollection { name, config } => collections::create_collection(map, name, config),
        C::DeleteCollection { name } => collections::delete_collection(map, name),
        C::CreateShard {
            collection,
            shard,
            replicas,
        } => collections::create_shard(map, collection, *shard, replicas.as_deref()),
        C::DeleteShard { collection, shard } => collections::delete_shard(map, collection, *shard),
        C::AddNode { node } => nodes::add_node(map, node),
        C::RemoveNode { node } => nodes::remove_node(map, *node),
        C::SetNodeState { node, state, at_ms } => nodes::set_node_state(map, *node, *state, *at_ms),
        C::RebalanceShards { plan } => migrations::rebalance_shards(map, plan),
        C::UpdateMigration {
            collection,
            shard,
            to,
            phase,
            points_copied,
            points_total,
            bytes_copied,
            bytes_total,
            at_ms,
        } => migrations::update_migration(
            map,
            collection,
            *shard,
            *to,
            migrations::Progress {
                phase: *phase,
                points_copied: *points_copied,
                points_total: *points_total,
                bytes_copied: *bytes_copied,
                bytes_total: *bytes_total,
                at_ms: *at_ms,
            },
        ),
        C::CompleteMigration {
            collection,
            shard,
            to,
            verified,
            at_ms,
        } => migrations::complete_migration(map, collection, *shard, *to, verified, *at_ms),
        C::AbortMigration {
            collection,
            shard,
            reason,
            at_ms,
        } => migrations::abort_migration(map, collection, *shard, reason, *at_ms),
        C::SetReplicationFactor {
            collection,
            replication_factor,
        } => collections::set_replication_factor(map, collection, *replication_factor),
        C::SetPayloadIndex {
            collection,
            field,
            index,
        } => collections::set_payload_index(map, collection, field, index.clone()),
        C::UpdateConfig { key, value } => update_config(map, key, value),
        C::SetReplicas {
            collection,
            shard,
            replicas,
        } => replicas::set_replicas(map, collection, *shard, replicas),
        C::SetReplicaState {
            collection,
            shard,
            node,
            state,
        } => replicas::set_replica_state(map, collection, *shard, *node, *state),
        C::PromotePrimary {
            collection,
            shard,
            node,
            expected_term,
        } => replicas::promote_primary(map, collection, *shard, *node, *expected_term),
        C::ChangeAliases { actions } => aliases::change_aliases(map, actions),
    }?;
    map.epoch = Epoch(map.epoch.0 + 1);
    Ok(map.epoch)
}

/// Compare-and-set on the epoch: `command` applies only to the map it was
/// decided on. One level only.
fn if_epoch(
    map: &mut ClusterMap,
    epoch: Epoch,
    command: &ClusterCommand,
) -> Result<Epoch, CommandError> {
    if matches!(command, ClusterCommand::IfEpoch { .. }) {
        return Err(lookup::invalid("nested epoch guards"));
    }
    if map.epoch != epoch {
        return Err(CommandError::EpochMismatch {
            expected: epoch,
            actual: map.epoch,
        });
    }
    apply(map, command)
}

fn update_config(map: &mut ClusterMap, key: &str, value: &str) -> Result<(), CommandError> {
    if key.is_empty() {
        return Err(lookup::invalid("config key must not be empty"));
    }
    if let Some(Err(reason)) = RebalanceSettings::check(key, value) {
        return Err(lookup::invalid(&reason));
    }
    map.config.insert(key.to_string(), value.to_string());
    Ok(())
}

/// The ring of nodes that may receive new replicas.
pub fn placement_ring(map: &ClusterMap) -> HashRing {
    HashRing::new(map.placeable_nodes())
}

#[cfg(test)]
mod alias_tests;
#[cfg(test)]
mod refusal_props;
#[cfg(test)]
mod tests;
