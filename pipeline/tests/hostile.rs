//! Hostile pipeline files: each is refused with an error naming the limit it passed, within
//! a bound of time and of memory. Each case runs in a child process of this test binary
//! under `ulimit -v` (a regression aborts the child instead of taking the machine), and
//! the child's peak RSS (`VmHWM`) is checked against a bound.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use esteira_pipeline::lint_command::{EXIT_INVALID, LintOptions, run_lint};
use esteira_pipeline::{EventContext, MemorySource, PipelineSource, RefKind, lint, plan_pipeline};

/// Address space a child may map; a file that materialised gigabytes would pass it.
const CHILD_ADDRESS_SPACE_KIB: u64 = 3 * 1024 * 1024;
/// Peak resident memory of a child refusing a file (the limits are 64 MiB each).
const MAX_PEAK_RSS_KIB: u64 = 600 * 1024;
/// Time a child may take to refuse a file (unoptimised build).
const MAX_TIME: Duration = Duration::from_secs(20);
const CASE_VARIABLE: &str = "ESTEIRA_HOSTILE_CASE";
const MIB: usize = 1024 * 1024;

/// What a hostile file is checked with.
enum Stage {
    Lint,
    Plan,
}

struct Case {
    name: &'static str,
    stage: Stage,
    /// Part of the one error expected.
    refused_with: &'static str,
    file: fn() -> String,
}

fn big_string() -> String {
    "x".repeat(MIB)
}

fn jobs(count: usize, body: &str) -> String {
    (0..count).map(|i| format!("job{i}:\n{body}")).collect()
}

const CASES: &[Case] = &[
    Case {
        name: "one_mib_string_aliased_2000_times",
        stage: Stage::Lint,
        refused_with: "the pipeline expands to more than 64 MiB through aliases",
        file: || {
            let aliases = vec!["*big"; 2000].join(", ");
            format!(
                "variables:\n  BIG: &big \"{}\"\njob:\n  script: [{aliases}]\n",
                big_string()
            )
        },
    },
    Case {
        name: "nested_anchors_keep_copies",
        stage: Stage::Lint,
        refused_with: "more than 64 MiB through aliases",
        file: || {
            let depth = 100;
            let open: String = (0..depth).map(|i| format!("&l{i} [")).collect();
            format!("x: {open}\"{}\"{}\n", big_string(), "]".repeat(depth))
        },
    },
    Case {
        name: "extends_copies_a_big_template",
        stage: Stage::Lint,
        refused_with: "more than 64 MiB through extends",
        file: || {
            format!(
                ".big:\n  script: [\"{}\"]\n{}",
                big_string(),
                jobs(100, "  extends: .big\n")
            )
        },
    },
    Case {
        name: "references_of_references",
        stage: Stage::Lint,
        refused_with: "more than 64 MiB through !reference",
        file: || {
            let refs = |of: &str| vec![format!("!reference [{of}, s]"); 10].join(", ");
            format!(
                ".a:\n  s: [\"{}\"]\n.b:\n  s: [{}]\n.c:\n  s: [{}]\njob:\n  script: [x]\n",
                big_string(),
                refs(".a"),
                refs(".b")
            )
        },
    },
    Case {
        name: "default_copied_into_every_job",
        stage: Stage::Lint,
        refused_with: "the file defines more than 64 MiB of jobs as JSON",
        file: || {
            format!(
                "default:\n  before_script: [\"{}\"]\n{}",
                big_string(),
                jobs(100, "  script: [x]\n")
            )
        },
    },
    Case {
        name: "global_variables_copied_into_every_job",
        stage: Stage::Lint,
        refused_with: "the file defines more than 64 MiB of jobs as JSON",
        file: || {
            format!(
                "variables:\n  BIG: \"{}\"\n{}",
                big_string(),
                jobs(100, "  script: [x]\n")
            )
        },
    },
    Case {
        name: "ten_thousand_jobs",
        stage: Stage::Lint,
        refused_with: "the file defines more than 5000 jobs",
        file: || jobs(10_000, "  script: [x]\n"),
    },
    Case {
        name: "parallel_copies_past_the_job_limit",
        stage: Stage::Plan,
        refused_with: "the plan for this event has more than 5000 jobs",
        file: || jobs(30, "  script: [x]\n  parallel: 200\n"),
    },
    Case {
        name: "variables_that_expand_to_gigabytes",
        stage: Stage::Plan,
        refused_with: "variables expand to more than 64 MiB while planning",
        file: || {
            let mut text = String::from("variables:\n");
            for level in 0..10 {
                let next = format!("${{V{}}}", level + 1);
                text.push_str(&format!("  V{level}: \"{}\"\n", next.repeat(10)));
            }
            text.push_str("  V10: xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n");
            text.push_str("job:\n  image: \"$V0\"\n  script: [x]\n");
            text
        },
    },
    Case {
        name: "a_file_over_8_mib",
        stage: Stage::Lint,
        refused_with: "over the limit of 8 MiB for a pipeline file",
        file: || format!("# {}\njob:\n  script: [x]\n", "x".repeat(9 * MIB)),
    },
];

