//! Readers for the structured job keywords: each turns one YAML node into the plan type
//! it stands for, reporting mistakes through the [`Checker`]. Sections of the CI/CD YAML
//! reference are named on each reader.

use std::collections::BTreeMap;

use crate::check::Checker;
use crate::duration::parse_duration;
use crate::plan::{
    AllowFailure, Artifacts, Build, Cache, Deploy, Environment, HealthCheck, Image, Retry, Service,
    When,
};
use crate::vars::read_variables;
use crate::yaml::{Map, Node, Value};

/// Warns about keys of `map` not in `known`, with "did you mean".
fn known_keys(check: &mut Checker<'_>, map: &Map, known: &[&str], what: &str) {
    for entry in &map.entries {
        if !known.contains(&entry.key.as_str()) {
            check.unknown_key(&entry.key_pos, &entry.key, known, what);
        }
    }
}

/// "when": on_success, on_failure, always, manual, delayed, never.
pub fn read_when(check: &mut Checker<'_>, node: &Node) -> Option<When> {
    let text = check.string(node, "when")?;
    Some(match text.as_str() {
        "on_success" => When::OnSuccess,
        "on_failure" => When::OnFailure,
        "always" => When::Always,
        "manual" => When::Manual,
        "delayed" => When::Delayed,
        "never" => When::Never,
        other => {
            check.error(&node.pos, format!("when '{other}' is not one of on_success, on_failure, always, manual, delayed, never"));
            return None;
        }
    })
}

/// "allow_failure": a boolean, or `exit_codes: N | [N...]`.
pub fn read_allow_failure(check: &mut Checker<'_>, node: &Node) -> Option<AllowFailure> {
    match &node.value {
        Value::Bool(true) => Some(AllowFailure::Yes),
        Value::Bool(false) => Some(AllowFailure::No),
        Value::Map(map) => {
            known_keys(check, map, &["exit_codes"], "allow_failure");
            let codes = map
                .get("exit_codes")
                .map(|n| read_ints(check, n, "allow_failure:exit_codes"))?;
            Some(AllowFailure::ExitCodes(codes?))
        }
        _ => {
            check.error(
                &node.pos,
                format!(
                    "allow_failure must be true, false or {{exit_codes: ...}}, not {}",
                    node.kind()
                ),
            );
            None
        }
    }
}

fn read_ints(check: &mut Checker<'_>, node: &Node, what: &str) -> Option<Vec<i32>> {
    let items: Vec<&Node> = match &node.value {
        Value::Seq(items) => items.iter().collect(),
        _ => vec![node],
    };
    items
        .into_iter()
        .map(|item| check.int(item, what).and_then(|i| i32::try_from(i).ok()))
        .collect()
}

/// "image": a name, or `{name, entrypoint, pull_policy, docker}`.
pub fn read_image(check: &mut Checker<'_>, node: &Node) -> Option<Image> {
    match &node.value {
        Value::Map(map) => {
            known_keys(
                check,
                map,
                &["name", "entrypoint", "pull_policy", "docker", "kubernetes"],
                "image",
            );
            let Some(name) = map.get("name") else {
                check.error(&node.pos, "image needs a 'name'");
                return None;
            };
            let name = check.string(name, "image:name")?;
            let entrypoint = map
                .get("entrypoint")
                .and_then(|e| check.strings(e, "image:entrypoint"));
            Some(Image { name, entrypoint })
        }
        _ => check.string(node, "image").map(|name| Image {
            name,
            entrypoint: None,
        }),
    }
}

