//! Collections and their shards: create and delete.

use protocol::cluster::{
    ClusterMap, CollectionInfo, CommandError, Replica, ReplicaState, ShardInfo,
};
use protocol::ring::shard_key;
use protocol::{CollectionConfig, Epoch, NodeId, ShardId, Term};

use super::lookup::{check_replica_list, collection_mut, collection_ref, invalid, shard_not_found};
use super::placement_ring;

/// Places every shard on the ring of placeable nodes (primary first).
pub(super) fn create_collection(
    map: &mut ClusterMap,
    name: &str,
    config: &CollectionConfig,
) -> Result<(), CommandError> {
    if name.is_empty() || name.len() > 255 || name.contains('/') {
        return Err(invalid(
            "collection name must be 1..=255 characters without '/'",
        ));
    }
    if map.collections.contains_key(name) {
        return Err(CommandError::CollectionExists {
            name: name.to_string(),
        });
    }
    config.validate().map_err(|e| invalid(&e.to_string()))?;
    let ring = placement_ring(map);
    let rf = config.replication_factor as usize;
    if ring.len() < rf {
        return Err(CommandError::NotEnoughNodes {
            needed: rf,
            available: ring.len(),
        });
    }
    let shards = (0..config.shard_number)
        .map(ShardId)
        .map(|id| {
            (
                id,
                new_shard(id, ring.replicas_for(shard_key(name, id).as_bytes(), rf)),
            )
        })
        .collect();
    map.collections.insert(
        name.to_string(),
        CollectionInfo {
            name: name.to_string(),
            config: config.clone(),
            shards,
            // The epoch this command is about to give the map: a collection
            // created again later is another incarnation.
            created_epoch: Epoch(map.epoch.0 + 1),
        },
    );
    Ok(())
}

pub(super) fn delete_collection(map: &mut ClusterMap, name: &str) -> Result<(), CommandError> {
    match map.collections.remove(name) {
        Some(_) => Ok(()),
        None => Err(CommandError::CollectionNotFound {
            name: name.to_string(),
        }),
    }
}

/// Adds a shard on `replicas`, or where the ring puts it.
pub(super) fn create_shard(
    map: &mut ClusterMap,
    collection: &str,
    shard: ShardId,
    replicas: Option<&[NodeId]>,
) -> Result<(), CommandError> {
    let coll = collection_ref(map, collection)?;
    if coll.shards.contains_key(&shard) {
        return Err(CommandError::ShardExists {
            collection: collection.to_string(),
            shard,
        });
    }
    let nodes = match replicas {
        Some(nodes) => {
            check_replica_list(map, nodes)?;
            nodes.to_vec()
        }
        None => {
            let rf = coll.config.replication_factor as usize;
            let ring = placement_ring(map);
            if ring.len() < rf {
                return Err(CommandError::NotEnoughNodes {
                    needed: rf,
                    available: ring.len(),
                });
            }
            ring.replicas_for(shard_key(collection, shard).as_bytes(), rf)
        }
    };
    collection_mut(map, collection)?
        .shards
        .insert(shard, new_shard(shard, nodes));
    Ok(())
}

pub(super) fn delete_shard(
    map: &mut ClusterMap,
    collection: &str,
    shard: ShardId,
) -> Result<(), CommandError> {
    match collection_mut(map, collection)?.shards.remove(&shard) {
        Some(_) => Ok(()),
        None => Err(shard_not_found(collection, shard)),
    }
}

/// A new shard: every replica in sync (there is nothing to copy yet), the
/// first one primary, term 1.
fn new_shard(id: ShardId, nodes: Vec<NodeId>) -> ShardInfo {
    ShardInfo {
        id,
        primary: nodes.first().copied(),
        replicas: nodes
            .into_iter()
            .map(|node| Replica {
                node,
                state: ReplicaState::Active,
            })
            .collect(),
        term: Term(1),
        migration: None,
    }
}
