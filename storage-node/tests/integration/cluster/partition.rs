//! A real network partition on loopback: each storage node runs in its own
//! cgroup (v2) from its first instruction (sockets are tagged with the
//! cgroup they were created in), and cutting a node off makes the kernel
//! drop every packet it sends (`iptables -m cgroup`), except to the test
//! client's one UDP port, so the test can still see what the node answers.
//! Needs root, iptables and a cgroup v2 hierarchy; in CI (`CI` set) their
//! absence fails the test.

use std::path::PathBuf;
use std::process::Command;

pub struct Partition {
    name: String,
    client_port: u16,
}

/// A cgroup for one node process; removed (once empty) on drop.
pub struct NodeCgroup {
    pub path: PathBuf,
    pub name: String,
}

impl NodeCgroup {
    pub fn create(label: &str) -> NodeCgroup {
        let root = cgroup2_root().expect("cgroup v2");
        let name = format!("vdb-test-{}-{label}", std::process::id());
        let path = root.join(&name);
        std::fs::create_dir_all(&path).expect("create cgroup");
        NodeCgroup { path, name }
    }
}

impl Drop for NodeCgroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.path);
    }
}

fn cgroup2_root() -> Option<PathBuf> {
    ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.join("cgroup.procs").exists() && p.join("cgroup.subtree_control").exists())
}

fn iptables(args: &[&str]) -> bool {
    Command::new("iptables")
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Whether this machine can cut a process off; `false` (with a message)
/// only outside CI.
pub fn available() -> bool {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0"))
        .unwrap_or(false);
    let ok = root && cgroup2_root().is_some() && iptables(&["-L", "OUTPUT", "-n"]);
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "partition test needs root, iptables and cgroup v2 in CI"
        );
        eprintln!("SKIPPED: partition test needs root, iptables and cgroup v2");
    }
    ok
}

impl Partition {
    /// Cuts the processes of `cgroup` off from everyone but `client_port`.
    pub fn isolate(cgroup: &NodeCgroup, client_port: u16) -> Partition {
        let p = Partition {
            name: cgroup.name.clone(),
            client_port,
        };
        assert!(
            iptables(&["-I", "OUTPUT", "-m", "cgroup", "--path", &p.name, "-j", "DROP"]),
            "add DROP rule"
        );
        let port = p.client_port.to_string();
        assert!(
            iptables(&[
                "-I", "OUTPUT", "-m", "cgroup", "--path", &p.name, "-p", "udp", "--dport", &port,
                "-j", "ACCEPT"
            ]),
            "add ACCEPT rule"
        );
        p
    }

    /// Lets the traffic through again (the process stays in the cgroup).
    pub fn heal(&self) {
        let port = self.client_port.to_string();
        while iptables(&[
            "-D", "OUTPUT", "-m", "cgroup", "--path", &self.name, "-p", "udp", "--dport", &port,
            "-j", "ACCEPT",
        ]) {}
        while iptables(&[
            "-D", "OUTPUT", "-m", "cgroup", "--path", &self.name, "-j", "DROP",
        ]) {}
    }
}

impl Drop for Partition {
    fn drop(&mut self) {
        self.heal();
    }
}
