//! Shard transfers: a snapshot streamed in bounded chunks while writes
//! continue (in-process nodes, [`snapshot`]), the quorum while a replica
//! is being filled, and whole transfers with a real meta-service and real
//! `storage-node` processes ([`moves`]).

mod moves;
mod snapshot;
