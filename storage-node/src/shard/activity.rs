//! What a shard's optimizer is doing right now: kept by the optimizer
//! ([`Busy`] around each index build), read by the shard's status.

use std::sync::atomic::{AtomicU8, Ordering};

/// What the optimizer is doing, kept in [`super::Inner::activity`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(super) enum Activity {
    Idle = 0,
    /// Waiting for a slot in the node's build budget.
    Waiting = 1,
    /// Building an index.
    Running = 2,
}

/// Sets [`super::Inner::activity`] while it lives; back to idle on drop (also
/// when the build fails or the shard closes).
pub(super) struct Busy<'a>(&'a AtomicU8);

impl<'a> Busy<'a> {
    pub(super) fn new(activity: &'a AtomicU8, now: Activity) -> Self {
        activity.store(now as u8, Ordering::SeqCst);
        Busy(activity)
    }

    pub(super) fn set(&self, now: Activity) {
        self.0.store(now as u8, Ordering::SeqCst);
    }
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.store(Activity::Idle as u8, Ordering::SeqCst);
    }
}
