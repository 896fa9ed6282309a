//! `GET /v1/nodes/{id}/presence`: a request each storage node keeps open
//! at the leader, answered (`{}`) only when the leader ends it (after
//! [`HOLD`], when it stops leading, or when it shuts down).
//!
//! Why: when a process dies, its kernel closes its connections at once,
//! so the leader learns of a killed storage node within a round trip —
//! the signal Qdrant gets from its gRPC connections — instead of after a
//! grace of silence sized for a loaded machine's late heartbeats. A hung
//! process (SIGSTOP, a stuck disk) keeps its connection open and is still
//! judged by its heartbeats. A closed connection only shortens the wait
//! to the node's leases (`Liveness::leases_over`): safety never rests on
//! it, and a node that is alive after all is cleared by its next
//! heartbeat or its next presence request.
//!
//! hyper notices the peer's close while the handler waits (HTTP/1 with
//! half-close off, its default: a read EOF closes the connection) and
//! drops the handler's future: [`Presence`]'s `Drop` records the loss.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::Json;
use openraft::ServerState;
use protocol::cluster::CommandError;
use protocol::NodeId;

use crate::app::App;
use crate::error::ApiError;
use crate::liveness::now_ms;

/// How long the leader holds one presence request before answering it
/// (the node then opens the next at once). Bounded so that proxies and
/// idle timeouts along the way never see a request older than this.
pub const HOLD: Duration = meta_client::PRESENCE_HOLD;

/// Records, when dropped before [`Presence::end`], that the node's
/// connection closed.
struct Presence {
    app: Arc<App>,
    node: NodeId,
    ended: bool,
}

impl Presence {
    fn open(app: Arc<App>, node: NodeId) -> Self {
        app.liveness.lock().presence_opened(node);
        metrics::gauge!("meta_presence_connections").increment(1.0);
        Self {
            app,
            node,
            ended: false,
        }
    }

    /// The leader ends the request itself: not a sign of anything.
    fn end(mut self) {
        self.ended = true;
    }
}

impl Drop for Presence {
    fn drop(&mut self) {
        metrics::gauge!("meta_presence_connections").decrement(1.0);
        if self.ended {
            return;
        }
        tracing::info!(node = %self.node, "presence connection closed: the node's process is likely gone");
        metrics::counter!("meta_presence_lost_total").increment(1);
        self.app.liveness.lock().presence_lost(self.node, now_ms());
    }
}

pub async fn presence(
    State(app): State<Arc<App>>,
    Path(node): Path<u64>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let node = NodeId(node);
    // Only the leader judges liveness; a follower sends the node on to the
    // next member (its client goes round them).
    if !app.is_leader() {
        return Err(ApiError::NoLeader);
    }
    if !app.current_map().nodes.contains_key(&node) {
        return Err(ApiError::Refused(CommandError::NodeNotFound { node }));
    }
    let guard = Presence::open(app.clone(), node);
    let mut metrics = app.raft.metrics();
    tokio::select! {
        _ = tokio::time::sleep(HOLD) => {}
        _ = metrics.wait_for(|m| m.state != ServerState::Leader) => {}
        () = app.stopped() => {}
    }
    guard.end();
    Ok(Json(serde_json::json!({})))
}
