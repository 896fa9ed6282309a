//! How far a shard's background work is: points indexed, points waiting
//! for an index, whether work is running, waiting for the node's build
//! budget, or due. The gateway builds a collection's `status` and
//! `indexed_vectors_count` from it.
//!
//! "Due" mirrors exactly what the optimizer worker will do by itself
//! (seal an idle growing segment, index frozen and exact sealed segments,
//! merge when idle), so a replica reported as busy always becomes idle
//! without anyone asking, and one reported idle has nothing left to run.

use std::sync::atomic::Ordering;

use protocol::rpc::{OptimizerState, ReplicaIndexStatus};

use super::activity::Activity;
use super::{optimizer, Inner, Shard};
use crate::ann::AnnKind;
use crate::segment::SegmentState;

impl Shard {
    /// Points indexed and pending, segments, and the optimizer's state,
    /// read at one moment (under the state's read lock).
    pub fn index_status(&self) -> ReplicaIndexStatus {
        status_of(&self.inner)
    }
}

fn status_of(inner: &Inner) -> ReplicaIndexStatus {
    // Read before the segments. A build goes idle before its result is
    // swapped in, and until then its sources still show as pending (frozen
    // or exact segments) or due (a planned merge): never idle with work
    // left out of sight.
    let activity = inner.activity.load(Ordering::SeqCst);
    let last_error = inner.last_error.lock().clone();
    let wants_ann = inner.ann_kind() != AnnKind::Flat;
    let seal_at = inner.options.idle_seal_min_points.max(1);
    let state = inner.state.read();
    let mut s = ReplicaIndexStatus {
        last_error,
        ..ReplicaIndexStatus::default()
    };
    let mut due = false;
    for seg in &state.segments {
        let live = seg.live() as u64;
        s.points += live;
        if !seg.is_empty() {
            s.segments += 1;
        }
        let waits = match seg.state {
            SegmentState::Sealed => {
                if seg.index.kind() != AnnKind::Flat {
                    s.indexed_points += live;
                    false
                } else {
                    wants_ann
                }
            }
            SegmentState::Frozen => true,
            // What `seal_if_idle` will freeze once writes pause.
            SegmentState::Growing => seg.len() >= seal_at,
        };
        if waits {
            s.pending_points += live;
            due = true;
        }
    }
    due |= optimizer::merge_due(inner, &state.segments);
    s.payload_index_points = state.payload_index_points();
    s.optimizer = match activity {
        a if a == Activity::Running as u8 => OptimizerState::Running,
        a if a == Activity::Waiting as u8 => OptimizerState::Waiting,
        _ if due => OptimizerState::Pending,
        _ => OptimizerState::Idle,
    };
    s
}
