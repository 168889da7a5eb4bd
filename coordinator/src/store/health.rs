//! Whether the database answers, for readiness. Belongs with [`super::Store`]'s opening
//! in `store/mod.rs` and is to be folded into it; it lives apart only while that file is
//! rewritten.

use super::{Store, StoreError};

impl Store {
    /// One round trip to the database.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(self.pool()).await?;
        Ok(())
    }
}
