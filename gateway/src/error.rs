//! [`GatewayError`]: every way a gateway request can fail, mapped to an HTTP
//! status and Qdrant's error envelope once, at the edge
//! ([`IntoResponse`]).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use protocol::rpc::StorageError;
use protocol::{ShardId, ValidationError};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum GatewayError {
    /// Malformed or invalid input; nothing was changed.
    #[error("Bad request: {message}")]
    BadRequest { message: String },
    #[error("Not found: Collection `{name}` doesn't exist!")]
    CollectionNotFound { name: String },
    #[error("Not found: Point with id {id} does not exists!")]
    PointNotFound { id: String },
    #[error("Not found: no such route")]
    NotFoundRoute,
    /// A shard, node or transfer named in the request does not exist.
    #[error("Not found: {message}")]
    NotFound { message: String },
    #[error("Method not allowed on this route")]
    MethodNotAllowed,
    #[error("Conflict: {message}")]
    Conflict { message: String },
    #[error("Must provide an API key or an Authorization bearer token")]
    Unauthenticated,
    #[error("Invalid API key or JWT")]
    InvalidApiKey,
    #[error("Forbidden: {message}")]
    Forbidden { message: String },
    #[error("Payload too large: {message}")]
    PayloadTooLarge { message: String },
    /// Some shards could not be served by any replica (and the client did
    /// not ask for partial results).
    #[error("Service unavailable: no reachable replica for shard(s) {} of `{collection}`: {reason}", list(.shards))]
    ShardsUnavailable {
        collection: String,
        shards: Vec<ShardId>,
        reason: String,
    },
    /// A write reached some shards and not others (see `writes` docs).
    #[error("Service unavailable: write failed on shard(s) {} of `{collection}` ({applied} other shard write(s) applied; retrying the request is safe): {reason}", list(.failed))]
    WriteFailed {
        collection: String,
        failed: Vec<ShardId>,
        applied: usize,
        reason: String,
    },
    /// The meta-service (cluster map, collection admin) cannot be reached.
    #[error("Service unavailable: meta-service: {message}")]
    MetaUnavailable { message: String },
    #[error("Service unavailable: {message}")]
    Unavailable { message: String },
    /// A Qdrant feature this cluster does not have.
    #[error("Not implemented: this cluster does not support {feature}")]
    NotImplemented { feature: &'static str },
    #[error("Timeout: request took longer than {secs} s")]
    Timeout { secs: f64 },
    #[error("Internal error: {message}")]
    Internal { message: String },
}

fn list(shards: &[ShardId]) -> String {
    shards
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

impl GatewayError {
    pub fn bad_request(message: impl Into<String>) -> Self {
        GatewayError::BadRequest {
            message: message.into(),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            GatewayError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            GatewayError::CollectionNotFound { .. }
            | GatewayError::PointNotFound { .. }
            | GatewayError::NotFoundRoute
            | GatewayError::NotFound { .. } => StatusCode::NOT_FOUND,
            GatewayError::Conflict { .. } => StatusCode::CONFLICT,
            GatewayError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            GatewayError::Unauthenticated | GatewayError::InvalidApiKey => StatusCode::UNAUTHORIZED,
            GatewayError::Forbidden { .. } => StatusCode::FORBIDDEN,
            GatewayError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            GatewayError::ShardsUnavailable { .. }
            | GatewayError::WriteFailed { .. }
            | GatewayError::MetaUnavailable { .. }
            | GatewayError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            GatewayError::NotImplemented { .. } => StatusCode::NOT_IMPLEMENTED,
            GatewayError::Timeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            GatewayError::Internal { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl GatewayError {
    /// A name refused by [`protocol::names`]: a 400 quoting the rule.
    pub fn from_name(e: protocol::names::InvalidName) -> Self {
        ValidationError::from(e).into()
    }
}

impl From<ValidationError> for GatewayError {
    fn from(e: ValidationError) -> Self {
        GatewayError::bad_request(e.to_string())
    }
}

/// A storage node's refusal that no retry fixes, surfaced to the client.
pub(crate) fn from_storage(e: StorageError) -> GatewayError {
    match e {
        StorageError::Invalid { message } => GatewayError::BadRequest { message },
        StorageError::Internal { message } => GatewayError::Internal { message },
        other => GatewayError::Unavailable {
            message: other.to_string(),
        },
    }
}

impl From<meta_client::MetaClientError> for GatewayError {
    fn from(e: meta_client::MetaClientError) -> Self {
        use protocol::cluster::CommandError;
        match e.refusal() {
            Some(CommandError::CollectionNotFound { name }) => {
                GatewayError::CollectionNotFound { name: name.clone() }
            }
            Some(CommandError::CollectionExists { name }) => GatewayError::Conflict {
                message: format!("Collection `{name}` already exists!"),
            },
            Some(CommandError::NotEnoughNodes { needed, available }) => GatewayError::bad_request(
                format!("replication needs {needed} storage node(s), {available} available"),
            ),
            Some(CommandError::Invalid { reason }) => GatewayError::bad_request(reason.clone()),
            // Operator commands naming something that is not there.
            Some(
                missing @ (CommandError::ShardNotFound { .. }
                | CommandError::NodeNotFound { .. }
                | CommandError::AliasNotFound { .. }
                | CommandError::NoMigration { .. }),
            ) => GatewayError::NotFound {
                message: missing.to_string(),
            },
            // Valid, but not now: the cluster's state has to change first
            // (a transfer to end, a node to be emptied).
            Some(
                busy @ (CommandError::MigrationInProgress { .. }
                | CommandError::NodeHoldsReplicas { .. }
                | CommandError::EpochMismatch { .. }),
            ) => GatewayError::Conflict {
                message: busy.to_string(),
            },
            Some(other) => GatewayError::bad_request(other.to_string()),
            // 503 tells the HTTP client to try again: only when the
            // meta-service may answer differently later.
            None if e.is_transient() => GatewayError::MetaUnavailable {
                message: e.to_string(),
            },
            None => GatewayError::Internal {
                message: format!("meta-service: {e}"),
            },
        }
    }
}

impl IntoResponse for GatewayError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() && status != StatusCode::NOT_IMPLEMENTED {
            tracing::warn!(error = %self, "request failed");
        }
        let body = serde_json::json!({
            "status": {"error": self.to_string()},
            "time": 0.0,
        });
        let mut response = (status, axum::Json(body)).into_response();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            // The rest of the oversized body was never read, so the
            // connection cannot carry another request: say so, or a client
            // pools it and its next request dies with an incomplete message.
            response.headers_mut().insert(
                axum::http::header::CONNECTION,
                axum::http::HeaderValue::from_static("close"),
            );
        }
        response
    }
}

pub type Result<T, E = GatewayError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;
    use meta_client::{ErrorBody, ErrorCode, MetaClientError};
    use protocol::cluster::CommandError;

    fn api(code: ErrorCode) -> MetaClientError {
        MetaClientError::Api {
            status: 503,
            body: ErrorBody {
                code,
                message: "m".into(),
                refusal: None,
            },
        }
    }

    #[test]
    fn meta_errors_answer_503_only_when_a_retry_may_help() {
        let unreachable = MetaClientError::Unreachable {
            member: "m:1".into(),
            reason: "refused".into(),
        };
        for e in [
            api(ErrorCode::NoLeader),
            api(ErrorCode::Timeout),
            unreachable,
        ] {
            assert_eq!(
                GatewayError::from(e).status(),
                StatusCode::SERVICE_UNAVAILABLE
            );
        }
        for e in [api(ErrorCode::BadRequest), MetaClientError::NoMembers] {
            assert_eq!(
                GatewayError::from(e).status(),
                StatusCode::INTERNAL_SERVER_ERROR
            );
        }
        let missing =
            MetaClientError::Refused(CommandError::CollectionNotFound { name: "c".into() });
        assert_eq!(GatewayError::from(missing).status(), StatusCode::NOT_FOUND);
    }

    #[test]
    fn operator_refusals_map_to_distinct_4xx() {
        let status = |e: CommandError| GatewayError::from(MetaClientError::Refused(e)).status();
        let c = || "c".to_string();
        let s = protocol::ShardId(1);
        let n = protocol::NodeId(4);
        assert_eq!(
            status(CommandError::ShardNotFound {
                collection: c(),
                shard: s
            }),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            status(CommandError::NodeNotFound { node: n }),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            status(CommandError::NoMigration {
                collection: c(),
                shard: s
            }),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            status(CommandError::MigrationInProgress {
                collection: c(),
                shard: s
            }),
            StatusCode::CONFLICT
        );
        let holds = GatewayError::from(MetaClientError::Refused(CommandError::NodeHoldsReplicas {
            node: n,
            replicas: 3,
        }));
        assert_eq!(holds.status(), StatusCode::CONFLICT);
        assert!(holds.to_string().contains("3 replica"), "{holds}");
        assert_eq!(
            status(CommandError::NotAReplica {
                collection: c(),
                shard: s,
                node: n
            }),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            status(CommandError::NodeNotAlive { node: n }),
            StatusCode::BAD_REQUEST
        );
    }
}
