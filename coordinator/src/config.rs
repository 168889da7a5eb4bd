//! The coordinator's configuration: flags with environment twins and an optional TOML
//! file (`--config`), turned into a plain [`Config`] that tests build directly. A flag
//! wins over its environment variable, which wins over the file, which wins over the
//! default ([`load`]).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::ArgMatches;
use clap::parser::ValueSource;
use esteira_logging::{LogArgs, LogFormat};
use serde::Deserialize;

#[derive(Debug, clap::Parser)]
#[command(name = "esteira-coordinator", version, about = "esteira's coordinator")]
pub struct Args {
    /// A TOML file setting any of these options (keys as the flags, with `_` for `-`;
    /// also `registration_token`, `admin_token`); flags and environment win over it.
    #[arg(long, env = "ESTEIRA_CONFIG")]
    pub config: Option<PathBuf>,
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

/// What a `--config` file may set: every flag, named as the flag with `_` for `-`, and
/// the two tokens. Any other key is refused.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSettings {
    data_dir: Option<PathBuf>,
    http: Option<SocketAddr>,
    grpc: Option<SocketAddr>,
    database_url: Option<String>,
    lease_timeout: Option<u64>,
    log_limit: Option<u64>,
    artifacts_limit: Option<u64>,
    artifacts_sweep_interval: Option<u64>,
    public_url: Option<String>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    read_token_required: Option<bool>,
    insecure_plaintext: Option<bool>,
    registration_token: Option<String>,
    admin_token: Option<String>,
    log_format: Option<LogFormat>,
    log_level: Option<String>,
}

/// A config file that cannot be used, named with its path.
#[derive(Debug, thiserror::Error)]
pub enum ConfigFileError {
    #[error("cannot read the config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the config file {path} is not valid: {message}")]
    Invalid { path: PathBuf, message: String },
}

impl FileSettings {
    pub fn read(path: &Path) -> Result<FileSettings, ConfigFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigFileError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        toml::from_str(&text).map_err(|error| ConfigFileError::Invalid {
            path: path.to_path_buf(),
            message: error.to_string(),
        })
    }
}

/// The value a flag or its environment variable gave, else the file's, else `given`
/// (the default).
fn pick<T>(matches: &ArgMatches, id: &str, given: T, file: Option<T>) -> T {
    let explicit = matches!(
        matches.value_source(id),
        Some(ValueSource::CommandLine | ValueSource::EnvVariable)
    );
    match file {
        Some(value) if !explicit => value,
        _ => given,
    }
}

/// The configuration and the logging flags from the parsed command line (`matches`, of
/// which `args` and `log` are the typed view) over the `--config` file, if any.
pub fn load(
    args: Args,
    log: LogArgs,
    matches: &ArgMatches,
) -> Result<(Config, LogArgs), ConfigFileError> {
    let Some(path) = args.config.clone() else {
        return Ok((Config::from(args), log));
    };
    let file = FileSettings::read(&path)?;
    let invalid = |message: String| ConfigFileError::Invalid {
        path: path.clone(),
        message,
    };
    let some = |value| Some(Some(value));
    let tls_cert = pick(matches, "tls_cert", args.tls_cert, file.tls_cert.map(Some));
    let tls_key = pick(matches, "tls_key", args.tls_key, file.tls_key.map(Some));
    if tls_cert.is_some() != tls_key.is_some() {
        return Err(invalid("tls_cert and tls_key go together".to_string()));
    }
    let log_level = match file.log_level {
        Some(level) => Some(
            esteira_logging::parse_level(&level)
                .map_err(|error| invalid(format!("log_level = {level:?}: {error}")))?,
        ),
        None => None,
    };
    let merged = Args {
        config: Some(path.clone()),
        data_dir: pick(matches, "data_dir", args.data_dir, file.data_dir),
        http: pick(matches, "http", args.http, file.http),
        grpc: pick(matches, "grpc", args.grpc, file.grpc),
        database_url: pick(
            matches,
            "database_url",
            args.database_url,
            file.database_url.and_then(some),
        ),
        lease_timeout: pick(
            matches,
            "lease_timeout",
            args.lease_timeout,
            file.lease_timeout,
        ),
        log_limit: pick(matches, "log_limit", args.log_limit, file.log_limit),
        artifacts_limit: pick(
            matches,
            "artifacts_limit",
            args.artifacts_limit,
            file.artifacts_limit,
        ),
        artifacts_sweep_interval: pick(
            matches,
            "artifacts_sweep_interval",
            args.artifacts_sweep_interval,
            file.artifacts_sweep_interval,
        ),
        public_url: pick(
            matches,
            "public_url",
            args.public_url,
            file.public_url.and_then(some),
        ),
        tls_cert,
        tls_key,
        read_token_required: pick(
            matches,
            "read_token_required",
            args.read_token_required,
            file.read_token_required,
        ),
        insecure_plaintext: pick(
            matches,
            "insecure_plaintext",
            args.insecure_plaintext,
            file.insecure_plaintext,
        ),
    };
    let log = LogArgs {
        log_format: pick(matches, "log_format", log.log_format, file.log_format),
        log_level: pick(matches, "log_level", log.log_level, log_level.map(Some)),
    };
    let mut config = Config::from(merged);
    config.registration_token = config.registration_token.or(file.registration_token);
    config.admin_token = config.admin_token.or(file.admin_token);
    Ok((config, log))
}
