//! The gateway as the SSH client of an ssh target: it holds the key, checks the host key
//! against the target's known_hosts (`policy::ssh`), and runs the session's command or shell
//! on one channel. The session's relay (`stream.rs`) drives it where a local tool would have
//! been: released input is written to the channel, the channel's output is masked and
//! recorded like a tool's, and its exit status ends the session.
//!
//! Two tasks per session bridge the channel: a reader (output, exit status, close) into a
//! bounded queue the relay takes from only while its outbox has room, and a writer (input,
//! EOF, window changes, signals) that waits for the channel's window without holding up the
//! relay; `backlog` says how much input the remote has not taken yet.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use russh::client::{self, Handle};
use russh::keys::PrivateKeyWithHashAlg;
use russh::{ChannelMsg, Sig};
use tokio::sync::{mpsc, Notify};

use crate::policy::ssh::{self as rules, HostKey};
use crate::policy::Target;
use crate::proto::frame::Stream;

/// How long the TCP connection and the SSH handshake may take, unless the command line's
/// `-o ConnectTimeout` says otherwise.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Input the remote has not taken beyond which the gateway holds the client's
/// acknowledgements (so the client stops sending).
pub const BACKLOG_LIMIT: usize = 1024 * 1024;
/// Output chunks queued between the channel's reader and the relay.
const QUEUED: usize = 64;

/// What the session asks of the remote side.
#[derive(Debug, Clone)]
pub struct RemoteSpec {
    pub user: String,
    pub command: Option<String>,
    /// `(TERM, cols, rows)` when the remote side gets a terminal.
    pub pty: Option<(String, u16, u16)>,
    pub no_stdin: bool,
    pub connect_timeout: Option<u64>,
}

/// What the channel hands the relay.
pub enum FromRemote {
    Data(Stream, Bytes),
    /// The channel closed: the remote command's code (128 + n for a signal) and signal.
    Exit {
        code: i32,
        signal: Option<i32>,
    },
}

enum ToRemote {
    Data(Bytes),
    Eof,
    Resize(u16, u16),
    Signal(Sig),
}

/// One open remote channel.
pub struct Remote {
    pub events: mpsc::Receiver<FromRemote>,
    tx: mpsc::UnboundedSender<ToRemote>,
    backlog: Arc<AtomicUsize>,
    /// Told when the backlog falls to the limit or below.
    pub drained: Arc<Notify>,
    _handle: Handle<Checker>,
}

/// Why the remote side could not be opened: said to the caller as is (no secret in it).
#[derive(Debug, thiserror::Error)]
pub enum SshError {
    #[error("cannot reach {host}:{port} for target {target:?}: {why}")]
    Unreachable {
        target: String,
        host: String,
        port: u16,
        why: String,
    },
    #[error("host key mismatch for target {target:?} ({host}:{port}): the host presented {presented}, the target's known_hosts holds {known}; refused (a changed host key can mean the connection is intercepted)")]
    HostKey {
        target: String,
        host: String,
        port: u16,
        presented: String,
        known: String,
    },
    #[error("target {target:?}: the host refused the target's key for user {user:?}")]
    AuthRefused { target: String, user: String },
    #[error("target {target:?}: {why}")]
    Other { target: String, why: String },
}

impl SshError {
    /// The `Error.code` the session stream ends with.
    pub fn code(&self) -> &'static str {
        match self {
            SshError::HostKey { .. } => "host_key",
            _ => "unreachable",
        }
    }
}

pub(crate) struct Checker {
    known_hosts: String,
    host: String,
    port: u16,
    verdict: Arc<Mutex<Option<HostKey>>>,
}

impl client::Handler for Checker {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &russh::keys::PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        // Host certificates are not taken: known_hosts keys only.
        let russh::keys::PublicKeyOrCertificate::PublicKey { key, .. } = key else {
            return Ok(false);
        };
        let v = rules::check_host_key(&self.known_hosts, &self.host, self.port, key);
        let ok = v == HostKey::Known;
        *self.verdict.lock().unwrap_or_else(|e| e.into_inner()) = Some(v);
        Ok(ok)
    }
}

