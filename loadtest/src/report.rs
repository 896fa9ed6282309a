//! The JSON report every run writes, the machine it ran on, and the short
//! markdown table printed at the end.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};

/// What a report says about the host: figures mean little without it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    pub cores: usize,
    pub memory_mib: Option<u64>,
    pub cpu_model: Option<String>,
    pub hostname: Option<String>,
    pub kernel: Option<String>,
}

impl Machine {
    /// Best effort from `/proc`; missing files leave fields empty.
    pub fn detect() -> Machine {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let read = |p: &str| std::fs::read_to_string(p).ok();
        let cpu_model = read("/proc/cpuinfo").and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        });
        let memory_mib = read("/proc/meminfo").and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
                .map(|kb| kb / 1024)
        });
        Machine {
            cores,
            memory_mib,
            cpu_model,
            hostname: read("/proc/sys/kernel/hostname").map(|s| s.trim().to_string()),
            kernel: read("/proc/sys/kernel/osrelease").map(|s| s.trim().to_string()),
        }
    }
}

/// `git rev-parse HEAD` of the current directory, if git and a repo exist.
pub fn git_commit() -> Option<String> {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
}

/// One run: what was asked, where, and what came out.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    /// `ingest`, `search`, `mixed`, `baseline`, `gen`.
    pub command: String,
    /// Seconds since the Unix epoch when the run started.
    pub started_unix: u64,
    pub argv: Vec<String>,
    /// HEAD of the checkout at run time.
    pub git_commit: Option<String>,
    /// The commit this binary was built from (may differ from `git_commit`).
    pub build_commit: Option<String>,
    pub machine: Machine,
    pub params: Value,
    pub figures: Value,
}

impl Report {
    pub fn new(command: &str, params: Value) -> Report {
        Report {
            command: command.to_string(),
            started_unix: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            argv: std::env::args().collect(),
            git_commit: git_commit(),
            build_commit: Some(env!("LOADTEST_BUILD_COMMIT").to_string()).filter(|s| !s.is_empty()),
            machine: Machine::detect(),
            params,
            figures: Value::Null,
        }
    }

    /// Default location: `target/loadtest/<command>-<unix time>.json`.
    pub fn default_path(&self) -> PathBuf {
        PathBuf::from("target/loadtest")
            .join(format!("{}-{}.json", self.command, self.started_unix))
    }

    /// Writes pretty JSON, creating parent directories.
    pub fn write(&self, path: &Path) -> Result<()> {
        let io = |source| Error::Io {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let text = serde_json::to_string_pretty(self)
            .map_err(|e| Error::Invalid(format!("report serialisation: {e}")))?;
        std::fs::write(path, text + "\n").map_err(io)
    }
}

/// A small markdown table (pastes straight into BENCHMARKS.md).
#[derive(Debug, Default, Clone)]
pub struct Table {
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&str]) -> Table {
        Table {
            header: header.iter().map(|s| s.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn render(&self) -> String {
        let line = |cells: &[String]| format!("| {} |", cells.join(" | "));
        let mut out = vec![
            line(&self.header),
            line(&vec!["---".to_string(); self.header.len()]),
        ];
        out.extend(self.rows.iter().map(|r| line(r)));
        out.join("\n")
    }
}

/// Formats a float with `d` decimals, or "–" for none.
pub fn fmt(v: Option<f64>, d: usize) -> String {
    v.map_or_else(|| "–".to_string(), |x| format!("{x:.d$}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_round_trips_as_json_with_machine_and_figures() {
        let mut r = Report::new("search", serde_json::json!({"k": 10, "concurrency": 8}));
        r.figures = serde_json::json!({"qps": 1234.5, "recall": 0.99});
        assert!(r.machine.cores >= 1);
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("nested/dir/r.json");
        r.write(&path).expect("write");
        let text = std::fs::read_to_string(&path).expect("read");
        let v: Value = serde_json::from_str(&text).expect("json");
        assert_eq!(v["command"], "search");
        assert_eq!(v["params"]["k"], 10);
        assert_eq!(v["figures"]["qps"], 1234.5);
        assert!(v["machine"]["cores"].as_u64().is_some());
        assert!(v.get("git_commit").is_some());
        assert!(v.get("build_commit").is_some());
        let back: Report = serde_json::from_str(&text).expect("parse back");
        assert_eq!(back.machine, r.machine);
        assert!(r.default_path().starts_with("target/loadtest"));
    }

    #[test]
    fn table_renders_markdown() {
        let mut t = Table::new(&["a", "b"]);
        t.row(vec!["1".into(), fmt(Some(0.12345), 3)]);
        t.row(vec!["2".into(), fmt(None, 3)]);
        assert_eq!(
            t.render(),
            "| a | b |\n| --- | --- |\n| 1 | 0.123 |\n| 2 | – |"
        );
    }
}
