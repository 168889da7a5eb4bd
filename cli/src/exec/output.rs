//! What `esteira exec` prints: the plan (`--dry-run`), each job's log line by line behind
//! the job's name (so that jobs running at once stay apart), a line when a job starts and
//! ends, and the summary table. Colours stay when stdout is a terminal; elsewhere (a file,
//! a pipe, a test) the terminal escapes are taken out.

use std::io::{IsTerminal, Write};

use bytes::Bytes;
use esteira_pipeline::{Plan, PlannedJob};
use tokio::sync::mpsc::Receiver;

use super::plan::Choice;
use super::run::JobReport;

pub struct Output {
    /// The width of the job-name column.
    width: usize,
    /// Whether terminal escapes go through.
    color: bool,
}

impl Output {
    pub fn new(plan: &Plan) -> Output {
        Output {
            width: plan
                .jobs
                .iter()
                .map(|job| job.name.chars().count())
                .max()
                .unwrap_or(0),
            color: std::io::stdout().is_terminal(),
        }
    }

    /// The stages and jobs, each job with whether it runs and why not.
    pub fn plan(&self, plan: &Plan, choices: &[Choice]) {
        let mut out = std::io::stdout().lock();
        for stage in &plan.stages {
            let _ = writeln!(out, "stage {stage}");
            for (job, choice) in plan.jobs.iter().zip(choices) {
                if job.stage != *stage {
                    continue;
                }
                let note = match choice {
                    Choice::Runs => "runs".to_string(),
                    Choice::NeededBy(by) => format!("runs: needed by '{by}'"),
                    Choice::Out(reason) => format!("out: {reason}"),
                };
                let _ = writeln!(out, "  {:<width$}  {note}", job.name, width = self.width);
            }
        }
        let _ = writeln!(
            out,
            "(jobs that rules, only/except or when: never leave out for this ref are not in the plan)"
        );
    }

    pub fn job_started(&self, job: &PlannedJob) {
        self.line(
            &job.name,
            &format!("--- job {} (stage {}) started", job.name, job.stage),
        );
    }

    pub fn job_ended(&self, report: &JobReport) {
        let mut text = format!("--- job {} {}", report.name, report.status.label());
        if let Some(reason) = &report.reason {
            text.push_str(&format!(": {reason}"));
        }
        self.line(&report.name, &text);
    }

    /// Prints the job's log as it arrives, line by line; a last line without its newline
    /// is printed when the log ends.
    pub async fn stream(&self, job: &str, mut log: Receiver<Bytes>) {
        let mut pending = Vec::new();
        while let Some(chunk) = log.recv().await {
            pending.extend_from_slice(&chunk);
            while let Some(end) = pending.iter().position(|byte| *byte == b'\n') {
                let line: Vec<u8> = pending.drain(..=end).collect();
                self.line(job, &String::from_utf8_lossy(&line[..end]));
            }
        }
        if !pending.is_empty() {
            self.line(job, &String::from_utf8_lossy(&pending));
        }
    }

    /// One line behind the job's name.
    fn line(&self, job: &str, text: &str) {
        let text = if self.color {
            text.to_string()
        } else {
            without_escapes(text)
        };
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{job:<width$} | {text}", width = self.width);
    }

    /// The table of every planned job: stage, status, duration, reason.
    pub fn summary(&self, reports: &[JobReport], succeeded: bool) {
        let rows: Vec<Vec<String>> = reports
            .iter()
            .map(|report| {
                vec![
                    report.stage.clone(),
                    report.name.clone(),
                    report.status.label().to_string(),
                    report
                        .duration
                        .map(|took| format!("{:.1}s", took.as_secs_f64()))
                        .unwrap_or_else(|| "-".to_string()),
                    report.reason.clone().unwrap_or_default(),
                ]
            })
            .collect();
        println!();
        crate::print_table(&["STAGE", "JOB", "STATUS", "DURATION", "REASON"], &rows);
        let ran = reports
            .iter()
            .filter(|report| report.duration.is_some())
            .count();
        let verdict = if succeeded { "succeeded" } else { "failed" };
        println!("pipeline {verdict} ({ran} of {} jobs run)", reports.len());
    }
}

/// `text` without terminal escape sequences (`ESC [ ... letter`) and carriage returns.
fn without_escapes(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\x1b' => {
                if chars.next() == Some('[') {
                    chars.find(|c| c.is_ascii_alphabetic());
                }
            }
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_are_taken_out() {
        assert_eq!(
            without_escapes("\x1b[0K\x1b[32;1m$ echo hi\x1b[0;m\r"),
            "$ echo hi"
        );
        assert_eq!(without_escapes("plain"), "plain");
    }
}
