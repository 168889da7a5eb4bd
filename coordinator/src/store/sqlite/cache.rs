//! What dispatch reads of a project for every assignment — the project (its secrets
//! opened) and its sealed variables — kept in memory after the first read. Every write
//! to a project or its variables goes through this store and drops the project's entry,
//! and one coordinator process owns an SQLite database, so an entry is never stale. (A
//! backend shared by several coordinators must drop entries on the others' writes too.)

use std::collections::HashMap;
use std::sync::RwLock;

use crate::model::ProjectId;
use crate::store::projects::Project;
use crate::store::variables::SealedVariable;

#[derive(Default)]
pub(super) struct ProjectCache {
    projects: RwLock<HashMap<ProjectId, Project>>,
    variables: RwLock<HashMap<ProjectId, Vec<SealedVariable>>>,
}

fn read<T: Clone>(map: &RwLock<HashMap<ProjectId, T>>, id: ProjectId) -> Option<T> {
    map.read()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .get(&id)
        .cloned()
}

fn write<T>(
    map: &RwLock<HashMap<ProjectId, T>>,
) -> std::sync::RwLockWriteGuard<'_, HashMap<ProjectId, T>> {
    map.write().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl ProjectCache {
    pub(super) fn project(&self, id: ProjectId) -> Option<Project> {
        read(&self.projects, id)
    }

    pub(super) fn keep_project(&self, project: &Project) {
        write(&self.projects).insert(project.id, project.clone());
    }

    pub(super) fn variables(&self, id: ProjectId) -> Option<Vec<SealedVariable>> {
        read(&self.variables, id)
    }

    pub(super) fn keep_variables(&self, id: ProjectId, variables: &[SealedVariable]) {
        write(&self.variables).insert(id, variables.to_vec());
    }

    /// The project or its variables changed: read them again next time.
    pub(super) fn forget(&self, id: ProjectId) {
        write(&self.projects).remove(&id);
        write(&self.variables).remove(&id);
    }

    /// Many projects changed at once.
    pub(super) fn forget_all(&self) {
        write(&self.projects).clear();
        write(&self.variables).clear();
    }
}
