//! One `hoopx exec` session on the client side: one `select!` loop owns the session state;
//! readers of the tool's output and of our stdin, and writers to our stdout and to the
//! tool's stdin, run as separate tasks bridged by channels.
//!
//! Back-pressure: a reader takes a permit before each read and the permit travels with the
//! chunk through the gateway and back, to be released only once the masked chunk was
//! written. At most [`OUTPUT_WINDOW`] output chunks are in flight, and the gateway answers
//! them in order, so a slow consumer slows the tool instead of filling memory. Input works
//! the same way with [`INPUT_WINDOW`], released when the tool has been handed the input.

use std::collections::VecDeque;
use std::io::Write as _;
use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use futures_util::{SinkExt, StreamExt};
use nix::sys::signal::Signal;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::{ClientError, GatewayClient};
use crate::proto::frame::{ClientFrame, ServerFrame, Stream, MAX_DATA, MAX_FRAME};
use crate::proto::{PROTOCOL_HEADER, PROTOCOL_VERSION};
use crate::pty::{self, Tool, ToolIo};

pub const OUTPUT_WINDOW: usize = 128;
pub const INPUT_WINDOW: usize = 16;
const READ_CHUNK: usize = 256 * 1024;
pub(crate) const KEEPALIVE: Duration = Duration::from_secs(15);
/// A gateway silent for this long (no frame, no pong) is gone.
pub(crate) const GATEWAY_SILENCE: Duration = Duration::from_secs(45);
/// After the tool exits, output still arriving is drained until it pauses this long.
const DRAIN_PAUSE: Duration = Duration::from_secs(2);
const READY_TIMEOUT: Duration = Duration::from_secs(30);

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How a session ended, from the client's point of view.
#[derive(Debug)]
pub enum SessionError {
    /// The gateway could not be reached, or went away mid-session.
    GatewayLost(String),
    /// The gateway broke the protocol, or we could not understand it.
    Protocol(String),
    /// The gateway ended the session on policy grounds.
    Policy(String),
    /// The gateway ended the session because of its own failure.
    GatewayFailed(String),
    /// The tool could not be started.
    Spawn(String),
    /// The gateway ended the session because the caller's identity lapsed (token expired
    /// and not renewed, or revoked).
    Identity(String),
    /// An input line waited for its review longer than `--approval-timeout` (review id).
    ApprovalTimeout(String),
}

/// How `hoopx exec` shows the session.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// NDJSON events on stdout instead of the tool's raw output.
    pub json: bool,
    /// How long an input line may wait for its review before the session is given up.
    pub approval_timeout: Option<Duration>,
    /// Keep the output (up to this many bytes per stream) instead of writing it.
    pub capture: Option<usize>,
}

/// Output kept by `--capture`: masked, as the gateway returned it.
#[derive(Debug, Default)]
pub struct Captured {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// The stream had more than the limit; what is kept is its start.
    pub stdout_truncated: bool,
    pub stderr_truncated: bool,
    /// The gateway's notices (denied lines, reviews) as JSON events.
    pub notices: Vec<serde_json::Value>,
}

/// What the output writer writes.
pub(crate) enum Out {
    Data(Stream, Bytes, Vec<OwnedSemaphorePermit>),
    /// One NDJSON event (JSON mode).
    Event(serde_json::Value),
    /// A notice for the person at the terminal, after the output before it, on a line of
    /// its own.
    Say(String),
}

#[derive(Debug)]
pub struct Outcome {
    /// Exit code of the tool (128 + n for a signal).
    pub code: i32,
    /// Input lines the gateway withheld.
    pub denied: usize,
    /// With [`RunOptions::capture`].
    pub captured: Option<Captured>,
}

/// Connects the session's stream.
pub async fn connect(client: &GatewayClient, path: &str) -> Result<Ws, ClientError> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let url = client.ws_url(path);
    let mut req = url
        .as_str()
        .into_client_request()
        .map_err(|e| ClientError::BadUrl(format!("bad stream URL {url}: {e}")))?;
    let h = req.headers_mut();
    h.insert(PROTOCOL_HEADER, PROTOCOL_VERSION.into());
    if let Some(t) = client.token() {
        let v = format!("Bearer {}", t.expose()).parse().map_err(|_| {
            ClientError::BadUrl("the token has characters a header cannot carry".into())
        })?;
        h.insert("authorization", v);
    }
    let config = WebSocketConfig::default()
        .max_message_size(Some(MAX_FRAME * 2))
        .max_frame_size(Some(MAX_FRAME * 2));
    let connector = if url.starts_with("wss:") {
        Some(tokio_tungstenite::Connector::Rustls(
            super::tls::client_config()?,
        ))
    } else {
        None
    };
    let (ws, _) =
        tokio_tungstenite::connect_async_tls_with_config(req, Some(config), true, connector)
            .await
            .map_err(|e| stream_refused(client, e))?;
    Ok(ws)
}

