use clap::Parser;
use esteira_agent::config::{Args, Config, InstanceArgs};
use esteira_agent::work_dir_lock::WorkDirLock;
use esteira_agent::{orphans, watchdog};
use esteira_logging::LogArgs;

#[derive(Parser)]
#[command(args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    args: Args,
    #[command(flatten)]
    log: LogArgs,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Removes what the jobs of an agent that is gone left on this host.
    ///
    /// Stops and removes the containers, networks and volumes carrying the agent's name,
    /// and the build directories in its work dir. Refused while an agent runs on that
    /// work dir.
    Prune {
        #[command(flatten)]
        instance: InstanceArgs,
        #[command(flatten)]
        log: LogArgs,
    },
    /// Started by the agent itself: stops the agent's jobs once the agent has exited.
    #[command(hide = true)]
    Watchdog {
        #[command(flatten)]
        instance: InstanceArgs,
        #[command(flatten)]
        log: LogArgs,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Prune { instance, log }) => {
            esteira_logging::init(&log, "info");
            let name = instance.name();
            let removed = orphans::prune(&name, &instance.work_dir).await?;
            println!("removed {removed} Docker objects of the agent {name}'s jobs");
            Ok(())
        }
        Some(Command::Watchdog { instance, log }) => {
            esteira_logging::init(&log, "info");
            Ok(watchdog::watch(&instance.name(), &instance.work_dir).await?)
        }
        None => agent(cli.args, &cli.log).await,
    }
}

async fn agent(args: Args, log: &LogArgs) -> anyhow::Result<()> {
    esteira_logging::init(log, "info");
    let config = Config::from(args);
    let _lock = WorkDirLock::acquire(&config.work_dir)?;
    // Held until the agent exits, however: its closing is what the watchdog waits for.
    let _watchdog = watchdog::start(&config.name, &config.work_dir, log).await?;
    esteira_agent::run(config, async {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(_) => return std::future::pending().await,
            };
        tokio::select! {
            _ = terminate.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    })
    .await
}
