//! Who may do what on a meta member: the caller's role comes from its
//! client certificate (`protocol::roles`), checked per route by
//! [`authorize`] (an axum middleware) and per command by
//! [`Caller::may_submit`] in the handlers that carry one.
//!
//! | route                         | no cert | meta | operator | gateway | storage-N        |
//! |-------------------------------|---------|------|----------|---------|------------------|
//! | `/health`, `/metrics`         | yes     | yes  | yes      | yes     | yes              |
//! | `/raft/*`                     | 401     | yes  | 403      | 403     | 403              |
//! | `/admin/*`                    | 401     | yes  | yes      | 403     | 403              |
//! | `/v1/cluster/{map,watch}`     | 401     | yes  | yes      | yes     | yes              |
//! | `/v1/commands`                | 401     | all  | all      | user commands | its transfers' reports |
//! | `/v1/nodes/{register,heartbeat}`, `/v1/nodes/{id}/presence` | 401  | yes  | yes      | 403     | as node N only   |
//! | `/v1/rebalance`               | 401     | yes  | yes      | yes     | 403              |
//!
//! A certificate of the CA whose name has no role (e.g. `client`) gets 403
//! everywhere but `/health` and `/metrics`. A follower authorises a request
//! before it forwards it; the leader then sees the follower's `meta`
//! certificate. With TLS off ([`Caller::Insecure`]) everything is allowed.

use axum::extract::{ConnectInfo, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use protocol::cluster::ClusterCommand;
use protocol::roles::Role;
use protocol::NodeId;

use crate::error::ApiError;

/// The caller of one request, as proven by its connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Caller {
    /// The member runs without TLS: nobody is authenticated and everything
    /// is allowed (tests, `--insecure-plain-http`).
    Insecure,
    /// TLS without a client certificate.
    Anonymous,
    /// A client certificate of the cluster CA; `role` from its name.
    Certified { name: String, role: Option<Role> },
}

/// The connection a request came on: what `axum::serve` hands each
/// request as `ConnectInfo`.
#[derive(Clone, Debug)]
pub struct Peer {
    pub addr: std::net::SocketAddr,
    pub caller: Caller,
}

/// What a route needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Access {
    Open,
    Raft,
    Admin,
    Read,
    /// Any role; the handler checks the command.
    Commands,
    /// Storage nodes (the handler checks the node id), members, operators.
    NodeReports,
    Rebalance,
}

fn access(path: &str) -> Access {
    match path {
        "/health" | "/metrics" => Access::Open,
        "/v1/cluster/map" | "/v1/cluster/watch" => Access::Read,
        "/v1/commands" => Access::Commands,
        "/v1/nodes/register" | "/v1/nodes/heartbeat" => Access::NodeReports,
        p if p.starts_with("/v1/nodes/") && p.ends_with("/presence") => Access::NodeReports,
        "/v1/rebalance" => Access::Rebalance,
        p if p.starts_with("/raft/") => Access::Raft,
        p if p.starts_with("/admin/") => Access::Admin,
        // Unknown routes: any role (they answer 404).
        _ => Access::Read,
    }
}

impl Caller {
    fn forbidden(&self, what: impl Into<String>) -> ApiError {
        match self {
            Caller::Certified { name, role } => ApiError::Forbidden {
                name: name.clone(),
                role: role.map_or("no role", |r| r.kind()).to_string(),
                what: what.into(),
            },
            Caller::Insecure | Caller::Anonymous => ApiError::Unauthenticated { what: what.into() },
        }
    }

    /// May this caller use the route at `path`?
    pub fn may_access(&self, path: &str) -> Result<(), ApiError> {
        let access = access(path);
        let role = match self {
            Caller::Insecure => return Ok(()),
            _ if access == Access::Open => return Ok(()),
            Caller::Anonymous => {
                return Err(ApiError::Unauthenticated {
                    what: path.to_string(),
                })
            }
            Caller::Certified { role: None, .. } => return Err(self.forbidden(path)),
            Caller::Certified {
                role: Some(role), ..
            } => *role,
        };
        let allowed = match (access, role) {
            (Access::Open | Access::Read | Access::Commands, _) => true,
            (_, Role::Meta(_)) => true,
            (Access::Raft, _) => false,
            (Access::Admin | Access::NodeReports, Role::Operator) => true,
            (Access::Admin, Role::Gateway | Role::Storage(_)) => false,
            (Access::NodeReports, Role::Storage(_)) => true,
            (Access::NodeReports, Role::Gateway) => false,
            (Access::Rebalance, Role::Operator | Role::Gateway) => true,
            (Access::Rebalance, Role::Storage(_)) => false,
        };
        if allowed {
            Ok(())
        } else {
            Err(self.forbidden(path))
        }
    }