/// Maps a refused stream upgrade to the same errors as the HTTP API.
fn stream_refused(client: &GatewayClient, e: tokio_tungstenite::tungstenite::Error) -> ClientError {
    use tokio_tungstenite::tungstenite::Error as WsError;
    let WsError::Http(resp) = &e else {
        return ClientError::Unreachable {
            url: crate::gateway::store::redact_url(client.base()),
            why: format!("session stream: {e}"),
        };
    };
    let status = resp.status().as_u16();
    let body = resp
        .body()
        .as_deref()
        .and_then(|b| serde_json::from_slice::<crate::proto::ErrorBody>(b).ok())
        .map(|b| b.error);
    let message = body
        .as_ref()
        .map(|b| b.message.clone())
        .unwrap_or_else(|| format!("the session stream was refused with HTTP {status}"));
    let code = body.as_ref().map(|b| b.code.as_str()).unwrap_or("");
    match (status, code) {
        (401, _) => ClientError::Unauthorized {
            message,
            hint: None,
        },
        (_, crate::proto::codes::DENIED) => ClientError::Denied {
            message,
            rule: None,
            hint: None,
        },
        (_, crate::proto::codes::PROTOCOL_MISMATCH) => ClientError::Protocol(message),
        _ => ClientError::Api {
            status,
            message,
            hint: None,
        },
    }
}

/// Waits for the gateway's go-ahead. Until it arrives, the tool must not start.
pub async fn wait_ready(ws: &mut Ws) -> Result<(), SessionError> {
    let first = tokio::time::timeout(READY_TIMEOUT, next_frame(ws))
        .await
        .map_err(|_| {
            SessionError::GatewayLost("the gateway did not start the session within 30 s".into())
        })??;
    match first {
        ServerFrame::Ready => Ok(()),
        ServerFrame::Error(e) => Err(stream_error(e)),
        other => Err(SessionError::Protocol(format!(
            "expected the ready frame first, got {other:?}"
        ))),
    }
}

pub(crate) fn stream_error(e: crate::proto::frame::StreamError) -> SessionError {
    match e.code.as_str() {
        "protocol" => SessionError::Protocol(format!("the gateway reports: {}", e.message)),
        "policy" => SessionError::Policy(e.message),
        "auth" => SessionError::Identity(e.message),
        _ => SessionError::GatewayFailed(e.message),
    }
}

/// What one message of the session stream (as its reader task forwards them) says: a
/// frame, nothing (pings and pongs), or why the stream is over.
pub(crate) fn stream_frame(
    msg: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>,
) -> Result<Option<ServerFrame>, SessionError> {
    match msg {
        None => Err(SessionError::GatewayLost(
            "the gateway closed the connection".into(),
        )),
        Some(Err(e)) => Err(SessionError::GatewayLost(e.to_string())),
        Some(Ok(Message::Binary(b))) => ServerFrame::decode(&b)
            .map(Some)
            .map_err(|e| SessionError::Protocol(e.to_string())),
        Some(Ok(Message::Close(_))) => Err(SessionError::GatewayLost(
            "the gateway closed the session stream".into(),
        )),
        Some(Ok(Message::Text(_))) => Err(SessionError::Protocol(
            "unexpected text message from the gateway".into(),
        )),
        Some(Ok(_)) => Ok(None),
    }
}

/// The next frame from the gateway, skipping pings and pongs.
async fn next_frame(ws: &mut Ws) -> Result<ServerFrame, SessionError> {
    loop {
        match ws.next().await {
            None => {
                return Err(SessionError::GatewayLost(
                    "the gateway closed the connection".into(),
                ))
            }
            Some(Err(e)) => return Err(SessionError::GatewayLost(e.to_string())),
            Some(Ok(Message::Binary(b))) => {
                return ServerFrame::decode(&b).map_err(|e| SessionError::Protocol(e.to_string()))
            }
            Some(Ok(Message::Close(_))) => {
                return Err(SessionError::GatewayLost(
                    "the gateway closed the session stream".into(),
                ))
            }
            Some(Ok(Message::Text(_))) => {
                return Err(SessionError::Protocol(
                    "unexpected text message from the gateway".into(),
                ))
            }
            Some(Ok(_)) => continue,
        }
    }
}

/// Tells the gateway the tool never started (it exited with `code` before running), and
/// waits briefly for the gateway to record it.
pub async fn report_not_started(mut ws: Ws, code: i32) {
    if send(&mut ws, ClientFrame::Exit { code, signal: None })
        .await
        .is_ok()
    {
        let _ = tokio::time::timeout(Duration::from_secs(5), next_frame(&mut ws)).await;
    }
    let _ = ws.close(None).await;
}

/// A gateway notice as an NDJSON event: `denied`, `approval_pending` or `approved`.
pub fn notice_event(n: &crate::proto::frame::Notice) -> serde_json::Value {
    let mut ev = serde_json::json!({"event": n.kind, "message": n.message});
    if let Some(r) = &n.rule {
        ev["rule"] = r.clone().into();
    }
    if let Some(id) = &n.review_id {
        ev["review_id"] = id.clone().into();
    }
    ev
}

/// Prints a line on stderr, right in raw mode too.
pub fn say(msg: &str) {
    let end = if pty::raw_mode_on() { "\r\n" } else { "\n" };
    let mut err = std::io::stderr().lock();
    let _ = write!(err, "hoopx: {msg}{end}");
    let _ = err.flush();
}

