//! Qdrant's collection cluster operations: `POST /collections/{name}/cluster`
//! (`move_shard`, `replicate_shard`, `abort_transfer`, `drop_replica`) and
//! `PATCH /collections/{name}` (`params.replication_factor`).
//!
//! A move or a replication starts a transfer (`RebalanceShards` with one
//! move) and answers at once, as Qdrant does; the transfer is then listed
//! with its progress in `GET /collections/{name}/cluster` and
//! `GET /api/cluster/transfers` until it ends.

use axum::extract::{Path, State};
use axum::response::Response;
use protocol::cluster::{ClusterCommand, ClusterMap, RebalancePlan, ShardInfo, ShardMove};
use protocol::ShardId;

use super::models::{parse_cluster_op, parse_update_collection, ClusterOp};
use super::openapi::schemas::{self as doc, Envelope};
use super::{ok, started, AppState, JsonBody};
use crate::error::{GatewayError, Result};
use crate::operator::now_ms;

/// The shard, or a 404 naming what is missing.
pub(crate) fn shard_of<'a>(
    map: &'a ClusterMap,
    name: &str,
    shard: ShardId,
) -> Result<&'a ShardInfo> {
    let coll = map
        .collections
        .get(name)
        .ok_or_else(|| GatewayError::CollectionNotFound {
            name: name.to_string(),
        })?;
    coll.shards
        .get(&shard)
        .ok_or_else(|| GatewayError::NotFound {
            message: format!("shard {shard} of collection `{name}` does not exist"),
        })
}

/// Starts a shard move or replication, aborts a transfer, or drops a
/// replica; a transfer runs on after the answer.
#[utoipa::path(post, path = "/collections/{name}/cluster", tag = "cluster", operation_id = "update_collection_cluster",
    params(doc::CollectionPath),
    request_body = doc::ClusterOperation,
    responses((status = 200, description = "Accepted", body = Envelope<bool>)))]
pub async fn update_cluster(
    State(st): State<AppState>,
    Path(name): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Response> {
    let t = started();
    let op = parse_cluster_op(body)?;
    st.gw.collection(&name).await?;
    match op {
        ClusterOp::Transfer {
            shard,
            from,
            to,
            kind,
        } => {
            let plan = RebalancePlan {
                moves: vec![ShardMove {
                    collection: name.clone(),
                    shard,
                    from,
                    to,
                    kind,
                }],
                created_at_ms: now_ms(),
            };
            st.gw
                .submit(ClusterCommand::RebalanceShards { plan })
                .await?;
        }
        ClusterOp::AbortTransfer { shard, from, to } => {
            st.gw
                .submit_guarded(|map| {
                    let s = shard_of(map, &name, shard)?;
                    match &s.migration {
                        Some(m) if m.from == from && m.to == to => {
                            Ok(ClusterCommand::AbortMigration {
                                collection: name.clone(),
                                shard,
                                reason: "aborted by the operator".into(),
                                at_ms: now_ms(),
                            })
                        }
                        Some(m) => Err(GatewayError::NotFound {
                            message: format!(
                                "shard {shard} of `{name}` is transferring from peer {} to peer {}, not from {from} to {to}",
                                m.from, m.to
                            ),
                        }),
                        None => Err(GatewayError::NotFound {
                            message: format!("shard {shard} of `{name}` has no transfer running"),
                        }),
                    }
                })
                .await?;
        }
        ClusterOp::DropReplica { shard, peer } => {
            st.gw
                .submit_guarded(|map| {
                    let s = shard_of(map, &name, shard)?;
                    if !s.holds(peer) {
                        return Err(GatewayError::NotFound {
                            message: format!(
                                "peer {peer} holds no replica of shard {shard} of `{name}`"
                            ),
                        });
                    }
                    if s.replicas.len() == 1 {
                        return Err(GatewayError::bad_request(format!(
                            "peer {peer} holds the last replica of shard {shard} of `{name}`; move the shard instead"
                        )));
                    }
                    Ok(ClusterCommand::SetReplicas {
                        collection: name.clone(),
                        shard,
                        replicas: s.nodes().filter(|n| *n != peer).collect(),
                    })
                })
                .await?;
        }
    }
    Ok(ok(true, t))
}

/// `PATCH /collections/{name}`: a new replication factor; the
/// meta-service's controller then adds replicas by transfers, or drops the
/// surplus.
#[utoipa::path(patch, path = "/collections/{name}", tag = "collections", operation_id = "update_collection",
    params(doc::CollectionPath),
    request_body = doc::UpdateCollection,
    responses((status = 200, description = "Accepted", body = Envelope<bool>)))]
pub async fn update_collection(
    State(st): State<AppState>,
    Path(name): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Response> {
    let t = started();
    let rf = parse_update_collection(body)?;
    st.gw.collection(&name).await?;
    if let Some(replication_factor) = rf {
        st.gw
            .submit(ClusterCommand::SetReplicationFactor {
                collection: name,
                replication_factor,
            })
            .await?;
    }
    Ok(ok(true, t))
}
