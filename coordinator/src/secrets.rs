//! Encryption at rest for stored secrets (project variables; projects' webhook secrets,
//! forge and repository tokens, SSH keys): ChaCha20-Poly1305 under a 32-byte key kept in
//! the data dir (`secret-key`, mode 0600), made on first start. A fresh random nonce per
//! value; [`SecretBox::seal_joined`] keeps it in front of the ciphertext for columns that
//! hold both in one blob.

use std::path::Path;

use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("cannot read or write the secret key {path}: {source}")]
    KeyFile {
        path: String,
        source: std::io::Error,
    },
    #[error("the secret key file {0} is not 32 bytes of hex")]
    BadKey(String),
    #[error("a stored secret does not decrypt: was the secret key replaced?")]
    Decrypt,
}

/// Seals and opens secrets. Cheap to clone.
#[derive(Clone)]
pub struct SecretBox {
    cipher: ChaCha20Poly1305,
}

impl SecretBox {
    /// The key in `path`, or a new one written there.
    pub fn load_or_create(path: &Path) -> Result<SecretBox, SecretError> {
        let key_file = |source| SecretError::KeyFile {
            path: path.display().to_string(),
            source,
        };
        let hex_key = match std::fs::read_to_string(path) {
            Ok(text) => text.trim().to_string(),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                let key = ChaCha20Poly1305::generate_key(&mut OsRng);
                let text = hex::encode(key);
                crate::tokens::write_private(path, &text).map_err(key_file)?;
                text
            }
            Err(error) => return Err(key_file(error)),
        };
        let bytes =
            hex::decode(&hex_key).map_err(|_| SecretError::BadKey(path.display().to_string()))?;
        if bytes.len() != 32 {
            return Err(SecretError::BadKey(path.display().to_string()));
        }
        Ok(SecretBox {
            cipher: ChaCha20Poly1305::new(Key::from_slice(&bytes)),
        })
    }

    /// Encrypts `plain`; returns the nonce and the ciphertext.
    pub fn seal(&self, plain: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let nonce = ChaCha20Poly1305::generate_nonce(&mut OsRng);
        // Encryption of an in-memory buffer cannot fail.
        let sealed = self.cipher.encrypt(&nonce, plain).unwrap_or_default();
        (nonce.to_vec(), sealed)
    }

    /// Encrypts `plain` into one blob: the 12-byte nonce, then the ciphertext.
    pub fn seal_joined(&self, plain: &[u8]) -> Vec<u8> {
        let (mut joined, sealed) = self.seal(plain);
        joined.extend(sealed);
        joined
    }

    /// Opens a blob made by [`Self::seal_joined`].
    pub fn open_joined(&self, joined: &[u8]) -> Result<Vec<u8>, SecretError> {
        if joined.len() < 12 {
            return Err(SecretError::Decrypt);
        }
        let (nonce, sealed) = joined.split_at(12);
        self.open(nonce, sealed)
    }

    pub fn open(&self, nonce: &[u8], sealed: &[u8]) -> Result<Vec<u8>, SecretError> {
        if nonce.len() != 12 {
            return Err(SecretError::Decrypt);
        }
        self.cipher
            .decrypt(Nonce::from_slice(nonce), sealed)
            .map_err(|_| SecretError::Decrypt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_secrets_open_with_the_same_key_only() {
        let dir = tempfile::tempdir().unwrap();
        let secrets = SecretBox::load_or_create(&dir.path().join("key")).unwrap();
        let (nonce, sealed) = secrets.seal(b"hunter2-password");
        assert!(
            !sealed.windows(7).any(|w| w == b"hunter2"),
            "not stored in clear"
        );
        let again = SecretBox::load_or_create(&dir.path().join("key")).unwrap();
        assert_eq!(again.open(&nonce, &sealed).unwrap(), b"hunter2-password");
        let other = SecretBox::load_or_create(&dir.path().join("other")).unwrap();
        assert!(other.open(&nonce, &sealed).is_err());

        let joined = secrets.seal_joined(b"hunter2-token");
        assert!(!joined.windows(7).any(|w| w == b"hunter2"));
        assert_eq!(again.open_joined(&joined).unwrap(), b"hunter2-token");
        assert!(other.open_joined(&joined).is_err());
        assert!(secrets.open_joined(&joined[..11]).is_err(), "too short");
    }
}
