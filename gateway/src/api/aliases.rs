//! Collection aliases: Qdrant's `POST /collections/aliases` (create,
//! rename and delete actions, applied all at once by the meta-service),
//! `GET /aliases`, `GET /collections/{name}/aliases`, and [`resolve`], the
//! layer that makes every collection route accept an alias.
//!
//! The same layer enforces the one name rule ([`protocol::names`]) on the
//! collection segment of every `/collections/{name}` route, create and
//! delete included, before routing: a hostile name is a 400 quoting the
//! rule whatever route it was sent to, and no handler ever sees one.
//!
//! Resolution rewrites the collection segment of the request path before
//! routing, so each handler, the per-route metrics and the API-key check
//! see the real collection, and the shards are addressed by its name. A
//! gateway resolves with its cached map: after a switch made through
//! another gateway, this one follows once its map watch brings the new
//! epoch (the gateway that made the switch refreshes before it answers).

use axum::extract::{Path, Request, State};
use axum::http::{Method, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use protocol::cluster::{AliasAction, ClusterCommand};
use protocol::names::{validate_alias_name, validate_collection_name, NAME_RULE};
use protocol::ValidationError;
use serde::Deserialize;
use serde_json::json;

use super::models::parse;
use super::openapi::schemas::{self as doc, Envelope};
use super::path::{percent_decode, percent_encode};
use super::scope::Scope;
use super::{ok, started, AppState, JsonBody};
use crate::error::{GatewayError, Result};

/// One of Qdrant's `actions` (`{"create_alias": {...}}`, ...).
#[derive(Deserialize)]
enum ActionIn {
    #[serde(rename = "create_alias")]
    Create {
        collection_name: String,
        alias_name: String,
    },
    #[serde(rename = "rename_alias")]
    Rename {
        old_alias_name: String,
        new_alias_name: String,
    },
    #[serde(rename = "delete_alias")]
    Delete { alias_name: String },
}

#[derive(Deserialize)]
struct ChangeIn {
    actions: Vec<ActionIn>,
}

fn parse_actions(body: serde_json::Value) -> Result<Vec<AliasAction>> {
    let change: ChangeIn = parse(body, "change aliases")?;
    if change.actions.is_empty() {
        return Err(GatewayError::bad_request("`actions` must not be empty"));
    }
    // Every name, not only new ones: no alias or collection can carry a
    // name outside the rule, so such a name is a mistake or a probe.
    for action in &change.actions {
        let (alias, collection) = match action {
            ActionIn::Create {
                collection_name,
                alias_name,
            } => (alias_name, Some(collection_name)),
            ActionIn::Rename {
                old_alias_name,
                new_alias_name,
            } => {
                validate_alias_name(old_alias_name).map_err(ValidationError::from)?;
                (new_alias_name, None)
            }
            ActionIn::Delete { alias_name } => (alias_name, None),
        };
        validate_alias_name(alias).map_err(ValidationError::from)?;
        if let Some(c) = collection {
            validate_collection_name(c).map_err(ValidationError::from)?;
        }
    }
    Ok(change
        .actions
        .into_iter()
        .map(|a| match a {
            ActionIn::Create {
                collection_name,
                alias_name,
            } => AliasAction::Create {
                alias: alias_name,
                collection: collection_name,
            },
            ActionIn::Rename {
                old_alias_name,
                new_alias_name,
            } => AliasAction::Rename {
                old: old_alias_name,
                new: new_alias_name,
            },
            ActionIn::Delete { alias_name } => AliasAction::Delete { alias: alias_name },
        })
        .collect())
}

/// `POST /collections/aliases`.
#[utoipa::path(post, path = "/collections/aliases", tag = "aliases", operation_id = "update_aliases",
    request_body = doc::ChangeAliases,
    responses((status = 200, description = "Every action applied, at once", body = Envelope<bool>)))]
pub async fn change(State(st): State<AppState>, JsonBody(body): JsonBody) -> Result<Response> {
    let t = started();
    let actions = parse_actions(body)?;
    st.gw
        .submit(ClusterCommand::ChangeAliases { actions })
        .await?;
    Ok(ok(true, t))
}

fn described<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> serde_json::Value {
    let list: Vec<_> = pairs
        .map(|(a, c)| json!({"alias_name": a, "collection_name": c}))
        .collect();
    json!({ "aliases": list })
}

/// `GET /aliases` (a scoped key sees the aliases of its collections).
#[utoipa::path(get, path = "/aliases", tag = "aliases", operation_id = "get_aliases",
    responses((status = 200, description = "Every alias", body = Envelope<doc::AliasesList>)))]
pub async fn list(State(st): State<AppState>, scope: Option<Extension<Scope>>) -> Result<Response> {
    let t = started();
    let map = st.gw.fresh_map().await?;
    let scope = scope.map(|Extension(s)| s);
    let pairs = map
        .aliases
        .iter()
        .filter(|(_, c)| Scope::shows(scope.as_ref(), c))
        .map(|(a, c)| (a.as_str(), c.as_str()));
    Ok(ok(described(pairs), t))
}

/// `GET /collections/{name}/aliases` (404 for an unknown collection).
#[utoipa::path(get, path = "/collections/{name}/aliases", tag = "aliases", operation_id = "get_collection_aliases",
    params(doc::CollectionPath),
    responses((status = 200, description = "The collection's aliases", body = Envelope<doc::AliasesList>)))]
