//! The four targets. Each calls the decoder and the checks its owner runs
//! (through the entry points those crates expose), then asserts what must
//! hold for anything they accept.

use gateway::api::points::fuzzing::{parse_body, Accepted, Route};
use protocol::cluster::CollectionInfo;
use protocol::rpc::{StorageRequest, StorageResponse};
use protocol::wal_record;
use protocol::{
    CollectionConfig, CountRequest, Distance, Epoch, Operation, ScrollRequest, SequencedOperation,
};
use transport::frame::{self, DEFAULT_MAX_FRAME, HEADER_LEN};

use crate::check::round_trip;

/// The dimension of the collection the targets check against (the seeds
/// use it too).
pub const DIM: usize = 4;

/// Frames as a peer's QUIC stream delivers them: header, the length check
/// that comes before any allocation, the body decoded as the storage
/// node's server does (`StorageRequest`) and as a client does
/// (`StorageResponse`). Whatever decodes must survive the round trip, and
/// a request goes through the checks a storage node runs before acting.
pub fn frame(data: &[u8]) {
    let mut rest = data;
    while let Some((header, after)) = rest.split_first_chunk::<HEADER_LEN>() {
        let Ok(len) = frame::body_len(*header, DEFAULT_MAX_FRAME) else {
            return;
        };
        assert!(len <= DEFAULT_MAX_FRAME, "length check let {len} through");
        // A stream that ends inside a body is an error, not a frame.
        let Some(body) = after.get(..len) else {
            return;
        };
        if let Ok(req) = frame::decode_body::<StorageRequest>(body) {
            let req = round_trip(&req, "storage request");
            node_checks(&req);
        }
        if let Ok(resp) = frame::decode_body::<StorageResponse>(body) {
            round_trip(&resp, "storage response");
        }
        rest = &after[len..];
    }
}

/// The protocol checks a storage node applies to a decoded request before
/// acting on it (shard write path, snapshot install, reads). Refusing is
/// fine; panicking, or accepting what breaks the contract, is not.
fn node_checks(req: &StorageRequest) {
    match req {
        StorageRequest::Write { op, .. } => accepted_op(op),
        StorageRequest::Replicate { ops, .. } => ops.iter().for_each(|o| accepted_op(&o.op)),
        StorageRequest::InstallSnapshot { chunk, .. } => {
            for e in chunk {
                if e.point.validate(DIM).is_ok() {
                    assert_valid_vector(&e.point.vector);
                }
            }
        }
        StorageRequest::Search { request, .. } if request.validate(DIM).is_ok() => {
            assert_valid_vector(&request.vector);
        }
        StorageRequest::Scroll {
            request: ScrollRequest {
                filter: Some(f), ..
            },
            ..
        }
        | StorageRequest::Count {
            request: CountRequest {
                filter: Some(f), ..
            },
            ..
        } => {
            let _ = f.validate();
        }
        _ => {}
    }
}

fn accepted_op(op: &Operation) {
    if op.validate(DIM).is_ok() {
        if let Operation::Upsert { points } = op {
            points.iter().for_each(|p| assert_valid_vector(&p.vector));
        }
    }
}

fn assert_valid_vector(v: &[f32]) {
    assert_eq!(v.len(), DIM, "accepted a vector of the wrong dimension");
    assert!(
        v.iter().all(|x| x.is_finite()),
        "accepted a non-finite vector"
    );
}

/// The WAL's record reader on a file's bytes, as replay on open reads it;
/// then the input framed as one record with a valid length and CRC
/// (AFL rarely guesses a CRC), so the decoding behind the header is
/// reached too.
pub fn wal_record(data: &[u8]) {
    scan(data);
    let mut framed = Vec::with_capacity(wal_record::HEADER_BYTES + data.len());
    framed.extend_from_slice(&(data.len() as u32).to_le_bytes());
    framed.extend_from_slice(&crc32c::crc32c(data).to_le_bytes());
    framed.extend_from_slice(data);
    scan(&framed);
}

