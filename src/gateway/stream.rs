//! One session's stream: a single task that owns the session state, reads client frames,
//! applies policy (input gate, masking), answers and records.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use bytes::Bytes;
use serde_json::json;

use tokio::sync::mpsc;

use super::store::{SessionEnd, Store, StoreError};
use super::{now_ms, Gateway, Pending};
use crate::policy::{GateAction, InputGate, Masker};
use crate::proto::frame::{
    ClientFrame, Closed, Notice, ServerFrame, Stream, StreamError, MAX_DATA,
};
use crate::recording::{Event, EventKind};

/// Events are written in batches: at this many events, this many bytes, or this often.
const FLUSH_EVENTS: usize = 512;
const FLUSH_BYTES: usize = 4 * 1024 * 1024;
const FLUSH_EVERY: Duration = Duration::from_millis(200);
/// A session whose client stays silent this long is ended (clients ping every 15 s).
const IDLE_LIMIT: Duration = Duration::from_secs(60);

/// Batches queued for the store before the relay waits: recording keeps up with the stream
/// without holding up every frame for a database write.
const QUEUED_BATCHES: usize = 4;

/// Appends events to the session's log in batches, written by a task of their own.
struct Recorder {
    started: Instant,
    seq: i64,
    buf: Vec<Event>,
    bytes: usize,
    tx: Option<mpsc::Sender<Vec<Event>>>,
    writer: Option<tokio::task::JoinHandle<Result<(), StoreError>>>,
}

impl Recorder {
    fn new(store: Arc<dyn Store>, id: String, started: Instant) -> Recorder {
        let (tx, mut rx) = mpsc::channel::<Vec<Event>>(QUEUED_BATCHES);
        let writer = tokio::spawn(async move {
            while let Some(batch) = rx.recv().await {
                store.append_events(&id, &batch).await?;
            }
            Ok(())
        });
        Recorder {
            started,
            seq: 0,
            buf: Vec::new(),
            bytes: 0,
            tx: Some(tx),
            writer: Some(writer),
        }
    }

    fn push(&mut self, kind: EventKind, data: Vec<u8>) {
        self.bytes += data.len();
        self.buf.push(Event {
            seq: self.seq,
            t_us: self.started.elapsed().as_micros() as i64,
            kind,
            data,
        });
        self.seq += 1;
    }

    fn marker(&mut self, value: serde_json::Value) {
        self.push(EventKind::Marker, value.to_string().into_bytes());
    }

    fn full(&self) -> bool {
        self.buf.len() >= FLUSH_EVENTS || self.bytes >= FLUSH_BYTES
    }

    /// Hands the buffered events to the writer; fails once the store has failed.
    async fn flush(&mut self) -> Result<(), String> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.buf);
        self.bytes = 0;
        let sent = match &self.tx {
            Some(tx) => tx.send(batch).await.is_ok(),
            None => false,
        };
        if sent {
            Ok(())
        } else {
            Err(self.writer_error().await)
        }
    }

    async fn writer_error(&mut self) -> String {
        self.tx = None;
        match self.writer.take() {
            Some(w) => match w.await {
                Ok(Err(e)) => e.to_string(),
                Ok(Ok(())) => "the recording writer stopped".into(),
                Err(e) => format!("the recording writer failed: {e}"),
            },
            None => "the recording writer stopped".into(),
        }
    }

    /// Writes everything still buffered and waits until the store has it.
    async fn close(&mut self) -> Result<(), String> {
        self.flush().await?;
        self.tx = None;
        match self.writer.take() {
            Some(w) => match w.await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(e.to_string()),
                Err(e) => Err(format!("the recording writer failed: {e}")),
            },
            None => Err("the recording writer stopped".into()),
        }
    }
}

/// How the stream ended.
enum End {
    Exited { code: i32, signal: Option<i32> },
    Aborted(String),
}

struct Session {
    gw: Arc<Gateway>,
    target: String,
    gate: InputGate,
    masker: Masker,
    rec: Recorder,
    masked: usize,
    denied: usize,
}

pub(crate) async fn run(gw: Arc<Gateway>, pending: Pending, mut socket: WebSocket) {
    let _running = gw.session_running();
    let rec = Recorder::new(gw.store.clone(), pending.id.clone(), pending.started);
    let mut s = Session {
        masker: gw.policy.masker(&pending.target),
        gate: InputGate::new(pending.mode),
        target: pending.target.clone(),
        gw: gw.clone(),
        rec,
        masked: 0,
        denied: 0,
    };
    if let (Some(c), Some(r)) = (pending.cols, pending.rows) {
        s.rec
            .push(EventKind::Resize, format!("{c}x{r}").into_bytes());
    }
    let end = match gw.store.set_status(&pending.id, "running").await {
        Err(e) => {
            eprintln!("hoopx gateway: session {}: {e}", pending.id);
            let _ = send(
                &mut socket,
                ServerFrame::Error(StreamError {
                    code: "internal".into(),
                    message: "the gateway cannot record this session, so it will not run".into(),
                }),
            )
            .await;
            End::Aborted(format!("store unavailable: {e}"))
        }
        Ok(()) => match send(&mut socket, ServerFrame::Ready).await {
            Err(_) => End::Aborted("client left before the session started".into()),
            Ok(()) => s.relay(&mut socket).await,
        },
    };
    s.finish(&pending.id, end, &mut socket).await;
}

