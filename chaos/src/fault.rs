//! Fault injection from the host: SIGKILL and restarts through `docker`,
//! network partitions through iptables rules entered in each container's
//! own network namespace (`nsenter -t <pid> -n iptables-restore`), and a
//! degraded link (`tc tbf` and random drops) in the same way.
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

/// Which packets a cut drops on the container it is entered in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Both,
    /// Only what arrives: the container can send but hears nothing back.
    Inbound,
}

/// The `iptables-restore` input that cuts (`-I`) or heals (`-D`) one
/// container from `others`.
pub fn rules(others: &[Ipv4Addr], op: &str, direction: Direction) -> String {
    let mut s = String::from("*filter\n");
    for ip in others {
        s.push_str(&format!("{op} INPUT -s {ip}/32 -j DROP\n"));
        if direction == Direction::Both {
            s.push_str(&format!("{op} OUTPUT -d {ip}/32 -j DROP\n"));
        }
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
    direction: Direction,
    healed: bool,
}

fn ips(side: &[Container]) -> Result<Vec<Ipv4Addr>> {
    side.iter()
        .map(|c| {
            c.ip.ok_or_else(|| anyhow!("{} has no address (not running?)", c.service))
        })
        .collect()
}

impl Partition {
    /// Cuts every container of `a` from every container of `b`.
    pub async fn apply(a: &[Container], b: &[Container]) -> Result<Partition> {
        let (ips_a, ips_b) = (ips(a)?, ips(b)?);
        let mut cuts: Vec<(Container, Vec<Ipv4Addr>)> = Vec::new();
        for c in a {
            cuts.push((c.clone(), ips_b.clone()));
        }
        for c in b {
            cuts.push((c.clone(), ips_a.clone()));
        }
        Self::enter(cuts, Direction::Both).await
    }

    /// Drops everything `victim` receives from `others`, nothing it sends:
    /// its messages still arrive, their answers never do.
    pub async fn deafen(victim: &Container, others: &[Container]) -> Result<Partition> {
        Self::enter(vec![(victim.clone(), ips(others)?)], Direction::Inbound).await
    }

    async fn enter(
        cuts: Vec<(Container, Vec<Ipv4Addr>)>,
        direction: Direction,
    ) -> Result<Partition> {
        for (c, _) in &cuts {
            if !c.running || c.pid == 0 {
                bail!("{} is not running: cannot partition it", c.service);
            }
        }
        let results = futures::future::join_all(
            cuts.iter()
                .map(|(c, peers)| restore(c.pid, rules(peers, "-I", direction), &c.service)),
        )
        .await;
        let mut p = Partition {
            cuts,
            direction,
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
                .map(|(c, peers)| restore(c.pid, rules(peers, "-D", self.direction), &c.service)),
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

/// Runs `args` in `c`'s network namespace (`nsenter -t <pid> -n ...`).
async fn in_netns(c: &Container, args: &[&str]) -> Result<String> {
    if !c.running || c.pid == 0 {
        bail!("{} is not running", c.service);
    }
    let out = tokio::time::timeout(
        Duration::from_secs(30),
        Command::new("nsenter")
            .args(["-t", &c.pid.to_string(), "-n"])
            .args(args)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .map_err(|_| anyhow!("{args:?} in {} hung", c.service))?
    .with_context(|| format!("{args:?} in {}", c.service))?;
    if !out.status.success() {
        bail!(
            "{args:?} in {} failed: {}",
            c.service,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The interface `c` reaches the compose network through.
async fn interface(c: &Container) -> Result<String> {
    let ip =
        c.ip.ok_or_else(|| anyhow!("{} has no address", c.service))?;
    let listing = in_netns(c, &["ip", "-o", "-4", "addr", "show"]).await?;
    interface_with(&listing, ip).ok_or_else(|| anyhow!("no interface of {} holds {ip}", c.service))
}

/// From `ip -o -4 addr show` output: the interface holding `ip`.
fn interface_with(listing: &str, ip: Ipv4Addr) -> Option<String> {
    let wanted = format!("{ip}/");
    listing.lines().find_map(|line| {
        let mut fields = line.split_whitespace();
        let dev = fields.nth(1)?;
        let dev = dev.split('@').next().unwrap_or(dev);
        fields
            .any(|f| f.starts_with(&wanted))
            .then(|| dev.trim_end_matches(':').to_string())
    })
}

/// A degraded link on one container: what it sends is rate-limited by a
/// token bucket (`tc tbf`, whose queue adds up to `queue_ms` of delay when
/// full), and a share of what it sends and receives is dropped at random
/// (iptables `statistic`). `tc netem` would be the natural tool, but the
/// kernels this runs on are built without it (`CONFIG_NET_SCH_NETEM`).
pub struct DegradedLink {
    container: Container,
    dev: String,
    loss_percent: u32,
    cleared: bool,
}

/// The `iptables-restore` input that adds (`-I`) or removes (`-D`) random
/// loss of `percent` % in both directions.
pub fn loss_rules(percent: u32, op: &str) -> String {
    let p = f64::from(percent) / 100.0;
    format!(
        "*filter\n{op} INPUT -m statistic --mode random --probability {p} -j DROP\n\
         {op} OUTPUT -m statistic --mode random --probability {p} -j DROP\nCOMMIT\n"
    )
}

impl DegradedLink {
    pub async fn apply(
        c: &Container,
        rate_kbit: u32,
        queue_ms: u32,
        loss_percent: u32,
    ) -> Result<DegradedLink> {
        let dev = interface(c).await?;
        let (rate, latency) = (format!("{rate_kbit}kbit"), format!("{queue_ms}ms"));
        in_netns(
            c,
            &[
                "tc", "qdisc", "replace", "dev", &dev, "root", "tbf", "rate", &rate, "burst",
                "32kb", "latency", &latency,
            ],
        )
        .await?;
        let mut link = DegradedLink {
            container: c.clone(),
            dev,
            loss_percent,
            cleared: false,
        };
        if let Err(e) = restore(c.pid, loss_rules(loss_percent, "-I"), &c.service).await {
            let _ = link.clear().await;
            return Err(e);
        }
        Ok(link)
    }

    pub async fn clear(&mut self) -> Result<()> {
        if self.cleared {
            return Ok(());
        }
        self.cleared = true;
        let c = &self.container;
        let qdisc = in_netns(c, &["tc", "qdisc", "del", "dev", &self.dev, "root"]).await;
        let loss = restore(c.pid, loss_rules(self.loss_percent, "-D"), &c.service).await;
        qdisc.and(loss).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_interface_holding_an_address_is_found() {
        let listing = "1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever\n\
                       42: eth0    inet 172.20.0.5/16 brd 172.20.255.255 scope global eth0\\ x\n";
        assert_eq!(
            interface_with(listing, Ipv4Addr::new(172, 20, 0, 5)).as_deref(),
            Some("eth0")
        );
        assert_eq!(interface_with(listing, Ipv4Addr::new(172, 20, 0, 50)), None);
    }

    #[test]
    fn an_inbound_cut_drops_only_what_arrives() {
        assert_eq!(
            rules(&[Ipv4Addr::new(10, 0, 0, 3)], "-I", Direction::Inbound),
            "*filter\n-I INPUT -s 10.0.0.3/32 -j DROP\nCOMMIT\n"
        );
    }

    #[test]
    fn rules_drop_both_directions_per_peer() {
        let r = rules(
            &[Ipv4Addr::new(10, 0, 0, 3), Ipv4Addr::new(10, 0, 0, 4)],
            "-I",
            Direction::Both,
        );
        assert_eq!(
            r,
            "*filter\n-I INPUT -s 10.0.0.3/32 -j DROP\n-I OUTPUT -d 10.0.0.3/32 -j DROP\n\
             -I INPUT -s 10.0.0.4/32 -j DROP\n-I OUTPUT -d 10.0.0.4/32 -j DROP\nCOMMIT\n"
        );
        assert!(rules(&[], "-D", Direction::Both).starts_with("*filter\nCOMMIT"));
    }
}
