//! The file store as users see it: listings and downloads.

use super::{Service, ServiceError};
use crate::domain::{Role, User};
use crate::store::FileMeta;

impl Service {
    pub fn list_files(&self, caller: &User, env: &str) -> Result<Vec<FileMeta>, ServiceError> {
        self.require(caller, env, Role::Viewer)?;
        Ok(self.store.files_of(env)?)
    }

    /// The newest version of a file, with its bytes.
    pub fn download_file(
        &self,
        caller: &User,
        env: &str,
        name: &str,
    ) -> Result<(FileMeta, Vec<u8>), ServiceError> {
        self.require(caller, env, Role::Viewer)?;
        let meta = self
            .store
            .file(env, name)?
            .ok_or_else(|| ServiceError::NotFound(format!("file {name:?}")))?;
        let bytes = self.store.read_file(&meta)?;
        Ok((meta, bytes))
    }
}