enum FromTool {
    Chunk(Stream, Bytes, OwnedSemaphorePermit),
    /// This stream's reader is done (readers are indexed by stream: stdout 0, stderr 1).
    Eof(Stream),
}

fn reader_index(s: Stream) -> usize {
    match s {
        Stream::Stdout => 0,
        Stream::Stderr => 1,
    }
}

pub(crate) enum FromCaller {
    Chunk(Bytes, OwnedSemaphorePermit),
    Eof,
}

enum ToTool {
    Data(Bytes),
    Release(OwnedSemaphorePermit),
    Close,
    /// The caller's terminal changed size (PTY mode).
    Resize(u16, u16),
}

fn spawn_reader<R: AsyncRead + Unpin + Send + 'static>(
    mut r: R,
    stream: Stream,
    window: Arc<Semaphore>,
    tx: mpsc::Sender<FromTool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let cap = READ_CHUNK.min(MAX_DATA);
        let mut buf = BytesMut::new();
        let mut open = true;
        while open {
            let Ok(permit) = window.clone().acquire_owned().await else {
                break;
            };
            // Read into fresh, uninitialised space: the chunk leaves without a copy.
            buf.reserve(cap);
            match r.read_buf(&mut (&mut buf).limit(cap)).await {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                // EIO: the PTY's slave side is closed, i.e. the tool is gone.
                Err(_) => break,
            }
            // Whatever else is ready goes in the same chunk: a PTY hands out at most 4 KiB
            // a read, and each chunk costs a frame and a recorded event.
            while buf.len() < cap {
                let room = cap - buf.len();
                match futures_util::FutureExt::now_or_never(r.read_buf(&mut (&mut buf).limit(room)))
                {
                    Some(Err(e)) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Some(Ok(0)) | Some(Err(_)) => {
                        open = false;
                        break;
                    }
                    Some(Ok(_)) => {}
                    None => break,
                }
            }
            let chunk = buf.split().freeze();
            if tx
                .send(FromTool::Chunk(stream, chunk, permit))
                .await
                .is_err()
            {
                return;
            }
        }
        let _ = tx.send(FromTool::Eof(stream)).await;
    })
}

/// Reads our stdin on a plain thread (a blocked read must not hold up the runtime at exit).
pub(crate) fn spawn_stdin_reader(window: Arc<Semaphore>, tx: mpsc::Sender<FromCaller>) {
    let rt = tokio::runtime::Handle::current();
    let _ = std::thread::Builder::new()
        .name("hoopx-stdin".into())
        .spawn(move || {
            use std::io::Read;
            let mut stdin = std::io::stdin().lock();
            let mut buf = vec![0u8; READ_CHUNK];
            loop {
                let Ok(permit) = rt.block_on(window.clone().acquire_owned()) else {
                    return;
                };
                match stdin.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        let chunk = Bytes::copy_from_slice(&buf[..n]);
                        if tx.blocking_send(FromCaller::Chunk(chunk, permit)).is_err() {
                            return;
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(_) => break,
                }
            }
            let _ = tx.blocking_send(FromCaller::Eof);
        });
}

/// Hands released input to the tool, in order with resizes. `close_on_eof` closes the tool's
/// stdin at [`ToTool::Close`] (pipes); `resize` applies a window size (PTYs).
fn spawn_tool_writer<W, F>(
    w: W,
    mut rx: mpsc::UnboundedReceiver<ToTool>,
    close_on_eof: bool,
    mut resize: F,
) -> tokio::task::JoinHandle<()>
where
    W: AsyncWrite + Unpin + Send + 'static,
    F: FnMut(&W, u16, u16) + Send + 'static,
{
    tokio::spawn(async move {
        let mut broken = false;
        let mut w = Some(w);
        while let Some(m) = rx.recv().await {
            match m {
                ToTool::Data(d) => {
                    if let (Some(w), false) = (w.as_mut(), broken) {
                        // The tool may have closed its stdin; input then has nowhere to go.
                        broken = w.write_all(&d).await.is_err() || w.flush().await.is_err();
                    }
                }
                ToTool::Release(p) => drop(p),
                ToTool::Resize(cols, rows) => {
                    if let Some(w) = &w {
                        resize(w, cols, rows);
                    }
                }
                ToTool::Close => {
                    if close_on_eof {
                        // Dropping the pipe is what closes it: the tool reads end of file.
                        if let Some(mut w) = w.take() {
                            let _ = w.shutdown().await;
                        }
                    }
                }
            }
        }
    })
}

