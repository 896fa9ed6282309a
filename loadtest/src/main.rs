//! `loadtest`: measures the cluster through its REST API. See `lib.rs`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use serde_json::json;

use loadtest::baseline::{self, BaselineOptions};
use loadtest::gen::{self, GenOptions};
use loadtest::ingest::{self, IngestOptions};
use loadtest::mixed::{self, MixedOptions};
use loadtest::report::fmt;
use loadtest::search::{self, SearchOptions, SearchOutcome};
use loadtest::{read_fvecs, read_ivecs, Client, CollectionSpec, Report, SearchParams, Table, Vecs};

#[derive(Parser)]
#[command(
    name = "loadtest",
    about = "Load, latency and recall figures for the cluster"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
    /// Where to write the JSON report (default target/loadtest/<cmd>-<time>.json).
    #[arg(long, global = true)]
    report: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Upsert an .fvecs file in batches; time until acknowledged and searchable.
    Ingest(IngestArgs),
    /// Closed-loop searches at a fixed concurrency: q/s, latency, recall@k.
    Search(SearchArgs),
    /// Searches and upserts together at target rates.
    Mixed(MixedArgs),
    /// The same queries on an in-process FAISS HNSW index.
    Baseline(BaselineArgs),
    /// Synthetic clustered vectors with exact ground truth.
    Gen(GenArgs),
}

#[derive(Args, Clone)]
struct Target {
    #[arg(long, default_value = "http://127.0.0.1:15001")]
    url: String,
    #[arg(long)]
    collection: String,
    /// Per-request timeout, seconds.
    #[arg(long, default_value_t = 30.0)]
    timeout: f64,
}

#[derive(Args, Clone)]
struct IndexArgs {
    #[arg(long, default_value_t = 32)]
    m: usize,
    #[arg(long, default_value_t = 200)]
    ef_construct: usize,
    /// Cosine, Dot or Euclid.
    #[arg(long, default_value = "Cosine")]
    distance: String,
}

#[derive(Args)]
struct IngestArgs {
    #[command(flatten)]
    target: Target,
    #[arg(long)]
    base: PathBuf,
    /// JSON lines, line i = payload of row i.
    #[arg(long)]
    payloads: Option<PathBuf>,
    #[arg(long, default_value_t = 256)]
    batch: usize,
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// one | majority | all (default: the collection's).
    #[arg(long)]
    consistency: Option<String>,
    /// Create the collection first (fails if it exists).
    #[arg(long)]
    create: bool,
    /// Delete the collection if it exists, then create it.
    #[arg(long)]
    recreate: bool,
    #[arg(long, default_value_t = 1)]
    shards: u32,
    #[arg(long, default_value_t = 1)]
    rf: u32,
    #[command(flatten)]
    index: IndexArgs,
    /// Only the first N rows.
    #[arg(long)]
    limit: Option<usize>,
    #[arg(long, default_value_t = 0)]
    id_offset: u64,
    /// Stop sending after this many seconds.
    #[arg(long, default_value_t = 3600.0)]
    duration: f64,
    #[arg(long, default_value_t = 600.0)]
    searchable_timeout: f64,
    #[arg(long, default_value_t = 5)]
    attempts: usize,
    #[arg(long)]
    no_progress: bool,
}

#[derive(Args)]
struct SearchArgs {
    #[command(flatten)]
    target: Target,
    #[arg(long)]
    queries: PathBuf,
    #[arg(long)]
    groundtruth: Option<PathBuf>,
    #[arg(long, default_value_t = 10)]
    k: usize,
    /// One or more, comma separated: e.g. 1,8.
    #[arg(long, value_delimiter = ',', default_value = "1")]
    concurrency: Vec<usize>,
    /// Queries per run (cycling through the file); default: the file's rows.
    #[arg(long)]
    queries_count: Option<usize>,
    /// Upper bound per run, seconds.
    #[arg(long, default_value_t = 60.0)]
    duration: f64,
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// One or more, comma separated: e.g. 64,128. None: the server's default.
    #[arg(long, value_delimiter = ',')]
    hnsw_ef: Vec<usize>,
    #[arg(long)]
    exact: bool,
    #[arg(long, default_value_t = 200)]
    warmup: usize,
    /// `/metrics` URLs of the gateway and the storage nodes, comma
    /// separated: prints where the time of a search goes, per stage.
    #[arg(long, value_delimiter = ',')]
    metrics: Vec<String>,
    /// Also run `baseline` on the same queries (needs --base).
    #[arg(long)]
    baseline: bool,
    #[arg(long)]
    base: Option<PathBuf>,
    #[arg(long)]
    limit: Option<usize>,
    /// Baseline build threads.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    #[command(flatten)]
    index: IndexArgs,
}

