use clap::Parser;
use esteira_agent::config::{Args, Config};
use esteira_agent::work_dir_lock::WorkDirLock;
use esteira_logging::LogArgs;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: Args,
    #[command(flatten)]
    log: LogArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    esteira_logging::init(&cli.log, "info");
    let config = Config::from(cli.args);
    let _lock = WorkDirLock::acquire(&config.work_dir)?;
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
