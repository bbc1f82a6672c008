//! Chains, share grants and file tokens: the records task chaining stands on.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A named record in an environment pointing at one schedule of it (the template). Its
/// `share_with` list holds the share grants: the other environments allowed to start it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chain {
    pub env: String,
    pub name: String,
    pub schedule_id: Uuid,
    #[serde(default)]
    pub description: String,
    pub enabled: bool,
    pub share_with: Vec<String>,
    pub updated_by: String,
    pub updated_at: DateTime<Utc>,
}

impl Chain {
    /// May `source` start this chain? Its own environment always may.
    pub fn startable_from(&self, source: &str) -> bool {
        self.env == source || self.share_with.iter().any(|e| e == source)
    }
}

/// `[A-Za-z0-9][A-Za-z0-9._-]{0,63}`
pub fn is_valid_chain_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && name.len() <= 64
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// A capability to read one version of one file, granted to one environment for one run.
/// Only the SHA-256 of its text is stored (as the table key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileToken {
    pub id: Uuid,
    pub source_env: String,
    pub file_name: String,
    pub file_version: u32,
    pub target_env: String,
    pub run_id: Uuid,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// Why a token does not open its file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenRefusal {
    Expired,
    Revoked,
}

impl FileToken {
    pub fn check(&self, now: DateTime<Utc>) -> Result<(), TokenRefusal> {
        if self.revoked_at.is_some() {
            Err(TokenRefusal::Revoked)
        } else if now >= self.expires_at {
            Err(TokenRefusal::Expired)
        } else {
            Ok(())
        }
    }
}

/// A row of the FileUpload table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Upload {
    pub id: Uuid,
    pub env: String,
    pub name: String,
    pub size: u64,
    pub sha256: String,
    pub created_at: DateTime<Utc>,
    pub run_id: Option<Uuid>,
}

/// File tokens are `bft_` + base64url of 32 random bytes.
pub const FILE_TOKEN_PREFIX: &str = "bft_";

pub fn looks_like_file_token(text: &str) -> bool {
    text.starts_with(FILE_TOKEN_PREFIX) && text.len() == FILE_TOKEN_PREFIX.len() + 43
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_names_follow_the_contract() {
        assert!(is_valid_chain_name("nightly-upload"));
        assert!(is_valid_chain_name("a.b_c"));
        assert!(!is_valid_chain_name("-x"));
        assert!(!is_valid_chain_name("a b"));
        assert!(!is_valid_chain_name(&"a".repeat(65)));
    }
}
