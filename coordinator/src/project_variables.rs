//! Project variables as esteira takes them: a key usable as an environment variable's
//! name, and a masked value of at least 8 characters on one line, as GitLab requires, so
//! that masking it in logs is meaningful. Values are sealed before they reach the store;
//! the REST side is [`crate::api`]'s.

use serde::Deserialize;

use crate::secrets::SecretBox;
use crate::store::variables::SealedVariable;

/// A variable's value and flags, as set.
#[derive(Deserialize)]
pub struct NewValue {
    pub value: String,
    #[serde(default)]
    pub masked: bool,
    #[serde(default)]
    pub protected: bool,
    #[serde(default)]
    pub file: bool,
}

impl NewValue {
    /// The variable `key` with this value sealed by `secrets`, for the store.
    pub fn seal(&self, key: &str, secrets: &SecretBox) -> SealedVariable {
        let (nonce, ciphertext) = secrets.seal(self.value.as_bytes());
        SealedVariable {
            key: key.to_string(),
            nonce,
            ciphertext,
            masked: self.masked,
            protected: self.protected,
            file: self.file,
        }
    }
}

/// Why a variable cannot be stored, if it cannot.
pub fn invalid(key: &str, new: &NewValue) -> Option<String> {
    let key_ok = !key.is_empty()
        && key.len() <= 255
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !key.starts_with(|c: char| c.is_ascii_digit());
    if !key_ok {
        return Some(format!(
            "invalid variable key '{key}': use letters, digits and '_', not starting with a digit"
        ));
    }
    if new.masked && (new.value.chars().count() < 8 || new.value.contains('\n')) {
        return Some(format!(
            "variable {key} cannot be masked: a masked value needs at least 8 characters on one line"
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(value: &str, masked: bool) -> NewValue {
        NewValue {
            value: value.to_string(),
            masked,
            protected: false,
            file: false,
        }
    }

    #[test]
    fn keys_and_masked_values_are_checked() {
        assert_eq!(invalid("DEPLOY_TOKEN", &value("x", false)), None);
        assert!(invalid("1ABC", &value("x", false)).is_some());
        assert!(invalid("A-B", &value("x", false)).is_some());
        assert!(
            invalid("SHORT", &value("1234567", true))
                .unwrap()
                .contains("at least 8")
        );
        assert!(invalid("LINES", &value("12345678\nabc", true)).is_some());
        assert_eq!(invalid("GOOD", &value("12345678", true)), None);
    }
}