/// "services": names or `{name, alias, entrypoint, command, variables}`.
pub fn read_services(check: &mut Checker<'_>, node: &Node) -> Vec<Service> {
    let Some(items) = node.as_seq() else {
        check.error(
            &node.pos,
            format!("services must be a list, not {}", node.kind()),
        );
        return Vec::new();
    };
    let mut services = Vec::new();
    for item in items {
        let service = match &item.value {
            Value::Map(map) => {
                known_keys(
                    check,
                    map,
                    &[
                        "name",
                        "alias",
                        "entrypoint",
                        "command",
                        "variables",
                        "pull_policy",
                        "docker",
                        "kubernetes",
                    ],
                    "services",
                );
                let Some(name) = map
                    .get("name")
                    .and_then(|n| check.string(n, "services:name"))
                else {
                    check.error(&item.pos, "a service needs a 'name'");
                    continue;
                };
                let aliases = map
                    .get("alias")
                    .and_then(|a| check.string(a, "services:alias"))
                    .map(|a| {
                        a.split(',')
                            .map(|s| s.trim().to_owned())
                            .filter(|s| !s.is_empty())
                            .collect()
                    })
                    .unwrap_or_default();
                Service {
                    name,
                    aliases,
                    entrypoint: map
                        .get("entrypoint")
                        .and_then(|e| check.strings(e, "services:entrypoint")),
                    command: map
                        .get("command")
                        .and_then(|c| check.strings(c, "services:command")),
                    variables: map
                        .get("variables")
                        .map(|v| read_variables(check, v))
                        .unwrap_or_default(),
                }
            }
            _ => match check.string(item, "a service") {
                Some(name) => Service {
                    name,
                    aliases: Vec::new(),
                    entrypoint: None,
                    command: None,
                    variables: Vec::new(),
                },
                None => continue,
            },
        };
        services.push(service);
    }
    services
}

/// "retry": 0, 1 or 2, or `{max, when, exit_codes}`.
pub fn read_retry(check: &mut Checker<'_>, node: &Node) -> Option<Retry> {
    const WHEN: &[&str] = &[
        "always",
        "unknown_failure",
        "script_failure",
        "api_failure",
        "stuck_or_timeout_failure",
        "runner_system_failure",
        "runner_unsupported",
        "stale_schedule",
        "job_execution_timeout",
        "archived_failure",
        "unmet_prerequisites",
        "scheduler_failure",
        "data_integrity_failure",
    ];
    let (max_node, map) = match &node.value {
        Value::Map(map) => {
            known_keys(check, map, &["max", "when", "exit_codes"], "retry");
            (map.get("max"), Some(map))
        }
        _ => (Some(node), None),
    };
    let max = match max_node {
        Some(n) => check.int(n, "retry:max")?,
        None => 0,
    };
    if !(0..=2).contains(&max) {
        check.error(&node.pos, format!("retry:max must be 0, 1 or 2, not {max}"));
        return None;
    }
    let mut retry = Retry {
        max: max as u32,
        ..Retry::default()
    };
    if let Some(map) = map {
        if let Some(when) = map.get("when") {
            retry.when = check.strings(when, "retry:when")?;
            for kind in &retry.when {
                if !WHEN.contains(&kind.as_str()) {
                    check.unknown_key(&when.pos, kind, WHEN, "retry:when");
                }
            }
        }
        if let Some(codes) = map.get("exit_codes") {
            retry.exit_codes = read_ints(check, codes, "retry:exit_codes")?;
        }
    }
    Some(retry)
}

fn read_duration(check: &mut Checker<'_>, node: &Node, what: &str) -> Option<u64> {
    let text = check.string(node, what)?;
    parse_duration(&text)
        .map_err(|message| check.error(&node.pos, format!("{what}: {message}")))
        .ok()
}

/// "timeout": a human duration.
pub fn read_timeout(check: &mut Checker<'_>, node: &Node) -> Option<u64> {
    read_duration(check, node, "timeout")
}

/// "start_in" for `when: delayed` (at most one week).
pub fn read_start_in(check: &mut Checker<'_>, node: &Node) -> Option<u64> {
    let seconds = read_duration(check, node, "start_in")?;
    if seconds > 604_800 {
        check.error(&node.pos, "start_in must be one week or less");
    }
    Some(seconds)
}

