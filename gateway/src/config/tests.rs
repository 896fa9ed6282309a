use std::time::Duration;

use super::*;

const SPEC: &str = r#"
cluster:
  enabled: true
  node_id: "node-1"
  swim:
    probe_interval: 1s
    port: 7946
  raft:
    election_timeout: 150-300ms
    heartbeat_interval: 50ms
    port: 7947
  seed_nodes:
    - "node-1.cluster.local:7946"
    - "node-2.cluster.local:7946"
storage_node:
  data_dir: "elsewhere"            # another service's section: ignored here
gateway:
  rest_port: 16000
  api_key: "rw"
  hedge_delay: off
  request_timeout: 2s
  shard_timeout: 1500
"#;

fn no_env(_: &str) -> Option<String> {
    None
}

fn resolve(text: &str, env: impl Fn(&str) -> Option<String>, o: &Overrides) -> Config {
    Config::resolve(Config::parse_file(text).expect("parses"), env, o).expect("resolves")
}

#[test]
fn spec_layout_parses() {
    let c = resolve(SPEC, no_env, &Overrides::default());
    assert_eq!(c.node_id, "node-1");
    assert_eq!(c.listen, "0.0.0.0:16000");
    assert_eq!(
        c.meta_service,
        vec!["node-1.cluster.local:7947", "node-2.cluster.local:7947"]
    );
    assert_eq!(c.keys.read_write.as_deref(), Some("rw"));
    assert_eq!(c.routing.hedge_delay, None);
    assert_eq!(c.http.request_timeout, Duration::from_secs(2));
    assert_eq!(c.routing.shard_timeout, Duration::from_millis(1500));
}

/// The file, then the environment, then flags: each later source wins
/// over the earlier ones, key by key.
#[test]
fn file_then_env_then_flags() {
    let file = "cluster: {node_id: from-file, seed_nodes: ['f:7946'], raft: {port: 9000}}\n\
                gateway: {rest_port: 1111, api_key: file-key, cert_name: file-cert}\n";
    let c = resolve(file, no_env, &Overrides::default());
    assert_eq!(
        (c.node_id.as_str(), c.listen.as_str()),
        ("from-file", "0.0.0.0:1111")
    );
    assert_eq!(c.meta_service, vec!["f:9000"]);
    assert_eq!(c.cert_name, "file-cert");
    let env = |k: &str| match k {
        "NODE_ID" => Some("from-env".to_string()),
        "SEED_NODES" => Some("e1:7946, e2:7946".to_string()),
        _ => None,
    };
    let c = resolve(file, env, &Overrides::default());
    assert_eq!(c.node_id, "from-env");
    assert_eq!(c.meta_service, vec!["e1:9000", "e2:9000"]);
    assert_eq!(c.keys.read_write.as_deref(), Some("file-key"));
    let flags = Overrides {
        node_id: Some("from-flag".into()),
        rest_port: Some(2222),
        api_key: Some("flag-key".into()),
        meta_service: vec!["m:1".into()],
        cert_name: Some("flag-cert".into()),
        ..Overrides::default()
    };
    let c = resolve(file, env, &flags);
    assert_eq!(c.node_id, "from-flag");
    assert_eq!(c.listen, "0.0.0.0:2222");
    assert_eq!(c.meta_service, vec!["m:1"]);
    assert_eq!(c.keys.read_write.as_deref(), Some("flag-key"));
    assert_eq!(c.cert_name, "flag-cert");
}

#[test]
fn defaults_and_a_bad_env_value() {
    let c = Config::resolve(ConfigFile::default(), no_env, &Overrides::default()).unwrap();
    assert_eq!(c.listen, "0.0.0.0:15001");
    assert_eq!(c.meta_service, vec!["127.0.0.1:7947"]);
    assert_eq!(c.node_id, "gateway");
    assert!(!c.keys.enabled());
    let disabled = |k: &str| (k == "CLUSTER_ENABLED").then(|| "false".to_string());
    let c = resolve(
        "cluster: {seed_nodes: ['a:1']}",
        disabled,
        &Overrides::default(),
    );
    assert_eq!(
        c.meta_service,
        vec!["127.0.0.1:7947"],
        "seeds unused when disabled"
    );
    let bad = |k: &str| (k == "CLUSTER_ENABLED").then(|| "maybe".to_string());
    assert!(Config::resolve(ConfigFile::default(), bad, &Overrides::default()).is_err());
}

#[test]
fn example_file_parses() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/config.example.yml");
    let c = Config::load(Some(&path), no_env, &Overrides::default()).unwrap();
    assert_eq!(c.listen, "0.0.0.0:15001");
    assert_eq!(c.routing.hedge_delay, Some(Duration::from_millis(200)));
    assert_eq!(c.cert_name, "gateway");
    assert_eq!(c.meta_service.len(), 3);
}

