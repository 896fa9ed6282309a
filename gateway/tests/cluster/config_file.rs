//! The real binary and the cluster's config file: a bad key anywhere in
//! the file stops it with the key's path and the file's name; a good
//! file's values are what `--check-config` shows.

use std::path::Path;

use lifecycle::config::check;

const BINARY: &str = env!("CARGO_BIN_EXE_gateway");

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
        "cluster:\n  node_id: gw-7\n  raft: {port: 9123}\n  seed_nodes: ['h1:7946', 'h2:7946']\n\
         gateway: {rest_port: 16001, listen_host: 127.0.0.1, api_key: k, hedge_delay: off, write_attempts: 3, cert_name: gw}\n\
         storage_node: {data_dir: /elsewhere}\n",
        dir.path(),
    );
    for want in [
        "node_id=gw-7 ",
        "listen=127.0.0.1:16001 ",
        "meta=h1:9123,h2:9123 ",
        "cert_name=gw ",
        "api_key=set ",
        "hedge_delay_ms=off ",
        "write_attempts=3",
    ] {
        assert!(out.contains(want), "{want:?} not in {out}");
    }
}
