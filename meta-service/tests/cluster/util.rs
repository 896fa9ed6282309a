//! Real `meta-service` processes on loopback, for the cluster tests.
//!
//! Ports are chosen by the OS (bind 127.0.0.1:0, note the port, release
//! it); data lives in a temp dir that outlives restarts of the processes;
//! every wait is bounded in time.

use std::collections::BTreeMap;
use std::fs::File;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use meta_client::{MetaClient, MetaHealth, MetaReadConsistency};
use protocol::cluster::ClusterMapView;

/// Multi-process tests share two cores; running them one at a time keeps
/// election timing meaningful.
pub static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local addr").port()
}

pub struct Member {
    pub id: u64,
    pub addr: String,
    pub dir: PathBuf,
    args: Vec<String>,
    child: Option<Child>,
    starts: u32,
}

impl Member {
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "member {} already running", self.id);
        self.starts += 1;
        let log = File::create(
            self.dir
                .join(format!("member-{}.{}.log", self.id, self.starts)),
        )
        .expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_meta-service"))
            .args(["--id", &self.id.to_string(), "--listen", &self.addr])
            .arg("--data-dir")
            .arg(self.dir.join("data"))
            .args(&self.args)
            .env("RUST_LOG", "info,openraft=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn meta-service");
        self.child = Some(child);
    }

    /// SIGKILL, no goodbye.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    pub fn client(&self) -> MetaClient {
        MetaClient::new([self.addr.clone()]).with_timeout(Duration::from_secs(5))
    }

    pub async fn health(&self) -> Option<MetaHealth> {
        self.client().health_of(0).await.ok()
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.kill();
    }
}

pub struct Cluster {
    pub members: Vec<Member>,
    /// Holds every member's data dir until the test ends.
    pub _tmp: tempfile::TempDir,
}

impl Cluster {
    /// `n` members started with `--peers` (n > 1) or `--bootstrap` (n = 1),
    /// plus `extra` flags.
    pub fn start(n: u64, extra: &[&str]) -> Cluster {
        Self::start_mode(n, extra, false)
    }

    /// Member 1 bootstraps a cluster of itself; the others start
    /// uninitialised, waiting to be added through the admin API.
    pub fn start_bootstrap_first(n: u64, extra: &[&str]) -> Cluster {
        Self::start_mode(n, extra, true)
    }

    fn start_mode(n: u64, extra: &[&str], bootstrap_first: bool) -> Cluster {
        let tmp = tempfile::tempdir().expect("tempdir");
        let addrs: BTreeMap<u64, String> = (1..=n)
            .map(|id| (id, format!("127.0.0.1:{}", free_port())))
            .collect();
        let peers = addrs
            .iter()
            .map(|(id, a)| format!("{id}={a}"))
            .collect::<Vec<_>>()
            .join(",");
        let members = addrs
            .iter()
            .map(|(&id, addr)| {
                let dir = tmp.path().join(format!("m{id}"));
                std::fs::create_dir_all(&dir).expect("member dir");
                let mut args: Vec<String> = match (bootstrap_first, n) {
                    (true, _) if id == 1 => vec!["--bootstrap".into()],
                    (true, _) => vec![],
                    (false, 1) => vec!["--bootstrap".into()],
                    (false, _) => vec!["--peers".into(), peers.clone()],
                };
                args.extend(extra.iter().map(|s| s.to_string()));
                Member {
                    id,
                    addr: addr.clone(),
                    dir,
                    args,
                    child: None,
                    starts: 0,
                }
            })
            .collect();
        let mut cluster = Cluster { members, _tmp: tmp };
        for m in &mut cluster.members {
            m.start();
        }
        cluster
    }

    pub fn member(&mut self, id: u64) -> &mut Member {
        self.members
            .iter_mut()
            .find(|m| m.id == id)
            .expect("member id")
    }

    /// A client of every member.
    pub fn client(&self) -> MetaClient {
        MetaClient::new(self.members.iter().map(|m| m.addr.clone()))
            .with_timeout(Duration::from_secs(5))
    }

    /// A client of the running members only.
    pub fn client_of_running(&self) -> MetaClient {
        MetaClient::new(
            self.members
                .iter()
                .filter(|m| m.is_running())
                .map(|m| m.addr.clone()),
        )
        .with_timeout(Duration::from_secs(5))
    }

    /// Waits (bounded) until a running member says it leads and every
    /// running member agrees; returns the leader's id and term.
    pub async fn wait_leader(&self, within: Duration) -> Option<(u64, u64)> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            let mut leader = None;
            let mut agreed = true;
            for m in self.members.iter().filter(|m| m.is_running()) {
                match m.health().await {
                    Some(h) if h.state == "Leader" => leader = Some((h.id, h.term)),
                    Some(h) if h.leader.is_some() => {}
                    _ => agreed = false,
                }
            }
            if let (Some(l), true) = (leader, agreed) {
                let all_agree = futures_all_agree(self, l.0).await;
                if all_agree {
                    return Some(l);
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    }

    /// Waits (bounded) until every running member has applied up to `epoch`.
    pub async fn wait_epoch_everywhere(&self, epoch: u64, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            let mut all = true;
            for m in self.members.iter().filter(|m| m.is_running()) {
                if m.health().await.is_none_or(|h| h.epoch < epoch) {
                    all = false;
                }
            }
            if all {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }

    pub async fn linearizable_map(&self) -> ClusterMapView {
        self.client_of_running()
            .cluster_map(MetaReadConsistency::Linearizable)
            .await
            .expect("linearizable map")
    }

    /// Last lines of every member's logs (printed when a test fails).
    pub fn log_tails(&self) -> String {
        let mut out = String::new();
        for m in &self.members {
            for i in 1..=m.starts {
                let path = m.dir.join(format!("member-{}.{}.log", m.id, i));
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                let lines: Vec<&str> = text.lines().collect();
                out.push_str(&format!("--- {} ---\n", path.display()));
                for l in &lines[lines.len().saturating_sub(15)..] {
                    out.push_str(l);
                    out.push('\n');
                }
            }
        }
        out
    }
}

async fn futures_all_agree(cluster: &Cluster, leader: u64) -> bool {
    for m in cluster.members.iter().filter(|m| m.is_running()) {
        match m.health().await {
            Some(h) if h.leader == Some(leader) => {}
            _ => return false,
        }
    }
    true
}
