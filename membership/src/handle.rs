//! The [`Membership`] handle: join, publish replica sequence numbers, read
//! a shard's version vector, shut down. What tests need besides (member
//! lists, change streams, crash simulation) sits behind `testsuite`.
//!
//! ```text
//!  chitchat server task ──live_nodes_watcher──▶ members task ──watch<Snapshot>──▶ ChangeStream(s)
//!  (UDP gossip, phi FD)   (ChitchatId→NodeState)  parse, pick newest  (node_id→Member)  diff → events
//!                                                  generation, metrics,
//!                                                  logs
//! ```
//!
//! The members task lives in `watcher.rs`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chitchat::{spawn_chitchat, Chitchat, ChitchatHandle, ChitchatId};
use protocol::{SeqNo, ShardId, VersionVector};
use tokio::sync::{watch, Mutex};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use crate::change::Snapshot;
use crate::config::MembershipConfig;
use crate::error::MembershipError;
use crate::keys;
use crate::member::LocalNode;
use crate::transport::GossipTransport;
use crate::watcher::run_members_task;

/// How many times `join` retries when a port it picked for port 0 was taken
/// in between.
const BIND_ATTEMPTS: usize = 5;

/// A node's membership in the gossip cluster. Cheap to clone; the gossip
/// stops when [`shutdown`](Self::shutdown) is called or the last clone is
/// dropped.
#[derive(Clone)]
pub struct Membership {
    inner: Arc<Inner>,
}

struct Inner {
    node_id: protocol::NodeId,
    self_id: ChitchatId,
    gossip_interval: Duration,
    chitchat: Arc<Mutex<Chitchat>>,
    /// `None` once shut down. A sync mutex: never held across an await.
    server: parking_lot::Mutex<Option<ChitchatHandle>>,
    members: watch::Receiver<Snapshot>,
    members_task: JoinHandle<()>,
    shut_down: AtomicBool,
}

impl std::fmt::Debug for Membership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Membership")
            .field("node_id", &self.inner.node_id)
            .field("generation", &self.inner.self_id.generation_id)
            .field("gossip_addr", &self.inner.self_id.gossip_advertise_addr)
            .field("live_members", &self.inner.members.borrow().len())
            .field("shut_down", &self.inner.shut_down.load(Ordering::Relaxed))
            .finish()
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Dropping the `ChitchatHandle` closes its command channel, which
        // stops the server loop; the members task holds no strong reference
        // and is stopped here.
        self.members_task.abort();
    }
}

impl Membership {
    /// Starts gossiping: publishes `local` and contacts `config.seeds`.
    /// Returns once the socket is open (not once peers are known; see
    /// [`wait_for`](Self::wait_for)).
    pub async fn join(
        config: MembershipConfig,
        local: LocalNode,
        transport: GossipTransport,
    ) -> Result<Membership, MembershipError> {
        config.validate()?;
        let mut attempt = 0;
        let server = loop {
            attempt += 1;
            let listen = transport.resolve_listen(config.gossip_listen)?;
            let chitchat_config = config.to_chitchat(listen);
            match spawn_chitchat(chitchat_config, local.key_values(), transport.as_chitchat()).await
            {
                Ok(server) => break server,
                Err(e) if config.gossip_listen.port() == 0 && attempt < BIND_ATTEMPTS => {
                    debug!(%listen, error = %e, "picked gossip port was taken, retrying");
                }
                Err(e) => {
                    return Err(MembershipError::Bind {
                        addr: listen,
                        reason: format!("{e:#}"),
                    });
                }
            }
        };
        let self_id = server.chitchat_id().clone();
        let chitchat = server.chitchat();
        let live_nodes = chitchat.lock().await.live_nodes_watcher();
        let (members_tx, members) = watch::channel(Snapshot::default());
        let members_task = tokio::spawn(run_members_task(
            live_nodes,
            Arc::downgrade(&chitchat),
            members_tx,
            config.gossip_interval,
        ));
        info!(
            node_id = %self_id.node_id,
            generation = self_id.generation_id,
            gossip_addr = %self_id.gossip_advertise_addr,
            rpc_addr = %local.rpc_addr,
            seeds = ?config.seeds,
            "joined gossip cluster"
        );
        Ok(Membership {
            inner: Arc::new(Inner {
                node_id: config.node_id,
                self_id,
                gossip_interval: config.gossip_interval,
                chitchat,
                server: parking_lot::Mutex::new(Some(server)),
                members,
                members_task,
                shut_down: AtomicBool::new(false),
            }),
        })
    }

    /// The version vector of one shard over the live members: for every
    /// live node publishing a replica of it, the highest sequence number it
    /// applied. What anti-entropy reads (who is ahead of me).
    pub fn shard_versions(&self, collection: &str, shard: ShardId) -> VersionVector {
        self.inner
            .members
            .borrow()
            .values()
            .filter_map(|m| Some((m.node_id, m.replica_seq(collection, shard)?)))
            .collect()
    }

