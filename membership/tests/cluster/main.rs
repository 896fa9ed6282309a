//! Membership integration tests: one binary, modules by transport.
//! Every wait is bounded; addresses come from the OS (UDP) or from the
//! in-memory network's counter.

mod helpers;
mod in_memory;
mod malformed;
mod udp;
