//! The gateway's Ed25519 signing key: created at first start, kept as a PKCS#8 PEM file with
//! mode 0600 in the gateway's data directory, refused when others can read it (as ssh does).

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use ed25519_dalek::SigningKey;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read the signing key {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot create the signing key {path}: {source}")]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the signing key {path} is readable by others (mode {mode:o}); \
         run `chmod 600 {path}`, and replace the key if others may have read it"
    )]
    Unprotected { path: PathBuf, mode: u32 },
    #[error("the signing key {path} is not an Ed25519 private key in PKCS#8 PEM form")]
    Malformed { path: PathBuf },
}

/// Loads the key at `path`, or creates one there (and its directory, 0700) if there is none.
pub fn load_or_create(path: &Path) -> Result<SigningKey, KeyError> {
    match std::fs::metadata(path) {
        Ok(meta) => {
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(KeyError::Unprotected {
                    path: path.into(),
                    mode,
                });
            }
            let pem = std::fs::read_to_string(path).map_err(|source| KeyError::Read {
                path: path.into(),
                source,
            })?;
            SigningKey::from_pkcs8_pem(&pem).map_err(|_| KeyError::Malformed { path: path.into() })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => create(path),
        Err(source) => Err(KeyError::Read {
            path: path.into(),
            source,
        }),
    }
}

/// The public half of the key at `path`, if there is a readable key there (never creates).
pub fn public_key_of(path: &Path) -> Option<ed25519_dalek::VerifyingKey> {
    let pem = std::fs::read_to_string(path).ok()?;
    SigningKey::from_pkcs8_pem(&pem)
        .ok()
        .map(|k| k.verifying_key())
}

fn create(path: &Path) -> Result<SigningKey, KeyError> {
    let err = |source| KeyError::Create {
        path: path.into(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        crate::dirs::create_private_dir(dir).map_err(err)?;
    }
    let key = SigningKey::from_bytes(&rand::random::<[u8; 32]>());
    let pem = key
        .to_pkcs8_pem(Default::default())
        .map_err(|e| err(std::io::Error::other(e.to_string())))?;
    // Written whole to a private temporary file, then linked into place: the key file is
    // never seen half-written, and of two gateways starting at once the second finds the
    // first's key and uses it.
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| {
            f.write_all(pem.as_bytes())?;
            f.sync_all()
        });
    let linked = written.and_then(|()| std::fs::hard_link(&tmp, path));
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(key),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => load_or_create(path),
        Err(e) => Err(err(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_once_private_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/signing.pem");
        let a = load_or_create(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let b = load_or_create(&path).unwrap();
        assert_eq!(a.verifying_key(), b.verifying_key());

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = load_or_create(&path).unwrap_err().to_string();
        assert!(e.contains("chmod 600"), "{e}");

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::write(&path, "garbage").unwrap();
        let e = load_or_create(&path).unwrap_err().to_string();
        assert!(e.contains("not an Ed25519 private key"), "{e}");
        assert!(!e.contains("garbage"));
    }
}
