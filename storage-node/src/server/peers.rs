//! [`Peers`] over QUIC: resolves node ids to addresses from the cluster map
//! and calls them with the transport's RPC client. A node's certificate is
//! issued to `storage-<id>`, which is also the name it is verified by.
//!
//! Names resolve on the runtime without blocking it (`lookup_host`, with a
//! time limit). A name that did not resolve, or whose node could not be
//! connected to (a container restarted with another address), is resolved
//! again by the next call to that node, at most once per
//! [`RESOLVE_RETRY`]: one failed DNS lookup no longer cuts a peer off
//! until the next map change (issue 14, defect 5; test
//! `a_name_that_failed_to_resolve_is_resolved_again_by_the_next_call`).

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use protocol::cluster::ClusterMap;
use protocol::rpc::{StorageRequest, StorageResponse};
use protocol::NodeId;
use transport::RpcClient;

use crate::node::{CallError, PeerFuture, Peers};

/// Longest wait for one name lookup.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(2);
/// Shortest pause between two lookups of one node's name by calls.
pub const RESOLVE_RETRY: Duration = Duration::from_millis(500);

/// Turns a `host:port` into addresses.
pub type Resolver = Arc<
    dyn Fn(String) -> Pin<Box<dyn Future<Output = std::io::Result<Vec<SocketAddr>>> + Send>>
        + Send
        + Sync,
>;

/// The system resolver, off the runtime's threads.
pub fn system_resolver() -> Resolver {
    Arc::new(|name: String| {
        Box::pin(async move {
            match tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host(name)).await {
                Ok(found) => found.map(|a| a.collect()),
                Err(_) => Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no answer within {RESOLVE_TIMEOUT:?}"),
                )),
            }
        })
    })
}

struct Known {
    /// The node's address as the map gives it (`host:port`).
    name: String,
    addr: Option<SocketAddr>,
    /// Set when the address must be looked up again (never resolved, or a
    /// connect to it failed); with the time of the last attempt.
    stale: bool,
    last_attempt: Option<Instant>,
    last_error: Option<String>,
}

/// Node ids to socket addresses, kept across lookups that fail.
pub struct AddressBook {
    resolver: Resolver,
    known: Mutex<HashMap<NodeId, Known>>,
}

impl AddressBook {
    pub fn new(resolver: Resolver) -> Self {
        Self {
            resolver,
            known: Mutex::new(HashMap::new()),
        }
    }

    /// Learns the nodes of a new map and resolves their names. A node whose
    /// name did not change keeps its address when the lookup fails.
    pub async fn update(&self, map: &ClusterMap) {
        let mut next = HashMap::new();
        for (id, info) in &map.nodes {
            let previous = self.known.lock().remove(id).filter(|k| k.name == info.addr);
            let mut known = previous.unwrap_or(Known {
                name: info.addr.clone(),
                addr: None,
                stale: true,
                last_attempt: None,
                last_error: None,
            });
            self.resolve_into(*id, &mut known).await;
            next.insert(*id, known);
        }
        *self.known.lock() = next;
    }

    async fn resolve_into(&self, id: NodeId, known: &mut Known) {
        known.last_attempt = Some(Instant::now());
        match (self.resolver)(known.name.clone()).await {
            Ok(found) if !found.is_empty() => {
                known.addr = found.first().copied();
                known.stale = false;
                known.last_error = None;
            }
            Ok(_) => {
                known.stale = true;
                known.last_error = Some("the name has no address".into());
            }
            Err(e) => {
                tracing::warn!(node = %id, addr = %known.name, error = %e, "cannot resolve node address; retrying on the next call");
                known.stale = true;
                known.last_error = Some(e.to_string());
            }
        }
    }

    /// The node's address, resolving its name again first when it is
    /// stale and the last attempt is at least [`RESOLVE_RETRY`] old.
    pub async fn address(&self, node: NodeId) -> Result<SocketAddr, CallError> {
        let retry = {
            let known = self.known.lock();
            let Some(k) = known.get(&node) else {
                return Err(CallError::Unreachable {
                    node,
                    reason: "not in the cluster map".into(),
                });
            };
            let due = k.stale && k.last_attempt.is_none_or(|t| t.elapsed() >= RESOLVE_RETRY);
            if !due {
                return k.addr.ok_or_else(|| unresolved(node, k));
            }
            k.name.clone()
        };
        let mut probe = Known {
            name: retry.clone(),
            addr: None,
            stale: true,
            last_attempt: None,
            last_error: None,
        };
        self.resolve_into(node, &mut probe).await;
        let mut known = self.known.lock();
        let Some(k) = known.get_mut(&node).filter(|k| k.name == retry) else {
            // The map changed meanwhile: the new entry is the truth.
            return known
                .get(&node)
                .and_then(|k| k.addr)
                .ok_or_else(|| CallError::Unreachable {
                    node,
                    reason: "not in the cluster map".into(),
                });
        };
        k.last_attempt = probe.last_attempt;
        if probe.addr.is_some() {
            k.addr = probe.addr;
            k.stale = false;
            k.last_error = None;
        } else {
            // Keep the old address: a failed lookup says nothing about it.
            k.last_error = probe.last_error;
        }
        k.addr.ok_or_else(|| unresolved(node, k))
    }

    /// A connect to the node failed: look its name up again next time
    /// (the address it had may belong to a previous container).
    pub fn connect_failed(&self, node: NodeId) {
        if let Some(k) = self.known.lock().get_mut(&node) {
            k.stale = true;
        }
    }
}

