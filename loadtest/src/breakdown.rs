//! Where the time of one search goes: the mean of each stage the gateway
//! and the storage nodes record (Prometheus `_sum` / `_count` of their
//! histograms), over the measured part of a run only (scraped right after
//! the warm-up and right after the last request).
//!
//! | stage (metric)                                        | covers                                  |
//! |-------------------------------------------------------|-----------------------------------------|
//! | `gateway_http_request_duration_seconds` (search route)| the gateway's whole handling            |
//! | `gateway_search_stage_seconds{stage="parse"}`         | JSON body → request                     |
//! | `…{stage="execute"}`                                  | map lookup, fan-out, merge, result shape |
//! | `…{stage="fanout"}`                                   | all shard calls, retries and hedges     |
//! | `gateway_shard_call_seconds{kind="search"}`           | one shard call: QUIC + codec + the node |
//! | `storage_request_seconds{kind="search"}`              | the node: queueing + the engine         |
//! | `storage_search_seconds`                              | the engine alone (segments, FAISS)      |
//! | `…{stage="merge"}`                                    | top-k merge                             |
//! | `…{stage="respond"}`                                  | JSON response                           |
//!
//! The client's own latency minus the gateway's handling is HTTP and
//! loopback TCP; a shard call minus the node's handling is QUIC and the
//! codec on both sides.

use std::collections::HashMap;

use serde::Serialize;

use crate::client::Client;
use crate::error::Result;

/// `_sum` and `_count` of every histogram series in one scrape, keyed by
/// metric name (without the suffix) and label set.
#[derive(Debug, Default, Clone)]
pub struct Scrape {
    series: HashMap<(String, String), (f64, f64)>,
}

