//! `esteira job show ID`: one job's facts as the job page shows them — status and reason,
//! what a job that has not started waits for, timing, coverage, the junit test summary from its `details`, and the files of its
//! artifacts archive. Formatting is plain functions of the API's JSON, tested here.

use serde_json::Value;

use crate::text;

/// The lines describing `job`; `files` is `GET /jobs/{id}/artifacts/files` when the job
/// has an archive.
pub fn describe(job: &Value, files: Option<&Value>) -> Vec<String> {
    let mut lines = vec![format!(
        "job {} {} (stage {}, attempt {}): {}",
        text(&job["id"]),
        text(&job["name"]),
        text(&job["stage"]),
        text(&job["attempt"]),
        text(&job["status"])
    )];
    let mut facts = vec![format!("pipeline {}", text(&job["pipeline_id"]))];
    if !job["agent_id"].is_null() {
        facts.push(format!("agent #{}", text(&job["agent_id"])));
    }
    if !job["exit_code"].is_null() {
        facts.push(format!("exit code {}", text(&job["exit_code"])));
    }
    if let (Some(start), Some(end)) = (job["started_at"].as_i64(), job["finished_at"].as_i64()) {
        facts.push(format!("took {:.1}s", (end - start) as f64 / 1000.0));
    }
    if let Some(coverage) = job["coverage"].as_f64() {
        facts.push(format!("coverage {coverage:.2}%"));
    }
    lines.push(facts.join(", "));
    if let Some(waiting) = waiting(job) {
        lines.push(format!("waiting: {waiting}"));
    }
    if let Some(reason) = job["failure_message"].as_str() {
        lines.push(format!("reason: {reason}"));
    }
    let report = &job["details"]["junit"];
    if report.is_object() {
        lines.extend(tests(report));
    }
    if let Some(files) = files {
        lines.extend(artifacts(job, files));
    }
    lines
}

/// What the job waits for, from the API's `waiting` object.
fn waiting(job: &Value) -> Option<String> {
    let waiting = &job["waiting"];
    let list = |key: &str, each: fn(&Value) -> String| {
        let items: Vec<String> = waiting[key]
            .as_array()
            .into_iter()
            .flatten()
            .map(each)
            .collect();
        items.join(", ")
    };
    let job_ref = |job: &Value| {
        format!(
            "#{} {} ({})",
            text(&job["id"]),
            text(&job["name"]),
            text(&job["status"])
        )
    };
    let agent = |agent: &Value| text(&agent["name"]);
    let tags = list("tags", text);
    let with_tags = if tags.is_empty() {
        "agent".to_string()
    } else {
        format!("agent with the tags {tags}")
    };
    Some(match waiting["reason"].as_str()? {
        "stage" => format!("the earlier stages' jobs {}", list("jobs", job_ref)),
        "needs" => format!("the jobs it needs, {}", list("jobs", job_ref)),
        "manual" => format!(
            "someone to start this manual job (esteira job play {})",
            text(&job["id"])
        ),
        "resource_group" => {
            let group = text(&waiting["group"]);
            let holder = &waiting["holder"];
            if holder.is_object() {
                format!(
                    "resource group {group}, held by job {} of pipeline {}",
                    job_ref(&holder["job"]),
                    text(&holder["pipeline"])
                )
            } else {
                format!("the next turn of resource group {group}")
            }
        }
        "no_online_agent" => {
            let offline = list("offline", agent);
            if offline.is_empty() {
                format!("no online {with_tags}, and no registered agent would take it")
            } else {
                format!("no online {with_tags}; offline agents that would take it: {offline}")
            }
        }
        "agents_paused" => format!(
            "every online {with_tags} is paused: {}",
            list("paused", agent)
        ),
        "agents_busy" => format!(
            "every {with_tags} is busy ({}); this job is {} of {} in their queue",
            list("agents", agent),
            text(&waiting["position"]),
            text(&waiting["queued"])
        ),
        other => other.to_string(),
    })
}

fn count(value: &Value) -> u64 {
    value.as_u64().unwrap_or(0)
}

fn tests(report: &Value) -> Vec<String> {
    let failed = count(&report["failures"]) + count(&report["errors"]);
    let skipped = count(&report["skipped"]);
    let total = count(&report["tests"]);
    let passed = total.saturating_sub(failed + skipped);
    let mut lines = vec![format!(
        "tests: {total} total, {passed} passed, {failed} failed, {skipped} skipped"
    )];
    for test in report["failed"].as_array().into_iter().flatten() {
        let name = match test["classname"].as_str().filter(|c| !c.is_empty()) {
            Some(class) => format!("{class}.{}", text(&test["name"])),
            None => text(&test["name"]),
        };
        let message = test["message"].as_str().unwrap_or_default();
        let message = message.lines().next().unwrap_or_default();
        lines.push(
            format!("  failed: {name}: {message}")
                .trim_end()
                .to_string(),
        );
    }
    lines
}

