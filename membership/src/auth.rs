//! Gossip authentication: the cluster's gossip key and the sealed datagram
//! format (HMAC-SHA256 over every UDP packet).
//!
//! ```text
//!  0      2     3      4      5        8          16          24          32         len-32      len
//!  ├"VG"──┼ ver ┼ frag ┼ of n ┼ 0 0 0 ─┼ session ──┼ counter ──┼ sent_ms ──┼ payload ──┼ tag ──────┤
//!                                        u64 BE      u64 BE      u64 BE                 HMAC-SHA256
//! ```
//!
//! - `session`: random per socket (per process start), so a restarted
//!   sender starts a fresh replay window instead of reusing counters.
//! - `counter`: per datagram, from 1; the receiver's replay window
//!   (`replay`) refuses a (session, counter) it has seen.
//! - `sent_ms`: wall clock; a packet older or newer than
//!   [`REPLAY_WINDOW`] is refused, which bounds how long a receiver must
//!   remember a session.
//! - fragments: chitchat fills a datagram up to the UDP limit (65,507
//!   bytes), so an envelope plus our 64 bytes may not fit in one; it is
//!   then sent as 2 fragments with consecutive counters, each sealed on its
//!   own. The tag covers the header, so nothing in it can be changed.
//!
//! The key is HKDF-SHA256 over key material every node already has (the
//! cluster CA certificate, or a configured secret), with the cluster id as
//! HKDF info: clusters sharing a CA still get different keys. What this
//! protects against and what it does not: `SECURITY.md`, "Gossip".

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ring::{hkdf, hmac};

/// How far a packet's send time may be from the receiver's clock.
pub const REPLAY_WINDOW: Duration = Duration::from_secs(30);

/// chitchat's (and IPv4 UDP's) largest datagram payload.
pub(crate) const MAX_DATAGRAM: usize = 65_507;
const MAGIC: &[u8; 2] = b"VG";
const VERSION: u8 = 1;
pub(crate) const HEADER_LEN: usize = 32;
pub(crate) const TAG_LEN: usize = 32;
/// Payload bytes per fragment.
pub(crate) const MAX_FRAGMENT_PAYLOAD: usize = MAX_DATAGRAM - HEADER_LEN - TAG_LEN;
/// A chitchat envelope never exceeds one datagram, so 2 fragments suffice;
/// the cap bounds what a receiver buffers per message.
pub(crate) const MAX_FRAGMENTS: u8 = 4;

const HKDF_SALT: &[u8] = b"vectordb gossip hmac v1";

/// Why a received datagram was dropped (the `reason` label of
/// `membership_gossip_packets_dropped_total`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// Too short, wrong magic or version, bad fragment numbers, or an
    /// authenticated payload that is not a chitchat envelope.
    Malformed,
    /// The tag does not verify: forged, corrupted, or another cluster's key.
    BadMac,
    /// Sent more than [`REPLAY_WINDOW`] away from our clock.
    Stale,
    /// A (session, counter) already received, or older than the window.
    Replay,
    /// More live sender sessions than we keep state for.
    TooManySenders,
}

impl DropReason {
    pub const ALL: [DropReason; 5] = [
        DropReason::Malformed,
        DropReason::BadMac,
        DropReason::Stale,
        DropReason::Replay,
        DropReason::TooManySenders,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::Malformed => "malformed",
            DropReason::BadMac => "bad_mac",
            DropReason::Stale => "stale",
            DropReason::Replay => "replay",
            DropReason::TooManySenders => "too_many_senders",
        }
    }

    fn index(self) -> usize {
        match self {
            DropReason::Malformed => 0,
            DropReason::BadMac => 1,
            DropReason::Stale => 2,
            DropReason::Replay => 3,
            DropReason::TooManySenders => 4,
        }
    }
}

/// The cluster's gossip key, and what was dropped with it. Cheap to clone;
/// clones share the drop counters.
#[derive(Clone)]
pub struct GossipAuth {
    key: hmac::Key,
    dropped: Arc<[AtomicU64; 5]>,
}

impl std::fmt::Debug for GossipAuth {
    // Never print the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GossipAuth").finish_non_exhaustive()
    }
}

impl GossipAuth {
    /// The key derived from the cluster CA certificate (DER): every node
    /// holds it, so no extra secret has to be distributed. It keeps out
    /// anyone without the cluster's CA certificate; see `SECURITY.md`.
    pub fn from_ca_der(ca_der: &[u8], cluster_id: &str) -> Self {
        Self::derive(ca_der, cluster_id)
    }

    /// The key derived from a secret shared by every storage node.
    pub fn from_secret(secret: &[u8], cluster_id: &str) -> Self {
        Self::derive(secret, cluster_id)
    }

    fn derive(ikm: &[u8], cluster_id: &str) -> Self {
        let info = [cluster_id.as_bytes()];
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, HKDF_SALT).extract(ikm);
        let okm = prk.expand(&info, hmac::HMAC_SHA256);
        let key = match okm {
            Ok(okm) => hmac::Key::from(okm),
            // `expand` fails only for an output longer than 255 hash
            // lengths; 32 bytes never does. Falling back to the PRK-free
            // key would still be keyed by the same input.
            Err(_) => hmac::Key::new(hmac::HMAC_SHA256, ikm),
        };
        GossipAuth {
            key,
            dropped: Arc::new(Default::default()),
        }
    }

    /// Datagrams dropped so far for `reason` on sockets of this key.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.dropped[reason.index()].load(Ordering::Relaxed)
    }

    pub(crate) fn count_drop(&self, reason: DropReason) {
        self.dropped[reason.index()].fetch_add(1, Ordering::Relaxed);
        metrics::counter!("membership_gossip_packets_dropped_total", "reason" => reason.as_str())
            .increment(1);
    }

    pub(crate) fn key(&self) -> &hmac::Key {
        &self.key
    }
}