/// Writes masked output to our stdout/stderr on a plain thread with blocking writes (tokio's
/// stdout would hop to the blocking pool on every chunk), releasing each chunk's permits once
/// written.
///
/// When our stdout's reader goes away (`hoopx exec -- cat big | head -1`), `closed` is told
/// once, so the tool can be stopped as it would be in a plain pipeline.
pub(crate) fn spawn_output_writer(
    mut rx: mpsc::UnboundedReceiver<Out>,
    closed: mpsc::UnboundedSender<()>,
    json: bool,
    capture: Option<usize>,
) -> std::thread::JoinHandle<Option<Captured>> {
    std::thread::spawn(move || {
        if let Some(limit) = capture {
            let mut c = Captured::default();
            while let Some(item) = rx.blocking_recv() {
                match item {
                    Out::Data(stream, data, permits) => {
                        let (buf, cut) = match stream {
                            Stream::Stdout => (&mut c.stdout, &mut c.stdout_truncated),
                            Stream::Stderr => (&mut c.stderr, &mut c.stderr_truncated),
                        };
                        let room = limit.saturating_sub(buf.len());
                        buf.extend_from_slice(&data[..data.len().min(room)]);
                        *cut |= data.len() > room;
                        drop(permits);
                    }
                    Out::Event(ev) => c.notices.push(ev),
                    Out::Say(_) => {}
                }
            }
            return Some(c);
        }
        let out = std::io::stdout();
        let err = std::io::stderr();
        let (mut out_ok, mut err_ok) = (true, true);
        // Whether the terminal's cursor is at the start of a line, as far as output shows,
        // and what the tool drew on its current line (for a PTY notice to draw it again).
        let mut line_start = true;
        let mut line = CurrentLine::default();
        // JSON mode: the start of a UTF-8 character cut at a chunk's end, per stream.
        let mut carry: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
        while let Some(item) = rx.blocking_recv() {
            let (stream, data, permits) = match item {
                Out::Data(s, d, p) if json => {
                    let ev = data_event(s, &d, &mut carry[reader_index(s)]);
                    if out_ok {
                        let mut o = out.lock();
                        out_ok = writeln!(o, "{ev}").and_then(|_| o.flush()).is_ok();
                        if !out_ok {
                            let _ = closed.send(());
                        }
                    }
                    drop(p);
                    continue;
                }
                Out::Data(s, d, p) => (s, d, p),
                Out::Event(ev) => {
                    if out_ok {
                        let mut o = out.lock();
                        out_ok = writeln!(o, "{ev}").and_then(|_| o.flush()).is_ok();
                    }
                    continue;
                }
                Out::Say(msg) => {
                    let raw = pty::raw_mode_on();
                    if !line_start {
                        let nl = if raw { "\r\n" } else { "\n" };
                        let _ = err.lock().write_all(nl.as_bytes());
                    }
                    say(&msg);
                    line_start = true;
                    // A terminal session: the tool's line (its prompt, say) drawn again below
                    // the notice, where the tool's cursor now is as far as it knows.
                    if let Some(redraw) = line.redraw().filter(|_| raw && out_ok) {
                        let mut o = out.lock();
                        out_ok = o.write_all(&redraw).and_then(|_| o.flush()).is_ok();
                        line_start = redraw.is_empty();
                    }
                    continue;
                }
            };
            if let Some(&last) = data.last() {
                line_start = last == b'\n';
            }
            if stream == Stream::Stdout {
                line.push(&data);
            }
            match stream {
                Stream::Stdout if out_ok => {
                    let mut o = out.lock();
                    out_ok = o.write_all(&data).and_then(|_| o.flush()).is_ok();
                    if !out_ok {
                        let _ = closed.send(());
                    }
                }
                Stream::Stderr if err_ok => {
                    let mut e = err.lock();
                    err_ok = e.write_all(&data).is_ok() && e.flush().is_ok();
                }
                _ => {}
            }
            drop(permits);
        }
        // JSON mode: bytes of a character never completed are not lost.
        for (i, c) in carry.iter().enumerate() {
            if json && !c.is_empty() && out_ok {
                use base64::Engine;
                let name = if i == 0 { "stdout" } else { "stderr" };
                let ev = serde_json::json!({
                    "event": name,
                    "data_base64": base64::engine::general_purpose::STANDARD.encode(c),
                });
                let mut o = out.lock();
                let _ = writeln!(o, "{ev}").and_then(|_| o.flush());
            }
        }
        None
    })
}

/// The bytes the tool wrote since its last newline, to draw its current line again after a
/// notice. Only text and in-line sequences (colours, erase in line, cursor left and right)
/// are drawn again: anything else (a query the terminal would answer, a cursor jump) and
/// the line is not redrawn.
#[derive(Default)]
struct CurrentLine {
    bytes: Vec<u8>,
    /// Longer than a prompt line is: not redrawn.
    over: bool,
}

impl CurrentLine {
    const MAX: usize = 4096;

    fn push(&mut self, data: &[u8]) {
        let tail = match memchr::memrchr(b'\n', data) {
            Some(i) => {
                self.bytes.clear();
                self.over = false;
                &data[i + 1..]
            }
            None => data,
        };
        if self.over || self.bytes.len() + tail.len() > Self::MAX {
            self.over = true;
            self.bytes.clear();
            return;
        }
        self.bytes.extend_from_slice(tail);
    }

