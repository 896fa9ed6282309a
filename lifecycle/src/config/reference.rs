//! Every key of the configuration file, in one table: its type, default,
//! the environment variable and flags that override it, which service
//! reads it, or why it is refused. `docs/configuration.md` is generated
//! from this table ([`markdown`]); a test fails when the committed page
//! differs, and another when a field of the file's structs is missing from
//! the table (or the table names a key the structs do not have).

/// The services that read the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Service {
    Meta,
    Storage,
    Gateway,
}

impl Service {
    pub fn name(self) -> &'static str {
        match self {
            Service::Meta => "meta-service",
            Service::Storage => "storage-node",
            Service::Gateway => "gateway",
        }
    }
}

/// How one service reads a key, and what overrides the file's value there.
#[derive(Clone, Copy, Debug)]
pub struct Reader {
    pub service: Service,
    /// Environment variable (beats the file).
    pub env: Option<&'static str>,
    /// Flags (beat the environment and the file).
    pub flags: &'static [&'static str],
}

/// What the services do with a key.
#[derive(Clone, Copy, Debug)]
pub enum Use {
    Read(&'static [Reader]),
    /// Every binary refuses a file that sets it, with this reason.
    Refused(&'static str),
}

/// One key of the file.
#[derive(Clone, Copy, Debug)]
pub struct Key {
    /// Dotted path, e.g. `cluster.swim.probe_interval`.
    pub path: &'static str,
    pub ty: &'static str,
    pub default: &'static str,
    pub doc: &'static str,
    pub usage: Use,
}

const fn r(service: Service, env: Option<&'static str>, flags: &'static [&'static str]) -> Reader {
    Reader {
        service,
        env,
        flags,
    }
}

use Service::{Gateway as G, Meta as M, Storage as S};

const DURATION: &str = "duration";

/// Every key, in file order.
pub const KEYS: &[Key] = &[
    // ---- cluster ----
    Key {
        path: "cluster.enabled",
        ty: "bool",
        default: "true",
        doc: "`false`: the gateway does not derive meta-service addresses from `seed_nodes` (it uses `gateway.meta_service` or 127.0.0.1 on `raft.port`).",
        usage: Use::Read(&[r(G, Some("CLUSTER_ENABLED"), &[])]),
    },
    Key {
        path: "cluster.node_id",
        ty: "string or number",
        default: "meta-service, storage-node: required; gateway: `gateway`",
        doc: "This process's id. The meta-service and storage nodes take a number or a StatefulSet pod name `name-N` (member / node N + 1); the gateway's is a name for its logs. One file for the whole cluster leaves it out and sets the environment variable per process.",
        usage: Use::Read(&[
            r(M, Some("META_ID"), &["--id"]),
            r(S, Some("NODE_ID"), &["--id"]),
            r(G, Some("NODE_ID"), &["--node-id"]),
        ]),
    },
    Key {
        path: "cluster.region",
        ty: "string",
        default: "-",
        doc: "",
        usage: Use::Refused("replicas are not placed by region: every node is one failure domain of one region"),
    },
    Key {
        path: "cluster.swim.probe_interval",
        ty: DURATION,
        default: "1s",
        doc: "Gossip (chitchat) round = probe_interval / 10: chitchat exchanges digests with up to 3 peers every round, each a direct and an indirect probe (see `membership/src/config.rs`).",
        usage: Use::Read(&[r(S, None, &[])]),
    },
    Key {
        path: "cluster.swim.probe_timeout",
        ty: DURATION,
        default: "500ms",
        doc: "With `suspect_timeout`, the budget to declare a silent node dead: phi threshold = (probe_timeout + suspect_timeout) / gossip round.",
        usage: Use::Read(&[r(S, None, &[])]),
    },
    Key {
        path: "cluster.swim.suspect_timeout",
        ty: DURATION,
        default: "1.1s",
        doc: "See `probe_timeout`. The defaults (0.5 s + 1.1 s over 100 ms rounds) give phi 16, the tuned value (~0.8 s to detect a killed node); the spec's 5 s gives phi 55 (~3 s).",
        usage: Use::Read(&[r(S, None, &[])]),
    },
    Key {
        path: "cluster.swim.gossip_fanout",
        ty: "integer",
        default: "3",
        doc: "Only 3 is accepted (every binary refuses another value): chitchat 0.13 gossips to 3 peers per round, fixed.",
        usage: Use::Read(&[r(S, None, &[])]),
    },
    Key {
        path: "cluster.swim.port",
        ty: "port",
        default: "- (gossip off)",
        doc: "Gossip UDP port: without `storage_node.gossip_listen` the node gossips on 0.0.0.0 on this port (then set `storage_node.gossip_advertise`). Gossip is off when neither is set.",
        usage: Use::Read(&[r(S, None, &[])]),
    },
    Key {
        path: "cluster.raft.election_timeout",
        ty: "duration range (`150-300ms`)",
        default: "150-300ms",
        doc: "Raft election timeout of the meta-service, drawn in this range.",
        usage: Use::Read(&[r(
            M,
            None,
            &["--election-timeout-min-ms", "--election-timeout-max-ms"],
        )]),
    },
    Key {
        path: "cluster.raft.heartbeat_interval",
        ty: DURATION,
        default: "50ms",
        doc: "Raft leader heartbeat of the meta-service.",
        usage: Use::Read(&[r(M, None, &["--heartbeat-ms"])]),
    },
    Key {
        path: "cluster.raft.snapshot_interval",
        ty: "integer (log entries)",
        default: "10000",
        doc: "The meta-service snapshots its state (and compacts its log) every this many entries.",
        usage: Use::Read(&[r(M, None, &["--snapshot-interval"])]),
    },
    Key {
        path: "cluster.raft.port",
        ty: "port",
        default: "7947",
        doc: "The meta-service port: the meta-service listens on 0.0.0.0 on it (without `meta_service.listen`); storage nodes and gateways reach the meta-service on it by default (storage nodes: 127.0.0.1; gateways: each seed host, else 127.0.0.1).",
        usage: Use::Read(&[r(M, None, &[]), r(S, None, &[]), r(G, None, &[])]),
    },
    Key {
        path: "cluster.sharding.strategy",
        ty: "string",
        default: "-",
        doc: "",
        usage: Use::Refused("points are placed by hashing their id over their collection's shards; there is no other strategy"),
    },
    Key {
        path: "cluster.sharding.total_shards",
        ty: "integer",
        default: "-",
        doc: "",
        usage: Use::Refused("shards are per collection: `shard_number` when the collection is created"),
    },
    Key {
        path: "cluster.sharding.replication_factor",
        ty: "integer",
        default: "-",
        doc: "",
        usage: Use::Refused("per collection: `replication_factor` when the collection is created, or `PATCH /collections/{name}`"),
    },
    Key {
        path: "cluster.sharding.virtual_nodes",
        ty: "integer",
        default: "-",
        doc: "",
        usage: Use::Refused("fixed at 150 per node (`protocol::ring::DEFAULT_VNODES`): the meta-service and every gateway must place replicas alike"),
    },
    Key {
        path: "cluster.replication.method",
        ty: "string",
        default: "-",
        doc: "",
        usage: Use::Refused("replication is primary-backup over QUIC, the only method"),
    },
    Key {
        path: "cluster.replication.sync_interval",
        ty: DURATION,
        default: "-",
        doc: "",
        usage: Use::Refused("a primary forwards each write to its replicas as it happens, not on a timer"),
    },
    Key {
        path: "cluster.replication.batch_size",
        ty: "integer",
        default: "-",
        doc: "",
        usage: Use::Refused("a primary forwards each write to its replicas as it happens, not in batches"),
    },
    Key {
        path: "cluster.replication.compression",
        ty: "bool",
        default: "-",
        doc: "",
        usage: Use::Refused("replication traffic is not compressed"),
    },
    Key {
        path: "cluster.seed_nodes",
        ty: "list of `host:port`",
        default: "[]",
        doc: "Storage nodes: gossip seeds (other storage nodes' gossip addresses). Gateways: with `enabled`, the meta-service is sought on each seed host on `raft.port` unless `gateway.meta_service` is set.",
        usage: Use::Read(&[
            r(S, Some("SEED_NODES"), &["--seeds"]),
            r(G, Some("SEED_NODES"), &[]),
        ]),
    },
    Key {
        path: "cluster.rebalancing.auto_enabled",
        ty: "bool",
        default: "true",
        doc: "The rebalancer plans moves by itself (node joined, imbalance; draining always). Like every `rebalancing` key it is a cluster-wide setting kept in the cluster map: the meta-service leader writes the file's value when the map has none yet; after that `PUT /api/cluster/settings` changes it and the map's value wins over the file.",
        usage: Use::Read(&[r(M, None, &[])]),
    },
    Key {
        path: "cluster.rebalancing.trigger_threshold",
        ty: "number",
        default: "0.2",
        doc: "Relative spread of per-node load ((max - min) / mean) that triggers a rebalance.",
        usage: Use::Read(&[r(M, None, &[])]),
    },
    Key {
        path: "cluster.rebalancing.max_concurrent_migrations",
        ty: "integer",
        default: "2",
        doc: "Shard transfers running at once, cluster-wide.",
        usage: Use::Read(&[r(M, None, &[])]),
    },
    Key {
        path: "cluster.rebalancing.throttle_mb_per_sec",
        ty: "number",
        default: "100",
        doc: "Snapshot streaming rate per transfer (MB/s, 0: unthrottled); storage nodes read it from the map.",
        usage: Use::Read(&[r(M, None, &[])]),
    },
    // ---- meta_service ----
    Key {
        path: "meta_service.listen",
        ty: "`ip:port`",
        default: "0.0.0.0:<cluster.raft.port>",
        doc: "HTTP address of Raft RPCs, the API, admin and metrics.",
        usage: Use::Read(&[r(M, Some("META_LISTEN"), &["--listen"])]),
    },
    Key {
        path: "meta_service.advertise",
        ty: "`host:port`",
        default: "this member's `peers` entry, else `listen` (127.0.0.1 for a wildcard)",
        doc: "The address other members and clients use.",
        usage: Use::Read(&[r(M, Some("META_ADVERTISE"), &["--advertise"])]),
    },
    Key {
        path: "meta_service.data_dir",
        ty: "path",
        default: "data/meta-<id>",
        doc: "Raft log, vote and snapshots.",
        usage: Use::Read(&[r(M, Some("META_DATA_DIR"), &["--data-dir"])]),
    },
    Key {
        path: "meta_service.peers",
        ty: "list of `id=host:port`",
        default: "[]",
        doc: "Every voter, this member included (ids as in `node_id`, pod names allowed). The lowest id initialises a new cluster.",
        usage: Use::Read(&[r(M, Some("META_PEERS"), &["--peers"])]),
    },
    Key {
        path: "meta_service.bootstrap",
        ty: "bool",
        default: "false",
        doc: "Single-member mode: initialise a cluster of this member alone (not with `peers`).",
        usage: Use::Read(&[r(M, None, &["--bootstrap"])]),
    },
    Key {
        path: "meta_service.keep_logs_after_snapshot",
        ty: "integer",
        default: "1000",
        doc: "Log entries kept behind a snapshot for lagging followers.",
        usage: Use::Read(&[r(M, None, &["--keep-logs-after-snapshot"])]),
    },
    Key {
        path: "meta_service.write_timeout",
        ty: DURATION,
        default: "5s",
        doc: "Longest a write or linearizable read waits for a quorum.",
        usage: Use::Read(&[r(M, None, &["--write-timeout-ms"])]),
    },
    Key {
        path: "meta_service.node_dead_after",
        ty: DURATION,
        default: "5s",
        doc: "Longest a storage node may stay silent before it is marked dead (the cap of the adaptive grace).",
        usage: Use::Read(&[r(M, Some("NODE_DEAD_AFTER_MS"), &["--node-dead-after-ms"])]),
    },
    Key {
        path: "meta_service.node_dead_after_min",
        ty: DURATION,
        default: "600ms",
        doc: "Shortest grace, for a node whose heartbeats arrive regularly.",
        usage: Use::Read(&[r(
            M,
            Some("NODE_DEAD_AFTER_MIN_MS"),
            &["--node-dead-after-min-ms"],
        )]),
    },
    Key {
        path: "meta_service.replica_replace_after",
        ty: DURATION,
        default: "60s",
        doc: "A dead node's replicas are re-created elsewhere after this long.",
        usage: Use::Read(&[r(M, None, &["--replica-replace-after-ms"])]),
    },
    // ---- storage_node ----
    Key {
        path: "storage_node.data_dir",
        ty: "path",
        default: "data/storage",
        doc: "Shards (WAL, segments, indexes).",
        usage: Use::Read(&[r(S, Some("DATA_DIR"), &["--data-dir"])]),
    },
    Key {
        path: "storage_node.rpc_listen",
        ty: "`ip:port`",
        default: "0.0.0.0:7950",
        doc: "QUIC data-plane address to bind.",
        usage: Use::Read(&[r(S, Some("RPC_LISTEN"), &["--rpc-listen"])]),
    },
    Key {
        path: "storage_node.advertise",
        ty: "`host:port`",
        default: "the bound address",
        doc: "Where other nodes and gateways reach the QUIC server.",
        usage: Use::Read(&[r(S, Some("RPC_ADVERTISE"), &["--advertise"])]),
    },
    Key {
        path: "storage_node.http_listen",
        ty: "`ip:port`",
        default: "0.0.0.0:7960",
        doc: "HTTP address of `/metrics` and `/health`.",
        usage: Use::Read(&[r(S, Some("HTTP_LISTEN"), &["--http-listen"])]),
    },
    Key {
        path: "storage_node.meta",
        ty: "list of `host:port`",
        default: "[127.0.0.1:<cluster.raft.port>]",
        doc: "Meta-service members.",
        usage: Use::Read(&[r(S, Some("META_ADDRS"), &["--meta"])]),
    },
    Key {
        path: "storage_node.certs_dir",
        ty: "path",
        default: "certs",
        doc: "Folder with `ca.pem` and this node's `<cert_name>.pem` / `.key` (QUIC mutual TLS).",
        usage: Use::Read(&[r(S, Some("CERTS_DIR"), &["--certs-dir"])]),
    },
    Key {
        path: "storage_node.cert_name",
        ty: "string",
        default: "storage-<id>",
        doc: "Certificate name; other nodes verify this node by it.",
        usage: Use::Read(&[r(S, Some("CERT_NAME"), &["--cert-name"])]),
    },
    Key {
        path: "storage_node.gossip_listen",
        ty: "`ip:port`",
        default: "0.0.0.0:<cluster.swim.port>, or gossip off",
        doc: "Gossip (chitchat) UDP address.",
        usage: Use::Read(&[r(S, Some("GOSSIP_LISTEN"), &["--gossip-listen"])]),
    },
    Key {
        path: "storage_node.gossip_advertise",
        ty: "`ip:port`",
        default: "`gossip_listen`",
        doc: "Gossip address peers reach this node on (required when listening on 0.0.0.0).",
        usage: Use::Read(&[r(S, Some("GOSSIP_ADVERTISE"), &["--gossip-advertise"])]),
    },
    Key {
        path: "storage_node.cluster_id",
        ty: "string",
        default: "vectordb",
        doc: "Nodes only gossip with nodes of the same cluster id.",
        usage: Use::Read(&[r(S, Some("CLUSTER_ID"), &["--cluster-id"])]),
    },
    Key {
        path: "storage_node.heartbeat",
        ty: DURATION,
        default: "100ms",
        doc: "Heartbeat period to the meta-service (each acknowledgement renews the write lease).",
        usage: Use::Read(&[r(S, Some("HEARTBEAT_MS"), &["--heartbeat-ms"])]),
    },
    Key {
        path: "storage_node.lease",
        ty: DURATION,
        default: "2500ms",
        doc: "Write lease until the meta-service says (it does: half the node's current grace).",
        usage: Use::Read(&[r(S, None, &["--lease-ms"])]),
    },
    Key {
        path: "storage_node.fsync",
        ty: "`always` or `never`",
        default: "always",
        doc: "`always`: fsync the WAL before acknowledging; `never`: leave it to the OS.",
        usage: Use::Read(&[r(S, Some("WAL_FSYNC"), &["--fsync"])]),
    },
    Key {
        path: "storage_node.max_segment_points",
        ty: "integer",
        default: "20000",
        doc: "Points per growing segment before it is indexed.",
        usage: Use::Read(&[r(S, None, &["--max-segment-points"])]),
    },
    Key {
        path: "storage_node.max_index_builds",
        ty: "integer",
        default: "half the cores, at least 1",
        doc: "Index builds and merges at once across the node's replicas (each uses cores / this many FAISS threads).",
        usage: Use::Read(&[r(S, Some("MAX_INDEX_BUILDS"), &["--max-index-builds"])]),
    },
    Key {
        path: "storage_node.write_timeout",
        ty: DURATION,
        default: "5s",
        doc: "How long a write waits for its replicas.",
        usage: Use::Read(&[r(S, None, &["--write-timeout-ms"])]),
    },
    // ---- gateway ----
    Key {
        path: "gateway.rest_port",
        ty: "port",
        default: "15001",
        doc: "REST (Qdrant API) port.",
        usage: Use::Read(&[r(G, None, &["--rest-port"])]),
    },
    Key {
        path: "gateway.listen_host",
        ty: "string",
        default: "0.0.0.0",
        doc: "Address the REST port binds on.",
        usage: Use::Read(&[r(G, None, &["--listen-host"])]),
    },
    Key {
        path: "gateway.meta_service",
        ty: "list of `host:port`",
        default: "each `cluster.seed_nodes` host on `cluster.raft.port`, else 127.0.0.1:<cluster.raft.port>",
        doc: "Meta-service members.",
        usage: Use::Read(&[r(G, Some("META_ADDRS"), &["--meta"])]),
    },
    Key {
        path: "gateway.api_key",
        ty: "string",
        default: "none (no authentication)",
        doc: "Read-write API key (`api-key` header or bearer token).",
        usage: Use::Read(&[r(G, Some("GATEWAY_API_KEY"), &["--api-key"])]),
    },
    Key {
        path: "gateway.read_only_api_key",
        ty: "string",
        default: "none",
        doc: "Key for searches, scrolls, counts and GETs only.",
        usage: Use::Read(&[r(
            G,
            Some("GATEWAY_READ_ONLY_API_KEY"),
            &["--read-only-api-key"],
        )]),
    },
    Key {
        path: "gateway.collection_keys",
        ty: "list of `{key, collections, access: read | read_write}`",
        default: "[]",
        doc: "Keys that reach only the collections named (aliases resolve first); never the cluster's administration.",
        usage: Use::Read(&[r(G, None, &[])]),
    },
    Key {
        path: "gateway.max_body_bytes",
        ty: "integer",
        default: "33554432",
        doc: "Largest request body.",
        usage: Use::Read(&[r(G, None, &[])]),
    },
    Key {
        path: "gateway.request_timeout",
        ty: DURATION,
        default: "30s",
        doc: "Longest a REST request may take.",
        usage: Use::Read(&[r(G, None, &[])]),
    },
    Key {
        path: "gateway.max_concurrent_requests",
        ty: "integer",
        default: "512",
        doc: "REST requests served at once; more wait.",
        usage: Use::Read(&[r(G, None, &[])]),
    },
    Key {
        path: "gateway.shard_timeout",
        ty: DURATION,
        default: "10s",
        doc: "Timeout of one call to a storage node.",
        usage: Use::Read(&[r(G, None, &[])]),
    },
    Key {
        path: "gateway.hedge_delay",
        ty: "duration or `off`",
        default: "200ms",
        doc: "A read not answered after this long is also sent to another replica.",
        usage: Use::Read(&[r(G, None, &[])]),
    },
    Key {
        path: "gateway.failure_penalty",
        ty: DURATION,
        default: "5s",
        doc: "A replica that failed is tried last for this long.",
        usage: Use::Read(&[r(G, None, &[])]),
    },
    Key {
        path: "gateway.write_attempts",
        ty: "integer (at least 1)",
        default: "6",
        doc: "Attempts of a write whose primary moved or failed.",
        usage: Use::Read(&[r(G, None, &[])]),
    },
    Key {
        path: "gateway.certs_dir",
        ty: "path",
        default: "certs",
        doc: "Folder with `ca.pem` and the gateway's `<cert_name>.pem` / `.key` (QUIC mutual TLS to storage nodes).",
        usage: Use::Read(&[r(G, Some("CERTS_DIR"), &["--certs-dir"])]),
    },
    Key {
        path: "gateway.cert_name",
        ty: "string",
        default: "gateway",
        doc: "The gateway's certificate name.",
        usage: Use::Read(&[r(G, Some("CERT_NAME"), &["--cert-name"])]),
    },
    Key {
        path: "gateway.tls",
        ty: "`{cert, key}` (PEM paths)",
        default: "none (plain HTTP)",
        doc: "HTTPS on the REST port: certificate chain (leaf first) and key (PKCS#8, PKCS#1 or SEC1).",
        usage: Use::Read(&[r(G, None, &[])]),
    },
];

/// The table's entry for `path`.
pub fn key(path: &str) -> Option<&'static Key> {
    KEYS.iter().find(|k| k.path == path)
}

/// The keys `service` reads, with how it reads them.
pub fn read_by(service: Service) -> impl Iterator<Item = (&'static Key, &'static Reader)> {
    KEYS.iter().flat_map(move |k| match k.usage {
        Use::Read(readers) => readers
            .iter()
            .filter(|r| r.service == service)
            .map(|r| (k, r))
            .collect::<Vec<_>>(),
        Use::Refused(_) => Vec::new(),
    })
}

const HEADER: &str = "\
<!-- Generated from lifecycle/src/config/reference.rs: do not edit by hand.
     Regenerate: UPDATE_CONFIG_REFERENCE=1 cargo test -p lifecycle config_reference -->
# Configuration reference

The meta-service, the storage nodes and the gateways read one YAML file in
the spec's layout: a `cluster:` section shared by all, and a section per
service (`meta_service:`, `storage_node:`, `gateway:`). Each binary takes it
with `--config <file>` (or `CONFIG_FILE=<file>`); one file can serve the
whole cluster, each service ignoring the other services' sections
(`deploy/config.example.yml` sets every key).

Precedence: the file, then environment variables, then flags (the later
wins). A key that is not in the table below (a typo) is an error naming the
key's path and the file; so is a key marked *refused*: the spec has it, this
implementation does not honour it, and accepting it silently would mislead.
`--check-config` prints the resolved configuration and exits.

Durations are `150ms`, `1s`, `2m`, `1h` or a bare number of milliseconds.
The flags of a duration key take milliseconds (their names end in `-ms`).

Tests: `lifecycle/src/config/tests.rs` (parsing, unknown and refused
keys, this page, the example file); each service's precedence test
`file_then_env_then_flags` and its test that the file sets every setting
(`meta-service/src/main.rs`, `storage-node/src/server/config.rs`,
`gateway/src/config/tests.rs`); `the_reference_pages_flags_exist` (each
binary has the flags and variables named here); the `config_file`
integration tests of meta-service, storage-node and gateway, which run the
real binary on files with bad keys (refused, naming the key and the file)
and on a good file (`--check-config` shows its values); and
`scripts/config-cluster.sh` (in `scripts/test.sh`): five processes started
from config files alone form a cluster that takes writes and searches.
";

/// The reference page (`docs/configuration.md`).
pub fn markdown() -> String {
    let mut out = String::from(HEADER);
    let mut section = "";
    for k in KEYS {
        let (sec, rest) = k.path.split_once('.').unwrap_or(("", k.path));
        if sec != section {
            section = sec;
            out.push_str(&format!(
                "\n## `{sec}:`\n\n| Key | Type | Default | Environment | Flags | Read by | Meaning |\n|---|---|---|---|---|---|---|\n"
            ));
        }
        let (env, flags, readers, doc) = match k.usage {
            Use::Read(readers) => {
                let per = |f: &dyn Fn(&Reader) -> String| -> String {
                    let parts: Vec<String> = readers
                        .iter()
                        .map(|r| (r, f(r)))
                        .filter(|(_, s)| !s.is_empty())
                        .map(|(r, s)| {
                            if readers.len() > 1 {
                                format!("{s} ({})", r.service.name())
                            } else {
                                s
                            }
                        })
                        .collect();
                    if parts.is_empty() {
                        "-".into()
                    } else {
                        parts.join("<br>")
                    }
                };
                let env = per(&|r| r.env.map(|e| format!("`{e}`")).unwrap_or_default());
                let flags = per(&|r| {
                    r.flags
                        .iter()
                        .map(|f| format!("`{f}`"))
                        .collect::<Vec<_>>()
                        .join(" ")
                });
                let names: Vec<&str> = readers.iter().map(|r| r.service.name()).collect();
                (env, flags, names.join(", "), k.doc.to_string())
            }
            Use::Refused(reason) => (
                "-".into(),
                "-".into(),
                "*refused*".into(),
                format!("Not supported: {reason}."),
            ),
        };
        let esc = |s: &str| s.replace('|', "\\|");
        out.push_str(&format!(
            "| `{rest}` | {} | {} | {env} | {flags} | {readers} | {} |\n",
            esc(k.ty),
            esc(k.default),
            esc(&doc)
        ));
    }
    out
}
