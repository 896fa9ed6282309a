//! openraft storage on disk (storage-v2: a log store and a state machine).
//!
//! - [`log_store`]: log entries, vote and committed id in redb.
//! - [`state_machine`]: the cluster map; snapshots as atomic files.
//!
//! Both live under the member's data directory; together they survive a
//! restart of every member (the multi-process tests kill and restart all).

// openraft's traits fix the error type (`openraft::StorageError`, ~224 bytes); boxing
// it here would only add conversions at every trait boundary.
#![allow(clippy::result_large_err)]

pub mod log_store;
pub mod state_machine;

use std::path::Path;
use std::sync::Arc;

pub use log_store::LogStore;
use protocol::cluster::ClusterMap;
pub use state_machine::StateMachineStore;
use tokio::sync::watch;

use crate::RaftStorageError;

/// Opens both stores under `dir`.
pub fn open(
    dir: &Path,
) -> Result<
    (
        LogStore,
        StateMachineStore,
        watch::Receiver<Arc<ClusterMap>>,
    ),
    RaftStorageError,
> {
    let log = LogStore::open(&dir.join("log"))?;
    let (sm, rx) = StateMachineStore::open(&dir.join("sm"))?;
    Ok((log, sm, rx))
}

#[cfg(test)]
mod suite {
    use openraft::testing::{StoreBuilder, Suite};

    use super::*;
    use crate::TypeConfig;

    struct Builder;

    impl StoreBuilder<TypeConfig, LogStore, StateMachineStore, tempfile::TempDir> for Builder {
        async fn build(
            &self,
        ) -> Result<(tempfile::TempDir, LogStore, StateMachineStore), RaftStorageError> {
            let dir = tempfile::tempdir().expect("tempdir");
            let (log, sm, _rx) = open(dir.path())?;
            Ok((dir, log, sm))
        }
    }

    /// openraft's storage conformance suite against the on-disk stores.
    #[test]
    fn openraft_storage_suite() -> Result<(), RaftStorageError> {
        Suite::test_all(Builder)
    }
}
