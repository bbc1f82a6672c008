use std::collections::HashMap;
use std::sync::RwLock;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::{open_bytes, seal_bytes, CryptoError, MasterKey};
use crate::domain::SealedValue;

/// Where a sealed value belongs. Its text is the associated data, so a value only opens in
/// the place it was sealed for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place<'a> {
    pub env: &'a str,
    /// `schedule:<id>`, `run:<id>`, `chain:<schedule id>#<hop>` …
    pub record: String,
    pub name: &'a str,
}

/// The `record` of a run's parameter: one format, so that a value sealed in one place opens
/// in another.
pub fn run_record(id: uuid::Uuid) -> String {
    format!("run:{id}")
}

/// The `record` of a schedule's parameter (and of the sealed literals in its chain text).
pub fn schedule_record(id: uuid::Uuid) -> String {
    format!("schedule:{id}")
}

impl Place<'_> {
    fn aad(&self) -> Vec<u8> {
        format!("baton/v1\0{}\0{}\0{}", self.env, self.record, self.name).into_bytes()
    }
}

/// A data key as stored: sealed under the master key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WrappedKey {
    pub env: String,
    pub key_id: u32,
    pub data: String,
}

fn wrap_aad(env: &str, key_id: u32) -> Vec<u8> {
    format!("baton/datakey\0{env}\0{key_id}").into_bytes()
}

struct EnvKeys {
    current: u32,
    keys: HashMap<u32, Zeroizing<[u8; 32]>>,
}

/// The opened data keys of every environment, in memory only.
pub struct Keyring {
    master: MasterKey,
    envs: RwLock<HashMap<String, EnvKeys>>,
}

impl Keyring {
    pub fn new(master: MasterKey) -> Self {
        Self {
            master,
            envs: RwLock::new(HashMap::new()),
        }
    }

    /// Opens stored data keys; any that fails to open means the master key is wrong.
    pub fn load(&self, wrapped: &[WrappedKey]) -> Result<(), CryptoError> {
        let mut envs = self.envs.write().unwrap_or_else(|e| e.into_inner());
        for w in wrapped {
            let bytes = B64
                .decode(&w.data)
                .map_err(|_| CryptoError::WrongMasterKey)?;
            let key = open_bytes(&self.master.0, &wrap_aad(&w.env, w.key_id), &bytes)
                .map_err(|_| CryptoError::WrongMasterKey)?;
            let arr: [u8; 32] = key
                .as_slice()
                .try_into()
                .map_err(|_| CryptoError::WrongMasterKey)?;
            let entry = envs.entry(w.env.clone()).or_insert_with(|| EnvKeys {
                current: w.key_id,
                keys: HashMap::new(),
            });
            entry.current = entry.current.max(w.key_id);
            entry.keys.insert(w.key_id, Zeroizing::new(arr));
        }
        Ok(())
    }

    /// Makes a new data key for `env` (its first, or the next on rotation) and returns it
    /// wrapped for storage. It becomes the key new seals use.
    pub fn new_data_key(&self, env: &str) -> WrappedKey {
        let mut envs = self.envs.write().unwrap_or_else(|e| e.into_inner());
        let entry = envs.entry(env.to_string()).or_insert_with(|| EnvKeys {
            current: 0,
            keys: HashMap::new(),
        });
        let key_id = entry.keys.keys().max().map_or(1, |m| m + 1);
        let key = super::random_key();
        let data = B64.encode(seal_bytes(
            &self.master.0,
            &wrap_aad(env, key_id),
            key.as_ref(),
        ));
        entry.keys.insert(key_id, key);
        entry.current = key_id;
        WrappedKey {
            env: env.to_string(),
            key_id,
            data,
        }
    }

    /// Every data key wrapped under `master` (for `keys rotate --new-master-key-file`).
    pub fn rewrap_all(&self, master: &MasterKey) -> Vec<WrappedKey> {
        let envs = self.envs.read().unwrap_or_else(|e| e.into_inner());
        let mut out = Vec::new();
        for (env, keys) in envs.iter() {
            for (id, key) in &keys.keys {
                let data = B64.encode(seal_bytes(&master.0, &wrap_aad(env, *id), key.as_ref()));
                out.push(WrappedKey {
                    env: env.clone(),
                    key_id: *id,
                    data,
                });
            }
        }
        out
    }

    /// A value sealed under the master key alone, stored to tell a wrong master key from a
    /// right one even before any environment exists.
    pub fn master_check(&self) -> Vec<u8> {
        seal_bytes(&self.master.0, b"baton/master-check", b"baton")
    }

