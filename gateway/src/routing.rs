//! Grouping a request's points by shard. Which shard holds a point is the
//! cluster's contract and lives in `protocol::routing`; this module only
//! batches a request's items per shard.

use std::collections::BTreeMap;

use protocol::routing::shard_for_point;
use protocol::{PointId, ShardId};

/// Splits `items` by the shard of their id, keeping their order within a
/// shard.
pub fn group_by_shard<T>(
    collection: &str,
    shard_number: u32,
    items: impl IntoIterator<Item = T>,
    id_of: impl Fn(&T) -> PointId,
) -> BTreeMap<ShardId, Vec<T>> {
    let mut out: BTreeMap<ShardId, Vec<T>> = BTreeMap::new();
    for item in items {
        let shard = shard_for_point(collection, &id_of(&item), shard_number);
        out.entry(shard).or_default().push(item);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grouping_keeps_order() {
        let ids: Vec<u64> = (0..50).collect();
        let groups = group_by_shard("c", 3, ids.clone(), |i| PointId::Num(*i));
        let total: usize = groups.values().map(Vec::len).sum();
        assert_eq!(total, 50);
        for (shard, items) in groups {
            assert!(items.windows(2).all(|w| w[0] < w[1]));
            assert!(items
                .iter()
                .all(|i| shard_for_point("c", &PointId::Num(*i), 3) == shard));
        }
    }
}
