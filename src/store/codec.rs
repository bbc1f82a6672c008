//! Stored values: one format byte, then JSON. JSON is self-describing, so a new field with
//! `#[serde(default)]` needs no migration; the byte leaves room for another encoding later.

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::StoreError;

const FORMAT_JSON: u8 = 1;

pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.push(FORMAT_JSON);
    // Serializing our own plain structs to a Vec cannot fail (no maps with non-string keys).
    if serde_json::to_writer(&mut out, value).is_err() {
        out.truncate(1);
    }
    out
}

pub fn decode<T: DeserializeOwned>(what: &str, bytes: &[u8]) -> Result<T, StoreError> {
    match bytes.split_first() {
        Some((&FORMAT_JSON, json)) => {
            serde_json::from_slice(json).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
        }
        Some((other, _)) => Err(StoreError::Corrupt(format!(
            "{what}: unknown value format {other}"
        ))),
        None => Err(StoreError::Corrupt(format!("{what}: empty value"))),
    }
}
