//! `esteira lint`: offline validation of a pipeline file, and the plan it makes for an
//! event (`--plan`). The logic lives in `esteira_pipeline::lint_command`; this is the
//! command line over it.

use esteira_pipeline::lint_command::{LintOptions, run_lint};

/// Arguments of `esteira lint`.
#[derive(Debug, Clone, clap::Args)]
pub struct LintArgs {
    /// The pipeline file; `include: local` paths resolve from its directory.
    pub file: String,
    /// Plan for this branch (default `main`).
    #[arg(long = "ref", value_name = "REF", conflicts_with = "tag")]
    pub git_ref: Option<String>,
    /// Plan for this tag.
    #[arg(long)]
    pub tag: Option<String>,
    /// The event: push, merge_request, web, api or schedule.
    #[arg(long, value_parser = ["push", "merge_request", "web", "api", "schedule"])]
    pub event: Option<String>,
    /// A variable of the event, KEY=VALUE (repeatable).
    #[arg(long = "var", value_name = "KEY=VALUE")]
    pub vars: Vec<String>,
    /// A file changed by the event, for `rules:changes` (repeatable; unset: all match).
    #[arg(long, value_name = "PATH")]
    pub changed: Vec<String>,
    /// Print the jobs that would run, stage by stage.
    #[arg(long)]
    pub plan: bool,
    /// Print the plan as JSON.
    #[arg(long, requires = "plan")]
    pub json: bool,
}

/// Runs the command: 0 valid, 1 invalid, 2 usage error. Errors go to stderr as
/// `FILE:LINE:COL: message`.
pub fn run(args: &LintArgs) -> i32 {
    let options = LintOptions {
        file: args.file.clone(),
        git_ref: args.git_ref.clone(),
        tag: args.tag.clone(),
        event: args.event.clone(),
        variables: args.vars.clone(),
        changed: args.changed.clone(),
        plan: args.plan,
        json: args.json,
    };
    let outcome = run_lint(&options);
    print!("{}", outcome.stdout);
    eprint!("{}", outcome.stderr);
    outcome.code
}
