//! A storage node's data plane: the shard replicas it holds, the write path
//! of the shards it leads (order, log, replicate, count acknowledgements)
//! and the replica side of replication (apply in order, refuse old terms,
//! catch up from a WAL delta or a snapshot).
//!
//! ```text
//!                  Write ──▶ primary: check map, term, lease
//!                              │ apply locally (WAL fsync)
//!                              ▼
//!        ┌──── replicator per peer (ordered stream) ────┐
//!        │ sync: Status → prefix? ─ yes ─▶ WAL delta    │
//!        │                  └─ no / WAL gone ─▶ snapshot │
//!        │ stream: Replicate{term, ops} ─▶ Replicated    │
//!        │   (a few batches in flight, from the WAL tail) │
//!        └──────────────── acked seq ───────────────────┘
//!                              │ enough Active replicas acked?
//!                              ▼
//!                  Written{seq, acks}  or  ConsistencyNotMet
//! ```
//!
//! A write needs acknowledgements from the consistency level's share of
//! the `Active` replicas only: a replica being filled (`Initializing`)
//! counts neither way (`handler.rs`, test
//! `transfer::snapshot::a_replica_being_filled_is_not_in_the_write_quorum`).
//!
//! Shard transfers are executed by the shard's primary on its stream to
//! the target: paged snapshot, WAL delta, verify, switch with writes held
//! (`replicator.rs`, `switch.rs`), progress reported through a
//! [`Coordinator`] and shown by [`Node::transfers`] (`transfer.rs`).
//!
//! Transport-agnostic: outbound calls go through [`Peers`] (QUIC in the
//! binary, in-process in tests) and the meta-service through
//! [`Coordinator`]; inbound requests arrive at [`Node::handle`].

mod handler;
mod leadership;
mod lease;
mod peer_call;
mod replica;
mod replicator;
mod snapshot_send;
mod switch;
mod transfer;

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;
use protocol::cluster::ClusterMap;
use protocol::names::{validate_collection_name, InvalidName};
use protocol::rpc::{ShardRef, StorageRequest, StorageResponse};
use protocol::NodeId;
pub use transport::CallError;

pub use leadership::PeerLag;
pub use lease::Lease;
pub use replica::LocalReplica;
pub use transfer::{
    export_metrics as export_transfer_metrics, now_ms, pace, Coordinator, CoordinatorFuture, Pacer,
    SubmitError, TransferProgress,
};

use crate::shard::ShardOptions;

/// Outbound requests to other storage nodes.
///
/// `Err` only when no answer came back, as the [`CallError`] that says
/// why (the same type the gateway's shard client returns); a refusal from
/// the peer is an `Ok(StorageResponse::Error)`. The replicator reads
/// [`CallError::is_transient`] to decide how soon to try the peer again.
pub trait Peers: Send + Sync + 'static {
    fn call(&self, node: NodeId, request: StorageRequest) -> PeerFuture;
}

pub type PeerFuture = Pin<Box<dyn Future<Output = Result<StorageResponse, CallError>> + Send>>;

#[derive(Clone, Debug)]
pub struct NodeOptions {
    pub shard: ShardOptions,
    /// How long a write waits for the required acknowledgements.
    pub write_timeout: Duration,
    /// Largest number of operations in one `Replicate` message.
    pub replicate_batch: usize,
    /// Largest `Replicate` message in encoded operation bytes (one larger
    /// operation still goes alone): bounds the encoding and decoding done
    /// on the runtime's threads per message.
    pub replicate_bytes: usize,
    /// `Replicate` messages in flight per peer: replication keeps up with
    /// the primary's writes without waiting a round trip and a replica
    /// fsync per batch.
    pub replicate_window: usize,
    /// Points per `InstallSnapshot` chunk at most.
    pub snapshot_chunk: usize,
    /// Bytes per `InstallSnapshot` chunk at most (about: vectors, ids,
    /// payloads; one larger point still goes alone). With `snapshot_chunk`
    /// it bounds what either end holds of a snapshot at once.
    pub snapshot_chunk_bytes: usize,
    /// Pause before a replicator retries an unreachable peer.
    pub retry_backoff: Duration,
}

/// How many `retry_backoff`s a replicator holds off a peer after a
/// permanent call error (10 s with the default 200 ms).
const PERMANENT_FAILURE_BACKOFFS: u32 = 50;