#[derive(Args)]
struct MixedArgs {
    #[command(flatten)]
    target: Target,
    #[arg(long)]
    base: PathBuf,
    #[arg(long)]
    queries: PathBuf,
    #[arg(long)]
    groundtruth: Option<PathBuf>,
    /// Searches per second.
    #[arg(long, default_value_t = 100.0)]
    search_rate: f64,
    /// Upsert requests per second.
    #[arg(long, default_value_t = 10.0)]
    upsert_rate: f64,
    #[arg(long, default_value_t = 64)]
    batch: usize,
    #[arg(long, default_value_t = 10)]
    k: usize,
    #[arg(long)]
    hnsw_ef: Option<usize>,
    #[arg(long, default_value_t = 30.0)]
    duration: f64,
    #[arg(long, default_value_t = 64)]
    max_in_flight: usize,
    #[arg(long)]
    consistency: Option<String>,
    #[arg(long)]
    limit: Option<usize>,
    #[arg(long, default_value_t = 0)]
    id_offset: u64,
}

#[derive(Args)]
struct BaselineArgs {
    #[arg(long)]
    base: PathBuf,
    #[arg(long)]
    queries: PathBuf,
    #[arg(long)]
    groundtruth: Option<PathBuf>,
    #[command(flatten)]
    index: IndexArgs,
    #[arg(long, value_delimiter = ',', default_value = "64")]
    hnsw_ef: Vec<usize>,
    /// OpenMP threads for the build.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Searching threads, one query per call (comma separated list allowed).
    #[arg(long, value_delimiter = ',', default_value = "1")]
    concurrency: Vec<usize>,
    #[arg(long, default_value_t = 10)]
    k: usize,
    #[arg(long)]
    queries_count: Option<usize>,
    #[arg(long, default_value_t = 60.0)]
    duration: f64,
    #[arg(long)]
    limit: Option<usize>,
}

#[derive(Args)]
struct GenArgs {
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value_t = 100_000)]
    n: usize,
    #[arg(long, default_value_t = 1000)]
    nq: usize,
    #[arg(long, default_value_t = 128)]
    dim: usize,
    #[arg(long, default_value_t = 100)]
    clusters: usize,
    #[arg(long, default_value_t = 100)]
    k: usize,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// L2-normalise (for Cosine collections).
    #[arg(long)]
    normalise: bool,
}

fn secs(s: f64) -> Result<Duration> {
    Duration::try_from_secs_f64(s).context("duration must be a non-negative number of seconds")
}

