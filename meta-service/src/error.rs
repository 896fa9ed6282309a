//! The API's one error type, its HTTP status and its JSON body.
//!
//! The body ([`ErrorBody`], defined in `meta-client`) is what
//! `meta_client::MetaClient` parses back into a typed `MetaClientError`, so
//! a refusal travels from the state machine to a gateway as the same
//! [`CommandError`] value, and every other error as an [`ErrorCode`].

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use meta_client::{ErrorBody, ErrorCode};
use protocol::cluster::CommandError;
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
    /// Whether retrying the same request later may succeed: what the
    /// client will conclude from this error's code.
    pub fn is_transient(&self) -> bool {
        self.code().is_transient()
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

    pub fn code(&self) -> ErrorCode {
        match self {
            ApiError::Refused(_) => ErrorCode::Refused,
            ApiError::NoLeader => ErrorCode::NoLeader,
            ApiError::Timeout { .. } => ErrorCode::Timeout,
            ApiError::Forward { .. } => ErrorCode::ForwardFailed,
            ApiError::BadRequest { .. } => ErrorCode::BadRequest,
            ApiError::Raft { .. } => ErrorCode::Raft,
        }
    }

    /// Rebuilds an error from a body another member answered with.
    pub fn from_body(body: ErrorBody) -> Self {
        if let Some(refusal) = body.refusal {
            return ApiError::Refused(refusal);
        }
        match body.code {
            ErrorCode::NoLeader => ApiError::NoLeader,
            ErrorCode::Timeout => ApiError::Timeout { ms: 0 },
            ErrorCode::BadRequest => ApiError::BadRequest {
                reason: body.message,
            },
            // The leader never forwards a forwarded request, so a
            // `forward_failed` from it (or a refusal without its body, or a
            // code we do not know) is reported as the leader's own failure.
            ErrorCode::Refused
            | ErrorCode::ForwardFailed
            | ErrorCode::Raft
            | ErrorCode::Unknown => ApiError::Raft {
                reason: body.message,
            },
        }
    }
}

fn refusal_status(e: &CommandError) -> StatusCode {
    match e {
        CommandError::CollectionNotFound { .. }
        | CommandError::ShardNotFound { .. }
        | CommandError::NodeNotFound { .. }
        | CommandError::AliasNotFound { .. } => StatusCode::NOT_FOUND,
        CommandError::Invalid { .. } => StatusCode::BAD_REQUEST,
        _ => StatusCode::CONFLICT,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = ErrorBody {
            code: self.code(),
            message: self.to_string(),
            refusal: match &self {
                ApiError::Refused(e) => Some(e.clone()),
                _ => None,
            },
        };
        (status, Json(body)).into_response()
    }
}