    /// May this caller submit `cmd` on `/v1/commands`?
    pub fn may_submit(&self, cmd: &ClusterCommand) -> Result<(), ApiError> {
        let allowed = match self {
            Caller::Insecure => true,
            Caller::Anonymous | Caller::Certified { role: None, .. } => false,
            Caller::Certified {
                role: Some(role), ..
            } => match role {
                Role::Meta(_) | Role::Operator => true,
                Role::Gateway => gateway_may_submit(cmd),
                Role::Storage(_) => storage_may_submit(cmd),
            },
        };
        if allowed {
            Ok(())
        } else {
            Err(self.forbidden(format!("submit command {}", command_name(cmd))))
        }
    }

    /// May this caller register or heartbeat as storage node `node`? A
    /// storage certificate speaks for its own node only.
    pub fn may_report_for(&self, node: NodeId) -> Result<(), ApiError> {
        match self {
            Caller::Certified {
                role: Some(Role::Storage(own)),
                ..
            } if *own != node => Err(self.forbidden(format!("report for node {node}"))),
            _ => Ok(()),
        }
    }
}

/// What a gateway sends on behalf of its REST users (behind its API keys):
/// collections, aliases, and the operator routes. Not the storage nodes'
/// transfer reports, registrations, nor the controller's decisions.
fn gateway_may_submit(cmd: &ClusterCommand) -> bool {
    match cmd {
        ClusterCommand::CreateCollection { .. }
        | ClusterCommand::DeleteCollection { .. }
        | ClusterCommand::ChangeAliases { .. }
        | ClusterCommand::SetReplicationFactor { .. }
        | ClusterCommand::RebalanceShards { .. }
        | ClusterCommand::AbortMigration { .. }
        | ClusterCommand::SetReplicas { .. }
        | ClusterCommand::SetNodeState { .. }
        | ClusterCommand::RemoveNode { .. }
        | ClusterCommand::SetPayloadIndex { .. }
        | ClusterCommand::UpdateConfig { .. } => true,
        ClusterCommand::IfEpoch { command, .. } => gateway_may_submit(command),
        ClusterCommand::CreateShard { .. }
        | ClusterCommand::DeleteShard { .. }
        | ClusterCommand::AddNode { .. }
        | ClusterCommand::UpdateMigration { .. }
        | ClusterCommand::CompleteMigration { .. }
        | ClusterCommand::SetReplicaState { .. }
        | ClusterCommand::PromotePrimary { .. } => false,
    }
}

/// What a storage node sends as a transfer's executor: progress, the
/// switch, the abort. Nothing that creates, deletes or reassigns.
fn storage_may_submit(cmd: &ClusterCommand) -> bool {
    match cmd {
        ClusterCommand::UpdateMigration { .. }
        | ClusterCommand::CompleteMigration { .. }
        | ClusterCommand::AbortMigration { .. } => true,
        ClusterCommand::IfEpoch { command, .. } => storage_may_submit(command),
        ClusterCommand::CreateCollection { .. }
        | ClusterCommand::DeleteCollection { .. }
        | ClusterCommand::CreateShard { .. }
        | ClusterCommand::DeleteShard { .. }
        | ClusterCommand::AddNode { .. }
        | ClusterCommand::RemoveNode { .. }
        | ClusterCommand::SetNodeState { .. }
        | ClusterCommand::RebalanceShards { .. }
        | ClusterCommand::SetPayloadIndex { .. }
        | ClusterCommand::SetReplicationFactor { .. }
        | ClusterCommand::UpdateConfig { .. }
        | ClusterCommand::SetReplicas { .. }
        | ClusterCommand::SetReplicaState { .. }
        | ClusterCommand::PromotePrimary { .. }
        | ClusterCommand::ChangeAliases { .. } => false,
    }
}

/// The command's wire name (`type` in its JSON), for error messages.
fn command_name(cmd: &ClusterCommand) -> String {
    serde_json::to_value(cmd)
        .ok()
        .and_then(|v| v.get("type")?.as_str().map(str::to_string))
        .unwrap_or_else(|| "?".to_string())
}

