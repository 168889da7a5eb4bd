//! A strict reader of the Prometheus/OpenMetrics text format, for tests that scrape
//! `/metrics`: every line must be a `# HELP`/`# TYPE`/`# UNIT` comment, a sample of the
//! family declared above it (with its `_total`, `_bucket`, `_count`, … suffix), or the
//! closing `# EOF`; label values are quoted and escaped; values are numbers.

use std::collections::BTreeMap;

/// One sample: the series name, its labels and its value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// Parses a whole exposition, or says which line is wrong and why.
pub fn parse(text: &str) -> Result<Vec<Sample>, String> {
    let mut samples = Vec::new();
    let mut family: Option<(String, String)> = None;
    let mut ended = false;
    for (index, line) in text.lines().enumerate() {
        let wrong = |why: &str| format!("line {}: {why}: {line:?}", index + 1);
        if ended {
            return Err(wrong("a line after # EOF"));
        }
        if line == "# EOF" {
            ended = true;
        } else if let Some(comment) = line.strip_prefix("# ") {
            let mut words = comment.splitn(3, ' ');
            let (kind, name) = (words.next(), words.next().ok_or_else(|| wrong("no name"))?);
            check_name(name).map_err(|why| wrong(&why))?;
            match kind {
                Some("TYPE") => {
                    let kind = words.next().ok_or_else(|| wrong("no type"))?;
                    let known = [
                        "counter",
                        "gauge",
                        "histogram",
                        "info",
                        "summary",
                        "unknown",
                    ];
                    if !known.contains(&kind) {
                        return Err(wrong("unknown type"));
                    }
                    family = Some((name.to_string(), kind.to_string()));
                }
                Some("HELP") | Some("UNIT") => {}
                _ => return Err(wrong("unknown comment")),
            }
        } else {
            let sample = sample(line).map_err(|why| wrong(&why))?;
            let Some((family_name, kind)) = &family else {
                return Err(wrong("a sample before any # TYPE"));
            };
            let suffix = sample.name.strip_prefix(family_name.as_str());
            let allowed: &[&str] = match kind.as_str() {
                "counter" => &["_total", "_created"],
                "histogram" => &["_bucket", "_count", "_sum", "_created"],
                "info" => &["_info"],
                "summary" => &["", "_count", "_sum", "_created"],
                _ => &[""],
            };
            if !suffix.is_some_and(|suffix| allowed.contains(&suffix)) {
                return Err(wrong(&format!("not a sample of the {kind} {family_name}")));
            }
            samples.push(sample);
        }
    }
    if !ended {
        return Err("no # EOF at the end".to_string());
    }
    Ok(samples)
}

fn check_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':');
    if first_ok && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
        Ok(())
    } else {
        Err(format!("bad metric name {name:?}"))
    }
}

fn sample(line: &str) -> Result<Sample, String> {
    let name_end = line.find(['{', ' ']).ok_or("no value")?;
    let name = &line[..name_end];
    check_name(name)?;
    let mut rest = &line[name_end..];
    let mut labels = BTreeMap::new();
    if let Some(inside) = rest.strip_prefix('{') {
        rest = read_labels(inside, &mut labels)?;
    }
    let mut fields = rest
        .strip_prefix(' ')
        .ok_or("no space before the value")?
        .split(' ');
    let value = fields.next().ok_or("no value")?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        other => other.parse().map_err(|_| format!("bad value {other:?}"))?,
    };
    if let Some(timestamp) = fields.next() {
        timestamp
            .parse::<f64>()
            .map_err(|_| format!("bad timestamp {timestamp:?}"))?;
    }
    if fields.next().is_some() {
        return Err("more than a value and a timestamp".to_string());
    }
    Ok(Sample {
        name: name.to_string(),
        labels,
        value,
    })
}

/// Reads `key="value",…}` into `labels`; the text after the `}`.
fn read_labels<'a>(
    mut inside: &'a str,
    labels: &mut BTreeMap<String, String>,
) -> Result<&'a str, String> {
    loop {
        if let Some(rest) = inside.strip_prefix('}') {
            return Ok(rest);
        }
        let (key, quoted) = inside.split_once("=\"").ok_or("a label without =\"")?;
        check_name(key)?;
        let mut value = String::new();
        let mut chars = quoted.char_indices();
        let end = loop {
            match chars.next().ok_or("unclosed label value")? {
                (at, '"') => break at + 1,
                (_, '\\') => match chars.next().ok_or("dangling escape")?.1 {
                    'n' => value.push('\n'),
                    escaped @ ('\\' | '"') => value.push(escaped),
                    other => return Err(format!("bad escape \\{other}")),
                },
                (_, c) => value.push(c),
            }
        };
        if labels.insert(key.to_string(), value).is_some() {
            return Err(format!("label {key} twice"));
        }
        inside = &quoted[end..];
        if let Some(next) = inside.strip_prefix(',') {
            inside = next;
        } else if !inside.starts_with('}') {
            return Err("labels not separated by ,".to_string());
        }
    }
}

/// The value of the one sample named `name` whose labels include `labels`.
pub fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut matching = samples.iter().filter(|sample| {
        sample.name == name
            && labels
                .iter()
                .all(|(key, value)| sample.labels.get(*key).map(String::as_str) == Some(*value))
    });
    let found = matching.next()?;
    assert!(matching.next().is_none(), "more than one {name} {labels:?}");
    Some(found.value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_families_and_refuses_strays() {
        let text = "# HELP a_total x\n# TYPE a counter\na_total{r=\"x,y\",q=\"\\\"\"} 3\n\
                    # TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_count 1\nh_sum 0.5\n# EOF\n";
        let samples = parse(text).unwrap();
        assert_eq!(
            value(&samples, "a_total", &[("r", "x,y"), ("q", "\"")]),
            Some(3.0)
        );
        assert_eq!(value(&samples, "h_count", &[]), Some(1.0));
        assert!(parse("# TYPE a counter\nb_total 1\n# EOF\n").is_err());
        assert!(parse("# TYPE a gauge\na{x=\"1\" 1\n# EOF\n").is_err());
        assert!(parse("# TYPE a gauge\na one\n# EOF\n").is_err());
        assert!(parse("# TYPE a gauge\na 1\n").is_err());
    }
}
