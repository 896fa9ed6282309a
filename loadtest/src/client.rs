//! The HTTP side: a thin Qdrant REST client over one pooled `reqwest`
//! client, plus the request bodies, serialised once before a run so the
//! measuring loop only clones a `Bytes` (a reference count).

use std::time::Duration;

use bytes::Bytes;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::{Error, Result};

/// Collection parameters for `PUT /collections/{c}`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CollectionSpec {
    pub dim: usize,
    pub distance: String,
    pub shards: u32,
    pub replication_factor: u32,
    pub m: usize,
    pub ef_construct: usize,
}

/// Search knobs sent as `params`.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct SearchParams {
    pub hnsw_ef: Option<usize>,
    pub exact: bool,
}

#[derive(Deserialize)]
struct Envelope<T> {
    result: T,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum IdOut {
    Num(u64),
    // UUID ids never match numeric ground truth; kept so parsing succeeds.
    #[allow(dead_code)]
    Str(String),
}

#[derive(Deserialize)]
struct Hit {
    id: IdOut,
}

#[derive(Deserialize)]
struct Count {
    count: u64,
}

fn ids(hits: Vec<Hit>) -> Vec<u64> {
    hits.into_iter()
        .map(|h| match h.id {
            IdOut::Num(n) => n,
            IdOut::Str(_) => u64::MAX,
        })
        .collect()
}

/// One collection behind one gateway address.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    collection: String,
    search_url: String,
    batch_url: String,
}

impl Client {
    /// `connections` sizes the idle pool so every worker keeps its socket.
    pub fn new(
        url: &str,
        collection: &str,
        connections: usize,
        timeout: Duration,
    ) -> Result<Client> {
        let base = url.trim_end_matches('/').to_string();
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(connections.max(1))
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_nodelay(true)
            .timeout(timeout)
            .build()
            .map_err(|source| Error::Http {
                what: "build http client".into(),
                source,
            })?;
        let coll = format!("{base}/collections/{collection}");
        Ok(Client {
            http,
            search_url: format!("{coll}/points/search"),
            batch_url: format!("{coll}/points/search/batch"),
            base,
            collection: collection.to_string(),
        })
    }

    /// The body of any URL (e.g. a node's `/metrics`), as text.
    pub async fn fetch_text(&self, url: &str) -> Result<String> {
        let body = self.send(url, self.http.get(url)).await?;
        Ok(String::from_utf8_lossy(&body).into_owned())
    }

    fn coll_url(&self, rest: &str) -> String {
        format!("{}/collections/{}{rest}", self.base, self.collection)
    }

    /// Sends `req`, returning the body of a 200 answer.
    async fn send(&self, what: &str, req: reqwest::RequestBuilder) -> Result<Bytes> {
        let resp = req.send().await.map_err(|source| Error::Http {
            what: what.to_string(),
            source,
        })?;
        let status = resp.status().as_u16();
        let body = resp.bytes().await.map_err(|source| Error::Http {
            what: what.to_string(),
            source,
        })?;
        if status != 200 {
            return Err(Error::Status {
                what: what.to_string(),
                status,
                body: String::from_utf8_lossy(&body[..body.len().min(500)]).into_owned(),
            });
        }
        Ok(body)
    }

    fn decode<T: for<'de> Deserialize<'de>>(what: &str, body: &[u8]) -> Result<T> {
        serde_json::from_slice::<Envelope<T>>(body)
            .map(|e| e.result)
            .map_err(|e| Error::Answer {
                what: what.to_string(),
                reason: e.to_string(),
            })
    }

    fn post_json(&self, url: &str, body: Bytes) -> reqwest::RequestBuilder {
        self.http
            .post(url)
            .header("content-type", "application/json")
            .body(body)
    }

    pub async fn collection_exists(&self) -> Result<bool> {
        let resp = self
            .http
            .get(self.coll_url(""))
            .send()
            .await
            .map_err(|source| Error::Http {
                what: "get collection".into(),
                source,
            })?;
        Ok(resp.status().as_u16() == 200)
    }

    pub async fn delete_collection(&self) -> Result<()> {
        let req = self.http.delete(self.coll_url(""));
        self.send("delete collection", req).await.map(|_| ())
    }

    pub async fn create_collection(&self, spec: &CollectionSpec) -> Result<()> {
        let body = json!({
            "vectors": {"size": spec.dim, "distance": spec.distance},
            "shard_number": spec.shards,
            "replication_factor": spec.replication_factor,
            "hnsw_config": {"m": spec.m, "ef_construct": spec.ef_construct},
        });
        let req = self.http.put(self.coll_url("")).json(&body);
        self.send("create collection", req).await.map(|_| ())
    }

    /// `GET /collections/{c}` result, for the report.
    pub async fn info(&self) -> Result<Value> {
        let body = self
            .send("collection info", self.http.get(self.coll_url("")))
            .await?;
        Self::decode("collection info", &body)
    }

