//! The forge parsers against the shared corpus's real payloads (as copied, with their
//! source lines, under `tests/fixtures/webhooks/`).

use axum::http::HeaderMap;
use serde_json::Value;

use super::event::{EventKind, Parsed};
use super::{detect, form_field, gitea, github, gitlab, payload_json};
use crate::store::projects::Forge;

fn fixture(name: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/webhooks")
        .join(name);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes).expect("fixture JSON")
}

fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.insert(*name, value.parse().expect("header"));
    }
    map
}

fn event(parsed: Parsed) -> super::GitEvent {
    match parsed {
        Parsed::Event(event) => event,
        Parsed::Ignored { reason, .. } => panic!("ignored: {reason}"),
    }
}

fn var<'a>(event: &'a super::GitEvent, key: &str) -> &'a str {
    event
        .variables
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no {key}"))
}

#[test]
fn gitlab_push_tag_and_merge_request() {
    let h = headers(&[("x-gitlab-event", "Push Hook")]);
    let push = event(gitlab::parse(&h, &fixture("gitlab-push-1.json")).expect("parse"));
    assert_eq!(push.kind, EventKind::Push);
    assert_eq!(push.git_ref, "master");
    assert_eq!(push.sha, "2adc9465c4edfc33834e173fe89436a7cb899a1d");
    assert_eq!(
        push.before.as_deref(),
        Some("9217710ce8c7e1eae7a5d1c45f6e43e1c769f866")
    );
    assert_eq!(push.changed_files, Some(vec!["README.md".to_string()]));
    // 2 commits shown of 4: the list is incomplete, so the mirror's diff decides.
    let truncated = event(gitlab::parse(&h, &fixture("gitlab-push-2.json")).expect("parse"));
    assert_eq!(truncated.changed_files, None);
    let deleted = gitlab::parse(&h, &fixture("gitlab-push-4.json")).expect("parse");
    assert!(matches!(deleted, Parsed::Ignored { .. }), "{deleted:?}");

    let t = headers(&[("x-gitlab-event", "Tag Push Hook")]);
    let tag = event(gitlab::parse(&t, &fixture("gitlab-tag_push-1.json")).expect("parse"));
    assert_eq!(
        (tag.kind, tag.git_ref.as_str()),
        (EventKind::TagPush, "v1.0.0")
    );
    assert!(tag.before.is_none());
    let tag_deleted = gitlab::parse(&t, &fixture("gitlab-tag_push-4.json")).expect("parse");
    assert!(matches!(tag_deleted, Parsed::Ignored { .. }));

    let m = headers(&[("x-gitlab-event", "Merge Request Hook")]);
    let mr = event(gitlab::parse(&m, &fixture("gitlab-merge_request-1.json")).expect("parse"));
    assert_eq!(mr.kind, EventKind::MergeRequest);
    assert_eq!(mr.git_ref, "feature");
    assert_eq!(mr.sha, "c4c79227ed610f1151f05bbc5be33b4f340d39c8");
    assert_eq!(var(&mr, "CI_MERGE_REQUEST_IID"), "1");
    assert_eq!(var(&mr, "CI_MERGE_REQUEST_TARGET_BRANCH_NAME"), "master");
    assert_eq!(var(&mr, "CI_MERGE_REQUEST_TITLE"), "update readme");
    assert_eq!(
        mr.key(),
        "merge_request:1:c4c79227ed610f1151f05bbc5be33b4f340d39c8"
    );
}

#[test]
fn github_push_pull_request_and_deletion() {
    let h = headers(&[("x-github-event", "push")]);
    let push = event(github::parse(&h, &fixture("github-push-2.json")).expect("parse"));
    assert_eq!(push.git_ref, "master");
    assert_eq!(push.sha, "199eddf46df50de8d02e99bf1c5fdb4101338224");
    let created = event(github::parse(&h, &fixture("github-push-3.json")).expect("parse"));
    assert!(created.before.is_none(), "a new branch has no before");
    let deleted = github::parse(&h, &fixture("github-push-1.json")).expect("parse");
    assert!(matches!(deleted, Parsed::Ignored { .. }));

    let p = headers(&[("x-github-event", "pull_request")]);
    for file in ["github-pull_request-1.json", "github-pull_request-2.json"] {
        let pr = event(github::parse(&p, &fixture(file)).expect("parse"));
        assert_eq!(pr.git_ref, "changes");
        assert_eq!(var(&pr, "CI_MERGE_REQUEST_IID"), "2");
        assert_eq!(var(&pr, "CI_MERGE_REQUEST_TARGET_BRANCH_NAME"), "master");
    }
    let mut closed = fixture("github-pull_request-1.json");
    closed["action"] = "closed".into();
    assert!(matches!(
        github::parse(&p, &closed).expect("parse"),
        Parsed::Ignored { .. }
    ));
    let other = headers(&[("x-github-event", "issues")]);
    assert!(matches!(
        github::parse(&other, &closed).expect("parse"),
        Parsed::Ignored { .. }
    ));
}

