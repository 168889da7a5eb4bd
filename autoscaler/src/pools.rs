//! Runner pools as an admin defines them in a TOML file, checked before the autoscaler
//! acts on any: every bad definition is refused with the pool and the key it is about.
//!
//! ```toml
//! [[pool]]
//! name = "burst"            # lowercase letters, digits and '-'
//! labels = ["burst"]        # the agents' labels: jobs whose tags they cover are its own
//! concurrency = 1           # jobs per agent
//! min = 0
//! max = 3
//! idle_time = "30s"         # idle this long, an agent above `min` is drained and removed
//! cooldown = "10s"          # after the pool grew or shrank, no scale-in for this long
//!
//! [pool.agent]              # the template every agent of the pool is started from
//! image = "esteira-agent:latest"
//! network = "host"          # the Docker network of the agent containers (default: bridge)
//! work_root = "/var/lib/esteira-pools"   # each agent's work dir is work_root/NAME
//! env = { ESTEIRA_DEFAULT_IMAGE = "busybox:latest" }
//! args = ["--network-per-job"]           # more esteira-agent flags
//! volumes = ["/srv/repos:/srv/repos:ro"] # more bind mounts
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// A pool: agents with the same labels and template, between `min` and `max` of them.
#[derive(Debug, Clone, PartialEq)]
pub struct Pool {
    pub name: String,
    pub labels: BTreeSet<String>,
    pub concurrency: u32,
    pub min: u32,
    pub max: u32,
    pub idle_time: Duration,
    pub cooldown: Duration,
    pub agent: AgentTemplate,
}

/// What every agent of a pool is started from.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentTemplate {
    pub image: String,
    #[serde(default)]
    pub network: Option<String>,
    #[serde(default = "default_work_root")]
    pub work_root: PathBuf,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub volumes: Vec<String>,
}

fn default_work_root() -> PathBuf {
    PathBuf::from("/var/lib/esteira-pools")
}

