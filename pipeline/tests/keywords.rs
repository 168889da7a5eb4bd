//! One test per keyword, each asserting the result GitLab documents. Comments name the
//! section of GitLab's "CI/CD YAML syntax reference" (docs.gitlab.com/ci/yaml/) or of the
//! page cited.

use std::collections::BTreeMap;

use esteira_pipeline::{
    AllowFailure, Diagnostic, EventContext, MemorySource, PipelineSource, Plan, PlannedJob,
    RefKind, When, lint, plan_pipeline,
};

fn ctx(git_ref: RefKind) -> EventContext {
    EventContext {
        git_ref,
        sha: "0123456789abcdef0123456789abcdef01234567".into(),
        source: PipelineSource::Push,
        changed_files: None,
        variables: BTreeMap::new(),
        overriding_variables: BTreeMap::new(),
        project_path: "group/project".into(),
    }
}

fn branch(name: &str) -> EventContext {
    ctx(RefKind::Branch(name.into()))
}

fn plan_with(files: &[(&str, &str)], context: &EventContext) -> Result<Plan, Vec<Diagnostic>> {
    plan_pipeline(
        &MemorySource::from_files(files.iter().copied()),
        ".gitlab-ci.yml",
        context,
    )
}

fn plan(yaml: &str, context: &EventContext) -> Plan {
    plan_with(&[(".gitlab-ci.yml", yaml)], context).unwrap_or_else(|d| panic!("{}", show(&d)))
}

fn errors(yaml: &str) -> Vec<Diagnostic> {
    lint(
        &MemorySource::from_files([(".gitlab-ci.yml", yaml)]),
        ".gitlab-ci.yml",
    )
}

fn show(diagnostics: &[Diagnostic]) -> String {
    diagnostics
        .iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

fn names(plan: &Plan) -> Vec<&str> {
    plan.jobs.iter().map(|j| j.name.as_str()).collect()
}

fn job<'p>(plan: &'p Plan, name: &str) -> &'p PlannedJob {
    plan.jobs
        .iter()
        .find(|j| j.name == name)
        .unwrap_or_else(|| panic!("no job {name} in {:?}", names(plan)))
}

fn var<'j>(job: &'j PlannedJob, key: &str) -> Option<&'j str> {
    job.variables
        .iter()
        .find(|v| v.key == key)
        .map(|v| v.value.as_str())
}

fn assert_error(yaml: &str, fragment: &str) {
    let found = errors(yaml);
    assert!(
        found.iter().any(|d| d.message.contains(fragment)),
        "no error containing {fragment:?} in:\n{}",
        show(&found)
    );
}

// "stages": default build, test, deploy; .pre first and .post last; a job's default stage is test.
#[test]
fn stages_default_and_pre_post() {
    let p = plan(
        "z:\n  stage: .post\n  script: [a]\nt:\n  script: [a]\np:\n  stage: .pre\n  script: [a]\nb:\n  stage: build\n  script: [a]\n",
        &branch("main"),
    );
    assert_eq!(p.stages, [".pre", "build", "test", ".post"]);
    assert_eq!(names(&p), ["p", "b", "t", "z"]);
    assert_error(
        "j:\n  stage: nope\n  script: [a]\n",
        "stage 'nope' is not defined",
    );
}

// "types" (deprecated): an alias of stages.
#[test]
fn deprecated_types() {
    let p = plan(
        "types: [one, two]\nj:\n  stage: two\n  script: [a]\n",
        &branch("main"),
    );
    assert_eq!(p.stages, ["two"]);
}

