//! `esteira exec`: runs a whole pipeline from the working tree on the local Docker
//! engine before anything is pushed, with no coordinator. The plan is the one the
//! coordinator would make for the local branch and commit; the jobs run through the
//! executor the agents use, in a snapshot of the working tree (uncommitted changes
//! included; the tree itself is never touched).
//!
//! Exit codes: 0 the pipeline succeeded (or `--dry-run` planned it); 1 it failed, or the
//! local engine could not run it; 2 a usage error (not in a git working tree, no such
//! file, `--job` naming no job); 3 the file does not plan (errors, or no job for the ref).
//!
//! # Layout
//! - `snapshot`: the working tree, its git state and its snapshot as a commit.
//! - `plan`: the event, the plan, and which jobs run (`--job`, `--stage`, manual jobs).
//! - `run`: the jobs in stage and `needs` order through the executor.
//! - `output`: the plan, the job logs behind job names, the summary table.

mod output;
mod plan;
mod run;
mod snapshot;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use esteira_executor::{Executor, ExecutorConfig};
use tokio_util::sync::CancellationToken;

use output::Output;
use plan::Request;
use run::LocalRun;
use snapshot::WorkingTree;

/// Arguments of `esteira exec`.
#[derive(Debug, Clone, clap::Args)]
pub struct ExecArgs {
    /// The pipeline file, in the working tree.
    #[arg(long, default_value = ".gitlab-ci.yml")]
    pub file: PathBuf,
    /// Run only this job and the jobs it needs (repeatable); a manual job runs only when
    /// named.
    #[arg(long = "job", value_name = "NAME")]
    pub jobs: Vec<String>,
    /// Run only the jobs of this stage and the jobs they need (repeatable).
    #[arg(long = "stage", value_name = "STAGE")]
    pub stages: Vec<String>,
    /// A pipeline variable KEY=VALUE (repeatable): rules see it, and it wins over the
    /// file's variables.
    #[arg(long = "var", value_name = "KEY=VALUE")]
    pub vars: Vec<String>,
    /// The branch the pipeline runs for (rules and workflow see it); default: the branch
    /// checked out.
    #[arg(long = "ref", value_name = "BRANCH")]
    pub git_ref: Option<String>,
    /// Print the plan (stages, jobs, why a job does not run) and run nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// How many jobs may run at once.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    pub parallel: u16,
    /// The image of jobs that name none.
    #[arg(long, env = "ESTEIRA_DEFAULT_IMAGE", default_value = "busybox:latest")]
    pub default_image: String,
}

/// Why `esteira exec` stopped before the pipeline's result.
#[derive(Debug, thiserror::Error)]
enum ExecError {
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Unplannable(String),
    #[error("{0}")]
    Failed(String),
}

impl ExecError {
    fn exit_code(&self) -> ExitCode {
        ExitCode::from(match self {
            ExecError::Failed(_) => 1,
            ExecError::Usage(_) => 2,
            ExecError::Unplannable(_) => 3,
        })
    }
}

/// Runs the command; see the module's exit codes.
pub async fn run(args: &ExecArgs) -> ExitCode {
    match execute(args).await {
        Ok(code) => code,
        Err(error) => {
            eprintln!("esteira exec: {error}");
            error.exit_code()
        }
    }
}

