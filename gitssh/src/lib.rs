//! Git over SSH with a private key given as text (a project's deploy key), as both the
//! coordinator (its mirrors) and the agents (their checkouts) fetch: the key is written
//! for the time of one git command to a file only its owner can read, in a directory
//! only its owner can enter, and git runs ssh through [`TemporaryKey::git_ssh_command`]:
//! that key only (no ssh-agent's), the host's key recorded on first contact in a
//! `known_hosts` file of the caller's and refused if it changes later.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// A key written for one git command; the file is removed when this is dropped.
#[derive(Debug)]
pub struct TemporaryKey {
    path: PathBuf,
}

impl TemporaryKey {
    /// Writes `key` into `dir` (created 0700 if needed) as a 0600 file of a fresh name.
    pub fn write(dir: &Path, key: &str) -> std::io::Result<TemporaryKey> {
        static WRITTEN: AtomicU64 = AtomicU64::new(0);
        std::fs::create_dir_all(dir)?;
        #[cfg(unix)]
        std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))?;
        let count = WRITTEN.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .subsec_nanos();
        let name = format!("key-{}-{count}-{nanos:08x}", std::process::id());
        // Made before the write, so that a failed write removes what it left.
        let written = TemporaryKey {
            path: dir.join(name),
        };
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&written.path)?;
        // ssh refuses a key file without its final newline.
        writeln!(file, "{}", key.trim_end())?;
        Ok(written)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The `GIT_SSH_COMMAND` for git to use this key, checking hosts against
    /// `known_hosts`.
    pub fn git_ssh_command(&self, known_hosts: &Path) -> String {
        format!(
            "ssh -i {} -o IdentitiesOnly=yes -o StrictHostKeyChecking=accept-new -o UserKnownHostsFile={}",
            shell_quote(&self.path.to_string_lossy()),
            shell_quote(&known_hosts.to_string_lossy())
        )
    }
}

impl Drop for TemporaryKey {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// `text` as one word for `sh` (git runs `GIT_SSH_COMMAND` through the shell).
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----";

    #[test]
    fn a_key_is_written_for_its_owner_only_and_removed_after() {
        let dir = tempfile::tempdir().unwrap();
        let ssh_dir = dir.path().join(".ssh");
        let key = TemporaryKey::write(&ssh_dir, &format!("{KEY}\n\n")).unwrap();
        let path = key.path().to_path_buf();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), format!("{KEY}\n"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&path), 0o600);
            assert_eq!(mode(&ssh_dir), 0o700);
        }
        let second = TemporaryKey::write(&ssh_dir, KEY).unwrap();
        assert_ne!(second.path(), path, "every fetch gets its own file");
        drop(key);
        assert!(!path.exists());
    }

    #[test]
    fn the_ssh_command_uses_the_key_only_and_the_given_known_hosts() {
        let dir = tempfile::tempdir().unwrap();
        let key = TemporaryKey::write(&dir.path().join("it's"), KEY).unwrap();
        let command = key.git_ssh_command(Path::new("/data dir/known_hosts"));
        assert_eq!(
            command,
            format!(
                "ssh -i {} -o IdentitiesOnly=yes -o StrictHostKeyChecking=accept-new \
                 -o UserKnownHostsFile='/data dir/known_hosts'",
                shell_quote(&key.path().to_string_lossy())
            )
        );
        // The shell reads a quoted path back as one word.
        let words = std::process::Command::new("sh")
            .args([
                "-c",
                &format!("printf '%s\\n' {}", shell_quote("/a b/it's")),
            ])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&words.stdout), "/a b/it's\n");
    }
}
