//! The write lease: a primary may order writes only while it has recently
//! heard from the meta-service majority (a heartbeat acknowledged by the
//! leader). The lease is shorter than the meta-service's dead-node grace
//! period, so a cut-off primary stops accepting writes before another
//! replica can be promoted in its place.

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

#[derive(Clone)]
pub struct Lease {
    duration: Duration,
    /// `None`: never granted. A lease of `Duration::MAX` never expires
    /// (single-node use and tests without a meta-service).
    granted_at: Arc<Mutex<Option<Instant>>>,
}

impl Lease {
    pub fn new(duration: Duration) -> Self {
        Self {
            duration,
            granted_at: Arc::new(Mutex::new(None)),
        }
    }

    /// A lease that is always valid.
    pub fn unlimited() -> Self {
        let lease = Self::new(Duration::MAX);
        lease.renew(Instant::now());
        lease
    }

    /// Records a meta-service acknowledgement of a heartbeat sent at `sent`
    /// (the lease runs from when the heartbeat left, not when the answer came).
    pub fn renew(&self, sent: Instant) {
        let mut g = self.granted_at.lock();
        if g.is_none_or(|t| sent > t) {
            *g = Some(sent);
        }
    }

    pub fn is_valid(&self) -> bool {
        match *self.granted_at.lock() {
            Some(t) => t.elapsed() < self.duration,
            None => false,
        }
    }

    /// Time left on the lease, zero when expired.
    pub fn remaining(&self) -> Duration {
        match *self.granted_at.lock() {
            Some(t) => self.duration.saturating_sub(t.elapsed()),
            None => Duration::ZERO,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_expires() {
        let lease = Lease::new(Duration::from_millis(50));
        assert!(!lease.is_valid());
        lease.renew(Instant::now());
        assert!(lease.is_valid());
        std::thread::sleep(Duration::from_millis(60));
        assert!(!lease.is_valid());
        assert!(Lease::unlimited().is_valid());
    }
}
