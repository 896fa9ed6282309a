use std::path::PathBuf;
use std::time::Duration;

use serde::de::{self, Deserialize, Deserializer, Visitor};

use super::reference::{Use, KEYS};
use super::schema::*;
use super::*;

fn err(text: &str) -> ConfigError {
    parse(text, "test.yml").expect_err(text)
}

#[test]
fn an_empty_or_comment_only_file_has_no_keys() {
    for text in ["", "# nothing\n", "---\n"] {
        let f = parse(text, "t.yml").expect(text);
        assert!(f.cluster.node_id.is_none());
    }
}

#[test]
fn the_spec_layout_parses_without_its_refused_sections() {
    let text = "\
cluster:
  enabled: true
  node_id: \"node-1\"
  swim: {probe_interval: 1s, probe_timeout: 500ms, suspect_timeout: 5s, gossip_fanout: 3, port: 7946}
  raft: {election_timeout: 150-300ms, heartbeat_interval: 50ms, snapshot_interval: 10000, port: 7947}
  seed_nodes: [\"node-1.cluster.local:7946\", \"node-2.cluster.local:7946\"]
  rebalancing: {auto_enabled: true, trigger_threshold: 0.20, max_concurrent_migrations: 2, throttle_mb_per_sec: 100}
";
    let f = parse(text, "t.yml").expect("spec layout");
    let c = &f.cluster;
    assert_eq!(c.node_id.as_deref(), Some("node-1"));
    assert_eq!(c.swim.suspect_timeout, Some(Duration::from_secs(5)));
    assert_eq!(
        c.raft.election_timeout,
        Some(DurationRange {
            min: Duration::from_millis(150),
            max: Duration::from_millis(300)
        })
    );
    assert_eq!(c.raft.snapshot_interval, Some(10_000));
    assert_eq!(c.seed_nodes.as_ref().map(Vec::len), Some(2));
    assert_eq!(c.rebalancing.trigger_threshold, Some(0.2));
    // A numeric id is an id too.
    let f = parse("cluster: {node_id: 3}", "t.yml").expect("number id");
    assert_eq!(f.cluster.node_id.as_deref(), Some("3"));
}

#[test]
fn an_unknown_key_is_an_error_naming_its_path_and_the_file() {
    for (text, key) in [
        ("clusters: {}", "clusters"),
        ("cluster: {nodeid: 1}", "cluster.nodeid"),
        (
            "cluster: {swim: {probe_intervl: 1s}}",
            "cluster.swim.probe_intervl",
        ),
        (
            "cluster: {rebalancing: {auto: true}}",
            "cluster.rebalancing.auto",
        ),
        ("meta_service: {listne: '0.0.0.0:1'}", "meta_service.listne"),
        ("storage_node: {data_dri: x}", "storage_node.data_dri"),
        ("gateway: {rest_prot: 1}", "gateway.rest_prot"),
        (
            "gateway: {tls: {cert: a, key: b, chain: c}}",
            "gateway.tls.chain",
        ),
    ] {
        let e = err(text);
        assert_eq!(e.key(), Some(key), "{text}: {e}");
        let shown = e.to_string();
        assert!(shown.contains("test.yml") && shown.contains(key), "{shown}");
    }
}

#[test]
fn a_mistyped_value_names_its_key() {
    for (text, key) in [
        ("cluster: {raft: {port: seven}}", "cluster.raft.port"),
        (
            "cluster: {swim: {probe_interval: soon}}",
            "cluster.swim.probe_interval",
        ),
        (
            "cluster: {raft: {election_timeout: 300-150ms}}",
            "cluster.raft.election_timeout",
        ),
        ("storage_node: {fsync: sometimes}", "storage_node.fsync"),
        (
            "storage_node: {rpc_listen: 'nowhere'}",
            "storage_node.rpc_listen",
        ),
        (
            "gateway: {collection_keys: [{key: k, collections: [a], access: write}]}",
            "gateway.collection_keys[0].access",
        ),
    ] {
        let e = err(text);
        assert_eq!(e.key(), Some(key), "{text}: {e}");
    }
    assert!(matches!(err("cluster: [1"), ConfigError::Invalid { .. }));
}

#[test]
fn every_refused_key_is_refused_with_its_reason() {
    let mut refused = 0;
    for k in KEYS {
        let Use::Refused(reason) = k.usage else {
            continue;
        };
        refused += 1;
        // `a.b.c: 1` as nested YAML.
        let parts: Vec<&str> = k.path.split('.').collect();
        let mut text = String::new();
        for (depth, p) in parts.iter().enumerate() {
            let value = if depth + 1 == parts.len() { " 1" } else { "" };
            text.push_str(&format!("{}{p}:{value}\n", "  ".repeat(depth)));
        }
        match err(&text) {
            ConfigError::Unsupported { key, reason: r, .. } => {
                assert_eq!(key, k.path);
                assert_eq!(r, reason);
            }
            other => panic!("{}: {other}", k.path),
        }
    }
    assert_eq!(refused, 9);
}

#[test]
fn a_gossip_fanout_chitchat_cannot_do_is_refused() {
    assert!(parse("cluster: {swim: {gossip_fanout: 3}}", "t").is_ok());
    let e = err("cluster: {swim: {gossip_fanout: 5}}");
    assert_eq!(e.key(), Some("cluster.swim.gossip_fanout"), "{e}");
}

/// Records the field names a struct's `Deserialize` asks for.
struct Fields(&'static [&'static str]);

