//! Which shard holds a point: `sha256(collection, point id) mod shard_number`
//! (the design's by-id sharding). Gateways route writes with it, storage
//! nodes and tools (chaos, load tests) locate points with it, so every
//! process must compute the same answer: the byte layout below is part of
//! the cluster's contract, and changing it would misroute existing data.

use sha2::{Digest, Sha256};

use crate::{PointId, ShardId};

/// The shard of `id` in `collection` among `shard_number` shards.
///
/// Hash input: the collection name's UTF-8 bytes, a `0xFF` separator (a
/// byte that never occurs in UTF-8, so `("ab", x)` and `("a", "b"+x)`
/// cannot collide), then [`PointId::hash_bytes`] (tag + big-endian integer
/// or UUID bytes). The first 8 bytes of the digest, big endian, modulo
/// `shard_number`. `shard_number` 0 is treated as 1.
pub fn shard_for_point(collection: &str, id: &PointId, shard_number: u32) -> ShardId {
    let mut h = Sha256::new();
    h.update(collection.as_bytes());
    h.update([0xFF]);
    h.update(id.hash_bytes());
    let digest = h.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    let n = u64::from(shard_number.max(1));
    ShardId((u64::from_be_bytes(first) % n) as u32)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn deterministic_and_in_range() {
        for n in 1..20u32 {
            for i in 0..200u64 {
                let s = shard_for_point("c", &PointId::Num(i), n);
                assert!(s.0 < n);
                assert_eq!(s, shard_for_point("c", &PointId::Num(i), n));
            }
        }
        assert_eq!(shard_for_point("c", &PointId::Num(5), 0), ShardId(0));
    }

    #[test]
    fn known_values_are_stable() {
        // Pinned: changing the hash input would misroute existing data.
        let got: Vec<u32> = (0..8u64)
            .map(|i| shard_for_point("docs", &PointId::Num(i), 3).0)
            .collect();
        let again: Vec<u32> = (0..8u64)
            .map(|i| {
                let mut h = Sha256::new();
                h.update(b"docs\xFF");
                h.update(PointId::Num(i).hash_bytes());
                let d = h.finalize();
                let mut first = [0u8; 8];
                first.copy_from_slice(&d[..8]);
                (u64::from_be_bytes(first) % 3) as u32
            })
            .collect();
        assert_eq!(got, again);
    }

    #[test]
    fn pinned_values() {
        // Computed outside Rust (Python's hashlib) from the layout in the
        // doc comment; a change here misroutes every stored point.
        let shards = |n: u32| -> Vec<u32> {
            (0..8u64)
                .map(|i| shard_for_point("docs", &PointId::Num(i), n).0)
                .collect()
        };
        assert_eq!(shards(3), [2, 2, 0, 0, 2, 2, 1, 1]);
        assert_eq!(shards(8), [4, 6, 0, 4, 6, 1, 6, 5]);
        let u = PointId::Uuid(uuid::Uuid::from_u128(7));
        assert_eq!(shard_for_point("docs", &u, 5), ShardId(0));
        assert_eq!(shard_for_point("docs", &u, 1000), ShardId(820));
    }

    #[test]
    fn spreads_evenly_and_depends_on_collection() {
        let mut counts = [0usize; 4];
        for i in 0..4000u64 {
            counts[shard_for_point("c", &PointId::Num(i), 4).0 as usize] += 1;
        }
        for c in counts {
            assert!((800..1200).contains(&c), "{counts:?}");
        }
        let differs = (0..100u64).any(|i| {
            shard_for_point("a", &PointId::Num(i), 8) != shard_for_point("b", &PointId::Num(i), 8)
        });
        assert!(differs);
        let u = PointId::Uuid(uuid::Uuid::from_u128(7));
        assert!(shard_for_point("c", &u, 5).0 < 5);
    }

    fn point_id() -> impl Strategy<Value = PointId> {
        prop_oneof![
            any::<u64>().prop_map(PointId::Num),
            any::<u128>().prop_map(|u| PointId::Uuid(uuid::Uuid::from_u128(u))),
        ]
    }

    proptest! {
        #[test]
        fn always_in_range_and_repeatable(
            collection in "\\PC{0,24}",
            id in point_id(),
            shards in 0u32..1000,
        ) {
            let s = shard_for_point(&collection, &id, shards);
            prop_assert!(s.0 < shards.max(1));
            prop_assert_eq!(s, shard_for_point(&collection, &id, shards));
        }

        /// One shard holds everything: a collection created with one shard
        /// never needs its points located.
        #[test]
        fn one_shard_is_shard_zero(collection in "\\PC{0,24}", id in point_id()) {
            prop_assert_eq!(shard_for_point(&collection, &id, 1), ShardId(0));
        }
    }
}
