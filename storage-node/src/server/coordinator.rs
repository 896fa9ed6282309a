//! The node's [`Coordinator`] (what a transfer's executor asks of the
//! meta-service) over the server's `MetaClient`.

use std::time::Duration;

use meta_client::{MetaClient, MetaClientError, MetaReadConsistency};
use protocol::cluster::{ClusterCommand, ClusterMap};
use protocol::Epoch;

use crate::node::{Coordinator, CoordinatorFuture, SubmitError};

pub struct MetaCoordinator {
    meta: MetaClient,
}

impl MetaCoordinator {
    pub fn new(meta: MetaClient) -> Self {
        // Progress reports and switches are retried by their callers.
        MetaCoordinator {
            meta: meta
                .with_timeout(Duration::from_secs(3))
                .with_retry_for(Duration::from_secs(2)),
        }
    }
}

fn submit_error(e: MetaClientError) -> SubmitError {
    match e {
        MetaClientError::Refused(r) => SubmitError::Refused(r),
        e if e.nothing_applied() => SubmitError::NotSent(e.to_string()),
        e => SubmitError::Unknown(e.to_string()),
    }
}

impl Coordinator for MetaCoordinator {
    fn submit(&self, cmd: ClusterCommand) -> CoordinatorFuture<Result<Epoch, SubmitError>> {
        let meta = self.meta.clone();
        Box::pin(async move { meta.submit(&cmd).await.map_err(submit_error) })
    }

    fn current_map(&self) -> CoordinatorFuture<Result<ClusterMap, String>> {
        let meta = self.meta.clone();
        Box::pin(async move {
            meta.cluster_map(MetaReadConsistency::Linearizable)
                .await
                .map(|v| v.map)
                .map_err(|e| e.to_string())
        })
    }
}
