//! esteira's pipeline language: `.gitlab-ci.yml` parsed, resolved and planned.
//!
//! # Layout
//! - [`plan`]: the output, a [`Plan`] of [`PlannedJob`]s, serialisable.
//! - [`context`]: the event a plan is made for ([`EventContext`]) and [`FileSource`].
//! - [`error`]: [`Diagnostic`]s, each naming file, line, column and job.
//! - `yaml`: YAML with positions, anchors, merge keys and `!reference`.
//! - `config`: `include: local`, `extends` and `!reference` resolved into one mapping.
//! - `pipeline`, `job`, `job_keys`, `graph_keys`: global keywords and jobs read and checked.
//! - `expr`, `rules`: `rules:if` expressions, `rules`, `only`/`except`.
//! - `planner`: evaluation against an event, `parallel`, `needs`.
//! - `limits`: the bounds on memory every stage counts against, so a hostile file is
//!   refused instead of exhausting the coordinator.
//! - [`lint_command`]: the logic of `esteira lint`; [`render`]: plans as text or JSON.
//!
//! The entry points are [`plan_pipeline`] and [`lint`]: files in, plan or diagnostics
//! out. They do no I/O beyond the [`FileSource`] they are given.

mod check;
mod config;
pub mod context;
mod duration;
pub mod error;
mod expr;
mod graph_keys;
mod job;
mod job_keys;
mod limits;
pub mod lint_command;
mod pipeline;
pub mod plan;
mod planner;
pub mod predefined;
pub mod render;
mod rules;
mod sources;
mod vars;
mod yaml;

pub use context::{EventContext, FileSource, PipelineSource, RefKind};
pub use duration::parse_duration;
pub use error::Diagnostic;
pub use plan::*;
pub use predefined::predefined_variables;
pub use render::{render_plan_json, render_plan_text};
pub use sources::{DirSource, MemorySource};

use rules::Env;
use vars::Scope;

/// Parse, resolve and evaluate `path` (e.g. ".gitlab-ci.yml") read through `files` for the
/// event `ctx`.
///
/// `Ok(plan)` holds the jobs that run (jobs excluded by `rules`/`only`/`except`, and
/// `when: never`, are absent); when `workflow:rules` excludes the pipeline, the plan has
/// no jobs. Any error in the file gives `Err` with every diagnostic found.
pub fn plan_pipeline(
    files: &dyn FileSource,
    path: &str,
    ctx: &EventContext,
) -> Result<Plan, Vec<Diagnostic>> {
    let base =
        Scope::new(predefined_variables(ctx)).overridden_by(ctx.overriding_variables.clone());
    let list = || files.list().unwrap_or_default();
    let env = Env::new(ctx, &list);
    let mut diagnostics = Vec::new();
    let root = config::load(files, path, Some((&env, &base)), &mut diagnostics);
    let pipeline = root.map(|root| pipeline::read_pipeline(root, &mut diagnostics));
    let planned = match pipeline {
        Some(pipeline) if diagnostics.is_empty() => planner::plan(&pipeline, &env, &base),
        _ => Err(diagnostics),
    };
    // An exhausted expansion budget leaves values incomplete: whatever was planned is wrong.
    if base.budget_exceeded() {
        let at = yaml::Pos::new(&path.trim_start_matches('/').into(), 1, 1);
        return Err(vec![at.error(None, limits::ExpansionBudget::message())]);
    }
    planned.map_err(sorted)
}

/// Validate only (no event): every diagnostic of the file, in file order.
pub fn lint(files: &dyn FileSource, path: &str) -> Vec<Diagnostic> {
    let mut diagnostics = Vec::new();
    if let Some(root) = config::load(files, path, None, &mut diagnostics) {
        pipeline::read_pipeline(root, &mut diagnostics);
    }
    sorted(diagnostics)
}

fn sorted(mut diagnostics: Vec<Diagnostic>) -> Vec<Diagnostic> {
    diagnostics.sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
    diagnostics.dedup();
    diagnostics
}
