//! Property: a refusal changes nothing. Random command sequences (valid,
//! invalid and stale ones mixed) run from random starting maps; every
//! command `apply` refuses must leave the map — epoch included — exactly as
//! it was, compared both as a value and as its serialized bytes (which also
//! catches a change `PartialEq` would not see). Every accepted one bumps
//! the epoch by exactly one.
//!
//! The generators aim at what exists (collection `a`, nodes 1..=6, shards
//! 0..4, guards relative to the current epoch) so that refusals come from
//! deep checks too, not only from "not found". Counted once (a throwaway
//! counter over 512 generated cases): 15,028 commands, 13,263 refused,
//! every `CommandError` variant among them, the dead-primary `SetReplicas`
//! refusal included.

use proptest::prelude::*;
use protocol::cluster::{
    AliasAction, ClusterCommand, ClusterMap, MigrationPhase, NodeInfo, NodeState, RebalancePlan,
    ReplicaState, ShardMove,
};
use protocol::{CollectionConfig, Distance, Epoch, NodeId, ShardId, Term, WriteConsistency};

use super::apply;

/// Small domains, so that commands often hit what exists (and often not).
fn node() -> impl Strategy<Value = NodeId> {
    (1u64..=6).prop_map(NodeId)
}

fn collection() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => Just("a".to_string()),
        2 => Just("b".to_string()),
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

