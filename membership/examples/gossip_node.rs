//! A standalone gossip member that prints every membership change, for
//! trying the crate across processes (e.g. measuring detection of a
//! `kill -9`):
//!
//! ```sh
//! cargo run -p membership --example gossip_node -- 1 127.0.0.1:17001
//! cargo run -p membership --example gossip_node -- 2 127.0.0.1:17002 127.0.0.1:17001
//! ```
//!
//! Needs the `testsuite` feature (change events are a test facility), which
//! the crate's dev-dependency on itself turns on for examples.
//!
//! Arguments: node id (a number), gossip address, seeds… (`PHI=16` overrides the
//! phi threshold). Output: one line per change,
//! `<unix ms> <add|update|remove> <node id> <generation>`.

use std::time::{SystemTime, UNIX_EPOCH};

use membership::{ClusterChange, GossipTransport, LocalNode, Membership, MembershipConfig};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: gossip_node <node-id> <gossip-addr> [seed…]";
    let node_id = protocol::NodeId(args.next().ok_or_else(|| anyhow::anyhow!(usage))?.parse()?);
    let listen = args.next().ok_or_else(|| anyhow::anyhow!(usage))?.parse()?;
    let mut config = MembershipConfig::new(node_id, "example", listen).with_seeds(args);
    // PHI=… overrides the failure detector's threshold, for experiments.
    if let Some(phi) = std::env::var("PHI").ok().and_then(|v| v.parse().ok()) {
        config.phi_threshold = phi;
    }
    // The RPC address is a placeholder: this example serves nothing.
    let local = LocalNode::storage("127.0.0.1:1".parse()?, None);
    let membership = Membership::join(config, local, GossipTransport::Udp).await?;
    let mut changes = membership.subscribe();
    loop {
        tokio::select! {
            change = changes.recv() => {
                let Some(change) = change else { break };
                let (kind, m) = match &change {
                    ClusterChange::Add(m) => ("add", m),
                    ClusterChange::Update(m) => ("update", m),
                    ClusterChange::Remove(m) => ("remove", m),
                };
                let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis();
                println!("{now} {kind} {} {}", m.node_id, m.generation);
            }
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    membership.shutdown().await;
    Ok(())
}