impl NodeOptions {
    /// How long a replicator waits, on top of `retry_backoff`, before it
    /// calls a peer again after `e`. Nothing for a transient error (the
    /// peer restarting, a lost connection: the next sync may work). Long
    /// for a permanent one (certificate refused, a message the peer cannot
    /// decode): nothing changes until someone acts, and a retry every
    /// `retry_backoff` would only repeat the handshake, or read a whole
    /// snapshot again, to fail the same way. Still finite, so replication
    /// resumes by itself once certificates or versions are fixed.
    pub(crate) fn pause_after(&self, e: &CallError) -> Duration {
        if e.is_transient() {
            Duration::ZERO
        } else {
            self.retry_backoff
                .saturating_mul(PERMANENT_FAILURE_BACKOFFS)
        }
    }
}

impl Default for NodeOptions {
    fn default() -> Self {
        Self {
            shard: ShardOptions::default(),
            write_timeout: Duration::from_secs(5),
            replicate_batch: 64,
            replicate_bytes: 4 << 20,
            replicate_window: 4,
            snapshot_chunk: 2_000,
            snapshot_chunk_bytes: 2 << 20,
            retry_backoff: Duration::from_millis(200),
        }
    }
}

pub struct Node {
    id: NodeId,
    data_dir: PathBuf,
    options: NodeOptions,
    peers: Arc<dyn Peers>,
    map: RwLock<Arc<ClusterMap>>,
    replicas: RwLock<HashMap<ShardRef, Arc<LocalReplica>>>,
    lease: Lease,
    /// Transfers this node executes (as the shard's primary).
    transfers: transfer::Transfers,
    /// The meta-service, for transfer reports and switches (set by the
    /// server layer).
    coordinator: RwLock<Option<Arc<dyn Coordinator>>>,
    /// Set once replica directories the first map does not assign here
    /// were removed (see [`Node::apply_map`]).
    swept: std::sync::atomic::AtomicBool,
    /// Shard reads served (searches, gets, scrolls, counts), reported in
    /// heartbeats.
    reads: lifecycle::rate::MinuteCounter,
    /// An operator removed this node from the map (it may not register
    /// again with this data directory).
    removed: std::sync::atomic::AtomicBool,
}

impl Node {
    pub fn new(
        id: NodeId,
        data_dir: PathBuf,
        options: NodeOptions,
        peers: Arc<dyn Peers>,
        lease: Lease,
    ) -> Arc<Node> {
        Arc::new(Node {
            id,
            data_dir,
            options,
            peers,
            map: RwLock::new(Arc::new(ClusterMap::default())),
            replicas: RwLock::new(HashMap::new()),
            lease,
            transfers: transfer::Transfers::default(),
            coordinator: RwLock::new(None),
            swept: std::sync::atomic::AtomicBool::new(false),
            reads: lifecycle::rate::MinuteCounter::default(),
            removed: std::sync::atomic::AtomicBool::new(false),
        })
    }