// "default": jobs take default keywords they do not set; a job's own value replaces the default (no merge).
#[test]
fn default_keywords_are_replaced_not_merged() {
    let yaml = "default:\n  image: ruby:3\n  before_script: [setup]\n  tags: [docker]\n\
                a:\n  script: [x]\nb:\n  image: {name: alpine, entrypoint: ['']}\n  tags: [other]\n  script: [x]\n";
    let p = plan(yaml, &branch("main"));
    let a = job(&p, "a");
    assert_eq!(a.image.as_ref().map(|i| i.name.as_str()), Some("ruby:3"));
    assert_eq!(a.before_script, ["setup"]);
    let b = job(&p, "b");
    assert_eq!(
        b.image.as_ref().unwrap().entrypoint,
        Some(vec![String::new()])
    );
    assert_eq!(b.tags, ["other"]);
    assert_eq!(b.before_script, ["setup"]);
}

// "inherit:default" and "inherit:variables": false, or a list of what to inherit.
#[test]
fn inherit() {
    let yaml = "variables: {A: '1', B: '2'}\ndefault:\n  image: ruby\n  before_script: [s]\n\
                j:\n  inherit: {default: [image], variables: [B]}\n  script: [x]\n";
    let p = plan(yaml, &branch("main"));
    let j = job(&p, "j");
    assert!(j.image.is_some());
    assert!(j.before_script.is_empty());
    assert_eq!(var(j, "A"), None);
    assert_eq!(var(j, "B"), Some("2"));
}

// "Deprecated keywords": global image, services, cache, before_script, after_script act as defaults.
#[test]
fn global_keywords_act_as_defaults() {
    let p = plan(
        "image: node\nbefore_script: [npm ci]\nj:\n  script: [x]\n",
        &branch("main"),
    );
    assert_eq!(
        job(&p, "j").image.as_ref().map(|i| i.name.as_str()),
        Some("node")
    );
    assert_eq!(job(&p, "j").before_script, ["npm ci"]);
}

// "variables": global then job (job wins); `value`/`description` form; numbers as text.
#[test]
fn variables_precedence_and_forms() {
    let yaml = "variables:\n  A: global\n  B: {value: described, description: shown in the UI}\n  N: 1.10\n\
                j:\n  variables: {A: job}\n  script: [x]\n";
    let p = plan(yaml, &branch("main"));
    let j = job(&p, "j");
    assert_eq!(var(j, "A"), Some("job"));
    assert_eq!(var(j, "B"), Some("described"));
    // YAML 1.1 reads 1.10 as a float, so GitLab sees "1.1".
    assert_eq!(var(j, "N"), Some("1.1"));
    assert_eq!(j.variables[0].key, "A");
}

// "extends": hashes merge deeply, arrays and scalars are replaced; several levels; several parents in order.
#[test]
fn extends_merges_hashes_and_replaces_arrays() {
    let yaml = ".base:\n  script: [base]\n  variables: {A: base, B: base}\n  tags: [t1, t2]\n\
                .mid:\n  extends: .base\n  variables: {B: mid}\n\
                .other:\n  variables: {C: other}\n  tags: [t3]\n\
                j:\n  extends: [.mid, .other]\n  script: [own]\n  variables: {A: own}\n";
    let p = plan(yaml, &branch("main"));
    let j = job(&p, "j");
    assert_eq!(j.script, ["own"]);
    assert_eq!(j.tags, ["t3"]);
    assert_eq!(var(j, "A"), Some("own"));
    assert_eq!(var(j, "B"), Some("mid"));
    assert_eq!(var(j, "C"), Some("other"));
    assert_error(
        "j:\n  extends: .missing\n  script: [x]\n",
        "extends '.missing', which is not defined",
    );
    assert_error(
        ".a:\n  extends: .b\n.b:\n  extends: .a\nj:\n  extends: .a\n  script: [x]\n",
        "circular extends",
    );
}

