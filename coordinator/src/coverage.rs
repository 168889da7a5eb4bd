//! Code coverage read from job logs, as GitLab does: the job's `coverage` regex is applied
//! to each line of its log (so `^` and `$` anchor to a line), the last match wins, and the
//! first number in it (of the first capture group when there is one) is the figure. A
//! pipeline's coverage is the mean of its jobs'.

use regex::bytes::Regex;

/// The coverage figure `pattern` finds in `log`, if any. An invalid pattern finds none
/// (the linter reports it).
pub fn find(pattern: &str, log: &[u8]) -> Option<f64> {
    let regex = Regex::new(pattern).ok()?;
    let captures = log
        .split(|byte| *byte == b'\n')
        .rev()
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
        .find_map(|line| regex.captures_iter(line).last())?;
    let matched = captures.get(1).or_else(|| captures.get(0))?;
    let number = Regex::new(r"\d+(?:\.\d+)?").ok()?;
    let figure = number.find(matched.as_bytes())?;
    std::str::from_utf8(figure.as_bytes()).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::find;

    #[test]
    fn the_last_match_gives_the_figure() {
        let log = b"TOTAL 10 5 50%\nmore\nTOTAL 120 12 90%\n";
        assert_eq!(find(r"TOTAL.+ ([0-9]{1,3}%)", log), Some(90.0));
    }

    #[test]
    fn anchors_match_each_line() {
        let log = b"Name Stmts Miss Cover\r\napi.py 54 8 85%\r\nTOTAL 54 8 85%\r\ndone\n";
        assert_eq!(find(r"^TOTAL.+?(\d+(?:\.\d+)?)%$", log), Some(85.0));
    }

    #[test]
    fn decimals_and_no_group_work() {
        assert_eq!(
            find(r"Coverage: \d+\.\d+%", b"Coverage: 87.35%\n"),
            Some(87.35)
        );
    }

    #[test]
    fn nothing_found_or_a_bad_pattern_gives_none() {
        assert_eq!(find(r"TOTAL.+ (\d+%)", b"no figures here"), None);
        assert_eq!(find(r"(unclosed", b"(unclosed 5"), None);
    }
}
