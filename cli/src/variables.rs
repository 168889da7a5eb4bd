//! `esteira variable`: project variables. Values are read from stdin so that they never
//! stand in a shell's history or a process list.

use std::io::Read;
use std::process::ExitCode;

use clap::Subcommand;
use serde_json::json;

use crate::api::Api;

#[derive(Subcommand)]
pub enum VariableCommand {
    /// Set a variable; its value is read from stdin (one trailing newline is dropped).
    Set {
        project: String,
        key: String,
        /// Replace the value by [MASKED] in job logs.
        #[arg(long)]
        masked: bool,
        /// Only for pipelines of protected branches.
        #[arg(long)]
        protected: bool,
        /// Give jobs a file holding the value; the variable is its path.
        #[arg(long)]
        file: bool,
    },
    /// List a project's variables (without their values).
    List {
        project: String,
        #[arg(long)]
        json: bool,
    },
    /// Remove a variable.
    Remove { project: String, key: String },
}

pub async fn run(api: &Api, command: VariableCommand) -> anyhow::Result<ExitCode> {
    match command {
        VariableCommand::Set {
            project,
            key,
            masked,
            protected,
            file,
        } => {
            let mut value = String::new();
            std::io::stdin().read_to_string(&mut value)?;
            if value.ends_with('\n') {
                value.pop();
            }
            let body =
                json!({ "value": value, "masked": masked, "protected": protected, "file": file });
            api.put(&format!("/projects/{project}/variables/{key}"), &body)
                .await?;
            println!("variable {key} set on {project}");
        }
        VariableCommand::List { project, json } => {
            let listed = api.get(&format!("/projects/{project}/variables")).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&listed)?);
                return Ok(ExitCode::SUCCESS);
            }
            let rows: Vec<Vec<String>> = listed
                .as_array()
                .into_iter()
                .flatten()
                .map(|variable| {
                    let flags: Vec<&str> = ["masked", "protected", "file"]
                        .into_iter()
                        .filter(|flag| variable[*flag].as_bool() == Some(true))
                        .collect();
                    vec![crate::text(&variable["key"]), flags.join(",")]
                })
                .collect();
            crate::print_table(&["KEY", "FLAGS"], &rows);
        }
        VariableCommand::Remove { project, key } => {
            api.delete(&format!("/projects/{project}/variables/{key}"))
                .await?;
            println!("variable {key} removed from {project}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
