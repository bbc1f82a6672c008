use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A tenant: its records are invisible to the others.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Environment {
    pub id: String,
    pub name: String,
    pub time_zone: String,
    /// `None`: only the global limit applies.
    pub max_concurrent_runs: Option<u32>,
    pub created_at: DateTime<Utc>,
}

/// `[a-z][a-z0-9-]{0,31}`
pub fn is_valid_env_id(id: &str) -> bool {
    let mut chars = id.chars();
    matches!(chars.next(), Some('a'..='z'))
        && id.len() <= 32
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '-'))
}

/// An IANA zone name chrono-tz knows.
pub fn is_known_time_zone(tz: &str) -> bool {
    tz.parse::<chrono_tz::Tz>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_ids_follow_the_contract() {
        assert!(is_valid_env_id("production"));
        assert!(is_valid_env_id("t-1"));
        assert!(!is_valid_env_id("1abc"));
        assert!(!is_valid_env_id("Prod"));
        assert!(!is_valid_env_id(""));
        assert!(!is_valid_env_id(&"a".repeat(33)));
    }
}
