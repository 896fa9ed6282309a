//! The JSON bodies of the meta-service's HTTP API that are not already
//! cluster types in `protocol::cluster` (the map, commands, heartbeats).
//!
//! The server (`meta-service`) and the client ([`crate::MetaClient`]) both
//! use these definitions, so the two ends cannot drift apart. Their field
//! names are the wire format: renaming one is a protocol change.

use std::collections::{BTreeMap, BTreeSet};

use protocol::cluster::CommandError;
use protocol::Epoch;
use serde::{Deserialize, Serialize};

/// Id of a meta member (distinct from storage-node ids in the map).
pub type MemberId = u64;

/// How a cluster-map read is served (`?consistency=` on `/v1/cluster/map`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetaReadConsistency {
    /// Confirmed current by the leader with a quorum round.
    #[default]
    Linearizable,
    /// This member's applied copy; possibly behind (check its epoch).
    Local,
}

impl MetaReadConsistency {
    /// The query-string value.
    pub fn as_str(self) -> &'static str {
        match self {
            MetaReadConsistency::Linearizable => "linearizable",
            MetaReadConsistency::Local => "local",
        }
    }
}

/// `GET /health`: liveness and Raft role of one member.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetaHealth {
    pub status: String,
    pub id: MemberId,
    /// `Leader`, `Follower`, `Candidate` or `Learner`.
    pub state: String,
    pub leader: Option<MemberId>,
    pub term: u64,
    pub last_applied: Option<u64>,
    pub epoch: u64,
}

/// `{ "epoch": n }`: the answer to an accepted command or registration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpochAck {
    pub epoch: Epoch,
}

/// Answer to `POST /v1/rebalance`: the moves started now (empty when the
/// cluster is balanced or every transfer slot is taken) and the epoch they
/// produced.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RebalanceAck {
    pub epoch: Epoch,
    pub plan: protocol::cluster::RebalancePlan,
}

/// `POST /admin/init`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct InitRequest {
    /// Voters of the new cluster, id → address. Empty: this member alone.
    #[serde(default)]
    pub members: BTreeMap<MemberId, String>,
}

/// `POST /admin/add-learner`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AddLearnerRequest {
    pub id: MemberId,
    pub addr: String,
}

/// `POST /admin/change-membership`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ChangeMembershipRequest {
    /// The new set of voters (each must already be a learner or voter).
    pub members: BTreeSet<MemberId>,
    /// Keep removed voters as learners.
    #[serde(default)]
    pub retain: bool,
}

/// `{ "log_index": n }`: where a membership change was committed.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct MembershipAck {
    pub log_index: u64,
}

/// Machine-readable kind of an error answer (`"code"` in [`ErrorBody`]).
///
/// The server maps each of its errors to one code; clients decide on the
/// code alone whether to retry ([`ErrorCode::is_transient`]) and whether a
/// request may be resent at once ([`ErrorCode::nothing_applied`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The state machine refused the command; `refusal` says why.
    Refused,
    /// No leader is known (election under way, or no quorum).
    NoLeader,
    /// The write or linearizable read did not reach a quorum in time.
    Timeout,
    /// A follower could not get an answer from the leader it forwarded to.
    ForwardFailed,
    /// The request itself was malformed.
    BadRequest,
    /// Raft refused or failed the operation (e.g. a membership change).
    Raft,
    /// A code this client does not know (a newer server), or a body that
    /// could not be parsed at all.
    #[serde(other)]
    Unknown,
}

impl ErrorCode {
    /// Whether the same request may succeed if sent again later.
    pub fn is_transient(self) -> bool {
        match self {
            ErrorCode::NoLeader | ErrorCode::Timeout | ErrorCode::ForwardFailed => true,
            ErrorCode::Refused | ErrorCode::BadRequest | ErrorCode::Raft | ErrorCode::Unknown => {
                false
            }
        }
    }

    /// Whether the answering member certainly did not apply (or pass on)
    /// the request, so that sending it again, to any member, cannot apply
    /// it twice. A timeout or a failed forward may still commit.
    pub fn nothing_applied(self) -> bool {
        match self {
            ErrorCode::NoLeader | ErrorCode::Refused | ErrorCode::BadRequest => true,
            ErrorCode::Timeout
            | ErrorCode::ForwardFailed
            | ErrorCode::Raft
            | ErrorCode::Unknown => false,
        }
    }
}

/// JSON body of every error answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub code: ErrorCode,
    pub message: String,
    /// The state machine's typed refusal, when `code` is `refused`.
    #[serde(default)]
    pub refusal: Option<CommandError>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [ErrorCode; 7] = [
        ErrorCode::Refused,
        ErrorCode::NoLeader,
        ErrorCode::Timeout,
        ErrorCode::ForwardFailed,
        ErrorCode::BadRequest,
        ErrorCode::Raft,
        ErrorCode::Unknown,
    ];

    #[test]
    fn codes_keep_their_wire_names() {
        let names: Vec<String> = ALL
            .iter()
            .map(|c| serde_json::to_string(c).expect("serialize"))
            .collect();
        assert_eq!(
            names,
            [
                "\"refused\"",
                "\"no_leader\"",
                "\"timeout\"",
                "\"forward_failed\"",
                "\"bad_request\"",
                "\"raft\"",
                "\"unknown\"",
            ]
        );
        for c in ALL {
            let back: ErrorCode =
                serde_json::from_str(&serde_json::to_string(&c).expect("serialize"))
                    .expect("parse");
            assert_eq!(back, c);
        }
    }

    #[test]
    fn an_unknown_code_parses_as_unknown() {
        let body: ErrorBody =
            serde_json::from_str(r#"{"code":"something_new","message":"m"}"#).expect("parse");
        assert_eq!(body.code, ErrorCode::Unknown);
        assert_eq!(body.refusal, None);
    }

    #[test]
    fn error_body_reads_what_the_server_writes() {
        let json = r#"{"code":"refused","message":"collection `x` not found","refusal":{"error":"collection_not_found","name":"x"}}"#;
        let body: ErrorBody = serde_json::from_str(json).expect("parse");
        assert_eq!(body.code, ErrorCode::Refused);
        assert_eq!(
            body.refusal,
            Some(CommandError::CollectionNotFound { name: "x".into() })
        );
    }

    #[test]
    fn only_leaderless_answers_are_both_transient_and_unapplied() {
        // The client's own loop resends to the next member exactly these.
        let resend: Vec<ErrorCode> = ALL
            .into_iter()
            .filter(|c| c.is_transient() && c.nothing_applied())
            .collect();
        assert_eq!(resend, [ErrorCode::NoLeader]);
        // A timeout may succeed later but may also have committed.
        assert!(ErrorCode::Timeout.is_transient());
        assert!(!ErrorCode::Timeout.nothing_applied());
        assert!(!ErrorCode::Refused.is_transient());
        assert!(!ErrorCode::BadRequest.is_transient());
        assert!(!ErrorCode::Unknown.is_transient());
    }

    #[test]
    fn read_consistency_query_values() {
        assert_eq!(
            MetaReadConsistency::default(),
            MetaReadConsistency::Linearizable
        );
        for c in [
            MetaReadConsistency::Linearizable,
            MetaReadConsistency::Local,
        ] {
            let json = serde_json::to_string(&c).expect("serialize");
            assert_eq!(json, format!("\"{}\"", c.as_str()));
        }
    }
}
