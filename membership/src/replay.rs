//! The receiving side of authenticated gossip: verify, refuse stale and
//! replayed datagrams, reassemble fragments.
//!
//! Replay: per sender session, the highest counter seen and a 64-bit
//! bitmap of the counters just below it (IPsec's anti-replay window,
//! RFC 4303 §3.4.3), so reordering by up to 64 datagrams is tolerated and
//! each (session, counter) is accepted once. A session's state is kept
//! while it is younger than twice [`REPLAY_WINDOW`] of silence; a datagram
//! older than the window is refused by its timestamp, so forgetting a
//! session never lets its old datagrams back in.

use std::collections::HashMap;

use crate::auth::{verify, DropReason, GossipAuth, REPLAY_WINDOW};

/// Sender sessions tracked at once (a cluster has one per storage node
/// incarnation; only key holders can create one).
const MAX_SESSIONS: usize = 4_096;
/// Messages waiting for their other fragments.
const MAX_PARTIAL: usize = 64;
/// How long a fragment waits for the rest of its message.
const PARTIAL_TTL_MS: u64 = 2_000;

struct Session {
    highest: u64,
    /// Bit i set: counter `highest - i` was received.
    seen: u64,
    last_ms: u64,
}

impl Session {
    /// Records `counter`; false if it was seen or is too far behind.
    fn accept(&mut self, counter: u64) -> bool {
        if counter > self.highest {
            let shift = counter - self.highest;
            self.seen = if shift >= 64 { 0 } else { self.seen << shift };
            self.seen |= 1;
            self.highest = counter;
            return true;
        }
        let behind = self.highest - counter;
        if behind >= 64 || self.seen & (1 << behind) != 0 {
            return false;
        }
        self.seen |= 1 << behind;
        true
    }
}

struct Partial {
    fragments: Vec<Option<Vec<u8>>>,
    first_ms: u64,
}

/// What [`Opener::open`] made of one datagram.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Opened {
    /// A whole verified payload.
    Message(Vec<u8>),
    /// A verified fragment; the rest of its message has not arrived.
    Pending,
}

/// Per-socket receive state.
pub(crate) struct Opener {
    auth: GossipAuth,
    sessions: HashMap<u64, Session>,
    /// Keyed by (session, counter of fragment 0).
    partial: HashMap<(u64, u64), Partial>,
}

impl Opener {
    pub fn new(auth: GossipAuth) -> Self {
        Opener {
            auth,
            sessions: HashMap::new(),
            partial: HashMap::new(),
        }
    }

