//! One meta-service member for a test cluster.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use meta_service::{MetaConfig, MetaNode};

/// Starts a single-member meta-service on 127.0.0.1:0 with its data in
/// `dir`, `configure`d, and waits until it leads. Returns it and its address.
pub async fn start_meta(dir: &Path, configure: impl FnOnce(&mut MetaConfig)) -> (MetaNode, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind meta listener");
    let addr = listener.local_addr().expect("meta addr").to_string();
    let mut config = MetaConfig::new(1, addr.clone(), dir);
    configure(&mut config);
    let meta = MetaNode::start(config, listener).await.expect("meta start");
    meta.initialize(BTreeMap::from([(1, addr.clone())]))
        .await
        .expect("meta init");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !meta.app.is_leader() {
        assert!(Instant::now() < deadline, "meta member did not lead");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (meta, addr)
}