/// Sends one frame; a client that takes nothing for [`IDLE_LIMIT`] has stopped reading and
/// the session ends rather than hold a relay forever.
async fn send(socket: &mut WebSocket, frame: ServerFrame) -> Result<(), axum::Error> {
    match tokio::time::timeout(IDLE_LIMIT, socket.send(Message::Binary(frame.encode()))).await {
        Ok(r) => r,
        Err(_) => Err(axum::Error::new(format!(
            "the client took nothing for {} s",
            IDLE_LIMIT.as_secs()
        ))),
    }
}

async fn fail(socket: &mut WebSocket, code: &str, message: String) -> End {
    let _ = send(
        socket,
        ServerFrame::Error(StreamError {
            code: code.into(),
            message: message.clone(),
        }),
    )
    .await;
    let _ = socket
        .send(Message::Close(Some(CloseFrame {
            code: if code == "protocol" { 1002 } else { 1011 },
            reason: "".into(),
        })))
        .await;
    End::Aborted(format!("{code} error: {message}"))
}

impl Session {
    async fn relay(&mut self, socket: &mut WebSocket) -> End {
        let mut tick = tokio::time::interval(FLUSH_EVERY);
        let mut stopping = self.gw.stopping();
        let mut last_heard = Instant::now();
        loop {
            let msg = tokio::select! {
                m = socket.recv() => m,
                _ = async { drop(stopping.wait_for(|s| *s).await) } => {
                    return fail(socket, "internal", "the gateway is shutting down".into()).await;
                }
                _ = tick.tick() => {
                    if let Err(e) = self.rec.flush().await {
                        return fail(socket, "internal", format!("cannot record the session: {e}")).await;
                    }
                    if last_heard.elapsed() > IDLE_LIMIT {
                        return End::Aborted(format!("client silent for {} s", IDLE_LIMIT.as_secs()));
                    }
                    continue;
                }
            };
            last_heard = Instant::now();
            let raw = match msg {
                None => return End::Aborted("client disconnected".into()),
                Some(Err(e)) => {
                    let e = e.into_inner();
                    // A message over the WebSocket layer's limit, or broken framing, is the
                    // client's protocol error; anything else is a failed connection.
                    use tokio_tungstenite::tungstenite::Error as WsError;
                    return match e.downcast_ref::<WsError>() {
                        Some(WsError::Capacity(_) | WsError::Protocol(_)) => {
                            fail(socket, "protocol", e.to_string()).await
                        }
                        _ => End::Aborted(format!("client connection failed: {e}")),
                    };
                }
                Some(Ok(Message::Binary(b))) => b,
                Some(Ok(Message::Text(_))) => {
                    return fail(
                        socket,
                        "protocol",
                        "text messages are not part of the protocol; frames are binary".into(),
                    )
                    .await
                }
                Some(Ok(Message::Close(_))) => {
                    return End::Aborted("client closed the stream before the tool exited".into())
                }
                Some(Ok(_)) => continue,
            };
            let frame = match ClientFrame::decode(&raw) {
                Ok(f) => f,
                Err(e) => return fail(socket, "protocol", e.to_string()).await,
            };
            match self.handle(frame, socket).await {
                Ok(None) => {}
                Ok(Some(end)) => return end,
                Err(end) => return end,
            }
            if self.rec.full() {
                if let Err(e) = self.rec.flush().await {
                    return fail(
                        socket,
                        "internal",
                        format!("cannot record the session: {e}"),
                    )
                    .await;
                }
            }
        }
    }

