//! How esteira's programs write their logs to stderr, for a terminal, a file or journald:
//! `--log-format text` (the default; ANSI colours only when stderr is a terminal and
//! `NO_COLOR` is unset) or `--log-format json` (one JSON object a line, with the fields of
//! the current spans). `RUST_LOG` picks what is logged.

use std::io::IsTerminal;

/// The format of log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object a line.
    Json,
}

// The logging flags every esteira program takes, flattened into its own. No doc comment:
// it would replace the program's `about`.
#[derive(Debug, Clone, clap::Args)]
pub struct LogArgs {
    /// How log lines are written to stderr: text (coloured only on a terminal) or json
    /// (one object a line).
    #[arg(
        long,
        env = "ESTEIRA_LOG_FORMAT",
        value_enum,
        default_value_t = LogFormat::Text
    )]
    pub log_format: LogFormat,
}

/// Installs the global subscriber; `default_filter` applies when `RUST_LOG` is unset.
pub fn init(args: &LogArgs, default_filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| default_filter.into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match args.log_format {
        LogFormat::Text => builder.with_ansi(colours()).init(),
        LogFormat::Json => builder.json().with_ansi(false).init(),
    }
}

/// Colours only for a person at a terminal who did not ask for none (no-color.org).
fn colours() -> bool {
    std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|value| value.is_empty())
}
