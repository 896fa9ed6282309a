//! Test doubles for unit tests: a meta-service serving a fixed map and a
//! shard client answering from a closure.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use protocol::cluster::{ClusterMap, NodeInfo};
use protocol::rpc::{StorageRequest, StorageResponse};
use protocol::{CollectionConfig, Epoch, NodeId};

use crate::client::{CallError, CallFuture, ShardClient};
use crate::map::{MetaApi, MetaFuture};

/// Serves whatever map it currently holds.
pub struct FixedMeta(pub Mutex<ClusterMap>);

impl MetaApi for FixedMeta {
    fn cluster_map(&self) -> MetaFuture<'_, ClusterMap> {
        let m = self.0.lock().clone();
        Box::pin(async move { Ok(m) })
    }
    fn watch(&self, after: Epoch, wait: Duration) -> MetaFuture<'_, Option<ClusterMap>> {
        let m = self.0.lock().clone();
        Box::pin(async move {
            if m.epoch > after {
                Ok(Some(m))
            } else {
                tokio::time::sleep(wait.min(Duration::from_millis(50))).await;
                Ok(None)
            }
        })
    }
    fn create_collection(&self, _: String, _: CollectionConfig) -> MetaFuture<'_, Epoch> {
        Box::pin(async { Err(meta_client::MetaClientError::NoMembers) })
    }
    fn delete_collection(&self, _: String) -> MetaFuture<'_, Epoch> {
        Box::pin(async { Err(meta_client::MetaClientError::NoMembers) })
    }
    fn submit(&self, _: protocol::cluster::ClusterCommand) -> MetaFuture<'_, Epoch> {
        Box::pin(async { Err(meta_client::MetaClientError::NoMembers) })
    }
    fn rebalance(&self) -> MetaFuture<'_, meta_client::RebalanceAck> {
        Box::pin(async { Err(meta_client::MetaClientError::NoMembers) })
    }
}

type Handler = dyn Fn(NodeId, &StorageRequest) -> Result<StorageResponse, CallError> + Send + Sync;

/// Answers every call with `handler(node, request)`, and records the calls.
pub struct FnClient {
    pub handler: Box<Handler>,
    pub calls: Arc<Mutex<Vec<NodeId>>>,
}

impl ShardClient for FnClient {
    fn call(&self, node: &NodeInfo, req: StorageRequest) -> CallFuture {
        self.calls.lock().push(node.id);
        let r = (self.handler)(node.id, &req);
        Box::pin(async move { r })
    }
}