    pub fn mark_removed(&self) {
        self.removed
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn is_removed(&self) -> bool {
        self.removed.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Shard reads served in the last minute.
    pub fn reads_last_minute(&self) -> u64 {
        self.reads.last_minute()
    }

    pub fn id(&self) -> NodeId {
        self.id
    }

    /// Where this node keeps its shards.
    pub fn data_dir(&self) -> &std::path::Path {
        &self.data_dir
    }

    pub fn map(&self) -> Arc<ClusterMap> {
        self.map.read().clone()
    }

    pub fn lease(&self) -> &Lease {
        &self.lease
    }

    pub fn replica(&self, shard: &ShardRef) -> Option<Arc<LocalReplica>> {
        self.replicas.read().get(shard).cloned()
    }

    pub fn replicas(&self) -> Vec<Arc<LocalReplica>> {
        self.replicas.read().values().cloned().collect()
    }

    /// Adopts a newer cluster map: opens the replicas assigned here, starts
    /// or stops replication for the shards this node leads, closes the
    /// replicas no longer assigned. Older maps are ignored.
    pub async fn apply_map(self: &Arc<Self>, map: ClusterMap) {
        if map.epoch < self.map.read().epoch {
            return;
        }
        let map = Arc::new(map);
        *self.map.write() = map.clone();
        let mut wanted = Vec::new();
        for (name, coll) in &map.collections {
            for (sid, info) in &coll.shards {
                if info.holds(self.id) {
                    wanted.push((
                        ShardRef {
                            collection: name.clone(),
                            shard: *sid,
                        },
                        coll.config.clone(),
                        info.clone(),
                        coll.created_epoch,
                    ));
                }
            }
        }
        for (shard_ref, config, info, incarnation) in wanted {
            // Same name, another collection (deleted and created again):
            // the old replica's data must not serve the new one.
            let existing = match self.replica(&shard_ref) {
                Some(r) if r.incarnation != incarnation => {
                    self.drop_replica(&shard_ref);
                    None
                }
                other => other,
            };
            let replica = match existing {
                Some(r) => r,
                None => {
                    let dir = match self.replica_dir(&shard_ref, incarnation) {
                        Ok(dir) => dir,
                        Err(e) => {
                            tracing::error!(shard = ?shard_ref, error = %e, "refusing to open a replica");
                            continue;
                        }
                    };
                    let opts = self.options.shard.clone();
                    let sr = shard_ref.clone();
                    let opened = tokio::task::spawn_blocking(move || {
                        LocalReplica::open(sr, dir, config, opts, incarnation)
                    })
                    .await;
                    match opened {
                        Ok(Ok(r)) => {
                            let r = Arc::new(r);
                            self.replicas.write().insert(shard_ref.clone(), r.clone());
                            r
                        }
                        Ok(Err(e)) => {
                            tracing::error!(shard = ?shard_ref, error = %e, "cannot open replica");
                            continue;
                        }
                        Err(e) => {
                            tracing::error!(shard = ?shard_ref, error = %e, "replica open task failed");
                            continue;
                        }
                    }
                }
            };
            if let Some(coll) = map.collections.get(&shard_ref.collection) {
                replica.set_payload_indexes(&coll.config.payload_indexes);
            }
            replica.observe_term(info.term);
            if info.primary == Some(self.id) {
                let peers: Vec<NodeId> = info.nodes().filter(|n| *n != self.id).collect();
                for stream in replica.lead(info.term, &peers) {
                    tokio::spawn(replicator::run(self.clone(), replica.clone(), stream));
                }
            } else {
                replica.follow();
            }
        }
        let gone: Vec<ShardRef> = self
            .replicas
            .read()
            .keys()
            .filter(|s| {
                !map.shard(&s.collection, s.shard)
                    .is_some_and(|i| i.holds(self.id))
            })
            .cloned()
            .collect();
        for shard_ref in gone {
            self.drop_replica(&shard_ref);
        }
        if !self.swept.swap(true, std::sync::atomic::Ordering::SeqCst) {
            // Judged on the leader's current map when there is a
            // meta-service: a lagging member's older map could lack an
            // assignment this node's data already belongs to.
            let current = match self.coordinator() {
                Some(c) => c.current_map().await.ok().filter(|m| m.epoch >= map.epoch),
                None => Some((*map).clone()),
            };
            match current {
                Some(m) => self.sweep_unassigned(&m).await,
                None => self.swept.store(false, std::sync::atomic::Ordering::SeqCst),
            }
        }
    }

    /// After a restart, once a map is known: removes replica directories
    /// of shards the map does not assign here (dropped while this node was
    /// down, e.g. an aborted transfer's target or a moved source). Never a
    /// directory of a replica this node holds or the map assigns it.
    async fn sweep_unassigned(&self, map: &ClusterMap) {
        let mut keep = std::collections::HashSet::new();
        for (name, coll) in &map.collections {
            for (sid, info) in &coll.shards {
                if info.holds(self.id) {
                    let r = ShardRef {
                        collection: name.clone(),
                        shard: *sid,
                    };
                    keep.extend(self.replica_dir(&r, coll.created_epoch).ok());
                }
            }
        }
        for r in self.replicas() {
            keep.extend(self.replica_dir(&r.shard_ref, r.incarnation).ok());
        }
        let root = self.data_dir.join("collections");
        let dropped = self.data_dir.join(DROPPED_DIR);
        let epoch = map.epoch;
        let swept = tokio::task::spawn_blocking(move || {
            let mut removed = sweep(&root, &keep, epoch);
            removed.extend(sweep_dropped(&dropped));
            removed
        })
        .await;
        if let Ok(removed) = swept {
            for dir in removed {
                tracing::info!(dir = %dir.display(), "removed replica data the cluster map does not assign here");
            }
        }
    }

    /// [`Node::apply_map`] as a boxed future: the replicator (which
    /// `apply_map` starts) adopts the map a transfer's switch produced,
    /// and the two future types may not contain each other.
    pub(crate) fn apply_map_boxed(
        self: &Arc<Self>,
        map: ClusterMap,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(self.apply_map(map))
    }

    /// Closes every replica for shutdown: replication stops, then each
    /// shard stops its background work (an index build is interrupted and
    /// resumes after a restart), syncs its WAL and joins its threads.
    /// Returns once all are closed. Requests that still reach the node
    /// afterwards find closed shards; the caller stops serving first.
    /// Tells every replica's background work (index builds, merges) to stop
    /// now, without waiting: shutdown calls it first, before draining.
    pub fn stop_background(&self) {
        for r in self.replicas() {
            r.shard().stop_background();
        }
    }

    pub async fn close(&self) {
        let replicas = self.replicas();
        for r in &replicas {
            r.follow();
        }
        let shards: Vec<_> = replicas
            .iter()
            .map(|r| (r.shard_ref.clone(), r.shard()))
            .collect();
        let closed = tokio::task::spawn_blocking(move || {
            for (shard_ref, shard) in shards {
                if let Err(e) = shard.close() {
                    tracing::error!(shard = ?shard_ref, error = %e, "closing replica failed");
                }
            }
        })
        .await;
        if let Err(e) = closed {
            tracing::error!(error = %e, "closing replicas panicked");
        }
    }

    /// `<data>/collections/<name>/<incarnation>-<shard>`. The collection
    /// name becomes a path component, so it must pass the cluster's one
    /// name rule: a name that does not (a map written by an older, looser
    /// meta-service, or a forged one) is refused, never sanitised, and
    /// its replica is not opened.
    fn replica_dir(
        &self,
        shard: &ShardRef,
        incarnation: protocol::Epoch,
    ) -> Result<PathBuf, InvalidName> {
        validate_collection_name(&shard.collection)?;
        Ok(self
            .data_dir
            .join("collections")
            .join(&shard.collection)
            .join(format!("{}-{}", incarnation.0, shard.shard)))
    }

    /// Closes a replica no longer assigned here (or of a deleted
    /// collection) and deletes its data once the last user lets go.
    ///
    /// The directory is renamed to a tombstone under `dropped/` at once:
    /// the same shard may be assigned back before the last user lets go
    /// (in-flight requests, a replicator, up to 30 s), and its new replica
    /// must open a fresh directory, not the old files (still open here) nor
    /// have its own files deleted under it later.
    fn drop_replica(&self, shard: &ShardRef) {
        let Some(r) = self.replicas.write().remove(shard) else {
            return;
        };
        r.follow();
        // No index build or merge may write into the directory once it is
        // renamed (they would not find it; the shard keeps its files open).
        r.shard().stop_background();
        // Opening checked the same name rule, so an open replica's name
        // always passes; nothing on disk to move otherwise.
        let Ok(dir) = self.replica_dir(shard, r.incarnation) else {
            return;
        };
        let tomb = self.tombstone_dir(shard, r.incarnation);
        let doomed = match tomb
            .parent()
            .map(std::fs::create_dir_all)
            .unwrap_or(Ok(()))
            .and_then(|()| std::fs::rename(&dir, &tomb))
        {
            Ok(()) => tomb,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !dir.exists() => {
                tracing::info!(shard = ?shard, "replica no longer assigned here; it had no data");
                return;
            }
            Err(e) => {
                // Deleting in place is the old behaviour, with its race;
                // better than keeping data the map does not assign here.
                tracing::warn!(dir = %dir.display(), error = %e, "could not move replica data aside; deleting it in place");
                dir
            }
        };
        tracing::info!(shard = ?shard, dir = %doomed.display(), "replica no longer assigned here; removing it");
        tokio::task::spawn_blocking(move || {
            // Wait (bounded) for in-flight requests and replicators to let go,
            // so the shard closes before its files go.
            let _ = close_when_released(r, Duration::from_millis(50));
            match std::fs::remove_dir_all(&doomed) {
                Ok(()) => {}
                // The restart sweep may have removed it first.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!(dir = %doomed.display(), error = %e, "could not remove replica data")
                }
            }
        });
    }

    /// The shards whose WAL refuses writes after a failed write or fsync.
    /// While poisoned a primary answers writes `Unavailable` and reports it
    /// in its heartbeats, and the controller promotes another replica.
    pub fn poisoned(&self) -> Vec<ShardRef> {
        self.replicas()
            .iter()
            .filter(|r| r.shard().is_poisoned())
            .map(|r| r.shard_ref.clone())
            .collect()
    }

    /// Reopens every poisoned replica whose disk takes a probe write and
    /// fsync again (space came back, the device recovered): the reopen
    /// replays the WAL and cuts a torn tail, exactly as a restart would,
    /// and the replica then leads or follows as the map says. Returns the
    /// shards reopened. The server calls it after every heartbeat.
    pub async fn reopen_poisoned(self: &Arc<Self>) -> Vec<ShardRef> {
        let mut reopened = Vec::new();
        for r in self.replicas() {
            let shard = r.shard();
            if !shard.is_poisoned() {
                continue;
            }
            let probe = tokio::task::spawn_blocking(move || shard.probe_disk()).await;
            match probe {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::warn!(shard = ?r.shard_ref, error = %e, "WAL poisoned and the disk still fails a probe write");
                    continue;
                }
                Err(_) => continue,
            }
            let shard_ref = r.shard_ref.clone();
            if self.reopen(r).await {
                tracing::info!(shard = ?shard_ref, "WAL poisoned: the disk takes writes again; replica reopened");
                reopened.push(shard_ref);
            }
        }
        if !reopened.is_empty() {
            // Lead or follow again under the current map.
            let map = (*self.map()).clone();
            self.apply_map(map).await;
        }
        reopened
    }

