//! `SourceFile`: a file name in this environment's file store, or a file token granted to
//! this environment for this run.

use super::{TaskContext, TaskError};
use crate::crypto::token_hash;
use crate::domain::chain::{looks_like_file_token, TokenRefusal};
use crate::domain::AuditEntry;

/// The file's name and bytes.
pub fn read_source_file(ctx: &TaskContext, value: &str) -> Result<(String, Vec<u8>), TaskError> {
    let store = &ctx.store;
    let io = |e: crate::store::StoreError| {
        TaskError::Retry(format!("reading the source file failed: {e}"))
    };
    if !looks_like_file_token(value) {
        let meta = store.file(&ctx.env, value).map_err(io)?.ok_or_else(|| {
            TaskError::Abort(format!(
                "no file {value:?} in this environment's file store"
            ))
        })?;
        let bytes = store.read_file(&meta).map_err(io)?;
        return Ok((meta.name, bytes));
    }
    let refuse = |reason: &str, token: Option<uuid::Uuid>| {
        let _ = store.append_audit(&AuditEntry {
            id: uuid::Uuid::now_v7(),
            at: ctx.clock.now(),
            actor: format!("run {}", ctx.run_id),
            action: "file_token.refused".into(),
            env: Some(ctx.env.clone()),
            target: token.map(|t| t.to_string()),
            detail: reason.to_string(),
        });
        TaskError::Abort(format!("the file token was refused: {reason}"))
    };
    let tok = store
        .file_token(&token_hash(value))
        .map_err(io)?
        .ok_or_else(|| refuse("unknown token", None))?;
    if tok.target_env != ctx.env || tok.run_id != ctx.run_id {
        return Err(refuse(
            "the token was granted to another environment or run",
            Some(tok.id),
        ));
    }
    match tok.check(ctx.clock.now()) {
        Err(TokenRefusal::Expired) => return Err(refuse("the token has expired", Some(tok.id))),
        Err(TokenRefusal::Revoked) => return Err(refuse("the token was revoked", Some(tok.id))),
        Ok(()) => {}
    }
    let bytes = store
        .read_file_version(&tok.source_env, &tok.file_name, tok.file_version)
        .map_err(io)?;
    let _ = store.append_audit(&AuditEntry {
        id: uuid::Uuid::now_v7(),
        at: ctx.clock.now(),
        actor: format!("run {}", ctx.run_id),
        action: "file_token.use".into(),
        env: Some(ctx.env.clone()),
        target: Some(tok.id.to_string()),
        detail: format!("{}/{} v{}", tok.source_env, tok.file_name, tok.file_version),
    });
    ctx.info(format!(
        "reading {} (version {}) from {} through a file token",
        tok.file_name, tok.file_version, tok.source_env
    ));
    Ok((tok.file_name, bytes))
}
