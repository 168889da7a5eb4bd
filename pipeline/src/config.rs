//! From files to one resolved configuration mapping: the root file and its
//! `include: local` files deep-merged (the including file wins), then `extends` merged into
//! each job, then `!reference` tags replaced — GitLab's order of processing.
//!
//! Includes that cannot be read offline (`remote`, `project`, `template`, `component`) are
//! errors naming the include. Every file, and every copy `extends` and `!reference` make,
//! is counted against one [`TreeBudget`]: past it, loading stops with that one error.

use std::collections::HashMap;

use globset::GlobBuilder;

use crate::check::{Checker, did_you_mean};
use crate::context::FileSource;
use crate::error::Diagnostic;
use crate::limits::{MAX_FILE_BYTES, Size, TreeBudget, mib};
use crate::plan::When;
use crate::rules::{Env, first_match, read_rules};
use crate::vars::Scope;
use crate::yaml::{self, Map, Node, Pos, Value};

/// GitLab's limit on included files in one pipeline.
const MAX_INCLUDES: usize = 150;
/// GitLab's limit on `extends` nesting.
const MAX_EXTENDS_DEPTH: usize = 11;
/// GitLab's limit on `!reference` nesting.
const MAX_REFERENCE_DEPTH: usize = 10;

/// The event an include's `rules` are evaluated against; `None` while linting (every
/// include is then read).
pub type IncludeEnv<'a> = Option<(&'a Env<'a>, &'a Scope)>;

/// Reads `path` and everything it includes, resolves `extends` and `!reference`.
pub fn load(
    files: &dyn FileSource,
    path: &str,
    env: IncludeEnv<'_>,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<Map> {
    let mut loader = Loader {
        files,
        env,
        diagnostics,
        included: Vec::new(),
        listing: None,
        budget: TreeBudget::default(),
    };
    let mut root = loader.read_file(path, None)?;
    loader.expand_includes(&mut root, path, 0);
    let Loader {
        diagnostics,
        mut budget,
        ..
    } = loader;
    if budget.exceeded() {
        return None;
    }
    let resolved = resolve_extends(&mut root, &mut budget, diagnostics)
        .and_then(|()| resolve_references(&mut root, &mut budget, diagnostics));
    match resolved {
        Ok(()) => Some(root),
        Err(diagnostic) => {
            diagnostics.push(diagnostic);
            None
        }
    }
}

struct Loader<'a> {
    files: &'a dyn FileSource,
    env: IncludeEnv<'a>,
    diagnostics: &'a mut Vec<Diagnostic>,
    included: Vec<String>,
    listing: Option<Vec<String>>,
    budget: TreeBudget,
}

