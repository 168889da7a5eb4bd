//! `esteira`: the command line. Every command but `lint` and `exec` talks to the
//! coordinator's REST API (`--server`, `--token`); `--json` prints the API's answer as it
//! is. `exec` runs a pipeline locally and has exit codes of its own (see `exec`).
//!
//! Exit codes: 0 done; 1 the operation failed (the coordinator refused it, cannot be
//! reached, a pipeline waited for did not succeed, an invalid file for `lint`); 2 a usage
//! error (clap's: unknown flag, missing or malformed argument); 3 the token was missing
//! or refused.

mod api;
mod environments;
mod exec;
mod job_show;
mod lint;
mod pools;
mod resource_groups;
mod variables;

use std::collections::HashMap;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use serde_json::{Value, json};

use crate::api::Api;

#[derive(Parser)]
#[command(name = "esteira", version, about = "esteira's command line")]
struct Cli {
    /// The coordinator's HTTP address.
    #[arg(
        long,
        global = true,
        env = "ESTEIRA_SERVER",
        default_value = "http://127.0.0.1:8080"
    )]
    server: String,
    /// The admin or API token, for actions.
    #[arg(long, global = true, env = "ESTEIRA_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// PEM file of the CA the coordinator's HTTPS certificate is verified against.
    #[arg(long, global = true, env = "ESTEIRA_CA_CERT")]
    ca_cert: Option<std::path::PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate a pipeline file offline, or show its plan for a ref.
    Lint(lint::LintArgs),
    /// Run the pipeline of the working tree on the local Docker engine, no coordinator.
    Exec(exec::ExecArgs),
    /// Run the autoscaler: keep each runner pool as large as the queue needs.
    Autoscale(Box<pools::AutoscaleArgs>),
    #[command(flatten)]
    Remote(RemoteCommand),
}

/// The commands that talk to the coordinator.
#[derive(Subcommand)]
enum RemoteCommand {
    /// Projects: a name and a repository.
    #[command(subcommand)]
    Project(Box<ProjectCommand>),
    /// Pipelines: run, list, show, wait, cancel, retry.
    #[command(subcommand)]
    Pipeline(PipelineCommand),
    /// Jobs: show, log, artifacts, cancel, retry, play.
    #[command(subcommand)]
    Job(JobCommand),
    /// Agents.
    #[command(subcommand)]
    Agent(AgentCommand),
    /// Runner pools, as their autoscalers report them.
    #[command(subcommand)]
    Pool(pools::PoolCommand),
    /// Project variables (secrets included).
    #[command(subcommand)]
    Variable(variables::VariableCommand),
    /// Environments, deployments and rollback.
    #[command(subcommand)]
    Env(environments::EnvCommand),
    /// Resource groups: one job at a time, in the order of their process mode.
    #[command(subcommand)]
    ResourceGroup(resource_groups::ResourceGroupCommand),
}

/// A project's settings, for `project add` and `project edit`.
#[derive(clap::Args)]
struct ProjectSettingsArgs {
    /// The forge the project lives on (webhooks and commit statuses).
    #[arg(long, value_parser = ["gitlab", "github", "gitea", "forgejo", "generic"])]
    forge: Option<String>,
    /// The secret webhooks are signed with ("" clears it).
    #[arg(long, env = "ESTEIRA_WEBHOOK_SECRET", hide_env_values = true)]
    webhook_secret: Option<String>,
    /// The branch a first poll builds, and the project's main line.
    #[arg(long)]
    default_branch: Option<String>,
    /// The pipeline file in the repository (default `.gitlab-ci.yml`).
    #[arg(long)]
    pipeline_file: Option<String>,
    /// The forge's API base, for commit statuses (https://gitlab.com/api/v4,
    /// https://api.github.com, https://HOST/api/v1).
    #[arg(long)]
    forge_api: Option<String>,
    /// The token commit statuses are posted with ("" clears it).
    #[arg(long, env = "ESTEIRA_FORGE_TOKEN", hide_env_values = true)]
    forge_token: Option<String>,
    /// The project on the forge (`group/project`, `owner/repo`); default: from --repo.
    #[arg(long)]
    forge_project: Option<String>,
    /// An HTTPS token to fetch the repository with ("" clears it).
    #[arg(long, env = "ESTEIRA_REPO_TOKEN", hide_env_values = true)]
    repo_token: Option<String>,
    /// A private SSH key file the coordinator fetches the repository with; stored
    /// encrypted ("" clears it).
    #[arg(long, value_name = "PATH")]
    ssh_key_file: Option<std::path::PathBuf>,
    /// Fetch the repository every SECONDS and start pipelines for new commits (0: off).
    #[arg(long, value_name = "SECONDS")]
    poll: Option<i64>,
    /// Protected branches, comma-separated.
    #[arg(long, value_delimiter = ',')]
    protected_branches: Option<Vec<String>>,
}