    /// Closes `r` once nothing else holds it and opens its directory again.
    async fn reopen(self: &Arc<Self>, r: Arc<LocalReplica>) -> bool {
        // Always Ok for an open replica (opening checked the name).
        let Ok(dir) = self.replica_dir(&r.shard_ref, r.incarnation) else {
            return false;
        };
        {
            let mut replicas = self.replicas.write();
            match replicas.get(&r.shard_ref) {
                Some(current) if Arc::ptr_eq(current, &r) => {
                    replicas.remove(&r.shard_ref);
                }
                _ => return false,
            }
        }
        r.follow();
        r.shard().stop_background();
        let shard_ref = r.shard_ref.clone();
        let incarnation = r.incarnation;
        let config = self
            .map()
            .collections
            .get(&shard_ref.collection)
            .map(|c| c.config.clone());
        let opts = self.options.shard.clone();
        let sr = shard_ref.clone();
        let opened = tokio::task::spawn_blocking(move || {
            // Replicators and in-flight requests let go within a write
            // timeout or so; the old shard takes no writes meanwhile (its
            // WAL refuses them), so nothing is lost by waiting.
            close_when_released(r, Duration::from_millis(20)).map_err(Some)?;
            let config = config.ok_or(None)?;
            LocalReplica::open(sr, dir, config, opts, incarnation).map_err(|e| {
                tracing::error!(error = %e, "reopening a poisoned replica failed");
                None
            })
        })
        .await;
        match opened {
            Ok(Ok(replica)) => {
                self.replicas
                    .write()
                    .entry(shard_ref)
                    .or_insert_with(|| Arc::new(replica));
                true
            }
            Ok(Err(Some(still_held))) => {
                // Still in use: put it back, try again after the next beat.
                self.replicas.write().entry(shard_ref).or_insert(still_held);
                false
            }
            Ok(Err(None)) | Err(_) => false,
        }
    }

