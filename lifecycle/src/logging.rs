//! The one logging setup of every binary: `RUST_LOG`-filtered events to
//! stderr, as text or as JSON lines.
//!
//! Text carries ANSI colour codes only when stderr is a terminal: a log
//! redirected to a file or a pipe (the local cluster's `*.log`, a
//! container runtime, a test harness) stays plain, so `grep` and log
//! shippers see the words and not escape sequences. JSON lines (one object
//! per event with `timestamp`, `level`, `target`, `fields`) are for log
//! pipelines that parse; they never carry colour.
//!
//! A binary flattens [`LogArgs`] into its flags and calls
//! [`LogArgs::init`] first thing in `main`.

use std::fmt;
use std::io::IsTerminal;
use std::str::FromStr;

/// How events are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines; coloured only on a terminal.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// A `--log-format` / `LOG_FORMAT` value that is neither `text` nor `json`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("log format `{0}` is not one of: text, json")]
pub struct UnknownLogFormat(pub String);

impl FromStr for LogFormat {
    type Err = UnknownLogFormat;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "text" | "plain" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => Err(UnknownLogFormat(s.to_string())),
        }
    }
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        })
    }
}

/// The logging flags every service binary shares (flatten them with
/// `#[command(flatten)]`).
#[derive(Clone, Debug, Default, clap::Args)]
pub struct LogArgs {
    /// Log format: `text` (coloured only on a terminal) or `json` (one
    /// object per line).
    #[arg(long, env = "LOG_FORMAT", default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
    /// Shorthand for `--log-format json` (kept from earlier releases).
    #[arg(long, global = true)]
    pub log_json: bool,
}

impl LogArgs {
    /// The format these flags ask for (`--log-json` wins).
    pub fn format(&self) -> LogFormat {
        if self.log_json {
            LogFormat::Json
        } else {
            self.log_format
        }
    }

    /// Installs the global subscriber; see [`init`].
    pub fn init(&self, default_filter: &str) {
        init(self.format(), default_filter);
    }
}

/// Installs the process-wide subscriber: `RUST_LOG` if set and valid,
/// else `default_filter`, to stderr in `format`. A second call (tests
/// that start several services in one process) keeps the first
/// subscriber.
pub fn init(format: LogFormat, default_filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
    };
}

/// What tests check a service's captured log against (behind the
/// `testsuite` feature: only tests link it).
#[cfg(any(test, feature = "testsuite"))]
pub mod check {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    use std::sync::mpsc;
    use std::time::{Duration, Instant};

    /// The number of lines of a text log, or the first line with an ANSI
    /// escape (`ESC [`) in it.
    pub fn plain_text(log: &str) -> Result<usize, String> {
        let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
        if lines.is_empty() {
            return Err("the log is empty".into());
        }
        match lines.iter().find(|l| l.contains("\x1b[")) {
            Some(l) => Err(format!("colour codes in a log off a terminal: {l:?}")),
            None => Ok(lines.len()),
        }
    }

    /// The number of lines of a JSON log, or the first line that is not a
    /// JSON object with `level`, `target` and `fields`.
    pub fn json_lines(log: &str) -> Result<usize, String> {
        let mut n = 0;
        for line in log.lines().filter(|l| !l.trim().is_empty()) {
            let v: serde_json::Value =
                serde_json::from_str(line).map_err(|e| format!("{e}: {line:?}"))?;
            for key in ["level", "target", "fields"] {
                if v.get(key).is_none() {
                    return Err(format!("no `{key}` in {line:?}"));
                }
            }
            n += 1;
        }
        if n == 0 {
            return Err("the log is empty".into());
        }
        Ok(n)
    }

    /// Starts `cmd` with stderr on a pipe (never a terminal), collects its
    /// first `lines` lines (or what came within `timeout`), kills it and
    /// returns them.
    pub fn stderr_lines(mut cmd: Command, lines: usize, timeout: Duration) -> String {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn the service");
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, rx) = mpsc::channel();
        // A thread, because a blocking read cannot be given a deadline;
        // killing the child closes the pipe and ends it.
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + timeout;
        let mut out = Vec::new();
        while out.len() < lines {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => out.push(line),
                Err(_) => break,
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        let _ = reader.join();
        out.join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        log: LogArgs,
    }

    #[test]
    fn formats_parse_from_flags_and_refuse_unknown_names() {
        let cli = Cli::try_parse_from(["x", "--log-format", "json"]).expect("json");
        assert_eq!(cli.log.format(), LogFormat::Json);
        let cli = Cli::try_parse_from(["x", "--log-json"]).expect("--log-json");
        assert_eq!(cli.log.format(), LogFormat::Json);
        let cli = Cli::try_parse_from(["x", "--log-format", "TEXT"]).expect("text");
        assert_eq!(cli.log.format(), LogFormat::Text);
        let err = Cli::try_parse_from(["x", "--log-format", "xml"])
            .err()
            .expect("xml is refused");
        assert!(err.to_string().contains("xml"), "{err}");
        assert_eq!(
            "yaml".parse::<LogFormat>(),
            Err(UnknownLogFormat("yaml".into()))
        );
    }

    #[test]
    fn the_checks_catch_colour_codes_and_lines_that_are_not_json() {
        assert_eq!(
            check::plain_text("a INFO x: started\nb INFO y: up\n"),
            Ok(2)
        );
        assert!(check::plain_text("\x1b[2m2026\x1b[0m INFO started").is_err());
        let line = r#"{"timestamp":"t","level":"INFO","fields":{"message":"m"},"target":"x"}"#;
        assert_eq!(check::json_lines(line), Ok(1));
        assert!(check::json_lines("INFO started").is_err());
        assert!(check::json_lines(r#"{"level":"INFO"}"#).is_err());
    }
}
