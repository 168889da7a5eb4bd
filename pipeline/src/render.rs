//! A plan shown to a person (`esteira lint --plan`) or to a program (`--json`).

use std::fmt::Write;

use crate::plan::{AllowFailure, Plan, When};

/// The plan stage by stage: each job with its `when`, allow-failure, needs and image.
pub fn render_plan_text(plan: &Plan) -> String {
    let mut out = String::new();
    if plan.jobs.is_empty() {
        out.push_str("no jobs run for this event\n");
        return out;
    }
    for stage in &plan.stages {
        let _ = writeln!(out, "stage {stage}");
        for job in plan.jobs.iter().filter(|j| &j.stage == stage) {
            let mut facts = vec![format!("when: {}", when_name(job.when))];
            match &job.allow_failure {
                AllowFailure::No => {}
                AllowFailure::Yes => facts.push("allow_failure".into()),
                AllowFailure::ExitCodes(codes) => {
                    facts.push(format!("allow_failure on exit {codes:?}"))
                }
            }
            if let Some(seconds) = job.start_in_secs {
                facts.push(format!("start_in: {seconds}s"));
            }
            if let Some(image) = &job.image {
                facts.push(format!("image: {}", image.name));
            }
            if let Some(build) = &job.build {
                let verb = if build.push {
                    "build and push"
                } else {
                    "build"
                };
                facts.push(format!("{verb}: {}", build.tags.join(", ")));
            }
            if let Some(deploy) = &job.deploy {
                facts.push(format!("deploy: {} as {}", deploy.image, deploy.service));
            }
            if let Some(environment) = &job.environment {
                facts.push(format!("environment: {}", environment.name));
            }
            if !job.tags.is_empty() {
                facts.push(format!("tags: {}", job.tags.join(", ")));
            }
            let _ = writeln!(out, "  {}  ({})", job.name, facts.join("; "));
            if let Some(needs) = &job.needs {
                let names: Vec<&str> = needs.iter().map(|n| n.job.as_str()).collect();
                let shown = if names.is_empty() {
                    "[] (starts at once)".to_owned()
                } else {
                    names.join(", ")
                };
                let _ = writeln!(out, "    needs: {shown}");
            }
        }
    }
    out
}

/// The plan as pretty JSON (the serialisation the coordinator stores).
pub fn render_plan_json(plan: &Plan) -> String {
    serde_json::to_string_pretty(plan).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

pub fn when_name(when: When) -> &'static str {
    match when {
        When::OnSuccess => "on_success",
        When::OnFailure => "on_failure",
        When::Always => "always",
        When::Manual => "manual",
        When::Delayed => "delayed",
        When::Never => "never",
    }
}
