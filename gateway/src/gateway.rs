//! [`Gateway`]: the shared state every request handler works with (map
//! cache, shard client, node health, routing options, counters).

use std::sync::Arc;
use std::time::Duration;

use lifecycle::rate::MinuteCounter;
use protocol::cluster::{ClusterMap, CollectionInfo};
use tokio::sync::watch;

use crate::client::ShardClient;
use crate::error::{GatewayError, Result};
use crate::health::Health;
use crate::map::{MapCache, MetaApi};

/// Routing knobs (the `gateway:` section of the config file).
#[derive(Clone, Debug)]
pub struct RoutingOptions {
    /// Longest one call to one storage node may take.
    pub shard_timeout: Duration,
    /// A read replica that has not answered after this long gets a twin
    /// request on another replica (`None`: no hedging).
    pub hedge_delay: Option<Duration>,
    /// How long a node that failed a call is tried last.
    pub failure_penalty: Duration,
    /// Attempts per shard write (map refresh and backoff in between).
    pub write_attempts: u32,
    /// First backoff between write attempts (doubles each time).
    pub write_backoff: Duration,
    /// How long collection creation waits for every replica to open.
    pub create_wait: Duration,
    /// Long-poll duration of the map watch.
    pub watch_wait: Duration,
}

impl Default for RoutingOptions {
    fn default() -> Self {
        Self {
            shard_timeout: Duration::from_secs(10),
            hedge_delay: Some(Duration::from_millis(200)),
            failure_penalty: Duration::from_secs(5),
            write_attempts: 6,
            write_backoff: Duration::from_millis(50),
            create_wait: Duration::from_secs(10),
            // Short: a long poll held by a member that was cut off delays
            // the gateway's view by up to this much plus the client timeout.
            watch_wait: Duration::from_secs(10),
        }
    }
}

/// The events `/api/cluster/metrics` shows as rates. Each is counted once,
/// here, into the Prometheus counter and the last minute's window the JSON
/// endpoint reads (the other events go to Prometheus only).
#[derive(Default)]
pub struct Counters {
    /// Scatter-gather operations (one per search / scroll / count ...).
    fanouts: MinuteCounter,
    /// Shard requests sent: reads (hedges and retries included) and writes.
    shard_requests: MinuteCounter,
    /// Shard requests sent by those scatter-gathers.
    fanout_requests: MinuteCounter,
}

impl Counters {
    /// A read sent to one replica as part of a scatter-gather.
    pub fn read_request(&self) {
        self.fanout_requests.add(1);
        self.shard_request();
    }

    pub fn shard_request(&self) {
        self.shard_requests.add(1);
        metrics::counter!("gateway_shard_requests_total").increment(1);
    }

    pub fn fanout(&self, shards: usize) {
        self.fanouts.add(1);
        metrics::histogram!("gateway_fanout_shards").record(shards as f64);
    }

    /// Shard requests per second over the last minute (or since start).
    pub fn shard_requests_per_sec(&self) -> f64 {
        self.shard_requests.per_sec()
    }

    /// Replicas asked per scatter-gather over the last minute.
    pub fn avg_fanout(&self) -> f32 {
        let f = self.fanouts.last_minute();
        if f == 0 {
            0.0
        } else {
            (self.fanout_requests.last_minute() as f64 / f as f64) as f32
        }
    }
}

pub struct Gateway {
    pub(crate) maps: Arc<MapCache>,
    pub(crate) client: Arc<dyn ShardClient>,
    pub(crate) health: Health,
    pub(crate) options: RoutingOptions,
    pub(crate) counters: Counters,
    stop: watch::Sender<bool>,
    /// The map watch, joined by [`Gateway::close`].
    watch: parking_lot::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Gateway {
    /// A gateway over `meta` and `client`, with its map watch running in
    /// the current Tokio runtime until [`Gateway::shutdown`] (or drop).
    pub fn new(
        meta: Arc<dyn MetaApi>,
        client: Arc<dyn ShardClient>,
        options: RoutingOptions,
    ) -> Arc<Gateway> {
        let maps = MapCache::new(meta);
        let (stop, stop_rx) = watch::channel(false);
        let watch = tokio::spawn(maps.clone().watch_loop(stop_rx, options.watch_wait));
        Arc::new(Gateway {
            maps,
            client,
            health: Health::new(options.failure_penalty),
            options,
            counters: Counters::default(),
            stop,
            watch: parking_lot::Mutex::new(Some(watch)),
        })
    }

    pub fn options(&self) -> &RoutingOptions {
        &self.options
    }

    pub fn map(&self) -> Arc<ClusterMap> {
        self.maps.get()
    }

    pub fn maps(&self) -> &MapCache {
        &self.maps
    }

    /// Tells the map watch to stop (see [`Gateway::close`] to wait for it).
    pub fn shutdown(&self) {
        let _ = self.stop.send(true);
    }

    /// Stops the map watch and returns once it has ended.
    pub async fn close(&self) {
        self.shutdown();
        let watch = self.watch.lock().take();
        if let Some(w) = watch {
            let _ = w.await;
        }
    }

    /// The map and the named collection; a collection missing from the
    /// cached map triggers one refresh (it may have been created through
    /// another gateway) before the 404.
    pub async fn collection(&self, name: &str) -> Result<(Arc<ClusterMap>, CollectionInfo)> {
        let map = self.maps.get();
        if let Some(c) = map.collections.get(name) {
            return Ok((map.clone(), c.clone()));
        }
        let map = self
            .maps
            .refresh(protocol::Epoch(0))
            .await
            .map_err(GatewayError::from)?;
        match map.collections.get(name) {
            Some(c) => Ok((map.clone(), c.clone())),
            None => Err(GatewayError::CollectionNotFound {
                name: name.to_string(),
            }),
        }
    }
}

impl Gateway {
    /// The collection `name` stands for when it is an alias; `None` when
    /// it is a collection's own name or unknown. A name the cached map does
    /// not know triggers one refresh (the alias may have been made through
    /// another gateway); a failed refresh counts as unknown, and the route
    /// then answers for the name as given.
    pub async fn alias_target(&self, name: &str) -> Option<String> {
        let map = self.maps.get();
        if map.collections.contains_key(name) {
            return None;
        }
        if let Some(c) = map.aliases.get(name) {
            return Some(c.clone());
        }
        let map = self.maps.refresh(protocol::Epoch(0)).await.ok()?;
        map.aliases.get(name).cloned()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}