    pub fn verify_master_check(&self, sealed: &[u8]) -> Result<(), CryptoError> {
        open_bytes(&self.master.0, b"baton/master-check", sealed)
            .map(|_| ())
            .map_err(|_| CryptoError::WrongMasterKey)
    }

    pub fn seal(&self, place: &Place<'_>, plaintext: &str) -> Result<SealedValue, CryptoError> {
        let envs = self.envs.read().unwrap_or_else(|e| e.into_inner());
        let keys = envs.get(place.env).ok_or_else(|| CryptoError::UnknownKey {
            env: place.env.to_string(),
            key_id: 0,
        })?;
        let key = keys
            .keys
            .get(&keys.current)
            .ok_or_else(|| CryptoError::UnknownKey {
                env: place.env.to_string(),
                key_id: keys.current,
            })?;
        Ok(SealedValue {
            v: 1,
            key_id: keys.current,
            data: B64.encode(seal_bytes(key, &place.aad(), plaintext.as_bytes())),
        })
    }

    pub fn open(
        &self,
        place: &Place<'_>,
        sealed: &SealedValue,
    ) -> Result<Zeroizing<String>, CryptoError> {
        if sealed.v != 1 {
            return Err(CryptoError::OpenFailed);
        }
        let envs = self.envs.read().unwrap_or_else(|e| e.into_inner());
        let key = envs
            .get(place.env)
            .and_then(|k| k.keys.get(&sealed.key_id))
            .ok_or_else(|| CryptoError::UnknownKey {
                env: place.env.to_string(),
                key_id: sealed.key_id,
            })?;
        let bytes = B64
            .decode(&sealed.data)
            .map_err(|_| CryptoError::OpenFailed)?;
        let plain = open_bytes(key, &place.aad(), &bytes)?;
        String::from_utf8(plain.to_vec())
            .map(Zeroizing::new)
            .map_err(|_| CryptoError::OpenFailed)
    }

    /// Re-seals `sealed` under the environment's current key (after rotation).
    pub fn reseal(
        &self,
        place: &Place<'_>,
        sealed: &SealedValue,
    ) -> Result<SealedValue, CryptoError> {
        let plain = self.open(place, sealed)?;
        self.seal(place, &plain)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn place<'a>(env: &'a str, name: &'a str) -> Place<'a> {
        Place {
            env,
            record: "schedule:1".into(),
            name,
        }
    }

    #[test]
    fn a_value_moved_to_another_place_or_env_does_not_open() {
        let ring = Keyring::new(MasterKey::generate());
        ring.new_data_key("a");
        ring.new_data_key("b");
        let sealed = ring.seal(&place("a", "Password"), "s3cret").unwrap();
        assert_eq!(
            ring.open(&place("a", "Password"), &sealed)
                .unwrap()
                .as_str(),
            "s3cret"
        );
        assert!(ring.open(&place("a", "Other"), &sealed).is_err());
        assert!(ring.open(&place("b", "Password"), &sealed).is_err());
    }

    #[test]
    fn wrapped_keys_load_only_under_the_same_master_key() {
        let master_bytes = *MasterKey::generate().0;
        let ring = Keyring::new(MasterKey(Zeroizing::new(master_bytes)));
        let wrapped = ring.new_data_key("a");
        let sealed = ring.seal(&place("a", "P"), "x").unwrap();

        let again = Keyring::new(MasterKey(Zeroizing::new(master_bytes)));
        again.load(std::slice::from_ref(&wrapped)).unwrap();
        assert_eq!(again.open(&place("a", "P"), &sealed).unwrap().as_str(), "x");

        let wrong = Keyring::new(MasterKey::generate());
        assert!(matches!(
            wrong.load(&[wrapped]),
            Err(CryptoError::WrongMasterKey)
        ));
    }

    #[test]
    fn rotation_keeps_old_values_readable_and_seals_new_ones_with_the_new_key() {
        let ring = Keyring::new(MasterKey::generate());
        ring.new_data_key("a");
        let old = ring.seal(&place("a", "P"), "x").unwrap();
        ring.new_data_key("a");
        let resealed = ring.reseal(&place("a", "P"), &old).unwrap();
        assert_eq!(resealed.key_id, 2);
        assert_eq!(
            ring.open(&place("a", "P"), &resealed).unwrap().as_str(),
            "x"
        );
    }
}