impl Loader<'_> {
    fn read_file(&mut self, path: &str, included_at: Option<&Pos>) -> Option<Map> {
        // Past the budget, the one error already given says it all.
        if self.budget.exceeded() {
            return None;
        }
        let display = path.trim_start_matches('/');
        let bytes = match self.files.read(display) {
            Ok(Some(bytes)) => bytes,
            Ok(None) => {
                let message = format!("included file '{display}' does not exist");
                match included_at {
                    Some(pos) => self.diagnostics.push(pos.error(None, message)),
                    None => self.diagnostics.push(
                        Pos::new(&display.into(), 1, 1)
                            .error(None, format!("'{display}' does not exist")),
                    ),
                }
                return None;
            }
            Err(e) => {
                let at = included_at
                    .cloned()
                    .unwrap_or_else(|| Pos::new(&display.into(), 1, 1));
                self.diagnostics
                    .push(at.error(None, format!("cannot read '{display}': {e}")));
                return None;
            }
        };
        if bytes.len() > MAX_FILE_BYTES {
            let at = included_at
                .cloned()
                .unwrap_or_else(|| Pos::new(&display.into(), 1, 1));
            self.diagnostics.push(at.error(
                None,
                format!(
                    "'{display}' is {} bytes, over the limit of {} for a pipeline file",
                    bytes.len(),
                    mib(MAX_FILE_BYTES)
                ),
            ));
            return None;
        }
        let Ok(text) = String::from_utf8(bytes) else {
            self.diagnostics
                .push(Pos::new(&display.into(), 1, 1).error(None, "the file is not UTF-8 text"));
            return None;
        };
        let document = match yaml::parse(display, &text, &mut self.budget) {
            Ok(document) => document,
            Err(diagnostic) => {
                self.diagnostics.push(diagnostic);
                return None;
            }
        };
        match document.value {
            Value::Map(map) => Some(map),
            Value::Null => Some(Map::default()),
            _ => {
                self.diagnostics.push(document.pos.error(
                    None,
                    format!("a pipeline file must be a mapping, not {}", document.kind()),
                ));
                None
            }
        }
    }

    /// Replaces `include:` in `map` by the content of the included files.
    fn expand_includes(&mut self, map: &mut Map, path: &str, depth: usize) {
        let Some(include) = map.remove("include") else {
            return;
        };
        self.included.push(path.trim_start_matches('/').to_owned());
        let entries: Vec<Node> = match include.value {
            Value::Seq(items) => items,
            _ => vec![include],
        };
        let mut merged = Map::default();
        for entry in entries {
            for local in self.local_paths(&entry) {
                if self.included.len() >= MAX_INCLUDES {
                    self.diagnostics.push(
                        entry
                            .pos
                            .error(None, format!("more than {MAX_INCLUDES} included files")),
                    );
                    return;
                }
                if self.included.contains(&local) || depth > 100 {
                    continue;
                }
                if let Some(mut content) = self.read_file(&local, Some(&entry.pos)) {
                    self.expand_includes(&mut content, &local, depth + 1);
                    merged.deep_merge(&content);
                }
            }
        }
        merged.deep_merge(map);
        *map = merged;
    }

    /// The repository paths one `include` entry stands for, after its `rules`.
    fn local_paths(&mut self, entry: &Node) -> Vec<String> {
        const KEYS: &[&str] = &[
            "local",
            "remote",
            "project",
            "file",
            "ref",
            "template",
            "component",
            "rules",
            "inputs",
            "cache",
            "integrity",
        ];
        let mut check = Checker::new(None, self.diagnostics);
        let target = match &entry.value {
            Value::Str(text) if text.starts_with("http://") || text.starts_with("https://") => {
                check.error(&entry.pos, format!("include:remote '{text}' cannot be fetched: esteira reads include:local files only"));
                return Vec::new();
            }
            Value::Str(text) => text.clone(),
            Value::Map(map) => {
                for e in &map.entries {
                    if !KEYS.contains(&e.key.as_str()) {
                        check.unknown_key(&e.key_pos, &e.key, KEYS, "include");
                    }
                }
                for kind in ["remote", "project", "template", "component"] {
                    if let Some(value) = map.get(kind) {
                        let name = value.scalar_text().unwrap_or_default();
                        let file = map
                            .get("file")
                            .map(|f| format!(" (file {})", flat_text(f)))
                            .unwrap_or_default();
                        check.error(&entry.pos, format!("include:{kind} '{name}'{file} cannot be resolved offline: esteira reads include:local files only"));
                        return Vec::new();
                    }
                }
                if map.contains_key("inputs") {
                    check.error(
                        &entry.pos,
                        "include:inputs (spec:inputs interpolation) is not supported by esteira",
                    );
                    return Vec::new();
                }
                if let (Some(rules), Some((env, scope))) = (map.get("rules"), self.env) {
                    let rules = read_rules(&mut check, rules, false);
                    let included = first_match(&rules, env, scope)
                        .is_some_and(|rule| rule.when != Some(When::Never));
                    if !included {
                        return Vec::new();
                    }
                }
                match map
                    .get("local")
                    .and_then(|l| check.string(l, "include:local"))
                {
                    Some(local) => local,
                    None => {
                        check.error(
                            &entry.pos,
                            "include needs 'local' (esteira reads include:local files only)",
                        );
                        return Vec::new();
                    }
                }
            }
            _ => {
                check.error(
                    &entry.pos,
                    format!("include must be a path or a mapping, not {}", entry.kind()),
                );
                return Vec::new();
            }
        };
        let target = match self.env {
            Some((_, scope)) => scope.expand(&target),
            // Without an event, a path made of variables cannot be known.
            None if target.contains('$') => return Vec::new(),
            None => target,
        };
        let target = target.trim_start_matches('/').to_owned();
        if !target.contains('*') {
            if !(target.ends_with(".yml") || target.ends_with(".yaml")) {
                self.diagnostics.push(entry.pos.error(
                    None,
                    format!("include:local '{target}' must be a .yml or .yaml file"),
                ));
                return Vec::new();
            }
            return vec![target];
        }
        let matcher = match GlobBuilder::new(&target).literal_separator(true).build() {
            Ok(glob) => glob.compile_matcher(),
            Err(e) => {
                self.diagnostics.push(entry.pos.error(
                    None,
                    format!("include:local '{target}' is not a valid glob: {e}"),
                ));
                return Vec::new();
            }
        };
        if self.listing.is_none() {
            match self.files.list() {
                Ok(list) => self.listing = Some(list),
                Err(e) => {
                    self.diagnostics.push(
                        entry
                            .pos
                            .error(None, format!("cannot list the repository files: {e}")),
                    );
                    return Vec::new();
                }
            }
        }
        let mut found: Vec<String> = self
            .listing
            .iter()
            .flatten()
            .map(|p| p.trim_start_matches('/'))
            .filter(|p| (p.ends_with(".yml") || p.ends_with(".yaml")) && matcher.is_match(p))
            .map(str::to_owned)
            .collect();
        found.sort();
        found
    }
}