#[derive(Debug, thiserror::Error)]
pub enum PoolsError {
    /// The file cannot be read.
    #[error("cannot read the pools file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file is not TOML of the expected shape (the message names line and key).
    #[error("{path}: {message}")]
    Syntax { path: PathBuf, message: String },
    /// A pool's definition does not hold together.
    #[error("{path}: pool '{pool}': {message}")]
    Invalid {
        path: PathBuf,
        pool: String,
        message: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PoolsFile {
    #[serde(default)]
    pool: Vec<PoolEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PoolEntry {
    name: String,
    #[serde(default)]
    labels: Vec<String>,
    #[serde(default = "one")]
    concurrency: u32,
    #[serde(default)]
    min: u32,
    max: u32,
    #[serde(default = "default_idle_time")]
    idle_time: String,
    #[serde(default = "default_cooldown")]
    cooldown: String,
    agent: AgentTemplate,
}

fn one() -> u32 {
    1
}

fn default_idle_time() -> String {
    "5m".to_string()
}

fn default_cooldown() -> String {
    "30s".to_string()
}

/// Reads and checks the pools of the file at `path`.
pub fn load(path: &Path) -> Result<Vec<Pool>, PoolsError> {
    let text = std::fs::read_to_string(path).map_err(|source| PoolsError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(path, &text)
}

/// Checks the pools of `text` (the file at `path`, for messages).
pub fn parse(path: &Path, text: &str) -> Result<Vec<Pool>, PoolsError> {
    let file: PoolsFile = toml::from_str(text).map_err(|error| PoolsError::Syntax {
        path: path.to_path_buf(),
        message: error.to_string(),
    })?;
    if file.pool.is_empty() {
        return Err(PoolsError::Syntax {
            path: path.to_path_buf(),
            message: "no pool defined: add a [[pool]] table".to_string(),
        });
    }
    let mut pools: Vec<Pool> = Vec::new();
    for entry in file.pool {
        let invalid = |message: String| PoolsError::Invalid {
            path: path.to_path_buf(),
            pool: entry.name.clone(),
            message,
        };
        let pool = check(&entry).map_err(invalid)?;
        if pools.iter().any(|other| other.name == pool.name) {
            return Err(invalid("defined twice".to_string()));
        }
        pools.push(pool);
    }
    Ok(pools)
}

fn check(entry: &PoolEntry) -> Result<Pool, String> {
    let name_ok = !entry.name.is_empty()
        && entry.name.len() <= 40
        && entry
            .name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !entry.name.starts_with('-');
    if !name_ok {
        return Err(
            "`name` must be 1 to 40 lowercase letters, digits and '-', not starting with '-'"
                .to_string(),
        );
    }
    if entry.max == 0 {
        return Err("`max` must be at least 1".to_string());
    }
    if entry.min > entry.max {
        return Err(format!(
            "`min` ({}) is above `max` ({})",
            entry.min, entry.max
        ));
    }
    if entry.concurrency == 0 {
        return Err("`concurrency` must be at least 1".to_string());
    }
    if let Some(label) = entry
        .labels
        .iter()
        .find(|label| label.trim().is_empty() || label.contains(','))
    {
        return Err(format!("label '{label}' is empty or holds a ','"));
    }
    if entry.agent.image.trim().is_empty() {
        return Err("`agent.image` is empty".to_string());
    }
    if !entry.agent.work_root.is_absolute() {
        return Err(format!(
            "`agent.work_root` ({}) must be an absolute path: Docker mounts it",
            entry.agent.work_root.display()
        ));
    }
    let duration = |key: &str, text: &str| {
        esteira_pipeline::parse_duration(text)
            .map(Duration::from_secs)
            .map_err(|message| format!("`{key}`: {message}"))
    };
    Ok(Pool {
        name: entry.name.clone(),
        labels: entry.labels.iter().cloned().collect(),
        concurrency: entry.concurrency,
        min: entry.min,
        max: entry.max,
        idle_time: duration("idle_time", &entry.idle_time)?,
        cooldown: duration("cooldown", &entry.cooldown)?,
        agent: entry.agent.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> Result<Vec<Pool>, String> {
        parse(Path::new("pools.toml"), text).map_err(|error| error.to_string())
    }

    #[test]
    fn a_full_definition_reads_with_defaults_for_what_it_leaves_out() {
        let pools = parsed(
            r#"
            [[pool]]
            name = "burst"
            labels = ["burst", "linux"]
            max = 3
            idle_time = "20s"
            [pool.agent]
            image = "esteira-agent:latest"
            network = "host"
            env = { ESTEIRA_DEFAULT_IMAGE = "busybox" }
            "#,
        )
        .unwrap();
        assert_eq!(pools.len(), 1);
        let pool = &pools[0];
        assert_eq!(
            pool.labels,
            BTreeSet::from(["burst".into(), "linux".into()])
        );
        assert_eq!((pool.min, pool.max, pool.concurrency), (0, 3, 1));
        assert_eq!(pool.idle_time, Duration::from_secs(20));
        assert_eq!(pool.cooldown, Duration::from_secs(30));
        assert_eq!(pool.agent.network.as_deref(), Some("host"));
        assert_eq!(
            pool.agent.work_root,
            PathBuf::from("/var/lib/esteira-pools")
        );
    }

    #[test]
    fn bad_definitions_are_refused_naming_the_pool_and_the_key() {
        let pool = |body: &str| {
            format!("[[pool]]\nname = \"p\"\n{body}\n[pool.agent]\nimage = \"agent\"\n")
        };
        let cases = [
            (
                pool("max = 2\nmin = 3"),
                "pool 'p': `min` (3) is above `max` (2)",
            ),
            (pool("max = 0"), "pool 'p': `max` must be at least 1"),
            (
                pool("max = 1\nconcurrency = 0"),
                "`concurrency` must be at least 1",
            ),
            (
                pool("max = 1\nidle_time = \"soon\""),
                "pool 'p': `idle_time`:",
            ),
            (pool("max = 1\nlabels = [\"a,b\"]"), "label 'a,b'"),
            (pool("max = 1\nmaximum = 4"), "unknown field `maximum`"),
            (pool("min = 1"), "missing field `max`"),
            (String::new(), "no pool defined"),
        ];
        for (text, expected) in cases {
            let error = parsed(&text).unwrap_err();
            assert!(error.contains(expected), "{error:?} lacks {expected:?}");
            assert!(error.starts_with("pools.toml"), "{error}");
        }
        let twice = format!("{}{}", pool("max = 1"), pool("max = 1"));
        assert!(
            parsed(&twice)
                .unwrap_err()
                .contains("pool 'p': defined twice")
        );
        let named = "[[pool]]\nname = \"Big Pool\"\nmax = 1\n[pool.agent]\nimage = \"a\"\n";
        assert!(parsed(named).unwrap_err().contains("`name` must be"));
    }
}