impl ProjectSettingsArgs {
    fn to_json(&self) -> anyhow::Result<Value> {
        let mut body = serde_json::Map::new();
        let mut put = |key: &str, value: Value| {
            if !value.is_null() {
                body.insert(key.to_string(), value);
            }
        };
        put("forge", json!(self.forge));
        put("webhook_secret", json!(self.webhook_secret));
        put("default_branch", json!(self.default_branch));
        put("pipeline_file", json!(self.pipeline_file));
        put("forge_api_url", json!(self.forge_api));
        put("forge_token", json!(self.forge_token));
        put("forge_project", json!(self.forge_project));
        put("repo_token", json!(self.repo_token));
        put("ssh_key", json!(self.ssh_key()?));
        put("poll_interval_secs", json!(self.poll));
        put("protected_branches", json!(self.protected_branches));
        Ok(Value::Object(body))
    }

    /// The text of `--ssh-key-file`, checked to be a private key ("" when clearing).
    fn ssh_key(&self) -> anyhow::Result<Option<String>> {
        let Some(path) = &self.ssh_key_file else {
            return Ok(None);
        };
        if path.as_os_str().is_empty() {
            return Ok(Some(String::new()));
        }
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the SSH key {}", path.display()))?;
        let trimmed = text.trim();
        if !(trimmed.starts_with("-----BEGIN ") && trimmed.ends_with("PRIVATE KEY-----")) {
            anyhow::bail!(
                "{} is not a private key in PEM or OpenSSH format (-----BEGIN ... PRIVATE KEY-----)",
                path.display()
            );
        }
        Ok(Some(text))
    }
}

