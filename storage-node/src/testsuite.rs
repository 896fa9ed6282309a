//! Test helpers (feature `testsuite`): storage nodes wired to each other
//! through an in-memory network instead of QUIC, which tests can cut
//! (`set_down`) or slow (`set_delay`) per node.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;
use protocol::rpc::{StorageRequest, StorageResponse};
use protocol::NodeId;

use crate::node::{CallError, Lease, Node, NodeOptions, PeerFuture, Peers};
use crate::shard::ShardOptions;
use crate::wal::{SyncMode, WalOptions};

/// In-process nodes by id; a call to a node that is down (or from one)
/// fails like an unreachable peer.
#[derive(Default)]
pub struct InMemoryNetwork {
    nodes: RwLock<HashMap<NodeId, Arc<Node>>>,
    down: RwLock<HashSet<NodeId>>,
    delay: RwLock<HashMap<NodeId, Duration>>,
    chunks: parking_lot::Mutex<Vec<ChunkSeen>>,
}

/// An `InstallSnapshot` chunk as it crossed the network (tests bound a
/// snapshot's memory by its chunks).
#[derive(Clone, Debug)]
pub struct ChunkSeen {
    pub to: NodeId,
    pub first: bool,
    pub last: bool,
    pub points: usize,
    /// Encoded size of the whole request (msgpack, as on the wire).
    pub bytes: usize,
    pub at: std::time::Instant,
}

impl InMemoryNetwork {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// A node with data in `dir` that reaches its peers through this network.
    pub fn add_node(
        self: &Arc<Self>,
        id: NodeId,
        dir: &Path,
        options: NodeOptions,
        lease: Lease,
    ) -> Arc<Node> {
        let node = Node::new(
            id,
            dir.to_path_buf(),
            options,
            Arc::new(Link {
                from: id,
                net: self.clone(),
            }),
            lease,
        );
        self.nodes.write().insert(id, node.clone());
        node
    }

    pub fn node(&self, id: NodeId) -> Option<Arc<Node>> {
        self.nodes.read().get(&id).cloned()
    }

    pub fn nodes(&self) -> Vec<Arc<Node>> {
        self.nodes.read().values().cloned().collect()
    }

    /// Every `InstallSnapshot` chunk sent so far.
    pub fn snapshot_chunks(&self) -> Vec<ChunkSeen> {
        self.chunks.lock().clone()
    }

    pub fn set_down(&self, id: NodeId, down: bool) {
        if down {
            self.down.write().insert(id);
        } else {
            self.down.write().remove(&id);
        }
    }

    pub fn set_delay(&self, id: NodeId, delay: Option<Duration>) {
        match delay {
            Some(d) => self.delay.write().insert(id, d),
            None => self.delay.write().remove(&id),
        };
    }

    /// Delivers `req` to `to` (from a node, or from outside when `from` is
    /// `None`), after the target's delay; fails when either end is down.
    pub async fn send(
        &self,
        from: Option<NodeId>,
        to: NodeId,
        req: StorageRequest,
    ) -> Result<StorageResponse, CallError> {
        if let StorageRequest::InstallSnapshot {
            chunk, first, last, ..
        } = &req
        {
            let bytes = protocol::codec::encode(&req).map_or(0, |b| b.len());
            self.chunks.lock().push(ChunkSeen {
                to,
                first: *first,
                last: *last,
                points: chunk.len(),
                bytes,
                at: std::time::Instant::now(),
            });
        }
        let delay = self.delay.read().get(&to).copied();
        if let Some(d) = delay {
            tokio::time::sleep(d).await;
        }
        let down = {
            let d = self.down.read();
            d.contains(&to) || from.is_some_and(|f| d.contains(&f))
        };
        let target = self.node(to);
        match target {
            Some(t) if !down => Ok(t.handle(req).await),
            _ => Err(CallError::Unreachable {
                node: to,
                reason: "down in the test network".into(),
            }),
        }
    }
}

/// One node's outbound side of the network.
struct Link {
    from: NodeId,
    net: Arc<InMemoryNetwork>,
}

impl Peers for Link {
    fn call(&self, node: NodeId, request: StorageRequest) -> PeerFuture {
        let net = self.net.clone();
        let from = self.from;
        Box::pin(async move { net.send(Some(from), node, request).await })
    }
}

/// Node options for tests: fsync on, small WAL files (rotation and
/// truncation get exercised), quick retries.
pub fn node_options(write_timeout: Duration) -> NodeOptions {
    NodeOptions {
        shard: ShardOptions {
            wal: WalOptions {
                sync: SyncMode::Always,
                max_file_bytes: 1 << 20,
            },
            ..ShardOptions::default()
        },
        write_timeout,
        retry_backoff: Duration::from_millis(50),
        ..NodeOptions::default()
    }
}