    /// A unique name under `<data>/dropped/` for a dropped replica's data.
    fn tombstone_dir(&self, shard: &ShardRef, incarnation: protocol::Epoch) -> PathBuf {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.data_dir.join(DROPPED_DIR).join(format!(
            "{}-{}-{}-{}-{n}",
            shard.collection,
            incarnation.0,
            shard.shard,
            now_ms()
        ))
    }
}

/// Where dropped replicas' data waits for deletion (see
/// [`Node::drop_replica`]); whatever a crash left there is removed by the
/// restart sweep.
const DROPPED_DIR: &str = "dropped";

/// Removes `<root>/<collection>/<incarnation>-<shard>` directories not in
/// `keep` (and collection directories left empty), except those of an
/// incarnation newer than the map's `epoch` (the map cannot know them);
/// returns what it removed.
fn sweep(
    root: &std::path::Path,
    keep: &std::collections::HashSet<PathBuf>,
    epoch: protocol::Epoch,
) -> Vec<PathBuf> {
    let mut removed = Vec::new();
    let Ok(collections) = std::fs::read_dir(root) else {
        return removed;
    };
    for coll in collections.flatten() {
        let coll_dir = coll.path();
        if !coll_dir.is_dir() {
            continue;
        }
        let Ok(replicas) = std::fs::read_dir(&coll_dir) else {
            continue;
        };
        for r in replicas.flatten() {
            let dir = r.path();
            let newer = r
                .file_name()
                .to_str()
                .and_then(|n| n.split_once('-'))
                .and_then(|(inc, _)| inc.parse::<u64>().ok())
                .is_none_or(|inc| inc > epoch.0);
            if dir.is_dir() && !newer && !keep.contains(&dir) {
                match std::fs::remove_dir_all(&dir) {
                    Ok(()) => removed.push(dir),
                    Err(e) => {
                        tracing::warn!(dir = %dir.display(), error = %e, "could not remove replica data")
                    }
                }
            }
        }
        // Only succeeds when empty.
        let _ = std::fs::remove_dir(&coll_dir);
    }
    removed
}

