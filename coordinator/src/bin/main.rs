use clap::Parser;
use esteira_coordinator::config::{Args, Config};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let config = Config::from(Args::parse());
    esteira_coordinator::run(config, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
}