pub async fn of_collection(
    State(st): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response> {
    let t = started();
    let (map, _) = st.gw.collection(&name).await?;
    let pairs = map.aliases_of(&name).map(|a| (a, name.as_str()));
    Ok(ok(described(pairs), t))
}

/// Refuses a `/collections/{name}/…` request whose name breaks the name
/// rule (400), then rewrites `/collections/{alias}/…` to the alias's
/// collection. Creating, changing and deleting a collection (`PUT`,
/// `PATCH`, `DELETE` of `/collections/{name}`) take real names only, as in
/// Qdrant.
pub async fn resolve(State(st): State<AppState>, mut req: Request, next: Next) -> Response {
    if let Some(segment) = name_segment(req.uri().path()) {
        let checked = match percent_decode(segment) {
            Some(name) => validate_collection_name(&name).map_err(GatewayError::from_name),
            None => Err(GatewayError::bad_request(format!(
                "invalid collection name: the path segment {segment:?} is not percent-encoded UTF-8; {NAME_RULE}"
            ))),
        };
        if let Err(e) = checked {
            return e.into_response();
        }
    }
    if let Some((start, end)) = collection_segment(req.method(), req.uri().path()) {
        let path = req.uri().path();
        if let Some(name) = percent_decode(&path[start..end]) {
            if let Some(target) = st.gw.alias_target(&name).await {
                let rewritten = format!(
                    "{}{}{}",
                    &path[..start],
                    percent_encode(&target),
                    &path[end..]
                );
                let with_query = match req.uri().query() {
                    Some(q) => format!("{rewritten}?{q}"),
                    None => rewritten,
                };
                if let Ok(uri) = with_query.parse::<Uri>() {
                    *req.uri_mut() = uri;
                }
            }
        }
    }
    next.run(req).await
}

/// The raw (still percent-encoded) name segment of any
/// `/collections/{name}…` path, `/collections/aliases` included (a valid
/// name anyway); `None` for `/collections` itself. An empty segment
/// (`/collections//points`) is a name too, and refused.
fn name_segment(path: &str) -> Option<&str> {
    let rest = path.strip_prefix("/collections/")?;
    Some(rest.split('/').next().unwrap_or(rest))
}

/// Byte range of the collection name in `path`, for the routes that
/// resolve aliases.
fn collection_segment(method: &Method, path: &str) -> Option<(usize, usize)> {
    const PREFIX: &str = "/collections/";
    let rest = path.strip_prefix(PREFIX)?;
    let (name, tail) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if name.is_empty() {
        return None;
    }
    if tail.is_empty() && (name == "aliases" || !matches!(*method, Method::GET | Method::HEAD)) {
        return None;
    }
    Some((PREFIX.len(), PREFIX.len() + name.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn which_paths_resolve() {
        let seg = |m: Method, p: &str| collection_segment(&m, p).map(|(s, e)| p[s..e].to_string());
        assert_eq!(
            seg(Method::POST, "/collections/prod/points/search"),
            Some("prod".into())
        );
        assert_eq!(seg(Method::GET, "/collections/prod"), Some("prod".into()));
        assert_eq!(
            seg(Method::GET, "/collections/prod/aliases"),
            Some("prod".into())
        );
        assert_eq!(seg(Method::PUT, "/collections/prod"), None);
        assert_eq!(seg(Method::DELETE, "/collections/prod"), None);
        assert_eq!(seg(Method::PATCH, "/collections/prod"), None);
        assert_eq!(seg(Method::POST, "/collections/aliases"), None);
        assert_eq!(seg(Method::GET, "/collections"), None);
        assert_eq!(seg(Method::GET, "/collections/"), None);
        assert_eq!(seg(Method::GET, "/aliases"), None);
    }

    #[test]
    fn every_collection_route_has_its_name_checked() {
        assert_eq!(name_segment("/collections/a/points/search"), Some("a"));
        assert_eq!(name_segment("/collections/%2e%2e"), Some("%2e%2e"));
        assert_eq!(name_segment("/collections//points"), Some(""));
        assert_eq!(name_segment("/collections/"), Some(""));
        assert_eq!(name_segment("/collections"), None);
        assert_eq!(name_segment("/aliases"), None);
    }

    #[test]
    fn qdrant_actions_parse() {
        let actions = parse_actions(json!({"actions": [
            {"delete_alias": {"alias_name": "prod"}},
            {"create_alias": {"collection_name": "v2", "alias_name": "prod"}},
            {"rename_alias": {"old_alias_name": "a", "new_alias_name": "b"}},
        ]}))
        .unwrap();
        assert_eq!(
            actions,
            vec![
                AliasAction::Delete {
                    alias: "prod".into()
                },
                AliasAction::Create {
                    alias: "prod".into(),
                    collection: "v2".into()
                },
                AliasAction::Rename {
                    old: "a".into(),
                    new: "b".into()
                },
            ]
        );
        for bad in [
            json!({"actions": []}),
            json!({"actions": [{"switch_alias": {}}]}),
            json!({}),
        ] {
            assert!(parse_actions(bad).is_err());
        }
    }
}