/// Removes the tombstones under `dropped` whose deletion a crash or a
/// restart interrupted; returns what it removed.
fn sweep_dropped(dropped: &std::path::Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dropped) else {
        return Vec::new();
    };
    entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| std::fs::remove_dir_all(p).is_ok())
        .collect()
}

/// Waits (blocking, at most 30 s, looking every `poll`) until `r` has no
/// other user — in-flight requests and replicators let go within a write
/// timeout or so — then closes it. Gives it back if it is still held.
fn close_when_released(mut r: Arc<LocalReplica>, poll: Duration) -> Result<(), Arc<LocalReplica>> {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        match Arc::try_unwrap(r) {
            Ok(replica) => {
                drop(replica);
                return Ok(());
            }
            Err(back) if std::time::Instant::now() < deadline => {
                r = back;
                std::thread::sleep(poll);
            }
            Err(back) => return Err(back),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sweep_keeps_assigned_replicas_and_removes_the_rest() {
        let root = tempfile::tempdir().expect("tempdir");
        let keep_dir = root.path().join("a").join("1-0");
        let gone_dir = root.path().join("a").join("1-1");
        let gone_coll = root.path().join("b").join("3-0");
        // Created after the map the sweep judges by: not its to remove.
        let newer = root.path().join("c").join("9-0");
        for d in [&keep_dir, &gone_dir, &gone_coll, &newer] {
            std::fs::create_dir_all(d.join("gen-1")).expect("mkdir");
        }
        let keep = std::collections::HashSet::from([keep_dir.clone()]);
        let mut removed = sweep(root.path(), &keep, protocol::Epoch(5));
        removed.sort();
        assert_eq!(removed, vec![gone_dir.clone(), gone_coll.clone()]);
        assert!(keep_dir.exists());
        assert!(newer.exists());
        assert!(!gone_dir.exists());
        assert!(!root.path().join("b").exists());
    }

    #[test]
    fn replication_holds_off_a_peer_only_after_a_permanent_error() {
        let options = NodeOptions::default();
        let node = NodeId(2);
        let transient = [
            CallError::Unreachable {
                node,
                reason: "no address known".into(),
            },
            CallError::TimedOut {
                node,
                after: Duration::from_secs(1),
            },
            CallError::ConnectionLost {
                node,
                reason: "peer restarted".into(),
            },
            CallError::Refused {
                node,
                reason: transport::Refusal::ShuttingDown,
            },
        ];
        for e in &transient {
            assert_eq!(options.pause_after(e), Duration::ZERO, "{e}");
        }
        let permanent = [
            CallError::Tls {
                node,
                reason: "unknown CA".into(),
            },
            CallError::Codec {
                node,
                reason: "frame too large".into(),
            },
            CallError::Refused {
                node,
                reason: transport::Refusal::Malformed,
            },
        ];
        for e in &permanent {
            let pause = options.pause_after(e);
            assert!(pause >= Duration::from_secs(5), "{e}: {pause:?}");
            assert!(pause <= Duration::from_secs(60), "{e}: {pause:?}");
        }
    }
}