// "!reference tags": reuse a section of another job; nested lists in script are flattened.
#[test]
fn reference_tags() {
    let yaml = ".setup:\n  script: [one, two]\n  after_script: [cleanup]\n\
                j:\n  script:\n    - !reference [.setup, script]\n    - three\n  after_script: !reference [.setup, after_script]\n";
    let p = plan(yaml, &branch("main"));
    assert_eq!(job(&p, "j").script, ["one", "two", "three"]);
    assert_eq!(job(&p, "j").after_script, ["cleanup"]);
    assert_error(
        "j:\n  script: !reference [.nope, script]\n",
        "'.nope' is not defined",
    );
}

// "Hide a job": a job whose name starts with a dot is not processed.
#[test]
fn hidden_jobs_are_not_planned() {
    let p = plan(
        ".hidden:\n  script: [x]\nj:\n  script: [x]\n",
        &branch("main"),
    );
    assert_eq!(names(&p), ["j"]);
}

// YAML anchors and merge keys ("Optimize GitLab CI/CD configuration files").
#[test]
fn anchors_and_merge_keys() {
    let yaml = ".t: &t\n  image: ruby\n  script: [x]\nj:\n  <<: *t\n  script: [y]\n";
    let p = plan(yaml, &branch("main"));
    assert_eq!(
        job(&p, "j").image.as_ref().map(|i| i.name.as_str()),
        Some("ruby")
    );
    assert_eq!(job(&p, "j").script, ["y"]);
}

// "include:local" (with globs); the including file wins in a conflict ("Override included configuration values").
#[test]
fn include_local_and_globs() {
    let files = [
        (
            ".gitlab-ci.yml",
            "include:\n  - local: ci/a.yml\n  - 'ci/more/*.yml'\nvariables: {V: root}\n",
        ),
        (
            "ci/a.yml",
            "variables: {V: included, W: included}\na:\n  script: [x]\n",
        ),
        ("ci/more/b.yml", "b:\n  script: [x]\n"),
        ("ci/more/c.txt", "not yaml"),
    ];
    let p = plan_with(&files, &branch("main")).unwrap_or_else(|d| panic!("{}", show(&d)));
    assert_eq!(names(&p), ["a", "b"]);
    assert_eq!(var(job(&p, "a"), "V"), Some("root"));
    assert_eq!(var(job(&p, "a"), "W"), Some("included"));
}

// "include": remote, project, template and component cannot be read offline; the error names the include.
#[test]
fn unsupported_includes_are_named() {
    assert_error(
        "include: 'https://example.com/ci.yml'\n",
        "include:remote 'https://example.com/ci.yml'",
    );
    assert_error(
        "include:\n  - project: g/p\n    file: ci.yml\n",
        "include:project 'g/p' (file ci.yml)",
    );
    assert_error(
        "include:\n  - template: Auto-DevOps.gitlab-ci.yml\n",
        "include:template 'Auto-DevOps.gitlab-ci.yml'",
    );
    assert_error(
        "include: missing.yml\n",
        "included file 'missing.yml' does not exist",
    );
}

// "workflow:rules": no match (or when: never) means no pipeline; variables of the matching rule override globals.
#[test]
fn workflow_rules() {
    let yaml = "variables: {DEPLOY: 'no'}\nworkflow:\n  rules:\n    - if: $CI_COMMIT_TAG\n      when: never\n    - if: $CI_COMMIT_BRANCH == 'main'\n      variables: {DEPLOY: 'yes'}\n\
                j:\n  script: [x]\n";
    assert!(plan(yaml, &ctx(RefKind::Tag("v1".into()))).jobs.is_empty());
    assert!(plan(yaml, &branch("dev")).jobs.is_empty());
    let p = plan(yaml, &branch("main"));
    assert_eq!(var(job(&p, "j"), "DEPLOY"), Some("yes"));
}

