//! The session's local endpoint (postgres targets): a Unix socket in the session's private
//! directory and a loopback TCP port, whose connections travel over the session stream to
//! the gateway, one channel each. The tool gets the endpoint instead of credentials.
//!
//! Flow control per channel, both ways: a sender has [`WINDOW`] bytes in flight; the other
//! side acknowledges what it took. A reader of a local connection waits for acknowledgements
//! before it reads more, and the gateway stops reading the server while the client has not
//! acknowledged what it was sent, so a slow tool slows the server instead of filling memory.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, Semaphore};

use crate::proto::frame::{ClientFrame, Via};

/// Bytes one local connection may have sent to the gateway unacknowledged (as the
/// gateway's own window for its answers).
pub const WINDOW: usize = 1024 * 1024;
const READ: usize = 64 * 1024;
/// The gateway's data is acknowledged once this much was written (well inside its window).
const ACK_EVERY: u32 = 32 * 1024;

/// The listeners of one session's endpoint, bound before the tool starts.
#[derive(Debug)]
pub struct Endpoint {
    /// `None`: loopback TCP only (kubernetes: kubectl speaks HTTPS to a TCP address).
    unix: Option<std::os::unix::net::UnixListener>,
    tcp: std::net::TcpListener,
    /// The TCP port, and the number in the socket's name (`.s.PGSQL.<port>`), so `PGPORT`
    /// serves both.
    pub port: u16,
    pub socket: PathBuf,
}

/// Binds the endpoint in the session's private directory `dir` (0700: only the caller's
/// user reaches the socket) and on a free loopback port.
pub fn bind(dir: &Path) -> std::io::Result<Endpoint> {
    let tcp = std::net::TcpListener::bind(("127.0.0.1", 0))?;
    let port = tcp.local_addr()?.port();
    let socket = dir.join(format!(".s.PGSQL.{port}"));
    let unix = std::os::unix::net::UnixListener::bind(&socket)?;
    unix.set_nonblocking(true)?;
    tcp.set_nonblocking(true)?;
    Ok(Endpoint {
        unix: Some(unix),
        tcp,
        port,
        socket,
    })
}

/// Binds a loopback TCP endpoint only, on a free port.
pub fn bind_tcp() -> std::io::Result<Endpoint> {
    let tcp = std::net::TcpListener::bind(("127.0.0.1", 0))?;
    let port = tcp.local_addr()?.port();
    tcp.set_nonblocking(true)?;
    Ok(Endpoint {
        unix: None,
        tcp,
        port,
        socket: PathBuf::new(),
    })
}

/// What the tunnel tasks hand the session loop.
pub enum Event {
    /// A connection was accepted: frames for it go to `conn`.
    Opened(u32, Via, Conn),
    /// Bytes the local connection sent.
    Data(u32, Bytes),
    /// Bytes the gateway sent were written to the local connection.
    Written(u32, u32),
    /// The local connection ended (or broke).
    Closed(u32),
}

/// One local connection, as the session loop holds it.
pub struct Conn {
    to_local: mpsc::UnboundedSender<Option<Bytes>>,
    /// Bytes written to the local connection and not acknowledged yet.
    written: u32,
    window: Arc<Semaphore>,
    reader: tokio::task::JoinHandle<()>,
}

/// The live tunnels of one session.
pub struct Tunnels {
    conns: HashMap<u32, Conn>,
    accept: Vec<tokio::task::JoinHandle<()>>,
    pub events: mpsc::UnboundedReceiver<Event>,
}

impl Tunnels {
    /// Starts accepting on `endpoint` (`None`: no endpoint, no events ever).
    pub fn start(endpoint: Option<Endpoint>) -> std::io::Result<Tunnels> {
        let (tx, events) = mpsc::unbounded_channel();
        let mut accept = Vec::new();
        if let Some(e) = endpoint {
            let next = Arc::new(AtomicU32::new(1));
            let tcp = tokio::net::TcpListener::from_std(e.tcp)?;
            if let Some(unix) = e.unix {
                let unix = tokio::net::UnixListener::from_std(unix)?;
                let (tx2, next2) = (tx.clone(), next.clone());
                accept.push(tokio::spawn(async move {
                    while let Ok((s, _)) = unix.accept().await {
                        open(s, Via::Unix, &next2, &tx2);
                    }
                }));
            }
            accept.push(tokio::spawn(async move {
                while let Ok((s, _)) = tcp.accept().await {
                    let _ = s.set_nodelay(true);
                    open(s, Via::Tcp, &next, &tx);
                }
            }));
        } else {
            // Keeps the channel open: the loop's branch then simply never fires.
            accept.push(tokio::spawn(async move {
                let _keep = tx;
                std::future::pending::<()>().await;
            }));
        }
        Ok(Tunnels {
            conns: HashMap::new(),
            accept,
            events,
        })
    }

