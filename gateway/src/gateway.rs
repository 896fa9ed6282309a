//! [`Gateway`]: the shared state every request handler works with (map
//! cache, shard client, node health, routing options, counters).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
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

/// The gateway's own counters, read by `/api/cluster/metrics` (Prometheus
/// gets the same events through the `metrics` macros).
#[derive(Default)]
pub struct Counters {
    /// Scatter-gather operations (one per search / scroll / count ...).
    pub fanouts: AtomicU64,
    /// Shard requests those operations sent (hedges and retries included).
    pub shard_requests: AtomicU64,
    pub retries: AtomicU64,
    pub hedges: AtomicU64,
    pub partial_answers: AtomicU64,
    pub stale_map_retries: AtomicU64,
    /// Per-second buckets of shard requests over the last minute.
    window: Mutex<VecDeque<(u64, u64)>>,
}

const WINDOW_SECS: u64 = 60;

impl Counters {
    pub fn shard_request(&self, started: Instant) {
        self.shard_requests.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("gateway_shard_requests_total").increment(1);
        let sec = started.elapsed().as_secs();
        let mut w = self.window.lock();
        match w.back_mut() {
            Some((s, n)) if *s == sec => *n += 1,
            _ => w.push_back((sec, 1)),
        }
        while w.front().is_some_and(|(s, _)| s + WINDOW_SECS < sec) {
            w.pop_front();
        }
    }

    /// Shard requests per second over the last minute (or since start).
    pub fn shard_requests_per_sec(&self, started: Instant) -> f64 {
        let now = started.elapsed().as_secs();
        let w = self.window.lock();
        let n: u64 = w
            .iter()
            .filter(|(s, _)| s + WINDOW_SECS >= now)
            .map(|(_, n)| n)
            .sum();
        let span = (started.elapsed().as_secs_f64()).clamp(1.0, WINDOW_SECS as f64);
        n as f64 / span
    }

    pub fn avg_fanout(&self) -> f32 {
        let f = self.fanouts.load(Ordering::Relaxed);
        if f == 0 {
            0.0
        } else {
            self.shard_requests.load(Ordering::Relaxed) as f32 / f as f32
        }
    }
}

pub struct Gateway {
    pub(crate) maps: Arc<MapCache>,
    pub(crate) client: Arc<dyn ShardClient>,
    pub(crate) health: Health,
    pub(crate) options: RoutingOptions,
    pub(crate) counters: Counters,
    pub(crate) started: Instant,
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
            started: Instant::now(),
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