    /// What to write to draw the line again, if it can be: private mode switches
    /// (`ESC [?…h`) are left out.
    fn redraw(&self) -> Option<Vec<u8>> {
        if self.over {
            return None;
        }
        let b = &self.bytes;
        let mut out = Vec::with_capacity(b.len());
        let mut i = 0;
        while i < b.len() {
            let c = b[i];
            if c == 0x1b {
                if b.get(i + 1) != Some(&b'[') {
                    return None;
                }
                let mut j = i + 2;
                while j < b.len() && (0x30..0x40).contains(&b[j]) {
                    j += 1;
                }
                let fin = *b.get(j)?;
                let private = b.get(i + 2) == Some(&b'?');
                match fin {
                    b'h' | b'l' if private => {}
                    b'm' | b'K' | b'C' | b'D' | b'G' | b'P' | b'@' | b'X' if !private => {
                        out.extend_from_slice(&b[i..=j])
                    }
                    _ => return None,
                }
                i = j + 1;
            } else if c == b'\r' || c == 0x08 || c == b'\t' || c >= 0x20 && c != 0x7f {
                out.push(c);
                i += 1;
            } else if c == 0x07 {
                i += 1; // a bell is not rung again
            } else {
                return None;
            }
        }
        Some(out)
    }
}

/// One output chunk as an NDJSON event: `data` holds the text when it is UTF-8 (a
/// character cut at the chunk's end waits for the next chunk), `data_base64` the bytes
/// otherwise.
fn data_event(stream: Stream, data: &[u8], carry: &mut Vec<u8>) -> serde_json::Value {
    use base64::Engine;
    let name = match stream {
        Stream::Stdout => "stdout",
        Stream::Stderr => "stderr",
    };
    let mut bytes = std::mem::take(carry);
    bytes.extend_from_slice(data);
    match std::str::from_utf8(&bytes) {
        Ok(text) => serde_json::json!({"event": name, "data": text}),
        Err(e) if e.error_len().is_none() => {
            let keep = bytes.split_off(e.valid_up_to());
            *carry = keep;
            let text = std::str::from_utf8(&bytes).unwrap_or_default();
            serde_json::json!({"event": name, "data": text})
        }
        Err(_) => serde_json::json!({
            "event": name,
            "data_base64": base64::engine::general_purpose::STANDARD.encode(&bytes),
        }),
    }
}

async fn send(ws: &mut Ws, f: ClientFrame) -> Result<(), SessionError> {
    ws.send(Message::Binary(f.encode()))
        .await
        .map_err(|e| SessionError::GatewayLost(e.to_string()))
}

pub(crate) type Sink = futures_util::stream::SplitSink<Ws, Message>;

/// Sends on the session's write half; a gateway that takes no frame for
/// [`GATEWAY_SILENCE`] is gone.
pub(crate) async fn send_to(sink: &mut Sink, msg: Message) -> Result<(), SessionError> {
    match tokio::time::timeout(GATEWAY_SILENCE, sink.send(msg)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(SessionError::GatewayLost(e.to_string())),
        Err(_) => Err(SessionError::GatewayLost(format!(
            "the gateway took no data for {} s",
            GATEWAY_SILENCE.as_secs()
        ))),
    }
}

/// The signals a session forwards to its tool. Installed before anything that must be
/// cleaned up exists: from then on a signal ends the session through its loop instead of
/// killing hoopx on the spot.
pub struct Signals {
    pub(crate) int: tokio::signal::unix::Signal,
    pub(crate) term: tokio::signal::unix::Signal,
    pub(crate) hup: tokio::signal::unix::Signal,
    pub(crate) quit: tokio::signal::unix::Signal,
    pub(crate) winch: tokio::signal::unix::Signal,
}

pub fn install_signals() -> std::io::Result<Signals> {
    Ok(Signals {
        int: signal(SignalKind::interrupt())?,
        term: signal(SignalKind::terminate())?,
        hup: signal(SignalKind::hangup())?,
        quit: signal(SignalKind::quit())?,
        winch: signal(SignalKind::window_change())?,
    })
}

/// Runs the tool through the gateway until it exits and its exit is recorded.
/// Signals that came since `sig` was installed are forwarded as the loop starts.
pub async fn run(
    ws: Ws,
    tool: Tool,
    pty_mode: bool,
    sig: Signals,
    opts: &RunOptions,
) -> Result<Outcome, SessionError> {
    run_renewing(ws, tool, pty_mode, sig, opts, None, None).await
}

