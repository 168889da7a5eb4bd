//! JUnit XML reports (`artifacts:reports:junit`) read into test counts and the list of
//! failed tests, for the job's `details`. A tolerant scan, not a full XML parser: it reads
//! `<testcase>` elements and what they contain, whatever tool wrote them.

use serde::Serialize;

/// What a set of reports says.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub(crate) struct Summary {
    pub tests: u64,
    pub failures: u64,
    pub errors: u64,
    pub skipped: u64,
    /// The failed and errored tests, at most [`MAX_FAILED`].
    pub failed: Vec<FailedTest>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct FailedTest {
    pub classname: String,
    pub name: String,
    pub message: String,
}

const MAX_FAILED: usize = 100;

impl Summary {
    /// Adds the test cases of one report.
    pub(crate) fn add_report(&mut self, xml: &str) {
        let mut rest = xml;
        while let Some(start) = rest.find("<testcase") {
            let after = &rest[start + "<testcase".len()..];
            if !after.starts_with(|c: char| c.is_whitespace() || c == '>' || c == '/') {
                rest = after;
                continue;
            }
            let Some(tag_end) = after.find('>') else {
                break;
            };
            let tag = &after[..tag_end];
            let (body, next) = if tag.ends_with('/') {
                ("", &after[tag_end + 1..])
            } else {
                let body_all = &after[tag_end + 1..];
                match body_all.find("</testcase>") {
                    Some(end) => (&body_all[..end], &body_all[end..]),
                    None => (body_all, ""),
                }
            };
            self.tests += 1;
            let outcome = if let Some(at) = body.find("<failure") {
                self.failures += 1;
                Some(&body[at..])
            } else if let Some(at) = body.find("<error") {
                self.errors += 1;
                Some(&body[at..])
            } else {
                if body.contains("<skipped") {
                    self.skipped += 1;
                }
                None
            };
            if let Some(element) = outcome
                && self.failed.len() < MAX_FAILED
            {
                let open_tag = &element[..element.find('>').unwrap_or(element.len())];
                self.failed.push(FailedTest {
                    classname: attribute(tag, "classname").unwrap_or_default(),
                    name: attribute(tag, "name").unwrap_or_default(),
                    message: attribute(open_tag, "message").unwrap_or_default(),
                });
            }
            rest = next;
        }
    }
}

/// The value of `name="…"` (or `'…'`) in a start tag, entities decoded.
fn attribute(tag: &str, name: &str) -> Option<String> {
    let mut search = tag;
    loop {
        let at = search.find(name)?;
        let before_ok = at == 0 || search[..at].ends_with(char::is_whitespace);
        let after = search[at + name.len()..].trim_start();
        if before_ok && let Some(value) = after.strip_prefix('=') {
            let value = value.trim_start();
            let quote = value.chars().next()?;
            if quote != '"' && quote != '\'' {
                return None;
            }
            let inner = &value[1..];
            let end = inner.find(quote)?;
            return Some(decode(&inner[..end]));
        }
        search = &search[at + name.len()..];
    }
}

fn decode(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_cases_failures_errors_and_skips() {
        let xml = r#"<?xml version="1.0"?>
<testsuites><testsuite name="api" tests="5">
  <testcase classname="test_api" name="test_ok" time="0.1"/>
  <testcase classname="test_api" name="test_bad"><failure message="assert 1 == 2">trace &lt;x&gt;</failure></testcase>
  <testcase classname="test_db" name="test_conn"><error message="no &quot;db&quot;"/></testcase>
  <testcase classname="test_db" name="test_later"><skipped/></testcase>
  <testcase name="test_plain"></testcase>
</testsuite></testsuites>"#;
        let mut summary = Summary::default();
        summary.add_report(xml);
        assert_eq!(
            (
                summary.tests,
                summary.failures,
                summary.errors,
                summary.skipped
            ),
            (5, 1, 1, 1)
        );
        assert_eq!(
            summary.failed,
            vec![
                FailedTest {
                    classname: "test_api".into(),
                    name: "test_bad".into(),
                    message: "assert 1 == 2".into()
                },
                FailedTest {
                    classname: "test_db".into(),
                    name: "test_conn".into(),
                    message: "no \"db\"".into()
                },
            ]
        );
    }

    #[test]
    fn ignores_what_is_not_a_test_case() {
        let mut summary = Summary::default();
        summary.add_report("<testcases><testcaseX/></testcases> <testcase");
        assert_eq!(summary.tests, 0);
    }
}
