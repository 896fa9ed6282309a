//! Collection administration through the meta-service, and waiting until
//! the cluster has acted on it.

use std::time::Instant;

use protocol::rpc::{ShardRef, StorageRequest, StorageResponse};
use protocol::{CollectionConfig, Epoch, ValidationError};

use crate::error::{GatewayError, Result};
use crate::gateway::Gateway;

impl Gateway {
    /// Creates the collection, then waits (bounded by `create_wait`) until
    /// this gateway's map has it and every replica answers, so that writes
    /// right after creation find their shards open. Returns once created
    /// even if some replica is still opening (writes retry meanwhile).
    pub async fn create_collection(&self, name: &str, config: CollectionConfig) -> Result<()> {
        config.validate()?;
        // The HTTP layer checked already (`api::aliases::resolve`); this
        // covers callers that are not HTTP (standalone, tools).
        protocol::names::validate_collection_name(name).map_err(ValidationError::from)?;
        let epoch = self
            .maps
            .meta()
            .create_collection(name.to_string(), config)
            .await?;
        let map = self.maps.refresh(epoch).await?;
        let deadline = Instant::now() + self.options.create_wait;
        let Some(coll) = map.collections.get(name) else {
            return Ok(());
        };
        for shard in coll.shards.values() {
            for node in shard.nodes() {
                let Some(info) = map.nodes.get(&node) else {
                    continue;
                };
                // Bounded by the deadline, checked before every call: with
                // many replicas that each answer at once, the calls alone
                // outlasted the request timeout (a 504 after the collection
                // was created: 1,024 shards × 3 replicas, limits the OpenAPI
                // document states, took 30+ s on a debug build).
                loop {
                    if Instant::now() >= deadline {
                        tracing::warn!(
                            collection = name,
                            "replicas not all checked yet; returning anyway"
                        );
                        return Ok(());
                    }
                    let req = StorageRequest::Status {
                        shard: ShardRef {
                            collection: name.to_string(),
                            shard: shard.id,
                        },
                    };
                    let res = tokio::time::timeout(
                        self.options
                            .shard_timeout
                            .min(deadline.saturating_duration_since(Instant::now())),
                        self.client.call(info, req),
                    )
                    .await;
                    if matches!(res, Ok(Ok(StorageResponse::Status { .. }))) {
                        break;
                    }
                    if Instant::now() >= deadline {
                        tracing::warn!(collection = name, shard = %shard.id, node = %node, "replica not open yet; returning anyway");
                        return Ok(());
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
            }
        }
        Ok(())
    }

    /// Deletes the collection; `false` if there was none.
    pub async fn delete_collection(&self, name: &str) -> Result<bool> {
        match self.maps.meta().delete_collection(name.to_string()).await {
            Ok(epoch) => {
                self.maps.refresh(epoch).await?;
                Ok(true)
            }
            Err(e) => match GatewayError::from(e) {
                GatewayError::CollectionNotFound { .. } => {
                    self.maps.refresh(Epoch(0)).await?;
                    Ok(false)
                }
                other => Err(other),
            },
        }
    }
}
