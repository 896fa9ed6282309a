//! Mutual TLS and roles on a real `meta-service` process: who is refused
//! (no certificate, another CA, plain HTTP, a role that may not) and that
//! nothing a refused caller sent changed the map.

use std::collections::BTreeSet;
use std::time::Duration;

use meta_client::{ErrorCode, MetaClient, MetaClientError, MetaReadConsistency, MetaTls};
use protocol::cluster::{ClusterCommand, Heartbeat, NodeInfo};
use protocol::NodeId;

use crate::collection_config;
use crate::util::{https, issue, tls, Cluster, SERIAL};

/// The status and code of an error answer, or a panic naming the error.
fn refusal(err: &MetaClientError) -> (u16, ErrorCode) {
    match err {
        MetaClientError::Api { status, body } => (*status, body.code),
        other => panic!("expected an error answer, got {other}"),
    }
}

fn forbidden(err: MetaClientError) {
    assert_eq!(refusal(&err), (403, ErrorCode::Forbidden), "{err}");
    assert!(!err.is_transient(), "a refusal is not retried");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_refuses_requests_without_a_client_certificate_or_with_the_wrong_role() {
    let _serial = SERIAL.lock().await;
    let cluster = Cluster::start(1, &["--node-dead-after-ms", "3600000"]);
    cluster
        .wait_leader(Duration::from_secs(10))
        .await
        .unwrap_or_else(|| panic!("no leader\n{}", cluster.log_tails()));
    let certs = cluster.certs.clone();
    for name in ["storage-1", "gateway-1", "client"] {
        issue(&certs, name);
    }
    let member = &cluster.members[0];
    let addr = member.addr.clone();
    let operator = member.client();
    operator
        .register_node(&NodeInfo::new(NodeId(1), "127.0.0.1:20001"))
        .await
        .expect("operator registers a node");
    operator
        .create_collection("docs", collection_config(2, 1))
        .await
        .expect("operator creates a collection");

    // No client certificate: 401 on the API; /health and /metrics answer.
    let ca = std::fs::read(certs.join("ca.pem")).expect("ca.pem");
    let anonymous = MetaClient::with_tls([addr.clone()], &MetaTls::trust_only(&ca).expect("ca"))
        .expect("client")
        .with_retry_for(Duration::ZERO);
    let err = anonymous
        .cluster_map(MetaReadConsistency::Local)
        .await
        .expect_err("map without a certificate");
    assert_eq!(refusal(&err), (401, ErrorCode::Unauthenticated), "{err}");
    let err = anonymous
        .delete_collection("docs")
        .await
        .expect_err("command without a certificate");
    assert_eq!(refusal(&err), (401, ErrorCode::Unauthenticated), "{err}");
    assert_eq!(anonymous.health_of(0).await.expect("health").id, 1);
    let metrics = https(&certs, None)
        .get(format!("https://{addr}/metrics"))
        .send()
        .await
        .expect("metrics without a certificate");
    assert!(metrics.status().is_success());

    // Plain HTTP to the TLS port gets no answer at all.
    let plain = reqwest::Client::new()
        .get(format!("http://{addr}/v1/cluster/map"))
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    assert!(
        plain.as_ref().is_err() || plain.as_ref().is_ok_and(|r| !r.status().is_success()),
        "{plain:?}"
    );

    // A certificate of another CA, even named `operator`, fails the
    // handshake: no answer (not a 401/403 from a handler).
    let foreign = tempfile::tempdir().expect("tempdir");
    issue(foreign.path(), "operator");
    let read = |p: &str| std::fs::read(foreign.path().join(p)).expect("read");
    let impostor =
        MetaTls::from_pem(&ca, &read("operator.pem"), &read("operator.key")).expect("impostor tls");
    let impostor = MetaClient::with_tls([addr.clone()], &impostor)
        .expect("client")
        .with_retry_for(Duration::ZERO);
    let err = impostor
        .delete_collection("docs")
        .await
        .expect_err("foreign CA");
    assert!(
        matches!(
            err,
            MetaClientError::Unreachable { .. } | MetaClientError::NoAnswer { .. }
        ),
        "{err}"
    );

    // A storage node: reads the map, registers and heartbeats as itself,
    // and nothing else.
    let storage = member.client_as("storage-1");
    storage
        .cluster_map(MetaReadConsistency::Linearizable)
        .await
        .expect("storage reads the map");
    storage
        .register_node(&NodeInfo::new(NodeId(1), "127.0.0.1:20001"))
        .await
        .expect("storage-1 registers as node 1");
    storage
        .heartbeat(&Heartbeat {
            node: NodeId(1),
            epoch: Default::default(),
            replicas: vec![],
            reads_last_minute: 0,
        })
        .await
        .expect("storage-1 heartbeats as node 1");
    forbidden(
        storage
            .register_node(&NodeInfo::new(NodeId(2), "127.0.0.1:20002"))
            .await
            .expect_err("storage-1 registering node 2"),
    );
    forbidden(
        storage
            .delete_collection("docs")
            .await
            .expect_err("storage deleting a collection"),
    );
    forbidden(
        storage
            .submit(&ClusterCommand::IfEpoch {
                epoch: Default::default(),
                command: Box::new(ClusterCommand::DeleteCollection {
                    name: "docs".into(),
                }),
            })
            .await
            .expect_err("an admin command wrapped in IfEpoch"),
    );
    forbidden(
        storage
            .change_membership(BTreeSet::from([1]), false)
            .await
            .expect_err("storage changing the meta membership"),
    );
    forbidden(storage.rebalance().await.expect_err("storage rebalancing"));
    let raft_vote = https(&certs, Some("operator"))
        .post(format!("https://{addr}/raft/vote"))
        .json(&serde_json::json!({}))
        .send()
        .await
        .expect("raft route answers");
    assert_eq!(raft_vote.status().as_u16(), 403, "only members speak Raft");

    // A gateway: user commands yes, a storage node's registration no.
    let gateway = member.client_as("gateway-1");
    forbidden(
        gateway
            .register_node(&NodeInfo::new(NodeId(5), "127.0.0.1:20005"))
            .await
            .expect_err("gateway registering a node"),
    );
    // A certificate of the CA without a role: nothing but health.
    forbidden(
        member
            .client_as("client")
            .cluster_map(MetaReadConsistency::Local)
            .await
            .expect_err("no role"),
    );

    // Nothing refused changed the map: one node, the collection intact.
    let map = operator
        .cluster_map(MetaReadConsistency::Linearizable)
        .await
        .expect("map")
        .map;
    assert!(map.collections.contains_key("docs"));
    assert_eq!(map.nodes.keys().copied().collect::<Vec<_>>(), [NodeId(1)]);

    // The operator's admin command is authorised, as is a gateway's.
    gateway
        .create_collection("scratch", collection_config(1, 1))
        .await
        .expect("gateway creates a collection");
    gateway
        .delete_collection("scratch")
        .await
        .expect("gateway deletes a collection");
    operator
        .delete_collection("docs")
        .await
        .expect("operator deletes a collection");
    let map = operator
        .cluster_map(MetaReadConsistency::Linearizable)
        .await
        .expect("map")
        .map;
    assert!(map.collections.is_empty());
    let _ = tls(&certs, "operator");
}