/// What the WAL relies on when it cuts a damaged tail: the records before
/// the damage are exactly what the prefix up to it holds, and each record
/// survives re-encoding (appending it again after a replay).
fn scan(buf: &[u8]) {
    let s = wal_record::scan(buf);
    assert_eq!(s.records.len(), s.offsets.len());
    assert!(
        s.offsets.windows(2).all(|w| w[0] < w[1]),
        "record offsets not increasing"
    );
    let good_end = match &s.damage {
        Some((pos, _)) => *pos,
        None => buf.len(),
    };
    assert!(good_end <= buf.len());
    if let Some(&last) = s.offsets.last() {
        assert!(
            (last as usize) < good_end,
            "a record starts past the damage"
        );
    }
    if s.damage.is_some() {
        let prefix = wal_record::scan(&buf[..good_end]);
        assert!(prefix.damage.is_none(), "the valid prefix is damaged");
        assert_eq!(
            prefix.offsets, s.offsets,
            "the valid prefix reads differently"
        );
    }
    for r in &s.records {
        let back: SequencedOperation = round_trip(r, "WAL record");
        match wal_record::encode(&back) {
            Ok(frame) => {
                let again = wal_record::decode(&frame);
                assert!(again.is_ok(), "a re-encoded record does not decode");
            }
            Err(wal_record::RecordError::EncodeTooLarge { .. }) => {}
            Err(e) => panic!("a decoded record does not encode: {e}"),
        }
    }
}

/// A snapshot chunk as a replica receives it: the body of an
/// `InstallSnapshot` request, decoded and its points checked against the
/// collection as `SnapshotWriter::add` does; an accepted point must have a
/// vector of the collection's dimension, finite, and a payload within the
/// limit, and the chunk must cross the wire again unchanged.
pub fn snapshot_chunk(data: &[u8]) {
    let Ok(req) = frame::decode_body::<StorageRequest>(data) else {
        return;
    };
    let req = round_trip(&req, "snapshot request");
    let StorageRequest::InstallSnapshot { chunk, .. } = &req else {
        return;
    };
    for e in chunk {
        if e.point.validate(DIM).is_ok() {
            assert_valid_vector(&e.point.vector);
            if let Some(p) = &e.point.payload {
                assert!(protocol::point::validate_payload(p).is_ok());
            }
        }
    }
}

/// The collection the JSON target parses against.
pub fn collection() -> CollectionInfo {
    CollectionInfo {
        name: "fuzz".into(),
        config: CollectionConfig::new(DIM, Distance::Cosine),
        shards: Default::default(),
        created_epoch: Epoch(1),
    }
}

/// A gateway request body: the first byte picks the route
/// (`Route::ALL[b % 14]`), the rest is the body, parsed and checked as
/// the route does. What the gateway accepts must reach a storage node
/// intact and still pass the node's own checks there.
pub fn json_models(data: &[u8]) {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let route = Route::ALL[usize::from(pick) % Route::ALL.len()];
    let Ok(acc) = parse_body(route, body, &collection()) else {
        return;
    };
    accepted_body(&acc);
}

fn accepted_body(acc: &Accepted) {
    for p in round_trip(&acc.points, "points") {
        assert!(
            p.validate(DIM).is_ok(),
            "accepted point fails the node's check"
        );
    }
    round_trip(&acc.ids, "ids");
    for f in round_trip(&acc.filters, "filters") {
        assert!(
            f.validate().is_ok(),
            "accepted filter fails the node's check"
        );
    }
    for p in round_trip(&acc.payloads, "payloads") {
        assert!(protocol::point::validate_payload(&p).is_ok());
    }
    round_trip(&acc.keys, "payload keys");
    for s in round_trip(&acc.searches, "searches") {
        assert!(
            s.validate(DIM).is_ok(),
            "accepted search fails the node's check"
        );
    }
    if let Some(s) = round_trip(&acc.scroll, "scroll") {
        if let Some(f) = &s.filter {
            assert!(f.validate().is_ok());
        }
    }
    if let Some(c) = round_trip(&acc.count, "count") {
        if let Some(f) = &c.filter {
            assert!(f.validate().is_ok());
        }
    }
    if let Some(c) = round_trip(&acc.collection, "collection config") {
        assert!(c.validate().is_ok());
    }
}
