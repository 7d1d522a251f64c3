//! The session's private directory: the credentials and generated tool configs the gateway
//! hands over for one session (a private key, a kubeconfig, a password file), written as
//! 0600 files in a 0700 directory and removed when the session ends, however it ends.
//!
//! Removal: dropping [`SessionDir`] removes the directory (normal exit, the tool killed, the
//! gateway lost, error paths, panics). Signals to hoopx are caught by the session loop before
//! the directory exists, so they end the session through the same drop. Only SIGKILL (or a
//! power cut) leaves a directory behind: the next `hoopx exec` removes directories of
//! processes that are gone.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::proto::{SessionOpened, ToolArg};

const PREFIX: &str = "hoopx-session-";

/// A private directory that is removed on drop.
#[derive(Debug)]
pub struct SessionDir {
    path: PathBuf,
}

impl SessionDir {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for SessionDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// What the tool is started with.
#[derive(Debug)]
pub struct Prepared {
    pub argv: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub env_remove: Vec<String>,
    /// The session's local endpoint (postgres targets), bound in `dir`.
    pub endpoint: Option<super::tunnel::Endpoint>,
    /// Held for the whole session; dropped, it removes the files (and the socket).
    pub dir: Option<SessionDir>,
}

/// Where session directories go: `$XDG_RUNTIME_DIR` (a per-user tmpfs) when there is one,
/// else the temp directory (`$TMPDIR`, `/tmp`).
fn base_dir() -> PathBuf {
    std::env::var_os(crate::env_vars::XDG_RUNTIME_DIR)
        .map(PathBuf::from)
        .filter(|p| p.is_absolute() && p.is_dir())
        .unwrap_or_else(std::env::temp_dir)
}

fn valid_file_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 64
        && !n.starts_with('.')
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Writes the session's files and builds the tool's command line and environment from what
/// the gateway answered. Errors name the directory, never a file's contents.
pub fn prepare(opened: &SessionOpened, argv: &[String]) -> Result<Prepared, String> {
    let mut env = opened.env.clone();
    let needs_dir = !opened.files.is_empty()
        || opened.tunnel.is_some()
        || opened
            .argv
            .iter()
            .flatten()
            .any(|a| matches!(a, ToolArg::File(_)));
    let dir = if needs_dir {
        for f in &opened.files {
            if !valid_file_name(&f.name) {
                return Err(format!("the gateway sent a bad file name {:?}", f.name));
            }
        }
        let base = base_dir();
        sweep_stale(&base);
        let dir = create_dir(&base).map_err(|e| {
            format!(
                "cannot create a private directory in {}: {e}",
                base.display()
            )
        })?;
        for f in &opened.files {
            let path = dir.path().join(&f.name);
            write_private(&path, f.contents.as_bytes())
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            if let Some(var) = &f.env {
                env.insert(var.clone(), path.display().to_string());
            }
        }
        env.insert(
            crate::policy::targets::SESSION_DIR_VAR.into(),
            dir.path().display().to_string(),
        );
        Some(dir)
    } else {
        None
    };
    let endpoint = match (&opened.tunnel, &dir) {
        (Some(t), Some(d)) if t.kind == "postgres" => {
            let e = super::tunnel::bind(d.path()).map_err(|e| {
                format!(
                    "cannot open the session's local endpoint in {}: {e}",
                    d.path().display()
                )
            })?;
            // libpq: a directory as PGHOST is where the socket is; PGPORT names it, and is
            // the loopback TCP port too. The password is the TCP side's, for this session.
            env.insert("PGHOST".into(), d.path().display().to_string());
            env.insert("PGPORT".into(), e.port.to_string());
            env.insert("PGPASSWORD".into(), t.local_password.clone());
            Some(e)
        }
        (Some(t), Some(d)) if t.kind == "kubernetes" => {
            let e = super::tunnel::bind_tcp()
                .map_err(|e| format!("cannot open the session's local endpoint: {e}"))?;
            // kubectl reaches the endpoint over loopback HTTPS (TLS to the gateway, with the
            // session's certificate) with the session's token.
            let path = d.path().join("kubeconfig");
            let config = crate::policy::kube::local_kubeconfig(
                &opened.target,
                t.namespace.as_deref(),
                e.port,
                &t.local_password,
                t.ca.as_deref().unwrap_or(""),
            );
            write_private(&path, config.as_bytes())
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            env.insert("KUBECONFIG".into(), path.display().to_string());
            Some(e)
        }
        (Some(t), Some(d)) if t.kind == "sftp" => {
            let e = super::tunnel::bind(d.path()).map_err(|e| {
                format!(
                    "cannot open the session's SFTP endpoint in {}: {e}",
                    d.path().display()
                )
            })?;
            env.insert(
                super::sftp_bridge::SOCKET_VAR.into(),
                e.socket.display().to_string(),
            );
            Some(e)
        }
        (Some(t), _) => {
            return Err(format!(
            "the gateway asked for a local endpoint of kind {:?}, which this hoopx does not know",
            t.kind
        ))
        }
        _ => None,
    };
    let argv = match &opened.argv {
        None => argv.to_vec(),
        Some(args) => args
            .iter()
            .map(|a| match a {
                ToolArg::Text(t) => Ok(t.clone()),
                ToolArg::File(name) => match (&dir, opened.files.iter().any(|f| &f.name == name)) {
                    (Some(d), true) => Ok(d.path().join(name).display().to_string()),
                    _ => Err(format!(
                        "the gateway's command line names a file it did not send: {name:?}"
                    )),
                },
            })
            .collect::<Result<_, _>>()?,
    };
    if argv.is_empty() {
        return Err("the gateway sent an empty command line".into());
    }
    // scp and sftp on an ssh target: their "SFTP server" is this hoopx, as a bridge to the
    // session's endpoint (the gateway speaks to the target's SFTP server).
    let argv = if opened.tunnel.as_ref().is_some_and(|t| t.kind == "sftp") {
        let exe = std::env::current_exe()
            .map_err(|e| format!("cannot find the hoopx executable for the SFTP bridge: {e}"))?
            .display()
            .to_string();
        let direct = match crate::policy::program_name(&argv[0]) {
            "sftp" => format!("{exe} sftp-bridge"),
            _ => exe,
        };
        let mut out = vec![argv[0].clone(), "-D".into(), direct];
        out.extend(argv[1..].iter().cloned());
        out
    } else {
        argv
    };
    Ok(Prepared {
        argv,
        env,
        env_remove: opened.env_remove.clone(),
        endpoint,
        dir,
    })
}

fn create_dir(base: &Path) -> std::io::Result<SessionDir> {
    use rand::RngCore;
    let mut last = None;
    for _ in 0..8 {
        let mut r = [0u8; 8];
        rand::rng().fill_bytes(&mut r);
        let path = base.join(format!("{PREFIX}{}-{}", std::process::id(), hex::encode(r)));
        // Created with its mode: never readable by others, not even for a moment. An
        // existing path (a name taken, a planted link) is an error, not reused.
        match std::fs::DirBuilder::new().mode(0o700).create(&path) {
            Ok(()) => return Ok(SessionDir { path }),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no free name")))
}

fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(contents)?;
    f.sync_all()
}

/// Removes session directories of ours whose hoopx is gone (it was SIGKILLed).
fn sweep_stale(base: &Path) {
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    let me = nix::unistd::geteuid().as_raw();
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(PREFIX))
            .and_then(|rest| rest.split('-').next())
            .and_then(|p| p.parse::<i32>().ok())
        else {
            continue;
        };
        let ours = e
            .path()
            .symlink_metadata()
            .map(|m| m.is_dir() && m.uid() == me)
            .unwrap_or(false);
        let gone = matches!(
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None),
            Err(nix::errno::Errno::ESRCH)
        );
        if ours && gone && pid > 0 {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::ToolFile;
    use std::os::unix::fs::PermissionsExt;

    fn opened(files: Vec<ToolFile>, argv: Option<Vec<ToolArg>>) -> SessionOpened {
        SessionOpened {
            session_id: "s".into(),
            target: "t".into(),
            stream: "/x".into(),
            env: BTreeMap::from([("A".into(), "1".into())]),
            env_remove: vec!["B".into()],
            files,
            argv,
            tunnel: None,
            remote: None,
        }
    }

    #[test]
    fn files_are_private_and_removed_on_drop() {
        let o = opened(
            vec![ToolFile {
                name: "kubeconfig".into(),
                contents: "secret".into(),
                env: Some("KUBECONFIG".into()),
            }],
            Some(vec![
                ToolArg::Text("kubectl".into()),
                ToolArg::File("kubeconfig".into()),
            ]),
        );
        let p = prepare(&o, &["ignored".into()]).unwrap();
        let dir = p.dir.as_ref().unwrap().path().to_path_buf();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        let file = dir.join("kubeconfig");
        assert_eq!(mode(&file), 0o600);
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "secret");
        assert_eq!(p.env["KUBECONFIG"], file.display().to_string());
        assert_eq!(p.env["HOOPX_SESSION_DIR"], dir.display().to_string());
        assert_eq!(p.argv, ["kubectl".to_string(), file.display().to_string()]);
        assert_eq!(p.env_remove, ["B"]);
        assert!(!format!("{p:?}").contains("secret\""));
        drop(p);
        assert!(!dir.exists());
    }

    #[test]
    fn no_files_no_directory_and_bad_answers_are_refused() {
        let p = prepare(&opened(vec![], None), &["true".into()]).unwrap();
        assert!(p.dir.is_none());
        assert_eq!(p.argv, ["true"]);
        let bad = |name: &str| ToolFile {
            name: name.into(),
            contents: String::new(),
            env: None,
        };
        assert!(prepare(&opened(vec![bad("../x")], None), &["t".into()]).is_err());
        assert!(prepare(&opened(vec![bad("..")], None), &["t".into()]).is_err());
        let missing = opened(vec![], Some(vec![ToolArg::File("nope".into())]));
        assert!(prepare(&missing, &["t".into()]).is_err());
    }
}
