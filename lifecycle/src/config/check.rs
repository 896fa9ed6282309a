//! What each binary's tests run against the real binary (behind the
//! `testsuite` feature): a file with an unknown, mistyped or refused key —
//! in the binary's own section or another service's — makes it exit with
//! an error naming the key and the file, before it binds anything; a good
//! file's values show in `--check-config`.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Bad files and the key each one's error must name.
pub const BAD_FILES: &[(&str, &str)] = &[
    (
        "cluster:\n  swim:\n    probe_intervl: 1s\n",
        "cluster.swim.probe_intervl",
    ),
    ("cluster:\n  raft:\n    port: seven\n", "cluster.raft.port"),
    ("cluster:\n  region: eu\n", "cluster.region"),
    (
        "cluster:\n  swim: {gossip_fanout: 5}\n",
        "cluster.swim.gossip_fanout",
    ),
    ("meta_service:\n  data_dri: /x\n", "meta_service.data_dri"),
    (
        "storage_node:\n  heartbeat: often\n",
        "storage_node.heartbeat",
    ),
    ("gateway:\n  rest_prot: 1\n", "gateway.rest_prot"),
    ("gatway:\n  rest_port: 1\n", "gatway"),
];

/// Runs `binary` (with `args`, e.g. an id) on every file of [`BAD_FILES`]
/// written into `dir`; panics unless each run fails within 30 s with the
/// key's path and the file's path on stderr.
pub fn refuses_bad_files(binary: &Path, args: &[&str], dir: &Path) {
    for (i, (text, key)) in BAD_FILES.iter().enumerate() {
        let file = dir.join(format!("bad-{i}.yml"));
        std::fs::write(&file, text).expect("write config file");
        let mut cmd = command(binary);
        cmd.arg("--config").arg(&file).args(args);
        let (status, stderr) = run(cmd, Duration::from_secs(30));
        assert!(
            status == Some(false),
            "{}: started (or hung) with {text:?}: {stderr}",
            binary.display()
        );
        assert!(
            stderr.contains(key) && stderr.contains(&file.display().to_string()),
            "{}: the error for {text:?} does not name `{key}` and the file: {stderr}",
            binary.display()
        );
    }
}

/// Runs `binary --config <file> --check-config` with `text` as the file;
/// returns its stdout (panics if it fails).
pub fn check_config(binary: &Path, text: &str, dir: &Path) -> String {
    let file = dir.join("good.yml");
    std::fs::write(&file, text).expect("write config file");
    let mut cmd = command(binary);
    cmd.arg("--config").arg(&file).arg("--check-config");
    let out = cmd.output().expect("run binary");
    assert!(
        out.status.success(),
        "{} --check-config failed: {}",
        binary.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The binary with none of the environment that would override the file.
fn command(binary: &Path) -> Command {
    let mut cmd = Command::new(binary);
    for var in [
        "CONFIG_FILE",
        "NODE_ID",
        "META_ID",
        "SEED_NODES",
        "CLUSTER_ENABLED",
        "META_ADDRS",
        "DATA_DIR",
        "META_DATA_DIR",
        "LOG_FORMAT",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

/// Exit success (`None` if it was still running at `timeout` and got
/// killed) and stderr.
fn run(mut cmd: Command, timeout: Duration) -> (Option<bool>, String) {
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn binary");
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status.success()),
            Ok(None) if started.elapsed() < timeout => {
                std::thread::sleep(Duration::from_millis(20))
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        use std::io::Read;
        let _ = pipe.read_to_string(&mut stderr);
    }
    (status, stderr)
}

/// Every flag the reference page names for `service` is one of `cmd`'s,
/// with the environment variable the page names; where the page names
/// none, `env_optional` lets the flag have one anyway (the gateway's
/// historical variables).
pub fn reference_flags_exist(
    cmd: &clap::Command,
    service: super::reference::Service,
    env_optional: bool,
) {
    for (key, reader) in super::reference::read_by(service) {
        for flag in reader.flags {
            let name = flag.trim_start_matches("--");
            let arg = cmd
                .get_arguments()
                .find(|a| a.get_long() == Some(name))
                .unwrap_or_else(|| panic!("{}: no flag {flag}", key.path));
            if env_optional && reader.env.is_none() {
                continue;
            }
            assert_eq!(
                arg.get_env().and_then(|e| e.to_str()),
                reader.env,
                "{}: {flag}",
                key.path
            );
        }
    }
}