async fn execute(args: &ExecArgs) -> Result<ExitCode, ExecError> {
    let cwd = std::env::current_dir()
        .map_err(|error| ExecError::Usage(format!("no current directory: {error}")))?;
    let tree = WorkingTree::discover(&cwd).map_err(ExecError::Usage)?;
    let file = file_in_tree(&tree, &cwd.join(&args.file))?;
    let given =
        crate::parse_vars(&args.vars).map_err(|error| ExecError::Usage(error.to_string()))?;
    let state = tree.state();
    let git_ref = args
        .git_ref
        .clone()
        .or_else(|| state.branch.clone())
        .ok_or_else(|| ExecError::Usage("HEAD is detached: name the branch with --ref".into()))?;
    let event = plan::event(&tree, &state, &git_ref, &given);
    let shown = args.file.display().to_string();
    let plan = plan::plan(&tree, &file, &event).map_err(|diagnostics| {
        let lines: Vec<String> = diagnostics
            .into_iter()
            .map(|mut diagnostic| {
                if diagnostic.file == file {
                    diagnostic.file = shown.clone();
                }
                diagnostic.to_string()
            })
            .collect();
        ExecError::Unplannable(format!("{shown} does not plan:\n{}", lines.join("\n")))
    })?;
    if plan.jobs.is_empty() {
        return Err(ExecError::Unplannable(format!(
            "no job of {shown} runs for ref '{git_ref}' (workflow:rules or the jobs' rules)"
        )));
    }
    let request = Request {
        jobs: &args.jobs,
        stages: &args.stages,
    };
    let choices = plan::select(&plan, &request).map_err(ExecError::Usage)?;
    let output = Arc::new(Output::new(&plan));
    let head = state
        .head
        .as_deref()
        .map_or("no commit yet", |sha| &sha[..sha.len().min(8)]);
    println!("esteira exec: {shown} for ref {git_ref} at {head}, with the working tree's changes");
    if args.dry_run {
        output.plan(&plan, &choices);
        return Ok(ExitCode::SUCCESS);
    }

    let temp = tempfile::Builder::new()
        .prefix("esteira-exec-")
        .tempdir()
        .map_err(|error| {
            ExecError::Failed(format!("cannot make a temporary directory: {error}"))
        })?;
    let snapshot = tree
        .snapshot(&temp.path().join("snapshot.git"))
        .map_err(|error| ExecError::Failed(format!("cannot snapshot the working tree: {error}")))?;
    let config = ExecutorConfig {
        // Its Docker objects are told from any agent's on the same engine by this.
        instance: format!("exec-{}", std::process::id()),
        work_dir: temp.path().join("work"),
        default_image: args.default_image.clone(),
        ..ExecutorConfig::default()
    };
    let executor = Executor::connect(config).await.map_err(|error| {
        ExecError::Failed(format!("cannot use the local Docker engine: {error}"))
    })?;
    let executor = Arc::new(executor);
    let cancel = CancellationToken::new();
    let interrupt = cancel.clone();
    tokio::spawn(async move {
        interrupted().await;
        eprintln!("esteira exec: interrupted; canceling the running jobs");
        interrupt.cancel();
    });
    let local = LocalRun {
        executor: executor.clone(),
        snapshot: &snapshot,
        project: tree.project_name(),
        event: &event,
        parallel: usize::from(args.parallel),
        output: output.clone(),
        cancel,
    };
    let reports = local.run(&plan, &choices).await;
    executor.wait_for_cleanups().await;
    let succeeded = run::succeeded(&reports);
    output.summary(&reports, succeeded);
    Ok(if succeeded {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Resolves on Ctrl-C (SIGINT) or SIGTERM; never when neither can be watched.
async fn interrupted() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut terminate) => {
                terminate.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        Ok(()) = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}

/// The pipeline file's path in the working tree (`/`-separated), which is what
/// `include: local` resolves from.
fn file_in_tree(tree: &WorkingTree, file: &Path) -> Result<String, ExecError> {
    let missing = || ExecError::Usage(format!("no pipeline file at {}", file.display()));
    let file = file.canonicalize().map_err(|_| missing())?;
    if !file.is_file() {
        return Err(missing());
    }
    let top = tree.top.canonicalize().unwrap_or_else(|_| tree.top.clone());
    let relative = file.strip_prefix(&top).map_err(|_| {
        ExecError::Usage(format!(
            "{} is outside the working tree {}",
            file.display(),
            top.display()
        ))
    })?;
    let parts: Vec<String> = relative
        .components()
        .map(|part| part.as_os_str().to_string_lossy().into_owned())
        .collect();
    Ok(parts.join("/"))
}
