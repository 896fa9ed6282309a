//! Optional API keys, as in Qdrant: a read-write key and a read-only key,
//! sent as the `api-key` header or `Authorization: Bearer <key>`. With no
//! key configured every request is allowed. Health probes and `/` never
//! need a key (load balancers call them).

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppState;
use crate::error::GatewayError;

#[derive(Clone, Debug, Default)]
pub struct ApiKeys {
    pub read_write: Option<String>,
    pub read_only: Option<String>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Access {
    Full,
    ReadOnly,
}

impl ApiKeys {
    pub fn enabled(&self) -> bool {
        self.read_write.is_some() || self.read_only.is_some()
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
            Ok(Access::Full)
        } else if self.read_only.as_deref().is_some_and(|k| ct_eq(k, key)) {
            Ok(Access::ReadOnly)
        } else {
            Err(GatewayError::InvalidApiKey)
        }
    }
}

/// Comparison whose time does not depend on where the keys differ.
fn ct_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Whether a request only reads. POSTs that only read are the search,
/// query, scroll, count and retrieve routes.
pub fn is_read(method: &Method, path: &str) -> bool {
    if method == Method::GET || method == Method::HEAD {
        return true;
    }
    if method != Method::POST {
        return false;
    }
    let Some(rest) = path.strip_prefix("/collections/") else {
        return false;
    };
    let Some((_, tail)) = rest.split_once('/') else {
        return false;
    };
    matches!(
        tail,
        "points"
            | "points/search"
            | "points/search/batch"
            | "points/query"
            | "points/query/batch"
            | "points/scroll"
            | "points/count"
    )
}

fn is_open(path: &str) -> bool {
    matches!(path, "/" | "/healthz" | "/livez" | "/readyz")
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
        assert_eq!(
            ApiKeys::default().check(&HeaderMap::new()).unwrap(),
            Access::Full
        );
    }

    #[test]
    fn read_routes() {
        assert!(is_read(&Method::GET, "/collections/c"));
        assert!(is_read(&Method::POST, "/collections/c/points/search"));
        assert!(is_read(&Method::POST, "/collections/c/points"));
        assert!(!is_read(&Method::PUT, "/collections/c/points"));
        assert!(!is_read(&Method::POST, "/collections/c/points/delete"));
        assert!(!is_read(&Method::POST, "/collections/c/points/payload"));
        assert!(!is_read(&Method::DELETE, "/collections/c"));
    }
}