#[test]
fn collection_keys_parse_and_are_checked() {
    let text = "gateway:\n  collection_keys:\n    - {key: k1, collections: [a, b], access: read}\n    - {key: k2, collections: [a], access: read_write}\n";
    let c = resolve(text, no_env, &Overrides::default());
    assert!(c.keys.enabled());
    assert_eq!(c.keys.collection_keys.len(), 2);
    assert_eq!(c.keys.collection_keys[0].access, ScopeAccess::Read);
    for bad in [
        "gateway:\n  collection_keys: [{key: k, collections: [a], access: write}]\n",
        "gateway:\n  collection_keys: [{key: k, collections: [a]}]\n",
    ] {
        assert!(Config::parse_file(bad).is_err(), "{bad}");
    }
    for bad in [
        "gateway:\n  collection_keys: [{key: k, collections: [], access: read}]\n",
        "gateway:\n  collection_keys: [{key: '', collections: [a], access: read}]\n",
        "gateway:\n  collection_keys: [{key: k, collections: ['..'], access: read}]\n",
        "gateway:\n  api_key: k\n  collection_keys: [{key: k, collections: [a], access: read}]\n",
    ] {
        let file = Config::parse_file(bad).unwrap();
        assert!(
            Config::resolve(file, no_env, &Overrides::default()).is_err(),
            "{bad}"
        );
    }
}

#[test]
fn bad_files_are_refused() {
    assert!(Config::parse_file("gateway:\n  rest_prot: 1\n").is_err());
    assert!(Config::parse_file("gateway:\n  request_timeout: soon\n").is_err());
    assert!(Config::parse_file("cluster:\n  raft: {prot: 1}\n").is_err());
    assert!(Config::parse_file("meta_service:\n  listne: x\n").is_err());
    assert!(Config::parse_file("").is_ok());
    assert!(Config::parse_file("gateway:\n  tls: {cert: a.pem}\n").is_err());
    let text = "gateway:\n  tls: {cert: a.pem, key: a.key}\n";
    let c = resolve(text, no_env, &Overrides::default());
    assert_eq!(c.tls.map(|t| t.key), Some(PathBuf::from("a.key")));
    let e = Config::parse_file("gateway:\n  write_attempts: 0\n")
        .map(|f| Config::resolve(f, no_env, &Overrides::default()));
    assert!(matches!(e, Ok(Err(ConfigError::Value { .. }))));
}

/// Every key the gateway reads from the file reaches its settings.
#[test]
fn the_file_sets_every_gateway_setting() {
    let file = "\
cluster: {enabled: true, node_id: gw-3, raft: {port: 9000}, seed_nodes: ['s:1']}
gateway:
  rest_port: 1234
  listen_host: 127.0.0.1
  meta_service: ['m1:1', 'm2:1']
  api_key: rw
  read_only_api_key: ro
  collection_keys: [{key: scoped, collections: [a], access: read_write}]
  max_body_bytes: 1000
  request_timeout: 3s
  max_concurrent_requests: 9
  shard_timeout: 4s
  hedge_delay: 70ms
  failure_penalty: 6s
  write_attempts: 2
  certs_dir: /c
  cert_name: gw
  tls: {cert: /t.pem, key: /t.key}
";
    let c = resolve(file, no_env, &Overrides::default());
    assert!(c.enabled);
    assert_eq!(c.node_id, "gw-3");
    assert_eq!(c.seed_nodes, vec!["s:1"]);
    assert_eq!(c.listen, "127.0.0.1:1234");
    assert_eq!(c.meta_service, vec!["m1:1", "m2:1"], "explicit beats seeds");
    assert_eq!(c.keys.read_write.as_deref(), Some("rw"));
    assert_eq!(c.keys.read_only.as_deref(), Some("ro"));
    assert_eq!(c.keys.collection_keys[0].access, ScopeAccess::ReadWrite);
    assert_eq!(c.http.max_body_bytes, 1000);
    assert_eq!(c.http.request_timeout, Duration::from_secs(3));
    assert_eq!(c.http.max_concurrent_requests, 9);
    assert_eq!(c.routing.shard_timeout, Duration::from_secs(4));
    assert_eq!(c.routing.hedge_delay, Some(Duration::from_millis(70)));
    assert_eq!(c.routing.failure_penalty, Duration::from_secs(6));
    assert_eq!(c.routing.write_attempts, 2);
    assert_eq!(c.certs_dir, PathBuf::from("/c"));
    assert_eq!(c.cert_name, "gw");
    assert_eq!(c.tls.map(|t| t.cert), Some(PathBuf::from("/t.pem")));
}
