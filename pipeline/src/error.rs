//! Diagnostics: what is wrong in a pipeline file, and where.

use std::fmt;

use serde::{Deserialize, Serialize};

/// One problem in a pipeline file, printed as `FILE:LINE:COL: message`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Diagnostic {
    pub file: String,
    /// 1-based.
    pub line: usize,
    /// 1-based.
    pub column: usize,
    pub job: Option<String>,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file, self.line, self.column)?;
        if let Some(job) = &self.job {
            write!(f, "job '{job}': ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for Diagnostic {}
