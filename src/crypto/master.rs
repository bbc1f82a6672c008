use std::io::Write;
use std::path::Path;

use zeroize::Zeroizing;

use super::CryptoError;

/// The key that wraps every environment's data key. It lives in a file (mode 0600) or in
/// `BATON_MASTER_KEY`, never in the database.
pub struct MasterKey(pub(crate) Zeroizing<[u8; 32]>);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

impl MasterKey {
    /// 64 hex characters.
    pub fn from_hex(text: &str) -> Result<Self, CryptoError> {
        let bytes = Zeroizing::new(hex::decode(text.trim()).map_err(|_| {
            CryptoError::BadMasterKey("BATON_MASTER_KEY must be 64 hex characters".into())
        })?);
        let arr: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
            CryptoError::BadMasterKey("BATON_MASTER_KEY must be 64 hex characters".into())
        })?;
        Ok(Self(Zeroizing::new(arr)))
    }

    /// Reads the key file, creating it with 32 random bytes (mode 0600) when it is missing.
    pub fn load_or_create(path: &Path) -> Result<Self, CryptoError> {
        let io_err = |source| CryptoError::KeyFile {
            path: path.display().to_string(),
            source,
        };
        match std::fs::read(path) {
            Ok(bytes) => {
                let bytes = Zeroizing::new(bytes);
                let arr: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
                    CryptoError::BadMasterKey(format!(
                        "{} must hold exactly 32 bytes",
                        path.display()
                    ))
                })?;
                Ok(Self(Zeroizing::new(arr)))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = super::random_key();
                write_private(path, key.as_ref()).map_err(io_err)?;
                Ok(Self(key))
            }
            Err(e) => Err(io_err(e)),
        }
    }

    pub fn generate() -> Self {
        Self(super::random_key())
    }

    pub fn write_to(&self, path: &Path) -> Result<(), CryptoError> {
        write_private(path, self.0.as_ref()).map_err(|source| CryptoError::KeyFile {
            path: path.display().to_string(),
            source,
        })
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}