/// "artifacts": paths, exclude, expire_in, expose_as, name, public, reports, untracked, when.
pub fn read_artifacts(check: &mut Checker<'_>, node: &Node) -> Option<Artifacts> {
    let Some(map) = node.as_map() else {
        check.error(
            &node.pos,
            format!("artifacts must be a mapping, not {}", node.kind()),
        );
        return None;
    };
    known_keys(
        check,
        map,
        &[
            "paths",
            "exclude",
            "expire_in",
            "expose_as",
            "name",
            "public",
            "access",
            "reports",
            "untracked",
            "when",
        ],
        "artifacts",
    );
    let mut artifacts = Artifacts {
        when: "on_success".into(),
        ..Artifacts::default()
    };
    for entry in &map.entries {
        let value = &entry.value;
        match entry.key.as_str() {
            "paths" => {
                artifacts.paths = check.strings(value, "artifacts:paths").unwrap_or_default()
            }
            "exclude" => {
                artifacts.exclude = check
                    .strings(value, "artifacts:exclude")
                    .unwrap_or_default()
            }
            "name" => artifacts.name = check.string(value, "artifacts:name"),
            "untracked" => {
                artifacts.untracked = check.bool(value, "artifacts:untracked").unwrap_or(false)
            }
            "when" => {
                let when = check.string(value, "artifacts:when").unwrap_or_default();
                if !["on_success", "on_failure", "always"].contains(&when.as_str()) {
                    check.error(
                        &value.pos,
                        format!(
                            "artifacts:when '{when}' is not one of on_success, on_failure, always"
                        ),
                    );
                }
                artifacts.when = when;
            }
            "expire_in" => {
                let text = check
                    .string(value, "artifacts:expire_in")
                    .unwrap_or_default();
                if text != "never" {
                    artifacts.expire_in_secs = parse_duration(&text)
                        .map_err(|message| {
                            check.error(&value.pos, format!("artifacts:expire_in: {message}"))
                        })
                        .ok();
                }
            }
            "reports" => {
                if let Some(reports) = value.as_map() {
                    if let Some(junit) = reports.get("junit") {
                        artifacts.junit = check
                            .strings(junit, "artifacts:reports:junit")
                            .unwrap_or_default();
                    }
                } else {
                    check.error(&value.pos, "artifacts:reports must be a mapping");
                }
            }
            _ => {}
        }
    }
    Some(artifacts)
}

/// "cache": one cache or a list of up to four.
pub fn read_caches(check: &mut Checker<'_>, node: &Node) -> Vec<Cache> {
    match &node.value {
        Value::Seq(items) => {
            if items.len() > 4 {
                check.error(&node.pos, "at most 4 caches per job");
            }
            items
                .iter()
                .filter_map(|item| read_cache(check, item))
                .collect()
        }
        Value::Null => Vec::new(),
        _ => read_cache(check, node).into_iter().collect(),
    }
}

fn read_cache(check: &mut Checker<'_>, node: &Node) -> Option<Cache> {
    let Some(map) = node.as_map() else {
        check.error(
            &node.pos,
            format!("cache must be a mapping, not {}", node.kind()),
        );
        return None;
    };
    known_keys(
        check,
        map,
        &[
            "key",
            "paths",
            "policy",
            "when",
            "untracked",
            "fallback_keys",
            "unprotect",
        ],
        "cache",
    );
    let mut cache = Cache {
        key: "default".into(),
        policy: "pull-push".into(),
        when: "on_success".into(),
        ..Cache::default()
    };
    if let Some(key) = map.get("key") {
        match key.as_map() {
            Some(key_map) => {
                known_keys(check, key_map, &["files", "prefix"], "cache:key");
                cache.key_files = key_map
                    .get("files")
                    .and_then(|f| check.strings(f, "cache:key:files"))
                    .unwrap_or_default();
                cache.key_prefix = key_map
                    .get("prefix")
                    .and_then(|p| check.string(p, "cache:key:prefix"));
            }
            None => cache.key = check.string(key, "cache:key").unwrap_or_default(),
        }
    }
    if let Some(paths) = map.get("paths") {
        cache.paths = check.strings(paths, "cache:paths").unwrap_or_default();
    }
    if let Some(policy) = map.get("policy") {
        cache.policy = check.string(policy, "cache:policy").unwrap_or_default();
        if !["pull", "push", "pull-push"].contains(&cache.policy.as_str())
            && !cache.policy.contains('$')
        {
            check.error(
                &policy.pos,
                format!(
                    "cache:policy '{}' is not one of pull, push, pull-push",
                    cache.policy
                ),
            );
        }
    }
    if let Some(when) = map.get("when") {
        cache.when = check.string(when, "cache:when").unwrap_or_default();
    }
    if let Some(untracked) = map.get("untracked") {
        cache.untracked = check.bool(untracked, "cache:untracked").unwrap_or(false);
    }
    if let Some(keys) = map.get("fallback_keys") {
        cache.fallback_keys = check
            .strings(keys, "cache:fallback_keys")
            .unwrap_or_default();
    }
    Some(cache)
}