// "rules": first match wins; when: never excludes; no match excludes; a rule without clauses always matches.
#[test]
fn rules_first_match() {
    let yaml = "j:\n  script: [x]\n  rules:\n    - if: $CI_COMMIT_BRANCH == 'main'\n      when: never\n    - if: $CI_COMMIT_BRANCH =~ /^feat/\n      when: manual\n    - if: $CI_COMMIT_TAG\n";
    assert!(plan(yaml, &branch("main")).jobs.is_empty());
    assert!(plan(yaml, &branch("dev")).jobs.is_empty());
    let feature = plan(yaml, &branch("feature/x"));
    // "allow_failure": false for manual jobs added by rules.
    assert_eq!(
        (job(&feature, "j").when, &job(&feature, "j").allow_failure),
        (When::Manual, &AllowFailure::No)
    );
    let tag = plan(yaml, &ctx(RefKind::Tag("v1".into())));
    assert_eq!(job(&tag, "j").when, When::OnSuccess);
    let always = plan(
        "j:\n  script: [x]\n  rules:\n    - when: always\n",
        &branch("x"),
    );
    assert_eq!(job(&always, "j").when, When::Always);
}

// "rules:variables" override job variables; "rules:allow_failure"; "rules:changes"; "rules:exists".
#[test]
fn rules_variables_allow_failure_changes_exists() {
    let yaml = "j:\n  variables: {A: job}\n  script: [x]\n  rules:\n    - changes: ['docs/**/*']\n      when: never\n    - exists: [Dockerfile]\n      variables: {A: rule}\n      allow_failure: true\n";
    let mut context = branch("main");
    context.changed_files = Some(vec!["src/a.rs".into()]);
    let files = [(".gitlab-ci.yml", yaml), ("Dockerfile", "FROM x")];
    let p = plan_with(&files, &context).unwrap();
    assert_eq!(var(job(&p, "j"), "A"), Some("rule"));
    assert_eq!(job(&p, "j").allow_failure, AllowFailure::Yes);
    context.changed_files = Some(vec!["docs/guide/a.md".into()]);
    assert!(plan_with(&files, &context).unwrap().jobs.is_empty());
    context.changed_files = Some(vec!["src/a.rs".into()]);
    assert!(
        plan_with(&[(".gitlab-ci.yml", yaml)], &context)
            .unwrap()
            .jobs
            .is_empty()
    );
}

// "only / except": names, /regex/, keywords, @project, variables; default only: [branches, tags].
#[test]
fn only_except() {
    let yaml = "a:\n  script: [x]\n  only: [main, /^release-.*$/]\nb:\n  script: [x]\n  except: [main]\n\
                c:\n  script: [x]\n  only: [tags]\nd:\n  script: [x]\n  only: [main@group/project]\n\
                e:\n  script: [x]\n  only:\n    variables: [$DEPLOY == 'yes']\nf:\n  script: [x]\n";
    assert_eq!(names(&plan(yaml, &branch("main"))), ["a", "d", "f"]);
    assert_eq!(names(&plan(yaml, &branch("release-1"))), ["a", "b", "f"]);
    assert_eq!(
        names(&plan(yaml, &ctx(RefKind::Tag("v1".into())))),
        ["b", "c", "f"]
    );
    let mut with_var = branch("dev");
    with_var.variables.insert("DEPLOY".into(), "yes".into());
    assert_eq!(names(&plan(yaml, &with_var)), ["b", "e", "f"]);
    let mut mr = branch("dev");
    mr.source = PipelineSource::MergeRequestEvent;
    assert_eq!(
        names(&plan(
            "a:\n  script: [x]\n  only: [merge_requests]\nb:\n  script: [x]\n",
            &mr
        )),
        ["a"]
    );
}

// "when": manual jobs allow failure by default; delayed needs start_in; never removes the job.
#[test]
fn when_values() {
    let yaml = "m:\n  script: [x]\n  when: manual\nd:\n  script: [x]\n  when: delayed\n  start_in: 30 minutes\nn:\n  script: [x]\n  when: never\n";
    let p = plan(yaml, &branch("main"));
    assert_eq!(names(&p), ["m", "d"]);
    assert_eq!(job(&p, "m").allow_failure, AllowFailure::Yes);
    assert_eq!(job(&p, "d").start_in_secs, Some(1800));
    assert_error(
        "d:\n  script: [x]\n  when: delayed\n",
        "when: delayed needs start_in",
    );
    assert_error(
        "d:\n  script: [x]\n  when: sometimes\n",
        "when 'sometimes' is not one of",
    );
}

