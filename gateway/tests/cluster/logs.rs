//! The `gateway` binary's log when stderr is a pipe: plain text without
//! colour codes, or JSON lines when asked.

use std::process::Command;
use std::time::Duration;

use lifecycle::logging::check;

/// "starting gateway", "gateway listening".
const LINES: usize = 2;

/// A gateway on a free loopback port, pointed at a meta-service that does
/// not exist (it starts and serves anyway).
fn gateway(certs: &std::path::Path) -> Command {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gateway"));
    cmd.args([
        "--listen-host",
        "127.0.0.1",
        "--rest-port",
        &port.to_string(),
    ])
    .args(["--meta", "127.0.0.1:1"])
    .arg("--certs-dir")
    .arg(certs)
    .env("RUST_LOG", "info")
    .env_remove("LOG_FORMAT")
    .env_remove("CONFIG_FILE");
    cmd
}

#[test]
fn the_gateway_logs_plain_text_on_a_pipe_and_json_lines_when_asked() {
    let dir = tempfile::tempdir().expect("temp dir");
    transport::certs::init_dir(dir.path(), "test-ca", false).expect("ca");
    transport::certs::issue_to_dir(dir.path(), "gateway", &[], &[]).expect("gateway cert");
    let log = check::stderr_lines(gateway(dir.path()), LINES, Duration::from_secs(20));
    assert_eq!(check::plain_text(&log), Ok(LINES), "{log}");

    let mut cmd = gateway(dir.path());
    cmd.args(["--log-format", "json"]);
    let log = check::stderr_lines(cmd, LINES, Duration::from_secs(20));
    assert_eq!(check::json_lines(&log), Ok(LINES), "{log}");
}