#[test]
fn gitea_and_forgejo() {
    let both = headers(&[("x-gitea-event", "push"), ("x-github-event", "push")]);
    assert_eq!(detect(&both), Some(Forge::Gitea));
    let push = event(gitea::parse(&both, &fixture("gitea-push-1.json")).expect("parse"));
    assert_eq!(push.sha, "4522cbcefc20728a5b72b3a86af35e608622c514");

    let tag = headers(&[("x-gitea-event", "create")]);
    let created = event(gitea::parse(&tag, &fixture("gitea-create_tag-1.json")).expect("parse"));
    assert_eq!(
        (created.kind, created.git_ref.as_str()),
        (EventKind::TagPush, "v1.0.0")
    );

    let pr_headers = headers(&[("x-gitea-event", "pull_request")]);
    let pr =
        event(gitea::parse(&pr_headers, &fixture("gitea-pull_request-1.json")).expect("parse"));
    assert_eq!(
        (pr.git_ref.as_str(), var(&pr, "CI_MERGE_REQUEST_IID")),
        ("feature", "1")
    );

    let forgejo = headers(&[
        ("x-forgejo-event", "push"),
        ("x-gitea-event", "push"),
        ("x-github-event", "push"),
    ]);
    assert_eq!(detect(&forgejo), Some(Forge::Forgejo));
    let push = event(gitea::parse(&forgejo, &fixture("forgejo-push-1.json")).expect("parse"));
    assert_eq!(push.git_ref, "main");
    assert_eq!(
        push.changed_files,
        Some(vec![
            "CHANGELOG.md".to_string(),
            "app/controller/application.rb".to_string()
        ])
    );
    let pr_headers = headers(&[("x-forgejo-event", "pull_request")]);
    let pr =
        event(gitea::parse(&pr_headers, &fixture("forgejo-pull_request-1.json")).expect("parse"));
    assert_eq!(pr.git_ref, "feature/changes");
}

#[test]
fn form_bodies_and_bad_json() {
    let form = headers(&[("content-type", "application/x-www-form-urlencoded")]);
    let body = b"payload=%7B%22ref%22%3A+%22x%22%7D&other=1";
    assert_eq!(
        form_field(body, "payload").as_deref(),
        Some(&b"{\"ref\": \"x\"}"[..])
    );
    assert_eq!(payload_json(&form, body).expect("json")["ref"], "x");
    assert!(payload_json(&HeaderMap::new(), b"{not json").is_err());
    assert!(payload_json(&HeaderMap::new(), b"[1]").is_err());
}

#[test]
fn pull_and_merge_requests_from_forks_run_on_the_forges_head_ref() {
    // The corpus's payloads, edited as forks (tests/fixtures/webhooks/SOURCES.tsv).
    let github = event(
        github::parse(
            &headers(&[("x-github-event", "pull_request")]),
            &fixture("github-pull_request-fork.json"),
        )
        .unwrap(),
    );
    assert_eq!(github.git_ref, "refs/pull/2/head");
    assert_eq!(
        var(&github, "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME"),
        "changes"
    );
    assert_eq!(
        var(&github, "CI_MERGE_REQUEST_SOURCE_PROJECT_PATH"),
        "octo-fork/Hello-World"
    );
    assert_eq!(
        var(&github, "CI_MERGE_REQUEST_PROJECT_PATH"),
        "Codertocat/Hello-World"
    );
    let gitlab = event(
        gitlab::parse(
            &HeaderMap::new(),
            &fixture("gitlab-merge_request-fork.json"),
        )
        .unwrap(),
    );
    assert_eq!(gitlab.git_ref, "refs/merge-requests/1/head");
    assert_eq!(
        var(&gitlab, "CI_MERGE_REQUEST_SOURCE_PROJECT_PATH"),
        "forker/hello-world"
    );
    // The same payloads unedited: same-project requests run on the source branch.
    let same = event(
        github::parse(
            &headers(&[("x-github-event", "pull_request")]),
            &fixture("github-pull_request-1.json"),
        )
        .unwrap(),
    );
    assert_eq!(same.git_ref, "changes");
    let same =
        event(gitlab::parse(&HeaderMap::new(), &fixture("gitlab-merge_request-1.json")).unwrap());
    assert_eq!(same.git_ref, "feature");
    // A pull request whose fork was deleted (head.repo null) is a fork's too.
    let mut gone = fixture("github-pull_request-1.json");
    gone["pull_request"]["head"]["repo"] = Value::Null;
    let gone =
        event(github::parse(&headers(&[("x-github-event", "pull_request")]), &gone).unwrap());
    assert_eq!(gone.git_ref, "refs/pull/2/head");
}

#[test]
fn merge_request_refs_are_recognised_exactly() {
    use super::event::is_merge_request_ref;
    assert!(is_merge_request_ref("refs/pull/12/head"));
    assert!(is_merge_request_ref("refs/merge-requests/3/head"));
    for other in [
        "refs/pull/12/merge",
        "refs/pull//head",
        "refs/pull/x/head",
        "refs/heads/main",
        "pull/1/head",
    ] {
        assert!(!is_merge_request_ref(other), "{other}");
    }
}
