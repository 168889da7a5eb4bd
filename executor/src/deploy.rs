//! The `deploy:` extension: one long-lived service rolled on the agent host's engine.
//! The new container replaces the one of the same name (stopped and kept aside meanwhile);
//! when its health check fails, it is removed and the previous one started again.
//!
//! Deployed containers carry `esteira.deploy.*` labels, never the job labels: they are
//! meant to outlive the job, and the job cleanup does not touch them.

use std::collections::HashMap;
use std::time::Duration;

use bollard::Docker;
use bollard::exec::{CreateExecOptions, StartExecResults};
use bollard::models::{
    ContainerCreateBody, HostConfig, PortBinding, RestartPolicy, RestartPolicyNameEnum,
};
use bollard::query_parameters::{
    CreateContainerOptions, RenameContainerOptions, StopContainerOptions,
};
use esteira_pipeline::{Deploy, HealthCheck};
use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

use crate::container::{self, ContainerError};
use crate::expand::expand;
use crate::log::LogSink;
use crate::registry;

/// The label naming the deployed service.
pub const DEPLOY_SERVICE_LABEL: &str = "esteira.deploy.service";
/// The label naming the job that deployed a container.
pub const DEPLOY_JOB_LABEL: &str = "esteira.deploy.job";

#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// A `ports` entry is not `host:container`, `ip:host:container` or with `/udp`.
    #[error("invalid port mapping {0:?}")]
    BadPort(String),
    /// The service name is not a valid container name.
    #[error("invalid service name {0:?}")]
    BadService(String),
    #[error(transparent)]
    Container(#[from] ContainerError),
    /// Docker refused a request.
    #[error("{action}: {source}")]
    Docker {
        action: String,
        #[source]
        source: bollard::errors::Error,
    },
    /// The new version did not become healthy; the previous one runs again (if any).
    #[error("deploy of {image} failed: {reason}; {rollback}")]
    Unhealthy {
        image: String,
        reason: String,
        rollback: String,
    },
}

fn docker_error(action: impl Into<String>) -> impl FnOnce(bollard::errors::Error) -> DeployError {
    let action = action.into();
    move |source| DeployError::Docker { action, source }
}

/// What a deploy did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Deployed {
    pub service: String,
    pub image: String,
    pub container_id: String,
    /// The image of the container it replaced.
    pub previous_image: Option<String>,
}

/// Rolls the service to the new image; see the module docs.
pub(crate) async fn deploy(
    docker: &Docker,
    spec: &Deploy,
    job_id: i64,
    vars: &[(String, String)],
    pull_timeout: Duration,
    log: &mut LogSink,
) -> Result<Deployed, DeployError> {
    let image = expand(&spec.image, vars);
    let service = expand(&spec.service, vars);
    if service.is_empty()
        || !service
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
    {
        return Err(DeployError::BadService(service));
    }
    let ports = spec
        .ports
        .iter()
        .map(|port| parse_port(&expand(port, vars)))
        .collect::<Result<Vec<_>, _>>()?;
    log.note(&format!("Deploying {image} as {service}")).await;
    container::ensure_image(
        docker,
        &image,
        registry::credentials(&image, vars),
        pull_timeout,
    )
    .await?;

    // The running version steps aside (stopped, renamed) but stays until the new is healthy.
    let previous = match docker.inspect_container(&service, None).await {
        Ok(found) => found.id.map(|id| {
            let image = found.config.and_then(|config| config.image);
            (id, image)
        }),
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => None,
        Err(source) => return Err(docker_error(format!("cannot inspect {service}"))(source)),
    };
    let aside = format!("{service}-previous-{job_id}");
    if let Some((id, _)) = &previous {
        let options = StopContainerOptions {
            t: Some(10),
            ..Default::default()
        };
        docker
            .stop_container(id, Some(options))
            .await
            .map_err(docker_error(format!("cannot stop {service}")))?;
        let options = RenameContainerOptions {
            name: aside.clone(),
        };
        docker
            .rename_container(id, options)
            .await
            .map_err(docker_error(format!("cannot rename {service}")))?;
    }

    let started = match start_new(docker, spec, &service, &image, &ports, job_id, vars).await {
        Ok(id) => match check_health(docker, &id, spec.health.as_ref(), vars).await {
            Ok(()) => Ok(id),
            Err(reason) => Err((Some(id), reason)),
        },
        Err(error) => Err((None, error.to_string())),
    };
    let (new, reason) = match started {
        Ok(id) => {
            if let Some((old, _)) = &previous {
                container::remove(docker, old).await?;
            }
            log.note(&format!("{service} runs {image}")).await;
            return Ok(Deployed {
                service,
                image,
                container_id: id,
                previous_image: previous.and_then(|(_, image)| image),
            });
        }
        Err(failed) => failed,
    };
    if let Some(id) = &new {
        copy_log(docker, id, log).await;
        container::remove(docker, id).await?;
    }
    let rollback = match &previous {
        Some((old, old_image)) => {
            let options = RenameContainerOptions {
                name: service.clone(),
            };
            docker
                .rename_container(old, options)
                .await
                .map_err(docker_error(format!("cannot restore {service}")))?;
            docker
                .start_container(old, None)
                .await
                .map_err(docker_error(format!("cannot restart {service}")))?;
            // Done only once the previous version answers its health check again.
            let serving = match check_health(docker, old, spec.health.as_ref(), vars).await {
                Ok(()) => "serving again".to_string(),
                Err(reason) => format!("not healthy either: {reason}"),
            };
            format!(
                "rolled back to {}, {serving}",
                old_image.as_deref().unwrap_or("the previous container")
            )
        }
        None => "nothing to roll back to".to_string(),
    };
    Err(DeployError::Unhealthy {
        image,
        reason,
        rollback,
    })
}