// "allow_failure:exit_codes".
#[test]
fn allow_failure_exit_codes() {
    let p = plan(
        "j:\n  script: [x]\n  allow_failure:\n    exit_codes: [137, 255]\n",
        &branch("main"),
    );
    assert_eq!(
        job(&p, "j").allow_failure,
        AllowFailure::ExitCodes(vec![137, 255])
    );
}

// "needs": [] starts at once; needs across stages; optional; a need on a missing or later job is an error.
#[test]
fn needs() {
    let yaml = "stages: [build, test]\nb:\n  stage: build\n  script: [x]\nlint:\n  stage: build\n  needs: []\n  script: [x]\n\
                t:\n  stage: test\n  needs: [b, {job: gone, optional: true}, {job: lint, artifacts: false}]\n  script: [x]\n\
                gone:\n  stage: build\n  script: [x]\n  only: [never-this-branch]\n";
    let p = plan(yaml, &branch("main"));
    assert_eq!(job(&p, "lint").needs, Some(vec![]));
    let t = job(&p, "t").needs.as_ref().unwrap();
    assert_eq!(
        t.iter()
            .map(|n| (n.job.as_str(), n.artifacts))
            .collect::<Vec<_>>(),
        [("b", true), ("lint", false)]
    );
    assert_eq!(job(&p, "b").needs, None);
    assert_error(
        "a:\n  script: [x]\n  needs: [nope]\n",
        "needs 'nope', which is not a job",
    );
    assert_error(
        "stages: [a, b]\nx:\n  stage: a\n  script: [x]\n  needs: [y]\ny:\n  stage: b\n  script: [x]\n",
        "runs in a later stage",
    );
    assert_error(
        "x:\n  script: [x]\n  needs: [y]\ny:\n  script: [x]\n  needs: [x]\n",
        "needs form a cycle",
    );
    let missing = plan_with(
        &[(
            ".gitlab-ci.yml",
            "a:\n  script: [x]\n  only: [other]\nb:\n  script: [x]\n  needs: [a]\n",
        )],
        &branch("main"),
    );
    assert!(show(&missing.unwrap_err()).contains("not in the pipeline for this event"));
}

// "parallel": N jobs named `job 1/N`; "parallel:matrix" jobs named `job: [v1, v2]`, one per combination.
#[test]
fn parallel_names() {
    let yaml = "t:\n  script: [x]\n  parallel: 3\nm:\n  script: [x]\n  parallel:\n    matrix:\n      - PROVIDER: aws\n        STACK: [monitoring, app1]\n      - PROVIDER: gcp\n        STACK: [data]\n\
                after:\n  stage: deploy\n  script: [x]\n  needs: [t]\n";
    let p = plan(yaml, &branch("main"));
    assert_eq!(
        names(&p),
        [
            "t 1/3",
            "t 2/3",
            "t 3/3",
            "m: [aws, monitoring]",
            "m: [aws, app1]",
            "m: [gcp, data]",
            "after"
        ]
    );
    assert_eq!(var(job(&p, "m: [gcp, data]"), "STACK"), Some("data"));
    assert_eq!(var(job(&p, "t 2/3"), "CI_NODE_INDEX"), Some("2"));
    assert_eq!(job(&p, "after").needs.as_ref().map(Vec::len), Some(3));
}