fn context() -> EventContext {
    EventContext {
        git_ref: RefKind::Branch("main".into()),
        sha: "0123456789abcdef0123456789abcdef01234567".into(),
        source: PipelineSource::Push,
        changed_files: None,
        variables: BTreeMap::new(),
        overriding_variables: BTreeMap::new(),
        project_path: "group/project".into(),
    }
}

/// The peak resident set of this process, in KiB.
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn hostile_files_are_refused_within_bounds_of_memory_and_time() {
    let exe = std::env::current_exe().unwrap();
    for case in CASES {
        let started = Instant::now();
        let output = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "ulimit -v {CHILD_ADDRESS_SPACE_KIB} && exec \"$0\" --exact refuse_one_hostile_case --ignored --nocapture --test-threads=1"
            ))
            .arg(&exe)
            .env(CASE_VARIABLE, case.name)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{}: the child failed ({}):\n{stdout}\n{}",
            case.name,
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        let peak: u64 = stdout
            .lines()
            .find_map(|l| l.split_once("peak_rss_kib="))
            .and_then(|(_, v)| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("{}: no peak reported:\n{stdout}", case.name));
        println!(
            "{}: refused in {:?}, peak RSS {} MiB",
            case.name,
            started.elapsed(),
            peak / 1024
        );
        assert!(
            peak < MAX_PEAK_RSS_KIB,
            "{}: peak RSS {peak} KiB over {MAX_PEAK_RSS_KIB} KiB",
            case.name
        );
    }
}

/// One case, run by the test above in a child process under a memory limit.
#[test]
#[ignore = "run in a child process by hostile_files_are_refused_within_bounds_of_memory_and_time"]
fn refuse_one_hostile_case() {
    let name = std::env::var(CASE_VARIABLE).unwrap();
    let case = CASES.iter().find(|c| c.name == name).unwrap();
    let text = (case.file)();
    let files = MemorySource::from_files([(".gitlab-ci.yml", text.as_str())]);
    drop(text);
    let started = Instant::now();
    let diagnostics = match case.stage {
        Stage::Lint => lint(&files, ".gitlab-ci.yml"),
        Stage::Plan => {
            assert!(
                lint(&files, ".gitlab-ci.yml").is_empty(),
                "{name}: lint refuses what only planning should"
            );
            plan_pipeline(&files, ".gitlab-ci.yml", &context()).unwrap_err()
        }
    };
    let elapsed = started.elapsed();
    assert_eq!(diagnostics.len(), 1, "{name}: {diagnostics:?}");
    assert!(
        diagnostics[0].message.contains(case.refused_with),
        "{name}: {}",
        diagnostics[0]
    );
    assert!(elapsed < MAX_TIME, "{name}: took {elapsed:?}");
    println!("peak_rss_kib={}", peak_rss_kib());
}

/// `esteira lint` on the alias bomb: the error as `FILE:LINE:COL: message`, exit code 1.
#[test]
fn lint_command_refuses_the_alias_bomb() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(".gitlab-ci.yml");
    std::fs::write(&path, (CASES[0].file)()).unwrap();
    let file = path.to_string_lossy().into_owned();
    let outcome = run_lint(&LintOptions {
        file: file.clone(),
        ..LintOptions::default()
    });
    assert_eq!(outcome.code, EXIT_INVALID, "{}", outcome.stderr);
    assert!(
        outcome.stderr.starts_with(&format!("{file}:4:"))
            && outcome.stderr.contains(CASES[0].refused_with),
        "{}",
        outcome.stderr
    );
}
