//! Per-line timestamps through the whole system: the agent stamps each line of a job's
//! log where it starts, the coordinator keeps the stamps beside the log, and
//! `GET /api/v1/jobs/{id}/log/stamps` answers them in order; the raw log holds exactly
//! the bytes the job printed, nothing of the stamps.

use esteira_tests::seed::http_get;
use esteira_tests::{IMAGE, Setup};
use serde_json::Value;

#[test]
fn each_line_of_a_log_is_stamped_where_it_starts_and_the_log_stays_raw() {
    let file = format!(
        "job:\n  image: {IMAGE}\n  script:\n    - echo first\n    - sleep 1\n    \
         - printf 'half a line'; sleep 1; printf ', then the rest\\n\\n'\n    - echo last\n"
    );
    let setup = Setup::start("stamps", &file, 1);
    let coordinator = &setup.coordinator;
    let id = coordinator.run_pipeline("stamps", "main");
    coordinator.cli_ok(&["pipeline", "wait", &id]);
    let pipeline = coordinator.pipeline(&id);
    let job = coordinator.job(&pipeline, "job")["id"].clone();
    let log = coordinator.job_log(&job);
    let text = String::from_utf8_lossy(&log);
    assert!(text.contains("\nfirst\n"), "{text}");
    assert!(text.contains("\nhalf a line, then the rest\n\n"), "{text}");

    let (status, body) = http_get(
        coordinator.http_port,
        &format!("/api/v1/jobs/{job}/log/stamps"),
    )
    .expect("the coordinator answers");
    assert_eq!(status, 200, "{body}");
    let stamps: Value = serde_json::from_str(&body).expect("JSON stamps");
    let stamps: Vec<(usize, i64)> = stamps
        .as_array()
        .expect("a list of stamps")
        .iter()
        .map(|stamp| {
            let offset = stamp["offset"].as_u64().expect("an offset");
            let at = stamp["at_ms"].as_i64().expect("a time");
            (usize::try_from(offset).expect("an offset in memory"), at)
        })
        .collect();
    let line_starts: Vec<usize> = std::iter::once(0)
        .chain(
            log.iter()
                .enumerate()
                .filter(|(index, byte)| **byte == b'\n' && index + 1 < log.len())
                .map(|(index, _)| index + 1),
        )
        .collect();
    let offsets: Vec<usize> = stamps.iter().map(|(offset, _)| *offset).collect();
    assert_eq!(offsets, line_starts, "one stamp per line, where it starts");
    assert!(
        stamps.windows(2).all(|pair| pair[0].1 <= pair[1].1),
        "stamps in time order: {stamps:?}"
    );

    // `line` starts with the newline that ends the line before it.
    let stamp_of = |line: &str| {
        let at = 1 + text
            .find(line)
            .unwrap_or_else(|| panic!("{line:?} in {text}"));
        stamps
            .iter()
            .find(|(offset, _)| *offset == at)
            .map(|(_, at_ms)| *at_ms)
            .unwrap_or_else(|| panic!("no stamp for {line:?}"))
    };
    let first = stamp_of("\nfirst\n");
    let half = stamp_of("\nhalf a line");
    let last = stamp_of("\nlast\n");
    assert!(
        half - first >= 900,
        "the sleep between the lines shows: {first} {half}"
    );
    assert!(
        last - half >= 900,
        "a line is stamped where it starts: {half} {last}"
    );
}