// "retry", "timeout", "interruptible", "resource_group", "coverage".
#[test]
fn retry_timeout_and_friends() {
    let yaml = "j:\n  script: [x]\n  retry: {max: 2, when: [runner_system_failure], exit_codes: 137}\n  timeout: 3h 30m\n  interruptible: true\n  resource_group: prod-$CI_COMMIT_REF_SLUG\n  coverage: '/Total: (\\d+)%/'\n";
    let p = plan(yaml, &branch("Main"));
    let j = job(&p, "j");
    assert_eq!(
        (
            j.retry.max,
            j.retry.when.as_slice(),
            j.retry.exit_codes.as_slice()
        ),
        (2, &["runner_system_failure".to_string()][..], &[137][..])
    );
    assert_eq!(j.timeout_secs, Some(12_600));
    assert!(j.interruptible);
    assert_eq!(j.resource_group.as_deref(), Some("prod-main"));
    assert_eq!(j.coverage.as_deref(), Some(r"Total: (\d+)%"));
    assert_error(
        "j:\n  script: [x]\n  retry: 3\n",
        "retry:max must be 0, 1 or 2",
    );
    let flagged = plan(
        "j:\n  script: [x]\n  coverage: '/total: (\\d+)/i'\n",
        &branch("main"),
    );
    assert_eq!(
        flagged.jobs[0].coverage.as_deref(),
        Some(r"(?i)total: (\d+)")
    );
}

// "environment": name and url expanded; the tier guessed from the name when not set.
#[test]
fn environment() {
    let yaml = "j:\n  script: [x]\n  environment:\n    name: review/$CI_COMMIT_REF_SLUG\n    url: https://$CI_COMMIT_REF_SLUG.example.com\nk:\n  script: [x]\n  environment: production\n";
    let p = plan(yaml, &branch("feature/Login"));
    let e = job(&p, "j").environment.as_ref().unwrap();
    assert_eq!(e.name, "review/feature-login");
    assert_eq!(e.url.as_deref(), Some("https://feature-login.example.com"));
    assert_eq!(
        (e.action.as_str(), e.deployment_tier.as_str()),
        ("start", "development")
    );
    assert_eq!(
        job(&p, "k").environment.as_ref().unwrap().deployment_tier,
        "production"
    );
}

// "artifacts" (when defaults to on_success; expire_in; reports:junit) and "cache" (key default, policy pull-push).
#[test]
fn artifacts_and_cache() {
    let yaml = "j:\n  script: [x]\n  artifacts:\n    paths: [dist/]\n    exclude: ['dist/**/*.map']\n    expire_in: 1 week\n    reports:\n      junit: report.xml\n  cache:\n    key: {files: [Gemfile.lock]}\n    paths: [vendor/]\n    policy: pull\n";
    let p = plan(yaml, &branch("main"));
    let a = job(&p, "j").artifacts.as_ref().unwrap();
    assert_eq!(
        (a.when.as_str(), a.expire_in_secs, a.junit.as_slice()),
        ("on_success", Some(604_800), &["report.xml".to_string()][..])
    );
    let c = &job(&p, "j").cache[0];
    assert_eq!(
        (c.key_files.as_slice(), c.policy.as_str()),
        (&["Gemfile.lock".to_string()][..], "pull")
    );
    assert_error(
        "j:\n  script: [x]\n  cache: {policy: sometimes}\n",
        "cache:policy 'sometimes'",
    );
}

