//! The agent's own credential, kept in its work dir (mode 0600) after registration.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Credentials {
    pub agent_id: i64,
    pub token: String,
}

pub fn path(work_dir: &Path) -> PathBuf {
    work_dir.join("credentials.json")
}

/// The stored credential, if any (an unreadable file counts as none).
pub fn load(work_dir: &Path) -> Option<Credentials> {
    let text = std::fs::read_to_string(path(work_dir)).ok()?;
    serde_json::from_str(&text).ok()
}

pub fn save(work_dir: &Path, credentials: &Credentials) -> std::io::Result<()> {
    std::fs::create_dir_all(work_dir)?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path(work_dir))?;
    file.write_all(serde_json::to_string_pretty(credentials)?.as_bytes())
}

pub fn forget(work_dir: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path(work_dir)) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err(error),
        _ => Ok(()),
    }
}
