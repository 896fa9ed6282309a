//! Why a peer reset a request stream instead of answering it, and the QUIC
//! stream error codes that carry the reason on the wire.
//!
//! Its own module because both ends need it: the server ([`crate::server`])
//! resets streams with these codes, and the error mapping
//! ([`crate::error`]) turns a reset back into [`Refusal`]. Neither
//! [`crate::frame`] nor [`crate::error`] has to import the other for it.

/// Why the peer reset a request stream instead of answering it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The request frame exceeded the peer's frame limit.
    FrameTooLarge,
    /// The request frame could not be decoded as the expected message.
    Malformed,
    /// The peer is shutting down and takes no new requests.
    ShuttingDown,
    /// The peer failed to produce an answer (e.g. its response did not fit a frame).
    Internal,
    /// A code this version does not know.
    Unknown(u64),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::FrameTooLarge => f.write_str("frame too large"),
            Refusal::Malformed => f.write_str("malformed frame"),
            Refusal::ShuttingDown => f.write_str("shutting down"),
            Refusal::Internal => f.write_str("internal error"),
            Refusal::Unknown(code) => write!(f, "unknown code {code}"),
        }
    }
}

/// QUIC stream error codes a server resets a request stream with.
pub mod code {
    use super::Refusal;

    pub const FRAME_TOO_LARGE: u32 = 1;
    pub const MALFORMED: u32 = 2;
    pub const SHUTTING_DOWN: u32 = 3;
    pub const INTERNAL: u32 = 4;

    pub(crate) fn refusal(code: u64) -> Refusal {
        match code {
            c if c == u64::from(FRAME_TOO_LARGE) => Refusal::FrameTooLarge,
            c if c == u64::from(MALFORMED) => Refusal::Malformed,
            c if c == u64::from(SHUTTING_DOWN) => Refusal::ShuttingDown,
            c if c == u64::from(INTERNAL) => Refusal::Internal,
            other => Refusal::Unknown(other),
        }
    }

    pub(crate) fn varint(code: u32) -> quinn::VarInt {
        quinn::VarInt::from_u32(code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusal_codes_round_trip() {
        assert_eq!(
            code::refusal(code::FRAME_TOO_LARGE.into()),
            Refusal::FrameTooLarge
        );
        assert_eq!(code::refusal(code::MALFORMED.into()), Refusal::Malformed);
        assert_eq!(
            code::refusal(code::SHUTTING_DOWN.into()),
            Refusal::ShuttingDown
        );
        assert_eq!(code::refusal(code::INTERNAL.into()), Refusal::Internal);
        assert_eq!(code::refusal(77), Refusal::Unknown(77));
    }
}
