//! Building a replica from another replica's snapshot: the catch-up path
//! when the primary's WAL no longer reaches back far enough, or when a
//! replica's history diverged from the primary's after a failover. The
//! streaming form (chunk by chunk) is [`super::SnapshotWriter`]; this is
//! the whole-snapshot convenience over it.

use std::path::Path;

use protocol::{CollectionConfig, Term};

use super::{Shard, ShardOptions, ShardSnapshot, SnapshotWriter};
use crate::error::Result;

impl Shard {
    /// Replaces whatever is in `dir` with the content of `snapshot` at the
    /// snapshot's sequence number and `last_term`, and opens it. The WAL
    /// continues at `snapshot.seq + 1`.
    pub fn create_from_snapshot(
        dir: &Path,
        config: CollectionConfig,
        options: ShardOptions,
        snapshot: &ShardSnapshot,
        last_term: Term,
    ) -> Result<Shard> {
        let mut writer = SnapshotWriter::create(dir, config, options, snapshot.seq, last_term)?;
        writer.add(snapshot.points.clone())?;
        writer.finish()
    }
}
