//! `esteira autoscale` (the autoscaler, [`esteira_autoscaler`], run in the foreground) and
//! `esteira pool list` (the pools' state as their autoscalers report it).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Subcommand;
use esteira_autoscaler::provider::Enrollment;
use esteira_autoscaler::{DockerProvider, Settings, pools};
use esteira_logging::LogArgs;

use crate::api::Api;
use crate::{joined, print_json, print_table, rows_of, text};

#[derive(clap::Args)]
pub struct AutoscaleArgs {
    /// The pools file (TOML; see docs/autoscaling.md).
    #[arg(long, env = "ESTEIRA_POOLS")]
    pools: PathBuf,
    /// The coordinator's gRPC URL as the agents started see it.
    #[arg(long, env = "ESTEIRA_COORDINATOR")]
    coordinator: String,
    /// The token the agents started register with.
    #[arg(long, env = "ESTEIRA_REGISTRATION_TOKEN", hide_env_values = true)]
    registration_token: String,
    /// Tells this autoscaler's agents from any other's, and ends their names; a restarted
    /// autoscaler with the same id adopts them (default: the host name).
    #[arg(long, env = "ESTEIRA_AUTOSCALER_ID")]
    id: Option<String>,
    /// Time between two looks at the queue ("1s", "5s").
    #[arg(long, env = "ESTEIRA_AUTOSCALER_INTERVAL", default_value = "1s", value_parser = parse_interval)]
    interval: Duration,
    #[command(flatten)]
    log: LogArgs,
}

fn parse_interval(text: &str) -> Result<Duration, String> {
    match esteira_pipeline::parse_duration(text)? {
        0 => Err("the interval must be at least one second".to_string()),
        seconds => Ok(Duration::from_secs(seconds)),
    }
}

#[derive(Subcommand)]
pub enum PoolCommand {
    /// Each pool's desired, current, idle and draining agents, and why.
    List {
        #[arg(long)]
        json: bool,
    },
}

/// Runs the autoscaler until SIGTERM or Ctrl-C.
pub async fn autoscale(
    server: &str,
    token: Option<String>,
    args: AutoscaleArgs,
) -> anyhow::Result<ExitCode> {
    esteira_logging::init(&args.log, "info");
    let token =
        token.context("the autoscaler needs the admin token: pass --token or set ESTEIRA_TOKEN")?;
    let pools = pools::load(&args.pools)?;
    let id = match args.id {
        Some(id) => id,
        None => std::fs::read_to_string("/etc/hostname")
            .context("no --id given and no host name to default to")?
            .trim()
            .to_string(),
    };
    let valid = !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.');
    anyhow::ensure!(
        valid,
        "the autoscaler id '{id}' must be letters, digits, '-', '_' or '.': it ends container names"
    );
    let provider = DockerProvider::connect(&id)?;
    let settings = Settings {
        id,
        pools,
        server: server.to_string(),
        token,
        enrollment: Enrollment {
            coordinator: args.coordinator,
            registration_token: args.registration_token,
        },
        interval: args.interval,
    };
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    esteira_autoscaler::run(settings, provider, async {
        tokio::select! {
            _ = terminate.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    })
    .await;
    Ok(ExitCode::SUCCESS)
}

pub async fn run(api: &Api, command: PoolCommand) -> anyhow::Result<ExitCode> {
    let PoolCommand::List { json } = command;
    let pools = api.get("/pools").await?;
    if json {
        return print_json(&pools);
    }
    let rows = rows_of(&pools, |pool| {
        let seconds = |key: &str| format!("{:.1}s", pool[key].as_f64().unwrap_or(0.0) / 1000.0);
        vec![
            text(&pool["name"]),
            joined(&pool["labels"]),
            format!("{}/{}", text(&pool["min"]), text(&pool["max"])),
            text(&pool["desired"]),
            text(&pool["current"]),
            text(&pool["idle"]),
            text(&pool["draining"]),
            text(&pool["pending"]),
            seconds("oldest_wait_ms"),
            seconds("age_ms"),
            text(&pool["reason"]),
        ]
    });
    print_table(
        &[
            "POOL", "LABELS", "MIN/MAX", "DESIRED", "CURRENT", "IDLE", "DRAINING", "PENDING",
            "OLDEST", "REPORTED", "WHY",
        ],
        &rows,
    );
    Ok(ExitCode::SUCCESS)
}