/// Mostly valid configurations, sometimes not (no shard, no replica, or
/// more replicas than nodes).
fn config() -> impl Strategy<Value = CollectionConfig> {
    let shards = prop_oneof![6 => 1u32..4, 1 => Just(0u32)];
    let rf = prop_oneof![6 => 1u32..4, 1 => Just(0u32), 1 => Just(7u32)];
    (shards, rf, 0usize..3).prop_map(|(shards, rf, consistency)| {
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

/// Alias actions over names that are sometimes collections' names.
fn alias_action() -> impl Strategy<Value = AliasAction> {
    let alias = || prop_oneof![Just("p".to_string()), Just("q".to_string()), collection()];
    prop_oneof![
        (alias(), collection())
            .prop_map(|(alias, collection)| AliasAction::Create { alias, collection }),
        (alias(), alias()).prop_map(|(old, new)| AliasAction::Rename { old, new }),
        alias().prop_map(|alias| AliasAction::Delete { alias }),
    ]
}

/// A replica list: mostly distinct nodes, sometimes with repeats.
fn node_list() -> impl Strategy<Value = Vec<NodeId>> {
    let distinct = (
        Just((1..=6).map(NodeId).collect::<Vec<_>>()).prop_shuffle(),
        0usize..5,
    )
        .prop_map(|(nodes, len)| nodes[..len].to_vec());
    prop_oneof![4 => distinct, 1 => proptest::collection::vec(node(), 0..4)]
}

/// Any command but `IfEpoch`.
fn plain_command() -> impl Strategy<Value = ClusterCommand> {
    use ClusterCommand as C;
    prop_oneof![
        2 => (node(), any::<bool>()).prop_map(|(n, empty)| C::AddNode {
            node: NodeInfo::new(n, if empty { "" } else { "127.0.0.1:1" }),
        }),
        2 => node().prop_map(|node| C::RemoveNode { node }),
        3 => (node(), node_state(), 0u64..100).prop_map(|(node, state, at_ms)| C::SetNodeState {
            node,
            state,
            at_ms
        }),
        2 => (collection(), config()).prop_map(|(name, config)| C::CreateCollection { name, config }),
        1 => collection().prop_map(|name| C::DeleteCollection { name }),
        2 => (collection(), shard(), proptest::option::of(node_list())).prop_map(
            |(collection, shard, replicas)| C::CreateShard {
                collection,
                shard,
                replicas
            }
        ),
        1 => (collection(), shard())
            .prop_map(|(collection, shard)| C::DeleteShard { collection, shard }),
        3 => proptest::collection::vec((collection(), shard(), node(), node()), 0..3).prop_map(
            |moves| C::RebalanceShards {
                plan: RebalancePlan {
                    moves: moves
                        .into_iter()
                        .map(|(collection, shard, from, to)| ShardMove {
                            collection,
                            shard,
                            from,
                            to,
                            kind: protocol::cluster::TransferKind::Move,
                        })
                        .collect(),
                    created_at_ms: 7,
                },
            }
        ),
        3 => (collection(), shard(), node(), phase(), 0u64..10, 0u64..10).prop_map(
            |(collection, shard, to, phase, points_copied, points_total)| C::UpdateMigration {
                collection,
                shard,
                to,
                phase,
                points_copied,
                points_total,
                bytes_copied: points_copied * 16,
                bytes_total: points_total * 16,
                at_ms: 9,
            }
        ),
        3 => (collection(), shard(), node(), 0u64..20)
            .prop_map(|(collection, shard, to, seq)| C::CompleteMigration {
                collection,
                shard,
                to,
                verified: protocol::cluster::Verification {
                    seq: protocol::SeqNo(seq),
                    points: seq,
                    checksum: 1,
                },
                at_ms: 9,
            }),
        2 => (collection(), shard())
            .prop_map(|(collection, shard)| C::AbortMigration {
                collection,
                shard,
                reason: "test".into(),
                at_ms: 9,
            }),
        1 => (collection(), 0u32..5).prop_map(|(collection, replication_factor)| {
            C::SetReplicationFactor {
                collection,
                replication_factor,
            }
        }),
        1 => (
            prop_oneof![Just(""), Just("k"), Just("rebalancing.auto_enabled")],
            "[a-z]{0,3}"
        )
            .prop_map(|(key, value)| C::UpdateConfig {
                key: key.to_string(),
                value
            }),
        4 => (
            collection(),
            shard(),
            proptest::collection::vec(node(), 0..5)
        )
            .prop_map(|(collection, shard, replicas)| C::SetReplicas {
                collection,
                shard,
                replicas
            }),
        3 => (collection(), shard(), node(), replica_state()).prop_map(
            |(collection, shard, node, state)| C::SetReplicaState {
                collection,
                shard,
                node,
                state
            }
        ),
        2 => proptest::collection::vec(alias_action(), 0..3)
            .prop_map(|actions| C::ChangeAliases { actions }),
        3 => (collection(), shard(), node(), proptest::option::of(0u64..4)).prop_map(
            |(collection, shard, node, term)| C::PromotePrimary {
                collection,
                shard,
                node,
                expected_term: term.map(Term),
            }
        ),
    ]
}

/// How a command is guarded: epochs are relative to the map it meets, so
/// that a guard is right as often as it is stale.
#[derive(Clone, Debug)]
enum Guard {
    None,
    Current,
    Stale(i64),
    /// Two guards: always refused.
    Nested,
}

fn guard() -> impl Strategy<Value = Guard> {
    prop_oneof![
        6 => Just(Guard::None),
        2 => Just(Guard::Current),
        1 => prop_oneof![-3i64..0, 1i64..3].prop_map(Guard::Stale),
        1 => Just(Guard::Nested),
    ]
}

fn guarded(map: &ClusterMap, guard: &Guard, cmd: ClusterCommand) -> ClusterCommand {
    let wrap = |epoch: Epoch, command: ClusterCommand| ClusterCommand::IfEpoch {
        epoch,
        command: Box::new(command),
    };
    match guard {
        Guard::None => cmd,
        Guard::Current => wrap(map.epoch, cmd),
        Guard::Stale(off) => wrap(Epoch(map.epoch.0.saturating_add_signed(*off)), cmd),
        Guard::Nested => wrap(map.epoch, wrap(map.epoch, cmd)),
    }
}

/// A random starting map: some nodes, collection `a` and maybe others,
/// maybe a migration under way, some nodes dead or draining.
fn start() -> impl Strategy<Value = ClusterMap> {
    (
        prop_oneof![1 => 0u64..3, 6 => 3u64..=6],
        (1u32..4, 1u32..4).prop_map(|(shards, rf)| {
            let mut c = CollectionConfig::new(4, Distance::Cosine);
            c.shard_number = shards;
            c.replication_factor = rf;
            c
        }),
        proptest::collection::vec((collection(), config()), 0..3),
        proptest::option::of((shard(), phase())),
        proptest::collection::vec((node(), node_state()), 0..4),
    )
        .prop_map(|(nodes, first, collections, migration, states)| {
            let mut map = ClusterMap::default();
            let setup = (1..=nodes)
                .map(|n| ClusterCommand::AddNode {
                    node: NodeInfo::new(NodeId(n), format!("127.0.0.1:{n}")),
                })
                .chain(std::iter::once(ClusterCommand::CreateCollection {
                    name: "a".into(),
                    config: first,
                }))
                .chain(
                    collections
                        .into_iter()
                        .map(|(name, config)| ClusterCommand::CreateCollection { name, config }),
                );
            // The setup may be refused too (that is fine: the map is just
            // smaller).
            for cmd in setup {
                let _ = apply(&mut map, &cmd);
            }
            if let Some((shard, phase)) = migration {
                for cmd in migrate(&map, shard, phase) {
                    let _ = apply(&mut map, &cmd);
                }
            }
            for (node, state) in states {
                let _ = apply(
                    &mut map,
                    &ClusterCommand::SetNodeState {
                        node,
                        state,
                        at_ms: 1,
                    },
                );
            }
            map
        })
}

/// Moves the first replica of shard `shard` of collection `a` to the first
/// node that does not hold it, and advances the migration to `phase`.
fn migrate(map: &ClusterMap, shard: ShardId, phase: MigrationPhase) -> Vec<ClusterCommand> {
    let Some(s) = map.shard("a", shard) else {
        return Vec::new();
    };
    let (Some(from), Some(to)) = (s.nodes().next(), map.nodes.keys().find(|n| !s.holds(**n)))
    else {
        return Vec::new();
    };
    let moves = vec![ShardMove {
        collection: "a".into(),
        shard,
        from,
        to: *to,
        kind: protocol::cluster::TransferKind::Move,
    }];
    vec![
        ClusterCommand::RebalanceShards {
            plan: RebalancePlan {
                moves,
                created_at_ms: 1,
            },
        },
        ClusterCommand::UpdateMigration {
            collection: "a".into(),
            shard,
            to: *to,
            phase,
            points_copied: 1,
            points_total: 2,
            bytes_copied: 10,
            bytes_total: 20,
            at_ms: 1,
        },
    ]
}

fn bytes(map: &ClusterMap) -> Vec<u8> {
    serde_json::to_vec(map).expect("a cluster map serializes")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn a_refusal_changes_nothing(
        mut map in start(),
        steps in proptest::collection::vec((guard(), plain_command()), 1..60),
    ) {
        for (guard, cmd) in steps {
            let cmd = &guarded(&map, &guard, cmd);
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
