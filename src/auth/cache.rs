//! The login token cache: one file, `$XDG_STATE_HOME/hoopx/tokens.json`, mode 0600 in a
//! 0700 directory, one entry per gateway URL.
//!
//! A file, not the OS keyring: the keyring needs a desktop session (D-Bus Secret Service),
//! which headless machines, SSH sessions and CI have not, and device-flow logins are
//! meant for exactly those. Like ssh with its keys, hoopx refuses a cache others can read.
//! The file is replaced atomically (written aside, then renamed), so a crash never leaves
//! half a file.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::Secret;

/// One gateway's login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub issuer: String,
    pub client_id: String,
    pub audience: String,
    pub access_token: Secret,
    pub refresh_token: Option<Secret>,
    /// Unix seconds.
    pub expires_at: Option<i64>,
    /// How the login was made: `device`, `browser` or `client-credentials`.
    pub flow: String,
    pub subject: String,
    pub groups: Vec<String>,
}

/// On disk: the only place secrets are written in the clear.
#[derive(Serialize, Deserialize)]
struct RawEntry {
    issuer: String,
    client_id: String,
    audience: String,
    access_token: String,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    expires_at: Option<i64>,
    flow: String,
    #[serde(default)]
    subject: String,
    #[serde(default)]
    groups: Vec<String>,
}

#[derive(Serialize, Deserialize, Default)]
struct File {
    #[serde(default)]
    gateways: BTreeMap<String, RawEntry>,
}

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("no state directory for the token cache: set HOME or XDG_STATE_HOME")]
    NoDir,
    #[error(
        "the token cache {path} is readable by others (mode {mode:o}); run `chmod 600 {path}` \
         and `hoopx logout`, then log in again: others may have read your tokens"
    )]
    Unprotected { path: PathBuf, mode: u32 },
    #[error("cannot read the token cache {path}: {why}")]
    Read { path: PathBuf, why: String },
    #[error("cannot write the token cache {path}: {why}")]
    Write { path: PathBuf, why: String },
}

/// The cache file's path.
pub fn path() -> Result<PathBuf, CacheError> {
    Ok(crate::dirs::state_dir()
        .ok_or(CacheError::NoDir)?
        .join("tokens.json"))
}

fn load_file(path: &Path) -> Result<File, CacheError> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(File::default()),
        Err(e) => {
            return Err(CacheError::Read {
                path: path.into(),
                why: e.to_string(),
            })
        }
    };
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(CacheError::Unprotected {
            path: path.into(),
            mode,
        });
    }
    let text = std::fs::read(path).map_err(|e| CacheError::Read {
        path: path.into(),
        why: e.to_string(),
    })?;
    serde_json::from_slice(&text).map_err(|e| CacheError::Read {
        path: path.into(),
        why: format!("{e} (delete the file and log in again)"),
    })
}

fn save_file(path: &Path, file: &File) -> Result<(), CacheError> {
    let werr = |e: std::io::Error| CacheError::Write {
        path: path.into(),
        why: e.to_string(),
    };
    if let Some(dir) = path.parent() {
        crate::dirs::create_private_dir(dir).map_err(werr)?;
    }
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(werr)?;
    let bytes = serde_json::to_vec_pretty(file).unwrap_or_default();
    f.write_all(&bytes)
        .and_then(|()| f.sync_all())
        .map_err(werr)?;
    std::fs::rename(&tmp, path).map_err(werr)
}

/// The cache key of a gateway URL.
fn key(gateway: &str) -> String {
    gateway.trim_end_matches('/').to_string()
}

/// The login for `gateway`, if any.
pub fn get(gateway: &str) -> Result<Option<Entry>, CacheError> {
    let file = load_file(&path()?)?;
    Ok(file.gateways.get(&key(gateway)).map(|r| Entry {
        issuer: r.issuer.clone(),
        client_id: r.client_id.clone(),
        audience: r.audience.clone(),
        access_token: Secret::new(r.access_token.clone()),
        refresh_token: r.refresh_token.clone().map(Secret::new),
        expires_at: r.expires_at,
        flow: r.flow.clone(),
        subject: r.subject.clone(),
        groups: r.groups.clone(),
    }))
}

pub fn put(gateway: &str, e: &Entry) -> Result<(), CacheError> {
    let p = path()?;
    let mut file = load_file(&p)?;
    file.gateways.insert(
        key(gateway),
        RawEntry {
            issuer: e.issuer.clone(),
            client_id: e.client_id.clone(),
            audience: e.audience.clone(),
            access_token: e.access_token.expose().to_string(),
            refresh_token: e.refresh_token.as_ref().map(|s| s.expose().to_string()),
            expires_at: e.expires_at,
            flow: e.flow.clone(),
            subject: e.subject.clone(),
            groups: e.groups.clone(),
        },
    );
    save_file(&p, &file)
}

/// Forgets the login for `gateway`; returns it if there was one.
pub fn remove(gateway: &str) -> Result<Option<Entry>, CacheError> {
    let old = get(gateway)?;
    if old.is_some() {
        let p = path()?;
        let mut file = load_file(&p)?;
        file.gateways.remove(&key(gateway));
        save_file(&p, &file)?;
    }
    Ok(old)
}

/// An exclusive lock on the cache, held while a login is refreshed, so parallel commands
/// (an agent's several tool calls) do not each spend the same rotating refresh token: the
/// second one finds the first one's fresh token instead. Released when dropped.
pub struct Lock(#[allow(dead_code)] nix::fcntl::Flock<std::fs::File>);

/// Waits for the cache lock (a blocking call: run it off the async threads).
pub fn lock() -> Result<Lock, CacheError> {
    let p = path()?.with_extension("lock");
    let werr = |why: String| CacheError::Write {
        path: p.clone(),
        why,
    };
    if let Some(dir) = p.parent() {
        crate::dirs::create_private_dir(dir).map_err(|e| werr(e.to_string()))?;
    }
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&p)
        .map_err(|e| werr(e.to_string()))?;
    nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusive)
        .map(Lock)
        .map_err(|(_, e)| werr(e.to_string()))
}
