//! The web UI in a real browser (issue 7): headless Chromium driven over WebDriver by
//! `chromedriver`, against the real coordinator and agent processes.
//!
//! `the_ui_follows_a_pipeline_live_and_acts_on_jobs` opens a running pipeline and sees
//! its jobs change state without a reload, opens a job and sees log lines arrive live,
//! retries a failed job (entering the admin token in the page's dialog) and sees the new
//! attempt, plays a manual job, and keeps screenshots of every page under
//! `target/ui-screenshots/`.
//!
//! `the_ui_serves_a_developer_watching_pipelines` runs a pipeline from the "Run pipeline"
//! dialog, reads GitLab's log sections, retries the failed jobs and checks the duration,
//! the mini-graph, the projects pages, dark mode and the list at 390 px (issue 18).
//!
//! `measure_large_pipeline_list_and_log` (ignored; run it by name) fills a store with
//! 10,000 pipelines and a 20 MiB job log and prints how long the pages take to become
//! usable in the browser (see docs/ui.md).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use esteira_tests::{
    Coordinator, GitRepo, IMAGE, docker_lock, ensure_image, free_port, wait_until,
};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

const LONG: Duration = Duration::from_secs(120);

/// `chromedriver` on a free port, killed on drop.
struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    fn start() -> Driver {
        let port = free_port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver (apt-get install chromium chromium-driver)");
        let address = format!("127.0.0.1:{port}");
        wait_until("chromedriver to listen", Duration::from_secs(30), || {
            std::net::TcpStream::connect(&address).ok()
        });
        Driver { child, port }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn browser(driver: &Driver, width: u32, height: u32) -> Client {
    browser_with(driver, width, height, &[]).await
}

/// A browser given more Chromium flags (e.g. `--force-dark-mode`, a system preferring
/// dark colours).
async fn browser_with(driver: &Driver, width: u32, height: u32, flags: &[&str]) -> Client {
    let mut args = vec![
        "--headless=new".to_string(),
        "--no-sandbox".to_string(),
        "--disable-gpu".to_string(),
        "--disable-dev-shm-usage".to_string(),
        "--hide-scrollbars".to_string(),
        format!("--window-size={width},{height}"),
    ];
    args.extend(flags.iter().map(|flag| flag.to_string()));
    if std::env::var_os("ESTEIRA_UI_DEVTOOLS").is_some() {
        args.push("--auto-open-devtools-for-tabs".to_string());
    }
    let mut options = json!({ "args": args });
    if Path::new("/usr/bin/chromium").exists() {
        options["binary"] = json!("/usr/bin/chromium");
    }
    let mut capabilities = serde_json::Map::new();
    capabilities.insert("goog:chromeOptions".to_string(), options);
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&format!("http://127.0.0.1:{}", driver.port))
        .await
        .expect("a WebDriver session")
}

