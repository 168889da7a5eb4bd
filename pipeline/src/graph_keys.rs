//! The keywords that shape the job graph: `parallel` (N copies or a matrix) and `needs`.

use crate::check::Checker;
use crate::plan::Variable;
use crate::yaml::{Node, Pos, Value};

/// `parallel:` — N copies, or one job per combination of a matrix.
#[derive(Debug, Clone, Default)]
pub enum Parallel {
    #[default]
    None,
    Count(u32),
    /// Each combination's variables, in the matrix's order.
    Matrix(Vec<Vec<Variable>>),
}

impl Parallel {
    /// How many jobs one job becomes.
    pub fn copies(&self) -> usize {
        match self {
            Parallel::None => 1,
            Parallel::Count(total) => *total as usize,
            Parallel::Matrix(combinations) => combinations.len(),
        }
    }
}

/// One entry of `needs:`.
#[derive(Debug, Clone)]
pub struct NeedSpec {
    pub job: String,
    pub artifacts: bool,
    pub optional: bool,
    /// `parallel:matrix` selecting some instances of a matrix job.
    pub matrix: Option<Vec<Vec<Variable>>>,
    pub pos: Pos,
}

/// GitLab's maximum of `parallel` jobs and of `needs` entries.
const MAX_PARALLEL: usize = 200;
pub const MAX_NEEDS: usize = 50;
/// `parallel: N` (2 to 200) or `parallel: {matrix: [{VAR: value | [values]}]}`.
pub fn read_parallel(check: &mut Checker<'_>, node: &Node) -> Parallel {
    match &node.value {
        Value::Int(count) => {
            if !(1..=MAX_PARALLEL as i64).contains(count) {
                check.error(
                    &node.pos,
                    format!("parallel must be between 1 and {MAX_PARALLEL}"),
                );
                return Parallel::None;
            }
            Parallel::Count(*count as u32)
        }
        Value::Map(map) => match map.get("matrix") {
            Some(matrix) => match read_matrix(check, matrix) {
                Some(combinations) if combinations.len() > MAX_PARALLEL => {
                    check.error(
                        &node.pos,
                        format!(
                            "parallel:matrix makes {} jobs, more than {MAX_PARALLEL}",
                            combinations.len()
                        ),
                    );
                    Parallel::None
                }
                Some(combinations) => Parallel::Matrix(combinations),
                None => Parallel::None,
            },
            None => {
                check.error(&node.pos, "parallel must be a number or {matrix: [...]}");
                Parallel::None
            }
        },
        _ => {
            check.error(
                &node.pos,
                format!(
                    "parallel must be a number or {{matrix: [...]}}, not {}",
                    node.kind()
                ),
            );
            Parallel::None
        }
    }
}

/// Every combination of a matrix, in GitLab's order: entries in order, and within one
/// entry the cartesian product with the first variable varying slowest.
pub fn read_matrix(check: &mut Checker<'_>, node: &Node) -> Option<Vec<Vec<Variable>>> {
    let Some(entries) = node.as_seq() else {
        check.error(&node.pos, "parallel:matrix must be a list of mappings");
        return None;
    };
    let mut combinations = Vec::new();
    for entry in entries {
        let Some(map) = entry.as_map() else {
            check.error(
                &entry.pos,
                "each parallel:matrix entry must be a mapping of variables to values",
            );
            return None;
        };
        let mut product: Vec<Vec<Variable>> = vec![Vec::new()];
        for variable in &map.entries {
            let values = check.strings(
                &variable.value,
                &format!("parallel:matrix:{}", variable.key),
            )?;
            product = product
                .into_iter()
                .flat_map(|prefix| {
                    values.iter().map(move |value| {
                        let mut next = prefix.clone();
                        next.push(Variable {
                            key: variable.key.clone(),
                            value: value.clone(),
                        });
                        next
                    })
                })
                .collect();
            if product.len() > MAX_PARALLEL * 4 {
                check.error(
                    &entry.pos,
                    format!("parallel:matrix makes more than {MAX_PARALLEL} jobs"),
                );
                return None;
            }
        }
        combinations.extend(product);
    }
    Some(combinations)
}

/// `needs:` — names, or `{job, artifacts, optional, parallel: {matrix}}`.
pub fn read_needs(check: &mut Checker<'_>, node: &Node) -> Option<Vec<NeedSpec>> {
    let Some(items) = node.as_seq() else {
        check.error(
            &node.pos,
            format!("needs must be a list, not {}", node.kind()),
        );
        return None;
    };
    if items.len() > MAX_NEEDS {
        check.error(
            &node.pos,
            format!(
                "needs lists {} jobs, more than GitLab's limit of {MAX_NEEDS}",
                items.len()
            ),
        );
    }
    let mut needs = Vec::new();
    for item in items {
        let need = match &item.value {
            Value::Map(map) => {
                for key in ["project", "pipeline"] {
                    if map.contains_key(key) {
                        check.error(&item.pos, format!("needs:{key} (artifacts of another pipeline) is not supported by esteira"));
                    }
                }
                for entry in &map.entries {
                    if ![
                        "job",
                        "artifacts",
                        "optional",
                        "parallel",
                        "project",
                        "pipeline",
                        "ref",
                    ]
                    .contains(&entry.key.as_str())
                    {
                        check.unknown_key(
                            &entry.key_pos,
                            &entry.key,
                            &["job", "artifacts", "optional", "parallel"],
                            "needs",
                        );
                    }
                }
                let Some(job) = map.get("job").and_then(|j| check.string(j, "needs:job")) else {
                    check.error(&item.pos, "a needs entry needs 'job'");
                    continue;
                };
                let matrix = map
                    .get("parallel")
                    .and_then(|p| p.as_map().and_then(|m| m.get("matrix")).or(Some(p)))
                    .and_then(|m| read_matrix(check, m));
                NeedSpec {
                    job,
                    artifacts: map
                        .get("artifacts")
                        .and_then(|a| check.bool(a, "needs:artifacts"))
                        .unwrap_or(true),
                    optional: map
                        .get("optional")
                        .and_then(|o| check.bool(o, "needs:optional"))
                        .unwrap_or(false),
                    matrix,
                    pos: item.pos.clone(),
                }
            }
            _ => match check.string(item, "needs") {
                Some(job) => NeedSpec {
                    job,
                    artifacts: true,
                    optional: false,
                    matrix: None,
                    pos: item.pos.clone(),
                },
                None => continue,
            },
        };
        needs.push(need);
    }
    Some(needs)
}
