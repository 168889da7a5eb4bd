//! The shell script a job's container runs: each command echoed GitLab-style (a green
//! `$ command` line) before it runs, `set -e` so the first failing command ends it.
//!
//! Standard error goes into standard output: Docker copies the two streams separately and
//! may deliver them out of order, while one stream keeps the order the job wrote in.

/// The script for these commands, for a POSIX `sh`.
pub(crate) fn render(commands: &[String]) -> String {
    let mut script = String::from("exec 2>&1\nset -e\n");
    for command in commands {
        let shown = echo_text(command);
        script.push_str("printf '%s\\n' ");
        script.push_str(&single_quote(&format!("\x1b[32;1m$ {shown}\x1b[0;m")));
        script.push('\n');
        script.push_str(command);
        script.push('\n');
    }
    script
}

/// What the log shows of a command: its first line, marked when more lines follow.
fn echo_text(command: &str) -> String {
    let trimmed = command.trim_end_matches('\n');
    match trimmed.split_once('\n') {
        Some((first, _)) => format!("{first} # collapsed multi-line command"),
        None => trimmed.to_string(),
    }
}

/// `text` as one single-quoted shell word.
pub(crate) fn single_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echoes_then_runs_each_command() {
        let script = render(&["echo hi".to_string(), "exit 3".to_string()]);
        assert_eq!(
            script,
            "exec 2>&1\nset -e\nprintf '%s\\n' '\x1b[32;1m$ echo hi\x1b[0;m'\necho hi\n\
             printf '%s\\n' '\x1b[32;1m$ exit 3\x1b[0;m'\nexit 3\n"
        );
    }

    #[test]
    fn quotes_single_quotes_and_collapses_multi_line_commands() {
        let script = render(&["echo 'a'\necho b\n".to_string()]);
        assert!(
            script
                .contains("'\x1b[32;1m$ echo '\\''a'\\'' # collapsed multi-line command\x1b[0;m'")
        );
        assert!(script.ends_with("echo 'a'\necho b\n\n"));
    }
}
