//! Fuzz targets for the decoders that face the network or the disk. Each
//! target is a `fn(&[u8])` that returns for any input and panics only on a
//! bug: a decoder that panics, an accepted value the other end cannot
//! decode, a check that lets through what it should refuse. `fuzz/run.sh`
//! runs them under AFL++ (`cargo afl`, binary `fuzz-afl`); the tests here
//! replay the committed corpus and every past crash through them.
//!
//! # Layout
//!
//! - [`targets`]: the targets: `frame` (msgpack frames over QUIC),
//!   `wal_record` (the WAL's record reader), `snapshot_chunk` (a replica
//!   receiving `InstallSnapshot`), `json_models` (the gateway's request
//!   bodies).
//! - [`seeds`]: the seed corpus, from real encodings.
//! - [`check`]: the round trip every accepted value must survive.

pub mod check;
pub mod seeds;
pub mod targets;

/// One fuzz target.
pub struct Target {
    pub name: &'static str,
    pub run: fn(&[u8]),
}

/// Every target, in the order `fuzz/run.sh` runs them.
pub const TARGETS: [Target; 4] = [
    Target {
        name: "frame",
        run: targets::frame,
    },
    Target {
        name: "wal_record",
        run: targets::wal_record,
    },
    Target {
        name: "snapshot_chunk",
        run: targets::snapshot_chunk,
    },
    Target {
        name: "json_models",
        run: targets::json_models,
    },
];

pub fn target(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|t| t.name == name)
}

/// The stack a target runs on under the fuzzer: tokio's worker threads
/// (where the storage node and the gateway decode) have 2 MiB, so input
/// nested deep enough to overflow there must crash here too.
pub const STACK_BYTES: usize = 2 << 20;

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    /// Every committed input — the seed corpus and each crash the fuzzer
    /// ever found (`fuzz/regressions/<target>/`) — through its target, on
    /// the stack the fuzzer gives it.
    #[test]
    fn the_corpus_and_every_past_crash_replay_cleanly() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut replayed = 0;
        for t in &TARGETS {
            for dir in ["corpus", "regressions"] {
                let Ok(entries) = std::fs::read_dir(root.join(dir).join(t.name)) else {
                    continue;
                };
                for entry in entries {
                    let path = entry.unwrap().path();
                    let data = std::fs::read(&path).unwrap();
                    let run = t.run;
                    std::thread::Builder::new()
                        .stack_size(STACK_BYTES)
                        .spawn(move || run(&data))
                        .unwrap()
                        .join()
                        .unwrap_or_else(|_| panic!("{} panicked", path.display()));
                    replayed += 1;
                }
            }
        }
        assert!(replayed >= 4 * 5, "only {replayed} inputs replayed");
    }

    #[test]
    fn targets_are_found_by_name() {
        assert!(target("frame").is_some());
        assert!(target("nope").is_none());
    }
}
