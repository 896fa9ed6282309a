//! The gateway's REST API as the chaos client uses it, and the client's
//! retry policy.

use std::future::Future;
use std::time::Duration;

use anyhow::{Context, Result};
use serde::Serialize;
use serde_json::{json, Value};

use crate::history::ReadBack;
use crate::points;

/// How the client retries one request: every scenario uses it, and the
/// report states it (failed searches in scenarios 4 and 5 are counted
/// after it).
#[derive(Clone, Copy, Debug, Serialize)]
pub struct RetryPolicy {
    /// Attempts in all (1 = no retry).
    pub attempts: u32,
    /// Pause before each retry.
    pub backoff: Duration,
    /// Per attempt.
    pub timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 3,
            backoff: Duration::from_millis(200),
            timeout: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    pub fn describe(&self) -> String {
        format!(
            "up to {} attempts per request, {} ms pause before a retry, {} s timeout per attempt; \
             retried on connection errors, timeouts and HTTP 502/503/504 (upserts are idempotent: \
             same id, same content)",
            self.attempts,
            self.backoff.as_millis(),
            self.timeout.as_secs_f64()
        )
    }
}

/// Why a request did not succeed.
#[derive(Clone, Debug)]
pub enum CallError {
    /// No answer: connection refused / reset, or the attempt timed out.
    Transport(String),
    /// An answer other than 2xx.
    Status { status: u16, body: String },
    /// A 2xx answer the client could not read.
    Decode(String),
}

impl CallError {
    /// Worth another attempt: the cause may be gone in a moment.
    pub fn retryable(&self) -> bool {
        match self {
            CallError::Transport(_) => true,
            CallError::Status { status, .. } => matches!(status, 502..=504),
            CallError::Decode(_) => false,
        }
    }
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Transport(e) => write!(f, "transport: {e}"),
            CallError::Status { status, body } => write!(f, "HTTP {status}: {body}"),
            CallError::Decode(e) => write!(f, "bad answer: {e}"),
        }
    }
}

/// Runs `f` under `policy`; returns its last result and the attempts made.
pub async fn with_retry<T, F, Fut>(policy: &RetryPolicy, mut f: F) -> (Result<T, CallError>, u32)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, CallError>>,
{
    let mut attempt = 0;
    loop {
        attempt += 1;
        let r = f().await;
        match &r {
            Err(e) if e.retryable() && attempt < policy.attempts => {
                tokio::time::sleep(policy.backoff).await;
            }
            _ => return (r, attempt),
        }
    }
}

/// One gateway (or the load balancer in front of them).
#[derive(Clone)]
pub struct Gateway {
    http: reqwest::Client,
    pub name: String,
    base: String,
}

