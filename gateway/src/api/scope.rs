//! What a collection-scoped API key may reach.
//!
//! A scoped key names collections (never aliases: the path it is judged
//! on has had its alias replaced by the collection already) and an access,
//! `read` or `read_write`. It may:
//!
//! - list collections and aliases (`GET /collections`, `GET /aliases`):
//!   the handlers show only its collections;
//! - use `/collections/{name}/…` for a `name` in its scope: the read routes
//!   with either access, the rest (writes, creating and deleting the
//!   collection, payload indexes) with `read_write`.
//!
//! Everything else is refused with a 403: collections outside the scope,
//! changing aliases (an alias could point anywhere), and the cluster's
//! administration — `/api/cluster/*`, `/cluster*`, `/metrics`, `PATCH
//! /collections/{name}` (replication factor) and `POST
//! /collections/{name}/cluster` (shard moves) — which take the global
//! read-write key.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::http::Method;

use serde::Deserialize;

use super::path::{is_read, percent_decode};
use crate::error::GatewayError;

/// What a scoped key may do on its collections.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScopeAccess {
    /// The read routes (`is_read`) only.
    Read,
    /// Reads and writes, and creating and deleting collections of its
    /// scope; never the cluster's administration.
    ReadWrite,
}

/// A scoped key's reach, put into the request's extensions for the
/// listing handlers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scope {
    pub collections: Arc<BTreeSet<String>>,
    pub access: ScopeAccess,
}

impl Scope {
    /// Whether a listing shows `collection` to a caller with `scope`
    /// (every collection without one).
    pub fn shows(scope: Option<&Scope>, collection: &str) -> bool {
        scope.is_none_or(|s| s.collections.contains(collection))
    }
}

fn forbidden(message: String) -> GatewayError {
    GatewayError::Forbidden { message }
}

/// Whether a request may go on under `scope` (see the module doc).
pub fn authorize(scope: &Scope, method: &Method, path: &str) -> Result<(), GatewayError> {
    let listing = matches!(*method, Method::GET | Method::HEAD);
    if listing && matches!(path, "/collections" | "/aliases") {
        return Ok(());
    }
    let admin = || {
        forbidden(format!(
            "an API key scoped to collections cannot use {method} {path}: \
             cluster administration and alias changes need the global read-write key"
        ))
    };
    let Some(rest) = path.strip_prefix("/collections/") else {
        return Err(admin());
    };
    let (segment, tail) = rest.split_once('/').unwrap_or((rest, ""));
    if segment == "aliases" && tail.is_empty() && *method == Method::POST {
        return Err(admin());
    }
    let name = percent_decode(segment).unwrap_or_default();
    if !scope.collections.contains(&name) {
        return Err(forbidden(format!(
            "the API key's scope does not include collection `{name}`"
        )));
    }
    if (tail.is_empty() && *method == Method::PATCH) || (tail == "cluster" && !listing) {
        return Err(admin());
    }
    if is_read(method, path) || scope.access == ScopeAccess::ReadWrite {
        Ok(())
    } else {
        Err(forbidden(format!(
            "the API key is read-only on collection `{name}`"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(access: ScopeAccess) -> Scope {
        Scope {
            collections: Arc::new(BTreeSet::from(["a".to_string(), "a b".to_string()])),
            access,
        }
    }

    #[test]
    fn read_scope() {
        let s = scope(ScopeAccess::Read);
        let ok = |m: Method, p: &str| authorize(&s, &m, p).is_ok();
        assert!(ok(Method::GET, "/collections"));
        assert!(ok(Method::GET, "/aliases"));
        assert!(ok(Method::GET, "/collections/a"));
        assert!(ok(Method::GET, "/collections/a%20b/exists"));
        assert!(ok(Method::POST, "/collections/a/points/search"));
        assert!(ok(Method::GET, "/collections/a/cluster"));
        assert!(!ok(Method::POST, "/collections/b/points/search"));
        assert!(!ok(Method::GET, "/collections/b"));
        assert!(!ok(Method::PUT, "/collections/a/points"));
        assert!(!ok(Method::DELETE, "/collections/a"));
        assert!(!ok(Method::PUT, "/collections/a"));
    }

    #[test]
    fn read_write_scope() {
        let s = scope(ScopeAccess::ReadWrite);
        let ok = |m: Method, p: &str| authorize(&s, &m, p).is_ok();
        assert!(ok(Method::PUT, "/collections/a"));
        assert!(ok(Method::PUT, "/collections/a/points"));
        assert!(ok(Method::POST, "/collections/a/points/delete"));
        assert!(ok(Method::DELETE, "/collections/a"));
        assert!(!ok(Method::PUT, "/collections/b"));
        assert!(!ok(Method::DELETE, "/collections/b"));
        assert!(!ok(Method::PUT, "/collections/b/points"));
        // Administration, whatever the collection.
        assert!(!ok(Method::PATCH, "/collections/a"));
        assert!(!ok(Method::POST, "/collections/a/cluster"));
        assert!(!ok(Method::POST, "/collections/aliases"));
        assert!(!ok(Method::GET, "/api/cluster/health"));
        assert!(!ok(Method::POST, "/api/cluster/rebalance"));
        assert!(!ok(Method::GET, "/cluster"));
        assert!(!ok(Method::GET, "/metrics"));
        assert!(!ok(Method::POST, "/collections"));
    }
}