fn flat_text(node: &Node) -> String {
    match &node.value {
        Value::Seq(items) => items.iter().map(flat_text).collect::<Vec<_>>().join(", "),
        _ => node.scalar_text().unwrap_or_default(),
    }
}

/// `extends`: each job gets its parents deep-merged under it (hashes merge, everything
/// else is replaced by the child), parents resolved first, several parents in order.
fn resolve_extends(
    root: &mut Map,
    budget: &mut TreeBudget,
    diagnostics: &mut Vec<Diagnostic>,
) -> Result<(), Diagnostic> {
    let index: HashMap<String, usize> = root
        .entries
        .iter()
        .enumerate()
        .map(|(i, e)| (e.key.clone(), i))
        .collect();
    // Resolved mappings of the entries that use `extends` (`None`: could not resolve).
    let mut memo: HashMap<usize, Option<Map>> = HashMap::new();
    for at in 0..root.entries.len() {
        let mut chain = Vec::new();
        extend(root, &index, at, &mut chain, &mut memo, budget, diagnostics)?;
    }
    for (at, map) in memo {
        if let Some(map) = map {
            root.entries[at].value.value = Value::Map(map);
        }
    }
    Ok(())
}

fn extend(
    root: &Map,
    index: &HashMap<String, usize>,
    at: usize,
    chain: &mut Vec<usize>,
    memo: &mut HashMap<usize, Option<Map>>,
    budget: &mut TreeBudget,
    diagnostics: &mut Vec<Diagnostic>,
) -> Result<(), Diagnostic> {
    if memo.contains_key(&at) {
        return Ok(());
    }
    let entry = &root.entries[at];
    let job = entry.key.as_str();
    let Some(map) = entry.value.as_map() else {
        return Ok(());
    };
    let Some(extends) = map.get("extends") else {
        return Ok(());
    };
    if chain.contains(&at) {
        let names: Vec<&str> = chain
            .iter()
            .chain([&at])
            .map(|i| root.entries[*i].key.as_str())
            .collect();
        diagnostics.push(extends.pos.error(
            Some(job),
            format!("circular extends: {}", names.join(" -> ")),
        ));
        memo.insert(at, None);
        return Ok(());
    }
    if chain.len() >= MAX_EXTENDS_DEPTH {
        diagnostics.push(extends.pos.error(
            Some(job),
            format!("extends nested deeper than {MAX_EXTENDS_DEPTH} levels"),
        ));
        memo.insert(at, None);
        return Ok(());
    }
    let Some(parents) = Checker::new(Some(job), diagnostics).strings(extends, "extends") else {
        memo.insert(at, None);
        return Ok(());
    };
    chain.push(at);
    let mut merged = Map::default();
    for parent in &parents {
        let Some(&parent_at) = index.get(parent) else {
            let names: Vec<&str> = root.entries.iter().map(|e| e.key.as_str()).collect();
            let hint = did_you_mean(parent, &names)
                .map(|n| format!(" (did you mean '{n}'?)"))
                .unwrap_or_default();
            diagnostics.push(extends.pos.error(
                Some(job),
                format!("extends '{parent}', which is not defined{hint}"),
            ));
            continue;
        };
        extend(root, index, parent_at, chain, memo, budget, diagnostics)?;
        let parent_map = match memo.get(&parent_at) {
            Some(resolved) => resolved.as_ref(),
            None => root.entries[parent_at].value.as_map(),
        };
        match parent_map {
            Some(parent_map) => merged.deep_merge(parent_map),
            None if memo.contains_key(&parent_at) => {}
            None => diagnostics.push(extends.pos.error(
                Some(job),
                format!("extends '{parent}', which is not a mapping"),
            )),
        }
    }
    chain.pop();
    merged.deep_merge(map);
    merged.remove("extends");
    // The resolved job is a new copy of its parents' keywords and its own.
    budget
        .charge(Size::of_map(&merged), "extends")
        .map_err(|message| extends.pos.error(Some(job), message))?;
    memo.insert(at, Some(merged));
    Ok(())
}