impl Scrape {
    /// Parses the Prometheus text format, keeping `_sum` / `_count` lines.
    pub fn parse(text: &str) -> Scrape {
        let mut series: HashMap<(String, String), (f64, f64)> = HashMap::new();
        for line in text.lines() {
            if line.starts_with('#') {
                continue;
            }
            let Some((key, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let Ok(value) = value.parse::<f64>() else {
                continue;
            };
            let (name, labels) = match key.split_once('{') {
                Some((n, rest)) => (n, rest.trim_end_matches('}')),
                None => (key, ""),
            };
            if let Some(base) = name.strip_suffix("_sum") {
                series
                    .entry((base.to_string(), labels.to_string()))
                    .or_default()
                    .0 = value;
            } else if let Some(base) = name.strip_suffix("_count") {
                series
                    .entry((base.to_string(), labels.to_string()))
                    .or_default()
                    .1 = value;
            }
        }
        Scrape { series }
    }

    /// Merges scrapes of several processes (same-named series add up).
    pub fn merged(scrapes: impl IntoIterator<Item = Scrape>) -> Scrape {
        let mut out = Scrape::default();
        for s in scrapes {
            for (k, (sum, count)) in s.series {
                let e = out.series.entry(k).or_default();
                e.0 += sum;
                e.1 += count;
            }
        }
        out
    }

    /// Sum and count of the series named `name` whose labels contain
    /// every one of `labels` (`key="value"` fragments).
    fn select(&self, name: &str, labels: &[&str]) -> (f64, f64) {
        self.series
            .iter()
            .filter(|((n, l), _)| n == name && labels.iter().all(|f| l.contains(f)))
            .fold((0.0, 0.0), |acc, (_, (s, c))| (acc.0 + s, acc.1 + c))
    }
}

/// The stages, in the order a request meets them: (label, metric, label filters).
const STAGES: [(&str, &str, &[&str]); 9] = [
    (
        "gateway: whole request",
        "gateway_http_request_duration_seconds",
        &["points/search"],
    ),
    (
        "gateway: parse JSON",
        "gateway_search_stage_seconds",
        &["stage=\"parse\""],
    ),
    (
        "gateway: execute",
        "gateway_search_stage_seconds",
        &["stage=\"execute\""],
    ),
    (
        "gateway: fan-out",
        "gateway_search_stage_seconds",
        &["stage=\"fanout\""],
    ),
    (
        "shard call (QUIC + node)",
        "gateway_shard_call_seconds",
        &["kind=\"search\""],
    ),
    (
        "node: handle request",
        "storage_request_seconds",
        &["kind=\"search\""],
    ),
    ("node: engine search", "storage_search_seconds", &[]),
    (
        "gateway: merge top-k",
        "gateway_search_stage_seconds",
        &["stage=\"merge\""],
    ),
    (
        "gateway: JSON response",
        "gateway_search_stage_seconds",
        &["stage=\"respond\""],
    ),
];

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Stage {
    pub stage: String,
    pub metric: String,
    /// Observations during the run (e.g. shard calls: requests × shards).
    pub count: u64,
    /// Mean of one observation, milliseconds.
    pub mean_ms: f64,
    /// Total time in this stage per client request, milliseconds.
    pub per_request_ms: f64,
}

/// Per-stage figures between two scrapes; `requests` is what the client
/// completed in between. Stages with no observations are left out.
pub fn stages(before: &Scrape, after: &Scrape, requests: u64) -> Vec<Stage> {
    STAGES
        .iter()
        .filter_map(|(label, metric, filters)| {
            let (s0, c0) = before.select(metric, filters);
            let (s1, c1) = after.select(metric, filters);
            let (sum, count) = (s1 - s0, c1 - c0);
            if count < 1.0 {
                return None;
            }
            Some(Stage {
                stage: label.to_string(),
                metric: metric.to_string(),
                count: count as u64,
                mean_ms: sum / count * 1e3,
                per_request_ms: sum / requests.max(1) as f64 * 1e3,
            })
        })
        .collect()
}

/// Scrapes every URL (the gateway's and the nodes' `/metrics`) and merges.
pub async fn scrape_all(client: &Client, urls: &[String]) -> Result<Scrape> {
    let mut scrapes = Vec::with_capacity(urls.len());
    for url in urls {
        scrapes.push(Scrape::parse(&client.fetch_text(url).await?));
    }
    Ok(Scrape::merged(scrapes))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BEFORE: &str = r#"# TYPE gateway_search_stage_seconds summary
gateway_search_stage_seconds{stage="parse",quantile="0.5"} 0.0001
gateway_search_stage_seconds_sum{stage="parse"} 0.5
gateway_search_stage_seconds_count{stage="parse"} 1000
gateway_shard_call_seconds_sum{kind="search"} 2
gateway_shard_call_seconds_count{kind="search"} 3000
gateway_shard_call_seconds_sum{kind="status"} 9
gateway_shard_call_seconds_count{kind="status"} 9
storage_search_seconds_sum 1.0
storage_search_seconds_count 3000
"#;

    const AFTER: &str = r#"gateway_search_stage_seconds_sum{stage="parse"} 0.7
gateway_search_stage_seconds_count{stage="parse"} 2000
gateway_shard_call_seconds_sum{kind="search"} 8
gateway_shard_call_seconds_count{kind="search"} 6000
gateway_shard_call_seconds_sum{kind="status"} 99
gateway_shard_call_seconds_count{kind="status"} 99
storage_search_seconds_sum 4.0
storage_search_seconds_count 6000
"#;

    #[test]
    fn means_are_taken_over_the_run_only() {
        let got = stages(&Scrape::parse(BEFORE), &Scrape::parse(AFTER), 1000);
        let find = |s: &str| got.iter().find(|g| g.stage == s).expect(s).clone();
        let parse = find("gateway: parse JSON");
        assert_eq!(parse.count, 1000);
        assert!((parse.mean_ms - 0.2).abs() < 1e-9);
        // Three shard calls per request: 1 ms each, 3 ms per request.
        let call = find("shard call (QUIC + node)");
        assert_eq!(call.count, 3000);
        assert!((call.mean_ms - 2.0).abs() < 1e-9);
        assert!((call.per_request_ms - 6.0).abs() < 1e-9);
        let engine = find("node: engine search");
        assert!((engine.mean_ms - 1.0).abs() < 1e-9);
        // Stages with nothing observed are left out.
        assert!(got.iter().all(|g| g.stage != "gateway: merge top-k"));
    }

    #[test]
    fn scrapes_of_several_nodes_add_up() {
        let a = Scrape::parse("storage_search_seconds_sum 1\nstorage_search_seconds_count 10\n");
        let b = Scrape::parse("storage_search_seconds_sum 3\nstorage_search_seconds_count 30\n");
        let m = Scrape::merged([a, b]);
        assert_eq!(m.select("storage_search_seconds", &[]), (4.0, 40.0));
    }

    #[test]
    fn malformed_lines_are_skipped() {
        let s = Scrape::parse("garbage\nx_sum not-a-number\n{}\n y_count 2\n");
        assert_eq!(s.select("x", &[]), (0.0, 0.0));
    }
}