    /// Upserts a pre-serialised body and waits for the acknowledgement.
    pub async fn upsert(&self, body: Bytes, consistency: Option<&str>) -> Result<()> {
        let mut url = self.coll_url("/points?wait=true");
        if let Some(c) = consistency {
            url.push_str("&write_consistency=");
            url.push_str(c);
        }
        let req = self
            .http
            .put(url)
            .header("content-type", "application/json")
            .body(body);
        self.send("upsert", req).await.map(|_| ())
    }

    /// One pre-serialised search; returns hit ids best first.
    pub async fn search(&self, body: Bytes) -> Result<Vec<u64>> {
        let raw = self
            .send("search", self.post_json(&self.search_url, body))
            .await?;
        Self::decode::<Vec<Hit>>("search", &raw).map(ids)
    }

    /// One pre-serialised batch search; one id list per query.
    pub async fn search_batch(&self, body: Bytes) -> Result<Vec<Vec<u64>>> {
        let raw = self
            .send("search batch", self.post_json(&self.batch_url, body))
            .await?;
        Self::decode::<Vec<Vec<Hit>>>("search batch", &raw)
            .map(|r| r.into_iter().map(ids).collect())
    }

    /// Exact point count.
    pub async fn count(&self) -> Result<u64> {
        let body = Bytes::from_static(br#"{"exact": true}"#);
        let raw = self
            .send(
                "count",
                self.post_json(&self.coll_url("/points/count"), body),
            )
            .await?;
        Self::decode::<Count>("count", &raw).map(|c| c.count)
    }
}

fn search_value(vector: &[f32], k: usize, p: SearchParams) -> Value {
    let mut params = serde_json::Map::new();
    if let Some(ef) = p.hnsw_ef {
        params.insert("hnsw_ef".into(), json!(ef));
    }
    if p.exact {
        params.insert("exact".into(), json!(true));
    }
    json!({"vector": vector, "limit": k, "params": params, "with_payload": false})
}

/// `POST …/points/search` body.
pub fn search_body(vector: &[f32], k: usize, p: SearchParams) -> Bytes {
    Bytes::from(search_value(vector, k, p).to_string())
}

/// `POST …/points/search/batch` body for several queries.
pub fn batch_body<'a>(
    vectors: impl Iterator<Item = &'a [f32]>,
    k: usize,
    p: SearchParams,
) -> Bytes {
    let searches: Vec<Value> = vectors.map(|v| search_value(v, k, p)).collect();
    Bytes::from(json!({ "searches": searches }).to_string())
}

/// `PUT …/points` body: `ids[i]` gets `vectors[i]` and `payloads[i]` if any.
pub fn upsert_body<'a>(
    ids: impl Iterator<Item = u64>,
    vectors: impl Iterator<Item = &'a [f32]>,
    payloads: Option<&[Value]>,
) -> Bytes {
    let points: Vec<Value> = ids
        .zip(vectors)
        .enumerate()
        .map(|(i, (id, v))| match payloads.and_then(|p| p.get(i)) {
            Some(p) => json!({"id": id, "vector": v, "payload": p}),
            None => json!({"id": id, "vector": v}),
        })
        .collect();
    Bytes::from(json!({ "points": points }).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_qdrant_shaped() {
        let p = SearchParams {
            hnsw_ef: Some(64),
            exact: false,
        };
        let v: Value = serde_json::from_slice(&search_body(&[0.5, 1.0], 10, p)).expect("json");
        assert_eq!(v["limit"], 10);
        assert_eq!(v["params"]["hnsw_ef"], 64);
        assert!(v["params"].get("exact").is_none());
        assert_eq!(v["vector"][1], 1.0);
        let rows = [[1.0f32, 2.0], [3.0, 4.0]];
        let b = batch_body(rows.iter().map(|r| &r[..]), 3, SearchParams::default());
        let v: Value = serde_json::from_slice(&b).expect("json");
        assert_eq!(v["searches"].as_array().map(Vec::len), Some(2));
        let pay = [json!({"a": 1})];
        let b = upsert_body(
            [7u64, 8].into_iter(),
            rows.iter().map(|r| &r[..]),
            Some(&pay),
        );
        let v: Value = serde_json::from_slice(&b).expect("json");
        assert_eq!(v["points"][0]["id"], 7);
        assert_eq!(v["points"][0]["payload"]["a"], 1);
        assert!(v["points"][1].get("payload").is_none());
    }

    #[test]
    fn hits_decode_numeric_and_uuid_ids() {
        let body = br#"{"result":[{"id":3,"score":0.9},{"id":"5f1c0000-0000-0000-0000-000000000000","score":0.1}],"status":"ok","time":0.001}"#;
        let hits = Client::decode::<Vec<Hit>>("t", body)
            .map(ids)
            .expect("decode");
        assert_eq!(hits, vec![3, u64::MAX]);
        assert!(Client::decode::<Vec<Hit>>("t", b"{\"status\":{\"error\":\"x\"}}").is_err());
    }
}
