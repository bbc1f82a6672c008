//! Secrets typed into a form that is shown again (a preview, a refused save) go back sealed
//! for this session, never as text.

use super::super::layout::SignedIn;
use super::state::{pretty, FormState};
use crate::chain::spec::{self, HopValue};
use crate::crypto::{Keyring, Place};
use crate::domain::SealedValue;

/// Where a carried secret is sealed: bound to this environment and this session.
pub(super) fn carry_place<'a>(env: &'a str, me: &SignedIn) -> Place<'a> {
    let session = hex::encode(&crate::crypto::token_hash(&me.session_id)[..16]);
    Place {
        env,
        record: format!("form:{session}"),
        name: "carry",
    }
}

/// Opens the secrets a re-rendered form carried back (typed earlier, not saved yet).
pub(super) fn open_carries(f: &mut FormState, keyring: &Keyring, place: &Place<'_>) {
    let open = |carry: &str| -> Option<String> {
        let sealed: SealedValue = serde_json::from_str(carry).ok()?;
        keyring.open(place, &sealed).ok().map(|v| v.to_string())
    };
    for p in f
        .params
        .iter_mut()
        .filter(|p| !p.carry.is_empty() && p.value.is_empty())
    {
        p.value = open(&p.carry).unwrap_or_default();
    }
    for p in f
        .hops
        .iter_mut()
        .flat_map(|h| h.params.iter_mut())
        .filter(|p| !p.carry.is_empty() && p.value.is_empty())
    {
        p.value = open(&p.carry).unwrap_or_default();
    }
}

/// Before a re-render: typed secrets go back sealed, never as text.
pub(super) fn seal_carries(f: &mut FormState, keyring: &Keyring, place: &Place<'_>) {
    let seal = |value: &mut String, carry: &mut String| {
        if value.is_empty() {
            return;
        }
        *carry = keyring
            .seal(place, value)
            .ok()
            .and_then(|s| serde_json::to_string(&s).ok())
            .unwrap_or_default();
        value.clear();
    };
    for p in f.params.iter_mut().filter(|p| p.encrypt) {
        seal(&mut p.value, &mut p.carry);
    }
    for p in f
        .hops
        .iter_mut()
        .flat_map(|h| h.params.iter_mut())
        .filter(|p| p.encrypt)
    {
        seal(&mut p.value, &mut p.carry);
    }
}

/// The advanced JSON as a re-rendered form shows it: every value marked `encrypt` masked,
/// as a save seals every such value whole (`service::chaining`).
pub(super) fn masked_chain_text(text: &str) -> String {
    match spec::parse(text, spec::Origin::User) {
        Ok(mut parsed) => {
            for hp in parsed.hops.iter_mut().flat_map(|h| h.params.iter_mut()) {
                if hp.encrypt && matches!(hp.value, HopValue::Text(_)) {
                    hp.value = HopValue::Keep;
                }
            }
            pretty(&parsed.to_masked())
        }
        // Not valid JSON: nothing can be told apart, so nothing is echoed.
        Err(_) if text.contains("encrypt") => String::new(),
        Err(_) => text.to_string(),
    }
}
