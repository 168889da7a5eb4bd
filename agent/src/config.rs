//! The agent's configuration: flags with environment twins, turned into a plain
//! [`Config`] that tests build directly.

use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, clap::Parser)]
#[command(
    name = "esteira-agent",
    version,
    about = "esteira's agent: runs jobs in Docker"
)]
pub struct Args {
    /// The coordinator's gRPC URL.
    #[arg(
        long,
        env = "ESTEIRA_COORDINATOR",
        default_value = "http://127.0.0.1:9090"
    )]
    pub coordinator: String,
    /// The shared token agents register with (needed until this agent has its credential).
    #[arg(long, env = "ESTEIRA_REGISTRATION_TOKEN", hide_env_values = true)]
    pub registration_token: Option<String>,
    /// The agent's name (default: the host name).
    #[arg(long, env = "ESTEIRA_AGENT_NAME")]
    pub name: Option<String>,
    /// Labels a job's `tags` are matched against.
    #[arg(long, env = "ESTEIRA_AGENT_LABELS", value_delimiter = ',')]
    pub labels: Vec<String>,
    /// Jobs run at once.
    #[arg(long, env = "ESTEIRA_AGENT_CONCURRENCY", default_value_t = 1)]
    pub concurrency: u32,
    /// Where the credential, mirrors, builds and caches live.
    #[arg(
        long,
        env = "ESTEIRA_AGENT_WORK_DIR",
        default_value = "./esteira-agent"
    )]
    pub work_dir: PathBuf,
    /// PEM file of the CA the coordinator's certificate is verified against.
    #[arg(long, env = "ESTEIRA_CA_CERT")]
    pub ca_cert: Option<PathBuf>,
    /// The image of jobs that name none.
    #[arg(long, env = "ESTEIRA_DEFAULT_IMAGE", default_value = "busybox:latest")]
    pub default_image: String,
    /// Let jobs use the host's Docker socket (GitLab-style `docker build` in scripts).
    #[arg(long, env = "ESTEIRA_ALLOW_DOCKER_SOCKET")]
    pub allow_docker_socket: bool,
    /// Give every job a Docker network of its own (isolated from other jobs' containers);
    /// without it, only jobs with services get one and the others start faster.
    #[arg(long, env = "ESTEIRA_NETWORK_PER_JOB")]
    pub network_per_job: bool,
    /// Upper bound on any job's timeout, in seconds.
    #[arg(long, env = "ESTEIRA_MAX_TIMEOUT")]
    pub max_timeout: Option<u64>,
    /// Ephemeral: take one job, finish it, deregister and exit (`--max-jobs 1`).
    #[arg(long, env = "ESTEIRA_AGENT_ONCE", conflicts_with = "max_jobs")]
    pub once: bool,
    /// Ephemeral: take this many jobs, finish them, deregister and exit.
    #[arg(long, env = "ESTEIRA_AGENT_MAX_JOBS", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_jobs: Option<u32>,
    /// Ephemeral: deregister and exit when no job came for this long ("90s", "5m").
    #[arg(long, env = "ESTEIRA_AGENT_IDLE_EXIT", value_parser = parse_idle_exit)]
    pub idle_exit: Option<Duration>,
}

fn parse_idle_exit(text: &str) -> Result<Duration, String> {
    match esteira_pipeline::parse_duration(text)? {
        0 => Err("the idle time must be at least one second".to_string()),
        seconds => Ok(Duration::from_secs(seconds)),
    }
}

/// Which agent, for the commands that act on what an agent left behind (`prune`, and
/// the watchdog the agent starts): the same flags and environment as the agent's own.
#[derive(Debug, Clone, clap::Args)]
pub struct InstanceArgs {
    /// The agent's name (default: the host name): its Docker objects carry it.
    #[arg(long, visible_alias = "instance", env = "ESTEIRA_AGENT_NAME")]
    pub name: Option<String>,
    /// The agent's work dir.
    #[arg(
        long,
        env = "ESTEIRA_AGENT_WORK_DIR",
        default_value = "./esteira-agent"
    )]
    pub work_dir: PathBuf,
}

impl InstanceArgs {
    /// The name, defaulting as the agent's does.
    pub fn name(&self) -> String {
        self.name.clone().unwrap_or_else(host_name)
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub coordinator: String,
    pub registration_token: Option<String>,
    pub name: String,
    pub labels: Vec<String>,
    pub concurrency: u32,
    pub work_dir: PathBuf,
    pub ca_cert: Option<PathBuf>,
    pub default_image: String,
    pub allow_docker_socket: bool,
    pub network_per_job: bool,
    pub max_timeout: Option<Duration>,
    /// Jobs after which the agent deregisters and exits.
    pub max_jobs: Option<u32>,
    /// Idle time after which the agent deregisters and exits.
    pub idle_exit: Option<Duration>,
}

fn host_name() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|name| name.trim().to_string())
        .ok()
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "esteira-agent".to_string())
}

impl From<Args> for Config {
    fn from(args: Args) -> Config {
        let max_jobs = if args.once { Some(1) } else { args.max_jobs };
        Config {
            coordinator: args.coordinator,
            registration_token: args.registration_token.filter(|token| !token.is_empty()),
            name: args.name.unwrap_or_else(host_name),
            labels: args
                .labels
                .into_iter()
                .filter(|label| !label.is_empty())
                .collect(),
            // An agent that takes N jobs never asks for more than N at once.
            concurrency: args.concurrency.clamp(1, max_jobs.unwrap_or(u32::MAX)),
            work_dir: args.work_dir,
            ca_cert: args.ca_cert,
            default_image: args.default_image,
            allow_docker_socket: args.allow_docker_socket,
            network_per_job: args.network_per_job,
            max_timeout: args.max_timeout.map(Duration::from_secs),
            max_jobs,
            idle_exit: args.idle_exit,
        }
    }
}