    /// A tunnel event: the frame to send the gateway for it, if any.
    pub fn event(&mut self, e: Event) -> Option<ClientFrame> {
        match e {
            Event::Opened(ch, via, conn) => {
                self.conns.insert(ch, conn);
                Some(ClientFrame::TunnelOpen { ch, via })
            }
            Event::Data(ch, data) => Some(ClientFrame::TunnelData { ch, data }),
            Event::Written(ch, n) => {
                let c = self.conns.get_mut(&ch)?;
                c.written += n;
                if c.written < ACK_EVERY {
                    return None;
                }
                let n = std::mem::take(&mut c.written);
                Some(ClientFrame::TunnelAck { ch, n })
            }
            Event::Closed(ch) => self
                .conns
                .contains_key(&ch)
                .then_some(ClientFrame::TunnelClose { ch }),
        }
    }

    /// Bytes from the gateway for a local connection.
    pub fn data(&mut self, ch: u32, data: Bytes) {
        if let Some(c) = self.conns.get(&ch) {
            let _ = c.to_local.send(Some(data));
        }
    }

    /// The gateway took `n` bytes of a connection's data.
    pub fn acked(&mut self, ch: u32, n: u32) {
        if let Some(c) = self.conns.get(&ch) {
            let room = WINDOW.saturating_sub(c.window.available_permits());
            c.window.add_permits((n as usize).min(room));
        }
    }

    /// The gateway closed a channel: what it sent is written, then the connection closes.
    pub fn close(&mut self, ch: u32) {
        if let Some(c) = self.conns.remove(&ch) {
            c.reader.abort();
            let _ = c.to_local.send(None);
        }
    }
}

impl Drop for Tunnels {
    fn drop(&mut self) {
        for a in &self.accept {
            a.abort();
        }
        for c in self.conns.values() {
            c.reader.abort();
            let _ = c.to_local.send(None);
        }
    }
}

/// Starts the reader and writer of one accepted connection.
fn open<S>(s: S, via: Via, next: &AtomicU32, tx: &mpsc::UnboundedSender<Event>)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let ch = next.fetch_add(1, Ordering::Relaxed);
    let (mut rd, mut wr) = tokio::io::split(s);
    let window = Arc::new(Semaphore::new(WINDOW));
    let (to_local, mut from_gateway) = mpsc::unbounded_channel::<Option<Bytes>>();
    let (rtx, wtx) = (tx.clone(), tx.clone());
    let rwindow = window.clone();
    // Opened goes first: the loop knows the channel before any of its data.
    let (go, started) = tokio::sync::oneshot::channel::<()>();
    let reader = tokio::spawn(async move {
        if started.await.is_err() {
            return;
        }
        let mut buf = vec![0u8; READ];
        loop {
            let Ok(permits) = rwindow.acquire_many(READ as u32).await else {
                break;
            };
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    permits.forget();
                    rwindow.add_permits(READ - n);
                    if rtx
                        .send(Event::Data(ch, Bytes::copy_from_slice(&buf[..n])))
                        .is_err()
                    {
                        return;
                    }
                }
            }
        }
        let _ = rtx.send(Event::Closed(ch));
    });
    let _ = tx.send(Event::Opened(
        ch,
        via,
        Conn {
            to_local,
            written: 0,
            window,
            reader,
        },
    ));
    let _ = go.send(());
    tokio::spawn(async move {
        while let Some(Some(d)) = from_gateway.recv().await {
            if wr.write_all(&d).await.is_err() {
                // The tool went away: the reader sees it too and closes the channel.
                break;
            }
            let _ = wtx.send(Event::Written(ch, d.len() as u32));
        }
        let _ = wr.shutdown().await;
    });
}
