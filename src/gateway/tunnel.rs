//! The tunnel channels of one session: connections to the session's local endpoint,
//! carried over the session stream and served by a protocol relay each ([`super::pg`]).
//! The session task routes frames here; channels answer through one queue the session
//! task reads, so recording and the outbox stay in one place.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::{mpsc, Semaphore};

use super::kube::KubeCtx;
use super::pg::{self, FromChannel, SessionCtx, ToChannel};
use crate::proto::frame::{ClientFrame, Via};

/// Bytes a client may send on one channel before the gateway acknowledges them.
pub const CLIENT_WINDOW: usize = 1024 * 1024;

struct Channel {
    tx: mpsc::UnboundedSender<ToChannel>,
    /// What the client may still send before our acknowledgements.
    unacked: usize,
    /// The relay's allowance towards the client.
    window: Arc<Semaphore>,
    task: tokio::task::JoinHandle<()>,
}

/// What a session's tunnel channels speak.
pub(crate) enum Relay {
    Postgres(Arc<SessionCtx>),
    Kubernetes(Arc<KubeCtx>),
    /// ssh targets running `scp`/`sftp`: channels go to the target's SFTP server.
    Sftp(Arc<super::sftp::SftpCtx>),
}

pub(crate) struct Tunnels {
    ctx: Option<Relay>,
    channels: HashMap<u32, Channel>,
    pub events: mpsc::UnboundedReceiver<FromChannel>,
    events_tx: mpsc::UnboundedSender<FromChannel>,
}

impl Tunnels {
    /// `ctx`: the session's relay context, `None` when its target has no local endpoint.
    pub fn new(ctx: Option<Relay>) -> Tunnels {
        let (events_tx, events) = mpsc::unbounded_channel();
        Tunnels {
            ctx,
            channels: HashMap::new(),
            events,
            events_tx,
        }
    }

    /// A tunnel frame from the client; `Err` is a protocol error that ends the session.
    pub fn frame(&mut self, f: ClientFrame) -> Result<(), String> {
        match f {
            ClientFrame::TunnelOpen { ch, via } => self.open(ch, via),
            ClientFrame::TunnelData { ch, data } => self.data(ch, data),
            ClientFrame::TunnelAck { ch, n } => {
                if let Some(c) = self.channels.get(&ch) {
                    let room = pg::WINDOW.saturating_sub(c.window.available_permits());
                    if n as usize > room {
                        return Err(format!(
                            "channel {ch}: {n} bytes acknowledged, only {room} were sent"
                        ));
                    }
                    c.window.add_permits(n as usize);
                }
                Ok(())
            }
            ClientFrame::TunnelClose { ch } => {
                if let Some(c) = self.channels.get(&ch) {
                    let _ = c.tx.send(ToChannel::Close);
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn open(&mut self, ch: u32, via: Via) -> Result<(), String> {
        let Some(ctx) = self.ctx.as_ref() else {
            return Err("this session's target has no local endpoint to tunnel".into());
        };
        if self.channels.contains_key(&ch) {
            return Err(format!("channel {ch} is already open"));
        }
        if self.channels.len() >= pg::MAX_CHANNELS {
            // Refused like a full server: the connection closes at once.
            let _ = self.events_tx.send(FromChannel::Closed(ch));
            return Ok(());
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let window = Arc::new(Semaphore::new(pg::WINDOW));
        let task = match ctx {
            Relay::Postgres(ctx) => tokio::spawn(pg::serve(
                ctx.clone(),
                ch,
                via,
                rx,
                self.events_tx.clone(),
                window.clone(),
            )),
            Relay::Kubernetes(ctx) => tokio::spawn(super::kube::serve(
                ctx.clone(),
                ch,
                rx,
                self.events_tx.clone(),
                window.clone(),
            )),
            Relay::Sftp(sftp) => tokio::spawn(super::sftp::serve(
                sftp.clone(),
                ch,
                via,
                rx,
                self.events_tx.clone(),
                window.clone(),
            )),
        };
        self.channels.insert(
            ch,
            Channel {
                tx,
                unacked: 0,
                window,
                task,
            },
        );
        Ok(())
    }

    fn data(&mut self, ch: u32, data: Bytes) -> Result<(), String> {
        let Some(c) = self.channels.get_mut(&ch) else {
            // Closed by the gateway while the client was still sending: dropped.
            return Ok(());
        };
        c.unacked += data.len();
        if c.unacked > CLIENT_WINDOW {
            return Err(format!(
                "channel {ch}: more than {CLIENT_WINDOW} bytes sent past the acknowledgement window"
            ));
        }
        let _ = c.tx.send(ToChannel::Data(data));
        Ok(())
    }

    /// The channel took `n` bytes: they no longer count against the client's window.
    pub fn taken(&mut self, ch: u32, n: u32) {
        if let Some(c) = self.channels.get_mut(&ch) {
            c.unacked = c.unacked.saturating_sub(n as usize);
        }
    }

    /// The channel's relay ended.
    pub fn closed(&mut self, ch: u32) {
        self.channels.remove(&ch);
    }
}

impl Drop for Tunnels {
    fn drop(&mut self) {
        // The session is over: its connections end with it. A statement waiting for a
        // review is not withdrawn: the review stays open for a later `--review`.
        for c in self.channels.values() {
            c.task.abort();
        }
    }
}
