//! Keeps one presence request open at the meta leader (see the
//! meta-service's `network::presence`): when this process dies, the kernel
//! closes the connection and the leader declares the node dead as soon as
//! its write leases run out, instead of after a grace of silence.

use std::time::Duration;

use meta_client::MetaClient;
use protocol::NodeId;
use tokio::sync::watch;

/// Pause after a round in which no member held the request (an election,
/// or no member reachable).
const RETRY: Duration = Duration::from_millis(100);
/// Pause after the leader refused the request (it does not know the node).
const REFUSED_RETRY: Duration = Duration::from_secs(1);

pub async fn presence_loop(node: NodeId, meta: MetaClient, mut stop: watch::Receiver<bool>) {
    let members = meta.members().len();
    if members == 0 {
        return;
    }
    let mut member = 0;
    let mut misses = 0;
    while !*stop.borrow() {
        let held = tokio::select! {
            r = meta.presence(member, node) => r,
            _ = stop.changed() => return,
        };
        match held {
            // The leader ended it (its hold, or it stopped leading): again.
            Ok(()) => misses = 0,
            Err(e) => {
                tracing::debug!(member, error = %e, "presence request not held; next member");
                member = (member + 1) % members;
                misses += 1;
                if e.refusal().is_some() {
                    // Unknown to the leader (removed, or not registered
                    // yet): the heartbeat loop deals with that.
                    lifecycle::sleep_or_stop(&mut stop, REFUSED_RETRY).await;
                } else if misses % members == 0 {
                    lifecycle::sleep_or_stop(&mut stop, RETRY).await;
                }
            }
        }
    }
}
