//! Property: a refusal changes nothing. Random command sequences (valid,
//! invalid and stale ones mixed) run from random starting maps; every
//! command `apply` refuses must leave the map — epoch included — exactly as
//! it was, compared both as a value and as its serialized bytes (which also
//! catches a change `PartialEq` would not see). Every accepted one bumps
//! the epoch by exactly one.

use proptest::prelude::*;
use protocol::cluster::{
    ClusterCommand, ClusterMap, MigrationPhase, NodeInfo, NodeState, RebalancePlan, ReplicaState,
    ShardMove,
};
use protocol::{CollectionConfig, Distance, Epoch, NodeId, ShardId, Term, WriteConsistency};

use super::apply;

/// Small domains, so that commands often hit what exists (and often not).
fn node() -> impl Strategy<Value = NodeId> {
    (1u64..=6).prop_map(NodeId)
}

fn collection() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => Just("a".to_string()),
        3 => Just("b".to_string()),
        1 => Just(String::new()),
        1 => Just("x/y".to_string()),
    ]
}

fn shard() -> impl Strategy<Value = ShardId> {
    (0u32..4).prop_map(ShardId)
}

fn node_state() -> impl Strategy<Value = NodeState> {
    prop_oneof![
        Just(NodeState::Alive),
        Just(NodeState::Dead),
        Just(NodeState::Draining)
    ]
}

fn replica_state() -> impl Strategy<Value = ReplicaState> {
    prop_oneof![Just(ReplicaState::Active), Just(ReplicaState::Initializing)]
}

fn phase() -> impl Strategy<Value = MigrationPhase> {
    prop_oneof![
        Just(MigrationPhase::Snapshot),
        Just(MigrationPhase::Delta),
        Just(MigrationPhase::Verify)
    ]
}

fn config() -> impl Strategy<Value = CollectionConfig> {
    (0u32..4, 0u32..5, 0usize..3).prop_map(|(shards, rf, consistency)| {
        let mut c = CollectionConfig::new(4, Distance::Cosine);
        c.shard_number = shards;
        c.replication_factor = rf;
        c.write_consistency = [
            WriteConsistency::One,
            WriteConsistency::Majority,
            WriteConsistency::All,
        ][consistency];
        c
    })
}

/// Any command but `IfEpoch`.
fn plain_command() -> impl Strategy<Value = ClusterCommand> {
    use ClusterCommand as C;
    prop_oneof![
        (node(), any::<bool>()).prop_map(|(n, empty)| C::AddNode {
            node: NodeInfo::new(n, if empty { "" } else { "127.0.0.1:1" }),
        }),
        node().prop_map(|node| C::RemoveNode { node }),
        (node(), node_state(), 0u64..100).prop_map(|(node, state, at_ms)| C::SetNodeState {
            node,
            state,
            at_ms
        }),
        (collection(), config()).prop_map(|(name, config)| C::CreateCollection { name, config }),
        collection().prop_map(|name| C::DeleteCollection { name }),
        (
            collection(),
            shard(),
            proptest::option::of(proptest::collection::vec(node(), 0..4))
        )
            .prop_map(|(collection, shard, replicas)| C::CreateShard {
                collection,
                shard,
                replicas
            }),
        (collection(), shard())
            .prop_map(|(collection, shard)| C::DeleteShard { collection, shard }),
        proptest::collection::vec((collection(), shard(), node(), node()), 0..3).prop_map(
            |moves| C::RebalanceShards {
                plan: RebalancePlan {
                    moves: moves
                        .into_iter()
                        .map(|(collection, shard, from, to)| ShardMove {
                            collection,
                            shard,
                            from,
                            to,
                        })
                        .collect(),
                    created_at_ms: 7,
                },
            }
        ),
        (collection(), shard(), phase(), 0u64..10, 0u64..10).prop_map(
            |(collection, shard, phase, vectors_copied, vectors_total)| C::UpdateMigration {
                collection,
                shard,
                phase,
                vectors_copied,
                vectors_total,
            }
        ),
        (collection(), shard())
            .prop_map(|(collection, shard)| C::CompleteMigration { collection, shard }),
        (collection(), shard())
            .prop_map(|(collection, shard)| C::AbortMigration { collection, shard }),
        (
            prop_oneof![Just(""), Just("k"), Just("rebalancing.auto_enabled")],
            "[a-z]{0,3}"
        )
            .prop_map(|(key, value)| C::UpdateConfig {
                key: key.to_string(),
                value
            }),
        (
            collection(),
            shard(),
            proptest::collection::vec(node(), 0..5)
        )
            .prop_map(|(collection, shard, replicas)| C::SetReplicas {
                collection,
                shard,
                replicas
            }),
        (collection(), shard(), node(), replica_state()).prop_map(
            |(collection, shard, node, state)| C::SetReplicaState {
                collection,
                shard,
                node,
                state
            }
        ),
        (collection(), shard(), node(), proptest::option::of(0u64..4)).prop_map(
            |(collection, shard, node, term)| C::PromotePrimary {
                collection,
                shard,
                node,
                expected_term: term.map(Term),
            }
        ),
    ]
}

/// Any command, sometimes behind an epoch guard (right or stale), and now
/// and then behind two (always refused).
fn command() -> impl Strategy<Value = ClusterCommand> {
    prop_oneof![
        6 => plain_command(),
        2 => guarded(plain_command()),
        1 => guarded(guarded(plain_command())),
    ]
}

fn guarded(inner: impl Strategy<Value = ClusterCommand>) -> impl Strategy<Value = ClusterCommand> {
    (0u64..40, inner).prop_map(|(epoch, c)| ClusterCommand::IfEpoch {
        epoch: Epoch(epoch),
        command: Box::new(c),
    })
}

/// A random starting map: some nodes, some collections, some of them dead.
fn start() -> impl Strategy<Value = ClusterMap> {
    (
        0u64..=5,
        proptest::collection::vec((collection(), config()), 0..3),
        proptest::collection::vec((node(), node_state()), 0..3),
    )
        .prop_map(|(nodes, collections, states)| {
            let mut map = ClusterMap::default();
            let setup = (1..=nodes)
                .map(|n| ClusterCommand::AddNode {
                    node: NodeInfo::new(NodeId(n), format!("127.0.0.1:{n}")),
                })
                .chain(
                    collections
                        .into_iter()
                        .map(|(name, config)| ClusterCommand::CreateCollection { name, config }),
                )
                .chain(
                    states
                        .into_iter()
                        .map(|(node, state)| ClusterCommand::SetNodeState {
                            node,
                            state,
                            at_ms: 1,
                        }),
                );
            for cmd in setup {
                // The setup may be refused too (that is fine: the map is
                // just smaller).
                let _ = apply(&mut map, &cmd);
            }
            map
        })
}

fn bytes(map: &ClusterMap) -> Vec<u8> {
    serde_json::to_vec(map).expect("a cluster map serializes")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn a_refusal_changes_nothing(
        mut map in start(),
        commands in proptest::collection::vec(command(), 1..60),
    ) {
        for cmd in &commands {
            let before = map.clone();
            let before_bytes = bytes(&map);
            match apply(&mut map, cmd) {
                Err(refusal) => {
                    prop_assert_eq!(&map, &before, "refused {:?} ({}) changed the map", cmd, refusal);
                    prop_assert_eq!(bytes(&map), before_bytes, "refused {:?} changed the bytes", cmd);
                }
                Ok(epoch) => {
                    prop_assert_eq!(epoch, Epoch(before.epoch.0 + 1));
                    prop_assert_eq!(map.epoch, epoch);
                }
            }
        }
    }
}
