//! Time to lint and plan two large pipelines, median of several runs:
//! Kitware/CMake's `.gitlab-ci.yml` (158 jobs; its local includes, not in the corpus, are
//! replaced by stubs defining every template it extends) and a generated 2,000-job file.
//!
//! Run: `cargo bench -p esteira-pipeline --bench plan`

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use esteira_pipeline::{EventContext, MemorySource, PipelineSource, RefKind, lint, plan_pipeline};

const RUNS: usize = 15;

fn main() {
    let kitware = kitware_files();
    let generated = generated_files(2_000);
    for (label, files) in [
        ("Kitware/CMake (158 jobs)", &kitware),
        ("generated (2000 jobs)", &generated),
    ] {
        let source = MemorySource::from_files(files.iter().map(|(p, t)| (p.as_str(), t.as_str())));
        let ctx = context();
        let diagnostics = lint(&source, ".gitlab-ci.yml");
        assert!(
            diagnostics.is_empty(),
            "{label}: {}",
            diagnostics
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        );
        let jobs = plan_pipeline(&source, ".gitlab-ci.yml", &ctx)
            .map(|p| p.jobs.len())
            .unwrap_or(0);
        let lint_time = median(|| {
            std::hint::black_box(lint(&source, ".gitlab-ci.yml"));
        });
        let plan_time = median(|| {
            let _ = std::hint::black_box(plan_pipeline(&source, ".gitlab-ci.yml", &ctx));
        });
        println!(
            "{label}: lint {:.2} ms, plan {:.2} ms ({jobs} jobs planned), median of {RUNS}",
            ms(lint_time),
            ms(plan_time)
        );
    }
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

fn median(mut run: impl FnMut()) -> Duration {
    let mut times: Vec<Duration> = (0..RUNS)
        .map(|_| {
            let started = Instant::now();
            run();
            started.elapsed()
        })
        .collect();
    times.sort();
    times[RUNS / 2]
}

fn context() -> EventContext {
    EventContext {
        git_ref: RefKind::Branch("master".into()),
        sha: "03676b051d5a1302c8b17bb6b3325ee38acab914".into(),
        source: PipelineSource::Push,
        changed_files: None,
        variables: BTreeMap::new(),
        overriding_variables: BTreeMap::new(),
        project_path: "cmake/cmake".into(),
    }
}

/// Kitware's file, with each missing include present: the first one defines a stub for
/// every template the file extends or references.
fn kitware_files() -> Vec<(String, String)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/gitlab-ci/Kitware__CMake.yml");
    let root = std::fs::read_to_string(path).expect("the Kitware fixture is readable");
    let mut files = vec![(".gitlab-ci.yml".to_owned(), root.clone())];
    let diagnostics = lint(
        &MemorySource::from_files([(".gitlab-ci.yml", root.as_str())]),
        ".gitlab-ci.yml",
    );
    let mut includes = Vec::new();
    let mut templates = Vec::new();
    for d in &diagnostics {
        if let Some(rest) = d.message.strip_prefix("included file '") {
            includes.extend(rest.split('\'').next().map(str::to_owned));
        }
        if let Some(rest) = d.message.strip_prefix("extends '") {
            templates.extend(rest.split('\'').next().map(str::to_owned));
        }
        if let Some(rest) = d.message.strip_prefix("!reference [") {
            templates.extend(rest.split(',').next().map(str::to_owned));
        }
    }
    templates.sort();
    templates.dedup();
    let mut stubs = String::new();
    for template in &templates {
        let _ = writeln!(
            stubs,
            "{template}:\n  script: [./ci/{}.sh]\n  tags: [linux]\n",
            template.trim_start_matches('.')
        );
    }
    for (i, include) in includes.iter().enumerate() {
        files.push((
            include.clone(),
            if i == 0 { stubs.clone() } else { String::new() },
        ));
    }
    files
}

/// A pipeline of `jobs` jobs over five stages, with templates, anchors, rules and needs.
fn generated_files(jobs: usize) -> Vec<(String, String)> {
    let mut text = String::from(
        "stages: [build, test, package, deploy, cleanup]\n\
         variables: {GLOBAL: value, REGISTRY: registry.example}\n\
         .base: &base\n  image: $REGISTRY/ci:latest\n  tags: [linux]\n  retry: 1\n\
         .rules: &rules\n  rules:\n    - if: $CI_COMMIT_TAG\n      when: never\n    - if: $CI_COMMIT_BRANCH =~ /^(master|main)$/ && $GLOBAL == \"value\"\n    - when: manual\n      allow_failure: true\n",
    );
    let stages = ["build", "test", "package", "deploy", "cleanup"];
    let per_stage = jobs / stages.len();
    for (s, stage) in stages.iter().enumerate() {
        for i in 0..per_stage {
            let _ = write!(
                text,
                "{stage}-{i}:\n  <<: *base\n  extends: .rules\n  stage: {stage}\n  variables: {{INDEX: \"{i}\"}}\n  script:\n    - echo {stage} $INDEX\n    - make {stage}\n  artifacts:\n    paths: [out/{stage}-{i}/]\n"
            );
            if s > 0 {
                let _ = writeln!(text, "  needs: [{}-{i}]", stages[s - 1]);
            }
        }
    }
    vec![(".gitlab-ci.yml".to_owned(), text)]
}
