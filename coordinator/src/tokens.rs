//! Secrets the coordinator hands out or checks: generated tokens, their stored hashes, and
//! the token files written to the data dir on first start.

use std::io::Write;
use std::path::Path;

use rand::RngCore;
use sha2::{Digest, Sha256};

/// A fresh random token, 32 bytes as hex.
pub fn generate() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// The hash under which a token is stored (the token itself never is).
pub fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Compares two secrets in time independent of where they differ.
pub fn equal(given: &str, expected: &str) -> bool {
    let (a, b) = (
        Sha256::digest(given.as_bytes()),
        Sha256::digest(expected.as_bytes()),
    );
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// The token from the environment, or the one kept in `file`, or a new one written there
/// (mode 0600). Returns the token and whether it was just created.
pub fn load_or_create(given: Option<String>, file: &Path) -> std::io::Result<(String, bool)> {
    if let Some(token) = given.filter(|token| !token.is_empty()) {
        return Ok((token, false));
    }
    if let Ok(existing) = std::fs::read_to_string(file) {
        let existing = existing.trim().to_string();
        if !existing.is_empty() {
            return Ok((existing, false));
        }
    }
    let token = generate();
    write_private(file, &token)?;
    Ok((token, true))
}

/// Writes `text` and a newline to `file`, readable by its owner only.
pub fn write_private(file: &Path, text: &str) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut out = options.open(file)?;
    writeln!(out, "{text}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_compares_whole_secrets() {
        assert!(equal("secret", "secret"));
        assert!(!equal("secret", "secreT"));
        assert!(!equal("", "secret"));
    }

    #[test]
    fn token_file_is_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("admin-token");
        let (first, created) = load_or_create(None, &file).unwrap();
        assert!(created);
        let (second, created_again) = load_or_create(None, &file).unwrap();
        assert_eq!((first.clone(), false), (second, created_again));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&file).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_eq!(
            load_or_create(Some("given".into()), &file).unwrap().0,
            "given"
        );
    }
}
