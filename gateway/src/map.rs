//! The cached cluster map and where it comes from.
//!
//! [`MetaApi`] is what the gateway needs from the meta-service (implemented
//! by `meta_client::MetaClient`; tests may supply their own). [`MapCache`]
//! holds the current `Arc<ClusterMap>`: a background watch loop long-polls
//! for newer epochs, and a caller that met a stale-epoch answer asks for a
//! refresh ([`MapCache::refresh`]). Epochs only move forward.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use meta_client::{MetaClient, MetaClientError, MetaReadConsistency, RebalanceAck};
use parking_lot::RwLock;
use protocol::cluster::{ClusterCommand, ClusterMap, ClusterStats};
use protocol::{CollectionConfig, Epoch};
use tokio::sync::watch;

/// Longest pause between two failed map watches.
const MAX_WATCH_BACKOFF: Duration = Duration::from_secs(5);

pub type MetaFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, MetaClientError>> + Send + 'a>>;

/// The meta-service operations the gateway uses.
pub trait MetaApi: Send + Sync + 'static {
    /// The current map (linearizable: a refresh must not go backwards).
    fn cluster_map(&self) -> MetaFuture<'_, ClusterMap>;
    /// The map once its epoch passes `after`, or `None` after `wait`.
    fn watch(&self, after: Epoch, wait: Duration) -> MetaFuture<'_, Option<ClusterMap>>;
    fn create_collection(&self, name: String, config: CollectionConfig) -> MetaFuture<'_, Epoch>;
    fn delete_collection(&self, name: String) -> MetaFuture<'_, Epoch>;
    /// Submits an operator's command (move, drain, settings ...): the epoch
    /// it produced, or the state machine's typed refusal.
    fn submit(&self, cmd: ClusterCommand) -> MetaFuture<'_, Epoch>;
    /// Plans and starts a rebalance now.
    fn rebalance(&self) -> MetaFuture<'_, RebalanceAck>;
    /// Replication lag and read load from the meta leader's heartbeats
    /// (test doubles without them answer `NoMembers`).
    fn cluster_stats(&self) -> MetaFuture<'_, ClusterStats> {
        Box::pin(async { Err(MetaClientError::NoMembers) })
    }
}

impl MetaApi for MetaClient {
    fn cluster_map(&self) -> MetaFuture<'_, ClusterMap> {
        Box::pin(async move {
            Ok(
                MetaClient::cluster_map(self, MetaReadConsistency::Linearizable)
                    .await?
                    .map,
            )
        })
    }

    fn watch(&self, after: Epoch, wait: Duration) -> MetaFuture<'_, Option<ClusterMap>> {
        Box::pin(async move { Ok(MetaClient::watch(self, after, wait).await?.map(|v| v.map)) })
    }

    fn create_collection(&self, name: String, config: CollectionConfig) -> MetaFuture<'_, Epoch> {
        Box::pin(async move { MetaClient::create_collection(self, &name, config).await })
    }

    fn delete_collection(&self, name: String) -> MetaFuture<'_, Epoch> {
        Box::pin(async move { MetaClient::delete_collection(self, &name).await })
    }

    fn submit(&self, cmd: ClusterCommand) -> MetaFuture<'_, Epoch> {
        Box::pin(async move { MetaClient::submit(self, &cmd).await })
    }

    fn rebalance(&self) -> MetaFuture<'_, RebalanceAck> {
        Box::pin(async move { MetaClient::rebalance(self).await })
    }

    fn cluster_stats(&self) -> MetaFuture<'_, ClusterStats> {
        Box::pin(async move { MetaClient::cluster_stats(self).await })
    }
}

/// The gateway's copy of the cluster map.
pub struct MapCache {
    meta: Arc<dyn MetaApi>,
    current: RwLock<Arc<ClusterMap>>,
    /// Whether the last contact with the meta-service succeeded.
    meta_ok: RwLock<Option<Instant>>,
    /// Serialises refreshes so that a burst of stale answers costs one fetch.
    refreshing: tokio::sync::Mutex<()>,
    /// The epoch of the cached map, for callers that wait for a change.
    epoch: watch::Sender<Epoch>,
}