fn artifacts(job: &Value, listing: &Value) -> Vec<String> {
    let mut lines = vec![format!(
        "artifacts: {} files, {} (esteira job artifacts {})",
        text(&listing["count"]),
        size(count(&job["artifacts_size"])),
        text(&job["id"])
    )];
    let files = listing["files"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let width = files
        .iter()
        .map(|file| text(&file["path"]).chars().count())
        .max()
        .unwrap_or(0);
    for file in files {
        lines.push(format!(
            "  {:<width$}  {}",
            text(&file["path"]),
            size(count(&file["size"]))
        ));
    }
    if listing["truncated"].as_bool() == Some(true) {
        lines.push(format!(
            "  …and {} more",
            count(&listing["count"]) - files.len() as u64
        ));
    }
    lines
}

/// Bytes for people: `512 B`, `1.5 KiB`, `20.0 MiB`.
fn size(bytes: u64) -> String {
    const UNITS: [&str; 3] = ["KiB", "MiB", "GiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_failed_job_shows_its_reason_tests_and_artifacts() {
        let job = json!({
            "id": 7, "name": "unit", "stage": "test", "attempt": 2, "status": "failed",
            "pipeline_id": 3, "agent_id": 1, "exit_code": 1, "started_at": 1000,
            "finished_at": 3500, "coverage": 87.349, "failure_message": "the script exited with code 1",
            "artifacts_size": 1536,
            "details": {"junit": {"tests": 5, "failures": 1, "errors": 1, "skipped": 1,
                "failed": [{"classname": "api.Users", "name": "test_create", "message": "expected 201\ngot 500"},
                           {"classname": "", "name": "boot", "message": ""}]}}
        });
        let files = json!({"files": [{"path": "report.xml", "size": 300}, {"path": "dist/app.whl", "size": 1236}],
                           "count": 2, "truncated": false});
        assert_eq!(
            describe(&job, Some(&files)),
            vec![
                "job 7 unit (stage test, attempt 2): failed",
                "pipeline 3, agent #1, exit code 1, took 2.5s, coverage 87.35%",
                "reason: the script exited with code 1",
                "tests: 5 total, 2 passed, 2 failed, 1 skipped",
                "  failed: api.Users.test_create: expected 201",
                "  failed: boot:",
                "artifacts: 2 files, 1.5 KiB (esteira job artifacts 7)",
                "  report.xml    300 B",
                "  dist/app.whl  1.2 KiB",
            ]
        );
    }

    #[test]
    fn a_pending_job_shows_only_what_it_has() {
        let job = json!({"id": 8, "name": "lint", "stage": "test", "attempt": 1, "status": "pending",
                         "pipeline_id": 3, "agent_id": null, "details": null});
        assert_eq!(
            describe(&job, None),
            vec!["job 8 lint (stage test, attempt 1): pending", "pipeline 3"]
        );
    }

    #[test]
    fn a_waiting_job_says_what_it_waits_for() {
        let waiting = |waiting: Value| {
            let job = json!({"id": 8, "name": "deploy", "stage": "deploy", "attempt": 1,
                             "status": "pending", "pipeline_id": 3, "waiting": waiting});
            describe(&job, None).remove(2)
        };
        let build = json!({"id": 5, "name": "build", "stage": "build", "status": "running"});
        assert_eq!(
            waiting(
                json!({"reason": "stage", "jobs": [build, {"id": 6, "name": "lint", "status": "pending"}]})
            ),
            "waiting: the earlier stages' jobs #5 build (running), #6 lint (pending)"
        );
        assert_eq!(
            waiting(json!({"reason": "needs", "jobs": [build]})),
            "waiting: the jobs it needs, #5 build (running)"
        );
        assert_eq!(
            waiting(json!({"reason": "manual"})),
            "waiting: someone to start this manual job (esteira job play 8)"
        );
        assert_eq!(
            waiting(json!({"reason": "resource_group", "group": "production",
                           "holder": {"job": build, "pipeline": 2}})),
            "waiting: resource group production, held by job #5 build (running) of pipeline 2"
        );
        assert_eq!(
            waiting(
                json!({"reason": "no_online_agent", "tags": ["gpu", "linux"],
                           "offline": [{"id": 1, "name": "big"}]})
            ),
            "waiting: no online agent with the tags gpu, linux; offline agents that would take it: big"
        );
        assert_eq!(
            waiting(json!({"reason": "no_online_agent", "tags": [], "offline": []})),
            "waiting: no online agent, and no registered agent would take it"
        );
        assert_eq!(
            waiting(
                json!({"reason": "agents_paused", "tags": ["gpu"], "paused": [{"id": 1, "name": "big"}]})
            ),
            "waiting: every online agent with the tags gpu is paused: big"
        );
        assert_eq!(
            waiting(
                json!({"reason": "agents_busy", "tags": [], "agents": [{"id": 1, "name": "a"}],
                           "position": 2, "queued": 3})
            ),
            "waiting: every agent is busy (a); this job is 2 of 3 in their queue"
        );
    }

    #[test]
    fn sizes_read_well() {
        assert_eq!(size(0), "0 B");
        assert_eq!(size(1023), "1023 B");
        assert_eq!(size(20 << 20), "20.0 MiB");
        assert_eq!(size(3 << 30), "3.0 GiB");
    }
}
