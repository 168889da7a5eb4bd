//! The job's network and its service containers: started before the script with their
//! aliases (GitLab's default ones too), then waited for until their exposed TCP ports
//! accept connections (bounded); a service that dies or stays closed has its log copied
//! into the job log.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use bollard::Docker;
use bollard::models::NetworkCreateRequest;
use bollard::query_parameters::LogsOptions;
use esteira_pipeline::Service;
use futures::StreamExt;
use tokio::time::Instant;

use crate::container::{self, ContainerError, ContainerSpec, Creations};
use crate::expand::expand;
use crate::log::LogSink;
use crate::registry;

/// Creates the job's own bridge network.
pub(crate) async fn create_network(
    creations: &Creations,
    docker: &Docker,
    name: &str,
    labels: HashMap<String, String>,
) -> Result<(), ContainerError> {
    let request = NetworkCreateRequest {
        name: name.to_string(),
        driver: Some("bridge".to_string()),
        labels: Some(labels),
        ..Default::default()
    };
    let (docker, name) = (docker.clone(), name.to_string());
    creations
        .run(async move {
            docker
                .create_network(request)
                .await
                .map_err(|source| ContainerError::Docker {
                    action: format!("cannot create network {name}"),
                    source,
                })?;
            Ok(())
        })
        .await
}

/// GitLab's default aliases of a service image: the name without tag or digest, with
/// `/` turned into `__` and into `-` (`tutum/wordpress:1` → `tutum__wordpress`,
/// `tutum-wordpress`). A registry port's `:` becomes `-`, a hostname has none.
pub(crate) fn default_aliases(image: &str) -> Vec<String> {
    let without_digest = image.split('@').next().unwrap_or(image);
    let name = match without_digest.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') => name,
        _ => without_digest,
    };
    let name = name.replace(':', "-");
    let mut aliases = vec![name.replace('/', "__")];
    let dashed = name.replace('/', "-");
    if !aliases.contains(&dashed) {
        aliases.push(dashed);
    }
    aliases
}

/// What the job's services share with the job's own container.
pub(crate) struct ServiceContext<'a> {
    pub docker: &'a Docker,
    pub creations: &'a Creations,
    /// Names start with this (`esteira-<instance>-<job>`).
    pub prefix: &'a str,
    pub network: &'a str,
    pub labels: HashMap<String, String>,
    /// The job's variables as `KEY=value`; a service's own come after them.
    pub env: Vec<String>,
    /// The job's variables, for registry credentials.
    pub vars: &'a [(String, String)],
    pub privileged_dind: bool,
    pub cpu_limit: Option<f64>,
    pub memory_limit: Option<u64>,
    pub pull_timeout: Duration,
    pub wait: Duration,
}

/// Starts every service, then waits for their ports. A service whose image is missing
/// fails the job; one that does not come up is only a warning (as in GitLab).
pub(crate) async fn start(
    ctx: &ServiceContext<'_>,
    services: &[Service],
    log: &mut LogSink,
) -> Result<(), ContainerError> {
    let mut started = Vec::new();
    for (index, service) in services.iter().enumerate() {
        let image = expand(&service.name, ctx.vars);
        log.note(&format!("Starting service {image}...")).await;
        let credentials = registry::credentials(&image, ctx.vars);
        container::ensure_image(ctx.docker, &image, credentials, ctx.pull_timeout).await?;
        let mut aliases = service.aliases.clone();
        for alias in default_aliases(&image) {
            if !aliases.contains(&alias) {
                aliases.push(alias);
            }
        }
        let env = ctx
            .env
            .iter()
            .cloned()
            .chain(
                service
                    .variables
                    .iter()
                    .map(|var| format!("{}={}", var.key, var.value)),
            )
            .collect();
        let spec = ContainerSpec {
            name: format!("{}-svc-{index}", ctx.prefix),
            labels: ctx.labels.clone(),
            image: image.clone(),
            entrypoint: service.entrypoint.clone(),
            cmd: service.command.clone(),
            env,
            network: Some(ctx.network.to_string()),
            aliases,
            privileged: ctx.privileged_dind && crate::policy::is_dind(&image),
            cpu_limit: ctx.cpu_limit,
            memory_limit: ctx.memory_limit,
            ..Default::default()
        };
        let id = container::create(ctx.creations, ctx.docker, &spec).await?;
        ctx.docker
            .start_container(&id, None)
            .await
            .map_err(|source| ContainerError::Docker {
                action: format!("cannot start service {image}"),
                source,
            })?;
        started.push((image, id));
    }
    let deadline = Instant::now() + ctx.wait;
    for (name, id) in &started {
        if let Err(problem) = wait_for_ports(ctx, name, id, deadline).await {
            log.warning(&format!("service {name} is not ready: {problem}"))
                .await;
            copy_log(ctx.docker, name, id, log).await;
        }
    }
    Ok(())
}

/// Waits until every exposed TCP port of the service accepts a connection.
async fn wait_for_ports(
    ctx: &ServiceContext<'_>,
    image: &str,
    id: &str,
    deadline: Instant,
) -> Result<(), String> {
    let ports: Vec<u16> = ctx
        .docker
        .inspect_image(image)
        .await
        .map_err(|error| error.to_string())?
        .config
        .and_then(|config| config.exposed_ports)
        .unwrap_or_default()
        .iter()
        .filter_map(|port| port.strip_suffix("/tcp").unwrap_or(port).parse().ok())
        .collect();
    for port in ports {
        loop {
            let inspected = ctx
                .docker
                .inspect_container(id, None)
                .await
                .map_err(|error| error.to_string())?;
            let state = inspected.state.unwrap_or_default();
            if state.running != Some(true) {
                return Err(format!(
                    "it exited with code {}",
                    state.exit_code.unwrap_or(-1)
                ));
            }
            let ip = inspected
                .network_settings
                .and_then(|settings| settings.networks)
                .and_then(|networks| networks.get(ctx.network).cloned())
                .and_then(|endpoint| endpoint.ip_address)
                .and_then(|ip| ip.parse::<IpAddr>().ok());
            if let Some(ip) = ip {
                let attempt = tokio::time::timeout(
                    Duration::from_secs(1),
                    tokio::net::TcpStream::connect((ip, port)),
                );
                if let Ok(Ok(_)) = attempt.await {
                    break;
                }
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "port {port} still closed after {}s",
                    ctx.wait.as_secs()
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(())
}

/// Copies what a service printed into the job log, framed by esteira's lines.
async fn copy_log(docker: &Docker, name: &str, id: &str, log: &mut LogSink) {
    log.section(&format!("Log of service {name}:")).await;
    let options = LogsOptions {
        stdout: true,
        stderr: true,
        tail: "all".to_string(),
        ..Default::default()
    };
    let mut output = docker.logs(id, Some(options));
    while let Some(Ok(chunk)) = output.next().await {
        log.write(&chunk.into_bytes()).await;
    }
    log.section(&format!("End of the log of service {name}"))
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_aliases_follow_gitlab() {
        assert_eq!(default_aliases("postgres:15"), vec!["postgres"]);
        assert_eq!(default_aliases("redis"), vec!["redis"]);
        assert_eq!(
            default_aliases("tutum/wordpress:latest"),
            vec!["tutum__wordpress", "tutum-wordpress"]
        );
        assert_eq!(
            default_aliases("registry.local:5000/group/db@sha256:abc"),
            vec![
                "registry.local-5000__group__db",
                "registry.local-5000-group-db"
            ]
        );
        assert_eq!(
            default_aliases("localhost:5000/cache:2"),
            vec!["localhost-5000__cache", "localhost-5000-cache"]
        );
    }
}