/// Evaluates `expression` in the page until it is truthy; returns its value.
async fn wait_js(client: &Client, what: &str, timeout: Duration, expression: &str) -> Value {
    let deadline = Instant::now() + timeout;
    let script = format!("try {{ return ({expression}); }} catch (e) {{ return null; }}");
    loop {
        let value = client
            .execute(&script, vec![])
            .await
            .expect("execute script");
        let truthy = match &value {
            Value::Null => false,
            Value::Bool(b) => *b,
            Value::String(s) => !s.is_empty(),
            Value::Number(n) => n.as_f64() != Some(0.0),
            _ => true,
        };
        if truthy {
            return value;
        }
        if Instant::now() >= deadline {
            let url = client
                .current_url()
                .await
                .map(|u| u.to_string())
                .unwrap_or_default();
            let body = client
                .execute("return document.body.innerText.slice(0, 3000)", vec![])
                .await
                .unwrap_or(Value::Null);
            panic!(
                "timed out after {timeout:?} waiting for {what} on {url}\npage text:\n{}",
                body.as_str().unwrap_or("")
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn js(client: &Client, script: &str) -> Value {
    client
        .execute(script, vec![])
        .await
        .expect("execute script")
}

/// Clicks the element `css` finds. Live pages re-render: an element replaced between the
/// find and the click is found again.
async fn click(client: &Client, css: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let element = client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|error| panic!("no element {css}: {error}"));
        match element.click().await {
            Ok(_) => return,
            Err(error)
                if error.to_string().contains("stale element") && Instant::now() < deadline => {}
            Err(error) => panic!("cannot click {css}: {error}"),
        }
    }
}

/// Types `token` into the token dialog and saves it.
async fn enter_token(client: &Client, token: &str) {
    client
        .find(Locator::Css("#token-input"))
        .await
        .expect("token input")
        .send_keys(token)
        .await
        .expect("type the token");
    click(client, "#token-save").await;
}

/// Where screenshots go: `<target dir>/ui-screenshots/`.
fn screenshot_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let target = exe
        .parent()
        .and_then(Path::parent)
        .and_then(Path::parent)
        .expect("target directory");
    let dir = target.join("ui-screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    dir
}

/// Saves a screenshot of the page as it is, without the action toasts in front of it.
async fn screenshot(client: &Client, name: &str) {
    js(
        client,
        "document.getElementById('toasts').replaceChildren(); return true",
    )
    .await;
    let png = client.screenshot().await.expect("screenshot");
    let path = screenshot_dir().join(format!("{name}.png"));
    std::fs::write(&path, png).expect("write screenshot");
    eprintln!("screenshot: {}", path.display());
}

fn node(job: &str) -> String {
    format!("document.querySelector('.job-node[data-job=\"{job}\"]')")
}

const PIPELINE_FILE: &str = r#"stages: [build, test, deploy]
image: IMAGE
slow:
  stage: build
  script:
    - for i in $(seq 1 30); do echo line $i; sleep 0.3; done
    - printf '\033[33mprogress\033[0m 10%%\r\033[33mprogress\033[0m 100%%\n'
flaky:
  stage: build
  allow_failure: true
  script:
    - echo about to fail
    - exit 3
unit:
  stage: test
  needs: [slow]
  coverage: '/TOTAL.+ ([0-9.]+%)/'
  script:
    - echo unit tests pass
    - echo 'TOTAL 120 15 87.50%'
    - mkdir -p dist && echo wheel > dist/app.whl
    - printf '<testsuite><testcase classname="api.Users" name="test_list"/><testcase classname="api.Users" name="test_create"><failure message="expected 201, got 500"/></testcase><testcase classname="api.Users" name="test_later"><skipped/></testcase></testsuite>' > report.xml
  artifacts:
    paths: [dist/, report.xml]
    reports:
      junit: report.xml
lint:
  stage: test
  script: [echo lint is clean]
ship:
  stage: deploy
  when: manual
  environment: {name: production}
  script: [echo shipped]
"#;

/// Runs a test body on a runtime of its own (the docker lock stays outside the future).
fn run(body: impl std::future::Future<Output = ()>) {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
        .block_on(body);
}

#[test]
fn the_ui_follows_a_pipeline_live_and_acts_on_jobs() {
    let _guard = docker_lock();
    run(follow_a_pipeline());
}

async fn follow_a_pipeline() {
    ensure_image();
    let root = tempfile::tempdir().expect("temp dir");
    let repo = GitRepo::init(root.path().join("repo"));
    repo.commit(
        &[(".gitlab-ci.yml", &PIPELINE_FILE.replace("IMAGE", IMAGE))],
        "Add the pipeline to watch\n\nIts body is not the title.",
    );
    let coordinator = Coordinator::start(root.path(), 10);
    let _agent = coordinator.start_agent(root.path(), "builder-1", "docker,linux", 2);
    coordinator.cli_ok(&["project", "add", "webshop", "--repo", &repo.url()]);

    let driver = Driver::start();
    let client = browser(&driver, 1280, 900).await;
    let base = coordinator.url();

    // The list page first, so the browser is warm when the pipeline starts.
    client
        .goto(&format!("{base}/pipelines"))
        .await
        .expect("open the list");
    wait_js(
        &client,
        "the empty list",
        LONG,
        "document.querySelector('main').dataset.loaded",
    )
    .await;
    let id = coordinator.run_pipeline("webshop", "main");
    wait_js(
        &client,
        "the new pipeline in the list, live",
        LONG,
        &format!("document.querySelector('tr[data-pipeline=\"{id}\"]')"),
    )
    .await;
    js(&client, "window.__noReload = 'still here'; return true").await;
    let row = format!("tr[data-pipeline=\"{id}\"]");
    assert_eq!(
        js(
            &client,
            &format!("return document.querySelector('{row} .commit-title').textContent")
        )
        .await,
        "Add the pipeline to watch",
        "the list shows the commit's title"
    );
    assert!(
        js(
            &client,
            &format!("return document.querySelector('{row} .commit-meta').textContent")
        )
        .await
        .as_str()
        .is_some_and(|meta| meta.ends_with(" · esteira tests")),
        "the list shows the commit's author"
    );

    // The pipeline page: statuses change without a reload.
    click(&client, &format!("tr[data-pipeline=\"{id}\"] a.strong")).await;
    wait_js(
        &client,
        "slow running",
        LONG,
        &format!("{}.dataset.status === 'running'", node("slow")),
    )
    .await;
    wait_js(
        &client,
        "flaky failed",
        LONG,
        &format!("{}.dataset.status === 'failed'", node("flaky")),
    )
    .await;
    assert_eq!(
        js(&client, "return window.__noReload").await,
        "still here",
        "the page reloaded"
    );

    // The job page: log lines arrive while the job runs.
    click(&client, ".job-node[data-job=\"slow\"] a.job-link").await;
    let highest = "Math.max(0, ...[...document.querySelectorAll('.log-row .lc')].map(r => (/^line (\\d+)$/.exec(r.textContent) || [0, 0])[1] | 0))";
    let first = wait_js(
        &client,
        "a first log line",
        LONG,
        &format!("{highest} || 0"),
    )
    .await;
    let first = first.as_i64().unwrap_or(0);
    assert!(
        first < 30,
        "the job had already printed everything ({first}) when its page showed the log"
    );
    wait_js(
        &client,
        "line 30 arriving live",
        LONG,
        &format!("{highest} === 30"),
    )
    .await;
    wait_js(
        &client,
        "the job to finish",
        LONG,
        "document.querySelector('.title-row').dataset.jobStatus === 'success'",
    )
    .await;
    wait_js(
        &client,
        "the whole log",
        LONG,
        "document.querySelector('.log-panel').dataset.complete === 'true'",
    )
    .await;
    let progress = js(&client, "return [...document.querySelectorAll('.log-row .lc')].map(r => r.textContent).filter(t => t.includes('progress') && !t.startsWith('$ '))").await;
    assert_eq!(
        progress,
        json!(["progress 100%"]),
        "\\r progress is drawn as a terminal does"
    );
    let sections = js(
        &client,
        "return [...document.querySelectorAll('.log-header .lc')].map(r => r.textContent)",
    )
    .await;
    assert!(
        sections.as_array().is_some_and(|s| s
            .iter()
            .any(|t| t.as_str().is_some_and(|t| t.starts_with("$ printf")))),
        "each command starts a section: {sections}"
    );
    screenshot(&client, "job").await;
    assert_eq!(
        js(&client, "return window.__noReload").await,
        "still here",
        "the page reloaded"
    );

    // Retry the failed job: the token dialog asks once, then the new attempt shows.
    click(&client, ".breadcrumbs a[href^=\"/pipelines/\"]").await;
    wait_js(&client, "the pipeline page again", LONG, &node("flaky")).await;
    // The graph re-renders on every change; a click is only sure to land (mouse down and
    // up on the same button) once the pipeline has settled.
    let settled = "document.querySelector('main').dataset.pipelineStatus === 'success'";
    wait_js(&client, "the pipeline to settle", LONG, settled).await;
    click(
        &client,
        ".job-node[data-job=\"flaky\"] button[data-action=\"retry\"]",
    )
    .await;
    wait_js(
        &client,
        "the token dialog",
        LONG,
        "document.getElementById('token-dialog').open",
    )
    .await;
    enter_token(&client, &coordinator.admin_token).await;
    wait_js(
        &client,
        "attempt 2 of flaky",
        LONG,
        &format!("{}.dataset.attempt === '2'", node("flaky")),
    )
    .await;
    wait_js(
        &client,
        "the retried attempt in the table",
        LONG,
        "document.querySelector('tr.retried')",
    )
    .await;
    wait_js(
        &client,
        "attempt 2 to fail too",
        LONG,
        &format!("{}.dataset.status === 'failed'", node("flaky")),
    )
    .await;

    // Play the manual job.
    wait_js(
        &client,
        "ship waiting for a person",
        LONG,
        &format!("{}.dataset.status === 'manual'", node("ship")),
    )
    .await;
    wait_js(&client, "the pipeline to settle again", LONG, settled).await;
    click(
        &client,
        ".job-node[data-job=\"ship\"] button[data-action=\"play\"]",
    )
    .await;
    wait_js(
        &client,
        "ship to run and pass",
        LONG,
        &format!("{}.dataset.status === 'success'", node("ship")),
    )
    .await;
    wait_js(
        &client,
        "the needs edge slow → unit",
        LONG,
        "document.querySelector('.needs-edges path[data-from=\"slow\"][data-to=\"unit\"]')",
    )
    .await;
    assert_eq!(
        js(
            &client,
            "return document.querySelector('.commit-line').textContent"
        )
        .await,
        "Add the pipeline to watch by esteira tests"
    );
    wait_js(
        &client,
        "the pipeline's coverage",
        LONG,
        "document.querySelector('dd[data-coverage]').textContent === '87.50%'",
    )
    .await;
    screenshot(&client, "pipeline").await;
    assert_eq!(
        js(&client, "return window.__noReload").await,
        "still here",
        "the page reloaded"
    );

    // The unit job's page: its artifact files with the download, and its test summary.
    click(&client, ".job-node[data-job=\"unit\"] a.job-link").await;
    wait_js(
        &client,
        "the artifact files",
        LONG,
        "document.querySelector('.artifacts-card li[data-path=\"dist/app.whl\"]')",
    )
    .await;
    let files = js(
        &client,
        "return [...document.querySelectorAll('.file-list li')].map(li => li.dataset.path + ' ' + li.querySelector('.file-size').textContent)",
    )
    .await;
    assert_eq!(files, json!(["dist/app.whl 6 B", "report.xml 248 B"]));
    let download = js(
        &client,
        "return document.querySelector('a[data-download=\"artifacts\"]').getAttribute('href')",
    )
    .await;
    let unit = download
        .as_str()
        .and_then(|href| href.strip_prefix("/api/v1/jobs/"))
        .and_then(|rest| rest.strip_suffix("/artifacts"))
        .unwrap_or_else(|| panic!("the download link of the archive: {download}"))
        .to_string();
    let counts = js(
        &client,
        "return [...document.querySelectorAll('.test-count')].map(c => c.dataset.count + '=' + c.querySelector('.test-count-value').textContent)",
    )
    .await;
    assert_eq!(
        counts,
        json!(["total=3", "passed=1", "failed=1", "skipped=1"])
    );
    assert!(
        js(
            &client,
            "return document.querySelector('.failed-tests').textContent"
        )
        .await
        .as_str()
        .is_some_and(|text| text.contains("test_create") && text.contains("expected 201, got 500")),
        "the failed test and its message"
    );
    js(
        &client,
        "document.querySelector('.tests-card').scrollIntoView(); return true",
    )
    .await;
    screenshot(&client, "job-artifacts").await;

    // The other pages. A project whose jobs need a label no agent has fills the queue.
    let gpu_repo = GitRepo::init(root.path().join("gpu-repo"));
    gpu_repo.commit(
        &[(
            ".gitlab-ci.yml",
            &format!(
                "image: {IMAGE}\ntrain:\n  tags: [gpu, linux]\n  script: [echo train]\n\
                 evaluate:\n  tags: [linux, gpu]\n  script: [echo evaluate]\n"
            ),
        )],
        "Train the model",
    );
    coordinator.cli_ok(&["project", "add", "models", "--repo", &gpu_repo.url()]);
    coordinator.run_pipeline("models", "main");
    click(&client, "nav a[data-section=\"agents\"]").await;
    wait_js(
        &client,
        "the agent row",
        LONG,
        "document.querySelector('tr[data-agent]')",
    )
    .await;
    let agent_status = js(
        &client,
        "return document.querySelector('tr[data-agent]').dataset.status",
    )
    .await;
    assert!(
        matches!(agent_status.as_str(), Some("idle" | "busy")),
        "agent status {agent_status}"
    );
    click(&client, "tr[data-agent] button[data-action=\"pause\"]").await;
    wait_js(
        &client,
        "the agent paused",
        LONG,
        "document.querySelector('tr[data-agent]').dataset.status === 'paused'",
    )
    .await;
    click(&client, "tr[data-agent] button[data-action=\"resume\"]").await;
    wait_js(
        &client,
        "the agent back",
        LONG,
        "['idle', 'busy'].includes(document.querySelector('tr[data-agent]').dataset.status)",
    )
    .await;
    let queued = "document.querySelector('tr[data-queue-tags=\"gpu,linux\"]')";
    wait_js(
        &client,
        "the gpu jobs in the queue",
        LONG,
        &format!("{queued}.dataset.pending === '2' && {queued}.querySelector('[data-status=\"no-agent\"]')"),
    )
    .await;
    // A runner pool as an autoscaler reports it.
    let report = json!({"pools": [{"name": "burst", "labels": ["burst"], "min": 0, "max": 3,
        "desired": 2, "current": 1, "starting": 1, "idle": 0, "busy": 0, "draining": 0,
        "pending": 2, "oldest_wait_ms": 1200, "reason": "2 pending: starting 1"}]});
    let put = std::process::Command::new("curl")
        .args([
            "-fsS",
            "-X",
            "PUT",
            "-H",
            "Content-Type: application/json",
            "-H",
        ])
        .arg(format!("Authorization: Bearer {}", coordinator.admin_token))
        .args(["-d", &report.to_string()])
        .arg(format!("{}/api/v1/pools/ui-autoscaler", coordinator.url()))
        .output()
        .expect("curl");
    assert!(put.status.success(), "{put:?}");
    click(&client, "nav a[data-section=\"pipelines\"]").await;
    click(&client, "nav a[data-section=\"agents\"]").await;
    let pool = "document.querySelector('tr[data-pool=\"burst\"]')";
    wait_js(
        &client,
        "the runner pool's row",
        LONG,
        &format!("{pool} && {pool}.dataset.desired === '2' && {pool}.textContent.includes('2 pending: starting 1')"),
    )
    .await;
    screenshot(&client, "agents").await;
    click(&client, "nav a[data-section=\"environments\"]").await;
    wait_js(
        &client,
        "the environments page",
        LONG,
        "document.querySelector('main').dataset.loaded",
    )
    .await;
    screenshot(&client, "environments").await;
    click(&client, "nav a[data-section=\"pipelines\"]").await;
    wait_js(
        &client,
        "the pipeline list",
        LONG,
        &format!("document.querySelector('tr[data-pipeline=\"{id}\"]')"),
    )
    .await;
    screenshot(&client, "pipelines").await;
    assert_eq!(
        js(&client, "return window.__noReload").await,
        "still here",
        "the page reloaded"
    );

    assert_eq!(
        js(&client, "return window.__errors").await,
        json!([]),
        "script errors in the pages"
    );

    // The terminal's layout rules, as the log view applies them.
    let layout = js(
        &client,
        r"const t = (raw) => Terminal.layout(raw, {fg: null, bg: null, b: false, d: false, i: false, u: false, inv: false});
          return [t('abcdef\rXY').text, t('50%\r\x1b[K100%').text, t('a\tb').text,
                  t('\x1b[31;1mred\x1b[0m plain').runs.map(([text, s]) => text + ':' + s.fg + ':' + s.b).join('|')]",
    )
    .await;
    assert_eq!(
        layout,
        json!([
            "XYcdef",
            "100%",
            "a       b",
            "red:1:true| plain:null:false"
        ])
    );

    // A narrow screen keeps everything readable.
    client.set_window_size(420, 900).await.expect("resize");
    client
        .goto(&format!("{base}/pipelines/{id}"))
        .await
        .expect("open the pipeline");
    wait_js(&client, "the narrow pipeline page", LONG, &node("ship")).await;
    screenshot(&client, "pipeline-narrow").await;

    // The badge.
    client
        .goto(&format!("{base}/badges/webshop/pipeline.svg?ref=main"))
        .await
        .expect("badge");
    let badge = client.source().await.expect("badge source");
    assert!(
        badge.contains("pipeline") && badge.contains("passed"),
        "{badge}"
    );
    client.close().await.expect("close the browser");

    // The same facts over REST and the CLI.
    let (status, coverage) = http_get(&base, "/badges/webshop/coverage.svg", None);
    assert_eq!(status, 200);
    assert!(
        coverage.contains(">87.50%</text>") && coverage.contains("fill=\"#a3c51c\""),
        "{coverage}"
    );
    let (_, unknown) = http_get(&base, "/badges/webshop/coverage.svg?ref=nowhere", None);
    assert!(unknown.contains(">unknown</text>"), "{unknown}");
    let (status, files) = http_get(&base, &format!("/api/v1/jobs/{unit}/artifacts/files"), None);
    assert_eq!(status, 200, "{files}");
    let files: Value = serde_json::from_str(&files).expect("JSON");
    assert_eq!(
        files,
        json!({"files": [{"path": "dist/app.whl", "size": 6}, {"path": "report.xml", "size": 248}],
               "count": 2, "truncated": false})
    );
    let (_, queue) = http_get(&base, "/api/v1/queue", None);
    let queue: Value = serde_json::from_str(&queue).expect("JSON");
    assert_eq!(queue[0]["tags"], json!(["gpu", "linux"]), "{queue}");
    assert_eq!(queue[0]["pending"], 2, "{queue}");
    assert_eq!(queue[0]["agents"], json!([]), "{queue}");
    let shown = coordinator.cli_ok(&["pipeline", "show", &id]);
    assert!(
        shown.contains("commit: Add the pipeline to watch (esteira tests)\ncoverage: 87.50%\n"),
        "{shown}"
    );
    let job = coordinator.cli_ok(&["job", "show", &unit]);
    for line in [
        "tests: 3 total, 1 passed, 1 failed, 1 skipped",
        "  failed: api.Users.test_create: expected 201, got 500",
        "artifacts: 2 files, ",
        "  dist/app.whl  6 B",
    ] {
        assert!(job.contains(line), "{line:?} in:\n{job}");
    }
}

const DEVELOPER_FILE: &str = r#"stages: [build, test]
image: IMAGE
sections:
  stage: build
  script:
    - printf '\033[0Ksection_start:1700000000:outer[collapsed=true]\r\033[0KOuter section\n'
    - echo inside outer
    - printf 'section_start:1700000010:inner\r\033[0KInner section\n'
    - echo inside inner
    - printf 'section_end:1700000013:inner\r\033[0K\n'
    - printf 'section_end:1700000065:outer\r\033[0K\n'
    - echo after the sections
flaky:
  stage: build
  script:
    - echo "run with $FLAVOUR"
    - exit 3
check:
  stage: test
  script: [echo checked]
"#;

/// The pages a developer watching pipelines uses (issue 18): "Run pipeline" with a
/// variable, GitLab's log sections (collapsed, nested, with durations; the raw log
/// unchanged), the failure banner, "Retry failed jobs" and the pipeline's duration after
/// it, the stage mini-graph, the projects pages, dark mode and the list at 390 px.
#[test]
fn the_ui_serves_a_developer_watching_pipelines() {
    let _guard = docker_lock();
    run(developer());
}

/// The texts of the log rows in sight.
const LOG_ROWS: &str =
    "return [...document.querySelectorAll('.log-row .lc')].map(r => r.textContent)";

/// The log row whose text is `text`.
fn log_row(text: &str) -> String {
    format!(
        "[...document.querySelectorAll('.log-row')].find(r => r.querySelector('.lc').textContent === '{text}')"
    )
}

/// The page's background colour.
const BACKGROUND: &str = "return getComputedStyle(document.body).backgroundColor";

/// A duration as the UI prints it under a minute.
fn seconds_text(ms: i64) -> String {
    format!("{}s", (ms as f64 / 1000.0).round())
}

async fn developer() {
    ensure_image();
    let root = tempfile::tempdir().expect("temp dir");
    let repo = GitRepo::init(root.path().join("repo"));
    repo.commit(
        &[(".gitlab-ci.yml", &DEVELOPER_FILE.replace("IMAGE", IMAGE))],
        "Print sections",
    );
    let coordinator = Coordinator::start(root.path(), 10);
    let _agent = coordinator.start_agent(root.path(), "builder", "", 2);
    coordinator.cli_ok(&["project", "add", "devshop", "--repo", &repo.url()]);
    let secret = "s3cr3t-value-never-shown";
    let set = coordinator.set_variable(&["devshop", "DEPLOY_KEY", "--masked"], secret);
    assert!(set.status.success(), "{set:?}");
    let driver = Driver::start();
    let client = browser(&driver, 1280, 900).await;
    let base = coordinator.url();

    // "Run pipeline" from the list, with a variable; the token dialog asks on the way.
    client
        .goto(&format!("{base}/pipelines"))
        .await
        .expect("open the list");
    wait_js(
        &client,
        "the list",
        LONG,
        "document.querySelector('main').dataset.loaded",
    )
    .await;
    click(&client, "button[data-action=\"run-pipeline\"]").await;
    wait_js(
        &client,
        "the run dialog",
        LONG,
        "document.querySelector('.run-dialog[open] #run-ref')",
    )
    .await;
    assert_eq!(
        js(&client, "return document.getElementById('run-ref').value").await,
        "main",
        "the ref starts at the project's default branch"
    );
    for (css, text) in [(".run-key", "FLAVOUR"), (".run-value", "first")] {
        client
            .find(Locator::Css(css))
            .await
            .expect("a variable input")
            .send_keys(text)
            .await
            .expect("type");
    }
    screenshot(&client, "run-pipeline").await;
    click(&client, "#run-submit").await;
    wait_js(
        &client,
        "the token dialog",
        LONG,
        "document.getElementById('token-dialog').open",
    )
    .await;
    enter_token(&client, &coordinator.admin_token).await;
    let id = wait_js(
        &client,
        "the new pipeline's page",
        LONG,
        "(/^\\/pipelines\\/(\\d+)$/.exec(location.pathname) || [])[1]",
    )
    .await;
    let id = id.as_str().expect("a pipeline id").to_string();
    assert_eq!(
        js(
            &client,
            "return document.querySelector('.run-dialog') === null"
        )
        .await,
        true,
        "the dialog is gone"
    );
    js(&client, "window.__noReload = 'still here'; return true").await;
    let settled = "document.querySelector('main').dataset.pipelineStatus === 'failed'";
    wait_js(&client, "the pipeline to fail", LONG, settled).await;
    let pipeline = coordinator.pipeline(&id);
    let flaky = coordinator.job(&pipeline, "flaky")["id"].clone();
    let log = String::from_utf8_lossy(&coordinator.job_log(&flaky)).into_owned();
    assert!(
        log.contains("\nrun with first\n"),
        "the variable reached the job: {log}"
    );

    // The failure banner says it once.
    click(&client, ".job-node[data-job=\"flaky\"] a.job-link").await;
    let banner = wait_js(
        &client,
        "the failure banner",
        LONG,
        "document.querySelector('[data-banner=\"failure\"]') && document.querySelector('[data-banner=\"failure\"]').textContent",
    )
    .await;
    assert_eq!(banner, "Failure: exit code 3");

    // GitLab's sections: the collapsed one hides its lines, each shows its duration.
    click(&client, ".breadcrumbs a[href^=\"/pipelines/\"]").await;
    wait_js(&client, "the pipeline page", LONG, &node("sections")).await;
    click(&client, ".job-node[data-job=\"sections\"] a.job-link").await;
    wait_js(
        &client,
        "the whole log",
        LONG,
        "document.querySelector('.log-panel').dataset.complete === 'true'",
    )
    .await;
    let outer = log_row("Outer section");
    wait_js(&client, "the outer section's header", LONG, &outer).await;
    assert_eq!(
        js(&client, &format!("return [{outer}.dataset.collapsed, {outer}.querySelector('.sec-duration').textContent, {outer}.querySelector('.log-hidden').textContent]")).await,
        json!(["true", "01:05", "8 lines"]),
        "collapsed=true is honoured, with the duration"
    );
    let rows = js(&client, LOG_ROWS).await;
    let rows: Vec<&str> = rows
        .as_array()
        .expect("rows")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let start = rows
        .iter()
        .position(|row| *row == "Outer section")
        .expect("the outer header");
    assert_eq!(
        rows[start + 1],
        "$ echo after the sections",
        "the section's lines are hidden: {rows:?}"
    );
    js(
        &client,
        &format!("{outer}.querySelector('button.sec').click(); return true"),
    )
    .await;
    let inner = log_row("Inner section");
    wait_js(&client, "the nested section", LONG, &inner).await;
    assert_eq!(
        js(&client, &format!("return [{inner}.dataset.collapsed, {inner}.querySelector('.sec-duration').textContent]")).await,
        json!(["false", "00:03"])
    );
    let rows = js(&client, LOG_ROWS).await;
    let rows: Vec<&str> = rows
        .as_array()
        .expect("rows")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let start = rows
        .iter()
        .position(|row| *row == "Outer section")
        .expect("the outer header");
    assert_eq!(
        rows[start..start + 6],
        [
            "Outer section",
            "$ echo inside outer",
            "inside outer",
            "$ printf 'section_start:1700000010:inner\\r\\033[0KInner section\\n'",
            "Inner section",
            "$ echo inside inner"
        ],
        "expanded, with the nested section: {rows:?}"
    );
    assert!(
        !rows
            .iter()
            .any(|row| row.is_empty() || row.contains("section_end:17") && !row.starts_with("$ ")),
        "the end markers show nothing: {rows:?}"
    );
    js(
        &client,
        &format!("{inner}.querySelector('button.sec').click(); return true"),
    )
    .await;
    wait_js(
        &client,
        "the nested section collapsed",
        LONG,
        &format!(
            "{inner}.dataset.collapsed === 'true' && !{}",
            log_row("inside inner")
        ),
    )
    .await;
    screenshot(&client, "job-sections").await;
    let sections = coordinator.pipeline(&id);
    let sections = coordinator.job(&sections, "sections")["id"].clone();
    assert_eq!(
        js(
            &client,
            "return document.querySelector('a[download][href$=\"/log\"]').getAttribute('href')"
        )
        .await,
        format!("/api/v1/jobs/{sections}/log")
    );
    let raw = coordinator.job_log(&sections);
    let expected: &[u8] =
        b"\x1b[0Ksection_start:1700000000:outer[collapsed=true]\r\x1b[0KOuter section\n";
    assert!(
        raw.windows(expected.len()).any(|w| w == expected),
        "the raw log keeps the markers byte for byte: {}",
        String::from_utf8_lossy(&raw)
    );

    // Dark mode: the toggle, kept across a reload, and back to the system's choice.
    let light = js(&client, BACKGROUND).await;
    assert_eq!(light, "rgb(250, 250, 250)");
    click(&client, "#theme-button").await;
    assert_eq!(
        js(&client, BACKGROUND).await,
        "rgb(24, 23, 29)",
        "dark applies"
    );
    screenshot(&client, "job-sections-dark").await;
    client.refresh().await.expect("reload");
    wait_js(
        &client,
        "the job page again",
        LONG,
        "document.querySelector('main').dataset.loaded",
    )
    .await;
    assert_eq!(
        js(&client, BACKGROUND).await,
        "rgb(24, 23, 29)",
        "dark is kept"
    );
    assert_eq!(
        js(
            &client,
            "return document.getElementById('theme-button').textContent"
        )
        .await,
        "Theme: dark"
    );
    js(&client, "window.__noReload = 'still here'; return true").await;

    // "Retry failed jobs" on the pipeline; its duration stays the time its jobs ran.
    click(&client, ".breadcrumbs a[href^=\"/pipelines/\"]").await;
    wait_js(&client, "the pipeline page", LONG, settled).await;
    screenshot(&client, "pipeline-dark").await;
    click(&client, "button[data-action=\"retry-failed\"]").await;
    wait_js(
        &client,
        "attempt 2 of flaky to fail",
        LONG,
        &format!(
            "{0}.dataset.attempt === '2' && {0}.dataset.status === 'failed' && {settled}",
            node("flaky")
        ),
    )
    .await;
    let pipeline = coordinator.pipeline(&id);
    let jobs = pipeline["jobs"].as_array().expect("jobs");
    let span = |job: &Value| {
        (
            job["started_at"].as_i64().unwrap_or(0),
            job["finished_at"].as_i64().unwrap_or(0),
        )
    };
    let mut runs: Vec<(i64, i64)> = jobs
        .iter()
        .filter(|job| job["retried"] == false && !job["started_at"].is_null())
        .map(span)
        .collect();
    runs.sort();
    let mut ran = 0;
    let mut current = runs[0];
    for &(from, to) in &runs[1..] {
        if from > current.1 {
            ran += current.1 - current.0;
            current = (from, to);
        }
        current.1 = current.1.max(to);
    }
    ran += current.1 - current.0;
    let wall = jobs.iter().map(span).map(|(_, to)| to).max().unwrap_or(0)
        - jobs
            .iter()
            .map(span)
            .map(|(from, _)| from)
            .min()
            .unwrap_or(0);
    assert!(
        wall - ran >= 2_000,
        "the retry came late enough to tell them apart: ran {ran} ms, wall {wall} ms"
    );
    assert_eq!(
        js(
            &client,
            "return document.querySelector('span[data-pipeline-duration]').textContent"
        )
        .await,
        seconds_text(ran),
        "the time the latest attempts ran ({ran} ms), not the {wall} ms since the first"
    );

    // The list: a mini-graph per pipeline, and the same duration.
    click(&client, "nav a[data-section=\"pipelines\"]").await;
    let row = format!("document.querySelector('tr[data-pipeline=\"{id}\"]')");
    wait_js(
        &client,
        "the row's mini-graph",
        LONG,
        &format!("{row}.querySelector('.mini-stage')"),
    )
    .await;
    assert_eq!(
        js(&client, &format!("return [...{row}.querySelectorAll('.mini-stage')].map(a => a.dataset.stage + ':' + a.dataset.status)")).await,
        json!(["build:failed", "test:skipped"])
    );
    screenshot(&client, "pipelines-dark").await;
    assert_eq!(
        js(
            &client,
            &format!("return {row}.querySelector('span[data-ran]').textContent")
        )
        .await,
        seconds_text(ran)
    );

    // The projects: the list, then a project's settings, variables and badges.
    click(&client, "nav a[data-section=\"projects\"]").await;
    wait_js(
        &client,
        "the projects",
        LONG,
        "document.querySelector('tr[data-project=\"devshop\"]')",
    )
    .await;
    wait_js(
        &client,
        "the latest pipeline",
        LONG,
        &format!(
            "document.querySelector('tr[data-project=\"devshop\"] a[href=\"/pipelines/{id}\"]')"
        ),
    )
    .await;
    screenshot(&client, "projects").await;
    click(&client, "tr[data-project=\"devshop\"] a.strong").await;
    wait_js(&client, "the project's pipelines", LONG, &row).await;
    click(&client, ".tabs a[data-tab=\"settings\"]").await;
    let settings = wait_js(
        &client,
        "the settings",
        LONG,
        "document.querySelector('.settings') && document.querySelector('.settings').textContent",
    )
    .await;
    let settings = settings.as_str().unwrap_or_default();
    assert!(
        settings.contains(&repo.url()) && settings.contains("Default branchmain"),
        "{settings}"
    );
    click(&client, ".tabs a[data-tab=\"variables\"]").await;
    wait_js(
        &client,
        "the variables",
        LONG,
        "document.querySelector('tr[data-variable=\"DEPLOY_KEY\"]')",
    )
    .await;
    assert_eq!(
        js(&client, "return [...document.querySelectorAll('tr[data-variable=\"DEPLOY_KEY\"] td')].map(td => td.textContent).slice(0, 4)").await,
        json!(["DEPLOY_KEY", "yes", "no", "no"])
    );
    let text = js(
        &client,
        "return document.body.innerText + document.body.innerHTML",
    )
    .await;
    assert!(
        !text.as_str().unwrap_or_default().contains(secret),
        "the masked value shows"
    );
    screenshot(&client, "project-variables").await;
    click(&client, ".tabs a[data-tab=\"badges\"]").await;
    let markdown = wait_js(&client, "the badges", LONG, "document.querySelector('.badge-markdown') && document.querySelector('.badge-markdown').value").await;
    assert_eq!(
        markdown,
        format!(
            "![pipeline]({base}/badges/devshop/pipeline.svg?ref=main)\n![coverage]({base}/badges/devshop/coverage.svg?ref=main)"
        )
    );
    assert_eq!(
        js(&client, "return window.__noReload").await,
        "still here",
        "the page reloaded"
    );

    // At 390 px the list shows several pipelines per screen.
    for _ in 0..2 {
        coordinator.run_pipeline("devshop", "main");
    }
    client.set_window_size(390, 844).await.expect("resize");
    client
        .goto(&format!("{base}/pipelines"))
        .await
        .expect("open the list");
    wait_js(
        &client,
        "three pipelines",
        LONG,
        "document.querySelectorAll('tr[data-pipeline]').length >= 3",
    )
    .await;
    assert_eq!(js(&client, "return innerWidth").await, 390);
    let in_sight = "[...document.querySelectorAll('tr[data-pipeline]')].filter(r => r.getBoundingClientRect().bottom <= innerHeight).length";
    let count = js(&client, &format!("return {in_sight}")).await;
    assert!(
        count.as_i64().unwrap_or(0) >= 3,
        "{count} pipelines in sight at 390 px"
    );
    assert_eq!(
        js(&client, "return document.documentElement.scrollWidth").await,
        390,
        "nothing wider than the screen"
    );
    screenshot(&client, "pipelines-390-dark").await;
    click(&client, "#theme-button").await;
    assert_eq!(
        js(&client, BACKGROUND).await,
        "rgb(250, 250, 250)",
        "light applies"
    );
    click(&client, "#theme-button").await;
    assert_eq!(
        js(&client, "return [document.documentElement.dataset.theme || 'auto', localStorage.getItem('esteira.theme')]").await,
        json!(["auto", null]),
        "back to the system's choice"
    );
    screenshot(&client, "pipelines-390").await;
    assert_eq!(
        js(&client, "return window.__errors").await,
        json!([]),
        "script errors in the pages"
    );
    client.close().await.expect("close the browser");

    // A system that prefers dark colours gets them without the button.
    let client = browser_with(&driver, 1280, 900, &["--force-dark-mode"]).await;
    client
        .goto(&format!("{base}/projects/devshop"))
        .await
        .expect("open the project");
    wait_js(&client, "the project", LONG, &row).await;
    assert_eq!(
        js(&client, "return [document.getElementById('theme-button').textContent, matchMedia('(prefers-color-scheme: dark)').matches]").await,
        json!(["Theme: auto", true])
    );
    assert_eq!(
        js(&client, BACKGROUND).await,
        "rgb(24, 23, 29)",
        "the system's dark applies"
    );
    screenshot(&client, "project-system-dark").await;
    client.close().await.expect("close the browser");
}

/// With `--read-token-required`, every read without the token gets 401, and the page asks
/// for the token, then shows the pipelines (and keeps the token across a reload).
#[test]
fn the_ui_asks_for_the_read_token() {
    run(read_token());
}

async fn read_token() {
    let root = tempfile::tempdir().expect("temp dir");
    let repo = GitRepo::init(root.path().join("repo"));
    repo.commit(
        &[(
            ".gitlab-ci.yml",
            &format!("image: {IMAGE}\nbuild:\n  script: [echo built]\n"),
        )],
        "Keep the reads private",
    );
    let coordinator = Coordinator::start_with(root.path(), 10, None, &["--read-token-required"]);
    coordinator.cli_ok(&["project", "add", "private", "--repo", &repo.url()]);
    let id = coordinator.run_pipeline("private", "main");
    let base = coordinator.url();

    // Plain HTTP: reads need the token; the page itself stays public so that it can ask.
    for path in [
        "/api/v1/pipelines",
        "/api/v1/queue",
        "/api/v1/events",
        "/badges/private/coverage.svg",
        "/metrics",
    ] {
        let (status, body) = http_get(&base, path, None);
        assert_eq!(status, 401, "{path}: {body}");
    }
    let (status, body) = http_get(&base, "/api/v1/pipelines", Some(&coordinator.admin_token));
    assert_eq!(status, 200, "{body}");
    assert_eq!(http_get(&base, "/pipelines", None).0, 200);

    let driver = Driver::start();
    let client = browser(&driver, 1280, 900).await;
    client
        .goto(&format!("{base}/pipelines"))
        .await
        .expect("open the list");
    let reason = wait_js(
        &client,
        "the token dialog",
        LONG,
        "document.getElementById('token-dialog').open && document.getElementById('token-reason').textContent",
    )
    .await;
    assert!(
        reason
            .as_str()
            .is_some_and(|text| text.contains("requires a token to read")),
        "{reason}"
    );
    assert_eq!(
        js(
            &client,
            "return document.getElementById('token-title').textContent"
        )
        .await,
        "Token required"
    );
    let row = format!("document.querySelector('tr[data-pipeline=\"{id}\"]')");
    assert_eq!(
        js(&client, &format!("return {row} === null")).await,
        true,
        "nothing shows before the token"
    );
    screenshot(&client, "read-token").await;
    enter_token(&client, &coordinator.admin_token).await;
    wait_js(&client, "the pipelines once the token is in", LONG, &row).await;

    // The token stays in the browser: a reload shows the list without asking.
    client.refresh().await.expect("reload");
    wait_js(&client, "the pipelines after a reload", LONG, &row).await;
    assert_eq!(
        js(
            &client,
            "return document.getElementById('token-dialog').open"
        )
        .await,
        false
    );
    assert_eq!(
        js(&client, "return window.__errors").await,
        json!([]),
        "script errors in the pages"
    );
    client.close().await.expect("close the browser");
}

/// `GET path` over plain HTTP/1.1, with the token as a bearer when given: (status, body).
fn http_get(base: &str, path: &str, token: Option<&str>) -> (u16, String) {
    use std::io::{Read, Write};
    let address = base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(address).expect("connect to the coordinator");
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\n{auth}Connection: close\r\n\r\n"
    )
    .expect("send the request");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read the answer");
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("an HTTP answer: {head}"));
    (status, body.to_string())
}

