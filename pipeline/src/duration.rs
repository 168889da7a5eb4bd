//! GitLab's human durations (`timeout`, `start_in`, `expire_in`): "1h 30m", "3 hours",
//! "2 days and 4 hours", "90" (seconds), as read by the ChronicDuration library GitLab uses.

/// Seconds in `text`, or a message saying what is wrong.
pub fn parse_duration(text: &str) -> Result<u64, String> {
    let cleaned = text.trim().to_ascii_lowercase();
    if cleaned.is_empty() {
        return Err("empty duration".into());
    }
    let mut total: f64 = 0.0;
    let mut number: Option<f64> = None;
    let mut rest = cleaned.as_str();
    while !rest.is_empty() {
        rest = rest.trim_start_matches([' ', ',', '\t']);
        if rest.is_empty() {
            break;
        }
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if digits > 0 {
            if let Some(previous) = number.take() {
                total += previous;
            }
            number = Some(
                rest[..digits]
                    .parse()
                    .map_err(|_| format!("'{text}' is not a duration"))?,
            );
            rest = &rest[digits..];
            continue;
        }
        let word_len = rest
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(rest.len());
        let word = &rest[..word_len];
        rest = &rest[word_len..];
        if word == "and" {
            continue;
        }
        let unit = unit_seconds(word)
            .ok_or_else(|| format!("'{text}' is not a duration (unknown unit '{word}')"))?;
        let amount = number
            .take()
            .ok_or_else(|| format!("'{text}' is not a duration ('{word}' without a number)"))?;
        total += amount * unit;
    }
    if let Some(seconds) = number {
        total += seconds;
    }
    Ok(total.round() as u64)
}

fn unit_seconds(word: &str) -> Option<f64> {
    Some(match word {
        "s" | "sec" | "secs" | "second" | "seconds" => 1.0,
        "m" | "min" | "mins" | "minute" | "minutes" => 60.0,
        "h" | "hr" | "hrs" | "hour" | "hours" => 3600.0,
        "d" | "day" | "days" => 86_400.0,
        "w" | "wk" | "wks" | "week" | "weeks" => 604_800.0,
        "mo" | "mos" | "month" | "months" => 2_592_000.0,
        "y" | "yr" | "yrs" | "year" | "years" => 31_557_600.0,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // CI/CD YAML reference, "timeout": "3 hours 30 minutes", "3h 30m".
    #[test]
    fn documented_forms() {
        assert_eq!(parse_duration("3 hours 30 minutes"), Ok(12_600));
        assert_eq!(parse_duration("3h 30m"), Ok(12_600));
        assert_eq!(parse_duration("30 minutes"), Ok(1_800));
        assert_eq!(parse_duration("1 day"), Ok(86_400));
        assert_eq!(parse_duration("42"), Ok(42));
        assert_eq!(parse_duration("1 week and 2 days"), Ok(777_600));
        assert_eq!(parse_duration("1.5 hours"), Ok(5_400));
    }

    #[test]
    fn rejects_nonsense() {
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("hours").is_err());
    }
}
