//! Project variables, stored encrypted ([`crate::secrets`]); only their flags are listed.

use serde::Serialize;

use async_trait::async_trait;

use super::StoreError;
use crate::model::ProjectId;

/// A variable's listing: never its value.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct VariableInfo {
    pub key: String,
    pub masked: bool,
    pub protected: bool,
    pub file: bool,
    pub updated_at: i64,
}

/// A stored variable with its sealed value.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SealedVariable {
    pub key: String,
    pub nonce: Vec<u8>,
    pub ciphertext: Vec<u8>,
    pub masked: bool,
    pub protected: bool,
    pub file: bool,
}

/// Project variables, sealed.
#[async_trait]
pub trait VariableStore: Send + Sync {
    async fn put_variable(
        &self,
        project: ProjectId,
        variable: &SealedVariable,
    ) -> Result<(), StoreError>;

    /// Removes a variable; false when there was none.
    async fn remove_variable(&self, project: ProjectId, key: &str) -> Result<bool, StoreError>;

    async fn variable_infos(&self, project: ProjectId) -> Result<Vec<VariableInfo>, StoreError>;

    /// The project's variables, sealed, by key; kept in memory after the first read
    /// ([`super::cache`]).
    async fn sealed_variables(&self, project: ProjectId)
    -> Result<Vec<SealedVariable>, StoreError>;
}
