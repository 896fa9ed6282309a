//! Collections and their shards: create and delete.

use std::collections::BTreeMap;

use protocol::cluster::{ClusterMap, CollectionInfo, CommandError, ShardInfo};
use protocol::names::NameKind;
use protocol::ring::shard_key;
use protocol::{CollectionConfig, Epoch, NodeId, ShardId};

use super::lookup::{
    check_name, check_replica_list, collection_mut, collection_ref, invalid, shard_not_found,
};
use super::placement_ring;

/// Places every shard on the least-loaded placeable nodes (see
/// [`Placement`]); a replication factor above the number of placeable
/// nodes is accepted and placed as far as it fits.
pub(super) fn create_collection(
    map: &mut ClusterMap,
    name: &str,
    config: &CollectionConfig,
) -> Result<(), CommandError> {
    check_name(NameKind::Collection, name)?;
    if map.collections.contains_key(name) {
        return Err(CommandError::CollectionExists {
            name: name.to_string(),
        });
    }
    if let Some(target) = map.aliases.get(name) {
        return Err(invalid(&format!(
            "`{name}` is an alias of collection `{target}`; delete the alias first"
        )));
    }
    config.validate().map_err(|e| invalid(&e.to_string()))?;
    let rf = config.replication_factor as usize;
    let mut placement = Placement::new(map, name);
    if placement.nodes.is_empty() {
        return Err(CommandError::NotEnoughNodes {
            needed: 1,
            available: 0,
        });
    }
    // A factor above the node count is placed as far as it fits; the
    // controller adds the missing replicas when nodes join.
    let shards = (0..config.shard_number)
        .map(ShardId)
        .map(|id| (id, ShardInfo::new(id, placement.pick(name, id, rf))))
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
        Some(_) => {
            super::aliases::drop_aliases_of(map, name);
            Ok(())
        }
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
            let mut placement = Placement::new(map, collection);
            if placement.nodes.is_empty() {
                return Err(CommandError::NotEnoughNodes {
                    needed: 1,
                    available: 0,
                });
            }
            placement.pick(collection, shard, rf)
        }
    };
    collection_mut(map, collection)?
        .shards
        .insert(shard, ShardInfo::new(shard, nodes));
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

pub(super) fn set_replication_factor(
    map: &mut ClusterMap,
    collection: &str,
    replication_factor: u32,
) -> Result<(), CommandError> {
    let coll = collection_ref(map, collection)?;
    let mut config = coll.config.clone();
    config.replication_factor = replication_factor;
    config.validate().map_err(|e| invalid(&e.to_string()))?;
    collection_mut(map, collection)?.config = config;
    Ok(())
}

/// Declares or drops a payload index. Dropping one that is not there is
/// not an error (the route is idempotent, as Qdrant's).
pub(super) fn set_payload_index(
    map: &mut ClusterMap,
    collection: &str,
    field: &str,
    index: Option<protocol::PayloadIndexSpec>,
) -> Result<(), CommandError> {
    if field.is_empty() {
        return Err(invalid("a payload index needs a field name"));
    }
    let indexes = &mut collection_mut(map, collection)?.config.payload_indexes;
    match index {
        Some(spec) => {
            indexes.insert(field.to_owned(), spec);
        }
        None => {
            indexes.remove(field);
        }
    }
    Ok(())
}

/// Load-aware placement of a collection's new shards: each replica goes to
/// the placeable node holding the fewest replicas of this collection, then
/// of all collections, ties broken by the ring's order for the shard's
/// key; so a collection's shards spread one per node while there are nodes
/// to spare, and collections fill the emptier nodes. The primary is the
/// chosen node leading the fewest shards.
pub(crate) struct Placement {
    nodes: Vec<NodeId>,
    /// Replicas of the collection being placed.
    own: BTreeMap<NodeId, usize>,
    replicas: BTreeMap<NodeId, usize>,
    primaries: BTreeMap<NodeId, usize>,
    ring: protocol::ring::HashRing,
}

impl Placement {
    pub(crate) fn new(map: &ClusterMap, collection: &str) -> Self {
        let nodes: Vec<NodeId> = map.placeable_nodes().collect();
        let mut replicas: BTreeMap<NodeId, usize> = nodes.iter().map(|n| (*n, 0)).collect();
        let mut primaries = replicas.clone();
        let mut own = replicas.clone();
        for c in map.collections.values() {
            for s in c.shards.values() {
                for n in s.nodes() {
                    if let Some(count) = replicas.get_mut(&n) {
                        *count += 1;
                    }
                    if c.name == collection {
                        if let Some(count) = own.get_mut(&n) {
                            *count += 1;
                        }
                    }
                }
                if let Some(count) = s.primary.and_then(|p| primaries.get_mut(&p)) {
                    *count += 1;
                }
            }
        }
        Self {
            ring: placement_ring(map),
            nodes,
            own,
            replicas,
            primaries,
        }
    }

    /// Up to `rf` distinct nodes for shard `id` of `collection`, primary first.
    pub(crate) fn pick(&mut self, collection: &str, id: ShardId, rf: usize) -> Vec<NodeId> {
        let order = self
            .ring
            .replicas_for(shard_key(collection, id).as_bytes(), self.nodes.len());
        let rank = |n: &NodeId| order.iter().position(|o| o == n).unwrap_or(usize::MAX);
        let mut candidates = self.nodes.clone();
        candidates.sort_by_key(|n| (self.own[n], self.replicas[n], rank(n)));
        candidates.truncate(rf);
        if let Some(lead) = candidates
            .iter()
            .enumerate()
            .min_by_key(|(i, n)| (self.primaries[*n], *i))
            .map(|(i, _)| i)
        {
            candidates.swap(0, lead);
        }
        for n in &candidates {
            *self.replicas.entry(*n).or_default() += 1;
            *self.own.entry(*n).or_default() += 1;
        }
        if let Some(p) = candidates.first() {
            *self.primaries.entry(*p).or_default() += 1;
        }
        candidates
    }
}
