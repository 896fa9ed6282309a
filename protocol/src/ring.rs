//! Consistent-hash ring of storage nodes (sha2, virtual nodes) that gives
//! each new shard its default replica set.
