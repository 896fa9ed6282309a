//! The real binary and the cluster's config file: a bad key anywhere in
//! the file stops it with the key's path and the file's name; a good
//! file's values are what `--check-config` shows.

use std::path::Path;

use lifecycle::config::check;

const BINARY: &str = env!("CARGO_BIN_EXE_storage-node");

#[test]
fn config_file_errors_name_the_key_and_the_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    check::refuses_bad_files(Path::new(BINARY), &["--id", "1"], dir.path());
}

#[test]
fn check_config_shows_the_files_values() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = check::check_config(
        Path::new(BINARY),
        "cluster:\n  node_id: vectordb-storage-2\n  swim: {probe_interval: 500ms, port: 7999}\n  raft: {port: 9123}\n  seed_nodes: ['s0:7999']\n\
         storage_node: {data_dir: /tmp/s, gossip_advertise: '10.1.2.3:7999', heartbeat: 250ms, fsync: never, max_segment_points: 123}\n\
         meta_service: {data_dir: /elsewhere}\n",
        dir.path(),
    );
    for want in [
        "id=3 ",
        "cert_name=storage-3 ",
        "data_dir=/tmp/s ",
        "meta=127.0.0.1:9123 ",
        "heartbeat_ms=250 ",
        "fsync=Never ",
        "max_segment_points=123 ",
        "gossip=0.0.0.0:7999 gossip_advertise=10.1.2.3:7999 gossip_seeds=s0:7999 ",
        "gossip_interval_ms=50 phi_threshold=32",
    ] {
        assert!(out.contains(want), "{want:?} not in {out}");
    }
}
