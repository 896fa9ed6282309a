//! The one name rule (`protocol::names`) on every route of a live cluster:
//! hostile collection and alias names sent to the gateway's create, upsert,
//! search, delete and alias routes, and straight to the meta-service's
//! command API, are all 4xx answers quoting the rule, and no storage node
//! creates a directory for them.
//!
//! Paths go out as raw HTTP/1.1 bytes: an HTTP client library normalises
//! `..` and `%2e%2e` segments away before sending, which is exactly what
//! a hostile client does not do.

use protocol::cluster::{AliasAction, ClusterCommand};
use protocol::names::NAME_RULE;
use protocol::{CollectionConfig, Distance};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::*;

/// Sends one request as written (no normalisation); returns the status
/// and the whole body.
async fn raw(url: &str, method: &str, path: &str, body: &str) -> (u16, String) {
    let host = url.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(host).await.expect("connect");
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.expect("write");
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.expect("read");
    let text = String::from_utf8_lossy(&out).to_string();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    (status, body)
}

/// Hostile names as they appear in a URL path segment, and decoded (as
/// they appear in a JSON body).
fn hostile() -> Vec<(String, String)> {
    let long = "a".repeat(256);
    vec![
        ("..".into(), "..".into()),
        ("%2e%2e".into(), "..".into()),
        ("%2E%2E".into(), "..".into()),
        // The literal text "%2e%2e" as a name (its '%' is refused).
        ("%252e%252e".into(), "%2e%2e".into()),
        ("a%2Fb".into(), "a/b".into()),
        ("a%5Cb".into(), "a\\b".into()),
        ("..%2F..%2Fescaped".into(), "../../escaped".into()),
        ("a%00b".into(), "a\0b".into()),
        ("a%0Ab".into(), "a\nb".into()),
        (long.clone(), long),
        (".hidden".into(), ".hidden".into()),
        ("-rf".into(), "-rf".into()),
        // "соllection" with a Cyrillic 'о' (U+043E).
        (
            "%D1%81%D0%BEllection".into(),
            "\u{0441}\u{043e}llection".into(),
        ),
        // Fullwidth solidus (U+FF0F).
        ("a%EF%BC%8Fb".into(), "a\u{ff0f}b".into()),
        // Not UTF-8 once decoded.
        ("a%FFb".into(), "a\u{fffd}b".into()),
    ]
}

fn assert_refused(what: &str, status: u16, body: &str) {
    assert!(
        (400..500).contains(&status),
        "{what}: expected a 4xx, got {status}: {body}"
    );
    assert!(
        body.contains(NAME_RULE),
        "{what}: the answer does not quote the rule: {body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hostile_names_are_refused_on_every_route_and_at_the_meta_service() {
    let _serial = SERIAL.lock().await;
    let c = TestCluster::start(Options::default()).await;
    seed(&c, "good", 10).await;
    let create = json!({"vectors": {"size": DIM, "distance": "Cosine"}, "shard_number": 3, "replication_factor": 2}).to_string();
    let upsert = json!({"points": [{"id": 1, "vector": vector(1, DIM)}]}).to_string();
    let search = json!({"vector": vector(1, DIM), "limit": 3}).to_string();

    for (segment, name) in hostile() {
        for (method, path, body) in [
            ("PUT", format!("/collections/{segment}"), create.as_str()),
            ("GET", format!("/collections/{segment}"), ""),
            ("DELETE", format!("/collections/{segment}"), ""),
            (
                "PUT",
                format!("/collections/{segment}/points?wait=true"),
                upsert.as_str(),
            ),
            (
                "POST",
                format!("/collections/{segment}/points/search"),
                search.as_str(),
            ),
            ("GET", format!("/collections/{segment}/aliases"), ""),
        ] {
            let (status, answer) = raw(&c.url, method, &path, body).await;
            assert_refused(&format!("{method} {path}"), status, &answer);
        }
        // Aliases: a hostile alias name, and a hostile collection name
        // behind a good alias name, in every action kind.
        for actions in [
            json!([{"create_alias": {"collection_name": "good", "alias_name": name}}]),
            json!([{"create_alias": {"collection_name": name, "alias_name": "fine"}}]),
            json!([{"rename_alias": {"old_alias_name": "fine", "new_alias_name": name}}]),
            json!([{"delete_alias": {"alias_name": name}}]),
        ] {
            let body = json!({ "actions": actions }).to_string();
            let (status, answer) = raw(&c.url, "POST", "/collections/aliases", &body).await;
            assert_refused(&format!("aliases {actions}"), status, &answer);
        }
        // The meta-service's own API, as a client skipping the gateway.
        if name.contains('\u{fffd}') {
            continue; // A JSON string cannot carry non-UTF-8 bytes.
        }
        for cmd in [
            ClusterCommand::CreateCollection {
                name: name.clone(),
                config: CollectionConfig::new(DIM, Distance::Cosine),
            },
            ClusterCommand::ChangeAliases {
                actions: vec![AliasAction::Create {
                    alias: name.clone(),
                    collection: "good".into(),
                }],
            },
        ] {
            let body = serde_json::to_string(&cmd).expect("encode");
            let url = format!("http://{}", c.meta_addr);
            let (status, answer) = raw(&url, "POST", "/v1/commands", &body).await;
            assert_refused(&format!("meta {body:.80}"), status, &answer);
        }
    }

    // Nothing but the good collection exists, in the map or on disk.
    let listed = c.ok(reqwest::Method::GET, "/collections", None).await;
    assert_eq!(listed["collections"], json!([{"name": "good"}]));
    assert_eq!(
        c.ok(reqwest::Method::GET, "/aliases", None).await["aliases"],
        json!([])
    );
    for dir in &c.node_dirs {
        let mut entries: Vec<_> = std::fs::read_dir(dir.join("collections"))
            .expect("collections dir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        entries.sort();
        assert_eq!(entries, vec![std::ffi::OsString::from("good")], "{dir:?}");
        let parent = dir.parent().expect("parent");
        assert!(!parent.join("escaped").exists(), "a name escaped {dir:?}");
    }
    c.shutdown().await;
}