#[derive(Subcommand)]
enum ProjectCommand {
    /// Add a project.
    Add {
        name: String,
        #[arg(long)]
        repo: String,
        #[command(flatten)]
        settings: ProjectSettingsArgs,
    },
    /// List projects.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show a project's settings (secrets as "***").
    Show {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Change some of a project's settings.
    Edit {
        name: String,
        #[arg(long)]
        repo: Option<String>,
        #[command(flatten)]
        settings: ProjectSettingsArgs,
    },
    /// Remove a project (its pipelines stay).
    Remove { name: String },
}

#[derive(Subcommand)]
enum PipelineCommand {
    /// Start a pipeline; prints its id.
    Run {
        project: String,
        #[arg(long = "ref")]
        git_ref: String,
        #[arg(long)]
        sha: Option<String>,
        /// A pipeline variable KEY=VALUE (repeatable).
        #[arg(long = "var", value_name = "KEY=VALUE")]
        vars: Vec<String>,
    },
    /// List pipelines, newest first.
    List {
        #[arg(long)]
        project: Option<String>,
        #[arg(long)]
        status: Option<String>,
        #[arg(long = "ref")]
        git_ref: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
    /// Show a pipeline and its jobs.
    Show {
        id: i64,
        #[arg(long)]
        json: bool,
    },
    /// Wait for a pipeline to finish: exit 0 on success, 1 otherwise.
    Wait {
        id: i64,
        /// Print each job's status as it changes.
        #[arg(long)]
        progress: bool,
    },
    /// Cancel a pipeline's unfinished jobs.
    Cancel { id: i64 },
    /// Retry each failed job of a pipeline (its latest attempts).
    Retry { id: i64 },
}

#[derive(Subcommand)]
enum JobCommand {
    /// Show a job: status, reason, timing, coverage, test summary and artifact files.
    Show {
        id: i64,
        #[arg(long)]
        json: bool,
    },
    /// Print a job's log (raw bytes).
    Log {
        id: i64,
        /// Keep printing as the log grows, until the job ends.
        #[arg(long, short)]
        follow: bool,
    },
    /// Download a job's artifacts and extract them into a directory.
    Artifacts {
        id: i64,
        #[arg(long, default_value = ".")]
        output: std::path::PathBuf,
    },
    /// Cancel a job.
    Cancel { id: i64 },
    /// Run a finished job again.
    Retry { id: i64 },
    /// Start a manual job.
    Play { id: i64 },
}

#[derive(Subcommand)]
enum AgentCommand {
    /// List agents.
    List {
        #[arg(long)]
        json: bool,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let command = match cli.command {
        Command::Lint(args) => return exit_code(lint::run(&args)),
        Command::Exec(args) => return exec::run(&args).await,
        Command::Autoscale(args) => {
            return finish(pools::autoscale(&cli.server, cli.token, *args).await);
        }
        Command::Remote(command) => command,
    };
    let result = match Api::new(&cli.server, cli.token.clone(), cli.ca_cert.as_deref()) {
        Ok(api) => remote(&api, command).await,
        Err(error) => Err(error),
    };
    finish(result)
}

/// The exit code of a command's outcome, with its error on stderr.
fn finish(result: anyhow::Result<ExitCode>) -> ExitCode {
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("esteira: {error:#}");
            if error.downcast_ref::<api::AuthError>().is_some() {
                ExitCode::from(EXIT_AUTH)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// The exit code of a missing or refused token (1 is a failed operation, 2 clap's usage
/// errors).
const EXIT_AUTH: u8 = 3;

async fn remote(api: &Api, command: RemoteCommand) -> anyhow::Result<ExitCode> {
    match command {
        RemoteCommand::Project(command) => project(api, *command).await,
        RemoteCommand::Pipeline(command) => pipeline(api, command).await,
        RemoteCommand::Job(command) => job(api, command).await,
        RemoteCommand::Agent(AgentCommand::List { json }) => agents(api, json).await,
        RemoteCommand::Pool(command) => pools::run(api, command).await,
        RemoteCommand::Variable(command) => variables::run(api, command).await,
        RemoteCommand::Env(command) => environments::run(api, command).await,
        RemoteCommand::ResourceGroup(command) => resource_groups::run(api, command).await,
    }
}

fn exit_code(code: i32) -> ExitCode {
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

fn print_json(value: &Value) -> anyhow::Result<ExitCode> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(ExitCode::SUCCESS)
}

/// Prints rows as aligned columns under a header.
fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(header.iter().map(|h| h.to_string()).collect());
    for row in rows {
        line(row.clone());
    }
}

/// One table row per element of the JSON array `list`.
fn rows_of(list: &Value, row: impl Fn(&Value) -> Vec<String>) -> Vec<Vec<String>> {
    list.as_array()
        .map(|all| all.iter().map(row).collect())
        .unwrap_or_default()
}

/// A JSON array of strings as `a,b,c`.
fn joined(list: &Value) -> String {
    let items: Vec<String> = list
        .as_array()
        .map(|items| items.iter().map(text).collect())
        .unwrap_or_default();
    items.join(",")
}

fn text(value: &Value) -> String {
    match value {
        Value::Null => "-".to_string(),
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

async fn project(api: &Api, command: ProjectCommand) -> anyhow::Result<ExitCode> {
    match command {
        ProjectCommand::Add {
            name,
            repo,
            settings,
        } => {
            let mut body = settings.to_json()?;
            body["name"] = json!(name);
            body["repo_url"] = json!(repo);
            let project = api.post("/projects", &body).await?;
            println!(
                "project {} added ({})",
                text(&project["name"]),
                text(&project["repo_url"])
            );
            println!("webhook: {}", text(&project["webhook_path"]));
            Ok(ExitCode::SUCCESS)
        }
        ProjectCommand::List { json } => {
            let projects = api.get("/projects").await?;
            if json {
                return print_json(&projects);
            }
            let rows: Vec<Vec<String>> = projects
                .as_array()
                .map(|all| {
                    all.iter()
                        .map(|p| {
                            vec![
                                text(&p["name"]),
                                text(&p["forge"]),
                                text(&p["repo_url"]),
                                text(&p["pipeline_file"]),
                                text(&p["poll_interval_secs"]),
                            ]
                        })
                        .collect()
                })
                .unwrap_or_default();
            print_table(
                &["NAME", "FORGE", "REPOSITORY", "PIPELINE FILE", "POLL"],
                &rows,
            );
            Ok(ExitCode::SUCCESS)
        }
        ProjectCommand::Show { name, json } => {
            let project = api.get(&format!("/projects/{name}")).await?;
            if json {
                return print_json(&project);
            }
            print_project(&project);
            Ok(ExitCode::SUCCESS)
        }
        ProjectCommand::Edit {
            name,
            repo,
            settings,
        } => {
            let mut body = settings.to_json()?;
            if let Some(repo) = repo {
                body["repo_url"] = json!(repo);
            }
            let project = api.put(&format!("/projects/{name}"), &body).await?;
            print_project(&project);
            Ok(ExitCode::SUCCESS)
        }
        ProjectCommand::Remove { name } => {
            api.delete(&format!("/projects/{name}")).await?;
            println!("project {name} removed");
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// A project's settings, one per line; the API already shows secrets as "***".
fn print_project(project: &Value) {
    let fields = [
        "name",
        "repo_url",
        "pipeline_file",
        "forge",
        "default_branch",
        "forge_api_url",
        "forge_project",
        "poll_interval_secs",
        "protected_branches",
        "webhook_path",
        "webhook_secret",
        "forge_token",
        "repo_token",
        "ssh_key",
    ];
    for field in fields {
        let value = match &project[field] {
            Value::Array(items) => items.iter().map(text).collect::<Vec<_>>().join(","),
            other => text(other),
        };
        println!("{field:<20} {value}");
    }
}

fn parse_vars(vars: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    vars.iter()
        .map(|pair| {
            pair.split_once('=')
                .map(|(key, value)| (key.to_string(), value.to_string()))
                .ok_or_else(|| anyhow::anyhow!("--var needs KEY=VALUE, got '{pair}'"))
        })
        .collect()
}

async fn pipeline(api: &Api, command: PipelineCommand) -> anyhow::Result<ExitCode> {
    match command {
        PipelineCommand::Run {
            project,
            git_ref,
            sha,
            vars,
        } => {
            let body = json!({ "ref": git_ref, "sha": sha, "variables": parse_vars(&vars)? });
            let created = api
                .post(&format!("/projects/{project}/pipelines"), &body)
                .await?;
            println!("{}", text(&created["id"]));
            Ok(ExitCode::SUCCESS)
        }
        PipelineCommand::List {
            project,
            status,
            git_ref,
            limit,
            json,
        } => {
            let mut query = vec![format!("limit={limit}")];
            for (key, value) in [("project", project), ("status", status), ("ref", git_ref)] {
                if let Some(value) = value {
                    query.push(format!("{key}={value}"));
                }
            }
            let pipelines = api.get(&format!("/pipelines?{}", query.join("&"))).await?;
            if json {
                return print_json(&pipelines);
            }
            let rows: Vec<Vec<String>> = pipelines
                .as_array()
                .map(|all| {
                    all.iter()
                        .map(|p| {
                            vec![
                                text(&p["id"]),
                                text(&p["project"]),
                                text(&p["git_ref"]),
                                text(&p["sha"]).chars().take(8).collect(),
                                text(&p["status"]),
                            ]
                        })
                        .collect()
                })
                .unwrap_or_default();
            print_table(&["ID", "PROJECT", "REF", "COMMIT", "STATUS"], &rows);
            Ok(ExitCode::SUCCESS)
        }
        PipelineCommand::Show { id, json } => {
            let pipeline = api.get(&format!("/pipelines/{id}")).await?;
            if json {
                return print_json(&pipeline);
            }
            println!(
                "pipeline {} of {} on {} ({}): {}",
                text(&pipeline["id"]),
                text(&pipeline["project"]),
                text(&pipeline["git_ref"]),
                text(&pipeline["sha"]).chars().take(8).collect::<String>(),
                text(&pipeline["status"])
            );
            if let Some(title) = pipeline["commit_title"].as_str() {
                match pipeline["commit_author"].as_str() {
                    Some(author) => println!("commit: {title} ({author})"),
                    None => println!("commit: {title}"),
                }
            }
            if let Some(coverage) = pipeline["coverage"].as_f64() {
                println!("coverage: {coverage:.2}%");
            }
            print_jobs(&pipeline);
            Ok(ExitCode::SUCCESS)
        }
        PipelineCommand::Wait { id, progress } => {
            let mut status = String::new();
            if progress {
                // The pipeline's live stream: every change of it or of one of its jobs.
                let mut shown: HashMap<String, String> = HashMap::new();
                api.follow_events(&format!("/pipelines/{id}/events"), |data| {
                    let pipeline: Value = serde_json::from_str(data)?;
                    print_job_changes(&pipeline, &mut shown);
                    status = text(&pipeline["status"]);
                    Ok(!is_finished(&status))
                })
                .await?;
            }
            // Without --progress (or if the stream ended early): long polls.
            while !is_finished(&status) {
                let pipeline = api.get(&format!("/pipelines/{id}/wait?timeout=60")).await?;
                status = text(&pipeline["status"]);
            }
            eprintln!("pipeline {id}: {status}");
            Ok(if status == "success" {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        PipelineCommand::Cancel { id } => {
            let pipeline = api.get(&format!("/pipelines/{id}")).await?;
            let status = text(&pipeline["status"]);
            if is_finished(&status) {
                anyhow::bail!("pipeline {id} already finished ({status}): nothing to cancel");
            }
            api.post(&format!("/pipelines/{id}/cancel"), &json!({}))
                .await?;
            println!("pipeline {id}: cancel requested");
            Ok(ExitCode::SUCCESS)
        }
        PipelineCommand::Retry { id } => {
            let answer = api
                .post(&format!("/pipelines/{id}/retry"), &json!({}))
                .await?;
            for job in answer["retried"].as_array().into_iter().flatten() {
                println!(
                    "job {} ({}) retried as job {}",
                    text(&job["id"]),
                    text(&job["name"]),
                    text(&job["retry"])
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn is_finished(status: &str) -> bool {
    matches!(status, "success" | "failed" | "canceled" | "skipped")
}

/// Prints the jobs (latest attempts) whose status differs from the one last shown.
fn print_job_changes(pipeline: &Value, shown: &mut HashMap<String, String>) {
    for job in pipeline["jobs"].as_array().into_iter().flatten() {
        if job["retried"].as_bool() == Some(true) {
            continue;
        }
        let name = text(&job["name"]);
        let status = text(&job["status"]);
        if shown.get(&name) != Some(&status) {
            let reason = job["failure_message"].as_str().unwrap_or_default();
            println!(
                "  {:<8} {name:<24} {status:<9} {reason}",
                text(&job["stage"])
            );
            shown.insert(name, status);
        }
    }
}

fn print_jobs(pipeline: &Value) {
    let rows: Vec<Vec<String>> = pipeline["jobs"]
        .as_array()
        .map(|jobs| {
            jobs.iter()
                .map(|job| {
                    let mut status = text(&job["status"]);
                    if job["retried"].as_bool() == Some(true) {
                        status.push_str(" (retried)");
                    }
                    vec![
                        text(&job["id"]),
                        text(&job["stage"]),
                        text(&job["name"]),
                        status,
                        text(&job["failure_message"]),
                    ]
                })
                .collect()
        })
        .unwrap_or_default();
    print_table(&["JOB", "STAGE", "NAME", "STATUS", "REASON"], &rows);
}

async fn job(api: &Api, command: JobCommand) -> anyhow::Result<ExitCode> {
    let (action, id) = match command {
        JobCommand::Show { id, json } => {
            let job = api.get(&format!("/jobs/{id}")).await?;
            let files = if job["artifacts_size"].is_null() {
                None
            } else {
                Some(api.get(&format!("/jobs/{id}/artifacts/files")).await?)
            };
            if json {
                let mut job = job;
                job["artifact_files"] = files.unwrap_or(Value::Null);
                return print_json(&job);
            }
            for line in job_show::describe(&job, files.as_ref()) {
                println!("{line}");
            }
            return Ok(ExitCode::SUCCESS);
        }
        JobCommand::Log { id, follow } => {
            let path = format!("/jobs/{id}/log?follow={follow}");
            api.stream_to(&path, &mut std::io::stdout().lock()).await?;
            return Ok(ExitCode::SUCCESS);
        }
        JobCommand::Artifacts { id, output } => {
            let mut archive = Vec::new();
            api.stream_to(&format!("/jobs/{id}/artifacts"), &mut archive)
                .await?;
            std::fs::create_dir_all(&output)?;
            tar::Archive::new(flate2::read::GzDecoder::new(archive.as_slice())).unpack(&output)?;
            println!("artifacts of job {id} extracted into {}", output.display());
            return Ok(ExitCode::SUCCESS);
        }
        JobCommand::Cancel { id } => ("cancel", id),
        JobCommand::Retry { id } => ("retry", id),
        JobCommand::Play { id } => ("play", id),
    };
    let answer = api
        .post(&format!("/jobs/{id}/{action}"), &json!({}))
        .await?;
    println!("job {}: {action} requested", text(&answer["id"]));
    Ok(ExitCode::SUCCESS)
}

async fn agents(api: &Api, json: bool) -> anyhow::Result<ExitCode> {
    let agents = api.get("/agents").await?;
    if json {
        return print_json(&agents);
    }
    let rows = rows_of(&agents, |a| {
        vec![
            text(&a["id"]),
            text(&a["name"]),
            text(&a["status"]),
            joined(&a["labels"]),
            text(&a["version"]),
        ]
    });
    print_table(&["ID", "NAME", "STATUS", "LABELS", "VERSION"], &rows);
    Ok(ExitCode::SUCCESS)
}