    /// Handles one frame; `Ok(Some)` ends the session normally, `Err` abnormally.
    async fn handle(
        &mut self,
        frame: ClientFrame,
        socket: &mut WebSocket,
    ) -> Result<Option<End>, End> {
        let lost =
            |e: axum::Error| End::Aborted(format!("client connection failed while sending: {e}"));
        match frame {
            ClientFrame::Input(data) => {
                let policy = self.gw.policy.clone();
                let target = self.target.clone();
                let check = |line: &[u8]| policy.denies(&target, line).map(|r| r.name.clone());
                match self.gate.feed(&data, check) {
                    Ok(actions) => self.apply(actions, socket).await.map_err(lost)?,
                    Err(e) => return Err(fail(socket, "policy", e.to_string()).await),
                }
                send(socket, ServerFrame::InputAck).await.map_err(lost)?;
            }
            ClientFrame::InputEof => {
                let policy = self.gw.policy.clone();
                let target = self.target.clone();
                let check = |line: &[u8]| policy.denies(&target, line).map(|r| r.name.clone());
                let actions = self.gate.finish(check);
                self.apply(actions, socket).await.map_err(lost)?;
                send(socket, ServerFrame::DeliverEof).await.map_err(lost)?;
                send(socket, ServerFrame::InputAck).await.map_err(lost)?;
            }
            ClientFrame::Output { stream, data } => {
                let (masked, n) = self.masker.mask(&data);
                self.masked += n;
                // Clean chunks (the common case) go back as the very bytes that came in.
                let masked = match masked {
                    std::borrow::Cow::Borrowed(_) => data.clone(),
                    std::borrow::Cow::Owned(v) => Bytes::from(v),
                };
                let kind = match stream {
                    Stream::Stdout => EventKind::Output,
                    Stream::Stderr => EventKind::Stderr,
                };
                if !masked.is_empty() {
                    self.rec.push(kind, masked.to_vec());
                }
                // Masking can grow a chunk past the frame limit: answer in parts.
                let mut rest = masked;
                loop {
                    let part = rest.split_to(rest.len().min(MAX_DATA));
                    let more = !rest.is_empty();
                    send(
                        socket,
                        ServerFrame::Output {
                            stream,
                            data: part,
                            more,
                        },
                    )
                    .await
                    .map_err(lost)?;
                    if !more {
                        break;
                    }
                }
            }
            ClientFrame::Resize { cols, rows } => {
                self.rec
                    .push(EventKind::Resize, format!("{cols}x{rows}").into_bytes());
            }
            ClientFrame::Exit { code, signal } => {
                return Ok(Some(End::Exited { code, signal }));
            }
        }
        Ok(None)
    }

    async fn apply(
        &mut self,
        actions: Vec<GateAction>,
        socket: &mut WebSocket,
    ) -> Result<(), axum::Error> {
        for a in actions {
            match a {
                GateAction::Deliver(d) => {
                    let (masked, _) = self.masker.mask(&d);
                    self.rec.push(EventKind::Input, masked.into_owned());
                    // A released line may be longer than one frame carries.
                    for part in d.chunks(MAX_DATA) {
                        send(socket, ServerFrame::Deliver(d.slice_ref(part))).await?;
                    }
                }
                GateAction::Denied { rule, line } => {
                    self.denied += 1;
                    let (masked, _) = self.masker.mask(&line);
                    let shown = shorten(String::from_utf8_lossy(&masked).trim_end());
                    self.rec.marker(json!({"denied": rule, "line": shown}));
                    send(
                        socket,
                        ServerFrame::Notice(Notice {
                            kind: "denied".into(),
                            rule: Some(rule.clone()),
                            message: format!("input line withheld by deny rule {rule:?}: {shown}"),
                        }),
                    )
                    .await?;
                }
            }
        }
        Ok(())
    }

    async fn finish(&mut self, id: &str, end: End, socket: &mut WebSocket) {
        if self.masked > 0 {
            self.rec.marker(json!({"masked": self.masked}));
        }
        let (status, exit_code, reason) = match &end {
            End::Exited { code, signal } => {
                self.rec.push(
                    EventKind::Exit,
                    json!({"code": code, "signal": signal})
                        .to_string()
                        .into_bytes(),
                );
                (
                    "exited",
                    Some(*code),
                    (self.denied > 0).then(|| format!("{} input line(s) denied", self.denied)),
                )
            }
            End::Aborted(why) => {
                self.rec.marker(json!({"aborted": why}));
                ("aborted", None, Some(why.clone()))
            }
        };
        let stored = self.rec.close().await;
        let finished = self
            .gw
            .store
            .finish_session(
                id,
                &SessionEnd {
                    status: status.into(),
                    ended_at: now_ms(),
                    exit_code,
                    reason,
                },
            )
            .await
            .map_err(|e| e.to_string());
        self.gw.log(format_args!(
            "session {id} {status} exit={} events={} masked={} denied={}",
            exit_code.map_or_else(|| "-".to_string(), |c| c.to_string()),
            self.rec.seq,
            self.masked,
            self.denied
        ));
        if let Err(e) = stored.as_ref().and(finished.as_ref()) {
            eprintln!("hoopx gateway: session {id}: could not record its end: {e}");
        }
        if matches!(end, End::Exited { .. }) {
            let frame = if let Err(e) = stored.and(finished) {
                ServerFrame::Error(StreamError {
                    code: "internal".into(),
                    message: format!("the session's end could not be recorded: {e}"),
                })
            } else {
                ServerFrame::Closed(Closed {
                    status: status.into(),
                    events: self.rec.seq,
                })
            };
            let _ = send(socket, frame).await;
            let _ = socket.send(Message::Close(None)).await;
        }
    }
}

/// A line as quoted in notices and markers: at most 200 characters.
fn shorten(line: &str) -> String {
    const MAX: usize = 200;
    if line.chars().count() <= MAX {
        return line.to_string();
    }
    let mut s: String = line.chars().take(MAX).collect();
    s.push('…');
    s
}
