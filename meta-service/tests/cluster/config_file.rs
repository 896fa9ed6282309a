//! The real binary and the cluster's config file: a bad key anywhere in
//! the file stops it with the key's path and the file's name; a good
//! file's values are what `--check-config` shows.

use std::path::Path;

use lifecycle::config::check;

const BINARY: &str = env!("CARGO_BIN_EXE_meta-service");

#[test]
fn config_file_errors_name_the_key_and_the_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    check::refuses_bad_files(Path::new(BINARY), &[], dir.path());
}

#[test]
fn check_config_shows_the_files_values() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = check::check_config(
        Path::new(BINARY),
        "cluster:\n  node_id: vectordb-meta-1\n  raft: {election_timeout: 200-400ms, heartbeat_interval: 70ms, snapshot_interval: 99, port: 9123}\n  rebalancing: {throttle_mb_per_sec: 7}\n\
         meta_service: {bootstrap: true, data_dir: /tmp/m, node_dead_after: 4s}\n\
         storage_node: {data_dir: /elsewhere}\ngateway: {rest_port: 1}\n",
        dir.path(),
    );
    for want in [
        "id=2 ",
        "listen=0.0.0.0:9123 ",
        "data_dir=/tmp/m ",
        "initialises=2 ",
        "election_timeout_ms=200-400 ",
        "heartbeat_ms=70 ",
        "snapshot_interval=99 ",
        "node_dead_after_ms=4000 ",
        "initial_settings=rebalancing.throttle_mb_per_sec=7",
    ] {
        assert!(out.contains(want), "{want:?} not in {out}");
    }
}
