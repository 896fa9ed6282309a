//! Crash test: a child process writes with fsync-before-ack and is
//! SIGKILLed at a random moment, several times over the same shard. After
//! each kill the shard must hold exactly the effects of operations
//! 1..=n where n is the last acknowledged operation or the one after it
//! (in flight when the kill came) — every acknowledged write present,
//! nothing half-applied.
//!
//! The child is this same test binary, re-run with `CRASH_CHILD_DIR` set.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use protocol::{CollectionConfig, Distance, Operation, Payload, Point, PointId, SeqNo};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use storage_node::{Shard, ShardOptions, SyncMode, WalOptions};

const DIM: usize = 8;
const CHILD_ENV: &str = "CRASH_CHILD_DIR";

fn config() -> CollectionConfig {
    let mut c = CollectionConfig::new(DIM, Distance::Dot);
    c.hnsw.m = 8;
    c.hnsw.ef_construct = 32;
    c
}

fn options(background: bool) -> ShardOptions {
    ShardOptions {
        wal: WalOptions {
            sync: SyncMode::Always,
            max_file_bytes: 256 << 10,
        },
        // Small segments: the kill lands during indexing, checkpoints and
        // WAL truncation as well as plain appends.
        max_segment_points: 400,
        background,
        ..ShardOptions::default()
    }
}

/// The operation with sequence number `seq`, the same in child and parent.
fn op_for(seq: u64) -> Operation {
    let mut r = StdRng::seed_from_u64(seq);
    let id = |r: &mut StdRng| PointId::Num(r.random_range(0..3000));
    match r.random_range(0..10) {
        0 => Operation::Delete {
            ids: (0..r.random_range(1..20)).map(|_| id(&mut r)).collect(),
        },
        1 => {
            let mut p = Payload::new();
            p.insert("touched".into(), serde_json::json!(seq));
            Operation::SetPayload {
                ids: (0..5).map(|_| id(&mut r)).collect(),
                payload: p,
            }
        }
        _ => Operation::Upsert {
            points: (0..r.random_range(1..60))
                .map(|_| {
                    let mut p = Payload::new();
                    p.insert("seq".into(), serde_json::json!(seq));
                    Point {
                        id: id(&mut r),
                        vector: (0..DIM).map(|_| r.random_range(-1.0..1.0)).collect(),
                        payload: Some(p),
                    }
                })
                .collect(),
        },
    }
}

type Model = BTreeMap<PointId, (Vec<f32>, Option<Payload>)>;

fn model_after(n: u64) -> Model {
    let mut m = Model::new();
    for seq in 1..=n {
        match op_for(seq) {
            Operation::Upsert { points } => points.into_iter().for_each(|p| {
                m.insert(p.id, (p.vector, p.payload));
            }),
            Operation::Delete { ids } => ids.iter().for_each(|id| {
                m.remove(id);
            }),
            Operation::SetPayload { ids, payload } => {
                for id in ids {
                    if let Some((_, p)) = m.get_mut(&id) {
                        p.get_or_insert_with(Payload::new).extend(payload.clone());
                    }
                }
            }
            _ => unreachable!(),
        }
    }
    m
}

/// The child: write until killed (bounded: 60 s or 200,000 operations).
#[test]
fn crash_child_writer() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let shard = Shard::open(std::path::Path::new(&dir), config(), options(true)).unwrap();
    let started = Instant::now();
    let mut seq = shard.applied_seq().0 + 1;
    while started.elapsed() < Duration::from_secs(60) && seq < 200_000 {
        let got = shard.apply(op_for(seq)).unwrap();
        assert_eq!(got, SeqNo(seq));
        println!("ACK {seq}");
        seq += 1;
    }
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = StdRng::seed_from_u64(std::process::id() as u64);
    let mut total_acked = 0;
    for round in 0..5 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "crash::crash_child_writer",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env(CHILD_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(n) = line.strip_prefix("ACK ") {
                    let _ = tx.send(n.parse::<u64>().unwrap());
                }
            }
        });
        // Wait for the first acknowledgement, then kill at a random moment.
        let first = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("child never acknowledged a write");
        std::thread::sleep(Duration::from_millis(rng.random_range(200..1500)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        reader.join().unwrap();
        let acked = rx.try_iter().last().unwrap_or(first);
        total_acked = acked;

        let shard = Shard::open(dir.path(), config(), options(false)).unwrap();
        let applied = shard.applied_seq().0;
        assert!(
            applied == acked || applied == acked + 1,
            "round {round}: acknowledged up to {acked}, shard recovered {applied}"
        );
        let got: Model = shard
            .snapshot()
            .points
            .into_iter()
            .map(|p| (p.point.id, (p.point.vector, p.point.payload)))
            .collect();
        let want = model_after(applied);
        assert_eq!(
            got.len(),
            want.len(),
            "round {round}: point count after recovery"
        );
        assert!(
            got == want,
            "round {round}: content differs from operations 1..={applied}"
        );
        eprintln!("round {round}: killed after {acked} acknowledged operations; recovered {applied}, {} points", got.len());
    }
    assert!(total_acked > 0);
}