/// Replaces every `!reference [name, key, ...]` by the value it points at.
fn resolve_references(
    root: &mut Map,
    budget: &mut TreeBudget,
    diagnostics: &mut Vec<Diagnostic>,
) -> Result<(), Diagnostic> {
    if !root.entries.iter().any(|e| has_reference(&e.value)) {
        return Ok(());
    }
    let snapshot = root.clone();
    let mut references = References {
        root: &snapshot,
        budget,
        diagnostics,
    };
    for entry in &mut root.entries {
        references.replace(&mut entry.value, &entry.key, 0)?;
    }
    Ok(())
}

/// What replacing `!reference` tags reads (`root`, as it was before any replacement) and
/// where it counts the copies.
struct References<'r> {
    root: &'r Map,
    budget: &'r mut TreeBudget,
    diagnostics: &'r mut Vec<Diagnostic>,
}

impl References<'_> {
    fn replace(&mut self, node: &mut Node, job: &str, depth: usize) -> Result<(), Diagnostic> {
        match &mut node.value {
            Value::Seq(items) => items
                .iter_mut()
                .try_for_each(|item| self.replace(item, job, depth)),
            Value::Map(map) => map
                .entries
                .iter_mut()
                .try_for_each(|e| self.replace(&mut e.value, job, depth)),
            Value::Reference(path) => {
                if depth >= MAX_REFERENCE_DEPTH {
                    self.diagnostics.push(node.pos.error(
                        Some(job),
                        format!("!reference nested deeper than {MAX_REFERENCE_DEPTH} levels"),
                    ));
                    node.value = Value::Null;
                    return Ok(());
                }
                let keys: Vec<String> = path.iter().filter_map(Node::scalar_text).collect();
                match lookup(self.root, &keys) {
                    Ok(found) => {
                        // Counted before the copy: references of references multiply.
                        self.budget
                            .charge(Size::of(found), "!reference")
                            .map_err(|message| node.pos.error(Some(job), message))?;
                        let mut found = found.clone();
                        self.replace(&mut found, job, depth + 1)?;
                        node.value = found.value;
                    }
                    Err(message) => {
                        self.diagnostics.push(node.pos.error(Some(job), message));
                        node.value = Value::Null;
                    }
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

fn has_reference(node: &Node) -> bool {
    match &node.value {
        Value::Reference(_) => true,
        Value::Seq(items) => items.iter().any(has_reference),
        Value::Map(map) => map.entries.iter().any(|e| has_reference(&e.value)),
        _ => false,
    }
}

fn lookup<'m>(root: &'m Map, keys: &[String]) -> Result<&'m Node, String> {
    let shown = format!("!reference [{}]", keys.join(", "));
    let Some((first, rest)) = keys.split_first() else {
        return Err("!reference needs at least a job name and a key".into());
    };
    let mut node = root
        .get(first)
        .ok_or_else(|| format!("{shown}: '{first}' is not defined"))?;
    for key in rest {
        node = node
            .as_map()
            .and_then(|m| m.get(key))
            .ok_or_else(|| format!("{shown}: '{key}' is not defined"))?;
    }
    Ok(node)
}
