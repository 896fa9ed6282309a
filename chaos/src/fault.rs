//! Fault injection from the host: SIGKILL and restarts through `docker`,
//! network partitions through iptables rules entered in each container's
//! own network namespace (`nsenter -t <pid> -n iptables-restore`).
//!
//! A partition drops, in both directions and on both ends, every packet
//! between the two sides' compose-network addresses. The host (the runner)
//! is on neither side, so it can still talk to every container and see
//! what each side answers. Each container's rules go in as one
//! `iptables-restore --noflush` transaction, all containers at once, so
//! the cut lands within a few milliseconds everywhere.

use std::net::Ipv4Addr;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use crate::compose::{docker, Container};

/// `docker kill -s KILL`: the process dies at once, no shutdown path runs.
pub async fn kill(c: &Container) -> Result<()> {
    docker(&["kill", "-s", "KILL", &c.id], Duration::from_secs(30))
        .await
        .with_context(|| format!("SIGKILL {}", c.service))
        .map(|_| ())
}

/// `docker start` (a no-op for a running container).
pub async fn start(c: &Container) -> Result<()> {
    docker(&["start", &c.id], Duration::from_secs(60))
        .await
        .with_context(|| format!("start {}", c.service))
        .map(|_| ())
}

/// `docker stop -t <grace>`: SIGTERM, then SIGKILL after the grace period.
pub async fn stop(c: &Container, grace: Duration) -> Result<()> {
    let secs = grace.as_secs().max(1).to_string();
    docker(
        &["stop", "-t", &secs, &c.id],
        grace + Duration::from_secs(30),
    )
    .await
    .with_context(|| format!("stop {}", c.service))
    .map(|_| ())
}

/// The `iptables-restore` input that cuts (`-I`) or heals (`-D`) one
/// container from `others`.
pub fn rules(others: &[Ipv4Addr], op: &str) -> String {
    let mut s = String::from("*filter\n");
    for ip in others {
        s.push_str(&format!("{op} INPUT -s {ip}/32 -j DROP\n"));
        s.push_str(&format!("{op} OUTPUT -d {ip}/32 -j DROP\n"));
    }
    s.push_str("COMMIT\n");
    s
}

async fn restore(pid: u32, input: String, what: &str) -> Result<()> {
    let mut child = Command::new("nsenter")
        .args([
            "-t",
            &pid.to_string(),
            "-n",
            "iptables-restore",
            "-w",
            "10",
            "--noflush",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("spawn nsenter for {what}"))?;
    let mut stdin = child
        .stdin
        .take()
        .ok_or_else(|| anyhow!("no stdin for nsenter ({what})"))?;
    stdin
        .write_all(input.as_bytes())
        .await
        .with_context(|| format!("write rules for {what}"))?;
    drop(stdin);
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .map_err(|_| anyhow!("iptables-restore for {what} hung"))?
        .with_context(|| format!("iptables-restore for {what}"))?;
    if !out.status.success() {
        bail!(
            "iptables-restore in {what} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// An applied partition between two groups of containers.
pub struct Partition {
    /// Per container: its PID (network namespace) and the peers it is cut from.
    cuts: Vec<(Container, Vec<Ipv4Addr>)>,
    healed: bool,
}

impl Partition {
    /// Cuts every container of `a` from every container of `b`.
    pub async fn apply(a: &[Container], b: &[Container]) -> Result<Partition> {
        let ips = |side: &[Container]| -> Result<Vec<Ipv4Addr>> {
            side.iter()
                .map(|c| {
                    c.ip.ok_or_else(|| anyhow!("{} has no address (not running?)", c.service))
                })
                .collect()
        };
        let (ips_a, ips_b) = (ips(a)?, ips(b)?);
        let mut cuts: Vec<(Container, Vec<Ipv4Addr>)> = Vec::new();
        for c in a {
            cuts.push((c.clone(), ips_b.clone()));
        }
        for c in b {
            cuts.push((c.clone(), ips_a.clone()));
        }
        for (c, _) in &cuts {
            if !c.running || c.pid == 0 {
                bail!("{} is not running: cannot partition it", c.service);
            }
        }
        let results = futures::future::join_all(
            cuts.iter()
                .map(|(c, peers)| restore(c.pid, rules(peers, "-I"), &c.service)),
        )
        .await;
        let mut p = Partition {
            cuts,
            healed: false,
        };
        if let Some(e) = results.into_iter().find_map(|r| r.err()) {
            let _ = p.heal().await;
            return Err(e.context("apply partition"));
        }
        Ok(p)
    }

    /// Deletes the rules again. A container restarted meanwhile has a new
    /// namespace without them; its failure is reported, the others healed.
    pub async fn heal(&mut self) -> Result<()> {
        if self.healed {
            return Ok(());
        }
        let results = futures::future::join_all(
            self.cuts
                .iter()
                .map(|(c, peers)| restore(c.pid, rules(peers, "-D"), &c.service)),
        )
        .await;
        self.healed = true;
        let errors: Vec<String> = results
            .into_iter()
            .filter_map(|r| r.err().map(|e| format!("{e:#}")))
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            bail!("heal: {}", errors.join("; "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_drop_both_directions_per_peer() {
        let r = rules(
            &[Ipv4Addr::new(10, 0, 0, 3), Ipv4Addr::new(10, 0, 0, 4)],
            "-I",
        );
        assert_eq!(
            r,
            "*filter\n-I INPUT -s 10.0.0.3/32 -j DROP\n-I OUTPUT -d 10.0.0.3/32 -j DROP\n\
             -I INPUT -s 10.0.0.4/32 -j DROP\n-I OUTPUT -d 10.0.0.4/32 -j DROP\nCOMMIT\n"
        );
        assert!(rules(&[], "-D").starts_with("*filter\nCOMMIT"));
    }
}
