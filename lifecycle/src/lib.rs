//! The start/stop shape every service of the workspace follows.
//!
//! ```text
//! binary: flags/env ──clap──▶ Config ──start(config)──▶ Handle
//!         shutdown_signal().await            (SIGINT / SIGTERM)
//!         handle.shutdown().await: Stop::stop ─▶ servers stop accepting and
//!                                  drain ─▶ Tasks::join ─▶ state closed
//! ```
//!
//! Its own crate (tokio only) because every binary needs it, the
//! meta-service included, and none of the existing crates fits: `protocol`
//! has no I/O, and `transport` would drag QUIC and rustls into the
//! meta-service, which speaks HTTP only.
//!
//! # Layout
//!
//! - [`shutdown_signal`]: Ctrl-C or SIGTERM, what process managers send.
//! - [`Stop`] / [`Stopping`]: a broadcast stop flag for a service's tasks,
//!   with sleeps that end early when it flips.
//! - [`Tasks`]: named background tasks, joined (not aborted) at shutdown.
//! - [`config`]: the one configuration file of the cluster (`--config`,
//!   the spec's `cluster:` section plus one section per service), its
//!   checks and its reference page.
//! - [`logging`]: the one logging setup ([`LogArgs`]: `--log-format` /
//!   `LOG_FORMAT`, text without colour off a terminal, or JSON lines).
//! - [`rate`]: events over the last minute, for the rates a service shows
//!   in its JSON endpoints.

pub mod config;
pub mod logging;
pub mod rate;

pub use logging::{LogArgs, LogFormat};

use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
    tracing::info!("shutdown signal received");
}

/// The sending half of a service's stop flag. Flipping it is one-way.
#[derive(Debug)]
pub struct Stop(watch::Sender<bool>);

/// The receiving half: what a background task watches.
pub type Stopping = watch::Receiver<bool>;

impl Stop {
    pub fn new() -> (Stop, Stopping) {
        let (tx, rx) = watch::channel(false);
        (Stop(tx), rx)
    }

    pub fn stop(&self) {
        let _ = self.0.send(true);
    }

    pub fn subscribe(&self) -> Stopping {
        self.0.subscribe()
    }
}

/// Resolves once `stop` has flipped (or its sender is gone).
pub async fn stopped(mut stop: Stopping) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Sleeps for `d` unless `stop` flips first; `true` when stopped.
pub async fn sleep_or_stop(stop: &mut Stopping, d: Duration) -> bool {
    if *stop.borrow() {
        return true;
    }
    let stopped = tokio::time::timeout(d, stop.wait_for(|s| *s)).await;
    // A dropped sender counts as stopped: nobody can start the work again.
    stopped.is_ok()
}

/// A service's background tasks, each with a name for the log. They are
/// told to end through the service's [`Stop`] and then joined, so whatever
/// they do on the way out (a gossip leave, a last flush) really runs.
#[derive(Default)]
pub struct Tasks(Vec<(&'static str, JoinHandle<()>)>);

impl Tasks {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn spawn(&mut self, name: &'static str, task: impl Future<Output = ()> + Send + 'static) {
        self.0.push((name, tokio::spawn(task)));
    }

    /// [`Tasks::spawn`] on another runtime (a service that keeps part of its
    /// work on a runtime of its own); joined and aborted the same way.
    pub fn spawn_on(
        &mut self,
        name: &'static str,
        runtime: &tokio::runtime::Handle,
        task: impl Future<Output = ()> + Send + 'static,
    ) {
        self.0.push((name, runtime.spawn(task)));
    }

    /// Waits for every task to end; one still running after `grace` (a bug:
    /// it ignored the stop flag) is aborted and named in the log, so a
    /// shutdown is bounded whatever a task does.
    pub async fn join(self, grace: Duration) {
        let deadline = tokio::time::Instant::now() + grace;
        for (name, mut task) in self.0 {
            match tokio::time::timeout_at(deadline, &mut task).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) if e.is_panic() => tracing::error!(task = name, "task panicked"),
                Ok(Err(_)) => {}
                Err(_) => {
                    tracing::warn!(task = name, ?grace, "task ignored the stop; aborting it");
                    task.abort();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn tasks_end_on_stop_and_a_stuck_one_is_aborted_at_the_grace() {
        let (stop, rx) = Stop::new();
        let mut tasks = Tasks::new();
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let d = done.clone();
        let mut r = rx.clone();
        tasks.spawn("polite", async move {
            while !sleep_or_stop(&mut r, Duration::from_secs(3600)).await {}
            d.store(true, std::sync::atomic::Ordering::SeqCst);
        });
        tasks.spawn("stuck", async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        });
        stop.stop();
        let started = std::time::Instant::now();
        tasks.join(Duration::from_millis(200)).await;
        assert!(done.load(std::sync::atomic::Ordering::SeqCst));
        assert!(started.elapsed() < Duration::from_secs(5));
        stopped(rx).await;
    }
}
