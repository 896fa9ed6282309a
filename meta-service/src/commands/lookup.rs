//! The lookups and checks the commands share, and the refusals they build.
//! All of them only read the map, so a command may call them before its
//! first write.

use std::collections::BTreeSet;

use protocol::cluster::{ClusterMap, CollectionInfo, CommandError, NodeState, ShardInfo};
use protocol::names::{validate_name, NameKind};
use protocol::{NodeId, ShardId};

/// A replica list is non-empty, repeats no node, and names known nodes.
pub(super) fn check_replica_list(map: &ClusterMap, nodes: &[NodeId]) -> Result<(), CommandError> {
    if nodes.is_empty() {
        return Err(invalid("a replica set must not be empty"));
    }
    let distinct: BTreeSet<_> = nodes.iter().collect();
    if distinct.len() != nodes.len() {
        return Err(invalid("a replica set must not repeat a node"));
    }
    for node in nodes {
        if !map.nodes.contains_key(node) {
            return Err(CommandError::NodeNotFound { node: *node });
        }
    }
    Ok(())
}

pub(super) fn require_alive(map: &ClusterMap, node: NodeId) -> Result<(), CommandError> {
    match map.nodes.get(&node) {
        None => Err(CommandError::NodeNotFound { node }),
        Some(n) if n.state != NodeState::Alive => Err(CommandError::NodeNotAlive { node }),
        Some(_) => Ok(()),
    }
}

pub(super) fn collection_ref<'a>(
    map: &'a ClusterMap,
    name: &str,
) -> Result<&'a CollectionInfo, CommandError> {
    map.collections
        .get(name)
        .ok_or_else(|| CommandError::CollectionNotFound {
            name: name.to_string(),
        })
}

pub(super) fn collection_mut<'a>(
    map: &'a mut ClusterMap,
    name: &str,
) -> Result<&'a mut CollectionInfo, CommandError> {
    map.collections
        .get_mut(name)
        .ok_or_else(|| CommandError::CollectionNotFound {
            name: name.to_string(),
        })
}

pub(super) fn shard_ref<'a>(
    map: &'a ClusterMap,
    collection: &str,
    shard: ShardId,
) -> Result<&'a ShardInfo, CommandError> {
    collection_ref(map, collection)?
        .shards
        .get(&shard)
        .ok_or_else(|| shard_not_found(collection, shard))
}

pub(super) fn shard_mut<'a>(
    map: &'a mut ClusterMap,
    collection: &str,
    shard: ShardId,
) -> Result<&'a mut ShardInfo, CommandError> {
    collection_mut(map, collection)?
        .shards
        .get_mut(&shard)
        .ok_or_else(|| shard_not_found(collection, shard))
}

/// Collection and alias names follow the one rule in
/// [`protocol::names`]: storage nodes turn collection names into directory
/// names, so a name refused anywhere is refused here too, even in a raw
/// `POST /v1/commands`. Only where a name is born (a collection created, an
/// alias created or renamed): commands naming an existing collection find
/// it or not, and a collection made under an older, looser rule can still
/// be deleted.
pub(super) fn check_name(kind: NameKind, name: &str) -> Result<(), CommandError> {
    validate_name(kind, name).map_err(|e| invalid(&e.to_string()))
}

pub(super) fn invalid(reason: &str) -> CommandError {
    CommandError::Invalid {
        reason: reason.to_string(),
    }
}

pub(super) fn shard_not_found(collection: &str, shard: ShardId) -> CommandError {
    CommandError::ShardNotFound {
        collection: collection.to_string(),
        shard,
    }
}

pub(super) fn not_a_replica(collection: &str, shard: ShardId, node: NodeId) -> CommandError {
    CommandError::NotAReplica {
        collection: collection.to_string(),
        shard,
        node,
    }
}

pub(super) fn no_migration(collection: &str, shard: ShardId) -> CommandError {
    CommandError::NoMigration {
        collection: collection.to_string(),
        shard,
    }
}
