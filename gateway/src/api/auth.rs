//! Optional API keys, as in Qdrant: a read-write key and a read-only key,
//! sent as the `api-key` header or `Authorization: Bearer <key>`, and
//! beside them keys scoped to some collections (see [`super::scope`]).
//! With no key configured every request is allowed. Health probes and `/`
//! never need a key (load balancers call them).

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::path::is_read;
use super::scope::{self, Scope, ScopeAccess};
use super::AppState;
use crate::error::GatewayError;

#[derive(Clone, Debug, Default)]
pub struct ApiKeys {
    pub read_write: Option<String>,
    pub read_only: Option<String>,
    /// Keys that reach only the collections they name.
    pub collection_keys: Vec<CollectionKey>,
}

/// A key scoped to collections: `{key, collections, access}` in
/// `gateway.collection_keys`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollectionKey {
    pub key: String,
    pub collections: BTreeSet<String>,
    pub access: ScopeAccess,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Access {
    Full,
    ReadOnly,
    /// A collection key: only its collections, with its access.
    Scoped(Scope),
}

impl ApiKeys {
    pub fn enabled(&self) -> bool {
        self.read_write.is_some() || self.read_only.is_some() || !self.collection_keys.is_empty()
    }

    /// Which access the presented key grants.
    pub fn check(&self, headers: &HeaderMap) -> Result<Access, GatewayError> {
        if !self.enabled() {
            return Ok(Access::Full);
        }
        let presented = headers
            .get("api-key")
            .and_then(|v| v.to_str().ok())
            .or_else(|| {
                headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.strip_prefix("Bearer "))
            })
            .map(str::trim);
        let Some(key) = presented else {
            return Err(GatewayError::Unauthenticated);
        };
        if self.read_write.as_deref().is_some_and(|k| ct_eq(k, key)) {
            return Ok(Access::Full);
        }
        if self.read_only.as_deref().is_some_and(|k| ct_eq(k, key)) {
            return Ok(Access::ReadOnly);
        }
        // Every scoped key is compared (no early exit), so the time taken
        // does not tell which position in the list came close.
        let mut found = None;
        for k in &self.collection_keys {
            if ct_eq(&k.key, key) && found.is_none() {
                found = Some(k);
            }
        }
        match found {
            Some(k) => Ok(Access::Scoped(Scope {
                collections: Arc::new(k.collections.clone()),
                access: k.access,
            })),
            None => Err(GatewayError::InvalidApiKey),
        }
    }
}

/// Comparison whose time does not depend on where the keys differ.
fn ct_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn is_open(path: &str) -> bool {
    // `/dashboard` holds no data (its script fetches everything with the
    // operator's key), so a browser can load it before it has a key.
    matches!(path, "/" | "/healthz" | "/livez" | "/readyz" | "/dashboard")
}

pub async fn require_key(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    if is_open(path) {
        return next.run(req).await;
    }
    match state.keys.check(req.headers()) {
        Ok(Access::Full) => next.run(req).await,
        Ok(Access::ReadOnly) if is_read(req.method(), path) => next.run(req).await,
        Ok(Access::ReadOnly) => GatewayError::Forbidden {
            message: "the read-only API key cannot change data".into(),
        }
        .into_response(),
        // The path was rewritten from an alias to its collection already
        // (`aliases::resolve` runs first), so an alias is no way around
        // the scope.
        Ok(Access::Scoped(s)) => match scope::authorize(&s, req.method(), path) {
            Ok(()) => {
                // Listing routes read it to show only the scope.
                let mut req = req;
                req.extensions_mut().insert(s);
                next.run(req).await
            }
            Err(e) => e.into_response(),
        },
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_access() {
        let keys = ApiKeys {
            read_write: Some("rw".into()),
            read_only: Some("ro".into()),
            collection_keys: vec![CollectionKey {
                key: "only-a".into(),
                collections: BTreeSet::from(["a".to_string()]),
                access: ScopeAccess::Read,
            }],
        };
        let mut h = HeaderMap::new();
        assert!(matches!(keys.check(&h), Err(GatewayError::Unauthenticated)));
        h.insert("api-key", "ro".parse().unwrap());
        assert_eq!(keys.check(&h).unwrap(), Access::ReadOnly);
        let mut h = HeaderMap::new();
        h.insert("authorization", "Bearer rw".parse().unwrap());
        assert_eq!(keys.check(&h).unwrap(), Access::Full);
        h.insert("authorization", "Bearer nope".parse().unwrap());
        assert!(matches!(keys.check(&h), Err(GatewayError::InvalidApiKey)));
        h.insert("authorization", "Bearer only-a".parse().unwrap());
        let Ok(Access::Scoped(s)) = keys.check(&h) else {
            panic!("a scoped key");
        };
        assert_eq!(s.access, ScopeAccess::Read);
        assert!(s.collections.contains("a"));
        assert_eq!(
            ApiKeys::default().check(&HeaderMap::new()).unwrap(),
            Access::Full
        );
    }
}