fn unresolved(node: NodeId, k: &Known) -> CallError {
    CallError::Unreachable {
        node,
        reason: format!(
            "cannot resolve {}: {}",
            k.name,
            k.last_error.as_deref().unwrap_or("not resolved yet")
        ),
    }
}

pub struct QuicPeers {
    client: RpcClient,
    timeout: Duration,
    addrs: Arc<AddressBook>,
}

impl QuicPeers {
    pub fn new(client: RpcClient, timeout: Duration) -> Self {
        Self {
            client,
            timeout,
            addrs: Arc::new(AddressBook::new(system_resolver())),
        }
    }

    /// Learns the nodes' addresses from a new map (resolving host names).
    pub async fn update(&self, map: &ClusterMap) {
        self.addrs.update(map).await;
    }
}

pub fn server_name(node: NodeId) -> String {
    format!("storage-{node}")
}

impl Peers for QuicPeers {
    fn call(&self, node: NodeId, request: StorageRequest) -> PeerFuture {
        let addrs = self.addrs.clone();
        let client = self.client.clone();
        let timeout = self.timeout;
        Box::pin(async move {
            let addr = addrs.address(node).await?;
            let result = client
                .call::<StorageRequest, StorageResponse>(
                    addr,
                    &server_name(node),
                    &request,
                    timeout,
                )
                .await
                .map_err(|e| CallError::from_transport(node, e));
            if let Err(CallError::Unreachable { .. }) = &result {
                addrs.connect_failed(node);
            }
            result
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use protocol::cluster::NodeInfo;
    use protocol::Epoch;

    use super::*;

    fn map_with(addr: &str) -> ClusterMap {
        ClusterMap {
            epoch: Epoch(1),
            nodes: BTreeMap::from([(NodeId(2), NodeInfo::new(NodeId(2), addr.to_string()))]),
            ..ClusterMap::default()
        }
    }

    /// A resolver whose first `failures` lookups fail (a DNS server that
    /// does not answer for a while), then answers `addr`.
    fn flaky(failures: usize, addr: SocketAddr) -> (Resolver, Arc<AtomicUsize>) {
        let calls = Arc::new(AtomicUsize::new(0));
        let seen = calls.clone();
        let resolver: Resolver = Arc::new(move |_name| {
            let n = seen.fetch_add(1, Ordering::SeqCst);
            Box::pin(async move {
                if n < failures {
                    Err(std::io::Error::other(
                        "temporary failure in name resolution",
                    ))
                } else {
                    Ok(vec![addr])
                }
            })
        });
        (resolver, calls)
    }

    /// Issue 14, defect 5: a node whose lookup of a peer failed once could
    /// not reach it until the next map change.
    #[tokio::test]
    async fn a_name_that_failed_to_resolve_is_resolved_again_by_the_next_call() {
        let addr: SocketAddr = "127.0.0.1:7001".parse().unwrap();
        let (resolver, calls) = flaky(1, addr);
        let book = AddressBook::new(resolver);
        book.update(&map_with("storage-2:7001")).await;
        let first = book.address(NodeId(2)).await;
        assert!(
            matches!(&first, Err(CallError::Unreachable { reason, .. }) if reason.contains("temporary failure")),
            "{first:?}"
        );
        // No map change: the next call after the retry pause resolves it.
        tokio::time::sleep(RESOLVE_RETRY + Duration::from_millis(50)).await;
        assert_eq!(book.address(NodeId(2)).await.expect("resolved"), addr);
        let lookups = calls.load(Ordering::SeqCst);
        // Resolved: later calls do not look the name up again.
        assert_eq!(book.address(NodeId(2)).await.expect("resolved"), addr);
        assert_eq!(calls.load(Ordering::SeqCst), lookups);
    }

    #[tokio::test]
    async fn a_failed_lookup_keeps_the_address_known_before() {
        let addr: SocketAddr = "127.0.0.1:7002".parse().unwrap();
        let calls = Arc::new(AtomicUsize::new(0));
        let seen = calls.clone();
        // Answers the first lookup only.
        let resolver: Resolver = Arc::new(move |_name| {
            let n = seen.fetch_add(1, Ordering::SeqCst);
            Box::pin(async move {
                if n == 0 {
                    Ok(vec![addr])
                } else {
                    Err(std::io::Error::other("servfail"))
                }
            })
        });
        let book = AddressBook::new(resolver);
        book.update(&map_with("storage-2:7002")).await;
        book.connect_failed(NodeId(2));
        let mut next = map_with("storage-2:7002");
        next.epoch = Epoch(2);
        book.update(&next).await;
        assert_eq!(book.address(NodeId(2)).await.expect("kept"), addr);
        // A lookup is retried at most once per RESOLVE_RETRY.
        let before = calls.load(Ordering::SeqCst);
        for _ in 0..5 {
            assert_eq!(book.address(NodeId(2)).await.expect("kept"), addr);
        }
        assert!(calls.load(Ordering::SeqCst) <= before + 1);
    }

    /// The real resolver, without blocking the runtime (a current-thread
    /// runtime would stall on a blocking lookup).
    #[tokio::test(flavor = "current_thread")]
    async fn the_system_resolver_resolves_localhost() {
        let found = system_resolver()("localhost:7003".to_string())
            .await
            .expect("localhost resolves");
        assert!(found
            .iter()
            .all(|a| a.port() == 7003 && a.ip().is_loopback()));
    }
}
