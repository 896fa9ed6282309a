//! Qdrant's query API over a sharded collection: the request tree
//! ([`tree`]), its evaluation from global reads ([`exec`]) after its ids
//! are resolved into vectors ([`resolve`]), and the pure
//! parts, each tested alone: fusion ([`fusion`]), the recommend / discover
//! / context scores ([`scoring`]), and payload values for `order_by`,
//! facets and group-by ([`values`]).

pub mod exec;
pub mod fusion;
pub mod resolve;
pub mod scoring;
pub mod tree;
pub mod values;

pub use exec::{Eval, Hit, MAX_SCAN_POINTS};
pub use tree::QueryNode;
