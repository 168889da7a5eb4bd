//! What this executor runs at all: without `allow_docker_socket`, a job that asks for a
//! Docker daemon (a `docker:dind` service, `DOCKER_HOST`) is refused before anything runs,
//! and so is a job with nothing to run.

use esteira_pipeline::{PlannedJob, Service};

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The job has nothing this executor can run.
    #[error("{0}")]
    Unsupported(String),
    /// The job wants a Docker daemon and this agent gives none.
    #[error(
        "{what} needs the Docker daemon, which this agent does not give jobs \
         (its admin can allow it with --allow-docker-socket); use `build:` to build images"
    )]
    DockerRefused { what: String },
}

/// Refuses jobs that need the Docker daemon unless `allow_docker_socket`.
pub(crate) fn check_docker_access(
    allow_docker_socket: bool,
    services: &[Service],
    env: &[(String, String)],
) -> Result<(), PolicyError> {
    if allow_docker_socket {
        return Ok(());
    }
    if let Some(service) = services.iter().find(|service| is_dind(&service.name)) {
        return Err(PolicyError::DockerRefused {
            what: format!("service {}", service.name),
        });
    }
    if env
        .iter()
        .any(|(key, value)| key == "DOCKER_HOST" && !value.is_empty())
    {
        return Err(PolicyError::DockerRefused {
            what: "variable DOCKER_HOST".to_string(),
        });
    }
    Ok(())
}

/// Refuses jobs with nothing to run: neither a script, nor `build:`, nor `deploy:`.
pub(crate) fn check_supported(spec: &PlannedJob) -> Result<(), PolicyError> {
    if spec.script.is_empty() && spec.build.is_none() && spec.deploy.is_none() {
        return Err(PolicyError::Unsupported(
            "the job has neither a script nor a build: nor a deploy: to run".to_string(),
        ));
    }
    Ok(())
}

/// A Docker-in-Docker image: `docker:dind`, `docker:24-dind`, `registry/docker:dind-rootless`.
pub(crate) fn is_dind(image: &str) -> bool {
    image.contains("dind")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(name: &str) -> Service {
        Service {
            name: name.to_string(),
            aliases: Vec::new(),
            entrypoint: None,
            command: None,
            variables: Vec::new(),
        }
    }

    #[test]
    fn refuses_dind_and_docker_host_unless_allowed() {
        let dind = [service("postgres:15"), service("docker:24.0-dind")];
        let refused = check_docker_access(false, &dind, &[]).expect_err("refused");
        assert!(
            refused
                .to_string()
                .starts_with("service docker:24.0-dind needs")
        );
        assert!(check_docker_access(true, &dind, &[]).is_ok());
        let env = vec![("DOCKER_HOST".to_string(), "tcp://docker:2375".to_string())];
        assert!(check_docker_access(false, &[], &env).is_err());
        assert!(check_docker_access(false, &[service("redis")], &[]).is_ok());
    }

    #[test]
    fn refuses_jobs_with_nothing_to_run() {
        let mut spec = PlannedJob::default();
        assert!(check_supported(&spec).is_err());
        spec.build = Some(Default::default());
        assert!(check_supported(&spec).is_ok());
        spec.build = None;
        spec.deploy = Some(Default::default());
        assert!(check_supported(&spec).is_ok());
    }
}
