use clap::Parser;
use esteira_coordinator::config::{Args, Config};
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
    esteira_logging::init(&cli.log, "info,sqlx=warn");
    let config = Config::from(cli.args);
    esteira_coordinator::run(config, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
}