/// Fills a fresh coordinator store with `pipelines` finished pipelines and one job whose
/// log is `log_bytes` long; returns that job's id.
async fn fill_store(data_dir: &Path, pipelines: i64, log_bytes: usize) -> i64 {
    use esteira_coordinator::model::{JobStatus, PipelineId, PipelineStatus};
    use esteira_coordinator::store::Store;
    use esteira_coordinator::store::jobs::{Finisher, JobEnding};
    use esteira_coordinator::store::pipelines::{NewJob, NewPipeline};

    std::fs::create_dir_all(data_dir).expect("data dir");
    let store = Store::open(&data_dir.join("esteira.db").to_string_lossy(), None)
        .await
        .expect("store");
    let project = store
        .insert_project("big", "file:///nowhere", ".gitlab-ci.yml")
        .await
        .expect("project")
        .expect("a new project");
    let spec = json!({"name": "build", "stage": "build", "script": ["make"], "when": "on_success", "allow_failure": "no", "retry": {"max": 0}}).to_string();
    let statuses = [
        PipelineStatus::Success,
        PipelineStatus::Failed,
        PipelineStatus::Success,
        PipelineStatus::Canceled,
    ];
    for n in 1..=pipelines {
        let id = PipelineId(n);
        store
            .insert_pipeline(&NewPipeline {
                id,
                project_id: project.id,
                git_ref: if n % 3 == 0 {
                    "devel".into()
                } else {
                    "main".into()
                },
                ref_kind: "branch",
                sha: format!("{:040x}", n * 7919),
                commit_title: Some(format!("Change number {n} of the big project")),
                commit_author: Some("Ana Lima".into()),
                source: "push".into(),
                stages: vec!["build".into()],
                variables: vec![],
                jobs: vec![NewJob {
                    name: "build".into(),
                    stage: "build".into(),
                    stage_index: 0,
                    spec_json: spec.clone(),
                }],
            })
            .await
            .expect("pipeline");
        store
            .set_pipeline_status(id, statuses[(n % 4) as usize])
            .await
            .expect("status");
    }
    // The last pipeline's job gets the big log, written as an agent would.
    let job = store
        .pipeline_jobs(PipelineId(pipelines))
        .await
        .expect("jobs")[0]
        .clone();
    store
        .transition_job(job.id, &[JobStatus::Created], JobStatus::Pending)
        .await
        .expect("pending");
    let agent = store
        .insert_agent("bench", "bench-hash", &["docker".to_string()], "0.1.0")
        .await
        .expect("agent");
    let epoch = store
        .lease_jobs(&[(job.id, agent)], i64::MAX)
        .await
        .expect("lease")[0]
        .expect("leased");
    let mut log = Vec::with_capacity(log_bytes + 200);
    let mut line = 0u64;
    while log.len() < log_bytes {
        line += 1;
        let text = match line % 50 {
            0 => format!("\x1b[32;1m$ step {line}\x1b[0;m\n"),
            7 => format!("\x1b[33mwarning\x1b[0m: something at line {line} could be better\n"),
            13 => format!("downloading 10%\rdownloading 50%\rdownloading 100% (line {line})\n"),
            _ => format!(
                "compiling module_{line:07} with a line long enough to look like real build output\n"
            ),
        };
        log.extend_from_slice(text.as_bytes());
    }
    let mut offset = 0u64;
    for chunk in log.chunks(64 * 1024) {
        store
            .append_log(job.id, agent, epoch, offset, chunk, &[], u64::MAX)
            .await
            .expect("append")
            .expect("appended");
        offset += chunk.len() as u64;
    }
    let ending = JobEnding::success();
    assert!(
        store
            .finish_job(job.id, epoch, &ending, Finisher::Coordinator)
            .await
            .expect("finish")
            .is_some()
    );
    store.close().await;
    job.id.0
}