impl MapCache {
    pub fn new(meta: Arc<dyn MetaApi>) -> Arc<MapCache> {
        Arc::new(MapCache {
            meta,
            current: RwLock::new(Arc::new(ClusterMap::default())),
            meta_ok: RwLock::new(None),
            refreshing: tokio::sync::Mutex::new(()),
            epoch: watch::channel(Epoch(0)).0,
        })
    }

    pub fn meta(&self) -> &dyn MetaApi {
        self.meta.as_ref()
    }

    /// The map as cached now.
    pub fn get(&self) -> Arc<ClusterMap> {
        self.current.read().clone()
    }

    /// Wakes on every newer map installed (see [`MapCache::offer`]).
    pub fn subscribe(&self) -> watch::Receiver<Epoch> {
        self.epoch.subscribe()
    }

    /// When the meta-service last answered, if ever.
    pub fn meta_last_ok(&self) -> Option<Instant> {
        *self.meta_ok.read()
    }

    /// Installs `map` if it is newer than the cached one.
    pub fn offer(&self, map: ClusterMap) -> Arc<ClusterMap> {
        let mut cur = self.current.write();
        if map.epoch > cur.epoch || (cur.epoch == Epoch(0) && cur.collections.is_empty()) {
            *cur = Arc::new(map);
            metrics::gauge!("gateway_map_epoch").set(cur.epoch.0 as f64);
            self.epoch.send_replace(cur.epoch);
        }
        cur.clone()
    }

    /// Fetches the map from the meta-service unless the cached one is
    /// already at `at_least` (another caller refreshed meanwhile).
    pub async fn refresh(&self, at_least: Epoch) -> Result<Arc<ClusterMap>, MetaClientError> {
        let _one = self.refreshing.lock().await;
        let cur = self.get();
        if cur.epoch >= at_least && at_least > Epoch(0) {
            return Ok(cur);
        }
        metrics::counter!("gateway_map_refreshes_total").increment(1);
        match self.meta.cluster_map().await {
            Ok(map) => {
                *self.meta_ok.write() = Some(Instant::now());
                Ok(self.offer(map))
            }
            Err(e) => Err(e),
        }
    }

    /// Keeps the cache current until `stop` flips: long-polls the
    /// meta-service, backing off (bounded) while it is unreachable.
    pub async fn watch_loop(self: Arc<Self>, mut stop: watch::Receiver<bool>, wait: Duration) {
        let mut backoff = Duration::from_millis(100);
        loop {
            if *stop.borrow() {
                return;
            }
            let after = self.get().epoch;
            // Epoch 0 is "nothing yet": a watch from it answers with the
            // first real map, so one call shape covers start-up too.
            let step = self.meta.watch(after, wait);
            let res = tokio::select! {
                r = step => r,
                _ = stop.changed() => return,
            };
            match res {
                Ok(map) => {
                    *self.meta_ok.write() = Some(Instant::now());
                    backoff = Duration::from_millis(100);
                    if let Some(map) = map {
                        self.offer(map);
                    }
                }
                Err(e) => {
                    // The gateway cannot serve without a map, so it keeps
                    // asking even after a permanent error (a misconfigured
                    // meta address may be fixed by DNS or a restart of the
                    // meta-service), but at once at the slowest pace.
                    backoff = if e.is_transient() {
                        tracing::warn!(error = %e, "cluster map watch failed; retrying");
                        backoff
                    } else {
                        tracing::error!(error = %e, "cluster map watch failed permanently; still retrying");
                        MAX_WATCH_BACKOFF
                    };
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = stop.changed() => return,
                    }
                    backoff = (backoff * 2).min(MAX_WATCH_BACKOFF);
                }
            }
        }
    }
}
