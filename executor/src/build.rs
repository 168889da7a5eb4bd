//! The `build:` extension: an image built from a context directory of the workspace
//! through the agent's own Docker engine (no socket in the job), tagged with every tag,
//! pushed with the credentials of `CI_REGISTRY`/`CI_REGISTRY_USER`/`CI_REGISTRY_PASSWORD`;
//! the pushed digest is reported.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

use bollard::Docker;
use bollard::query_parameters::{BuildImageOptions, PushImageOptions, TagImageOptions};
use bytes::{Bytes, BytesMut};
use esteira_pipeline::Build;
use futures::StreamExt;
use tokio::io::AsyncReadExt;

use crate::dockerignore::{self, ContextError};
use crate::expand::expand;
use crate::log::LogSink;
use crate::registry;

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// `context` or `dockerfile` points outside the workspace.
    #[error("build path {0:?} leaves the project directory")]
    OutsideWorkspace(String),
    /// The build context could not be packed.
    #[error("cannot pack the build context: {0}")]
    Context(#[from] ContextError),
    /// The Dockerfile failed to build.
    #[error("image build failed: {0}")]
    Failed(String),
    /// A tag is not a valid image reference.
    #[error("invalid image tag {0:?}")]
    BadTag(String),
    /// Docker refused a request.
    #[error("{action}: {source}")]
    Docker {
        action: String,
        #[source]
        source: bollard::errors::Error,
    },
    /// The registry refused the image.
    #[error("push of {tag} failed: {message}")]
    Push { tag: String, message: String },
    #[error("build task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// What a build produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Built {
    pub image_id: String,
    /// `(tag, digest)` of each pushed tag.
    pub pushed: Vec<(String, String)>,
}

/// Builds, tags and (when asked) pushes the image of `spec`.
pub(crate) async fn build(
    docker: &Docker,
    spec: &Build,
    project_dir: &Path,
    temp_dir: &Path,
    vars: &[(String, String)],
    log: &mut LogSink,
) -> Result<Built, BuildError> {
    let context = inside(project_dir, &expand(&spec.context, vars))?;
    let dockerfile_name = match expand(&spec.dockerfile, vars) {
        name if name.is_empty() => "Dockerfile".to_string(),
        name => name,
    };
    let dockerfile = relative_inside(&dockerfile_name)?;
    let tags: Vec<String> = spec.tags.iter().map(|tag| expand(tag, vars)).collect();
    let tarball = temp_dir.join("build-context.tar");
    let (from, to, file) = (context.clone(), tarball.clone(), dockerfile.clone());
    let files = tokio::task::spawn_blocking(move || dockerignore::pack_context(&from, &file, &to))
        .await??;
    log.note(&format!(
        "Building {} from {} files of {}",
        tags.first()
            .map(String::as_str)
            .unwrap_or("an untagged image"),
        files,
        spec.context
    ))
    .await;

    let options = BuildImageOptions {
        dockerfile: dockerfile.to_string_lossy().into_owned(),
        t: tags.first().cloned(),
        buildargs: Some(
            spec.args
                .iter()
                .map(|(key, value)| (key.clone(), expand(value, vars)))
                .collect::<HashMap<_, _>>(),
        ),
        labels: Some(
            spec.labels
                .iter()
                .map(|(key, value)| (key.clone(), expand(value, vars)))
                .collect::<HashMap<_, _>>(),
        ),
        target: spec
            .target
            .as_deref()
            .map(|target| expand(target, vars))
            .unwrap_or_default(),
        rm: true,
        forcerm: true,
        ..Default::default()
    };
    let body = bollard::body_stream(file_chunks(tarball.clone()).await?);
    let mut progress = docker.build_image(options, None, Some(body));
    let mut image_id = None;
    while let Some(step) = progress.next().await {
        let step = step.map_err(|error| BuildError::Failed(error.to_string()))?;
        if let Some(error) = step.error_detail.and_then(|detail| detail.message) {
            return Err(BuildError::Failed(error));
        }
        if let Some(text) = step.stream {
            log.write(text.as_bytes()).await;
        }
        if let Some(id) = step.aux.and_then(|aux| aux.id) {
            image_id = Some(id);
        }
    }
    let _ = tokio::fs::remove_file(&tarball).await;
    let image_id =
        image_id.ok_or_else(|| BuildError::Failed("the engine reported no image id".into()))?;

    for tag in tags.iter().skip(1) {
        let (repo, version) = split_tag(tag)?;
        let options = TagImageOptions {
            repo: Some(repo),
            tag: Some(version),
        };
        docker
            .tag_image(&image_id, Some(options))
            .await
            .map_err(|source| BuildError::Docker {
                action: format!("cannot tag {tag}"),
                source,
            })?;
    }

    let mut pushed = Vec::new();
    if spec.push {
        for tag in &tags {
            log.note(&format!("Pushing {tag}")).await;
            let digest = push(docker, tag, vars).await?;
            log.note(&format!("Pushed {tag} ({digest})")).await;
            pushed.push((tag.clone(), digest));
        }
    }
    Ok(Built { image_id, pushed })
}

