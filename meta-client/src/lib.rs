//! The meta-service as its users see it: the types of its HTTP/JSON API
//! and [`MetaClient`]. Gateways, storage nodes and tools depend on this
//! crate, never on `meta-service` itself, so the data plane does not link
//! the Raft server (openraft, redb, axum); `meta-service` uses the same
//! types to answer, so both ends share one definition.
//!
//! # Layout
//!
//! - [`api`]: request and answer bodies ([`MetaHealth`], [`EpochAck`],
//!   the membership requests), [`MetaReadConsistency`] and the error body
//!   with its typed [`ErrorCode`].
//! - [`error`]: [`MetaClientError`] and its retry classification
//!   ([`MetaClientError::is_transient`]).
//! - [`client`]: [`MetaClient`], which follows failures and elections
//!   across the members.

pub mod api;
pub mod client;
pub mod error;

pub use api::{
    AddLearnerRequest, ChangeMembershipRequest, EpochAck, ErrorBody, ErrorCode, InitRequest,
    MemberId, MembershipAck, MetaHealth, MetaReadConsistency, RebalanceAck,
};
pub use client::{MetaClient, PRESENCE_HOLD};
pub use error::MetaClientError;