/// "environment": a name, or `{name, url, action, deployment_tier, ...}`.
pub fn read_environment(check: &mut Checker<'_>, node: &Node) -> Option<Environment> {
    let (name, map) = match &node.value {
        Value::Map(map) => {
            known_keys(
                check,
                map,
                &[
                    "name",
                    "url",
                    "action",
                    "deployment_tier",
                    "on_stop",
                    "auto_stop_in",
                    "kubernetes",
                ],
                "environment",
            );
            let Some(name) = map.get("name") else {
                check.error(&node.pos, "environment needs a 'name'");
                return None;
            };
            (check.string(name, "environment:name")?, Some(map))
        }
        _ => (check.string(node, "environment")?, None),
    };
    let field = |check: &mut Checker<'_>, key: &str| {
        map.and_then(|m| m.get(key))
            .and_then(|n| check.string(n, &format!("environment:{key}")))
    };
    let url = field(check, "url");
    let action = field(check, "action").unwrap_or_else(|| "start".into());
    if !["start", "prepare", "stop", "verify", "access"].contains(&action.as_str()) {
        check.error(
            &node.pos,
            format!(
                "environment:action '{action}' is not one of start, prepare, stop, verify, access"
            ),
        );
    }
    let deployment_tier = match field(check, "deployment_tier") {
        Some(tier) => {
            if !["production", "staging", "testing", "development", "other"]
                .contains(&tier.as_str())
            {
                check.error(&node.pos, format!("environment:deployment_tier '{tier}' is not one of production, staging, testing, development, other"));
            }
            tier
        }
        None => String::new(),
    };
    Some(Environment {
        name,
        url,
        action,
        deployment_tier,
    })
}

/// GitLab's guess of a tier from an environment name ("deployment_tier": "if not
/// specified, GitLab guesses from the name"), in GitLab's order.
pub fn guess_tier(name: &str) -> &'static str {
    let name = name.to_ascii_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| name.contains(w));
    if has(&["dev", "review", "trunk"]) {
        "development"
    } else if has(&[
        "test", "tst", "int", "accept", "acpt", "qa", "qc", "control", "quality",
    ]) {
        "testing"
    } else if has(&["stag", "stg", "model", "modl", "pre", "demo", "non"]) {
        "staging"
    } else if has(&["prod", "prd", "live"]) {
        "production"
    } else {
        "other"
    }
}

/// A mapping of names to scalar values (build args, labels, deploy env).
fn string_map(check: &mut Checker<'_>, node: &Node, what: &str) -> BTreeMap<String, String> {
    let Some(map) = node.as_map() else {
        if !node.is_null() {
            check.error(
                &node.pos,
                format!("{what} must be a mapping, not {}", node.kind()),
            );
        }
        return BTreeMap::new();
    };
    map.entries
        .iter()
        .filter_map(|entry| {
            let value = if entry.value.is_null() {
                Some(String::new())
            } else {
                check.string(&entry.value, &format!("{what}:{}", entry.key))
            };
            value.map(|v| (entry.key.clone(), v))
        })
        .collect()
}

