//! End-to-end: `loadtest` against the real gateway, meta-service and
//! storage nodes, all in this process (`testsuite::TestCluster`), over
//! real HTTP.

mod e2e;
