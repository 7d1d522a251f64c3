//! XDG base directories for hoopx's config and data.

use std::path::{Path, PathBuf};

use crate::env_vars;

fn base(var: &str, fallback: &str) -> Option<PathBuf> {
    if let Some(v) = std::env::var_os(var).filter(|v| !v.is_empty()) {
        let p = PathBuf::from(v);
        if p.is_absolute() {
            return Some(p);
        }
    }
    std::env::var_os(env_vars::HOME)
        .filter(|h| !h.is_empty())
        .map(|h| PathBuf::from(h).join(fallback))
}

/// `$XDG_CONFIG_HOME/hoopx`, else `~/.config/hoopx`.
pub fn config_dir() -> Option<PathBuf> {
    base(env_vars::XDG_CONFIG_HOME, ".config").map(|p| p.join("hoopx"))
}

/// `$XDG_DATA_HOME/hoopx`, else `~/.local/share/hoopx`.
pub fn data_dir() -> Option<PathBuf> {
    base(env_vars::XDG_DATA_HOME, ".local/share").map(|p| p.join("hoopx"))
}

/// `$XDG_STATE_HOME/hoopx`, else `~/.local/state/hoopx`: the login token cache.
pub fn state_dir() -> Option<PathBuf> {
    base(env_vars::XDG_STATE_HOME, ".local/state").map(|p| p.join("hoopx"))
}

/// Creates `dir` (and parents) readable by the owner only.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}
