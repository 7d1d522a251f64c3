//! One session's stream: a single task that owns the session state, reads client frames,
//! applies policy (input gate, masking), answers and records.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use bytes::Bytes;
use serde_json::json;

use ed25519_dalek::SigningKey;
use tokio::sync::{mpsc, watch};

use super::masking::Masked;
use super::pg::{FromChannel, SessionCtx};
use super::reviews::{self, Ask};
use super::store::{Batch, SessionEnd, SessionStats, StoreError};
use super::tunnel::{Relay, Tunnels};
use super::{now_ms, Gateway, Pending};
use crate::auth::Identity;
use crate::policy::gate::Check;
use crate::policy::mask::timing::Holdback;
use crate::policy::mask::Release;
use crate::policy::review;
use crate::policy::screen::LineView;
use crate::policy::{GateAction, InputGate, Masker, Verdict};
use crate::proto::frame::{
    ClientFrame, Closed, Notice, ServerFrame, Stream, StreamError, MAX_DATA,
};
use crate::proto::{Mode, ReviewInfo};
use crate::recording::chain::{self, Hash};
use crate::recording::evidence::ClosedFacts;
use crate::recording::{Event, EventKind};

/// When the relay flushes on its own: often enough to bound the unsigned tail of a quiet
/// session. (Output waiting for its acknowledgement is flushed at once.)
const FLUSH_EVERY: Duration = Duration::from_millis(200);
/// A batch is handed to the writer at this many events or bytes even while the previous one
/// is being written.
const FLUSH_EVENTS: usize = 512;
const FLUSH_BYTES: usize = 4 * 1024 * 1024;
/// The chain head is signed at the first flush after this many events, or after this long
/// while events come in.
const CHECKPOINT_EVENTS: i64 = 256;
const CHECKPOINT_EVERY: Duration = Duration::from_secs(5);
/// A store write that takes longer than this is a failed store.
const STORE_TIMEOUT: Duration = Duration::from_secs(30);
/// A session whose client stays silent this long is ended (clients ping every 15 s).
const IDLE_LIMIT: Duration = Duration::from_secs(60);

/// At Enter in PTY mode, a line typed with keys the gate cannot follow (arrows, history,
/// Ctrl-A, Tab, …) is read off the screen once the tool's echo is in: when the keys before
/// the Enter have been sent, the tool has written something since, and then been quiet
/// this long...
const ECHO_QUIET: Duration = Duration::from_millis(50);
/// ...or at the latest this long after the last keys were sent. If no echo came at all by
/// then, the line is withheld on a target with rules (`pty-unverified-line`): what the tool
/// made of it is unknown.
const ECHO_MAX: Duration = Duration::from_secs(1);
/// However long the keys take to be sent (a slow store), an Enter waits no longer than this.
const ECHO_ABSOLUTE: Duration = Duration::from_secs(10);
/// Input queued behind a held line is acknowledged at once up to this many bytes, and
/// only as it is released beyond; a client that sends past its window beyond the hard
/// bound has broken the protocol.
const QUEUE_SOFT: usize = 256 * 1024;
const QUEUE_HARD: usize = 4 * 1024 * 1024;
/// An input line longer than this that needs a review is withheld instead: a reviewer
/// must be able to read all of what they approve.
const MAX_REVIEW_LINE: usize = 16 * 1024;
/// What a withheld PTY line gets instead of its Enter: Ctrl-E Ctrl-U (see the gate).
const ERASE_LINE: &[u8] = b"\x05\x15";

/// Batches queued for the store before the relay waits. Answers wait for their events to
/// be stored anyway; the queue lets a large burst be written in several transactions.
const QUEUED_BATCHES: usize = 4;

/// Appends events to the session's log: chains each event, hands batches to a writer task of
/// their own (with a signed checkpoint when one is due) and tells the relay, through
/// `stored`, how many events the store holds, so nothing is shown before it is recorded.
struct Recorder {
    id: String,
    started: Instant,
    /// Events pushed so far; the next event's seq.
    seq: i64,
    head: Hash,
    buf: Vec<Event>,
    hashes: Vec<Hash>,
    bytes: usize,
    /// Events handed to the writer.
    handed: i64,
    /// Events the store has committed.
    stored: watch::Receiver<i64>,
    signer: Arc<SigningKey>,
    /// Events covered by the last checkpoint, and when it was made.
    signed: i64,
    signed_at: Instant,
    stats: SessionStats,
    tx: Option<mpsc::Sender<(Batch, i64)>>,
    writer: Option<tokio::task::JoinHandle<Result<(), StoreError>>>,
}

impl Recorder {
    fn new(gw: &Gateway, pending: &Pending, argv: &[String], started_at: i64) -> Recorder {
        let (tx, mut rx) = mpsc::channel::<(Batch, i64)>(QUEUED_BATCHES);
        let (stored_tx, stored) = watch::channel(0i64);
        let store = gw.store.clone();
        let id = pending.id.clone();
        let write_time = gw.metrics.store_write();
        let writer = tokio::spawn(async move {
            while let Some((batch, count)) = rx.recv().await {
                // A store that stops answering ends the session like one that fails.
                let began = Instant::now();
                match tokio::time::timeout(STORE_TIMEOUT, store.append(&id, &batch)).await {
                    Ok(r) => {
                        write_time.observe(began.elapsed().as_secs_f64());
                        r?
                    }
                    Err(_) => {
                        return Err(StoreError::Timeout(STORE_TIMEOUT.as_secs()));
                    }
                }
                stored_tx.send_replace(count);
            }
            Ok(())
        });
        Recorder {
            id: pending.id.clone(),
            started: pending.started,
            seq: 0,
            head: chain::genesis(
                &pending.id,
                &pending.identity.subject,
                &pending.target,
                argv,
                pending.mode,
                started_at,
            ),
            buf: Vec::new(),
            hashes: Vec::new(),
            bytes: 0,
            handed: 0,
            stored,
            signer: gw.signer.clone(),
            signed: 0,
            signed_at: Instant::now(),
            stats: SessionStats::default(),
            tx: Some(tx),
            writer: Some(writer),
        }
    }

    fn push(&mut self, kind: EventKind, data: Vec<u8>) {
        self.bytes += data.len();
        let e = Event {
            seq: self.seq,
            t_us: self.started.elapsed().as_micros() as i64,
            kind,
            data,
        };
        self.head = chain::next(&self.head, &e);
        self.hashes.push(self.head);
        self.buf.push(e);
        self.seq += 1;
    }

    fn marker(&mut self, value: serde_json::Value) {
        self.push(EventKind::Marker, value.to_string().into_bytes());
    }

    fn full(&self) -> bool {
        self.buf.len() >= FLUSH_EVENTS || self.bytes >= FLUSH_BYTES
    }

    /// The writer has committed everything handed to it.
    fn writer_idle(&self) -> bool {
        *self.stored.borrow() >= self.handed
    }

    fn stored(&self) -> i64 {
        *self.stored.borrow()
    }

    /// Hands the buffered events to the writer, with a signed checkpoint when one is due
    /// (or `last`); fails once the store has failed.
    async fn flush(&mut self, last: bool) -> Result<(), String> {
        self.flush_signed(last, false).await
    }

