//! `baton keys rotate`.

use std::path::Path;

use super::{Config, Service, ServiceError};
use crate::chain::spec::{self, HopValue};
use crate::crypto::{Keyring, MasterKey, Place};
use crate::store::Reseal;

/// Alone: a new data key for every environment and every sealed value re-sealed under it.
/// With `new_master`: the data keys re-wrapped under that key, which then becomes the key
/// file (written first, renamed into place only after the commit).
pub fn rotate_keys(
    service: &Service,
    cfg: &Config,
    new_master: Option<&Path>,
) -> Result<String, ServiceError> {
    let internal = |e: &dyn std::fmt::Display| ServiceError::Internal(e.to_string());
    match new_master {
        Some(path) => {
            if cfg.master_key_hex.is_some() {
                return Err(ServiceError::conflict(
                    "BATON_MASTER_KEY is set: change it instead of the key file",
                ));
            }
            let master = MasterKey::load_or_create(path).map_err(|e| internal(&e))?;
            let key_file = cfg.key_file();
            let tmp = key_file.with_extension("key.new");
            if path != key_file {
                // Written afresh with mode 0600 (a copy would keep the given file's mode,
                // often world-readable), before the commit as the doc above says.
                let _ = std::fs::remove_file(&tmp);
                master.write_to(&tmp).map_err(|e| internal(&e))?;
            }
            let wrapped = service.keyring.rewrap_all(&master);
            let check = Keyring::new(master).master_check();
            service.store.rotate_keys(&wrapped, Some(&check), None)?;
            if path != key_file {
                std::fs::rename(&tmp, &key_file).map_err(|e| internal(&e))?;
            }
            Ok(format!(
                "{} data keys re-wrapped under the new master key ({})",
                wrapped.len(),
                key_file.display()
            ))
        }
        None => {
            let envs = service.store.environments()?;
            let old = service.keyring.clone();
            let wrapped: Vec<_> = envs.iter().map(|e| old.new_data_key(&e.id)).collect();
            let reseal =
                |env: &str, record: &str, name: &str, sealed: &crate::domain::SealedValue| {
                    old.reseal(
                        &Place {
                            env,
                            record: record.to_string(),
                            name,
                        },
                        sealed,
                    )
                    .map_err(|e| e.to_string())
                };
            let chain_text =
                |env: &str, record: &str, text: &str| reseal_chain_text(&old, env, record, text);
            let both = Reseal {
                value: &reseal,
                chain_text: &chain_text,
            };
            let n = service.store.rotate_keys(&wrapped, None, Some(both))?;
            Ok(format!(
                "{} environments have new data keys; {n} sealed values re-sealed",
                wrapped.len()
            ))
        }
    }
}

/// Re-seals the sealed values inside a stored `async-TaskChain` text (of the schedule whose
/// place is `env`, `record`) under the keyring's newest data key of that environment; the
/// rest of the text is kept as stored.
fn reseal_chain_text(
    keyring: &Keyring,
    env: &str,
    record: &str,
    text: &str,
) -> Result<(String, usize), String> {
    let mut spec = spec::parse(text, spec::Origin::Stored).map_err(|p| {
        p.0.first()
            .map_or_else(|| "unreadable".to_string(), |x| x.message.clone())
    })?;
    let mut count = 0;
    for (i, hop) in spec.hops.iter_mut().enumerate() {
        for hp in &mut hop.params {
            if let HopValue::Sealed(sealed) = &hp.value {
                let place = Place {
                    env,
                    record: record.to_string(),
                    name: &spec::sealed_literal_name(i, &hp.name),
                };
                let again = keyring.reseal(&place, sealed).map_err(|e| e.to_string())?;
                hp.value = HopValue::Sealed(again);
                count += 1;
            }
        }
    }
    Ok((spec.to_stored(), count))
}
