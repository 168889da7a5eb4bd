//! Registry credentials: `CI_REGISTRY`, `CI_REGISTRY_USER` and `CI_REGISTRY_PASSWORD`
//! from the job's variables, given to that registry only (for pushes of `build:` and for
//! pulls of job and service images).

use bollard::auth::DockerCredentials;

/// The `CI_REGISTRY` credentials when `image` (a repository or image reference) lives in
/// that registry.
pub(crate) fn credentials(image: &str, vars: &[(String, String)]) -> Option<DockerCredentials> {
    let var = |name: &str| {
        vars.iter()
            .rev()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
            .filter(|value| !value.is_empty())
    };
    let registry = var("CI_REGISTRY")?;
    if registry_of(image) != Some(registry.as_str()) {
        return None;
    }
    Some(DockerCredentials {
        username: var("CI_REGISTRY_USER"),
        password: var("CI_REGISTRY_PASSWORD"),
        serveraddress: Some(registry),
        ..Default::default()
    })
}

/// The registry host of an image reference, when it names one (`host.tld/…`,
/// `host:port/…`, `localhost/…`).
fn registry_of(image: &str) -> Option<&str> {
    let (first, _) = image.split_once('/')?;
    (first.contains('.') || first.contains(':') || first == "localhost").then_some(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_go_only_to_ci_registry() {
        let vars = vec![
            ("CI_REGISTRY".to_string(), "127.0.0.1:5000".to_string()),
            ("CI_REGISTRY_USER".to_string(), "ci".to_string()),
            ("CI_REGISTRY_PASSWORD".to_string(), "pw".to_string()),
        ];
        let given = credentials("127.0.0.1:5000/g/app:1", &vars).expect("given");
        assert_eq!(given.password.as_deref(), Some("pw"));
        assert!(credentials("other.example.com/g/app", &vars).is_none());
        assert!(credentials("app:1", &vars).is_none());
        assert_eq!(registry_of("127.0.0.1:5000/g/app"), Some("127.0.0.1:5000"));
        assert_eq!(registry_of("library/app"), None);
    }
}
