//! Qdrant's `POST /collections/{name}/cluster` bodies (`ClusterOperations`,
//! as `qdrant-client`'s `cluster_collection_update` sends them) and the
//! `PATCH /collections/{name}` body (`UpdateCollection`). Peer ids are our
//! storage node ids.

use protocol::cluster::TransferKind;
use protocol::{NodeId, ShardId};
use serde::Deserialize;
use serde_json::Value;

use super::{parse, strip_nulls};
use crate::error::{GatewayError, Result};

/// One cluster operation on a collection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClusterOp {
    /// `move_shard` / `replicate_shard`.
    Transfer {
        shard: ShardId,
        from: NodeId,
        to: NodeId,
        kind: TransferKind,
    },
    AbortTransfer {
        shard: ShardId,
        from: NodeId,
        to: NodeId,
    },
    DropReplica {
        shard: ShardId,
        peer: NodeId,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TransferIn {
    shard_id: u32,
    from_peer_id: u64,
    to_peer_id: u64,
    #[serde(default)]
    method: Option<String>,
    /// Resharding only; we do not reshard.
    #[serde(default)]
    to_shard_id: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AbortIn {
    shard_id: u32,
    from_peer_id: u64,
    to_peer_id: u64,
    #[serde(default)]
    to_shard_id: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DropIn {
    shard_id: u32,
    peer_id: u64,
}

/// Every Qdrant transfer method is carried out the same way here: a
/// streamed snapshot, then the WAL written meanwhile, then verification.
const METHODS: [&str; 3] = ["stream_records", "snapshot", "wal_delta"];

fn no_resharding(to_shard_id: Option<u32>, shard_id: u32) -> Result<()> {
    match to_shard_id {
        Some(t) if t != shard_id => Err(GatewayError::bad_request(
            "to_shard_id: resharding is not supported (a transfer keeps its shard id)",
        )),
        _ => Ok(()),
    }
}

pub fn parse_cluster_op(mut body: Value) -> Result<ClusterOp> {
    strip_nulls(&mut body);
    let Value::Object(obj) = body else {
        return Err(GatewayError::bad_request(
            "expected a JSON object with one cluster operation",
        ));
    };
    let mut ops = obj.into_iter();
    let (Some((name, inner)), None) = (ops.next(), ops.next()) else {
        return Err(GatewayError::bad_request(
            "expected exactly one of move_shard, replicate_shard, abort_transfer, drop_replica",
        ));
    };
    match name.as_str() {
        "move_shard" | "replicate_shard" => {
            let t: TransferIn = parse(inner, &name)?;
            if let Some(m) = t.method.as_deref() {
                if !METHODS.contains(&m) {
                    return Err(GatewayError::bad_request(format!(
                        "{name}.method: `{m}` is not supported (one of {})",
                        METHODS.join(", ")
                    )));
                }
            }
            no_resharding(t.to_shard_id, t.shard_id)?;
            if t.from_peer_id == t.to_peer_id {
                return Err(GatewayError::bad_request(format!(
                    "{name}: from_peer_id and to_peer_id are both {}",
                    t.from_peer_id
                )));
            }
            let kind = if name == "move_shard" {
                TransferKind::Move
            } else {
                TransferKind::Replicate
            };
            Ok(ClusterOp::Transfer {
                shard: ShardId(t.shard_id),
                from: NodeId(t.from_peer_id),
                to: NodeId(t.to_peer_id),
                kind,
            })
        }
        "abort_transfer" => {
            let a: AbortIn = parse(inner, &name)?;
            no_resharding(a.to_shard_id, a.shard_id)?;
            Ok(ClusterOp::AbortTransfer {
                shard: ShardId(a.shard_id),
                from: NodeId(a.from_peer_id),
                to: NodeId(a.to_peer_id),
            })
        }
        "drop_replica" => {
            let d: DropIn = parse(inner, &name)?;
            Ok(ClusterOp::DropReplica {
                shard: ShardId(d.shard_id),
                peer: NodeId(d.peer_id),
            })
        }
        "create_sharding_key"
        | "drop_sharding_key"
        | "restart_transfer"
        | "start_resharding"
        | "abort_resharding"
        | "replicate_points" => Err(GatewayError::bad_request(format!(
            "{name} is not supported by this cluster"
        ))),
        other => Err(GatewayError::bad_request(format!(
            "unknown cluster operation `{other}`"
        ))),
    }
}

/// The replication factor a `PATCH /collections/{name}` body asks for
/// (`params.replication_factor`), `None` for an empty update. Anything
/// else this cluster cannot change is refused rather than ignored.
pub fn parse_update_collection(mut body: Value) -> Result<Option<u32>> {
    strip_nulls(&mut body);
    let Value::Object(mut obj) = body else {
        return Err(GatewayError::bad_request("expected a JSON object"));
    };
    let rf = match obj.remove("params") {
        None => None,
        Some(Value::Object(mut params)) => {
            let rf = params.remove("replication_factor");
            if let Some(k) = params.keys().next() {
                return Err(unsupported(&format!("params.{k}")));
            }
            match rf {
                None => None,
                Some(v) => match v.as_u64().and_then(|n| u32::try_from(n).ok()) {
                    Some(n) if n >= 1 => Some(n),
                    _ => {
                        return Err(GatewayError::bad_request(format!(
                            "params.replication_factor must be an integer ≥ 1, got {v}"
                        )))
                    }
                },
            }
        }
        Some(_) => return Err(GatewayError::bad_request("params must be an object")),
    };
    // Empty sections are what some clients send for "no change".
    let changed = obj
        .iter()
        .find(|(_, v)| !matches!(v, Value::Object(o) if o.is_empty()));
    if let Some((k, _)) = changed {
        return Err(unsupported(k));
    }
    Ok(rf)
}

fn unsupported(what: &str) -> GatewayError {
    GatewayError::bad_request(format!(
        "`{what}` cannot be changed on this cluster; only params.replication_factor can"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn qdrant_client_bodies() {
        let op = parse_cluster_op(json!({"move_shard": {"shard_id": 2, "from_peer_id": 1, "to_peer_id": 4, "method": null}})).unwrap();
        assert_eq!(
            op,
            ClusterOp::Transfer {
                shard: ShardId(2),
                from: NodeId(1),
                to: NodeId(4),
                kind: TransferKind::Move
            }
        );
        let op = parse_cluster_op(json!({"replicate_shard": {"shard_id": 0, "from_peer_id": 3, "to_peer_id": 1, "method": "snapshot"}})).unwrap();
        assert!(matches!(
            op,
            ClusterOp::Transfer {
                kind: TransferKind::Replicate,
                ..
            }
        ));
        let op = parse_cluster_op(
            json!({"abort_transfer": {"shard_id": 1, "from_peer_id": 1, "to_peer_id": 2}}),
        )
        .unwrap();
        assert_eq!(
            op,
            ClusterOp::AbortTransfer {
                shard: ShardId(1),
                from: NodeId(1),
                to: NodeId(2)
            }
        );
        let op = parse_cluster_op(json!({"drop_replica": {"shard_id": 1, "peer_id": 3}})).unwrap();
        assert_eq!(
            op,
            ClusterOp::DropReplica {
                shard: ShardId(1),
                peer: NodeId(3)
            }
        );
    }

    #[test]
    fn bad_bodies_say_what_is_wrong() {
        let err = |v: Value| parse_cluster_op(v).unwrap_err().to_string();
        assert!(err(json!({})).contains("exactly one"));
        assert!(
            err(json!({"move_shard": {"shard_id": 1, "from_peer_id": 1, "to_peer_id": 1}}))
                .contains("both 1")
        );
        assert!(
            err(json!({"move_shard": {"shard_id": 1, "from_peer_id": 1}})).contains("to_peer_id")
        );
        assert!(err(json!({"move_shard": {"shard_id": 1, "from_peer_id": 1, "to_peer_id": 2, "method": "carrier_pigeon"}}))
            .contains("not supported"));
        assert!(err(json!({"move_shard": {"shard_id": 1, "from_peer_id": 1, "to_peer_id": 2, "to_shard_id": 3}}))
            .contains("resharding"));
        assert!(err(json!({"start_resharding": {}})).contains("not supported"));
        assert!(err(json!({"teleport": {}})).contains("unknown"));
        assert!(
            err(json!({"drop_replica": {"shard_id": -1, "peer_id": 3}})).contains("drop_replica")
        );
    }

    #[test]
    fn update_collection_takes_the_replication_factor_only() {
        assert_eq!(
            parse_update_collection(json!({"params": {"replication_factor": 3, "write_consistency_factor": null}, "optimizers_config": null})).unwrap(),
            Some(3)
        );
        assert_eq!(parse_update_collection(json!({})).unwrap(), None);
        assert_eq!(
            parse_update_collection(json!({"optimizers_config": {}})).unwrap(),
            None
        );
        for bad in [
            json!({"params": {"replication_factor": 0}}),
            json!({"params": {"replication_factor": "two"}}),
            json!({"params": {"write_consistency_factor": 2}}),
            json!({"optimizers_config": {"indexing_threshold": 0}}),
            json!([1]),
        ] {
            assert!(parse_update_collection(bad.clone()).is_err(), "{bad}");
        }
    }
}
