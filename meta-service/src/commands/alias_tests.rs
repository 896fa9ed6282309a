//! `ChangeAliases`: Qdrant's rules, and a whole action list applied at
//! once or not at all.

use protocol::cluster::{AliasAction, ClusterCommand, ClusterMap, CommandError, NodeInfo};
use protocol::{CollectionConfig, Distance, Epoch, NodeId};

use super::apply;

fn map_with(collections: &[&str]) -> ClusterMap {
    let mut map = ClusterMap::default();
    apply(
        &mut map,
        &ClusterCommand::AddNode {
            node: NodeInfo::new(NodeId(1), "127.0.0.1:9001"),
        },
    )
    .unwrap();
    for name in collections {
        let cmd = ClusterCommand::CreateCollection {
            name: name.to_string(),
            config: CollectionConfig::new(4, Distance::Cosine),
        };
        apply(&mut map, &cmd).unwrap();
    }
    map
}

fn change(actions: Vec<AliasAction>) -> ClusterCommand {
    ClusterCommand::ChangeAliases { actions }
}

fn create(alias: &str, collection: &str) -> AliasAction {
    AliasAction::Create {
        alias: alias.into(),
        collection: collection.into(),
    }
}

fn delete(alias: &str) -> AliasAction {
    AliasAction::Delete {
        alias: alias.into(),
    }
}

fn rename(old: &str, new: &str) -> AliasAction {
    AliasAction::Rename {
        old: old.into(),
        new: new.into(),
    }
}

/// Applies and expects a refusal that leaves the map untouched.
fn refused(map: &mut ClusterMap, cmd: ClusterCommand) -> CommandError {
    let before = map.clone();
    let err = apply(map, &cmd).unwrap_err();
    assert_eq!(*map, before, "a refused alias change changed the map");
    err
}

#[test]
fn create_rename_delete() {
    let mut map = map_with(&["v1"]);
    let e = apply(&mut map, &change(vec![create("prod", "v1")])).unwrap();
    assert_eq!(e, map.epoch);
    assert_eq!(map.resolve("prod"), Some("v1"));
    apply(&mut map, &change(vec![rename("prod", "live")])).unwrap();
    assert_eq!(map.resolve("prod"), None);
    assert_eq!(map.resolve("live"), Some("v1"));
    apply(&mut map, &change(vec![delete("live")])).unwrap();
    assert!(map.aliases.is_empty());
    // Deleting a missing alias is not an error (Qdrant's rule).
    apply(&mut map, &change(vec![delete("live")])).unwrap();
}

#[test]
fn an_alias_switch_is_one_atomic_step() {
    let mut map = map_with(&["v1", "v2"]);
    apply(&mut map, &change(vec![create("prod", "v1")])).unwrap();
    let before = map.epoch;
    // Qdrant's switch: delete then create, in one request. Between the
    // two actions the alias resolves to nothing; no map shows that state.
    apply(
        &mut map,
        &change(vec![delete("prod"), create("prod", "v2")]),
    )
    .unwrap();
    assert_eq!(map.epoch, Epoch(before.0 + 1));
    assert_eq!(map.resolve("prod"), Some("v2"));
    // Creating over an existing alias also moves it.
    apply(&mut map, &change(vec![create("prod", "v1")])).unwrap();
    assert_eq!(map.resolve("prod"), Some("v1"));
}

#[test]
fn a_failing_action_refuses_the_whole_list() {
    let mut map = map_with(&["v1", "v2"]);
    apply(&mut map, &change(vec![create("prod", "v1")])).unwrap();
    // The delete would apply, the create names no collection: nothing
    // changes, `prod` still points at v1.
    let e = refused(
        &mut map,
        change(vec![delete("prod"), create("prod", "missing")]),
    );
    assert_eq!(
        e,
        CommandError::CollectionNotFound {
            name: "missing".into()
        }
    );
    assert_eq!(map.resolve("prod"), Some("v1"));
    let e = refused(
        &mut map,
        change(vec![create("other", "v2"), rename("nope", "x")]),
    );
    assert_eq!(
        e,
        CommandError::AliasNotFound {
            alias: "nope".into()
        }
    );
    assert_eq!(map.resolve("other"), None);
    assert!(matches!(
        refused(&mut map, change(vec![])),
        CommandError::Invalid { .. }
    ));
}

#[test]
fn an_alias_never_shadows_a_collection() {
    let mut map = map_with(&["v1", "v2"]);
    assert!(matches!(
        refused(&mut map, change(vec![create("v2", "v1")])),
        CommandError::Invalid { .. }
    ));
    apply(&mut map, &change(vec![create("prod", "v1")])).unwrap();
    assert!(matches!(
        refused(&mut map, change(vec![rename("prod", "v2")])),
        CommandError::Invalid { .. }
    ));
    for bad in ["", "a/b"] {
        assert!(matches!(
            refused(&mut map, change(vec![create(bad, "v1")])),
            CommandError::Invalid { .. }
        ));
    }
    // Nor can a collection take an alias's name.
    let cmd = ClusterCommand::CreateCollection {
        name: "prod".into(),
        config: CollectionConfig::new(4, Distance::Cosine),
    };
    assert!(matches!(
        refused(&mut map, cmd),
        CommandError::Invalid { .. }
    ));
}

#[test]
fn deleting_a_collection_deletes_its_aliases() {
    let mut map = map_with(&["v1", "v2"]);
    apply(
        &mut map,
        &change(vec![
            create("a", "v1"),
            create("b", "v1"),
            create("c", "v2"),
        ]),
    )
    .unwrap();
    assert_eq!(map.aliases_of("v1").collect::<Vec<_>>(), vec!["a", "b"]);
    apply(
        &mut map,
        &ClusterCommand::DeleteCollection { name: "v1".into() },
    )
    .unwrap();
    assert_eq!(map.aliases.len(), 1);
    assert_eq!(map.resolve("c"), Some("v2"));
    assert_eq!(map.resolve("a"), None);
}

/// Names are born under `protocol::names`'s rule: a hostile collection or
/// alias name sent as a raw command is refused with the rule, the map
/// untouched.
#[test]
fn hostile_names_are_refused_where_names_are_born() {
    let mut map = map_with(&["docs"]);
    let hostile = [
        "..".to_string(),
        "a/b".into(),
        "a\\b".into(),
        "a\0b".into(),
        "-x".into(),
        "c\u{043e}llection".into(),
        "a\u{ff0f}b".into(),
        "x".repeat(256),
    ];
    for name in &hostile {
        let cmd = ClusterCommand::CreateCollection {
            name: name.clone(),
            config: CollectionConfig::new(4, Distance::Cosine),
        };
        let CommandError::Invalid { reason } = refused(&mut map, cmd) else {
            panic!("{name:?}: not an Invalid refusal");
        };
        assert!(reason.contains("invalid collection name"), "{reason}");
        assert!(reason.contains(protocol::names::NAME_RULE), "{reason}");
        for cmd in [
            change(vec![create(name, "docs")]),
            change(vec![create("ok", "docs"), rename("ok", name)]),
        ] {
            let CommandError::Invalid { reason } = refused(&mut map, cmd) else {
                panic!("{name:?}: not an Invalid refusal");
            };
            assert!(reason.contains("invalid alias name"), "{reason}");
        }
    }
}
