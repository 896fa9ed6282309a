//! The API's one error type, its HTTP status and its JSON body.
//!
//! The body ([`ErrorBody`]) is what [`crate::MetaClient`] parses back into a
//! typed [`crate::ClientError`], so a refusal travels from the state
//! machine to a gateway as the same [`CommandError`] value.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use protocol::cluster::CommandError;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::MemberId;

#[derive(Debug, Error)]
pub enum ApiError {
    /// The state machine refused the command (nothing changed).
    #[error(transparent)]
    Refused(#[from] CommandError),
    /// No leader is known (election under way, or no quorum).
    #[error("no leader is known")]
    NoLeader,
    /// The write or linearizable read did not reach a quorum in time.
    #[error("timed out after {ms} ms waiting for a quorum")]
    Timeout { ms: u64 },
    /// Forwarding to the leader failed.
    #[error("forwarding to leader {leader} failed: {reason}")]
    Forward { leader: MemberId, reason: String },
    #[error("bad request: {reason}")]
    BadRequest { reason: String },
    /// Raft refused or failed the operation (e.g. changing membership).
    #[error("raft: {reason}")]
    Raft { reason: String },
}

impl ApiError {
    /// Whether retrying the same request later may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            ApiError::NoLeader | ApiError::Timeout { .. } | ApiError::Forward { .. } => true,
            ApiError::Refused(_) | ApiError::BadRequest { .. } | ApiError::Raft { .. } => false,
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Refused(e) => refusal_status(e),
            ApiError::NoLeader | ApiError::Timeout { .. } | ApiError::Forward { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Raft { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            ApiError::Refused(_) => "refused",
            ApiError::NoLeader => "no_leader",
            ApiError::Timeout { .. } => "timeout",
            ApiError::Forward { .. } => "forward_failed",
            ApiError::BadRequest { .. } => "bad_request",
            ApiError::Raft { .. } => "raft",
        }
    }

    /// Rebuilds an error from a body another member answered with.
    pub fn from_body(body: ErrorBody) -> Self {
        match (body.code.as_str(), body.refusal) {
            (_, Some(refusal)) => ApiError::Refused(refusal),
            ("no_leader", _) => ApiError::NoLeader,
            ("timeout", _) => ApiError::Timeout { ms: 0 },
            ("bad_request", _) => ApiError::BadRequest {
                reason: body.message,
            },
            _ => ApiError::Raft {
                reason: body.message,
            },
        }
    }
}

fn refusal_status(e: &CommandError) -> StatusCode {
    match e {
        CommandError::CollectionNotFound { .. }
        | CommandError::ShardNotFound { .. }
        | CommandError::NodeNotFound { .. } => StatusCode::NOT_FOUND,
        CommandError::Invalid { .. } => StatusCode::BAD_REQUEST,
        _ => StatusCode::CONFLICT,
    }
}

/// JSON body of every error answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Machine-readable kind: `refused`, `no_leader`, `timeout`, ...
    pub code: String,
    pub message: String,
    /// The state machine's typed refusal, when `code` is `refused`.
    #[serde(default)]
    pub refusal: Option<CommandError>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = ErrorBody {
            code: self.code().to_string(),
            message: self.to_string(),
            refusal: match &self {
                ApiError::Refused(e) => Some(e.clone()),
                _ => None,
            },
        };
        (status, Json(body)).into_response()
    }
}
