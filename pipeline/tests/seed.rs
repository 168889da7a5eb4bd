//! The seed's pipeline (BRIEF: "a push to devel runs test → release → deploy to staging; a
//! push to master runs test → release → deploy to production; any other branch runs only
//! test").

use std::collections::BTreeMap;

use esteira_pipeline::{
    EventContext, MemorySource, PipelineSource, Plan, RefKind, lint, plan_pipeline,
};

const SEED: &str = include_str!("fixtures/seed.gitlab-ci.yml");

fn plan_for(branch: &str) -> Plan {
    let files = MemorySource::from_files([(".gitlab-ci.yml", SEED)]);
    let ctx = EventContext {
        git_ref: RefKind::Branch(branch.into()),
        sha: "d7fd8b005d3df456aaaabbbbccccddddeeeeffff".into(),
        source: PipelineSource::Push,
        changed_files: None,
        variables: BTreeMap::from([(
            "CI_REGISTRY_IMAGE".to_string(),
            "127.0.0.1:5000/seed/api".to_string(),
        )]),
        overriding_variables: BTreeMap::new(),
        project_path: "seed/api".into(),
    };
    plan_pipeline(&files, ".gitlab-ci.yml", &ctx).unwrap_or_else(|d| panic!("{d:?}"))
}

fn names(plan: &Plan) -> Vec<&str> {
    plan.jobs.iter().map(|j| j.name.as_str()).collect()
}

#[test]
fn seed_lints_clean() {
    let files = MemorySource::from_files([(".gitlab-ci.yml", SEED)]);
    assert_eq!(lint(&files, ".gitlab-ci.yml"), vec![]);
}

#[test]
fn feature_branch_runs_only_tests() {
    let plan = plan_for("feature/x");
    assert_eq!(names(&plan), ["unit-tests", "pycodestyle"]);
    assert_eq!(plan.stages, ["test"]);
    assert_eq!(plan.jobs[0].coverage.as_deref(), Some(r"TOTAL.*\s+(\d+%)$"));
    assert_eq!(
        plan.jobs[0].image.as_ref().map(|i| i.name.as_str()),
        Some("seed-python:3.11")
    );
}

#[test]
fn devel_adds_release_and_staging() {
    let plan = plan_for("devel");
    assert_eq!(
        names(&plan),
        ["unit-tests", "pycodestyle", "release", "deploy-staging"]
    );
    let release = plan.jobs[2].build.as_ref().unwrap();
    assert_eq!(
        release.tags,
        [
            "127.0.0.1:5000/seed/api:d7fd8b00",
            "127.0.0.1:5000/seed/api:devel"
        ]
    );
    assert_eq!(release.args["VERSION"], "d7fd8b00");
    let deploy_job = &plan.jobs[3];
    let deploy = deploy_job.deploy.as_ref().unwrap();
    assert_eq!(deploy.image, "127.0.0.1:5000/seed/api:d7fd8b00");
    assert_eq!(deploy.service, "seed-api-staging");
    assert_eq!(deploy.ports, ["18081:8000"]);
    assert_eq!(deploy.env["APP_ENV"], "staging");
    let environment = deploy_job.environment.as_ref().unwrap();
    assert_eq!(
        (
            environment.name.as_str(),
            environment.deployment_tier.as_str()
        ),
        ("staging", "staging")
    );
    assert_eq!(deploy_job.tags, ["staging"]);
}

#[test]
fn master_adds_release_and_production() {
    let plan = plan_for("master");
    assert_eq!(
        names(&plan),
        ["unit-tests", "pycodestyle", "release", "deploy-production"]
    );
    assert_eq!(plan.stages, ["test", "release", "deploy"]);
    let deploy = plan.jobs[3].deploy.as_ref().unwrap();
    assert_eq!(deploy.service, "seed-api-production");
    assert_eq!(
        deploy.health.as_ref().and_then(|h| h.http.as_deref()),
        Some("http://127.0.0.1:18080/health")
    );
    assert_eq!(
        plan.jobs[3]
            .environment
            .as_ref()
            .map(|e| e.deployment_tier.as_str()),
        Some("production")
    );
}

/// The plans as `esteira lint --plan` shows them, kept in `tests/snapshots/seed.*.txt`
/// (written when missing, or with `ESTEIRA_UPDATE_SNAPSHOTS=1`).
#[test]
fn plans_as_shown_match_snapshots() {
    for branch in ["feature/x", "devel", "master"] {
        let shown = esteira_pipeline::render_plan_text(&plan_for(branch));
        let name = format!("seed.{}.txt", branch.replace('/', "-"));
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/snapshots")
            .join(name);
        match std::fs::read_to_string(&path) {
            Ok(expected) if std::env::var_os("ESTEIRA_UPDATE_SNAPSHOTS").is_none() => {
                assert_eq!(shown, expected, "{} differs", path.display())
            }
            _ => std::fs::write(&path, &shown).expect("the snapshot directory is writable"),
        }
    }
}
