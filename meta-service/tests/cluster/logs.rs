//! The `meta-service` binary's log when stderr is a pipe (what a process
//! manager, a container runtime or `scripts/local-cluster.sh` gives it).

use std::process::Command;
use std::time::Duration;

use lifecycle::logging::check;

use crate::util::free_port;

/// A single `--bootstrap` member in a temp dir, logging at info.
fn member(dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_meta-service"));
    cmd.args(["--id", "1", "--bootstrap"])
        .args(["--listen", &format!("127.0.0.1:{}", free_port())])
        .arg("--data-dir")
        .arg(dir)
        .env("RUST_LOG", "info")
        .env_remove("LOG_FORMAT");
    cmd
}

/// Three lines: started, initialised, became leader.
const LINES: usize = 3;

#[test]
fn a_piped_log_is_plain_text_without_colour_codes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = check::stderr_lines(member(dir.path()), LINES, Duration::from_secs(20));
    assert_eq!(check::plain_text(&log), Ok(LINES), "{log}");
}

#[test]
fn log_format_json_writes_one_json_object_per_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut cmd = member(dir.path());
    cmd.env("LOG_FORMAT", "json");
    let log = check::stderr_lines(cmd, LINES, Duration::from_secs(20));
    assert_eq!(check::json_lines(&log), Ok(LINES), "{log}");

    let dir = tempfile::tempdir().expect("temp dir");
    let mut cmd = member(dir.path());
    cmd.args(["--log-format", "json"]);
    let log = check::stderr_lines(cmd, LINES, Duration::from_secs(20));
    assert_eq!(check::json_lines(&log), Ok(LINES), "{log}");
}