fn client(t: &Target, connections: usize) -> Result<Client> {
    Ok(Client::new(
        &t.url,
        &t.collection,
        connections,
        secs(t.timeout)?,
    )?)
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    // One thread: the client must leave the cores to the cluster.
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

fn load_queries(q: &Path, gt: Option<&PathBuf>) -> Result<(Vecs<f32>, Option<Vecs<i32>>)> {
    let queries = read_fvecs(q, None)?;
    if queries.is_empty() {
        bail!("{}: no queries", q.display());
    }
    let truth = gt.map(|p| read_ivecs(p, None)).transpose()?;
    Ok((queries, truth))
}

fn ms(v: f64) -> String {
    format!("{v:.2}")
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let (mut report, table) = match cli.cmd {
        Cmd::Ingest(a) => cmd_ingest(a)?,
        Cmd::Search(a) => cmd_search(a)?,
        Cmd::Mixed(a) => cmd_mixed(a)?,
        Cmd::Baseline(a) => cmd_baseline(a)?,
        Cmd::Gen(a) => cmd_gen(a)?,
    };
    let path = cli.report.unwrap_or_else(|| report.default_path());
    report.figures["report_path"] = json!(path.display().to_string());
    report.write(&path)?;
    println!("{}", table.render());
    println!("report: {}", path.display());
    Ok(())
}

fn cmd_ingest(a: IngestArgs) -> Result<(Report, Table)> {
    let base = read_fvecs(&a.base, a.limit)?;
    let payloads = a
        .payloads
        .as_ref()
        .map(|p| ingest::read_payloads(p, base.len()))
        .transpose()?;
    let mut report = Report::new(
        "ingest",
        json!({
            "url": a.target.url, "collection": a.target.collection,
            "base": a.base, "payloads": a.payloads, "rows": base.len(), "dim": base.dim,
            "batch": a.batch, "concurrency": a.concurrency, "consistency": a.consistency,
            "create": a.create || a.recreate, "shards": a.shards, "rf": a.rf,
            "m": a.index.m, "ef_construct": a.index.ef_construct, "distance": a.index.distance,
        }),
    );
    let c = client(&a.target, a.concurrency)?;
    let opts = IngestOptions {
        batch: a.batch,
        concurrency: a.concurrency,
        consistency: a.consistency.clone(),
        id_offset: a.id_offset,
        attempts: a.attempts.max(1),
        searchable_timeout: secs(a.searchable_timeout)?,
        duration: secs(a.duration)?,
        progress: !a.no_progress,
    };
    let out = runtime()?.block_on(async {
        if a.recreate && c.collection_exists().await? {
            c.delete_collection().await?;
        }
        if a.create || a.recreate {
            c.create_collection(&CollectionSpec {
                dim: base.dim,
                distance: a.index.distance.clone(),
                shards: a.shards,
                replication_factor: a.rf,
                m: a.index.m,
                ef_construct: a.index.ef_construct,
            })
            .await?;
        }
        let out = ingest::run(&c, &base, payloads.as_deref(), &opts).await?;
        let info = c.info().await.ok();
        anyhow::Ok((out, info))
    })?;
    let (out, info) = out;
    report.figures = json!({ "ingest": out, "collection_info": info });
    let mut t = Table::new(&[
        "vectors",
        "batch",
        "conc",
        "consistency",
        "ack s",
        "vectors/s",
        "batch p50 ms",
        "batch p99 ms",
        "searchable after ack s",
        "failed batches",
    ]);
    t.row(vec![
        out.vectors.to_string(),
        a.batch.to_string(),
        a.concurrency.to_string(),
        a.consistency.unwrap_or_else(|| "default".into()),
        format!("{:.2}", out.ack_s),
        format!("{:.0}", out.vectors_per_s),
        ms(out.batch_latency.p50_ms),
        ms(out.batch_latency.p99_ms),
        fmt(out.searchable_after_ack_s, 2),
        out.failed_batches.to_string(),
    ]);
    if let Some(e) = &out.first_error {
        eprintln!("first error: {e}");
    }
    Ok((report, t))
}

fn search_row(
    t: &mut Table,
    side: &str,
    ef: &str,
    conc: usize,
    o: &SearchOutcome,
    ratio: Option<f64>,
) {
    t.row(vec![
        side.into(),
        ef.into(),
        conc.to_string(),
        format!("{:.0}", o.qps),
        ms(o.latency.p50_ms),
        ms(o.latency.p95_ms),
        ms(o.latency.p99_ms),
        ms(o.latency.max_ms),
        fmt(o.recall, 4),
        o.errors.to_string(),
        fmt(ratio, 2),
    ]);
}

/// Where the time of one request went (with `--metrics`).
fn print_stages(out: &search::SearchOutcome, urls: &[String]) {
    if out.stages.is_empty() {
        if !urls.is_empty() {
            eprintln!("  no stage timings in the scraped metrics");
        }
        return;
    }
    let mut t = Table::new(&["stage", "observations", "mean ms", "ms per request"]);
    t.row(vec![
        "client: whole request".into(),
        out.requests.to_string(),
        ms(out.latency.mean_ms),
        ms(out.latency.mean_ms),
    ]);
    for s in &out.stages {
        t.row(vec![
            s.stage.clone(),
            s.count.to_string(),
            ms(s.mean_ms),
            ms(s.per_request_ms),
        ]);
    }
    eprintln!("{}", t.render());
}

const SEARCH_HEADER: [&str; 11] = [
    "side",
    "hnsw_ef",
    "conc",
    "q/s",
    "p50 ms",
    "p95 ms",
    "p99 ms",
    "max ms",
    "recall@k",
    "errors",
    "cluster ÷ faiss",
];

fn cmd_search(a: SearchArgs) -> Result<(Report, Table)> {
    let (queries, truth) = load_queries(&a.queries, a.groundtruth.as_ref())?;
    if a.baseline && a.base.is_none() {
        bail!("--baseline needs --base");
    }
    let efs: Vec<Option<usize>> = if a.hnsw_ef.is_empty() {
        vec![None]
    } else {
        a.hnsw_ef.iter().map(|&e| Some(e)).collect()
    };
    let n_queries = a.queries_count.unwrap_or(queries.len());
    let mut report = Report::new(
        "search",
        json!({
            "url": a.target.url, "collection": a.target.collection, "queries": a.queries,
            "groundtruth": a.groundtruth, "k": a.k, "concurrency": a.concurrency,
            "queries_count": n_queries, "duration_s": a.duration, "batch": a.batch,
            "hnsw_ef": a.hnsw_ef, "exact": a.exact, "warmup": a.warmup, "baseline": a.baseline,
            "base": a.base, "threads": a.threads, "m": a.index.m,
            "ef_construct": a.index.ef_construct, "distance": a.index.distance,
            "client": "reqwest/hyper, pooled keep-alive connections, one tokio current-thread runtime (<= 1 core), bodies pre-serialised",
        }),
    );
    let max_conc = a.concurrency.iter().copied().max().unwrap_or(1);
    let c = client(&a.target, max_conc)?;
    let rt = runtime()?;
    let mut runs = Vec::new();
    for &ef in &efs {
        for &conc in &a.concurrency {
            let opts = SearchOptions {
                k: a.k,
                concurrency: conc,
                batch: a.batch,
                queries: n_queries,
                duration: secs(a.duration)?,
                warmup: a.warmup,
                params: SearchParams {
                    hnsw_ef: ef,
                    exact: a.exact,
                },
                metrics_urls: a.metrics.clone(),
            };
            let out = rt.block_on(search::run(&c, &queries, truth.as_ref(), &opts))?;
            eprintln!(
                "cluster hnsw_ef {ef:?} conc {conc}: {:.0} q/s p50 {:.2} ms p99 {:.2} ms recall {} errors {} client cpu {} cores",
                out.qps,
                out.latency.p50_ms,
                out.latency.p99_ms,
                fmt(out.recall, 4),
                out.errors,
                fmt(out.client_cpu_cores, 2)
            );
            if let Some(e) = &out.first_error {
                eprintln!("  first error: {e}");
            }
            print_stages(&out, &a.metrics);
            runs.push((ef, conc, out));
        }
    }
    let mut baseline_runs = Vec::new();
    let mut baseline_build = None;
    if a.baseline {
        let base_path = a.base.as_ref().context("--baseline needs --base")?;
        let base = read_fvecs(base_path, a.limit)?;
        let opts = BaselineOptions {
            m: a.index.m,
            ef_construct: a.index.ef_construct,
            ef_search: efs.iter().map(|e| e.unwrap_or(64)).collect(),
            threads: a.threads,
            concurrency: a.concurrency.clone(),
            k: a.k,
            queries: n_queries,
            duration: secs(a.duration)?,
            distance: a.index.distance.clone(),
        };
        let out = baseline::run(&base, &queries, truth.as_ref(), &opts)?;
        baseline_build = Some(out.build_s);
        baseline_runs = out.runs;
    }
    let mut t = Table::new(&SEARCH_HEADER);
    let mut figures = Vec::new();
    for (ef, conc, out) in &runs {
        let ef_label = ef.map_or("default".to_string(), |e| e.to_string());
        let b = baseline_runs
            .iter()
            .find(|r| r.concurrency == *conc && Some(r.ef_search) == ef.or(Some(64)))
            .cloned();
        let ratio = b.as_ref().map(|b| out.qps / b.qps.max(1e-9));
        search_row(&mut t, "cluster", &ef_label, *conc, out, ratio);
        if let Some(b) = &b {
            t.row(vec![
                "faiss".into(),
                b.ef_search.to_string(),
                conc.to_string(),
                format!("{:.0}", b.qps),
                ms(b.latency.p50_ms),
                ms(b.latency.p95_ms),
                ms(b.latency.p99_ms),
                ms(b.latency.max_ms),
                fmt(b.recall, 4),
                "0".into(),
                "".into(),
            ]);
        }
        figures.push(json!({
            "hnsw_ef": ef, "concurrency": conc, "cluster": out, "faiss": b,
            "ratio_qps_cluster_over_faiss": ratio,
        }));
    }
    let info = rt.block_on(c.info()).ok();
    report.figures = json!({
        "runs": figures, "faiss_build_s": baseline_build, "collection_info": info,
    });
    Ok((report, t))
}

fn cmd_mixed(a: MixedArgs) -> Result<(Report, Table)> {
    let base = read_fvecs(&a.base, a.limit)?;
    let (queries, truth) = load_queries(&a.queries, a.groundtruth.as_ref())?;
    let opts = MixedOptions {
        search_rate: a.search_rate,
        upsert_rate: a.upsert_rate,
        batch: a.batch,
        k: a.k,
        params: SearchParams {
            hnsw_ef: a.hnsw_ef,
            exact: false,
        },
        duration: secs(a.duration)?,
        max_in_flight: a.max_in_flight,
        consistency: a.consistency.clone(),
        id_offset: a.id_offset,
    };
    let mut report = Report::new(
        "mixed",
        json!({"url": a.target.url, "collection": a.target.collection, "options": opts,
               "base": a.base, "queries": a.queries, "groundtruth": a.groundtruth}),
    );
    let c = client(&a.target, a.max_in_flight * 2)?;
    let out = runtime()?.block_on(mixed::run(&c, &base, &queries, truth.as_ref(), &opts))?;
    let mut t = Table::new(&[
        "stream",
        "target/s",
        "achieved/s",
        "ok",
        "errors",
        "dropped",
        "p50 ms",
        "p99 ms",
        "max ms",
        "recall@k",
    ]);
    for (name, s, r) in [
        ("search", &out.search, out.recall),
        ("upsert", &out.upsert, None),
    ] {
        t.row(vec![
            name.into(),
            format!("{:.0}", s.target_rate),
            format!("{:.1}", s.achieved_rate),
            s.ok.to_string(),
            s.errors.to_string(),
            s.dropped.to_string(),
            ms(s.latency.p50_ms),
            ms(s.latency.p99_ms),
            ms(s.latency.max_ms),
            fmt(r, 4),
        ]);
        if let Some(e) = &s.first_error {
            eprintln!("{name} first error: {e}");
        }
    }
    report.figures = serde_json::to_value(&out)?;
    Ok((report, t))
}

fn cmd_baseline(a: BaselineArgs) -> Result<(Report, Table)> {
    let base = read_fvecs(&a.base, a.limit)?;
    let (queries, truth) = load_queries(&a.queries, a.groundtruth.as_ref())?;
    let n_queries = a.queries_count.unwrap_or(queries.len());
    let mut report = Report::new(
        "baseline",
        json!({"base": a.base, "queries": a.queries, "groundtruth": a.groundtruth,
               "m": a.index.m, "ef_construct": a.index.ef_construct, "distance": a.index.distance,
               "hnsw_ef": a.hnsw_ef, "threads": a.threads, "concurrency": a.concurrency,
               "k": a.k, "queries_count": n_queries, "rows": base.len()}),
    );
    let mut t = Table::new(&SEARCH_HEADER);
    let opts = BaselineOptions {
        m: a.index.m,
        ef_construct: a.index.ef_construct,
        ef_search: a.hnsw_ef.clone(),
        threads: a.threads,
        concurrency: a.concurrency.clone(),
        k: a.k,
        queries: n_queries,
        duration: secs(a.duration)?,
        distance: a.index.distance.clone(),
    };
    let out = baseline::run(&base, &queries, truth.as_ref(), &opts)?;
    for r in &out.runs {
        t.row(vec![
            "faiss".into(),
            r.ef_search.to_string(),
            r.concurrency.to_string(),
            format!("{:.0}", r.qps),
            ms(r.latency.p50_ms),
            ms(r.latency.p95_ms),
            ms(r.latency.p99_ms),
            ms(r.latency.max_ms),
            fmt(r.recall, 4),
            "0".into(),
            "".into(),
        ]);
    }
    eprintln!("faiss build: {:.1} s", out.build_s);
    report.figures = serde_json::to_value(&out)?;
    Ok((report, t))
}

fn cmd_gen(a: GenArgs) -> Result<(Report, Table)> {
    let opts = GenOptions {
        n: a.n,
        nq: a.nq,
        dim: a.dim,
        clusters: a.clusters,
        k: a.k,
        seed: a.seed,
        normalise: a.normalise,
    };
    let mut report = Report::new("gen", json!({"out": a.out, "options": opts}));
    let out = gen::run(&a.out, &opts)?;
    let mut t = Table::new(&[
        "base",
        "queries",
        "groundtruth",
        "generate s",
        "groundtruth s",
    ]);
    t.row(vec![
        out.base.clone(),
        out.queries.clone(),
        out.groundtruth.clone(),
        format!("{:.1}", out.generate_s),
        format!("{:.1}", out.groundtruth_s),
    ]);
    report.figures = serde_json::to_value(&out)?;
    Ok((report, t))
}