/// The next fresh token to hand the gateway; pending forever once there are none.
pub(crate) async fn next_token(
    tokens: &mut Option<mpsc::UnboundedReceiver<crate::auth::Secret>>,
) -> Option<crate::auth::Secret> {
    match tokens {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// [`run`], sending each token that comes on `tokens` to the gateway (a `Token` frame),
/// so the session outlives the token it started with.
pub async fn run_renewing(
    ws: Ws,
    mut tool: Tool,
    pty_mode: bool,
    mut sig: Signals,
    opts: &RunOptions,
    mut tokens: Option<mpsc::UnboundedReceiver<crate::auth::Secret>>,
    endpoint: Option<super::tunnel::Endpoint>,
) -> Result<Outcome, SessionError> {
    let mut tunnels = super::tunnel::Tunnels::start(endpoint).map_err(|e| {
        SessionError::Spawn(format!("cannot serve the session's local endpoint: {e}"))
    })?;
    // A reader task always drains the socket, so a send never waits on our own reads.
    let (mut ws, mut ws_rx) = {
        let (sink, mut stream) = ws.split();
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Some(m) = stream.next().await {
                let failed = m.is_err();
                if tx.send(m).is_err() || failed {
                    break;
                }
            }
        });
        (sink, rx)
    };
    let out_window = Arc::new(Semaphore::new(OUTPUT_WINDOW));
    let in_window = Arc::new(Semaphore::new(INPUT_WINDOW));
    let (tool_tx, mut tool_rx) = mpsc::channel::<FromTool>(OUTPUT_WINDOW + 2);
    let (caller_tx, mut caller_rx) = mpsc::channel::<FromCaller>(INPUT_WINDOW + 2);
    let (to_tool, to_tool_rx) = mpsc::unbounded_channel::<ToTool>();
    let (to_out, to_out_rx) = mpsc::unbounded_channel();

    let mut readers = Vec::new();
    let tool_writer = match tool.io.take() {
        Some(ToolIo::Pty { reader, writer }) => {
            readers.push(spawn_reader(
                reader,
                Stream::Stdout,
                out_window.clone(),
                tool_tx.clone(),
            ));
            spawn_tool_writer(
                writer,
                to_tool_rx,
                false,
                |w: &pty_process::OwnedWritePty, cols, rows| {
                    let _ = w.resize(pty_process::Size::new(rows, cols));
                },
            )
        }
        Some(ToolIo::Pipe {
            stdin,
            stdout,
            stderr,
        }) => {
            readers.push(spawn_reader(
                stdout,
                Stream::Stdout,
                out_window.clone(),
                tool_tx.clone(),
            ));
            readers.push(spawn_reader(
                stderr,
                Stream::Stderr,
                out_window.clone(),
                tool_tx.clone(),
            ));
            spawn_tool_writer(stdin, to_tool_rx, true, |_, _, _| {})
        }
        None => return Err(SessionError::Spawn("the tool has no I/O".into())),
    };
    drop(tool_tx);
    // A reader is done once: by its end of file, or by being aborted; never counted twice.
    let mut reader_done = vec![false; readers.len()];
    let mut open_readers = readers.len();
    let (stdout_closed_tx, mut stdout_closed) = mpsc::unbounded_channel();
    let output_writer = spawn_output_writer(to_out_rx, stdout_closed_tx, opts.json, opts.capture);
    // The input line waiting for a review, if one is, and since when.
    let mut waiting_review: Option<(tokio::time::Instant, String)> = None;
    spawn_stdin_reader(in_window.clone(), caller_tx);

    // One entry per output frame in flight: the permits of the chunks it carries.
    let mut out_permits: VecDeque<Vec<OwnedSemaphorePermit>> = VecDeque::new();
    let mut in_permits: VecDeque<OwnedSemaphorePermit> = VecDeque::new();
    let mut exit: Option<(i32, Option<i32>)> = None;
    let mut exit_sent = false;
    let mut denied = 0usize;
    let mut caller_eof = false;
    let mut last_heard = tokio::time::Instant::now();
    let mut last_output = tokio::time::Instant::now();

    let mut keepalive = tokio::time::interval(KEEPALIVE);
    keepalive.tick().await;
    let mut drain_check = tokio::time::interval(Duration::from_millis(250));

    let mut stdout_gone: Option<tokio::time::Instant> = None;
    let result: Result<(), SessionError> = loop {
        if exit.is_some() && open_readers == 0 && out_permits.is_empty() && !exit_sent {
            let (code, signal) = exit.unwrap_or((1, None));
            if let Err(e) = send_to(
                &mut ws,
                Message::Binary(ClientFrame::Exit { code, signal }.encode()),
            )
            .await
            {
                break Err(e);
            }
            exit_sent = true;
        }
        tokio::select! {
            msg = ws_rx.recv() => {
                last_heard = tokio::time::Instant::now();
                let frame = match stream_frame(msg) {
                    Ok(Some(f)) => f,
                    Ok(None) => continue,
                    Err(e) => break Err(e),
                };
                match frame {
                    ServerFrame::Deliver(d) => { let _ = to_tool.send(ToTool::Data(d)); }
                    ServerFrame::DeliverEof => { let _ = to_tool.send(ToTool::Close); }
                    ServerFrame::InputAck => match in_permits.pop_front() {
                        Some(p) => { let _ = to_tool.send(ToTool::Release(p)); }
                        None => break Err(SessionError::Protocol("input acknowledged that was never sent".into())),
                    },
                    ServerFrame::Output { stream, data, more: true } => {
                        if out_permits.is_empty() {
                            break Err(SessionError::Protocol("output that was never sent came back".into()));
                        }
                        let _ = to_out.send(Out::Data(stream, data, Vec::new()));
                    }
                    ServerFrame::Output { stream, data, more: false } => match out_permits.pop_front() {
                        Some(p) => { let _ = to_out.send(Out::Data(stream, data, p)); }
                        None => break Err(SessionError::Protocol("output that was never sent came back".into())),
                    },
                    ServerFrame::Released { stream, data } => {
                        let _ = to_out.send(Out::Data(stream, data, Vec::new()));
                    }
                    ServerFrame::Notice(n) => {
                        if n.kind == "denied" { denied += 1; }
                        match (n.kind.as_str(), &n.review_id) {
                            ("approval_pending", Some(id)) => waiting_review = Some((tokio::time::Instant::now(), id.clone())),
                            (_, Some(id)) if waiting_review.as_ref().is_some_and(|w| &w.1 == id) => waiting_review = None,
                            _ => {}
                        }
                        if opts.json || opts.capture.is_some() {
                            let _ = to_out.send(Out::Event(notice_event(&n)));
                        } else {
                            // Reviewers' reasons are in it: no control characters reach the terminal.
                            let _ = to_out.send(Out::Say(crate::cli::printable(&n.message)));
                        }
                    }
                    ServerFrame::Closed(_) if exit_sent => break Ok(()),
                    ServerFrame::Closed(_) => break Err(SessionError::Protocol("the gateway closed the session before the tool exited".into())),
                    ServerFrame::Error(e) => break Err(stream_error(e)),
                    ServerFrame::Ready => break Err(SessionError::Protocol("a second ready frame".into())),
                    ServerFrame::TunnelData { ch, data } => tunnels.data(ch, data),
                    ServerFrame::TunnelAck { ch, n } => tunnels.acked(ch, n),
                    ServerFrame::TunnelClose { ch } => tunnels.close(ch),
                    ServerFrame::Exited { .. } => break Err(SessionError::Protocol("a remote exit in a session whose tool runs here".into())),
                }
            }
            m = tool_rx.recv(), if open_readers > 0 => {
                // Coalesce what is already waiting into one frame: fewer round trips when the
                // tool writes faster than we forward (a PTY hands out at most 4 KiB a read).
                if m.is_none() {
                    // Every reader is gone.
                    open_readers = 0;
                }
                let mut next = m;
                let mut failed = None;
                while let Some(item) = next.take() {
                    let (stream, data, permit) = match item {
                        FromTool::Chunk(s, d, p) => (s, d, p),
                        FromTool::Eof(s) => {
                            if let Some(done) = reader_done.get_mut(reader_index(s)) {
                                if !*done {
                                    *done = true;
                                    open_readers = open_readers.saturating_sub(1);
                                }
                            }
                            continue;
                        }
                    };
                    last_output = tokio::time::Instant::now();
                    let mut permits = vec![permit];
                    // Copied into a batch only when a second chunk joins the first.
                    let mut batch: Option<BytesMut> = None;
                    let mut len = data.len();
                    loop {
                        match tool_rx.try_recv() {
                            Ok(FromTool::Chunk(s, d, p)) if s == stream && len + d.len() <= MAX_DATA => {
                                batch.get_or_insert_with(|| BytesMut::from(&data[..])).extend_from_slice(&d);
                                len += d.len();
                                permits.push(p);
                            }
                            Ok(other) => { next = Some(other); break; }
                            Err(_) => break,
                        }
                    }
                    let data = batch.map_or(data, BytesMut::freeze);
                    out_permits.push_back(permits);
                    if let Err(e) = send_to(&mut ws, Message::Binary(ClientFrame::Output { stream, data }.encode())).await {
                        failed = Some(e);
                        break;
                    }
                }
                if let Some(e) = failed { break Err(e); }
            }
            m = caller_rx.recv(), if !caller_eof && !exit_sent => match m {
                Some(FromCaller::Chunk(data, permit)) => {
                    in_permits.push_back(permit);
                    if let Err(e) = send_to(&mut ws, Message::Binary(ClientFrame::Input(data).encode())).await { break Err(e); }
                }
                Some(FromCaller::Eof) | None => {
                    caller_eof = true;
                    // Under a PTY the tool sees end of input as ^D typed by the caller.
                    let frame = if pty_mode { ClientFrame::Input(Bytes::from_static(b"\x04")) } else { ClientFrame::InputEof };
                    match in_window.clone().try_acquire_owned() {
                        Ok(p) => in_permits.push_back(p),
                        Err(_) => {
                            // All permits are in flight; wait for one so the ack accounting stays exact.
                            let p = in_window.clone().acquire_owned().await.map_err(|_| SessionError::Spawn("input window closed".into()));
                            match p { Ok(p) => in_permits.push_back(p), Err(e) => break Err(e) }
                        }
                    }
                    if let Err(e) = send_to(&mut ws, Message::Binary(frame.encode())).await { break Err(e); }
                }
            },
            status = tool.child.wait(), if exit.is_none() => {
                exit = Some(match status {
                    Ok(s) => pty::exit_code(&s),
                    Err(_) => (1, None),
                });
                last_output = tokio::time::Instant::now();
            }
            _ = drain_check.tick() => {
                // Output waiting on the gateway or on our stdout is progress, not silence:
                // only permits held by readers blocked in read() are "nothing to do".
                if !out_permits.is_empty() || out_window.available_permits() + open_readers < OUTPUT_WINDOW {
                    last_output = tokio::time::Instant::now();
                }
                if exit.is_none() && stdout_gone.is_some_and(|t| t.elapsed() >= DRAIN_PAUSE) {
                    // It ignored SIGPIPE: stop it.
                    stdout_gone = None;
                    tool.terminate(DRAIN_PAUSE).await;
                }
                if exit.is_some() && open_readers > 0 && last_output.elapsed() >= DRAIN_PAUSE {
                    // Something the tool started still holds its output open; stop waiting.
                    for r in &readers { r.abort(); }
                    open_readers = 0;
                }
            }
            Some(ev) = tunnels.events.recv(), if !exit_sent => {
                if let Some(f) = tunnels.event(ev) {
                    if let Err(e) = send_to(&mut ws, Message::Binary(f.encode())).await { break Err(e); }
                }
            }
            t = next_token(&mut tokens), if !exit_sent => match t {
                Some(t) => {
                    if let Err(e) = send_to(&mut ws, Message::Binary(ClientFrame::Token(t).encode())).await { break Err(e); }
                }
                None => tokens = None,
            },
            _ = async {
                    match (&waiting_review, opts.approval_timeout) {
                        (Some((since, _)), Some(limit)) => tokio::time::sleep_until(*since + limit).await,
                        _ => std::future::pending().await,
                    }
                } => {
                    let id = waiting_review.take().map(|w| w.1).unwrap_or_default();
                    break Err(SessionError::ApprovalTimeout(id));
                }
            _ = keepalive.tick() => {
                if last_heard.elapsed() > GATEWAY_SILENCE {
                    break Err(SessionError::GatewayLost(format!("no answer from the gateway for {} s", GATEWAY_SILENCE.as_secs())));
                }
                if let Err(e) = send_to(&mut ws, Message::Ping(Bytes::new())).await {
                    break Err(e);
                }
            }
            _ = sig.int.recv() => tool.signal(Signal::SIGINT),
            _ = sig.term.recv() => tool.signal(Signal::SIGTERM),
            _ = sig.hup.recv() => tool.signal(Signal::SIGHUP),
            _ = sig.quit.recv() => tool.signal(Signal::SIGQUIT),
            Some(()) = stdout_closed.recv() => {
                // Nobody reads our stdout any more: stop the tool the way a pipe would. In
                // pipe mode, closing the tool's stdout also makes its writes fail (EPIPE).
                if !pty_mode {
                    if let (Some(r), Some(done)) = (readers.first(), reader_done.first_mut()) {
                        if !*done {
                            r.abort();
                            *done = true;
                            open_readers = open_readers.saturating_sub(1);
                        }
                    }
                }
                if exit.is_none() {
                    tool.signal(Signal::SIGPIPE);
                    stdout_gone = Some(tokio::time::Instant::now());
                }
            }
            _ = sig.winch.recv(), if pty_mode => {
                let fd = std::io::stdout();
                if let Some((cols, rows)) = pty::window_size(std::os::fd::AsFd::as_fd(&fd)) {
                    let _ = to_tool.send(ToTool::Resize(cols, rows));
                    if let Err(e) = send_to(&mut ws, Message::Binary(ClientFrame::Resize { cols, rows }.encode())).await { break Err(e); }
                }
            }
        }
    };

    match result {
        Ok(()) => {
            drop(to_out);
            let captured = tokio::task::spawn_blocking(move || output_writer.join())
                .await
                .ok()
                .and_then(Result::ok)
                .flatten();
            drop(to_tool);
            tool_writer.abort();
            let _ = tokio::time::timeout(Duration::from_secs(5), ws.close()).await;
            Ok(Outcome {
                code: exit.map(|e| e.0).unwrap_or(1),
                denied,
                captured,
            })
        }
        Err(e) => {
            // Fail closed: nothing may run that the gateway cannot see.
            if exit.is_none() {
                tool.terminate(Duration::from_secs(2)).await;
            }
            for r in &readers {
                r.abort();
            }
            drop(to_out);
            let _ = tokio::time::timeout(
                Duration::from_secs(1),
                tokio::task::spawn_blocking(move || output_writer.join()),
            )
            .await;
            tool_writer.abort();
            Err(e)
        }
    }
}

#[cfg(test)]
mod current_line_tests {
    use super::CurrentLine;

    #[test]
    fn the_current_line_is_drawn_again_only_when_it_is_in_line_text() {
        let mut l = CurrentLine::default();
        l.push(b"old line\r\n\x1b[?2004h\x1b[1mapp\x1b[0m=# drop");
        l.push(b"\x08\x08\x08\x08\x1b[K");
        assert_eq!(
            l.redraw().unwrap(),
            b"\x1b[1mapp\x1b[0m=# drop\x08\x08\x08\x08\x1b[K"
        );
        // A cursor jump or a query the terminal would answer: not redrawn.
        l.push(b"\x1b[6n");
        assert_eq!(l.redraw(), None);
        l.push(b"\nok> \x1b[2A");
        assert_eq!(l.redraw(), None);
        l.push(b"\n");
        assert_eq!(l.redraw().unwrap(), b"");
        l.push(&[b'x'; 5000]);
        assert_eq!(l.redraw(), None);
    }
}