#[test]
#[ignore = "a measurement: run with --ignored --nocapture"]
fn measure_large_pipeline_list_and_log() {
    let _guard = docker_lock();
    run(measure());
}

async fn measure() {
    let root = tempfile::tempdir().expect("temp dir");
    let filled = Instant::now();
    let job = fill_store(&root.path().join("coordinator"), 10_000, 20 << 20).await;
    eprintln!("store filled in {:.1}s", filled.elapsed().as_secs_f64());
    let coordinator = Coordinator::start(root.path(), 10);
    let driver = Driver::start();
    let client = browser(&driver, 1280, 900).await;
    let base = coordinator.url();
    let mut figures = Vec::new();

    for (what, path) in [
        (
            "pipeline list, first page (10,000 pipelines)",
            "/pipelines".to_string(),
        ),
        (
            "pipeline list, filtered by status=canceled",
            "/pipelines?status=canceled".to_string(),
        ),
        (
            "pipeline list, an old page (?before=200)",
            "/pipelines?before=200".to_string(),
        ),
    ] {
        client.goto(&format!("{base}{path}")).await.expect("open");
        let ms = wait_js(
            &client,
            what,
            LONG,
            "document.querySelector('main').dataset.loaded && performance.now()",
        )
        .await;
        figures.push(format!(
            "{what}: usable {:.0} ms after navigation",
            ms.as_f64().unwrap_or(0.0)
        ));
    }
    // "Older" from the first page, inside the app.
    client
        .goto(&format!("{base}/pipelines"))
        .await
        .expect("open");
    wait_js(
        &client,
        "the list",
        LONG,
        "document.querySelector('main').dataset.loaded",
    )
    .await;
    let before = js(&client, "window.__t = performance.now(); document.querySelector('a[data-older]').click(); return true").await;
    assert_eq!(before, json!(true));
    let ms = wait_js(&client, "the older page", LONG, "location.search.includes('before=') && document.querySelector('main').dataset.loaded && (performance.now() - window.__t)").await;
    figures.push(format!(
        "pipeline list, clicking \"Older\": {:.0} ms",
        ms.as_f64().unwrap_or(0.0)
    ));

    client
        .goto(&format!("{base}/jobs/{job}"))
        .await
        .expect("open the job");
    let first = wait_js(
        &client,
        "the first log rows",
        LONG,
        "document.querySelectorAll('.log-row').length && performance.now()",
    )
    .await;
    let done = wait_js(
        &client,
        "the whole 20 MiB log",
        LONG,
        "document.querySelector('.log-panel').dataset.complete === 'true' && performance.now()",
    )
    .await;
    let lines = js(
        &client,
        "return Number(document.querySelector('.log-panel').dataset.lines)",
    )
    .await;
    let nodes = js(
        &client,
        "return document.querySelector('.log-panel').getElementsByTagName('*').length",
    )
    .await;
    figures.push(format!("20 MiB job log: first rows {:.0} ms, whole log loaded {:.0} ms, {} lines, {} DOM nodes in the log panel", first.as_f64().unwrap_or(0.0), done.as_f64().unwrap_or(0.0), lines, nodes));
    // Responsiveness once loaded: a search over every line, and a jump to the middle.
    let search = js(&client, "const v = document.querySelector('.log-search'); const t = performance.now(); v.value = 'module_0123456'; v.dispatchEvent(new KeyboardEvent('keydown', {key: 'Enter'})); return performance.now() - t").await;
    wait_js(
        &client,
        "the search hit",
        LONG,
        "document.querySelector('.log-current')",
    )
    .await;
    figures.push(format!(
        "20 MiB job log: search over every line {:.0} ms",
        search.as_f64().unwrap_or(0.0)
    ));
    let jump = js(&client, "const t = performance.now(); location.hash = '#L150000'; return new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(performance.now() - t))))").await;
    wait_js(&client, "line 150000 in view", LONG, "document.querySelector('.log-target .ln') && document.querySelector('.log-target .ln').textContent === '150000'").await;
    figures.push(format!(
        "20 MiB job log: jump to line 150000 painted in {:.0} ms",
        jump.as_f64().unwrap_or(0.0)
    ));
    screenshot(&client, "job-20mib").await;

    let report = figures.join("\n");
    eprintln!("\n{report}\n");
    std::fs::write(
        screenshot_dir().join("measurements.txt"),
        format!("{report}\n"),
    )
    .expect("write figures");
    client.close().await.expect("close the browser");
}