/// esteira extension `build:` — build (and push) an image through the agent's engine.
pub fn read_build(check: &mut Checker<'_>, node: &Node) -> Option<Build> {
    let Some(map) = node.as_map() else {
        check.error(
            &node.pos,
            format!(
                "build must be a mapping (context, dockerfile, args, tags, push), not {}",
                node.kind()
            ),
        );
        return None;
    };
    known_keys(
        check,
        map,
        &[
            "context",
            "dockerfile",
            "args",
            "target",
            "labels",
            "tags",
            "push",
        ],
        "build",
    );
    let text = |check: &mut Checker<'_>, key: &str| {
        map.get(key)
            .and_then(|n| check.string(n, &format!("build:{key}")))
    };
    let build = Build {
        context: text(check, "context").unwrap_or_else(|| ".".into()),
        dockerfile: text(check, "dockerfile").unwrap_or_else(|| "Dockerfile".into()),
        args: map
            .get("args")
            .map(|n| string_map(check, n, "build:args"))
            .unwrap_or_default(),
        target: text(check, "target"),
        labels: map
            .get("labels")
            .map(|n| string_map(check, n, "build:labels"))
            .unwrap_or_default(),
        tags: map
            .get("tags")
            .and_then(|n| check.strings(n, "build:tags"))
            .unwrap_or_default(),
        push: map
            .get("push")
            .and_then(|n| check.bool(n, "build:push"))
            .unwrap_or(false),
    };
    if build.push && build.tags.is_empty() {
        check.error(
            &node.pos,
            "build:push needs at least one image in build:tags",
        );
    }
    Some(build)
}

/// esteira extension `deploy:` — roll one service on the agent's engine.
pub fn read_deploy(check: &mut Checker<'_>, node: &Node) -> Option<Deploy> {
    let Some(map) = node.as_map() else {
        check.error(
            &node.pos,
            format!(
                "deploy must be a mapping (image, service, ports, env, health), not {}",
                node.kind()
            ),
        );
        return None;
    };
    known_keys(
        check,
        map,
        &["image", "service", "ports", "env", "restart", "health"],
        "deploy",
    );
    let required = |check: &mut Checker<'_>, key: &str| match map.get(key) {
        Some(n) => check.string(n, &format!("deploy:{key}")),
        None => {
            check.error(&node.pos, format!("deploy needs '{key}'"));
            None
        }
    };
    let image = required(check, "image");
    let service = required(check, "service");
    let health = map.get("health").and_then(|n| read_health(check, n));
    Some(Deploy {
        image: image?,
        service: service?,
        ports: map
            .get("ports")
            .and_then(|n| check.strings(n, "deploy:ports"))
            .unwrap_or_default(),
        env: map
            .get("env")
            .map(|n| string_map(check, n, "deploy:env"))
            .unwrap_or_default(),
        restart: map
            .get("restart")
            .and_then(|n| check.string(n, "deploy:restart")),
        health,
    })
}

fn read_health(check: &mut Checker<'_>, node: &Node) -> Option<HealthCheck> {
    let Some(map) = node.as_map() else {
        check.error(
            &node.pos,
            "deploy:health must be a mapping (http or command, timeout, retries)",
        );
        return None;
    };
    known_keys(
        check,
        map,
        &["http", "command", "timeout", "retries"],
        "deploy:health",
    );
    let health = HealthCheck {
        http: map
            .get("http")
            .and_then(|n| check.string(n, "deploy:health:http")),
        command: map
            .get("command")
            .and_then(|n| check.strings(n, "deploy:health:command")),
        timeout_secs: map
            .get("timeout")
            .and_then(|n| read_duration(check, n, "deploy:health:timeout"))
            .unwrap_or(30),
        retries: map
            .get("retries")
            .and_then(|n| check.int(n, "deploy:health:retries"))
            .map_or(0, |r| r.clamp(0, 1000) as u32),
    };
    if health.http.is_none() && health.command.is_none() {
        check.error(&node.pos, "deploy:health needs 'http' or 'command'");
    }
    Some(health)
}
