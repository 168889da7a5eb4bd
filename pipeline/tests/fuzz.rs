//! Property tests on hostile input: thousands of generated documents and `rules:if`
//! expressions go through lint and planning without a panic or a hang, and an alias bomb
//! ("billion laughs") is refused quickly with a clear error.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use esteira_pipeline::{EventContext, MemorySource, PipelineSource, RefKind, lint, plan_pipeline};
use proptest::prelude::*;

fn context() -> EventContext {
    EventContext {
        git_ref: RefKind::Branch("main".into()),
        sha: "0123456789abcdef".into(),
        source: PipelineSource::Push,
        changed_files: Some(vec!["src/a.rs".into()]),
        variables: BTreeMap::from([
            ("A".to_string(), "a".to_string()),
            ("EMPTY".to_string(), String::new()),
        ]),
        overriding_variables: BTreeMap::new(),
        project_path: "g/p".into(),
    }
}

/// Lints and plans `text` as the pipeline file; only a panic fails.
fn exercise(text: &str) {
    let files =
        MemorySource::from_files([(".gitlab-ci.yml", text), ("inc.yml", "x:\n  script: [y]\n")]);
    let _ = lint(&files, ".gitlab-ci.yml");
    let _ = plan_pipeline(&files, ".gitlab-ci.yml", &context());
}

/// Pieces of YAML that combine into documents full of anchors, aliases, merge keys,
/// flow collections, tags and GitLab keywords.
fn fragment() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "a:",
        "job:",
        ".hidden:",
        "  ",
        "    ",
        "\n",
        "- ",
        "&x ",
        "*x",
        "&y ",
        "*y",
        "<<: ",
        "<<: [*x, *y]",
        "{",
        "}",
        "[",
        "]",
        ", ",
        ": ",
        "!reference [.hidden, script]",
        "!!str ",
        "!custom ",
        "script: [echo]",
        "stage: test",
        "stages: [test]",
        "extends: .hidden",
        "extends: job",
        "needs: [job]",
        "needs: []",
        "parallel: 3",
        "parallel: {matrix: [{A: [1, 2]}]}",
        "rules: [{if: $A}]",
        "only: [/ma(in/]",
        "include: inc.yml",
        "include: [{local: '*.yml'}]",
        "variables: {A: 1}",
        "when: manual",
        "'quoted'",
        "\"dq\\u0041\"",
        "|\n  block",
        ">-\n  folded",
        "~",
        "null",
        "yes",
        "0x1F",
        "1.5e3",
        "#c",
        "---\n",
        "...\n",
        "%YAML 1.2\n",
        "\t",
        "€",
        "\u{0}",
    ])
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn yaml_from_fragments_never_panics(parts in prop::collection::vec(fragment(), 0..40)) {
        exercise(&parts.concat());
    }

    #[test]
    fn arbitrary_text_never_panics(text in "[a-z.:&*!<>|'\"\\-\\[\\]{}, \n\t#$%@~?=()/\\\\0-9]{0,300}") {
        exercise(&text);
    }

    #[test]
    fn rules_if_expressions_never_panic(expr in "[$A-Z_a-z ()=!~&|'\"/.*+?^\\[\\]{}\\\\0-9nul]{0,80}") {
        let quoted = expr.replace('\'', "''");
        exercise(&format!("j:\n  script: [x]\n  rules:\n    - if: '{quoted}'\n  only_for_lint: 1\nk:\n  script: [x]\n  rules:\n    - if: '{quoted}'\n"));
    }
}

#[test]
fn alias_bomb_is_refused_quickly() {
    let mut text = String::from("a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for level in 1..=9 {
        let previous = format!("*a{}", level - 1);
        text.push_str(&format!(
            "a{level}: &a{level} [{}]\n",
            [previous.as_str(); 10].join(", ")
        ));
    }
    text.push_str("job:\n  script: *a9\n");
    let started = Instant::now();
    let diagnostics = lint(
        &MemorySource::from_files([(".gitlab-ci.yml", text.as_str())]),
        ".gitlab-ci.yml",
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(diagnostics.len(), 1);
    assert!(
        diagnostics[0].message.contains("alias bomb"),
        "{}",
        diagnostics[0]
    );
}

#[test]
fn deep_nesting_is_handled() {
    let deep = format!("a: {}{}\n", "[".repeat(100_000), "]".repeat(100_000));
    exercise(&deep);
    let diagnostics = lint(
        &MemorySource::from_files([(".gitlab-ci.yml", deep.as_str())]),
        ".gitlab-ci.yml",
    );
    let refused = |m: &str| m.contains("nested deeper") || m.contains("recursion limit");
    assert!(
        diagnostics.iter().any(|d| refused(&d.message)),
        "{diagnostics:?}"
    );
    let expr = format!(
        "j:\n  script: [x]\n  rules:\n    - if: '{}$A{}'\n",
        "(".repeat(500),
        ")".repeat(500)
    );
    let diagnostics = lint(
        &MemorySource::from_files([(".gitlab-ci.yml", expr.as_str())]),
        ".gitlab-ci.yml",
    );
    assert!(
        diagnostics
            .iter()
            .any(|d| d.message.contains("nested deeper")),
        "{diagnostics:?}"
    );
}