/// Connects to the target, checks its host key and logs in with its key as `user`.
pub(crate) async fn connect(
    target: &Target,
    user: &str,
    connect_timeout: Option<u64>,
) -> Result<Handle<Checker>, SshError> {
    let a = &target.access;
    let host = a.host.clone().unwrap_or_else(|| target.name.clone());
    let port = a.port.unwrap_or(22);
    let other = |why: String| SshError::Other {
        target: target.name.clone(),
        why,
    };
    let Some(key) = &a.private_key else {
        return Err(other("the target has no private_key".into()));
    };
    let key = russh::keys::decode_secret_key(key.expose(), None)
        .map_err(|e| other(format!("the target's private_key cannot be read: {e}")))?;
    let verdict = Arc::new(Mutex::new(None));
    let checker = Checker {
        known_hosts: a.known_hosts.clone().unwrap_or_default(),
        host: host.clone(),
        port,
        verdict: verdict.clone(),
    };
    let config = Arc::new(client::Config {
        inactivity_timeout: None,
        keepalive_interval: Some(Duration::from_secs(15)),
        keepalive_max: 3,
        ..Default::default()
    });
    let limit = connect_timeout.map_or(CONNECT_TIMEOUT, Duration::from_secs);
    let unreachable = |why: String| SshError::Unreachable {
        target: target.name.clone(),
        host: host.clone(),
        port,
        why,
    };
    let connected = tokio::time::timeout(
        limit,
        client::connect(config, (host.as_str(), port), checker),
    )
    .await;
    let mut handle = match connected {
        Err(_) => {
            return Err(unreachable(format!(
                "no answer within {} s",
                limit.as_secs()
            )))
        }
        Ok(Ok(h)) => h,
        Ok(Err(e)) => {
            let v = verdict.lock().unwrap_or_else(|e| e.into_inner()).take();
            return Err(match v {
                Some(HostKey::Mismatch { presented, known }) => SshError::HostKey {
                    target: target.name.clone(),
                    host,
                    port,
                    presented,
                    known: if known.is_empty() {
                        "no key for this host".into()
                    } else {
                        known.join(", ")
                    },
                },
                Some(HostKey::Revoked { presented }) => SshError::HostKey {
                    target: target.name.clone(),
                    host,
                    port,
                    presented: format!("{presented} (marked @revoked)"),
                    known: "it as revoked".into(),
                },
                _ => unreachable(e.to_string()),
            });
        }
    };
    let hash = handle
        .best_supported_rsa_hash()
        .await
        .ok()
        .flatten()
        .flatten();
    let auth = handle
        .authenticate_publickey(
            user.to_string(),
            PrivateKeyWithHashAlg::new(Arc::new(key), hash),
        )
        .await
        .map_err(|e| other(format!("login failed: {e}")))?;
    if !auth.success() {
        return Err(SshError::AuthRefused {
            target: target.name.clone(),
            user: user.to_string(),
        });
    }
    Ok(handle)
}

