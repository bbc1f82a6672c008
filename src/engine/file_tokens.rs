//! File tokens minted for the runs hops start (and fresh ones for retries).

use std::collections::BTreeMap;

use uuid::Uuid;

use super::Engine;
use crate::crypto::random_token;
use crate::domain::chain::FILE_TOKEN_PREFIX;
use crate::domain::{FileToken, Run};

impl Engine {
    /// A new file token for the file the source run produced, bound to the target
    /// environment and the run it starts.
    pub(super) fn mint_token(
        &self,
        run: &Run,
        outputs: &BTreeMap<String, String>,
        target_env: &str,
        child: Uuid,
    ) -> Result<(String, FileToken), String> {
        let name = outputs
            .get("FileName")
            .ok_or("@FileToken@: the run produced no FileName output")?;
        let meta = self
            .store
            .file(&run.env, name)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("@FileToken@: {name:?} is not in the file store"))?;
        Ok(self.mint_token_for(&run.env, &meta.name, meta.version, target_env, child))
    }

    pub(super) fn mint_token_for(
        &self,
        source_env: &str,
        file: &str,
        version: u32,
        target_env: &str,
        child: Uuid,
    ) -> (String, FileToken) {
        let now = self.clock.now();
        let text = format!("{FILE_TOKEN_PREFIX}{}", random_token(32));
        let token = FileToken {
            id: Uuid::now_v7(),
            source_env: source_env.to_string(),
            file_name: file.to_string(),
            file_version: version,
            target_env: target_env.to_string(),
            run_id: child,
            created_at: now,
            expires_at: now
                + chrono::Duration::from_std(self.file_token_ttl)
                    .unwrap_or(chrono::Duration::hours(24)),
            revoked_at: None,
        };
        (text, token)
    }

    /// A new token for the same file version and environment as `old`, bound to `run` (a
    /// retry of a run that received a token).
    pub fn fresh_token(&self, old: &FileToken, run: Uuid) -> (String, FileToken) {
        self.mint_token_for(
            &old.source_env,
            &old.file_name,
            old.file_version,
            &old.target_env,
            run,
        )
    }
}
