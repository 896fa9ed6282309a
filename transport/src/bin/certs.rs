//! `certs`: a development cluster CA and node certificates.
//!
//! ```text
//! certs init  --dir certs
//! certs issue --dir certs --name node-1 --dns node-1.local --ip 10.0.0.5
//! ```

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use transport::certs;

#[derive(Parser)]
#[command(about = "Make a dev cluster CA and node certificates for mutual TLS")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Create ca.pem and ca.key in DIR.
    Init {
        #[arg(long)]
        dir: PathBuf,
        /// Common name of the CA.
        #[arg(long, default_value = certs::DEFAULT_CA_NAME)]
        cn: String,
        /// Replace an existing CA (invalidates every certificate it signed).
        #[arg(long)]
        force: bool,
    },
    /// Create NAME.pem and NAME.key in DIR, signed by DIR's CA; usable as
    /// server and client certificate. SANs: NAME, every --dns and --ip.
    Issue {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        name: String,
        #[arg(long)]
        dns: Vec<String>,
        #[arg(long)]
        ip: Vec<IpAddr>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.cmd {
        Cmd::Init { dir, cn, force } => certs::init_dir(&dir, &cn, force),
        Cmd::Issue { dir, name, dns, ip } => certs::issue_to_dir(&dir, &name, &dns, &ip),
    };
    match result {
        Ok(files) => {
            println!("{}\n{}", files.cert.display(), files.key.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("certs: {e}");
            ExitCode::FAILURE
        }
    }
}
