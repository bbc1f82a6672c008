use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Trigger;

/// A task template: kind, parameters, trigger, limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    pub id: Uuid,
    pub env: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub kind: String,
    pub enabled: bool,
    pub trigger: Trigger,
    pub params: Vec<ScheduleParam>,
    pub retry: RetryPolicy,
    pub timeout_seconds: u64,
    pub overlap: Overlap,
    pub catch_up: CatchUp,
    #[serde(default)]
    pub allow_loops: bool,
    /// The next due time not yet fired. Advancing it is committed together with the run it
    /// fires, which is what makes a due time fire at most once, across restarts too.
    pub next_fire_at: Option<DateTime<Utc>>,
    /// The user who last saved it: scheduled runs act for them (`@UserID@`).
    pub saved_by: String,
    pub updated_at: DateTime<Utc>,
}

impl Schedule {
    pub fn param(&self, name: &str) -> Option<&ScheduleParam> {
        self.params.iter().find(|p| p.name == name)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleParam {
    pub name: String,
    pub value: ParamValue,
    #[serde(default)]
    pub locked: bool,
}

/// A parameter value at rest: plain text, or sealed with the environment's data key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ParamValue {
    Plain(String),
    Sealed(SealedValue),
}

impl ParamValue {
    pub fn is_sealed(&self) -> bool {
        matches!(self, ParamValue::Sealed(_))
    }
}

/// AES-256-GCM ciphertext with what is needed to open it: format version, the environment
/// data key's id, and `nonce || ciphertext || tag` in base64. Its associated data (the place
/// it belongs to) is not stored: the opener must know where it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedValue {
    pub v: u8,
    pub key_id: u32,
    pub data: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryPolicy {
    /// Counts every execution, the first included (≥ 1).
    pub max_attempts: u32,
    pub backoff_seconds: u64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 1,
            backoff_seconds: 30,
        }
    }
}

impl RetryPolicy {
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }

    /// `backoff · 2^(n−1)` after failed attempt `n`, at most one hour, before jitter.
    pub fn base_delay(&self, attempt: u32) -> std::time::Duration {
        let factor = 2u64.saturating_pow(attempt.saturating_sub(1));
        std::time::Duration::from_secs(self.backoff_seconds.saturating_mul(factor).min(3600))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Overlap {
    #[default]
    Allow,
    Skip,
    Queue,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CatchUp {
    #[default]
    Skip,
    Once,
}

/// Parameter names: printable, no spaces, at most 128 bytes.
pub fn is_valid_param_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 128 && name.chars().all(|c| c.is_ascii_graphic() && c != '@')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps_at_an_hour() {
        let r = RetryPolicy {
            max_attempts: 5,
            backoff_seconds: 30,
        };
        assert_eq!(r.base_delay(1).as_secs(), 30);
        assert_eq!(r.base_delay(2).as_secs(), 60);
        assert_eq!(r.base_delay(3).as_secs(), 120);
        assert_eq!(r.base_delay(40).as_secs(), 3600);
    }
}
