//! What a client sends to create or replace a schedule. Every field is optional here so that
//! a missing one is reported with the others (422), while an unknown or mistyped field is a
//! 400 from the deserializer.

use serde::{Deserialize, Deserializer};

use crate::domain::{CatchUp, Overlap};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleInput {
    /// Read-only fields, accepted and ignored so GET → PUT round-trips.
    #[serde(default)]
    pub id: Option<serde_json::Value>,
    #[serde(default)]
    pub next_fire_at: Option<serde_json::Value>,
    #[serde(default)]
    pub env: Option<serde_json::Value>,
    #[serde(default)]
    pub saved_by: Option<serde_json::Value>,
    #[serde(default)]
    pub updated_at: Option<serde_json::Value>,

    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    pub kind: Option<String>,
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Parsed by hand so that a bad trigger is a 422 naming `trigger.…`.
    pub trigger: Option<serde_json::Value>,
    #[serde(default)]
    pub params: Option<Vec<ParamInput>>,
    #[serde(default)]
    pub retry: Option<RetryInput>,
    #[serde(default)]
    pub timeout_seconds: Option<u64>,
    #[serde(default)]
    pub overlap: Option<Overlap>,
    #[serde(default)]
    pub catch_up: Option<CatchUp>,
    #[serde(default)]
    pub allow_loops: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParamInput {
    pub name: String,
    /// A string, number or boolean (taken as its JSON text), or `null` to keep a stored
    /// encrypted value.
    #[serde(default, deserialize_with = "scalar_text")]
    pub value: Option<String>,
    #[serde(default)]
    pub encrypt: bool,
    #[serde(default)]
    pub locked: bool,
    /// Read-only.
    #[serde(default)]
    pub is_set: Option<bool>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryInput {
    pub max_attempts: Option<u32>,
    pub backoff_seconds: Option<u64>,
}

/// A string, number or boolean as text; `null` as `None`.
pub fn scalar_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    use serde::de::Error;
    match serde_json::Value::deserialize(d)? {
        serde_json::Value::Null => Ok(None),
        serde_json::Value::String(s) => Ok(Some(s)),
        v @ (serde_json::Value::Number(_) | serde_json::Value::Bool(_)) => Ok(Some(v.to_string())),
        _ => Err(D::Error::custom(
            "a value is a string, number, boolean or null",
        )),
    }
}

/// Tells "absent" (`None`) from "null" (`Some(None)`).
pub fn explicit_null<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}
