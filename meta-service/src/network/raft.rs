//! Inbound Raft RPCs. The body is openraft's request as JSON; the answer is
//! `Result<response, RaftError>` as JSON, which the sender's
//! `raft_network_impl` turns back into `RemoteError` when it is an `Err`.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use openraft::error::{InstallSnapshotError, RaftError};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};

use crate::app::App;
use crate::{MemberId, TypeConfig};

pub async fn append(
    State(app): State<Arc<App>>,
    Json(req): Json<AppendEntriesRequest<TypeConfig>>,
) -> Json<Result<AppendEntriesResponse<MemberId>, RaftError<MemberId>>> {
    Json(app.raft.append_entries(req).await)
}

pub async fn vote(
    State(app): State<Arc<App>>,
    Json(req): Json<VoteRequest<MemberId>>,
) -> Json<Result<VoteResponse<MemberId>, RaftError<MemberId>>> {
    Json(app.raft.vote(req).await)
}

pub async fn snapshot(
    State(app): State<Arc<App>>,
    Json(req): Json<InstallSnapshotRequest<TypeConfig>>,
) -> Json<Result<InstallSnapshotResponse<MemberId>, RaftError<MemberId, InstallSnapshotError>>> {
    Json(app.raft.install_snapshot(req).await)
}
