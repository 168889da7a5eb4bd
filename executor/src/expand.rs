//! Variable references (`$NAME`, `${NAME}`, `$$`) expanded against the job's variables,
//! for the values the executor itself reads: cache keys, paths, build tags and args.
//! Public so that `esteira exec`, which gives jobs their variables itself, expands them
//! the same way.

/// `text` with every `$NAME` and `${NAME}` replaced by the variable's value (the last
/// definition wins; unknown names become empty) and `$$` by `$`.
pub fn expand(text: &str, vars: &[(String, String)]) -> String {
    let lookup = |name: &str| -> &str {
        vars.iter()
            .rev()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
            .unwrap_or("")
    };
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(stripped) = after.strip_prefix('$') {
            out.push('$');
            rest = stripped;
        } else if let Some(braced) = after.strip_prefix('{')
            && let Some(end) = braced.find('}')
        {
            out.push_str(lookup(&braced[..end]));
            rest = &braced[end + 1..];
        } else {
            let len = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            if len == 0 {
                out.push('$');
            } else {
                out.push_str(lookup(&after[..len]));
            }
            rest = &after[len..];
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_both_forms_and_keeps_the_rest() {
        let vars = vec![
            ("A".to_string(), "one".to_string()),
            ("B_2".to_string(), "two".to_string()),
            ("A".to_string(), "uno".to_string()),
        ];
        assert_eq!(expand("$A-${B_2}/x", &vars), "uno-two/x");
        assert_eq!(expand("cost $$5 $ and $MISSING.", &vars), "cost $5 $ and .");
        assert_eq!(expand("${A", &vars), "${A");
    }
}