/// Pushes one tag; returns the manifest digest the registry reported.
async fn push(docker: &Docker, tag: &str, vars: &[(String, String)]) -> Result<String, BuildError> {
    let (repo, version) = split_tag(tag)?;
    let options = PushImageOptions {
        tag: Some(version),
        ..Default::default()
    };
    let mut progress = docker.push_image(&repo, Some(options), registry::credentials(&repo, vars));
    let mut digest = None;
    while let Some(step) = progress.next().await {
        let step = step.map_err(|error| BuildError::Push {
            tag: tag.to_string(),
            message: error.to_string(),
        })?;
        if let Some(found) = step.status.as_deref().and_then(digest_in) {
            digest = Some(found);
        }
    }
    digest.ok_or_else(|| BuildError::Push {
        tag: tag.to_string(),
        message: "the registry reported no digest".to_string(),
    })
}

/// `repo:tag` split (a registry port is not a tag); `latest` when there is no tag.
fn split_tag(reference: &str) -> Result<(String, String), BuildError> {
    let (repo, tag) = match reference.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo, tag),
        _ => (reference, "latest"),
    };
    if repo.is_empty() || tag.is_empty() || reference.contains(char::is_whitespace) {
        return Err(BuildError::BadTag(reference.to_string()));
    }
    Ok((repo.to_string(), tag.to_string()))
}

/// The digest in a push status line such as `1.0: digest: sha256:… size: 528`.
fn digest_in(status: &str) -> Option<String> {
    let rest = &status[status.find("digest: ")? + "digest: ".len()..];
    let digest = rest.split_whitespace().next()?;
    digest.starts_with("sha256:").then(|| digest.to_string())
}

/// A path relative to the project directory that does not leave it.
fn relative_inside(path: &str) -> Result<PathBuf, BuildError> {
    let relative = Path::new(path);
    if relative
        .components()
        .all(|part| matches!(part, Component::Normal(_) | Component::CurDir))
    {
        Ok(relative
            .components()
            .filter(|part| matches!(part, Component::Normal(_)))
            .collect())
    } else {
        Err(BuildError::OutsideWorkspace(path.to_string()))
    }
}

fn inside(project_dir: &Path, path: &str) -> Result<PathBuf, BuildError> {
    Ok(project_dir.join(relative_inside(path)?))
}

/// The file as a stream of chunks, read as the engine takes them.
async fn file_chunks(
    path: PathBuf,
) -> Result<impl futures::Stream<Item = Bytes> + Send + 'static, BuildError> {
    let file = tokio::fs::File::open(&path)
        .await
        .map_err(|source| BuildError::Context(ContextError::Io { path, source }))?;
    Ok(futures::stream::unfold(file, |mut file| async move {
        let mut buffer = BytesMut::with_capacity(64 * 1024);
        match file.read_buf(&mut buffer).await {
            Ok(0) | Err(_) => None,
            Ok(_) => Some((buffer.freeze(), file)),
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_tags() {
        let split = |r: &str| split_tag(r).expect("valid");
        assert_eq!(split("app"), ("app".into(), "latest".into()));
        assert_eq!(
            split("127.0.0.1:5000/g/app:1.2"),
            ("127.0.0.1:5000/g/app".into(), "1.2".into())
        );
        assert_eq!(
            split("localhost:5000/app"),
            ("localhost:5000/app".into(), "latest".into())
        );
        assert!(split_tag("bad tag").is_err());
    }

    #[test]
    fn reads_the_digest_and_refuses_escaping_paths() {
        let digest = format!("sha256:{}", "a".repeat(64));
        assert_eq!(
            digest_in(&format!("1.0: digest: {digest} size: 528")),
            Some(digest)
        );
        assert_eq!(digest_in("Pushed"), None);
        assert!(relative_inside("../x").is_err());
        assert!(relative_inside("/etc").is_err());
        assert_eq!(relative_inside("./a/b").expect("ok"), PathBuf::from("a/b"));
    }
}