/// `[ip:]host:container[/proto]` as Docker's port key and binding.
fn parse_port(mapping: &str) -> Result<(String, PortBinding), DeployError> {
    let bad = || DeployError::BadPort(mapping.to_string());
    let (ports, proto) = match mapping.rsplit_once('/') {
        Some((ports, proto)) if proto == "tcp" || proto == "udp" => (ports, proto),
        Some(_) => return Err(bad()),
        None => (mapping, "tcp"),
    };
    let parts: Vec<&str> = ports.split(':').collect();
    let (ip, host, inner) = match parts.as_slice() {
        [host, inner] => (None, *host, *inner),
        [ip, host, inner] => (Some(ip.to_string()), *host, *inner),
        _ => return Err(bad()),
    };
    host.parse::<u16>().map_err(|_| bad())?;
    inner.parse::<u16>().map_err(|_| bad())?;
    Ok((
        format!("{inner}/{proto}"),
        PortBinding {
            host_ip: ip,
            host_port: Some(host.to_string()),
        },
    ))
}

async fn start_new(
    docker: &Docker,
    spec: &Deploy,
    service: &str,
    image: &str,
    ports: &[(String, PortBinding)],
    job_id: i64,
    vars: &[(String, String)],
) -> Result<String, DeployError> {
    let mut bindings: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
    for (key, binding) in ports {
        bindings
            .entry(key.clone())
            .or_insert_with(|| Some(Vec::new()))
            .get_or_insert_with(Vec::new)
            .push(binding.clone());
    }
    let restart = match spec.restart.as_deref().unwrap_or("unless-stopped") {
        "no" => RestartPolicyNameEnum::NO,
        "always" => RestartPolicyNameEnum::ALWAYS,
        "on-failure" => RestartPolicyNameEnum::ON_FAILURE,
        _ => RestartPolicyNameEnum::UNLESS_STOPPED,
    };
    let body = ContainerCreateBody {
        image: Some(image.to_string()),
        env: Some(
            spec.env
                .iter()
                .map(|(key, value)| format!("{key}={}", expand(value, vars)))
                .collect(),
        ),
        exposed_ports: Some(bindings.keys().cloned().collect()),
        labels: Some(HashMap::from([
            (DEPLOY_SERVICE_LABEL.to_string(), service.to_string()),
            (DEPLOY_JOB_LABEL.to_string(), job_id.to_string()),
        ])),
        host_config: Some(HostConfig {
            port_bindings: Some(bindings),
            // So that a stop's SIGTERM reaches the service, not an init-less PID 1.
            init: Some(true),
            restart_policy: Some(RestartPolicy {
                name: Some(restart),
                maximum_retry_count: None,
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let options = CreateContainerOptions {
        name: Some(service.to_string()),
        ..Default::default()
    };
    let id = docker
        .create_container(Some(options), body)
        .await
        .map_err(docker_error(format!("cannot create {service}")))?
        .id;
    if let Err(source) = docker.start_container(&id, None).await {
        let _ = container::remove(docker, &id).await;
        return Err(docker_error(format!("cannot start {service}"))(source));
    }
    Ok(id)
}

/// Waits until the health check passes, the container stops, or the time is up.
async fn check_health(
    docker: &Docker,
    id: &str,
    health: Option<&HealthCheck>,
    vars: &[(String, String)],
) -> Result<(), String> {
    let Some(health) = health.filter(|h| h.http.is_some() || h.command.is_some()) else {
        // Without a check, still running a moment after the start is healthy enough.
        tokio::time::sleep(Duration::from_secs(1)).await;
        return running(docker, id).await;
    };
    let timeout = Duration::from_secs(if health.timeout_secs == 0 {
        30
    } else {
        health.timeout_secs
    });
    let deadline = Instant::now() + timeout;
    let url = health.http.as_deref().map(|url| expand(url, vars));
    loop {
        running(docker, id).await?;
        let attempt = match (&url, &health.command) {
            (Some(url), _) => http_ok(url).await,
            (None, Some(command)) => command_ok(docker, id, command).await,
            (None, None) => Ok(()),
        };
        let last = match attempt {
            Ok(()) => return Ok(()),
            Err(problem) => problem,
        };
        if Instant::now() >= deadline {
            return Err(format!(
                "health check failed for {}s: {last}",
                timeout.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn running(docker: &Docker, id: &str) -> Result<(), String> {
    let state = docker
        .inspect_container(id, None)
        .await
        .map_err(|error| error.to_string())?
        .state
        .unwrap_or_default();
    if state.running == Some(true) {
        Ok(())
    } else {
        Err(format!(
            "the container exited with code {}",
            state.exit_code.unwrap_or(-1)
        ))
    }
}

/// A GET of an `http://` URL answered with a 2xx or 3xx status, within 5 seconds.
async fn http_ok(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("only http:// health URLs are supported: {url}"))?;
    let (authority, path) = match rest.find('/') {
        Some(at) => (&rest[..at], &rest[at..]),
        None => (rest, "/"),
    };
    let address = if authority.contains(':') {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(&address)
            .await
            .map_err(|error| format!("{url}: {error}"))?;
        let request =
            format!("GET {path} HTTP/1.0\r\nHost: {authority}\r\nConnection: close\r\n\r\n");
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|error| format!("{url}: {error}"))?;
        let mut head = vec![0u8; 64];
        let read = stream
            .read(&mut head)
            .await
            .map_err(|error| format!("{url}: {error}"))?;
        let status_line = String::from_utf8_lossy(&head[..read]).into_owned();
        let status = status_line.split_whitespace().nth(1).unwrap_or_default();
        match status.as_bytes().first() {
            Some(b'2' | b'3') => Ok(()),
            _ => Err(format!(
                "{url} answered {:?}",
                status_line.lines().next().unwrap_or_default()
            )),
        }
    };
    tokio::time::timeout(Duration::from_secs(5), exchange)
        .await
        .unwrap_or_else(|_| Err(format!("{url}: no answer within 5s")))
}

/// The command, run in the container, exits 0.
async fn command_ok(docker: &Docker, id: &str, command: &[String]) -> Result<(), String> {
    let exec = docker
        .create_exec(
            id,
            CreateExecOptions {
                cmd: Some(command.to_vec()),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                ..Default::default()
            },
        )
        .await
        .map_err(|error| error.to_string())?;
    if let StartExecResults::Attached { mut output, .. } = docker
        .start_exec(&exec.id, None)
        .await
        .map_err(|error| error.to_string())?
    {
        while output.next().await.is_some() {}
    }
    let inspected = docker
        .inspect_exec(&exec.id)
        .await
        .map_err(|error| error.to_string())?;
    match inspected.exit_code {
        Some(0) => Ok(()),
        code => Err(format!(
            "health command exited with code {}",
            code.unwrap_or(-1)
        )),
    }
}

async fn copy_log(docker: &Docker, id: &str, log: &mut LogSink) {
    log.section("Log of the new version:").await;
    let options = bollard::query_parameters::LogsOptions {
        stdout: true,
        stderr: true,
        tail: "100".to_string(),
        ..Default::default()
    };
    let mut output = docker.logs(id, Some(options));
    while let Some(Ok(chunk)) = output.next().await {
        log.write(&chunk.into_bytes()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_port_mappings() {
        let (key, binding) = parse_port("18080:8000").expect("valid");
        assert_eq!(key, "8000/tcp");
        assert_eq!(binding.host_port.as_deref(), Some("18080"));
        assert_eq!(binding.host_ip, None);
        let (key, binding) = parse_port("127.0.0.1:53:5353/udp").expect("valid");
        assert_eq!(key, "5353/udp");
        assert_eq!(binding.host_ip.as_deref(), Some("127.0.0.1"));
        assert!(parse_port("8000").is_err());
        assert!(parse_port("a:b").is_err());
        assert!(parse_port("1:2/sctp").is_err());
    }
}