    /// Verifies one datagram received at `now_ms` (Unix ms). The caller
    /// counts the drop reason.
    pub fn open(&mut self, datagram: &[u8], now_ms: u64) -> Result<Opened, DropReason> {
        let (header, payload) = verify(self.auth.key(), datagram)?;
        let window = REPLAY_WINDOW.as_millis() as u64;
        if header.sent_ms.abs_diff(now_ms) > window {
            return Err(DropReason::Stale);
        }
        if !self.sessions.contains_key(&header.session) && self.sessions.len() >= MAX_SESSIONS {
            self.sessions
                .retain(|_, s| now_ms.saturating_sub(s.last_ms) <= 2 * window);
            if self.sessions.len() >= MAX_SESSIONS {
                return Err(DropReason::TooManySenders);
            }
        }
        let session = self.sessions.entry(header.session).or_insert(Session {
            // Accepting `counter` below sets exactly its bit.
            highest: header.counter,
            seen: 0,
            last_ms: now_ms,
        });
        if !session.accept(header.counter) {
            return Err(DropReason::Replay);
        }
        session.last_ms = now_ms;
        // At most MAX_PARTIAL entries: cheap to sweep on every datagram.
        self.partial
            .retain(|_, p| now_ms.saturating_sub(p.first_ms) <= PARTIAL_TTL_MS);
        if header.fragments == 1 {
            return Ok(Opened::Message(payload.to_vec()));
        }
        let key = (header.session, header.counter - u64::from(header.fragment));
        if !self.partial.contains_key(&key) && self.partial.len() >= MAX_PARTIAL {
            // Full of messages that may never complete: make room by
            // giving up the oldest (gossip resends what was lost).
            if let Some(oldest) = self
                .partial
                .iter()
                .min_by_key(|(_, p)| p.first_ms)
                .map(|(k, _)| *k)
            {
                self.partial.remove(&oldest);
            }
        }
        let entry = self.partial.entry(key).or_insert_with(|| Partial {
            fragments: vec![None; usize::from(header.fragments)],
            first_ms: now_ms,
        });
        if entry.fragments.len() != usize::from(header.fragments) {
            return Err(DropReason::Malformed);
        }
        entry.fragments[usize::from(header.fragment)] = Some(payload.to_vec());
        if entry.fragments.iter().any(Option::is_none) {
            return Ok(Opened::Pending);
        }
        let done = self.partial.remove(&key).map(|p| p.fragments);
        Ok(Opened::Message(
            done.unwrap_or_default()
                .into_iter()
                .flatten()
                .flatten()
                .collect(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{seal, MAX_DATAGRAM};

    const NOW: u64 = 1_700_000_000_000;

    fn auth() -> GossipAuth {
        GossipAuth::from_ca_der(b"ca", "cluster")
    }

    fn sealed(a: &GossipAuth, session: u64, counter: u64, sent_ms: u64) -> Vec<u8> {
        seal(a.key(), session, &mut counter.clone(), sent_ms, b"msg")
            .unwrap()
            .remove(0)
    }

    #[test]
    fn a_datagram_is_accepted_once_and_its_replay_refused() {
        let a = auth();
        let mut opener = Opener::new(a.clone());
        let d = sealed(&a, 1, 5, NOW);
        assert_eq!(opener.open(&d, NOW), Ok(Opened::Message(b"msg".to_vec())));
        assert_eq!(opener.open(&d, NOW + 10), Err(DropReason::Replay));
    }

    #[test]
    fn reordering_within_the_window_is_fine_and_older_is_refused() {
        let a = auth();
        let mut opener = Opener::new(a.clone());
        for c in [10, 8, 9, 12, 11] {
            assert!(opener.open(&sealed(&a, 1, c, NOW), NOW).is_ok(), "{c}");
        }
        for c in [8, 9, 10, 11, 12] {
            assert_eq!(
                opener.open(&sealed(&a, 1, c, NOW), NOW),
                Err(DropReason::Replay)
            );
        }
        assert!(opener.open(&sealed(&a, 1, 100, NOW), NOW).is_ok());
        // 64 behind: outside the bitmap, refused though never seen.
        assert_eq!(
            opener.open(&sealed(&a, 1, 36, NOW), NOW),
            Err(DropReason::Replay)
        );
        assert!(opener.open(&sealed(&a, 1, 37, NOW), NOW).is_ok());
        // Another session (a restarted sender) has its own window.
        assert!(opener.open(&sealed(&a, 2, 5, NOW), NOW).is_ok());
    }

    #[test]
    fn stale_and_future_datagrams_are_refused() {
        let a = auth();
        let mut opener = Opener::new(a.clone());
        let window = REPLAY_WINDOW.as_millis() as u64;
        assert_eq!(
            opener.open(&sealed(&a, 1, 1, NOW - window - 1), NOW),
            Err(DropReason::Stale)
        );
        assert_eq!(
            opener.open(&sealed(&a, 1, 2, NOW + window + 1), NOW),
            Err(DropReason::Stale)
        );
        assert!(opener.open(&sealed(&a, 1, 3, NOW - window), NOW).is_ok());
    }

    #[test]
    fn forged_datagrams_change_no_state() {
        let a = auth();
        let forger = GossipAuth::from_ca_der(b"another ca", "cluster");
        let mut opener = Opener::new(a.clone());
        // A forged datagram claiming session 1, counter 50, is refused and
        // does not advance the window: the genuine counter 5 still passes.
        assert_eq!(
            opener.open(&sealed(&forger, 1, 50, NOW), NOW),
            Err(DropReason::BadMac)
        );
        assert!(opener.open(&sealed(&a, 1, 5, NOW), NOW).is_ok());
        assert_eq!(opener.open(b"VG", NOW), Err(DropReason::Malformed));
    }

    #[test]
    fn fragments_reassemble_in_any_order_once() {
        let a = auth();
        let mut opener = Opener::new(a.clone());
        let payload: Vec<u8> = (0..MAX_DATAGRAM + 100).map(|i| i as u8).collect();
        let frames = seal(a.key(), 9, &mut 1, NOW, &payload).unwrap();
        assert_eq!(frames.len(), 2);
        assert_eq!(opener.open(&frames[1], NOW), Ok(Opened::Pending));
        assert_eq!(opener.open(&frames[0], NOW), Ok(Opened::Message(payload)));
        assert_eq!(opener.open(&frames[0], NOW), Err(DropReason::Replay));
        // A lone fragment expires instead of waiting forever.
        let more = seal(a.key(), 9, &mut 3, NOW, &vec![1; MAX_DATAGRAM + 1]).unwrap();
        assert_eq!(opener.open(&more[0], NOW), Ok(Opened::Pending));
        let later = NOW + PARTIAL_TTL_MS + 1;
        assert!(opener.open(&sealed(&a, 9, 10, later), later).is_ok());
        assert!(opener.partial.is_empty());
    }
}
