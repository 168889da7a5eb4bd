use clap::{CommandFactory, FromArgMatches, Parser};
use esteira_coordinator::config::{self, Args};
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
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|error| error.exit());
    let (config, log) = config::load(cli.args, cli.log, &matches)?;
    esteira_logging::init(&log, "info,sqlx=warn");
    esteira_coordinator::run(config, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
}