/// Connects to the target, logs in with its key and starts the command or shell.
pub async fn open(target: &Target, spec: &RemoteSpec) -> Result<Remote, SshError> {
    let other = |why: String| SshError::Other {
        target: target.name.clone(),
        why,
    };
    let handle = connect(target, &spec.user, spec.connect_timeout).await?;
    let channel = handle
        .channel_open_session()
        .await
        .map_err(|e| other(format!("the host opened no session channel: {e}")))?;
    let setup = async {
        if let Some((term, cols, rows)) = &spec.pty {
            channel
                .request_pty(false, term, (*cols).into(), (*rows).into(), 0, 0, &[])
                .await?;
        }
        match &spec.command {
            Some(c) => channel.exec(false, c.as_bytes()).await?,
            None => channel.request_shell(false).await?,
        }
        if spec.no_stdin {
            channel.eof().await?;
        }
        Ok::<(), russh::Error>(())
    };
    setup
        .await
        .map_err(|e| other(format!("the host did not start the command: {e}")))?;
    let (mut read, write) = channel.split();
    let (events_tx, events) = mpsc::channel(QUEUED);
    tokio::spawn(async move {
        let mut code = None;
        let mut signal = None;
        while let Some(msg) = read.wait().await {
            let ev = match msg {
                ChannelMsg::Data { data } => FromRemote::Data(Stream::Stdout, data),
                ChannelMsg::ExtendedData { data, ext: 1 } => FromRemote::Data(Stream::Stderr, data),
                ChannelMsg::ExitStatus { exit_status } => {
                    code = Some(i32::try_from(exit_status).unwrap_or(255));
                    continue;
                }
                ChannelMsg::ExitSignal { signal_name, .. } => {
                    signal = Some(rules::signal_number(&format!("{signal_name:?}")));
                    continue;
                }
                ChannelMsg::Close => break,
                _ => continue,
            };
            if events_tx.send(ev).await.is_err() {
                return;
            }
        }
        // As OpenSSH: the command's status, 128 + n for a signal, 255 when none came.
        let (code, signal) = match (code, signal) {
            (Some(c), _) => (c, None),
            (None, Some(n)) if n > 0 => (128 + n, Some(n)),
            _ => (255, None),
        };
        let _ = events_tx.send(FromRemote::Exit { code, signal }).await;
    });
    let (tx, mut rx) = mpsc::unbounded_channel::<ToRemote>();
    let backlog = Arc::new(AtomicUsize::new(0));
    let drained = Arc::new(Notify::new());
    {
        let backlog = backlog.clone();
        let drained = drained.clone();
        tokio::spawn(async move {
            let mut broken = false;
            while let Some(m) = rx.recv().await {
                match m {
                    ToRemote::Data(d) => {
                        let n = d.len();
                        if !broken {
                            // The remote may have closed its input: then it has nowhere to go.
                            broken = write.data_bytes(d).await.is_err();
                        }
                        let left = backlog.fetch_sub(n, Ordering::AcqRel) - n;
                        if left <= BACKLOG_LIMIT {
                            drained.notify_one();
                        }
                    }
                    ToRemote::Eof => {
                        let _ = write.eof().await;
                    }
                    ToRemote::Resize(cols, rows) => {
                        let _ = write.window_change(cols.into(), rows.into(), 0, 0).await;
                    }
                    ToRemote::Signal(s) => {
                        let _ = write.signal(s).await;
                    }
                }
            }
        });
    }
    Ok(Remote {
        events,
        tx,
        backlog,
        drained,
        _handle: handle,
    })
}

impl Remote {
    /// Released input for the remote command.
    pub fn write(&self, d: Bytes) {
        self.backlog.fetch_add(d.len(), Ordering::AcqRel);
        let _ = self.tx.send(ToRemote::Data(d));
    }

    pub fn eof(&self) {
        let _ = self.tx.send(ToRemote::Eof);
    }

    pub fn resize(&self, cols: u16, rows: u16) {
        let _ = self.tx.send(ToRemote::Resize(cols, rows));
    }

    /// A signal the caller got (by number); unknown numbers are dropped.
    pub fn signal(&self, n: u8) -> Option<&'static str> {
        let (sig, name) = match n {
            1 => (Sig::HUP, "HUP"),
            2 => (Sig::INT, "INT"),
            3 => (Sig::QUIT, "QUIT"),
            15 => (Sig::TERM, "TERM"),
            _ => return None,
        };
        let _ = self.tx.send(ToRemote::Signal(sig));
        Some(name)
    }

    /// The remote has not taken this much input yet: hold the caller's acknowledgements.
    pub fn backlogged(&self) -> bool {
        self.backlog.load(Ordering::Acquire) > BACKLOG_LIMIT
    }
}
