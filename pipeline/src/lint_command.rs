//! The logic of `esteira lint`, kept here (not in the CLI crate) so it is tested with the
//! language: options in, exit code and output out.

use std::collections::BTreeMap;
use std::path::Path;

use crate::context::{EventContext, PipelineSource, RefKind};
use crate::render::{render_plan_json, render_plan_text};
use crate::sources::DirSource;

/// What `esteira lint` was asked.
#[derive(Debug, Clone, Default)]
pub struct LintOptions {
    pub file: String,
    pub git_ref: Option<String>,
    pub tag: Option<String>,
    /// push, merge_request, web, api, schedule.
    pub event: Option<String>,
    /// `K=V` pairs.
    pub variables: Vec<String>,
    pub changed: Vec<String>,
    pub plan: bool,
    pub json: bool,
}

/// Exit codes of `esteira lint`.
pub const EXIT_VALID: i32 = 0;
pub const EXIT_INVALID: i32 = 1;
pub const EXIT_USAGE: i32 = 2;

/// The result of a lint run: what to print where, and the exit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LintOutcome {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs lint (and the plan with `--plan`). Includes resolve against the directory that
/// holds the file.
pub fn run_lint(options: &LintOptions) -> LintOutcome {
    let usage = |message: String| LintOutcome {
        code: EXIT_USAGE,
        stdout: String::new(),
        stderr: format!("esteira lint: {message}\n"),
    };
    let path = Path::new(&options.file);
    if !path.is_file() {
        return usage(format!("'{}' is not a file", options.file));
    }
    let root = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let Some(name) = path.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        return usage(format!("'{}' is not a file", options.file));
    };
    let files = DirSource::new(root);
    // Diagnostics name the file as the user wrote it.
    let shown = |mut d: crate::Diagnostic| {
        if d.file == name {
            d.file = options.file.clone();
        }
        d
    };
    if !options.plan {
        let diagnostics = crate::lint(&files, &name);
        let code = if diagnostics.is_empty() {
            EXIT_VALID
        } else {
            EXIT_INVALID
        };
        let stderr: String = diagnostics
            .into_iter()
            .map(|d| format!("{}\n", shown(d)))
            .collect();
        let stdout = if code == EXIT_VALID {
            format!("{}: valid\n", options.file)
        } else {
            String::new()
        };
        return LintOutcome {
            code,
            stdout,
            stderr,
        };
    }
    let ctx = match event_context(options) {
        Ok(ctx) => ctx,
        Err(message) => return usage(message),
    };
    match crate::plan_pipeline(&files, &name, &ctx) {
        Ok(plan) => {
            let stdout = if options.json {
                render_plan_json(&plan) + "\n"
            } else {
                render_plan_text(&plan)
            };
            LintOutcome {
                code: EXIT_VALID,
                stdout,
                stderr: String::new(),
            }
        }
        Err(diagnostics) => LintOutcome {
            code: EXIT_INVALID,
            stdout: String::new(),
            stderr: diagnostics
                .into_iter()
                .map(|d| format!("{}\n", shown(d)))
                .collect(),
        },
    }
}

/// The event described by the options (`main` when no ref is given).
pub fn event_context(options: &LintOptions) -> Result<EventContext, String> {
    let git_ref = match (&options.git_ref, &options.tag) {
        (Some(_), Some(_)) => return Err("--ref and --tag exclude each other".into()),
        (_, Some(tag)) => RefKind::Tag(tag.clone()),
        (Some(branch), None) => RefKind::Branch(branch.clone()),
        (None, None) => RefKind::Branch("main".into()),
    };
    let source = match options.event.as_deref().unwrap_or("push") {
        "push" => PipelineSource::Push,
        "merge_request" | "merge_request_event" => PipelineSource::MergeRequestEvent,
        "web" => PipelineSource::Web,
        "api" => PipelineSource::Api,
        "schedule" => PipelineSource::Schedule,
        other => {
            return Err(format!(
                "--event '{other}' is not one of push, merge_request, web, api, schedule"
            ));
        }
    };
    // `--var` stands for project and pipeline variables: they win over the file's.
    let mut overriding_variables = BTreeMap::new();
    for pair in &options.variables {
        let Some((key, value)) = pair.split_once('=') else {
            return Err(format!("--var '{pair}' is not KEY=VALUE"));
        };
        overriding_variables.insert(key.to_owned(), value.to_owned());
    }
    // GitLab always defines the default branch; offline we assume `main` unless told.
    let variables = BTreeMap::from([("CI_DEFAULT_BRANCH".to_owned(), "main".to_owned())]);
    Ok(EventContext {
        git_ref,
        sha: "0000000000000000000000000000000000000000".into(),
        source,
        changed_files: if options.changed.is_empty() {
            None
        } else {
            Some(options.changed.clone())
        },
        variables,
        overriding_variables,
        project_path: "local/project".into(),
    })
}
