//! What dispatch reads of a project for every assignment — the project (its secrets
//! opened) and its sealed variables — kept in memory after the first read. Every write
//! to a project or its variables goes through this store and drops the project's entry,
//! and one coordinator process owns an SQLite database, so an entry is never stale. (A
//! backend shared by several coordinators must drop entries on the others' writes too.)

use crate::memo::Memo;
use crate::model::ProjectId;
use crate::store::projects::Project;
use crate::store::variables::SealedVariable;

#[derive(Default)]
pub(super) struct ProjectCache {
    projects: Memo<ProjectId, Project>,
    variables: Memo<ProjectId, Vec<SealedVariable>>,
}

impl ProjectCache {
    pub(super) fn project(&self, id: ProjectId) -> Option<Project> {
        self.projects.get(&id)
    }

    pub(super) fn keep_project(&self, project: &Project) {
        self.projects.insert(project.id, project.clone());
    }

    pub(super) fn variables(&self, id: ProjectId) -> Option<Vec<SealedVariable>> {
        self.variables.get(&id)
    }

    pub(super) fn keep_variables(&self, id: ProjectId, variables: &[SealedVariable]) {
        self.variables.insert(id, variables.to_vec());
    }

    /// The project or its variables changed: read them again next time.
    pub(super) fn forget(&self, id: ProjectId) {
        self.projects.forget(&id);
        self.variables.forget(&id);
    }

    /// Many projects changed at once.
    pub(super) fn forget_all(&self) {
        self.projects.clear();
        self.variables.clear();
    }
}