/// The middleware: refuses a request its caller may not make (401 without
/// a certificate, 403 with the wrong role) before any handler runs, and
/// hands the [`Caller`] on to the handlers.
pub async fn authorize(
    ConnectInfo(peer): ConnectInfo<Peer>,
    mut req: Request,
    next: Next,
) -> Response {
    if let Err(e) = peer.caller.may_access(req.uri().path()) {
        tracing::warn!(peer = %peer.addr, caller = ?peer.caller, path = req.uri().path(), error = %e, "meta request refused");
        metrics::counter!("meta_requests_refused_total", "status" => e.status().as_u16().to_string())
            .increment(1);
        return e.into_response();
    }
    req.extensions_mut().insert(peer.caller);
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::cluster::NodeInfo;

    fn cert(name: &str) -> Caller {
        Caller::Certified {
            name: name.to_string(),
            role: Role::from_cert_name(name),
        }
    }

    #[test]
    fn routes_by_role() {
        let all = [
            "/health",
            "/metrics",
            "/raft/append",
            "/admin/change-membership",
            "/v1/cluster/map",
            "/v1/commands",
            "/v1/nodes/heartbeat",
            "/v1/rebalance",
        ];
        let allowed = |caller: &Caller| -> Vec<&str> {
            all.iter()
                .copied()
                .filter(|p| caller.may_access(p).is_ok())
                .collect()
        };
        assert_eq!(allowed(&Caller::Insecure), all);
        assert_eq!(allowed(&cert("meta-2")), all);
        assert_eq!(allowed(&Caller::Anonymous), ["/health", "/metrics"]);
        assert_eq!(allowed(&cert("client")), ["/health", "/metrics"]);
        assert_eq!(
            allowed(&cert("operator")),
            [
                "/health",
                "/metrics",
                "/admin/change-membership",
                "/v1/cluster/map",
                "/v1/commands",
                "/v1/nodes/heartbeat",
                "/v1/rebalance"
            ]
        );
        assert_eq!(
            allowed(&cert("gateway-1")),
            [
                "/health",
                "/metrics",
                "/v1/cluster/map",
                "/v1/commands",
                "/v1/rebalance"
            ]
        );
        assert_eq!(
            allowed(&cert("storage-3")),
            [
                "/health",
                "/metrics",
                "/v1/cluster/map",
                "/v1/commands",
                "/v1/nodes/heartbeat"
            ]
        );
        let e = Caller::Anonymous.may_access("/v1/commands").unwrap_err();
        assert_eq!(e.status().as_u16(), 401);
        let e = cert("storage-3").may_access("/admin/init").unwrap_err();
        assert_eq!(e.status().as_u16(), 403);
    }

    #[test]
    fn commands_by_role() {
        let delete = ClusterCommand::DeleteCollection { name: "c".into() };
        let abort = ClusterCommand::AbortMigration {
            collection: "c".into(),
            shard: protocol::ShardId(0),
            reason: String::new(),
            at_ms: 0,
        };
        let add = ClusterCommand::AddNode {
            node: NodeInfo::new(NodeId(9), "x:1"),
        };
        let guarded = |cmd: &ClusterCommand| ClusterCommand::IfEpoch {
            epoch: protocol::Epoch(3),
            command: Box::new(cmd.clone()),
        };
        let storage = cert("storage-1");
        assert!(storage.may_submit(&abort).is_ok());
        assert!(storage.may_submit(&guarded(&abort)).is_ok());
        let refused = storage.may_submit(&delete).unwrap_err();
        assert_eq!(refused.status().as_u16(), 403);
        assert!(
            refused.to_string().contains("delete_collection"),
            "{refused}"
        );
        assert!(storage.may_submit(&guarded(&delete)).is_err());
        assert!(storage.may_submit(&add).is_err());
        let gateway = cert("gateway");
        assert!(gateway.may_submit(&delete).is_ok());
        assert!(gateway.may_submit(&guarded(&delete)).is_ok());
        assert!(gateway.may_submit(&add).is_err());
        for ok in [cert("operator"), cert("meta-1"), Caller::Insecure] {
            for cmd in [&delete, &abort, &add] {
                assert!(ok.may_submit(cmd).is_ok(), "{ok:?} {cmd:?}");
            }
        }
        assert!(cert("client").may_submit(&abort).is_err());
    }

    #[test]
    fn a_storage_certificate_reports_for_its_own_node_only() {
        let storage = cert("storage-2");
        assert!(storage.may_report_for(NodeId(2)).is_ok());
        assert_eq!(
            storage
                .may_report_for(NodeId(3))
                .unwrap_err()
                .status()
                .as_u16(),
            403
        );
        assert!(cert("operator").may_report_for(NodeId(3)).is_ok());
    }
}