/// For working on the UI: screenshots of a running coordinator's pages.
/// `ESTEIRA_UI_URL=http://127.0.0.1:8080 ESTEIRA_UI_PAGES=/pipelines,/agents cargo test -p esteira-tests --test ui -- --ignored screenshots_of`
#[test]
#[ignore = "a tool for people working on the UI"]
fn screenshots_of_a_running_coordinator() {
    run(screenshots());
}

async fn screenshots() {
    let base = std::env::var("ESTEIRA_UI_URL")
        .expect("set ESTEIRA_UI_URL to the running coordinator's address");
    let pages = std::env::var("ESTEIRA_UI_PAGES").unwrap_or_else(|_| "/pipelines".into());
    let width: u32 = std::env::var("ESTEIRA_UI_WIDTH")
        .ok()
        .and_then(|w| w.parse().ok())
        .unwrap_or(1280);
    let driver = Driver::start();
    let client = browser(&driver, width, 900).await;
    for page in pages.split(',') {
        client.goto(&format!("{base}{page}")).await.expect("open");
        wait_js(
            &client,
            page,
            LONG,
            "document.querySelector('main').dataset.loaded",
        )
        .await;
        if let Ok(expression) = std::env::var("ESTEIRA_UI_EVAL") {
            eprintln!(
                "{page}: {}",
                js(&client, &format!("return {expression}")).await
            );
        }
        let logs = js(&client, "return (window.__errors || []).join('\\n')").await;
        if logs.as_str().is_some_and(|s| !s.is_empty()) {
            eprintln!("{page}: {logs}");
        }
        let name = page.trim_matches('/').replace(['/', '?', '=', '&'], "_");
        screenshot(
            &client,
            &format!("dev-{}", if name.is_empty() { "root" } else { &name }),
        )
        .await;
    }
    client.close().await.expect("close the browser");
}
