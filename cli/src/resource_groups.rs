//! `esteira resource-group`: the process modes of a project's resource groups.

use std::process::ExitCode;

use clap::{Subcommand, ValueEnum};
use serde_json::json;

use crate::api::Api;

#[derive(Subcommand)]
pub enum ResourceGroupCommand {
    /// List a project's resource groups that have a process mode set.
    List {
        project: String,
        #[arg(long)]
        json: bool,
    },
    /// Set whose turn it is when several jobs wait for the group.
    Set {
        project: String,
        group: String,
        #[arg(long, value_enum)]
        process_mode: ProcessMode,
    },
}

#[derive(Clone, Copy, ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum ProcessMode {
    /// Any waiting job (the default).
    Unordered,
    /// The job of the oldest pipeline first.
    OldestFirst,
    /// The job of the newest pipeline first.
    NewestFirst,
}

pub async fn run(api: &Api, command: ResourceGroupCommand) -> anyhow::Result<ExitCode> {
    match command {
        ResourceGroupCommand::List { project, json } => {
            let listed = api
                .get(&format!("/projects/{project}/resource_groups"))
                .await?;
            if json {
                return crate::print_json(&listed);
            }
            let rows: Vec<Vec<String>> = listed
                .as_array()
                .into_iter()
                .flatten()
                .map(|group| {
                    vec![
                        crate::text(&group["name"]),
                        crate::text(&group["process_mode"]),
                    ]
                })
                .collect();
            crate::print_table(&["NAME", "PROCESS MODE"], &rows);
        }
        ResourceGroupCommand::Set {
            project,
            group,
            process_mode,
        } => {
            let mode = process_mode
                .to_possible_value()
                .map(|value| value.get_name().to_string())
                .unwrap_or_default();
            api.put(
                &format!("/projects/{project}/resource_groups/{group}"),
                &json!({ "process_mode": mode }),
            )
            .await?;
            println!("{group}: {mode}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
