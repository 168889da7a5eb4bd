//! `esteira env`: a project's environments, their deployments, and rollback.

use std::process::ExitCode;

use clap::Subcommand;
use serde_json::{Value, json};

use crate::api::Api;
use crate::{print_table, text};

#[derive(Subcommand)]
pub enum EnvCommand {
    /// List a project's environments with what runs there now.
    List {
        project: String,
        #[arg(long)]
        json: bool,
    },
    /// Show an environment's current version and every deployment, newest first.
    Show {
        project: String,
        env: String,
        #[arg(long)]
        json: bool,
    },
    /// Deploy an earlier deployment again (default: the successful one before the current).
    Rollback {
        project: String,
        env: String,
        #[arg(long)]
        to: Option<i64>,
    },
}

fn deployment_line(deployment: &Value) -> String {
    format!(
        "#{}  {}  {}  pipeline {}  job {}  {}",
        deployment["id"],
        deployment["version"].as_str().unwrap_or("?"),
        deployment["status"].as_str().unwrap_or("?"),
        deployment["pipeline_id"],
        deployment["job_id"],
        deployment["triggered_by"].as_str().unwrap_or("")
    )
}

pub async fn run(api: &Api, command: EnvCommand) -> anyhow::Result<ExitCode> {
    match command {
        EnvCommand::List { project, json } => {
            let listed = api
                .get(&format!("/projects/{project}/environments"))
                .await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&listed)?);
                return Ok(ExitCode::SUCCESS);
            }
            let rows: Vec<Vec<String>> = listed
                .as_array()
                .into_iter()
                .flatten()
                .map(|env| {
                    let current = match &env["current"] {
                        Value::Null => "nothing deployed".to_string(),
                        deployment => deployment_line(deployment),
                    };
                    vec![text(&env["name"]), text(&env["tier"]), current]
                })
                .collect();
            print_table(&["NAME", "TIER", "CURRENT DEPLOYMENT"], &rows);
        }
        EnvCommand::Show { project, env, json } => {
            let shown = api
                .get(&format!("/projects/{project}/environments/{env}"))
                .await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&shown)?);
                return Ok(ExitCode::SUCCESS);
            }
            println!(
                "{env} ({}) {}",
                shown["tier"].as_str().unwrap_or("?"),
                shown["url"].as_str().unwrap_or("")
            );
            for deployment in shown["history"].as_array().into_iter().flatten() {
                println!("  {}", deployment_line(deployment));
            }
        }
        EnvCommand::Rollback { project, env, to } => {
            let answer = api
                .post(
                    &format!("/projects/{project}/environments/{env}/rollback"),
                    &json!({ "deployment": to }),
                )
                .await?;
            println!(
                "rolling {env} back to deployment {}: job {}",
                answer["deployment"], answer["job"]
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