// "services": names or {name, alias, command, variables}; image and services expand variables.
#[test]
fn services_and_image_expansion() {
    let yaml = "variables: {PG: '16'}\nj:\n  image: $CI_REGISTRY_IMAGE/ci:latest\n  script: [x]\n  services:\n    - redis:7\n    - name: postgres:$PG\n      alias: db, database\n      command: [postgres, -c, fsync=off]\n      variables: {POSTGRES_PASSWORD: x}\n  tags: [$RUNNER]\n";
    let mut context = branch("main");
    context
        .variables
        .insert("CI_REGISTRY_IMAGE".into(), "reg/app".into());
    context.variables.insert("RUNNER".into(), "linux".into());
    let p = plan(yaml, &context);
    let j = job(&p, "j");
    assert_eq!(j.image.as_ref().unwrap().name, "reg/app/ci:latest");
    assert_eq!(j.services[1].name, "postgres:16");
    assert_eq!(j.services[1].aliases, ["db", "database"]);
    assert_eq!(j.services[1].variables[0].key, "POSTGRES_PASSWORD");
    assert_eq!(j.tags, ["linux"]);
    // Script lines are not expanded: the shell does it.
    assert_eq!(
        plan("j:\n  script: [echo $PG]\n", &branch("main")).jobs[0].script,
        ["echo $PG"]
    );
}

// Unknown keywords get "did you mean"; keywords esteira cannot honour are named.
#[test]
fn unknown_and_unsupported_keywords() {
    assert_error(
        "j:\n  scirpt: [x]\n",
        "unknown job keyword 'scirpt' (did you mean 'script'?)",
    );
    assert_error(
        "stage: [a]\n",
        "unknown top-level keyword 'stage' (did you mean 'stages'?)",
    );
    assert_error(
        "j:\n  trigger: other/project\n",
        "downstream pipelines (trigger)",
    );
    assert_error(
        "j:\n  script: [x]\n  release: {tag_name: v1}\n",
        "GitLab releases (release)",
    );
    assert_error(
        "j:\n  script: [x]\n  secrets: {A: {vault: x}}\n",
        "external secrets (secrets)",
    );
    assert_error("pages:\n  script: [x]\n", "GitLab Pages");
    assert_error("j:\n  image: x\n", "a job needs 'script'");
}

// Every diagnostic names file, line, column and job.
#[test]
fn diagnostics_have_positions() {
    let found = errors("stages: [a]\n\nj:\n  stage: a\n  script: [x]\n  when: later\n");
    assert_eq!(found.len(), 1);
    assert_eq!(
        found[0].to_string(),
        ".gitlab-ci.yml:6:9: job 'j': when 'later' is not one of on_success, on_failure, always, manual, delayed, never"
    );
}

// "rules" cannot be mixed with only/except.
#[test]
fn rules_with_only_is_an_error() {
    assert_error(
        "j:\n  script: [x]\n  rules: [{when: always}]\n  only: [main]\n",
        "rules cannot be used together with only/except",
    );
}

// "rules:needs" replaces the job's needs when the rule matches; "rules:interruptible".
#[test]
fn rules_needs_and_interruptible() {
    let yaml = "stages: [a, b]\nx:\n  stage: a\n  script: [x]\ny:\n  stage: a\n  script: [x]\n\
                z:\n  stage: b\n  script: [x]\n  needs: [x]\n  rules:\n    - if: $CI_COMMIT_BRANCH == 'main'\n      needs: [y]\n      interruptible: true\n    - when: on_success\n";
    let main = plan(yaml, &branch("main"));
    assert_eq!(job(&main, "z").needs.as_ref().unwrap()[0].job, "y");
    assert!(job(&main, "z").interruptible);
    let other = plan(yaml, &branch("dev"));
    assert_eq!(job(&other, "z").needs.as_ref().unwrap()[0].job, "x");
    assert!(!job(&other, "z").interruptible);
    assert_error(
        "z:\n  script: [x]\n  rules:\n    - needs: [nope]\n",
        "needs 'nope', which is not a job",
    );
}

// "stage: .pre": a pipeline with only .pre/.post jobs does not run.
#[test]
fn only_pre_and_post_jobs_do_not_run() {
    let yaml = "p:\n  stage: .pre\n  script: [x]\nt:\n  script: [x]\n  only: [main]\n";
    assert!(plan(yaml, &branch("dev")).jobs.is_empty());
    assert_eq!(names(&plan(yaml, &branch("main"))), ["p", "t"]);
}

