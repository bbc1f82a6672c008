//! Secrets at rest (design §4): a master key that never enters the database, one data key
//! per environment stored wrapped by it, and AES-256-GCM seals whose associated data binds
//! each value to its place, so a sealed value copied elsewhere fails to open.

mod keyring;
mod master;

pub use keyring::{run_record, schedule_record, Keyring, Place, WrappedKey};
pub use master::MasterKey;

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit};
use rand::RngCore;
use zeroize::Zeroizing;

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// Never carries the value or the key: only that it did not open.
    #[error("a sealed value could not be opened (wrong key, or it was altered or moved)")]
    OpenFailed,
    #[error("no data key {key_id} for environment {env}")]
    UnknownKey { env: String, key_id: u32 },
    #[error("the master key is invalid: {0}")]
    BadMasterKey(String),
    #[error("wrong master key: it cannot open the stored data keys")]
    WrongMasterKey,
    #[error("cannot read or create the master key file {path}: {source}")]
    KeyFile {
        path: String,
        source: std::io::Error,
    },
}

pub(crate) const NONCE_LEN: usize = 12;

/// Encrypts `msg` under `key` with `aad`; returns `nonce || ciphertext || tag`.
pub(crate) fn seal_bytes(key: &[u8; 32], aad: &[u8], msg: &[u8]) -> Vec<u8> {
    let cipher = Aes256Gcm::new(key.into());
    let mut nonce = [0u8; NONCE_LEN];
    rand::rng().fill_bytes(&mut nonce);
    // Encryption with a valid key and a 96-bit nonce cannot fail for messages below the
    // GCM limit (64 GiB); parameter values are far smaller.
    let ct = cipher
        .encrypt(&nonce.into(), Payload { msg, aad })
        .unwrap_or_default();
    let mut out = Vec::with_capacity(NONCE_LEN + ct.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    out
}

/// Opens what [`seal_bytes`] made; any change to the bytes, the key or `aad` fails.
pub(crate) fn open_bytes(
    key: &[u8; 32],
    aad: &[u8],
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    if sealed.len() < NONCE_LEN + 16 {
        return Err(CryptoError::OpenFailed);
    }
    let (nonce, ct) = sealed.split_at(NONCE_LEN);
    let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| CryptoError::OpenFailed)?;
    let cipher = Aes256Gcm::new(key.into());
    cipher
        .decrypt(&nonce.into(), Payload { msg: ct, aad })
        .map(Zeroizing::new)
        .map_err(|_| CryptoError::OpenFailed)
}

/// 32 bytes from the OS-seeded CSPRNG.
pub fn random_key() -> Zeroizing<[u8; 32]> {
    let mut k = Zeroizing::new([0u8; 32]);
    rand::rng().fill_bytes(k.as_mut());
    k
}

/// URL-safe random text for passwords and tokens.
pub fn random_token(bytes: usize) -> String {
    use base64::Engine;
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}

/// SHA-256, for API tokens and file tokens: the store keeps only this.
pub fn token_hash(token: &str) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(token.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_bytes_open_only_with_the_same_key_and_place() {
        let key = random_key();
        let sealed = seal_bytes(&key, b"place-a", b"s3cret");
        assert_eq!(
            open_bytes(&key, b"place-a", &sealed).unwrap().as_slice(),
            b"s3cret"
        );
        assert!(open_bytes(&key, b"place-b", &sealed).is_err());
        let other = random_key();
        assert!(open_bytes(&other, b"place-a", &sealed).is_err());
        for i in 0..sealed.len() {
            let mut flipped = sealed.clone();
            flipped[i] ^= 0x01;
            assert!(
                open_bytes(&key, b"place-a", &flipped).is_err(),
                "flip at {i} opened"
            );
        }
    }
}
