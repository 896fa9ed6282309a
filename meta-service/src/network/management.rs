//! Membership of the meta cluster itself, for operators. Each call must run
//! on the leader; a follower forwards it there.

use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use meta_client::{AddLearnerRequest, ChangeMembershipRequest, InitRequest, MembershipAck};
use openraft::error::{ClientWriteError, RaftError};
use openraft::BasicNode;
use serde::Serialize;

use crate::app::{App, FORWARDED_HEADER};
use crate::error::ApiError;
use crate::{MemberId, RaftMetrics};

pub async fn init(
    State(app): State<Arc<App>>,
    Json(req): Json<InitRequest>,
) -> Result<Json<serde_json::Value>, ApiError> {
    app.initialize(req.members).await?;
    Ok(Json(serde_json::json!({ "initialized": true })))
}

pub async fn add_learner(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Json(req): Json<AddLearnerRequest>,
) -> Result<Json<MembershipAck>, ApiError> {
    let node = BasicNode {
        addr: req.addr.clone(),
    };
    let res = app.raft.add_learner(req.id, node, true).await;
    membership_result(&app, &headers, "/admin/add-learner", &req, res).await
}

pub async fn change_membership(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Json(req): Json<ChangeMembershipRequest>,
) -> Result<Json<MembershipAck>, ApiError> {
    let res = app
        .raft
        .change_membership(req.members.clone(), req.retain)
        .await;
    membership_result(&app, &headers, "/admin/change-membership", &req, res).await
}

/// Maps a membership call's result, forwarding to the leader when this
/// member is not it.
async fn membership_result<Req: Serialize>(
    app: &App,
    headers: &HeaderMap,
    path: &str,
    req: &Req,
    res: Result<
        openraft::raft::ClientWriteResponse<crate::TypeConfig>,
        RaftError<MemberId, ClientWriteError<MemberId, BasicNode>>,
    >,
) -> Result<Json<MembershipAck>, ApiError> {
    match res {
        Ok(r) => Ok(Json(MembershipAck {
            log_index: r.log_id.index,
        })),
        Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
            match (
                headers.contains_key(FORWARDED_HEADER),
                f.leader_id,
                f.leader_node,
            ) {
                (false, Some(id), Some(node)) => {
                    Ok(Json(app.forward_post(id, &node.addr, path, req).await?))
                }
                _ => Err(ApiError::NoLeader),
            }
        }
        Err(e) => Err(ApiError::Raft {
            reason: e.to_string(),
        }),
    }
}

/// openraft's own metrics of this member (state, term, log ids, membership).
pub async fn raft_metrics(State(app): State<Arc<App>>) -> Json<RaftMetrics> {
    Json(app.raft.metrics().borrow().clone())
}
