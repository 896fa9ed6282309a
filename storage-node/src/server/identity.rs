//! The incarnation of this node's data directory: a random number written
//! when the directory is first used, sent with every registration. The
//! meta-service refuses a node it removed that comes back with the same
//! one (a removed node still running), and admits the same id with a new
//! directory (a replacement).

use std::io::Write;
use std::path::Path;

use anyhow::Context;

const FILE: &str = "incarnation";

/// Reads the directory's incarnation, creating it (durably) on first use.
pub fn incarnation(data_dir: &Path) -> anyhow::Result<u64> {
    let path = data_dir.join(FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            return text
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|n| *n != 0)
                .with_context(|| format!("{} does not hold a node incarnation", path.display()));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("read {}", path.display())),
    }
    std::fs::create_dir_all(data_dir).with_context(|| format!("create {}", data_dir.display()))?;
    let value = fresh();
    let tmp = data_dir.join(format!("{FILE}.tmp"));
    let mut f = std::fs::File::create(&tmp).with_context(|| format!("create {}", tmp.display()))?;
    writeln!(f, "{value}")?;
    f.sync_all()?;
    std::fs::rename(&tmp, &path).with_context(|| format!("rename to {}", path.display()))?;
    std::fs::File::open(data_dir)?.sync_all()?;
    Ok(value)
}

/// Unique enough to tell two directories of one node id apart: the clock
/// in nanoseconds mixed with the process id (never 0).
fn fresh() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mixed = (nanos ^ (u64::from(std::process::id()) << 40)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    mixed.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_keeps_its_incarnation_and_a_new_one_gets_another() {
        let dir = tempfile::tempdir().unwrap();
        let first = incarnation(dir.path()).unwrap();
        assert_ne!(first, 0);
        assert_eq!(incarnation(dir.path()).unwrap(), first);
        let other = tempfile::tempdir().unwrap();
        assert_ne!(incarnation(other.path()).unwrap(), first);
        std::fs::write(dir.path().join(FILE), "garbage").unwrap();
        assert!(incarnation(dir.path()).is_err());
    }
}
