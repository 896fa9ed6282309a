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
    /// Used when the grant does not say how long it lasts.
    duration: Duration,
    /// `None`: never granted. A lease of `Duration::MAX` never expires
    /// (single-node use and tests without a meta-service).
    granted_at: Arc<Mutex<Option<(Instant, Duration)>>>,
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
        self.renew_for(sent, self.duration);
    }

    /// Like [`Lease::renew`] with the duration the grant came with.
    pub fn renew_for(&self, sent: Instant, duration: Duration) {
        let mut g = self.granted_at.lock();
        if g.is_none_or(|(t, _)| sent > t) {
            *g = Some((sent, duration));
        }
    }

    pub fn is_valid(&self) -> bool {
        !self.remaining().is_zero()
    }

    /// Time left on the lease, zero when expired.
    pub fn remaining(&self) -> Duration {
        match *self.granted_at.lock() {
            Some((t, d)) => d.saturating_sub(t.elapsed()),
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