/// What a verified datagram's header says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Header {
    pub fragment: u8,
    pub fragments: u8,
    pub session: u64,
    pub counter: u64,
    pub sent_ms: u64,
}

/// Seals `payload` into one or more datagrams, numbered from `*counter`
/// (advanced past the ones used). `None` if the payload needs more than
/// [`MAX_FRAGMENTS`] datagrams (chitchat never sends that much).
pub(crate) fn seal(
    key: &hmac::Key,
    session: u64,
    counter: &mut u64,
    sent_ms: u64,
    payload: &[u8],
) -> Option<Vec<Vec<u8>>> {
    let chunks: Vec<&[u8]> = if payload.is_empty() {
        vec![payload]
    } else {
        payload.chunks(MAX_FRAGMENT_PAYLOAD).collect()
    };
    let fragments = u8::try_from(chunks.len())
        .ok()
        .filter(|n| *n <= MAX_FRAGMENTS)?;
    let mut out = Vec::with_capacity(chunks.len());
    for (i, chunk) in chunks.into_iter().enumerate() {
        let mut datagram = Vec::with_capacity(HEADER_LEN + chunk.len() + TAG_LEN);
        datagram.extend_from_slice(MAGIC);
        datagram.push(VERSION);
        datagram.push(i as u8);
        datagram.push(fragments);
        datagram.extend_from_slice(&[0, 0, 0]);
        datagram.extend_from_slice(&session.to_be_bytes());
        datagram.extend_from_slice(&counter.to_be_bytes());
        datagram.extend_from_slice(&sent_ms.to_be_bytes());
        datagram.extend_from_slice(chunk);
        let tag = hmac::sign(key, &datagram);
        datagram.extend_from_slice(tag.as_ref());
        *counter += 1;
        out.push(datagram);
    }
    Some(out)
}

/// Checks a datagram's format and tag (in constant time); its header and
/// payload when both are good. Nothing of an unverified datagram is used.
pub(crate) fn verify<'a>(
    key: &hmac::Key,
    datagram: &'a [u8],
) -> Result<(Header, &'a [u8]), DropReason> {
    if datagram.len() < HEADER_LEN + TAG_LEN || &datagram[..2] != MAGIC || datagram[2] != VERSION {
        return Err(DropReason::Malformed);
    }
    let (signed, tag) = datagram.split_at(datagram.len() - TAG_LEN);
    hmac::verify(key, signed, tag).map_err(|_| DropReason::BadMac)?;
    let u64_at = |at: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&signed[at..at + 8]);
        u64::from_be_bytes(b)
    };
    let header = Header {
        fragment: signed[3],
        fragments: signed[4],
        session: u64_at(8),
        counter: u64_at(16),
        sent_ms: u64_at(24),
    };
    if header.fragments == 0
        || header.fragments > MAX_FRAGMENTS
        || header.fragment >= header.fragments
        || header.counter < u64::from(header.fragment)
    {
        return Err(DropReason::Malformed);
    }
    Ok((header, &signed[HEADER_LEN..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(ca: &[u8], cluster: &str) -> GossipAuth {
        GossipAuth::from_ca_der(ca, cluster)
    }

    #[test]
    fn a_sealed_datagram_verifies_with_the_same_key_only() {
        let a = auth(b"ca-1", "c");
        let mut counter = 1;
        let sealed = seal(a.key(), 7, &mut counter, 1_000, b"hello").unwrap();
        assert_eq!(sealed.len(), 1);
        assert_eq!(counter, 2);
        let (header, payload) = verify(a.key(), &sealed[0]).unwrap();
        assert_eq!(payload, b"hello");
        assert_eq!(
            header,
            Header {
                fragment: 0,
                fragments: 1,
                session: 7,
                counter: 1,
                sent_ms: 1_000
            }
        );
        // Another CA, or the same CA in another cluster: another key.
        for other in [auth(b"ca-2", "c"), auth(b"ca-1", "d")] {
            assert_eq!(verify(other.key(), &sealed[0]), Err(DropReason::BadMac));
        }
    }

    #[test]
    fn any_changed_byte_fails_the_tag() {
        let a = auth(b"ca", "c");
        let sealed = seal(a.key(), 1, &mut 1, 5, b"payload").unwrap().remove(0);
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x01;
            let got = verify(a.key(), &bad);
            assert!(
                matches!(got, Err(DropReason::BadMac | DropReason::Malformed)),
                "byte {i}: {got:?}"
            );
        }
        assert_eq!(
            verify(a.key(), &sealed[..HEADER_LEN + TAG_LEN - 1]),
            Err(DropReason::Malformed)
        );
    }

    #[test]
    fn a_full_datagram_is_split_in_two_fragments_under_the_udp_limit() {
        let a = auth(b"ca", "c");
        let payload = vec![0xAB; MAX_DATAGRAM];
        let mut counter = 10;
        let sealed = seal(a.key(), 1, &mut counter, 5, &payload).unwrap();
        assert_eq!(sealed.len(), 2);
        assert!(sealed.iter().all(|d| d.len() <= MAX_DATAGRAM));
        let (h0, p0) = verify(a.key(), &sealed[0]).unwrap();
        let (h1, p1) = verify(a.key(), &sealed[1]).unwrap();
        assert_eq!((h0.fragment, h0.fragments, h0.counter), (0, 2, 10));
        assert_eq!((h1.fragment, h1.fragments, h1.counter), (1, 2, 11));
        assert_eq!([p0, p1].concat(), payload);
        assert!(seal(a.key(), 1, &mut 1, 5, &vec![0; MAX_DATAGRAM * 4]).is_none());
    }
}
