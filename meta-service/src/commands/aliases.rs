//! Collection aliases: Qdrant's `change_aliases`, all actions or none.

use std::collections::BTreeMap;

use protocol::cluster::{AliasAction, ClusterMap, CommandError};
use protocol::names::NameKind;

use super::lookup::{check_name, collection_ref, invalid};

/// Applies `actions` in order to a copy of the aliases and installs the
/// copy only if every one of them applied, so a refused list changes
/// nothing and an accepted one is seen whole (one epoch).
pub(super) fn change_aliases(
    map: &mut ClusterMap,
    actions: &[AliasAction],
) -> Result<(), CommandError> {
    if actions.is_empty() {
        return Err(invalid("an alias change needs at least one action"));
    }
    let mut aliases = map.aliases.clone();
    for action in actions {
        apply_one(map, &mut aliases, action)?;
    }
    map.aliases = aliases;
    Ok(())
}

fn apply_one(
    map: &ClusterMap,
    aliases: &mut BTreeMap<String, String>,
    action: &AliasAction,
) -> Result<(), CommandError> {
    match action {
        AliasAction::Create { alias, collection } => {
            collection_ref(map, collection)?;
            check_alias_name(map, alias)?;
            aliases.insert(alias.clone(), collection.clone());
        }
        AliasAction::Rename { old, new } => {
            let Some(collection) = aliases.remove(old) else {
                return Err(CommandError::AliasNotFound { alias: old.clone() });
            };
            check_alias_name(map, new)?;
            aliases.insert(new.clone(), collection);
        }
        AliasAction::Delete { alias } => {
            aliases.remove(alias);
        }
    }
    Ok(())
}

/// An alias is named like a collection and never shadows one.
fn check_alias_name(map: &ClusterMap, alias: &str) -> Result<(), CommandError> {
    check_name(NameKind::Alias, alias)?;
    if map.collections.contains_key(alias) {
        return Err(invalid(&format!(
            "`{alias}` is a collection's name; an alias may not shadow a collection"
        )));
    }
    Ok(())
}

/// Drops every alias of a deleted collection.
pub(super) fn drop_aliases_of(map: &mut ClusterMap, collection: &str) {
    map.aliases.retain(|_, c| c != collection);
}
