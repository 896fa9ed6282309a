//! The gateway's HTTP routes as the CLI calls them: Qdrant's envelope
//! (`{"result": ..., "status": "ok"}`) unwrapped, an error answer turned
//! into its message.

use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use gateway::transfers::TransfersReport;
use serde_json::Value;

#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    base: String,
    key: Option<String>,
}

impl Api {
    pub fn new(url: &str, key: Option<String>) -> Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .connect_timeout(Duration::from_secs(5))
            .build()
            .context("HTTP client")?;
        Ok(Self {
            http,
            base: url.trim_end_matches('/').to_string(),
            key,
        })
    }

    /// `result` of a 2xx answer; otherwise the gateway's error message.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value> {
        let url = format!("{}{path}", self.base);
        let mut req = self.http.request(method.clone(), &url);
        if let Some(k) = &self.key {
            req = req.header("api-key", k);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req
            .send()
            .await
            .with_context(|| format!("{method} {url}"))?;
        let status = resp.status();
        let text = resp
            .text()
            .await
            .with_context(|| format!("{method} {url}: read the answer"))?;
        let json: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        if status.is_success() {
            return Ok(json.get("result").cloned().unwrap_or(json));
        }
        let message = json["status"]["error"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| json.to_string());
        Err(anyhow!(
            "{method} {path}: HTTP {}: {message}",
            status.as_u16()
        ))
    }

    pub async fn get(&self, path: &str) -> Result<Value> {
        self.call(reqwest::Method::GET, path, None).await
    }

    pub async fn transfers(&self) -> Result<TransfersReport> {
        let v = self.get("/api/cluster/transfers").await?;
        serde_json::from_value(v).context("read /api/cluster/transfers")
    }
}
