//! End-to-end: `loadtest` against the real gateway router, meta-service and
//! storage nodes, all in this process (see `harness`), over real HTTP.

mod e2e;
mod harness;
