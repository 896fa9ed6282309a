//! Wire framing: every message is one frame, a 4-byte big-endian body length
//! followed by a msgpack body (`protocol::codec`, structs as maps).
//!
//! ```text
//! request stream:   client ──[len|req]──▶ FIN          server ──[len|resp]──▶ FIN
//! streamed reply:                                      server ──[len|item]…[len|item]──▶ FIN
//! refusal:          server resets the stream with a code from [`crate::refusal::code`]
//! ```
//!
//! The length is checked against the receiver's limit *before* anything is
//! allocated, so a peer cannot make us reserve more than `max_frame` bytes.

use std::net::SocketAddr;

use quinn::{ReadExactError, RecvStream, SendStream};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{from_read_error, from_write_error, TransportError};
use crate::metrics::{self, Side};

/// Bytes in the length prefix.
pub const HEADER_LEN: usize = 4;

/// Default limit on one frame's body: 64 MiB.
pub const DEFAULT_MAX_FRAME: usize = 64 * 1024 * 1024;

/// Rejects a length above `max` with [`TransportError::FrameTooLarge`].
pub fn check_len(len: u64, max: usize) -> Result<(), TransportError> {
    if len > max as u64 {
        return Err(TransportError::FrameTooLarge {
            len,
            max: max as u64,
        });
    }
    Ok(())
}

/// Encodes `value` as a frame body, refusing bodies above `max` (or above
/// what the u32 prefix can express).
pub fn encode_body<T: Serialize>(value: &T, max: usize) -> Result<Vec<u8>, TransportError> {
    let body = protocol::codec::encode(value)?;
    check_len(body.len() as u64, max.min(u32::MAX as usize))?;
    Ok(body)
}

/// The body length a frame header announces, refused with
/// [`TransportError::FrameTooLarge`] above `max`: the one check between a
/// peer's bytes and an allocation (the fuzz targets in `fuzz/` drive it).
pub fn body_len(header: [u8; HEADER_LEN], max: usize) -> Result<usize, TransportError> {
    let len = u32::from_be_bytes(header);
    check_len(u64::from(len), max)?;
    usize::try_from(len).map_err(|_| TransportError::FrameTooLarge {
        len: u64::from(len),
        max: max as u64,
    })
}

/// Decodes a frame body (msgpack) into `T`.
pub fn decode_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, TransportError> {
    Ok(protocol::codec::decode(body)?)
}

/// Writes one frame (prefix + body). Does not finish the stream.
pub(crate) async fn write_frame(
    send: &mut SendStream,
    body: &[u8],
    peer: SocketAddr,
    side: Side,
) -> Result<(), TransportError> {
    let len = u32::try_from(body.len()).map_err(|_| TransportError::FrameTooLarge {
        len: body.len() as u64,
        max: u64::from(u32::MAX),
    })?;
    send.write_all(&len.to_be_bytes())
        .await
        .map_err(|e| from_write_error(peer, e))?;
    send.write_all(body)
        .await
        .map_err(|e| from_write_error(peer, e))?;
    metrics::bytes_sent(side, HEADER_LEN + body.len());
    Ok(())
}

/// Reads one frame body. `Ok(None)` when the stream finished cleanly where a
/// frame would start; a stream that ends inside a frame is
/// [`TransportError::StreamClosed`]; a length above `max` is
/// [`TransportError::FrameTooLarge`] and nothing of the body is read.
pub(crate) async fn read_frame(
    recv: &mut RecvStream,
    max: usize,
    peer: SocketAddr,
    side: Side,
) -> Result<Option<Vec<u8>>, TransportError> {
    let mut header = [0u8; HEADER_LEN];
    match recv.read_exact(&mut header).await {
        Ok(()) => {}
        Err(ReadExactError::FinishedEarly(0)) => return Ok(None),
        Err(ReadExactError::FinishedEarly(n)) => {
            return Err(TransportError::StreamClosed {
                reason: format!("stream ended inside a frame header ({n} of {HEADER_LEN} bytes)"),
            })
        }
        Err(ReadExactError::ReadError(e)) => return Err(from_read_error(peer, e)),
    }
    let len = body_len(header, max)?;
    let mut body = vec![0u8; len];
    match recv.read_exact(&mut body).await {
        Ok(()) => {}
        Err(ReadExactError::FinishedEarly(n)) => {
            return Err(TransportError::StreamClosed {
                reason: format!("stream ended inside a frame body ({n} of {len} bytes)"),
            })
        }
        Err(ReadExactError::ReadError(e)) => return Err(from_read_error(peer, e)),
    }
    metrics::bytes_received(side, HEADER_LEN + body.len());
    Ok(Some(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_limit_is_inclusive() {
        assert!(check_len(10, 10).is_ok());
        assert!(matches!(
            check_len(11, 10),
            Err(TransportError::FrameTooLarge { len: 11, max: 10 })
        ));
    }

    #[test]
    fn a_header_is_checked_before_anything_is_allocated() {
        assert_eq!(body_len([0, 0, 1, 0], 256).unwrap(), 256);
        assert!(matches!(
            body_len([0, 0, 1, 1], 256),
            Err(TransportError::FrameTooLarge { len: 257, max: 256 })
        ));
        assert!(matches!(
            body_len([0xff; 4], DEFAULT_MAX_FRAME),
            Err(TransportError::FrameTooLarge { .. })
        ));
    }

    #[test]
    fn body_round_trip_and_limit() {
        let v = vec![1u32, 2, 3];
        let body = encode_body(&v, 1024).unwrap();
        assert_eq!(decode_body::<Vec<u32>>(&body).unwrap(), v);
        assert!(matches!(
            encode_body(&vec![0u8; 100], 10),
            Err(TransportError::FrameTooLarge { .. })
        ));
        assert!(matches!(
            decode_body::<Vec<u32>>(&[0xc1]),
            Err(TransportError::Codec { .. })
        ));
    }
}
