//! The coordinator's configuration: flags with environment twins, turned into a plain
//! [`Config`] that tests build directly.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, clap::Parser)]
#[command(name = "esteira-coordinator", version, about = "esteira's coordinator")]
pub struct Args {
    /// Where the database, mirrors and token files live.
    #[arg(long, env = "ESTEIRA_DATA_DIR", default_value = "./esteira-data")]
    pub data_dir: PathBuf,
    /// Address of the UI, REST API, webhooks and metrics.
    #[arg(long, env = "ESTEIRA_HTTP", default_value = "127.0.0.1:8080")]
    pub http: SocketAddr,
    /// Address of the agents' gRPC service.
    #[arg(long, env = "ESTEIRA_GRPC", default_value = "127.0.0.1:9090")]
    pub grpc: SocketAddr,
    /// Database URL; default: SQLite in the data dir.
    #[arg(long, env = "ESTEIRA_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Seconds without a heartbeat after which a running job counts as lost. Agents stop
    /// their jobs after two thirds of it without a renewal, so the default outlasts a
    /// 30-second network blip (see docs/reliability.md).
    #[arg(long, env = "ESTEIRA_LEASE_TIMEOUT", default_value_t = 60)]
    pub lease_timeout: u64,
    /// Bytes of log kept per job; the rest is cut with a visible marker.
    #[arg(long, env = "ESTEIRA_LOG_LIMIT", default_value_t = 100 * 1024 * 1024)]
    pub log_limit: u64,
    /// Bytes of artifacts kept per job; a larger upload fails the job.
    #[arg(long, env = "ESTEIRA_ARTIFACTS_LIMIT", default_value_t = 1024 * 1024 * 1024)]
    pub artifacts_limit: u64,
    /// Seconds between two sweeps deleting expired artifacts (`artifacts: expire_in`).
    #[arg(long, env = "ESTEIRA_ARTIFACTS_SWEEP_INTERVAL", default_value_t = 300)]
    pub artifacts_sweep_interval: u64,
    /// The URL people reach the UI at (for links in variables and statuses).
    #[arg(long, env = "ESTEIRA_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// PEM certificate chain: serve gRPC and HTTP over TLS.
    #[arg(long, env = "ESTEIRA_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `--tls-cert`.
    #[arg(long, env = "ESTEIRA_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Require the token for reads too (API, badges, metrics), not only for actions.
    #[arg(long, env = "ESTEIRA_READ_TOKEN_REQUIRED")]
    pub read_token_required: bool,
    /// Allow plain-text gRPC on an address other than loopback.
    #[arg(long, env = "ESTEIRA_INSECURE_PLAINTEXT")]
    pub insecure_plaintext: bool,
}

/// Everything the coordinator needs to run.
#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    pub http: SocketAddr,
    pub grpc: SocketAddr,
    pub database_url: Option<String>,
    pub lease_timeout: Duration,
    pub log_limit: u64,
    pub artifacts_limit: u64,
    pub artifacts_sweep_interval: Duration,
    pub public_url: Option<String>,
    pub tls: Option<(PathBuf, PathBuf)>,
    pub insecure_plaintext: bool,
    pub read_token_required: bool,
    pub registration_token: Option<String>,
    pub admin_token: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("./esteira-data"),
            http: SocketAddr::from(([127, 0, 0, 1], 8080)),
            grpc: SocketAddr::from(([127, 0, 0, 1], 9090)),
            database_url: None,
            lease_timeout: Duration::from_secs(60),
            log_limit: 100 * 1024 * 1024,
            artifacts_limit: 1024 * 1024 * 1024,
            artifacts_sweep_interval: Duration::from_secs(300),
            public_url: None,
            tls: None,
            insecure_plaintext: false,
            read_token_required: false,
            registration_token: None,
            admin_token: None,
        }
    }
}

impl From<Args> for Config {
    fn from(args: Args) -> Config {
        let secret = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());
        Config {
            data_dir: args.data_dir,
            http: args.http,
            grpc: args.grpc,
            database_url: args.database_url,
            lease_timeout: Duration::from_secs(args.lease_timeout.max(1)),
            log_limit: args.log_limit,
            artifacts_limit: args.artifacts_limit,
            artifacts_sweep_interval: Duration::from_secs(args.artifacts_sweep_interval.max(1)),
            public_url: args.public_url,
            tls: args.tls_cert.zip(args.tls_key),
            insecure_plaintext: args.insecure_plaintext,
            read_token_required: args.read_token_required,
            registration_token: secret("ESTEIRA_REGISTRATION_TOKEN"),
            admin_token: secret("ESTEIRA_ADMIN_TOKEN"),
        }
    }
}
