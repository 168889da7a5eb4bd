//! How esteira's programs write their logs to stderr, for a terminal, a file or journald:
//! `--log-format text` (the default; ANSI colours only when stderr is a terminal and
//! `NO_COLOR` is unset) or `--log-format json` (one JSON object a line, with the fields of
//! the current spans: `span` the innermost, `spans` all of them, outermost first, so a
//! line logged under a job's span carries its `job_id`). What is logged: `--log-level`
//! (`ESTEIRA_LOG_LEVEL`), else `RUST_LOG`, else the program's default.

use std::io::IsTerminal;

use clap::ValueEnum;

/// The format of log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
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
    /// What is logged: a level (error, warn, info, debug, trace, off) or directives as
    /// RUST_LOG takes them (info,esteira_agent=debug); wins over RUST_LOG.
    #[arg(long, env = "ESTEIRA_LOG_LEVEL", value_parser = parse_level)]
    pub log_level: Option<String>,
}

impl LogArgs {
    /// The flags that give a child process the same logging.
    pub fn to_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        if let Some(format) = self.log_format.to_possible_value() {
            args.extend(["--log-format".to_string(), format.get_name().to_string()]);
        }
        if let Some(level) = &self.log_level {
            args.extend(["--log-level".to_string(), level.clone()]);
        }
        args
    }
}

const LEVELS: [&str; 6] = ["error", "warn", "info", "debug", "trace", "off"];

/// A level, or directives (`target=level`, comma-separated) `EnvFilter` accepts. A bare
/// word must be a level: `EnvFilter` would read a misspelt one as a target name.
pub fn parse_level(given: &str) -> Result<String, String> {
    let bare = !given.contains(['=', ',']);
    if bare && !LEVELS.contains(&given.to_ascii_lowercase().as_str()) {
        return Err(format!("not a level: one of {}", LEVELS.join(", ")));
    }
    tracing_subscriber::EnvFilter::try_new(given)
        .map(|_| given.to_string())
        .map_err(|error| error.to_string())
}

/// Installs the global subscriber; `default_filter` applies when neither `--log-level`
/// nor `RUST_LOG` says what to log.
pub fn init(args: &LogArgs, default_filter: &str) {
    let filter = args
        .log_level
        .as_deref()
        .and_then(|level| tracing_subscriber::EnvFilter::try_new(level).ok())
        .or_else(|| tracing_subscriber::EnvFilter::try_from_default_env().ok())
        .unwrap_or_else(|| default_filter.into());
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_and_directives_pass_misspellings_do_not() {
        assert!(parse_level("debug").is_ok());
        assert!(parse_level("WARN").is_ok());
        assert!(parse_level("info,esteira_agent=debug").is_ok());
        assert!(parse_level("debgu").unwrap_err().contains("not a level"));
        assert!(parse_level("x=loud").is_err());
    }
}
