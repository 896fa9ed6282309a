//! Space on the file system that holds the data directory, exported on
//! `/metrics` as `storage_data_dir_free_bytes` / `storage_data_dir_total_bytes`
//! (the disk-nearly-full alert of `deploy/monitoring` divides them). A full
//! disk makes WAL appends fail and poisons shards, so it is worth paging
//! on before it happens.

use std::path::Path;

/// Bytes of the file system holding a path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DiskSpace {
    /// Available to this (unprivileged) process: `f_bavail`, not `f_bfree`,
    /// because the blocks reserved for root are not ours to write.
    pub free_bytes: u64,
    pub total_bytes: u64,
}

/// `statvfs(2)` of `path`.
pub fn disk_space(path: &Path) -> std::io::Result<DiskSpace> {
    let s = rustix::fs::statvfs(path)?;
    Ok(DiskSpace {
        free_bytes: s.f_bavail.saturating_mul(s.f_frsize),
        total_bytes: s.f_blocks.saturating_mul(s.f_frsize),
    })
}

/// Sets the two gauges for `data_dir`. A node creates its data directory
/// with its first shard, so until then this measures the nearest existing
/// ancestor: the file system the directory will be made on. A failed
/// `statvfs` leaves the last values and says so at debug level, since it
/// repeats on every scrape.
pub fn export(data_dir: &Path) {
    let existing = data_dir
        .ancestors()
        .find(|p| !p.as_os_str().is_empty() && p.exists())
        .unwrap_or(Path::new("."));
    match disk_space(existing) {
        Ok(d) => {
            metrics::gauge!("storage_data_dir_free_bytes").set(d.free_bytes as f64);
            metrics::gauge!("storage_data_dir_total_bytes").set(d.total_bytes as f64);
        }
        Err(e) => tracing::debug!(error = %e, dir = %data_dir.display(), "statvfs failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_has_some_free_space_of_its_total_and_a_missing_one_is_an_error() {
        let dir = tempfile::tempdir().expect("temp dir");
        let d = disk_space(dir.path()).expect("statvfs");
        assert!(d.total_bytes > 0 && d.free_bytes <= d.total_bytes, "{d:?}");
        assert!(disk_space(&dir.path().join("missing")).is_err());
    }
}