    /// [`flush`](Self::flush), signing the head now when `sign_now` (the session's start:
    /// its genesis is vouched for before anything runs).
    async fn flush_signed(&mut self, last: bool, sign_now: bool) -> Result<(), String> {
        let sign = last
            || sign_now
            || (self.seq > self.signed
                && (self.seq - self.signed >= CHECKPOINT_EVENTS
                    || self.signed_at.elapsed() >= CHECKPOINT_EVERY));
        if self.buf.is_empty() && !sign {
            return Ok(());
        }
        let checkpoint = sign.then(|| {
            self.signed = self.seq;
            self.signed_at = Instant::now();
            chain::sign(&self.signer, &self.id, self.seq, &self.head, last)
        });
        let batch = Batch {
            events: std::mem::take(&mut self.buf),
            hashes: std::mem::take(&mut self.hashes),
            checkpoint,
            stats: self.stats.clone(),
        };
        self.bytes = 0;
        self.handed = self.seq;
        let sent = match &self.tx {
            Some(tx) => tx.send((batch, self.seq)).await.is_ok(),
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

    /// Writes everything still buffered with the closing checkpoint, and waits until the
    /// store has it.
    async fn close(&mut self) -> Result<(), String> {
        self.flush(true).await?;
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
    stdout: Masked,
    stderr: Masked,
    /// What the caller types, masked for the recording (the tool gets it as typed).
    input: Masked,
    /// How long the maskers may hold a tail: longer on pipes than under a terminal.
    holdback: Holdback,
    rec: Recorder,
    /// Answers waiting until the store holds the events they show: (events needed, frame).
    /// Frames leave in order, so an acknowledgement never overtakes the output before it.
    /// Output answers also carry when their data reached the gateway (relay latency).
    outbox: VecDeque<(i64, ServerFrame, Option<Instant>)>,
    /// This target's byte counters (in, out) in the gateway's metrics.
    bytes_metrics: (
        prometheus_client::metrics::counter::Counter,
        prometheus_client::metrics::counter::Counter,
    ),
    /// Tunnel frames (postgres connections): they leave at once, in order. What the
    /// gateway records of a tunnel is its statement log, written behind the data in the
    /// same order (a statement's answer does not wait for the store's commit).
    tunnel_out: VecDeque<ServerFrame>,
    /// Until when (Unix seconds) the caller's token holds.
    expires_at: Option<i64>,
    /// How long the session outlives an expired token while no fresh one comes.
    grace: Duration,
    id: String,
    identity: Identity,
    /// PTY mode: the terminal as the user sees it, to read a submitted line off it.
    view: Option<LineView>,
    last_output: Instant,
    /// PTY: keys were sent to the client and no output has come back since (their echo is
    /// due).
    echo_due: bool,
    /// `Deliver` frames answered but not sent yet (waiting for the store).
    delivers_unsent: usize,
    /// When the last `Deliver` frame was sent.
    last_sent: Instant,
    /// Input decided by the gate but not released yet, in order: it waits behind `hold`.
    queue: VecDeque<Queued>,
    /// What the head of the input waits for, if anything.
    hold: Option<Hold>,
    reviews: watch::Receiver<u64>,
    /// Connections to the session's local endpoint (postgres targets).
    tunnels: Tunnels,
    /// ssh targets: the gateway's own SSH channel stands where the client's tool would be.
    remote: Option<super::ssh::Remote>,
    /// The session is ending: nothing more goes to the tool.
    ending: bool,
    /// An approved line review brought with `--review`, not used yet.
    line_review: Option<String>,
    /// Input acknowledgements held while the remote has not taken its input.
    acks_held: usize,
}

/// Input queued behind a held line.
enum Queued {
    Act(GateAction),
    /// The caller's stdin ended.
    Eof,
    /// Acknowledges one input frame: sent once its input is handled, so a caller whose
    /// input waits for a review stops sending (the window fills) instead of queueing here.
    Ack,
}

enum Hold {
    /// PTY: an Enter waits for the echo of its line.
    Echo {
        typed: Bytes,
        enter: Bytes,
        review: Option<String>,
        since: Instant,
    },
    /// PTY: a denial's notice waits for the tool's answer to the erase (its echo), so the
    /// notice lands below what the tool drew and the client can draw the tool's line
    /// (its prompt) again under it.
    Notice { notice: Notice, since: Instant },
    /// A line waits for its review.
    Review {
        review: Box<ReviewInfo>,
        /// What to release once it is approved: the line (pipe) or its Enter (PTY).
        release: Bytes,
        /// What to release if it is not: nothing (pipe) or an erase (PTY).
        instead: Bytes,
        next_look: Instant,
    },
}

/// What the session's tunnel channels speak, for a target that has a local endpoint.
fn relay_for(
    gw: &Arc<Gateway>,
    pending: &Pending,
    masker: &crate::policy::Masker,
) -> Option<Relay> {
    let t = gw
        .policy
        .targets
        .iter()
        .find(|t| t.name == pending.target)?;
    match t.kind {
        crate::policy::TargetKind::Postgres => Some(Relay::Postgres(Arc::new(SessionCtx {
            gw: gw.clone(),
            target: t.clone(),
            session_id: pending.id.clone(),
            identity: pending.identity.clone(),
            masker: masker.clone(),
            columns: crate::policy::columns::Columns::for_target(&gw.policy.columns, &t.name),
            local_password: pending.local_password.clone(),
            cancels: Default::default(),
            approval: std::sync::Mutex::new(pending.statement_review.clone()),
        }))),
        crate::policy::TargetKind::Kubernetes => {
            let local_tls = pending.local_tls.clone()?;
            let upstream = match super::kube::Upstream::new(t) {
                Ok(u) => u,
                Err(e) => {
                    tracing::warn!(session = %pending.id, error = %e, "kubernetes upstream");
                    return None;
                }
            };
            Some(Relay::Kubernetes(Arc::new(super::kube::KubeCtx {
                gw: gw.clone(),
                target: t.clone(),
                session_id: pending.id.clone(),
                identity: pending.identity.clone(),
                masker: masker.clone(),
                local_token: pending.local_password.clone(),
                local_tls,
                approval: std::sync::Mutex::new(pending.statement_review.clone()),
                upstream,
            })))
        }
        crate::policy::TargetKind::Ssh => {
            let user = pending.sftp_user.clone()?;
            Some(Relay::Sftp(Arc::new(super::sftp::SftpCtx {
                gw: gw.clone(),
                target: t.clone(),
                user,
            })))
        }
        _ => None,
    }
}

pub(crate) async fn run(gw: Arc<Gateway>, pending: Pending, mut socket: WebSocket) {
    let _running = gw.session_running();
    let rec = Recorder::new(&gw, &pending, &pending.argv, pending.started_at);
    let masker = gw.policy.masker(&pending.target);
    let tunnels = Tunnels::new(relay_for(&gw, &pending, &masker));
    let mut s = Session {
        tunnels,
        remote: None,
        ending: false,
        line_review: pending.line_review.clone(),
        acks_held: 0,
        id: pending.id.clone(),
        identity: pending.identity.clone(),
        view: (pending.mode == Mode::Pty)
            .then(|| LineView::new(pending.cols.unwrap_or(80), pending.rows.unwrap_or(24))),
        last_output: Instant::now(),
        echo_due: false,
        delivers_unsent: 0,
        last_sent: Instant::now(),
        queue: VecDeque::new(),
        hold: None,
        reviews: gw.review_updates(),
        stdout: Masked::new(masker.stream()),
        stderr: Masked::new(masker.stream()),
        input: Masked::new(masker.input_stream()),
        holdback: match pending.mode {
            Mode::Pty => Holdback::PTY,
            Mode::Pipe => Holdback::PIPE,
        },
        masker,
        gate: InputGate::new(pending.mode),
        target: pending.target.clone(),
        gw: gw.clone(),
        rec,
        outbox: VecDeque::new(),
        bytes_metrics: gw.metrics.bytes_of(&pending.target),
        tunnel_out: VecDeque::new(),
        expires_at: pending.expires_at,
        grace: gw
            .policy
            .auth
            .as_ref()
            .map_or(Duration::from_secs(60), |a| a.expiry_grace),
    };
    if let (Some(c), Some(r)) = (pending.cols, pending.rows) {
        s.rec
            .push(EventKind::Resize, format!("{c}x{r}").into_bytes());
    }
    if let Some(r) = &pending.approval {
        // The command ran because of this approval: who decided what, when and why.
        s.rec.marker(json!({"approved": r.record()}));
        s.rec.stats.approvals.push(r.record());
    }
    // The session only starts once its first events and the store are known to work:
    // a session never runs unrecorded.
    let ready = match gw.store.set_status(&pending.id, "running").await {
        Err(e) => Err(e.to_string()),
        Ok(()) => match s.rec.flush_signed(false, true).await {
            Err(e) => Err(e),
            Ok(()) => s.wait_stored().await,
        },
    };
    let end = match ready {
        Err(e) => {
            tracing::error!(session = %pending.id, error = %e, "session could not start");
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
        Ok(()) => match s.open_remote(&gw, &pending, &mut socket).await {
            Err(end) => end,
            Ok(()) => match send(&mut socket, ServerFrame::Ready).await {
                Err(_) => End::Aborted("client left before the session started".into()),
                Ok(()) => s.relay(&mut socket).await,
            },
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

fn lost(e: axum::Error) -> End {
    End::Aborted(format!("client connection failed while sending: {e}"))
}

impl Session {
    /// ssh targets: opens the gateway's SSH channel before the session starts; a host that
    /// cannot be reached or shows the wrong key ends the session, told to the client.
    async fn open_remote(
        &mut self,
        gw: &Gateway,
        pending: &Pending,
        socket: &mut WebSocket,
    ) -> Result<(), End> {
        let Some(spec) = &pending.remote else {
            return Ok(());
        };
        let Some(target) = gw.policy.targets.iter().find(|t| t.name == pending.target) else {
            return Err(fail(socket, "internal", "the target is gone".into()).await);
        };
        match super::ssh::open(target, spec).await {
            Ok(r) => {
                self.rec.marker(json!({"ssh": {
                    "user": spec.user,
                    "command": spec.command.as_ref().map(|c| String::from_utf8_lossy(&self.masker.mask(c.as_bytes()).0).into_owned()),
                    "pty": spec.pty.is_some(),
                }}));
                self.remote = Some(r);
                Ok(())
            }
            Err(e) => {
                let message = e.to_string();
                tracing::info!(
                    target: "hoopx::access",
                    session = %self.id,
                    error = %message,
                    "ssh connection failed"
                );
                Err(fail(socket, e.code(), message).await)
            }
        }
    }

    /// Queues an answer to leave once everything recorded so far is stored.
    fn answer(&mut self, frame: ServerFrame) {
        if matches!(frame, ServerFrame::Deliver(_)) {
            self.delivers_unsent += 1;
        }
        let arrived = match frame {
            ServerFrame::Output { .. } => Some(self.last_output),
            _ => None,
        };
        self.outbox.push_back((self.rec.seq, frame, arrived));
    }

    /// Sends the answers whose events are stored.
    async fn pump(&mut self, socket: &mut WebSocket) -> Result<(), End> {
        while let Some(frame) = self.tunnel_out.pop_front() {
            send(socket, frame).await.map_err(lost)?;
        }
        let stored = self.rec.stored();
        while self
            .outbox
            .front()
            .is_some_and(|(need, _, _)| *need <= stored)
        {
            if let Some((_, frame, arrived)) = self.outbox.pop_front() {
                if let Some(at) = arrived {
                    self.gw.metrics.relayed(at.elapsed());
                }
                let deliver = matches!(frame, ServerFrame::Deliver(_));
                match (&self.remote, frame) {
                    // A remote terminal: released input goes to the SSH channel.
                    (Some(r), ServerFrame::Deliver(d)) => r.write(d),
                    (Some(r), ServerFrame::DeliverEof) => r.eof(),
                    (Some(r), ServerFrame::InputAck) if r.backlogged() => self.acks_held += 1,
                    (_, frame) => send(socket, frame).await.map_err(lost)?,
                }
                if deliver {
                    // From now on the tool can echo these keys.
                    self.delivers_unsent = self.delivers_unsent.saturating_sub(1);
                    self.last_sent = Instant::now();
                    self.echo_due = self.view.is_some();
                }
            }
        }
        Ok(())
    }

    /// Waits until the store holds every event handed to the writer.
    async fn wait_stored(&mut self) -> Result<(), String> {
        let handed = self.rec.handed;
        if self.rec.stored.wait_for(|n| *n >= handed).await.is_err() {
            return Err(self.rec.writer_error().await);
        }
        Ok(())
    }

    async fn relay(&mut self, socket: &mut WebSocket) -> End {
        let mut tick = tokio::time::interval(FLUSH_EVERY);
        let mut stopping = self.gw.stopping();
        let mut last_heard = Instant::now();
        loop {
            if let Err(end) = self.pump(socket).await {
                return end;
            }
            // Group commit: while the writer is busy, events gather into the next batch;
            // once it is idle, whatever an answer waits for is written at once.
            let waiting = !self.outbox.is_empty() && !self.rec.buf.is_empty();
            if (waiting && self.rec.writer_idle()) || self.rec.full() {
                if let Err(e) = self.rec.flush(false).await {
                    return fail(
                        socket,
                        "internal",
                        format!("cannot record the session: {e}"),
                    )
                    .await;
                }
            }
            let writing = !self.rec.writer_idle();
            let release_at = self
                .release_due()
                .map(|(t, _)| tokio::time::Instant::from_std(t));
            let hold_at = self.hold_deadline().map(tokio::time::Instant::from_std);
            let waiting_review = matches!(self.hold, Some(Hold::Review { .. }));
            let drained = self.remote.as_ref().map(|r| r.drained.clone());
            let msg = tokio::select! {
                m = socket.recv() => m,
                _ = async { drop(stopping.wait_for(|s| *s).await) } => {
                    // An operator's stop, not a failure: recorded as such.
                    let _ = fail(socket, "internal", "the gateway is shutting down".into()).await;
                    return End::Aborted("the gateway was shutting down (stopped by its operator)".into());
                }
                changed = self.rec.stored.changed(), if writing => {
                    if changed.is_err() {
                        let e = self.rec.writer_error().await;
                        return fail(socket, "internal", format!("cannot record the session: {e}")).await;
                    }
                    continue;
                }
                _ = async { tokio::time::sleep_until(release_at.unwrap_or_else(tokio::time::Instant::now)).await }, if release_at.is_some() => {
                    self.release_quiet(Instant::now());
                    continue;
                }
                _ = async { tokio::time::sleep_until(hold_at.unwrap_or_else(tokio::time::Instant::now)).await }, if hold_at.is_some() => {
                    if let Err(e) = self.advance(true).await {
                        return fail(socket, "internal", format!("cannot decide a held line: {e}")).await;
                    }
                    continue;
                }
                ev = self.tunnels.events.recv() => {
                    if let Some(ev) = ev {
                        self.channel_event(ev);
                    }
                    continue;
                }
                ev = remote_event(&mut self.remote), if self.outbox.len() < REMOTE_OUTBOX => {
                    match ev {
                        Some(super::ssh::FromRemote::Data(stream, data)) => self.output(stream, data),
                        ev => {
                            let (code, signal) = match ev {
                                Some(super::ssh::FromRemote::Exit { code, signal }) => (code, signal),
                                _ => (255, None),
                            };
                            self.remote = None;
                            self.release_held();
                            self.answer(ServerFrame::Exited { code, signal });
                            return End::Exited { code, signal };
                        }
                    }
                    continue;
                }
                _ = remote_drained(drained.as_deref()), if self.acks_held > 0 => {
                    if self.remote.as_ref().is_some_and(|r| !r.backlogged()) {
                        for _ in 0..std::mem::take(&mut self.acks_held) {
                            self.tunnel_out.push_back(ServerFrame::InputAck);
                        }
                    }
                    continue;
                }
                _ = self.reviews.changed(), if waiting_review => {
                    if let Err(e) = self.advance(true).await {
                        return fail(socket, "internal", format!("cannot decide a held line: {e}")).await;
                    }
                    continue;
                }
                _ = tick.tick() => {
                    if let Err(e) = self.rec.flush(false).await {
                        return fail(socket, "internal", format!("cannot record the session: {e}")).await;
                    }
                    if last_heard.elapsed() > IDLE_LIMIT {
                        return End::Aborted(format!("client silent for {} s", IDLE_LIMIT.as_secs()));
                    }
                    if let Some(why) = self.identity_lapsed() {
                        return fail(socket, "auth", why).await;
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
                Ok(ClientFrame::Token(t)) => {
                    self.renew(&t).await;
                    continue;
                }
                Ok(f) => f,
                Err(e) => return fail(socket, "protocol", e.to_string()).await,
            };
            match self.handle(frame) {
                Ok(None) => {}
                Ok(Some(end)) => return end,
                Err((code, message)) => return fail(socket, code, message).await,
            }
            if let Err(e) = self.advance(false).await {
                return fail(
                    socket,
                    "internal",
                    format!("cannot decide a held line: {e}"),
                )
                .await;
            }
        }
    }

    /// Why the session must end now: its token expired more than the grace ago.
    fn identity_lapsed(&self) -> Option<String> {
        let exp = self.expires_at?;
        let now = chrono::Utc::now().timestamp();
        let grace = i64::try_from(self.grace.as_secs()).unwrap_or(i64::MAX / 2);
        (now > exp.saturating_add(grace)).then(|| {
            format!(
                "identity expired: the token of {} expired at {} and no fresh token came within the {} s grace",
                self.identity.subject,
                chrono::DateTime::from_timestamp(exp, 0)
                    .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
                    .unwrap_or_else(|| exp.to_string()),
                self.grace.as_secs()
            )
        })
    }

    /// A fresh token from the client: checked like any bearer token, for the same identity
    /// and still admitted to the target. Accepted, it moves the session's expiry; refused,
    /// the old expiry stands and the client is told why. Either way the recording says so
    /// (never the token).
    async fn renew(&mut self, token: &crate::auth::Secret) {
        let verified = self.gw.auth.verify(Some(token.expose())).await;
        let target = self
            .gw
            .policy
            .targets
            .iter()
            .find(|t| t.name == self.target);
        let refused = match &verified {
            Err(e) => Some(e.to_string()),
            Ok(v) if v.identity.subject != self.identity.subject => Some(format!(
                "the fresh token is for {}, not {}",
                v.identity.subject, self.identity.subject
            )),
            Ok(v) if target.is_some_and(|t| !t.admits(&v.identity.groups)) => Some(format!(
                "{} is no longer in a group target {:?} is open to",
                v.identity.subject, self.target
            )),
            Ok(_) => None,
        };
        match (refused, verified) {
            (None, Ok(v)) => {
                self.expires_at = v.expires_at;
                self.rec
                    .marker(json!({ "token_renewed": { "expires_at": v.expires_at } }));
            }
            (why, _) => {
                let why = why.unwrap_or_default();
                self.rec.marker(json!({ "token_refused": why }));
                let message = format!(
                    "the gateway did not accept the renewed token: {why}; the session ends when the current one lapses"
                );
                self.answer(ServerFrame::Notice(Notice {
                    kind: "token".into(),
                    rule: None,
                    message,
                    review_id: None,
                }));
            }
        }
    }

    /// Handles one frame; `Ok(Some)` ends the session normally, `Err` is a stream error.
    fn handle(&mut self, frame: ClientFrame) -> Result<Option<End>, (&'static str, String)> {
        match frame {
            ClientFrame::Input(data) => {
                let policy = self.gw.policy.clone();
                let target = self.target.clone();
                let check = |line: &[u8]| to_check(policy.check(&target, line));
                match self.gate.feed(&data, check) {
                    Ok(actions) => self.queue.extend(actions.into_iter().map(Queued::Act)),
                    Err(e) => return Err(("policy", e.to_string())),
                }
                let queued = self.queued_bytes();
                if queued > QUEUE_HARD {
                    return Err((
                        "protocol",
                        format!("more than {QUEUE_HARD} bytes of input sent past the acknowledgement window"),
                    ));
                }
                if self.hold.is_some() && queued <= QUEUE_SOFT {
                    // A line waits (for its echo or a review): what is typed meanwhile queues
                    // behind it, acknowledged at once up to a bound, so the caller can still
                    // type (Ctrl-C gives up on a waiting line) without filling memory.
                    self.answer(ServerFrame::InputAck);
                } else {
                    self.queue.push_back(Queued::Ack);
                }
            }
            ClientFrame::InputEof => {
                let policy = self.gw.policy.clone();
                let target = self.target.clone();
                let check = |line: &[u8]| to_check(policy.check(&target, line));
                let actions = self.gate.finish(check);
                self.queue.extend(actions.into_iter().map(Queued::Act));
                self.queue.push_back(Queued::Eof);
                self.queue.push_back(Queued::Ack);
            }
            ClientFrame::Output { .. } | ClientFrame::Exit { .. } if self.remote.is_some() => {
                // The remote channel's output and exit are the gateway's own to record.
                return Err((
                    "protocol",
                    "a remote-terminal session takes no output or exit from the client".into(),
                ));
            }
            ClientFrame::Output { stream, data } => self.output(stream, data),
            ClientFrame::Resize { cols, rows } => {
                if let Some(v) = &mut self.view {
                    v.resize(cols, rows);
                }
                if let Some(r) = &self.remote {
                    r.resize(cols, rows);
                }
                self.rec
                    .push(EventKind::Resize, format!("{cols}x{rows}").into_bytes());
            }
            ClientFrame::Exit { code, signal } => {
                return Ok(Some(End::Exited { code, signal }));
            }
            // Handled in the relay: checking a token needs the authenticator.
            ClientFrame::Token(_) => {}
            ClientFrame::Signal(n) => {
                if let Some(name) = self.remote.as_ref().and_then(|r| r.signal(n)) {
                    self.rec.marker(json!({ "signal": name }));
                }
            }
            f @ (ClientFrame::TunnelOpen { .. }
            | ClientFrame::TunnelData { .. }
            | ClientFrame::TunnelAck { .. }
            | ClientFrame::TunnelClose { .. }) => {
                self.tunnels.frame(f).map_err(|e| ("protocol", e))?;
            }
        }
        Ok(None)
    }

    /// The tool's (or the remote channel's) output: masked, recorded, and answered.
    fn output(&mut self, stream: Stream, data: Bytes) {
        self.last_output = Instant::now();
        self.bytes_metrics.1.inc_by(data.len() as u64);
        self.echo_due = false;
        if let Some(v) = &mut self.view {
            v.output(&data);
        }
        let (masked, counts) = match stream {
            Stream::Stdout => self.stdout.push(&data, self.last_output),
            Stream::Stderr => self.stderr.push(&data, self.last_output),
        };
        self.record_output(stream, &masked, counts);
        // Masking can grow a chunk past the frame limit: answer in parts.
        let mut rest = masked;
        loop {
            let part = rest.split_to(rest.len().min(MAX_DATA));
            let more = !rest.is_empty();
            self.answer(ServerFrame::Output {
                stream,
                data: part,
                more,
            });
            if !more {
                break;
            }
        }
    }

    /// What a tunnel channel hands the session: data and acknowledgements for the client,
    /// and statements, markers and notices to record and tell (notices through the outbox:
    /// after what they report is stored).
    fn channel_event(&mut self, ev: FromChannel) {
        match ev {
            FromChannel::Data(ch, data) => self
                .tunnel_out
                .push_back(ServerFrame::TunnelData { ch, data }),
            FromChannel::Ack(ch, n) => {
                self.tunnels.taken(ch, n);
                self.tunnel_out.push_back(ServerFrame::TunnelAck { ch, n });
            }
            FromChannel::Closed(ch) => {
                self.tunnels.closed(ch);
                self.tunnel_out.push_back(ServerFrame::TunnelClose { ch });
            }
            FromChannel::Statement(v) => self.rec.marker(json!({ "statement": v })),
            FromChannel::Marker(v) => self.rec.marker(v),
            FromChannel::Masks(counts) => self.count_masks(counts),
            FromChannel::Notice(n) => {
                if n.kind == "denied" {
                    self.rec.stats.denials += 1;
                    self.gw
                        .metrics
                        .denied(n.rule.as_deref().unwrap_or("unnamed"));
                }
                self.answer(ServerFrame::Notice(n));
            }
        }
    }

    /// The earliest release a masker's holdback is due for.
    fn release_due(&self) -> Option<(Instant, Release)> {
        [&self.stdout, &self.stderr, &self.input]
            .into_iter()
            .filter_map(|m| m.due(&self.holdback))
            .min_by_key(|(t, _)| *t)
    }

    /// Lets go of the held tails that have been quiet long enough (see
    /// [`crate::policy::mask::timing`]).
    fn release_quiet(&mut self, now: Instant) {
        for stream in [Stream::Stdout, Stream::Stderr] {
            let m = match stream {
                Stream::Stdout => &mut self.stdout,
                Stream::Stderr => &mut self.stderr,
            };
            if let Some((at, how)) = m.due(&self.holdback) {
                if at <= now {
                    let (data, counts) = m.release(how);
                    self.released(stream, data, counts);
                }
            }
        }
        if let Some((at, how)) = self.input.due(&self.holdback) {
            if at <= now {
                let (data, counts) = self.input.release(how);
                self.record_input(data, counts);
            }
        }
    }

    /// The session ends: whatever the maskers hold is decided now.
    fn release_held(&mut self) {
        for stream in [Stream::Stdout, Stream::Stderr] {
            let (data, counts) = match stream {
                Stream::Stdout => self.stdout.flush(),
                Stream::Stderr => self.stderr.flush(),
            };
            self.released(stream, data, counts);
        }
        let (data, counts) = self.input.flush();
        self.record_input(data, counts);
    }

    /// Output a masker let go of: recorded, then sent as `Released` frames once stored.
    fn released(&mut self, stream: Stream, data: Bytes, counts: BTreeMap<String, u64>) {
        if data.is_empty() {
            return;
        }
        self.record_output(stream, &data, counts);
        let mut rest = data;
        while !rest.is_empty() {
            let part = rest.split_to(rest.len().min(MAX_DATA));
            self.answer(ServerFrame::Released { stream, data: part });
        }
    }

    fn record_input(&mut self, masked: Bytes, counts: BTreeMap<String, u64>) {
        if !masked.is_empty() {
            self.rec.push(EventKind::Input, masked.to_vec());
        }
        self.count_masks(counts);
    }

    fn record_output(&mut self, stream: Stream, masked: &[u8], counts: BTreeMap<String, u64>) {
        if masked.is_empty() {
            return;
        }
        let kind = match stream {
            Stream::Stdout => EventKind::Output,
            Stream::Stderr => EventKind::Stderr,
        };
        self.rec.stats.bytes_out += masked.len() as i64;
        self.rec.push(kind, masked.to_vec());
        self.count_masks(counts);
    }

    /// Adds to the session's mask counts and leaves a marker saying what was just masked:
    /// rule names and counts, never values.
    fn count_masks(&mut self, counts: BTreeMap<String, u64>) {
        if counts.is_empty() {
            return;
        }
        for (rule, n) in &counts {
            self.gw.metrics.masked(rule, *n);
            *self.rec.stats.masks.entry(rule.clone()).or_default() += n;
        }
        self.rec.marker(json!({ "masked": counts }));
    }

    /// Bytes of input waiting in the queue.
    fn queued_bytes(&self) -> usize {
        self.queue
            .iter()
            .map(|q| match q {
                Queued::Act(GateAction::Deliver(d)) => d.len(),
                Queued::Act(GateAction::Denied { line, .. } | GateAction::Review { line, .. }) => {
                    line.len()
                }
                Queued::Act(GateAction::Submit { line, enter, .. }) => line.len() + enter.len(),
                Queued::Eof | Queued::Ack => 0,
            })
            .sum()
    }

    /// When the held line must be looked at again, if one is held.
    fn hold_deadline(&self) -> Option<Instant> {
        match &self.hold {
            None => None,
            Some(Hold::Echo { since, .. }) => {
                if self.delivers_unsent > 0 {
                    // Keys still wait for the store: look again shortly.
                    return Some(Instant::now() + Duration::from_millis(10));
                }
                let start = self.last_sent.max(*since);
                let latest = (start + ECHO_MAX).min(*since + ECHO_ABSOLUTE);
                if self.echo_due {
                    Some(latest)
                } else {
                    Some((self.last_output.max(start) + ECHO_QUIET).min(latest))
                }
            }
            Some(Hold::Review { next_look, .. }) => Some(*next_look),
            Some(Hold::Notice { since, .. }) => {
                if self.delivers_unsent > 0 {
                    return Some(Instant::now() + Duration::from_millis(10));
                }
                let start = self.last_sent.max(*since);
                Some((self.last_output.max(start) + ECHO_QUIET).min(start + ECHO_MAX))
            }
        }
    }

    /// Moves queued input along: releases what may go, and stops at a held line until it
    /// is decided. `woken`: a hold's timer fired or a review changed.
    async fn advance(&mut self, woken: bool) -> Result<(), String> {
        loop {
            match self.hold.take() {
                None => {}
                Some(Hold::Notice { notice, since }) => {
                    let now = Instant::now();
                    let start = self.last_sent.max(since);
                    let sent = self.delivers_unsent == 0;
                    let quiet =
                        sent && !self.echo_due && now >= self.last_output.max(start) + ECHO_QUIET;
                    if !(quiet || sent && now >= start + ECHO_MAX) {
                        self.hold = Some(Hold::Notice { notice, since });
                        return Ok(());
                    }
                    self.answer(ServerFrame::Notice(notice));
                    continue;
                }
                Some(Hold::Echo {
                    typed,
                    enter,
                    review,
                    since,
                }) => {
                    let now = Instant::now();
                    let start = self.last_sent.max(since);
                    let sent = self.delivers_unsent == 0;
                    let echoed =
                        sent && !self.echo_due && now >= self.last_output.max(start) + ECHO_QUIET;
                    let timed_out =
                        (sent && now >= start + ECHO_MAX) || now >= since + ECHO_ABSOLUTE;
                    if !echoed && !timed_out {
                        self.hold = Some(Hold::Echo {
                            typed,
                            enter,
                            review,
                            since,
                        });
                        return Ok(());
                    }
                    // No echo at all: the screen cannot say what the line is.
                    let unverified = !echoed && (self.echo_due || !sent);
                    self.submit(typed, enter, review, unverified).await?;
                    continue;
                }
                Some(Hold::Review {
                    review: r,
                    release,
                    instead,
                    next_look,
                }) => {
                    // PTY: Ctrl-C typed while the line waits gives up on it (the review is
                    // withdrawn, the line erased, and the Ctrl-C goes to the tool).
                    let cancelled = self.view.is_some()
                        && self.queue.iter().any(|q| {
                            matches!(q, Queued::Act(GateAction::Deliver(d)) if d.contains(&0x03))
                        });
                    if cancelled {
                        self.hold = Some(Hold::Review {
                            review: r,
                            release,
                            instead,
                            next_look,
                        });
                        self.withdraw_review("cancelled with Ctrl-C by the requester")
                            .await;
                        continue;
                    }
                    // Looked at when its timer fires or a review changed, not on every frame.
                    if !woken {
                        self.hold = Some(Hold::Review {
                            review: r,
                            release,
                            instead,
                            next_look,
                        });
                        return Ok(());
                    }
                    self.look_at_review(r, release, instead).await?;
                    if self.hold.is_some() {
                        return Ok(());
                    }
                    continue;
                }
            }
            let Some(q) = self.queue.pop_front() else {
                return Ok(());
            };
            match q {
                Queued::Ack => self.answer(ServerFrame::InputAck),
                Queued::Eof => self.answer(ServerFrame::DeliverEof),
                Queued::Act(GateAction::Deliver(d)) => {
                    if let Some(v) = &mut self.view {
                        if d.contains(&0x03) {
                            // Ctrl-C: the tool drops the line and prompts again.
                            v.reset();
                        } else if !d.is_empty() {
                            v.keystroke();
                        }
                    }
                    self.deliver(d);
                }
                Queued::Act(GateAction::Denied { rule, line }) => {
                    if let Some(v) = &mut self.view {
                        v.reset();
                    }
                    self.deny(&rule, &line, None);
                }
                Queued::Act(GateAction::Review { rule, line }) => {
                    self.ask(&rule, line.clone(), line, Bytes::new()).await?;
                }
                Queued::Act(GateAction::Submit {
                    line,
                    enter,
                    review,
                    certain: true,
                }) => {
                    // Typed with keys the gate follows: its copy is the line; the screen is
                    // read as it is, without waiting.
                    self.submit(line, enter, review, false).await?;
                }
                Queued::Act(GateAction::Submit {
                    line,
                    enter,
                    review,
                    certain: false,
                }) => {
                    self.hold = Some(Hold::Echo {
                        typed: line,
                        enter,
                        review,
                        since: Instant::now(),
                    });
                }
            }
        }
    }

    /// A PTY Enter (whose echo is in, for a line the gate could not follow): the line on the
    /// screen is checked as well as the typed one, and the Enter goes out, or an erase
    /// instead, or the line waits for review. `unverified`: the echo never came.
    async fn submit(
        &mut self,
        typed: Bytes,
        enter: Bytes,
        review: Option<String>,
        unverified: bool,
    ) -> Result<(), String> {
        // The tool switched character sets or insert mode while the line was typed: the
        // screen may not show what it holds.
        let suspect = self.view.as_ref().is_some_and(LineView::suspect);
        let screen = self.view.as_mut().map(LineView::submit).unwrap_or_default();
        let policy = self.gw.policy.clone();
        if suspect && policy.guards(&self.target) {
            self.deliver(Bytes::from_static(ERASE_LINE));
            let line = if screen.trim().is_empty() {
                typed.to_vec()
            } else {
                screen.into_bytes()
            };
            self.deny("pty-terminal-switch", &line, None);
            return Ok(());
        }
        if unverified && policy.guards(&self.target) {
            // Fail closed: the tool's line is unknown and there are rules to apply to it.
            self.deliver(Bytes::from_static(ERASE_LINE));
            self.deny(
                "pty-unverified-line",
                if screen.trim().is_empty() {
                    &typed
                } else {
                    screen.as_bytes()
                },
                None,
            );
            return Ok(());
        }
        let on_screen = policy.check(&self.target, screen.as_bytes());
        let shown = if screen.trim().is_empty() {
            typed.clone()
        } else {
            Bytes::from(screen.into_bytes())
        };
        match (on_screen, review) {
            (Verdict::Deny(rule), _) => {
                self.deliver(Bytes::from_static(ERASE_LINE));
                let name = rule.name.clone();
                self.deny(&name, &shown, None);
            }
            (Verdict::Review(rule), _) => {
                let name = rule.name.clone();
                self.ask(&name, shown, enter, Bytes::from_static(ERASE_LINE))
                    .await?;
            }
            (Verdict::Allow, Some(rule)) => {
                self.ask(&rule, typed, enter, Bytes::from_static(ERASE_LINE))
                    .await?;
            }
            (Verdict::Allow, None) => self.deliver(enter),
        }
        Ok(())
    }

    /// Opens a review for an input line and holds the input until it is decided.
    async fn ask(
        &mut self,
        rule: &str,
        line: Bytes,
        release: Bytes,
        instead: Bytes,
    ) -> Result<(), String> {
        let policy = self.gw.policy.clone();
        let Some(rule) = policy.review.iter().find(|r| r.name == rule) else {
            return Err(format!("review rule {rule:?} is gone"));
        };
        if line.len() > MAX_REVIEW_LINE {
            // A reviewer must be able to read all of what they approve.
            if !instead.is_empty() {
                self.deliver(instead);
            }
            let name = format!("{}:too-long-to-review", rule.name);
            self.deny(&name, &line, None);
            return Ok(());
        }
        let (masked, _) = self.masker.mask(&line);
        // The reviewer sees the whole line (masked); notices and markers quote its start.
        let full = String::from_utf8_lossy(&masked).trim_end().to_string();
        let shown = shorten(&full);
        let exact = line.strip_suffix(b"\n").unwrap_or(&line);
        if let Some(id) = self.line_review.clone() {
            // An approval brought with --review: for exactly this line (of this requester,
            // on this target), it releases the line, once; for another line it is kept.
            let hash = review::command_hash(
                &self.gw.review_key,
                &self.identity.subject,
                &self.target,
                "line",
                exact,
            );
            if let Ok(r) = self
                .gw
                .use_review(&id, &self.identity.subject, &hash, &self.id)
                .await
            {
                self.line_review = None;
                self.rec.marker(json!({"approved": r.record()}));
                self.rec.stats.approvals.push(r.record());
                let by = r.approvers().join(", ");
                self.answer(ServerFrame::Notice(Notice {
                    kind: "approved".into(),
                    rule: Some(r.rule.clone()),
                    message: format!(
                        "review {} approved by {}: `{}` released",
                        r.id, by, r.command
                    ),
                    review_id: Some(r.id.clone()),
                }));
                self.deliver(release);
                return Ok(());
            }
        }
        let r = self
            .gw
            .ask_review(Ask {
                rule,
                requester: &self.identity,
                target: &self.target,
                kind: "line",
                shown: full,
                exact,
                session_id: Some(self.id.clone()),
            })
            .await
            .map_err(|e| e.to_string())?;
        self.rec.marker(
            json!({"review_requested": {"review_id": r.id, "rule": r.rule, "line": shown}}),
        );
        self.answer(ServerFrame::Notice(Notice {
            kind: "approval_pending".into(),
            rule: Some(r.rule.clone()),
            message: format!(
                "waiting for approval of `{shown}` — review {}, reviewers: {}",
                r.id,
                r.reviewers.join(", ")
            ),
            review_id: Some(r.id.clone()),
        }));
        self.hold = Some(Hold::Review {
            review: Box::new(r),
            release,
            instead,
            next_look: Instant::now() + reviews::POLL,
        });
        Ok(())
    }

    /// Reads a held line's review: still pending, or released, or dropped.
    async fn look_at_review(
        &mut self,
        held: Box<ReviewInfo>,
        release: Bytes,
        instead: Bytes,
    ) -> Result<(), String> {
        let _ = self.reviews.borrow_and_update();
        let r = self
            .gw
            .load_review(&held.id)
            .await
            .map_err(|e| e.to_string())?
            .unwrap_or_else(|| ReviewInfo {
                status: review::REVOKED.into(),
                ..*held
            });
        if r.status == review::PENDING {
            self.hold = Some(Hold::Review {
                review: Box::new(r),
                release,
                instead,
                next_look: Instant::now() + reviews::POLL,
            });
            return Ok(());
        }
        let used = if r.status == review::APPROVED {
            self.gw
                .use_review(&r.id, &r.requester, &r.command_hash, &self.id)
                .await
        } else {
            Err(reviews::ReviewError::NotFound(String::new()))
        };
        match used {
            Ok(r) => {
                self.rec.marker(json!({"approved": r.record()}));
                self.rec.stats.approvals.push(r.record());
                let by = r.approvers().join(", ");
                self.answer(ServerFrame::Notice(Notice {
                    kind: "approved".into(),
                    rule: Some(r.rule.clone()),
                    message: format!(
                        "review {} approved by {}: `{}` released",
                        r.id, by, r.command
                    ),
                    review_id: Some(r.id.clone()),
                }));
                self.deliver(release);
            }
            Err(_) => {
                // Decided meanwhile by someone else, or not approved: the line never runs.
                let r = self
                    .gw
                    .load_review(&r.id)
                    .await
                    .map_err(|e| e.to_string())?
                    .unwrap_or(r);
                self.rec.marker(json!({"not_approved": r.record()}));
                self.rec.stats.approvals.push(r.record());
                if !instead.is_empty() {
                    self.deliver(instead);
                }
                let why = r.decided_by(None);
                let message = format!(
                    "input line not sent: review {} {}{why}: `{}`",
                    r.id, r.status, r.command
                );
                let line = Bytes::from(r.command.clone().into_bytes());
                self.deny(&r.rule, &line, Some((message, r.id.clone())));
            }
        }
        Ok(())
    }

    /// Releases input to the tool: recorded (masked), then delivered once stored.
    fn deliver(&mut self, d: Bytes) {
        if d.is_empty() {
            return;
        }
        // Recorded through the input's masker, so a secret typed key by key is masked
        // like a pasted one; a possible secret's keys are recorded once it is decided.
        let (masked, counts) = self.input.push(&d, Instant::now());
        self.rec.stats.bytes_in += d.len() as i64;
        self.bytes_metrics.0.inc_by(d.len() as u64);
        self.record_input(masked, counts);
        // A released line may be longer than one frame carries.
        for part in d.chunks(MAX_DATA) {
            self.answer(ServerFrame::Deliver(d.slice_ref(part)));
        }
    }

    /// A withheld line: counted, marked in the recording, and the caller told (with the
    /// rule's own `message` when it has one). In PTY mode the notice waits until the tool
    /// has redrawn its erased line.
    fn deny(&mut self, rule: &str, line: &[u8], review: Option<(String, String)>) {
        self.rec.stats.denials += 1;
        self.gw.metrics.denied(rule);
        let (masked, _) = self.masker.mask(line);
        let shown = shorten(String::from_utf8_lossy(&masked).trim_end());
        let (message, review_id) = match review {
            Some((m, id)) => (m, Some(id)),
            None => {
                self.rec.marker(json!({"denied": rule, "line": shown}));
                let why = match rule {
                    crate::policy::gate::SUBMIT_KEY_RULE => " (submitted with a key other than Enter: Ctrl-O, or a key a line editor may bind to accept-line; hoopx cannot check what that runs, so it was not sent — press Enter instead)",
                    "pty-terminal-switch" => " (the tool switched character sets or insert mode while the line was typed, so the screen may not show what it would run; retype it)",
                    _ => "",
                };
                let own = self
                    .gw
                    .policy
                    .deny
                    .iter()
                    .find(|r| r.name == rule)
                    .and_then(|r| r.message.as_deref())
                    .map(|m| format!(" — {m}"))
                    .unwrap_or_default();
                (
                    format!(
                        "input line withheld by deny rule {rule:?}{why}: {}{own}",
                        crate::cli::printable(&shown)
                    ),
                    None,
                )
            }
        };
        let notice = Notice {
            kind: "denied".into(),
            rule: Some(rule.to_string()),
            message,
            review_id,
        };
        if self.view.is_some() && !self.ending && self.hold.is_none() {
            // The tool's line is being erased: the notice goes once the tool has redrawn it.
            // Nothing is typed for the tool to prompt again: a tool that ignored the erase
            // would run what it holds.
            self.hold = Some(Hold::Notice {
                notice,
                since: Instant::now(),
            });
        } else {
            self.answer(ServerFrame::Notice(notice));
        }
    }

    /// The session ends while a line waits for review: the line is not sent, and the review
    /// stays pending, so a reviewer can still approve it and the requester run the same
    /// command with the same input and `--review ID` (the approval releases that line once).
    fn leave_pending(&mut self, r: &ReviewInfo) {
        self.rec
            .marker(json!({"left_pending": {"review_id": r.id, "rule": r.rule}}));
        self.rec.stats.denials += 1;
        self.answer(ServerFrame::Notice(Notice {
            kind: "denied".into(),
            rule: Some(r.rule.clone()),
            message: format!(
                "input line not sent: review {} stays pending: `{}`; once it is approved, run the same command with the same input and --review {}",
                r.id,
                crate::cli::printable(&shorten(&r.command)),
                r.id
            ),
            review_id: Some(r.id.clone()),
        }));
    }

    /// Gives up on the line waiting for review, if one is: the review is withdrawn, the
    /// line dropped (erased in PTY mode) and the caller told. Used when the session ends
    /// (nothing could run the line now) and when the requester presses Ctrl-C.
    async fn withdraw_review(&mut self, why: &str) {
        let Some(Hold::Review {
            review: r, instead, ..
        }) = self.hold.take()
        else {
            return;
        };
        let r = match self
            .gw
            .decide_review(&r.id, None, reviews::Decision::Revoke, Some(why.into()))
            .await
        {
            Ok(r) => r,
            Err(e) => {
                // Decided meanwhile (or the store failed): the line is dropped either way.
                tracing::warn!(
                    session = %self.id,
                    review = %r.id,
                    error = %e,
                    "could not withdraw review"
                );
                *r
            }
        };
        self.rec.marker(json!({"not_approved": r.record()}));
        self.rec.stats.approvals.push(r.record());
        if !instead.is_empty() {
            self.deliver(instead);
        }
        let line = Bytes::from(r.command.clone().into_bytes());
        let message = format!(
            "input line not sent: review {} withdrawn ({why}): `{}`",
            r.id, r.command
        );
        self.deny(&r.rule, &line, Some((message, r.id.clone())));
    }

    async fn finish(&mut self, id: &str, end: End, socket: &mut WebSocket) {
        self.ending = true;
        match self.hold.take() {
            Some(Hold::Notice { notice, .. }) => self.answer(ServerFrame::Notice(notice)),
            Some(Hold::Review { review: r, .. }) => self.leave_pending(&r),
            h => self.hold = h,
        }
        // The tool is done: whatever the maskers held back is decided now.
        self.release_held();
        let stats = &self.rec.stats;
        if !stats.masks.is_empty() {
            let total: u64 = stats.masks.values().sum();
            self.rec
                .marker(json!({"masked_total": total, "by_rule": stats.masks}));
        }
        let denials = self.rec.stats.denials;
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
                    (denials > 0).then(|| format!("{denials} input line(s) denied")),
                )
            }
            End::Aborted(why) => {
                self.rec.marker(json!({"aborted": why}));
                ("aborted", None, Some(why.clone()))
            }
        };
        let ended = SessionEnd {
            status: status.into(),
            ended_at: now_ms(),
            exit_code,
            reason,
        };
        // The last event: the end as the gateway signs it (the store's copy is for listing).
        let facts = closed_facts(&self.gw, &ended, &self.rec.stats);
        self.rec.marker(facts.marker());
        let stored = self.rec.close().await;
        let finished = self
            .gw
            .store
            .finish_session(id, &ended, &self.gw.signer)
            .await
            .map_err(|e| e.to_string());
        let masked: u64 = self.rec.stats.masks.values().sum();
        tracing::info!(
            target: "hoopx::access",
            session = %id,
            status = %status,
            exit = exit_code,
            events = self.rec.seq,
            masked,
            denied = denials,
            "session ended"
        );
        self.gw.metrics.ended(&self.target, status);
        if let Err(e) = stored.as_ref().and(finished.as_ref()) {
            tracing::error!(session = %id, error = %e, "could not record the session's end");
        }
        if matches!(end, End::Exited { .. }) {
            let frame = if let Err(e) = stored.and(finished) {
                ServerFrame::Error(StreamError {
                    code: "internal".into(),
                    message: format!("the session's end could not be recorded: {e}"),
                })
            } else {
                // Everything is stored: what still waits in the outbox may leave.
                for (_, f, _) in std::mem::take(&mut self.outbox) {
                    if send(socket, f).await.is_err() {
                        return;
                    }
                }
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

/// The final facts of a session ending as `end` with `stats`, for its last event.
pub(crate) fn closed_facts(gw: &Gateway, end: &SessionEnd, stats: &SessionStats) -> ClosedFacts {
    ClosedFacts {
        status: end.status.clone(),
        ended_at: end.ended_at,
        exit_code: end.exit_code,
        reason: end.reason.clone(),
        bytes_in: stats.bytes_in,
        bytes_out: stats.bytes_out,
        masks: stats.masks.clone(),
        denials: stats.denials,
        approvals: stats.approvals.clone(),
        gateway: gw.kind().into(),
    }
}

/// Output chunks waiting in the outbox beyond which the remote channel is not read (the
/// SSH window then holds the remote command back).
const REMOTE_OUTBOX: usize = 256;

/// The remote channel's next event; pending forever without one.
async fn remote_event(remote: &mut Option<super::ssh::Remote>) -> Option<super::ssh::FromRemote> {
    match remote {
        Some(r) => r.events.recv().await,
        None => std::future::pending().await,
    }
}

async fn remote_drained(drained: Option<&tokio::sync::Notify>) {
    match drained {
        Some(n) => n.notified().await,
        None => std::future::pending().await,
    }
}

/// The gate's view of a policy verdict.
fn to_check(v: Verdict<'_>) -> Check {
    match v {
        Verdict::Allow => Check::Allow,
        Verdict::Deny(r) => Check::Deny(r.name.clone()),
        Verdict::Review(r) => Check::Review(r.name.clone()),
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
