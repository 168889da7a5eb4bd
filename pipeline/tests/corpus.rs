//! The real pipeline files of `tests/fixtures/gitlab-ci/` (see its SOURCES.tsv): each
//! lints without error apart from what cannot work offline or in esteira (includes of other
//! projects, templates and remote files, missing local include files, downstream
//! `trigger` pipelines, GitLab Pages), each such error naming what it refuses; and their
//! plans for the default branch and for a tag match the snapshots in `tests/snapshots/`.
//!
//! A missing snapshot is written; set `ESTEIRA_UPDATE_SNAPSHOTS=1` to rewrite them all.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use esteira_pipeline::{
    Diagnostic, DirSource, EventContext, PipelineSource, RefKind, lint, plan_pipeline,
    render_plan_json,
};

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/gitlab-ci")
}

fn corpus_files() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(corpus_dir())
        .expect("the corpus directory exists")
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .filter(|n| n.ends_with(".yml"))
        .collect();
    names.sort();
    names
}

/// The errors an offline esteira is allowed to give on a real file.
fn is_offline_limitation(d: &Diagnostic) -> bool {
    let m = &d.message;
    (m.starts_with("include:") && m.contains("cannot be resolved offline"))
        || m.starts_with("include:remote")
        || (m.starts_with("included file '") && m.contains("does not exist"))
        || m.contains("not supported by esteira")
        || m.contains("GitLab Pages")
}

/// Errors that follow from content missing because an include could not be read (or,
/// for a file that is itself included by another, defined in its siblings).
fn is_consequence_of_missing_content(d: &Diagnostic) -> bool {
    let m = &d.message;
    m.contains("which is not defined")
        || m.contains("is not defined in stages")
        || m.contains("which is not a job of this pipeline")
        || m.contains("which runs in a later stage")
        || (m.starts_with("!reference [") && m.ends_with("is not defined"))
        || m.starts_with("a job needs 'script'")
        || m.ends_with("not null")
}

/// Files of the corpus that another file includes (SOURCES.tsv notes "included file").
fn is_included_fragment(name: &str) -> bool {
    let sources = std::fs::read_to_string(corpus_dir().join("SOURCES.tsv")).unwrap_or_default();
    sources
        .lines()
        .any(|line| line.starts_with(name) && line.contains("included file"))
}

#[test]
fn corpus_lints_apart_from_offline_limitations() {
    let files = DirSource::new(corpus_dir());
    let mut unexpected = Vec::new();
    for name in corpus_files() {
        let diagnostics = lint(&files, &name);
        let missing_content = is_included_fragment(&name)
            || diagnostics
                .iter()
                .any(|d| is_offline_limitation(d) && d.message.starts_with("include"));
        for diagnostic in diagnostics {
            let excused = is_offline_limitation(&diagnostic)
                || (missing_content && is_consequence_of_missing_content(&diagnostic));
            if !excused {
                unexpected.push(diagnostic.to_string());
            }
        }
    }
    assert!(
        unexpected.is_empty(),
        "unexpected diagnostics:\n{}",
        unexpected.join("\n")
    );
}

fn context(git_ref: RefKind) -> EventContext {
    EventContext {
        git_ref,
        sha: "0123456789abcdef0123456789abcdef01234567".into(),
        source: PipelineSource::Push,
        changed_files: None,
        variables: BTreeMap::from([
            ("CI_DEFAULT_BRANCH".to_string(), "main".to_string()),
            ("CI_REGISTRY".to_string(), "registry.example".to_string()),
            (
                "CI_REGISTRY_IMAGE".to_string(),
                "registry.example/group/project".to_string(),
            ),
        ]),
        overriding_variables: BTreeMap::new(),
        project_path: "group/project".into(),
    }
}

/// The plan as JSON, or the diagnostics (one per line) when it cannot be made.
fn plan_snapshot(files: &DirSource, name: &str, git_ref: RefKind) -> String {
    match plan_pipeline(files, name, &context(git_ref)) {
        Ok(plan) => render_plan_json(&plan) + "\n",
        Err(diagnostics) => diagnostics.iter().map(|d| format!("{d}\n")).collect(),
    }
}

fn check_snapshot(name: &str, actual: &str) -> Option<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots")
        .join(name);
    let update = std::env::var_os("ESTEIRA_UPDATE_SNAPSHOTS").is_some();
    match std::fs::read_to_string(&path) {
        Ok(expected) if !update => {
            (expected != actual).then(|| format!("{} differs from the plan", path.display()))
        }
        _ => std::fs::write(&path, actual)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))
            .err(),
    }
}

#[test]
fn corpus_plans_match_snapshots() {
    let files = DirSource::new(corpus_dir());
    let mut failures = Vec::new();
    for name in corpus_files() {
        let stem = name.trim_end_matches(".yml");
        let runs = [
            ("main", RefKind::Branch("main".into())),
            ("master", RefKind::Branch("master".into())),
            ("tag", RefKind::Tag("v1.2.3".into())),
        ];
        for (label, git_ref) in runs {
            let snapshot = plan_snapshot(&files, &name, git_ref);
            failures.extend(check_snapshot(&format!("{stem}.{label}.json"), &snapshot));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