// "workflow:rules": with workflow rules, jobs without only/except lose the default
// `only: [branches, tags]`, so they also run in merge request pipelines.
#[test]
fn workflow_rules_drop_the_default_only() {
    let mut mr = branch("feature");
    mr.source = PipelineSource::MergeRequestEvent;
    let without = "j:\n  script: [x]\n";
    assert!(plan(without, &mr).jobs.is_empty());
    let with = "workflow:\n  rules:\n    - when: always\nj:\n  script: [x]\n";
    assert_eq!(names(&plan(with, &mr)), ["j"]);
}

// "needs:parallel:matrix" selects matrix instances; an instance may also be named directly.
#[test]
fn needs_on_parallel_instances() {
    let yaml = "stages: [a, b]\nm:\n  stage: a\n  script: [x]\n  parallel:\n    matrix:\n      - ARCH: [amd64, arm64]\n\
                p:\n  stage: a\n  script: [x]\n  parallel: 2\n\
                one:\n  stage: b\n  script: [x]\n  needs:\n    - job: m\n      parallel:\n        matrix:\n          - ARCH: arm64\n\
                two:\n  stage: b\n  script: [x]\n  needs: ['p 2/2', 'm: [amd64]']\n";
    let p = plan(yaml, &branch("main"));
    let needed = |name: &str| {
        job(&p, name)
            .needs
            .as_ref()
            .unwrap()
            .iter()
            .map(|n| n.job.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(needed("one"), ["m: [arm64]"]);
    assert_eq!(needed("two"), ["p 2/2", "m: [amd64]"]);
}

// "include:local": the file must be YAML.
#[test]
fn include_local_must_be_yaml() {
    assert_error(
        "include: scripts/build.sh\n",
        "must be a .yml or .yaml file",
    );
}

// "dependencies": earlier-stage jobs only; with "needs", a dependency must also be needed.
#[test]
fn dependencies() {
    let yaml = "b:\n  stage: build\n  script: [x]\nc:\n  stage: build\n  script: [x]\nt:\n  script: [x]\n  dependencies: [b]\n";
    assert_eq!(
        job(&plan(yaml, &branch("main")), "t").dependencies,
        Some(vec!["b".to_string()])
    );
    assert_error(
        "a:\n  script: [x]\n  dependencies: [b]\nb:\n  stage: deploy\n  script: [x]\n",
        "does not run in an earlier stage",
    );
    assert_error(
        "b:\n  stage: build\n  script: [x]\nc:\n  stage: build\n  script: [x]\nt:\n  script: [x]\n  needs: [c]\n  dependencies: [b]\n",
        "must also be in needs",
    );
}

/// GitLab, "CI/CD variable precedence": project and pipeline variables win over the
/// file's `variables:` (global and job), in `rules:if` and in what the plan expands.
#[test]
fn project_variables_win_over_the_files_variables() {
    let yaml = "variables: {PYTHON_IMAGE: python:3.11, DEPLOY: \"no\"}\n\
                test:\n  image: $PYTHON_IMAGE\n  script: [true]\n\
                deploy:\n  variables: {DEPLOY: \"no\"}\n  rules: [{if: $DEPLOY == \"yes\"}]\n  script: [true]\n";
    let mut context = branch("main");
    let defaults = plan(yaml, &context);
    assert_eq!(names(&defaults), ["test"]);
    assert_eq!(
        job(&defaults, "test").image.as_ref().unwrap().name,
        "python:3.11"
    );
    context.overriding_variables = BTreeMap::from([
        ("PYTHON_IMAGE".to_string(), "local/python:3.11".to_string()),
        ("DEPLOY".to_string(), "yes".to_string()),
    ]);
    let overridden = plan(yaml, &context);
    assert_eq!(names(&overridden), ["test", "deploy"]);
    assert_eq!(
        job(&overridden, "test").image.as_ref().unwrap().name,
        "local/python:3.11"
    );
}
