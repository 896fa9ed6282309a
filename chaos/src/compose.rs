//! Control of the compose cluster through the `docker-compose` (v1) and
//! `docker` command-line tools. Every command is bounded in time and its
//! failure carries the command line and stderr.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;
use tokio::process::Command;

/// One compose project (`docker-compose -p <project> -f … -f …`).
#[derive(Clone, Debug)]
pub struct Compose {
    pub project: String,
    pub files: Vec<PathBuf>,
    /// Where the compose files' relative paths resolve (the repository).
    pub workdir: PathBuf,
}

/// A service's container as `docker inspect` reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Container {
    pub id: String,
    pub service: String,
    pub running: bool,
    /// Host PID of the container's first process (0 when stopped).
    pub pid: u32,
    /// Address on the compose network.
    pub ip: Option<Ipv4Addr>,
}

async fn run(mut cmd: Command, what: &str, timeout: Duration) -> Result<String> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let out = tokio::time::timeout(timeout, cmd.output())
        .await
        .map_err(|_| anyhow!("`{what}` did not finish in {timeout:?}"))?
        .with_context(|| format!("run `{what}`"))?;
    if !out.status.success() {
        bail!(
            "`{what}` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `docker <args>`.
pub async fn docker(args: &[&str], timeout: Duration) -> Result<String> {
    let mut cmd = Command::new("docker");
    cmd.args(args);
    run(cmd, &format!("docker {}", args.join(" ")), timeout).await
}

impl Compose {
    fn command(&self, args: &[&str]) -> (Command, String) {
        let mut cmd = Command::new("docker-compose");
        cmd.current_dir(&self.workdir).arg("-p").arg(&self.project);
        let mut line = format!("docker-compose -p {}", self.project);
        for f in &self.files {
            cmd.arg("-f").arg(f);
            line.push_str(&format!(" -f {}", f.display()));
        }
        cmd.args(args);
        line.push(' ');
        line.push_str(&args.join(" "));
        (cmd, line)
    }

    pub async fn compose(&self, args: &[&str], timeout: Duration) -> Result<String> {
        let (cmd, line) = self.command(args);
        run(cmd, &line, timeout).await
    }

    /// `up -d`: creates what is missing and starts what is stopped.
    pub async fn up(&self) -> Result<()> {
        self.compose(&["up", "-d"], Duration::from_secs(300))
            .await
            .map(|_| ())
    }

    /// `down -v`: removes the containers, the network and the volumes.
    pub async fn down(&self) -> Result<()> {
        self.compose(
            &["down", "-v", "--remove-orphans", "-t", "5"],
            Duration::from_secs(180),
        )
        .await
        .map(|_| ())
    }

    /// The last `tail` log lines of a service (stdout and stderr).
    pub async fn logs(&self, service: &str, tail: usize) -> Result<String> {
        let (mut cmd, line) =
            self.command(&["logs", "--no-color", "--tail", &tail.to_string(), service]);
        cmd.stderr(Stdio::piped());
        run(cmd, &line, Duration::from_secs(60)).await
    }

    /// Every container of the project, by service name, running or not.
    pub async fn containers(&self) -> Result<BTreeMap<String, Container>> {
        let label = format!("label=com.docker.compose.project={}", self.project);
        let ids = docker(
            &["ps", "-a", "-q", "--no-trunc", "--filter", &label],
            Duration::from_secs(30),
        )
        .await?;
        let ids: Vec<&str> = ids.split_whitespace().collect();
        if ids.is_empty() {
            return Ok(BTreeMap::new());
        }
        let mut args = vec!["inspect"];
        args.extend(ids);
        let raw = docker(&args, Duration::from_secs(30)).await?;
        let parsed: Value = serde_json::from_str(&raw).context("parse docker inspect output")?;
        let list = parsed
            .as_array()
            .ok_or_else(|| anyhow!("docker inspect did not answer a list"))?;
        let mut out = BTreeMap::new();
        for c in list {
            let container = parse_inspect(c)?;
            out.insert(container.service.clone(), container);
        }
        Ok(out)
    }
}

/// One element of `docker inspect`'s answer.
pub fn parse_inspect(c: &Value) -> Result<Container> {
    let id = c["Id"]
        .as_str()
        .ok_or_else(|| anyhow!("container without Id"))?
        .to_string();
    let service = c["Config"]["Labels"]["com.docker.compose.service"]
        .as_str()
        .ok_or_else(|| anyhow!("container {id} has no compose service label"))?
        .to_string();
    let networks = c["NetworkSettings"]["Networks"].as_object();
    let ip = networks.and_then(|n| {
        let mut nets: Vec<(&String, &Value)> = n.iter().collect();
        // The compose network (`<project>_vectordb`) first.
        nets.sort_by_key(|(name, _)| !name.ends_with("_vectordb"));
        nets.iter()
            .filter_map(|(_, v)| v["IPAddress"].as_str())
            .find_map(|s| s.parse::<Ipv4Addr>().ok())
    });
    Ok(Container {
        id,
        service,
        running: c["State"]["Running"].as_bool().unwrap_or(false),
        pid: c["State"]["Pid"].as_u64().unwrap_or(0) as u32,
        ip,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn inspect_output_gives_service_pid_and_compose_network_ip() {
        let c = json!({
            "Id": "abc",
            "Config": {"Labels": {"com.docker.compose.service": "storage3"}},
            "State": {"Running": true, "Pid": 4242},
            "NetworkSettings": {"Networks": {
                "bridge": {"IPAddress": "172.17.0.9"},
                "chaos_vectordb": {"IPAddress": "172.30.0.7"}
            }}
        });
        let p = parse_inspect(&c).expect("parse");
        assert_eq!(p.service, "storage3");
        assert_eq!(p.pid, 4242);
        assert!(p.running);
        assert_eq!(p.ip, Some(Ipv4Addr::new(172, 30, 0, 7)));
        let stopped = json!({
            "Id": "def",
            "Config": {"Labels": {"com.docker.compose.service": "meta1"}},
            "State": {"Running": false, "Pid": 0},
            "NetworkSettings": {"Networks": {"chaos_vectordb": {"IPAddress": ""}}}
        });
        let p = parse_inspect(&stopped).expect("parse");
        assert_eq!((p.running, p.pid, p.ip), (false, 0, None));
        assert!(parse_inspect(&json!({"Id": "x"})).is_err());
    }
}