impl Gateway {
    pub fn new(name: &str, base: &str, timeout: Duration) -> Result<Gateway> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(3)))
            .pool_idle_timeout(Duration::from_secs(20))
            .tcp_nodelay(true)
            .build()
            .context("build HTTP client")?;
        Ok(Gateway {
            http,
            name: name.to_string(),
            base: base.trim_end_matches('/').to_string(),
        })
    }

    pub fn url(&self) -> &str {
        &self.base
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Result<Value, CallError> {
        let resp = req
            .send()
            .await
            .map_err(|e| CallError::Transport(error_chain(&e)))?;
        let status = resp.status().as_u16();
        let body = resp
            .bytes()
            .await
            .map_err(|e| CallError::Transport(error_chain(&e)))?;
        if !(200..300).contains(&status) {
            return Err(CallError::Status {
                status,
                body: String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned(),
            });
        }
        serde_json::from_slice(&body).map_err(|e| CallError::Decode(e.to_string()))
    }

    /// Any route with an optional JSON body (the operator routes): the
    /// answer's `result`.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, CallError> {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(b) = body {
            req = req.json(b);
        }
        let v = self.send(req).await?;
        Ok(v.get("result").cloned().unwrap_or(v))
    }

    /// `GET /readyz` answers 200 (the gateway holds a cluster map).
    pub async fn ready(&self) -> bool {
        matches!(
            self.http.get(format!("{}/readyz", self.base)).send().await,
            Ok(r) if r.status().is_success()
        )
    }

    pub async fn create_collection(
        &self,
        name: &str,
        shards: u32,
        replication_factor: u32,
    ) -> Result<(), CallError> {
        let body = json!({
            "vectors": {"size": points::DIM, "distance": "Dot"},
            "shard_number": shards,
            "replication_factor": replication_factor,
        });
        let url = format!("{}/collections/{name}", self.base);
        self.send(self.http.put(url).json(&body)).await.map(|_| ())
    }

    pub async fn delete_collection(&self, name: &str) -> Result<(), CallError> {
        let url = format!("{}/collections/{name}", self.base);
        self.send(self.http.delete(url)).await.map(|_| ())
    }

    /// Upserts `ids` with their deterministic content and waits for the
    /// acknowledgement at `consistency`.
    pub async fn upsert(
        &self,
        coll: &str,
        ids: &[u64],
        consistency: &str,
    ) -> Result<(), CallError> {
        let body =
            json!({"points": ids.iter().map(|id| points::point_json(*id)).collect::<Vec<_>>()});
        let url = format!(
            "{}/collections/{coll}/points?wait=true&write_consistency={consistency}",
            self.base
        );
        self.send(self.http.put(url).json(&body)).await.map(|_| ())
    }

    /// Retrieves `ids` with vectors and payloads; absent ids are left out.
    pub async fn retrieve(
        &self,
        coll: &str,
        ids: &[u64],
        consistency: &str,
    ) -> Result<Vec<(u64, ReadBack)>, CallError> {
        let body = json!({"ids": ids, "with_payload": true, "with_vector": true});
        let url = format!(
            "{}/collections/{coll}/points?consistency={consistency}",
            self.base
        );
        let v = self.send(self.http.post(url).json(&body)).await?;
        parse_records(&v).map_err(CallError::Decode)
    }

    /// One search; returns the number of hits.
    pub async fn search(
        &self,
        coll: &str,
        vector: &[f32],
        limit: usize,
    ) -> Result<usize, CallError> {
        let body = json!({"vector": vector, "limit": limit, "with_payload": false});
        let url = format!("{}/collections/{coll}/points/search", self.base);
        let v = self.send(self.http.post(url).json(&body)).await?;
        v["result"]
            .as_array()
            .map(Vec::len)
            .ok_or_else(|| CallError::Decode("search result is not a list".into()))
    }
}

/// reqwest's error with its sources (the useful part is often inside).
fn error_chain(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

/// The `result` list of a retrieve answer.
pub fn parse_records(v: &Value) -> Result<Vec<(u64, ReadBack)>, String> {
    let list = v["result"]
        .as_array()
        .ok_or_else(|| "retrieve result is not a list".to_string())?;
    list.iter()
        .map(|r| {
            let id = r["id"]
                .as_u64()
                .ok_or_else(|| format!("record without a numeric id: {r}"))?;
            let vector = r["vector"].as_array().map(|xs| {
                xs.iter()
                    .map(|x| x.as_f64().map_or(f32::NAN, |f| f as f32))
                    .collect()
            });
            let payload = r.get("payload").filter(|p| !p.is_null()).cloned();
            Ok((id, ReadBack { vector, payload }))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[test]
    fn retrieve_answers_parse() {
        let v = json!({"result": [
            {"id": 3, "payload": {"id": 3, "bucket": 3}, "vector": [0.5, -1.0]},
            {"id": 4, "payload": null}
        ], "status": "ok", "time": 0.001});
        let r = parse_records(&v).expect("parse");
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].0, 3);
        assert_eq!(r[0].1.vector, Some(vec![0.5, -1.0]));
        assert_eq!(r[1].1.payload, None);
        assert!(parse_records(&json!({"result": [{"id": "uuid"}]})).is_err());
        assert!(parse_records(&json!({"status": {"error": "x"}})).is_err());
    }

    #[tokio::test]
    async fn retries_only_what_may_pass_and_only_as_often_as_allowed() {
        let policy = RetryPolicy {
            attempts: 3,
            backoff: Duration::from_millis(1),
            timeout: Duration::from_secs(1),
        };
        let calls = AtomicU32::new(0);
        let (r, n) = with_retry(&policy, || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err::<(), _>(CallError::Status {
                status: 503,
                body: String::new(),
            })
        })
        .await;
        assert!(r.is_err());
        assert_eq!((n, calls.load(Ordering::SeqCst)), (3, 3));

        let (r, n) = with_retry(&policy, || async {
            Err::<(), _>(CallError::Status {
                status: 400,
                body: String::new(),
            })
        })
        .await;
        assert!(r.is_err());
        assert_eq!(n, 1, "a 4xx is final");

        let calls = AtomicU32::new(0);
        let (r, n) = with_retry(&policy, || async {
            if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                Err(CallError::Transport("refused".into()))
            } else {
                Ok(7)
            }
        })
        .await;
        assert_eq!((r.ok(), n), (Some(7), 2));
    }
}
