//! [`MetaClientError`]: what a call through [`crate::MetaClient`] can end
//! with, classified once for every caller's retry decision.

use protocol::cluster::CommandError;
use thiserror::Error;

use crate::api::ErrorBody;

#[derive(Debug, Error)]
pub enum MetaClientError {
    /// The state machine refused the command; retrying will not help.
    #[error("refused: {0}")]
    Refused(CommandError),
    /// A member answered with an error other than a refusal (`body.code`
    /// says which).
    #[error("meta-service answered {status}: {}", body.message)]
    Api { status: u16, body: ErrorBody },
    /// The connection to the member could not be set up, so the request
    /// was never sent.
    #[error("no meta member reachable (last: {member}: {reason})")]
    Unreachable { member: String, reason: String },
    /// The request was sent but no usable answer came back (a timeout, a
    /// broken connection, an unreadable body): it may have been applied.
    #[error("meta member {member} gave no answer: {reason}")]
    NoAnswer { member: String, reason: String },
    #[error("no meta member configured")]
    NoMembers,
}

impl MetaClientError {
    /// Whether the same request may succeed later. The client's own retry
    /// loop, the gateway and the storage nodes decide on this.
    pub fn is_transient(&self) -> bool {
        match self {
            MetaClientError::Refused(_) | MetaClientError::NoMembers => false,
            MetaClientError::Api { body, .. } => body.code.is_transient(),
            MetaClientError::Unreachable { .. } | MetaClientError::NoAnswer { .. } => true,
        }
    }

    /// Whether the request certainly was not applied, so resending it at
    /// once (to any member) cannot apply it twice.
    pub fn nothing_applied(&self) -> bool {
        match self {
            MetaClientError::Refused(_)
            | MetaClientError::NoMembers
            | MetaClientError::Unreachable { .. } => true,
            MetaClientError::Api { body, .. } => body.code.nothing_applied(),
            MetaClientError::NoAnswer { .. } => false,
        }
    }

    /// The typed refusal, if this is one.
    pub fn refusal(&self) -> Option<&CommandError> {
        match self {
            MetaClientError::Refused(e) => Some(e),
            MetaClientError::Api { .. }
            | MetaClientError::Unreachable { .. }
            | MetaClientError::NoAnswer { .. }
            | MetaClientError::NoMembers => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ErrorCode;

    fn api(status: u16, code: ErrorCode) -> MetaClientError {
        MetaClientError::Api {
            status,
            body: ErrorBody {
                code,
                message: String::new(),
                refusal: None,
            },
        }
    }

    fn member(kind: fn(String, String) -> MetaClientError) -> MetaClientError {
        kind("m:1".into(), "r".into())
    }

    #[test]
    fn transient_errors() {
        let transient = [
            api(503, ErrorCode::NoLeader),
            api(503, ErrorCode::Timeout),
            api(503, ErrorCode::ForwardFailed),
            member(|member, reason| MetaClientError::Unreachable { member, reason }),
            member(|member, reason| MetaClientError::NoAnswer { member, reason }),
        ];
        for e in &transient {
            assert!(e.is_transient(), "{e:?}");
        }
    }

    #[test]
    fn permanent_errors() {
        let permanent = [
            MetaClientError::Refused(CommandError::CollectionExists { name: "c".into() }),
            MetaClientError::NoMembers,
            api(400, ErrorCode::BadRequest),
            api(500, ErrorCode::Raft),
            api(502, ErrorCode::Unknown),
        ];
        for e in &permanent {
            assert!(!e.is_transient(), "{e:?}");
        }
    }

    #[test]
    fn the_code_decides_not_the_status() {
        // A 503 with a code that says "no" is not retried, and vice versa.
        assert!(!api(503, ErrorCode::BadRequest).is_transient());
        assert!(api(500, ErrorCode::NoLeader).is_transient());
    }

    #[test]
    fn what_may_have_been_applied() {
        let no_answer = member(|member, reason| MetaClientError::NoAnswer { member, reason });
        assert!(!no_answer.nothing_applied());
        assert!(!api(503, ErrorCode::Timeout).nothing_applied());
        assert!(!api(503, ErrorCode::ForwardFailed).nothing_applied());
        let unreachable = member(|member, reason| MetaClientError::Unreachable { member, reason });
        assert!(unreachable.nothing_applied());
        assert!(api(503, ErrorCode::NoLeader).nothing_applied());
    }

    #[test]
    fn refusal_is_exposed() {
        let e = MetaClientError::Refused(CommandError::CollectionNotFound { name: "c".into() });
        assert!(matches!(
            e.refusal(),
            Some(CommandError::CollectionNotFound { .. })
        ));
        assert!(api(503, ErrorCode::NoLeader).refusal().is_none());
    }
}
