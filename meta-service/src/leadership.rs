//! Confirming that this member still leads: a read-index round (openraft's
//! `ensure_linearizable`, one message to every voter and a quorum of
//! answers) before a linearizable read or a lease grant.
//!
//! Every storage node's heartbeat needs one, several times a second, so
//! callers share rounds: a caller joins the next round to *start* — never
//! one already running, which may have been answered before the caller
//! arrived and so proves nothing about leadership after it. One round runs
//! at a time; whoever arrives during it goes into the following one.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::oneshot;

use crate::Raft;

/// Why leadership could not be confirmed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotConfirmed {
    /// No quorum answered within the timeout.
    #[error("no quorum answered within {ms} ms")]
    Timeout { ms: u64 },
    /// Not the leader, or deposed, or just elected: a later try may work.
    #[error("leadership not confirmed: {0}")]
    NotLeader(String),
}

type Waiter = oneshot::Sender<RoundResult>;

#[derive(Default)]
struct Rounds {
    running: bool,
    waiting: Vec<Waiter>,
}

type RoundResult = Result<(), NotConfirmed>;
type Round = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = RoundResult> + Send>> + Send + Sync>;

/// Shared read-index rounds; see the module doc.
#[derive(Clone)]
pub struct LeadershipCheck {
    round: Round,
    rounds: Arc<Mutex<Rounds>>,
}

impl LeadershipCheck {
    /// Rounds of `raft.ensure_linearizable()`, each given up after `timeout`.
    pub fn new(raft: Raft, timeout: Duration) -> Self {
        Self::with_round(Arc::new(move || {
            let raft = raft.clone();
            Box::pin(async move {
                match tokio::time::timeout(timeout, raft.ensure_linearizable()).await {
                    Err(_) => Err(NotConfirmed::Timeout {
                        ms: timeout.as_millis() as u64,
                    }),
                    Ok(Err(e)) => Err(NotConfirmed::NotLeader(e.to_string())),
                    Ok(Ok(_)) => Ok(()),
                }
            })
        }))
    }

    fn with_round(round: Round) -> Self {
        Self {
            round,
            rounds: Arc::default(),
        }
    }

    /// Waits for a read-index round that started after this call.
    pub async fn confirm(&self) -> RoundResult {
        let (tx, rx) = oneshot::channel();
        let start_driver = {
            let mut rounds = self.rounds.lock();
            rounds.waiting.push(tx);
            !std::mem::replace(&mut rounds.running, true)
        };
        if start_driver {
            // A task of its own: a caller that gives up (its request was
            // dropped) must not take the rounds of the others with it.
            tokio::spawn(self.clone().drive());
        }
        rx.await
            .unwrap_or_else(|_| Err(NotConfirmed::NotLeader("round abandoned".into())))
    }

    /// Runs rounds while callers wait, each for the callers that arrived
    /// before it started.
    async fn drive(self) {
        loop {
            let batch = {
                let mut rounds = self.rounds.lock();
                if rounds.waiting.is_empty() {
                    rounds.running = false;
                    return;
                }
                std::mem::take(&mut rounds.waiting)
            };
            metrics::histogram!("meta_leadership_round_callers").record(batch.len() as f64);
            let result = (self.round)().await;
            for waiter in batch {
                // A caller that gave up no longer listens; nothing to do.
                let _ = waiter.send(result.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::sync::Semaphore;

    /// Rounds that each wait for a permit, counted.
    fn gated() -> (LeadershipCheck, Arc<Semaphore>, Arc<AtomicUsize>) {
        let gate = Arc::new(Semaphore::new(0));
        let started = Arc::new(AtomicUsize::new(0));
        let (g, n) = (gate.clone(), started.clone());
        let check = LeadershipCheck::with_round(Arc::new(move || {
            let (g, n) = (g.clone(), n.clone());
            Box::pin(async move {
                n.fetch_add(1, Ordering::SeqCst);
                g.acquire().await.map(|p| p.forget()).ok();
                Ok(())
            })
        }));
        (check, gate, started)
    }

    async fn settle() {
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn callers_share_the_next_round_never_one_already_running() {
        let (check, gate, started) = gated();
        let first = tokio::spawn({
            let c = check.clone();
            async move { c.confirm().await }
        });
        settle().await;
        assert_eq!(started.load(Ordering::SeqCst), 1);
        // Nine callers arrive while the first round runs.
        let late: Vec<_> = (0..9)
            .map(|_| {
                let c = check.clone();
                tokio::spawn(async move { c.confirm().await })
            })
            .collect();
        settle().await;
        gate.add_permits(1);
        assert_eq!(first.await.ok(), Some(Ok(())));
        settle().await;
        // The first round answered only its own caller: the nine wait for
        // a second one, which they share.
        assert!(late.iter().all(|h| !h.is_finished()));
        assert_eq!(started.load(Ordering::SeqCst), 2);
        gate.add_permits(1);
        for h in late {
            assert_eq!(h.await.ok(), Some(Ok(())));
        }
        assert_eq!(started.load(Ordering::SeqCst), 2);
        // Idle again: the next caller starts a round of its own.
        gate.add_permits(1);
        assert_eq!(check.confirm().await, Ok(()));
        assert_eq!(started.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_caller_that_gives_up_does_not_stall_the_others() {
        let (check, gate, _) = gated();
        let c = check.clone();
        // The caller that started the rounds is dropped mid-round.
        let gave_up = tokio::time::timeout(Duration::from_millis(20), c.confirm()).await;
        assert!(gave_up.is_err());
        let waiting = tokio::spawn({
            let c = check.clone();
            async move { c.confirm().await }
        });
        gate.add_permits(2);
        assert_eq!(waiting.await.ok(), Some(Ok(())));
    }
}