struct Probe<'a>(&'a mut Option<&'static [&'static str]>);

impl<'de> Deserializer<'de> for Probe<'_> {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("not a struct"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Self::Error> {
        *self.0 = Some(fields);
        Err(de::Error::custom("probed"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map enum identifier ignored_any
    }
}

fn fields_of<T: for<'de> Deserialize<'de>>() -> Fields {
    let mut out = None;
    let _ = T::deserialize(Probe(&mut out));
    Fields(out.expect("a struct"))
}

/// The table lists exactly the leaves of the file's structs: a field added
/// to a section without a row (or a row without a field) fails here.
#[test]
fn the_reference_table_lists_every_key_of_the_structs() {
    let sections: Vec<(&str, Fields)> = vec![
        ("", fields_of::<ConfigFile>()),
        ("cluster", fields_of::<ClusterSection>()),
        ("cluster.swim", fields_of::<SwimSection>()),
        ("cluster.raft", fields_of::<RaftSection>()),
        ("cluster.sharding", fields_of::<ShardingSection>()),
        ("cluster.replication", fields_of::<ReplicationSection>()),
        ("cluster.rebalancing", fields_of::<RebalancingSection>()),
        ("meta_service", fields_of::<MetaServiceSection>()),
        ("storage_node", fields_of::<StorageNodeSection>()),
        ("gateway", fields_of::<GatewaySection>()),
    ];
    let names: Vec<&str> = sections.iter().map(|(p, _)| *p).collect();
    let mut leaves = Vec::new();
    for (prefix, Fields(fields)) in &sections {
        for f in *fields {
            let path = if prefix.is_empty() {
                f.to_string()
            } else {
                format!("{prefix}.{f}")
            };
            if !names.contains(&path.as_str()) {
                leaves.push(path);
            }
        }
    }
    let mut table: Vec<String> = KEYS.iter().map(|k| k.path.to_string()).collect();
    leaves.sort();
    table.sort();
    assert_eq!(leaves, table);
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `docs/configuration.md` is what the table generates. Regenerate with
/// `UPDATE_CONFIG_REFERENCE=1 cargo test -p lifecycle config_reference`.
#[test]
fn config_reference_page_is_up_to_date() {
    let path = repo_root().join("docs/configuration.md");
    let generated = reference::markdown();
    if std::env::var_os("UPDATE_CONFIG_REFERENCE").is_some() {
        std::fs::write(&path, &generated).expect("write docs/configuration.md");
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "docs/configuration.md differs from lifecycle/src/config/reference.rs; \
         regenerate: UPDATE_CONFIG_REFERENCE=1 cargo test -p lifecycle config_reference"
    );
}

/// The example file parses and shows every key a service reads (set, or
/// in a comment when it must be per process or points at files, like
/// `node_id` and `tls`), and no refused key.
#[test]
fn the_example_file_parses_and_sets_every_key() {
    let path = repo_root().join("deploy/config.example.yml");
    load(&path).expect("example parses");
    let text = std::fs::read_to_string(&path).expect("example");
    let value: serde_yaml::Value = serde_yaml::from_str(&text).expect("yaml");
    for k in KEYS {
        let mut v = Some(&value);
        for part in k.path.split('.') {
            v = v.and_then(|v| v.get(part));
        }
        match k.usage {
            Use::Read(_) => {
                let last = k.path.rsplit('.').next().unwrap_or(k.path);
                let commented = text.lines().any(|l| {
                    l.trim_start()
                        .strip_prefix('#')
                        .is_some_and(|l| l.trim_start().starts_with(&format!("{last}:")))
                });
                assert!(
                    v.is_some() || commented,
                    "{} missing from the example",
                    k.path
                )
            }
            Use::Refused(_) => assert!(v.is_none(), "{} is refused", k.path),
        }
    }
}
