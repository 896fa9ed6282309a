//! The standalone process answers Qdrant's API, keeps its data across a
//! restart, and stops cleanly on SIGTERM; its log on a pipe is plain text
//! or JSON lines.

use std::net::{TcpListener, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

fn free_tcp() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port")
}

fn free_udp() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("port")
}

struct Ports {
    rest: u16,
    meta: u16,
    rpc: u16,
    http: u16,
}

fn start(dir: &std::path::Path, p: &Ports) -> Child {
    command(dir, p)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn vectordb")
}

fn command(dir: &std::path::Path, p: &Ports) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vectordb"));
    cmd.arg("standalone")
        .arg("--data-dir")
        .arg(dir)
        .args([
            "--rest-port",
            &p.rest.to_string(),
            "--meta-port",
            &p.meta.to_string(),
        ])
        .args([
            "--storage-rpc-port",
            &p.rpc.to_string(),
            "--storage-http-port",
            &p.http.to_string(),
        ])
        .env("RUST_LOG", "info")
        .env_remove("LOG_FORMAT");
    cmd
}

fn free_ports() -> Ports {
    Ports {
        rest: free_tcp(),
        meta: free_tcp(),
        rpc: free_udp(),
        http: free_tcp(),
    }
}

/// The first lines of the start (meta member, storage node, gateway).
const LOG_LINES: usize = 4;

#[test]
fn the_log_on_a_pipe_is_plain_text_and_json_lines_when_asked() {
    use lifecycle::logging::check;
    let dir = tempfile::tempdir().expect("temp dir");
    let cmd = command(dir.path(), &free_ports());
    let log = check::stderr_lines(cmd, LOG_LINES, Duration::from_secs(60));
    assert_eq!(check::plain_text(&log), Ok(LOG_LINES), "{log}");

    let dir = tempfile::tempdir().expect("temp dir");
    let mut cmd = command(dir.path(), &free_ports());
    cmd.env("LOG_FORMAT", "json");
    let log = check::stderr_lines(cmd, LOG_LINES, Duration::from_secs(60));
    assert_eq!(check::json_lines(&log), Ok(LOG_LINES), "{log}");
}

async fn wait_ready(base: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = reqwest::get(format!("{base}/readyz")).await {
            if r.status().is_success() {
                return;
            }
        }
        assert!(Instant::now() < deadline, "standalone never became ready");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn stop(mut child: Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            assert!(status.success(), "standalone exited with {status}");
            return;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("standalone did not stop on SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Retries while the freshly created collection's shard opens.
async fn send(c: &reqwest::Client, method: reqwest::Method, url: &str, body: Value) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = c
            .request(method.clone(), url)
            .json(&body)
            .send()
            .await
            .expect("request");
        let status = r.status();
        let v: Value = r.json().await.expect("json");
        if status.is_success() {
            return v;
        }
        assert!(
            status.as_u16() == 503 && Instant::now() < deadline,
            "{url}: {status} {v}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standalone_serves_and_keeps_data_across_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ports = Ports {
        rest: free_tcp(),
        meta: free_tcp(),
        rpc: free_udp(),
        http: free_tcp(),
    };
    let base = format!("http://127.0.0.1:{}", ports.rest);
    let c = reqwest::Client::new();
    let child = start(dir.path(), &ports);
    wait_ready(&base).await;
    send(
        &c,
        reqwest::Method::PUT,
        &format!("{base}/collections/docs"),
        json!({"vectors": {"size": 3, "distance": "Dot"}}),
    )
    .await;
    let points: Vec<Value> = (0..50)
        .map(|i| json!({"id": i, "vector": [i as f32, 1.0, 0.0], "payload": {"n": i}}))
        .collect();
    send(
        &c,
        reqwest::Method::PUT,
        &format!("{base}/collections/docs/points?wait=true"),
        json!({"points": points}),
    )
    .await;
    let search = json!({"vector": [1.0, 0.0, 0.0], "limit": 3});
    let hits = send(
        &c,
        reqwest::Method::POST,
        &format!("{base}/collections/docs/points/search"),
        search.clone(),
    )
    .await;
    let ids: Vec<i64> = hits["result"]
        .as_array()
        .expect("hits")
        .iter()
        .map(|h| h["id"].as_i64().unwrap_or(-1))
        .collect();
    assert_eq!(ids, vec![49, 48, 47]);
    stop(child);

    let child = start(dir.path(), &ports);
    wait_ready(&base).await;
    let count = send(
        &c,
        reqwest::Method::POST,
        &format!("{base}/collections/docs/points/count"),
        json!({"exact": true}),
    )
    .await;
    assert_eq!(count["result"]["count"], json!(50));
    let again = send(
        &c,
        reqwest::Method::POST,
        &format!("{base}/collections/docs/points/search"),
        search,
    )
    .await;
    assert_eq!(again["result"], hits["result"]);
    stop(child);
}