    /// Publishes a replica's highest applied sequence number. Setting the
    /// same value again gossips nothing; call it on a timer (e.g. every
    /// gossip interval) rather than per write.
    pub async fn set_replica_seq(
        &self,
        collection: &str,
        shard: ShardId,
        seq: SeqNo,
    ) -> Result<(), MembershipError> {
        if collection.is_empty() {
            return Err(MembershipError::InvalidConfig {
                reason: "empty collection name".to_string(),
            });
        }
        let key = keys::replica_key(collection, shard);
        self.update(|state| state.set(key, seq.0)).await
    }

    async fn update(
        &self,
        f: impl FnOnce(&mut chitchat::NodeState),
    ) -> Result<(), MembershipError> {
        if self.inner.shut_down.load(Ordering::Acquire) {
            return Err(MembershipError::ShutDown);
        }
        let mut chitchat = self.inner.chitchat.lock().await;
        f(chitchat.self_node_state());
        Ok(())
    }

    /// Leaves gracefully: publishes `status = leaving` so peers drop this
    /// node at once (instead of after failure detection), gossips for three
    /// more rounds, then stops. Change streams end; `live_members` keeps
    /// returning the last view; setters fail with `ShutDown`. Idempotent.
    pub async fn shutdown(&self) {
        if self.inner.shut_down.swap(true, Ordering::AcqRel) {
            return;
        }
        self.inner
            .chitchat
            .lock()
            .await
            .self_node_state()
            .set(keys::STATUS, keys::STATUS_LEAVING);
        tokio::time::sleep(self.inner.gossip_interval * 3).await;
        let server = self.inner.server.lock().take();
        if let Some(server) = server {
            if let Err(e) = server.shutdown().await {
                warn!(error = %e, "gossip server ended with an error");
            }
        }
        self.inner.members_task.abort();
        info!(node_id = %self.inner.node_id, "left gossip cluster");
    }
}

/// Observation for tests: who is live or dead, change events, and a crash.
/// No service reads these (storage nodes only need
/// [`Membership::shard_versions`]).
#[cfg(any(test, feature = "testsuite"))]
impl Membership {
    pub fn self_node_id(&self) -> protocol::NodeId {
        self.inner.node_id
    }

    /// This incarnation's generation.
    pub fn self_generation(&self) -> u64 {
        self.inner.self_id.generation_id
    }

    /// The address peers gossip with us on (the resolved port when the
    /// config said 0).
    pub fn gossip_addr(&self) -> std::net::SocketAddr {
        self.inner.self_id.gossip_advertise_addr
    }

    /// Live members, this node included, sorted by node id.
    pub fn live_members(&self) -> Vec<crate::Member> {
        self.inner.members.borrow().values().cloned().collect()
    }

    /// One live member.
    pub fn live_member(&self, node_id: protocol::NodeId) -> Option<crate::Member> {
        self.inner.members.borrow().get(&node_id).cloned()
    }

    /// Members the failure detector declared dead (or that left) and that
    /// are not live again under a newer generation; their last published
    /// version vector stays readable for `dead_node_grace`.
    pub async fn dead_members(&self) -> Vec<crate::Member> {
        let live = self.inner.members.borrow().clone();
        let chitchat = self.inner.chitchat.lock().await;
        crate::watcher::dead_members(&chitchat, &live)
    }

    /// Membership changes, starting with an `Add` for every current live
    /// member. See [`crate::ChangeStream`] for the delivery guarantees.
    pub fn subscribe(&self) -> crate::ChangeStream {
        crate::ChangeStream::new(self.inner.members.clone())
    }

    /// Waits until the live members satisfy `predicate`, at most `timeout`.
    /// Returns the members that satisfied it, or `None` on timeout.
    pub async fn wait_for(
        &self,
        timeout: Duration,
        mut predicate: impl FnMut(&[crate::Member]) -> bool,
    ) -> Option<Vec<crate::Member>> {
        let mut rx = self.inner.members.clone();
        let wait = async move {
            let snapshot = rx
                .wait_for(|snapshot| {
                    let members: Vec<crate::Member> = snapshot.values().cloned().collect();
                    predicate(&members)
                })
                .await
                .ok()?;
            Some(snapshot.values().cloned().collect())
        };
        tokio::time::timeout(timeout, wait).await.ok().flatten()
    }

    /// Stops gossiping at once without telling anyone, like a crash or a
    /// dropped network: peers must detect it.
    pub fn kill(&self) {
        self.inner.shut_down.store(true, Ordering::Release);
        if let Some(server) = self.inner.server.lock().take() {
            server.abort();
        }
        self.inner.members_task.abort();
    }
}
