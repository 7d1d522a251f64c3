//! PostgreSQL at the wire level: one task per tunnelled connection. The client's messages
//! arrive over the session stream; the gateway opens its own connection to the server with
//! the target's credentials, decides on every statement before it is sent (parsed with
//! PostgreSQL's grammar), masks result rows before they are relayed, and logs each statement
//! as the server answered it on the gateway's own connection.
//!
//! The relay is thin I/O around pure parts: framing in [`crate::proto::pgwire`], statement
//! analysis and rules in [`crate::policy::sql`], column masking in [`crate::policy::columns`].
//!
//! Refusing a statement without breaking the protocol: the gateway sends the server, in the
//! statement's place, text that fails to parse and carries a nonce
//! ([`Refusals::stand_in`]). The server answers it in order with an error and aborts the
//! transaction or pipeline exactly as it would for a failing statement; the relay replaces
//! that error with its own (SQLSTATE 42501 and the rule's message).

pub mod upstream;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, Notify, Semaphore};

use super::reviews::{self, Ask};
use super::Gateway;
use crate::auth::{Identity, Secret};
use crate::policy::columns::{ColumnName, ColumnPlan};
use crate::policy::sql;
use crate::policy::{Masker, Target, Verdict};
use crate::proto::frame::{Notice, Via};
use crate::proto::pgwire::{self, Message, Startup};
use crate::proto::ReviewInfo;

/// Bytes a channel may have in flight towards the client before the relay waits for the
/// client's acknowledgements (and so stops reading the server).
pub const WINDOW: usize = 1024 * 1024;
/// Largest piece of a channel's data in one frame.
const CHUNK: usize = 64 * 1024;
/// The client's data is acknowledged once this much was taken (well inside its window,
/// so a sender never waits on an acknowledgement that is not coming).
const ACK_EVERY: usize = 32 * 1024;

/// What the session task hands a channel.
pub(crate) enum ToChannel {
    Data(Bytes),
    /// The client closed its end.
    Close,
}

/// What a channel hands the session task: data for the client, acknowledgements, and
/// what the session records or tells the caller.
pub(crate) enum FromChannel {
    Data(u32, Bytes),
    /// Bytes of the client's data taken by the channel.
    Ack(u32, u32),
    Closed(u32),
    /// A statement event for the recording (JSON under `statement`).
    Statement(serde_json::Value),
    Marker(serde_json::Value),
    Notice(Notice),
    /// Values masked in rows relayed to the client, by rule.
    Masks(std::collections::BTreeMap<String, u64>),
}

/// What every connection of one session shares.
pub(crate) struct SessionCtx {
    pub gw: Arc<Gateway>,
    pub target: Target,
    pub session_id: String,
    pub identity: Identity,
    pub masker: Masker,
    pub columns: crate::policy::columns::Columns,
    /// The password of the loopback TCP endpoint (the Unix socket needs none).
    pub local_password: Option<Secret>,
    /// Cancel keys handed to clients → the connection they cancel.
    pub cancels: Mutex<HashMap<(i32, i32), Arc<CancelEntry>>>,
    /// An approved statement review brought with `--review`, used by the first statement
    /// it is bound to.
    pub approval: Mutex<Option<String>>,
}

/// A connection as its cancel key names it.
pub(crate) struct CancelEntry {
    /// The server's own key for the gateway's connection.
    server: Mutex<Option<(i32, Vec<u8>)>>,
    /// Wakes the connection when it waits for a review (Ctrl-C gives up on it).
    waiting: Notify,
}

/// A statement as the log records it.
#[derive(Debug, Clone)]
struct Run {
    text: String,
    normalized: String,
    kinds: Vec<String>,
    relations: Vec<String>,
    protocol: &'static str,
    started: Instant,
    /// The server answers it within this epoch (a simple query or a Sync-delimited
    /// pipeline).
    epoch: u64,
    review: Option<String>,
}

/// A client statement, analysed: what the log says of it, and the policy's verdict.
struct Decided {
    runs: Vec<Run>,
    verdict: Outcome,
    /// SQL-level `PREPARE`s of the text, kept for the `EXECUTE`s that follow once the text
    /// is sent.
    prepares: Vec<(String, sql::Statement)>,
    /// It changes settings whose names are known only as it runs: the client's next
    /// messages wait for the server's answer (and its ParameterStatus check).
    barrier: bool,
}

enum Outcome {
    Allow,
    Deny {
        rule: String,
        message: String,
    },
    Review {
        rule: String,
    },
    /// It does not parse (or is too large or deep to check): it is not sent.
    Unparsed(&'static str, String),
}

/// Statements the gateway refused, in the order the server answers their stand-ins.
struct Refusals {
    nonce: String,
    next: u64,
    /// Stand-in number → the error the client gets instead of the server's.
    pending: HashMap<u64, Message>,
}

impl Refusals {
    fn new() -> Refusals {
        use rand::RngCore;
        let mut r = [0u8; 8];
        rand::rng().fill_bytes(&mut r);
        Refusals {
            nonce: hex::encode(r),
            next: 0,
            pending: HashMap::new(),
        }
    }

    /// Text that fails to parse on the server, naming this refusal.
    fn stand_in(&mut self, error: Message) -> String {
        let n = self.next;
        self.next += 1;
        self.pending.insert(n, error);
        format!("hoopx_refused_{}_{n}", self.nonce)
    }

    /// The gateway's error for a server error answering a stand-in.
    fn replace(&mut self, body: &[u8]) -> Option<Message> {
        let fields = pgwire::error_fields(body).ok()?;
        let msg = fields.iter().find(|(c, _)| *c == b'M')?;
        let marker = format!("hoopx_refused_{}_", self.nonce);
        let at = msg.1.find(&marker)? + marker.len();
        let n: u64 = msg.1[at..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
            .parse()
            .ok()?;
        self.pending.remove(&n)
    }
}

/// Settings the client may not change: the gateway's parser reads statements as the server
/// does only with client_encoding UTF8 and standard_conforming_strings on (in another
/// encoding or with backslash escapes in plain strings, the same bytes are other
/// statements).
const GUARDED_SETTINGS: &[&str] = &[
    "client_encoding",
    "standard_conforming_strings",
    "backslash_quote",
];

/// The session's connection settings that change what a statement means: an approval is
/// bound to them as well as to the text.
fn binding(params: &[(String, String)], history: &str, text: &str) -> Vec<u8> {
    // Every startup setting (a GUC such as search_path can come as its own key), in order
    // and with duplicates, but the ones that name the client only.
    let mut out = String::new();
    for (k, v) in params {
        if !matches!(k.as_str(), "application_name" | "fallback_application_name") {
            out.push_str(&format!("{k}={v}\0"));
        }
    }
    out.push_str("\0settings:");
    out.push_str(history);
    out.push_str("\0statement:");
    out.push_str(text);
    out.into_bytes()
}

/// Data towards the client, within the channel's window.
struct ToClient {
    ch: u32,
    tx: mpsc::UnboundedSender<FromChannel>,
    window: Arc<Semaphore>,
    pending: BytesMut,
}

impl ToClient {
    fn queue(&mut self, m: &Message) {
        m.encode_into(&mut self.pending);
    }

    fn raw(&mut self, b: &[u8]) {
        self.pending.extend_from_slice(b);
    }

    /// Sends what is queued; waits while the client has a window's worth unacknowledged.
    async fn flush(&mut self) -> Result<(), String> {
        while !self.pending.is_empty() {
            let n = self.pending.len().min(CHUNK);
            let permits = self
                .window
                .acquire_many(n as u32)
                .await
                .map_err(|_| "the session ended".to_string())?;
            permits.forget();
            let data = self.pending.split_to(n).freeze();
            self.tx
                .send(FromChannel::Data(self.ch, data))
                .map_err(|_| "the session ended".to_string())?;
        }
        Ok(())
    }

    fn event(&self, e: FromChannel) {
        let _ = self.tx.send(e);
    }
}

/// Data from the client, as it arrives over the stream.
struct FromClient {
    ch: u32,
    rx: mpsc::UnboundedReceiver<ToChannel>,
    tx: mpsc::UnboundedSender<FromChannel>,
    buf: BytesMut,
    closed: bool,
    /// Bytes taken and not acknowledged yet.
    taken: usize,
    /// Until the client has logged in: by when it must have (a silent connection does not
    /// hold a channel).
    deadline: Option<tokio::time::Instant>,
}

impl FromClient {
    /// Waits for more bytes; false once the client closed.
    async fn fill(&mut self) -> bool {
        if self.closed {
            return false;
        }
        let next = match self.deadline {
            Some(d) => tokio::time::timeout_at(d, self.rx.recv())
                .await
                .unwrap_or_default(),
            None => self.rx.recv().await,
        };
        match next {
            Some(ToChannel::Data(b)) => {
                // Taken: the client may send as much again.
                self.taken += b.len();
                if self.taken >= ACK_EVERY {
                    let _ = self.tx.send(FromChannel::Ack(self.ch, self.taken as u32));
                    self.taken = 0;
                }
                self.buf.extend_from_slice(&b);
                true
            }
            Some(ToChannel::Close) | None => {
                self.closed = true;
                false
            }
        }
    }

    async fn message(&mut self) -> Result<Option<Message>, String> {
        loop {
            if let Some(m) = pgwire::take_message(&mut self.buf, MAX_CLIENT_MESSAGE)
                .map_err(|e| e.to_string())?
            {
                return Ok(Some(m));
            }
            if !self.fill().await {
                return Ok(None);
            }
        }
    }
}

/// Serves one tunnelled connection until either side closes. `window` is the channel's
/// allowance towards the client (the session adds the client's acknowledgements to it).
pub(crate) async fn serve(
    ctx: Arc<SessionCtx>,
    ch: u32,
    via: Via,
    rx: mpsc::UnboundedReceiver<ToChannel>,
    tx: mpsc::UnboundedSender<FromChannel>,
    window: Arc<Semaphore>,
) {
    let mut out = ToClient {
        ch,
        tx: tx.clone(),
        window,
        pending: BytesMut::new(),
    };
    let mut cin = FromClient {
        ch,
        rx,
        tx: tx.clone(),
        buf: BytesMut::new(),
        closed: false,
        taken: 0,
        deadline: Some(tokio::time::Instant::now() + LOGIN_TIMEOUT),
    };
    if let Err(why) = connection(&ctx, ch, via, &mut cin, &mut out).await {
        tracing::info!(
            target: "hoopx::access",
            session = %ctx.session_id,
            connection = ch,
            reason = %why,
            "postgres connection ended"
        );
    }
    let _ = out.flush().await;
    out.event(FromChannel::Closed(ch));
}

/// A FATAL error to the client; the connection ends after it.
async fn fatal(out: &mut ToClient, sqlstate: &str, message: &str) -> Result<(), String> {
    out.queue(&pgwire::error_response("FATAL", sqlstate, message, None));
    out.flush().await
}

/// A client message the relay cannot read: the client is told (FATAL 08P01) before the
/// connection ends, as for a malformed frame. Returns why, for the gateway's log.
async fn malformed(out: &mut ToClient, why: impl std::fmt::Display) -> String {
    let why = why.to_string();
    let _ = fatal(out, "08P01", &format!("hoopx: {why}")).await;
    why
}

async fn connection(
    ctx: &Arc<SessionCtx>,
    ch: u32,
    via: Via,
    cin: &mut FromClient,
    out: &mut ToClient,
) -> Result<(), String> {
    // Startup: TLS and GSS requests are declined (the endpoint is local and private), a
    // cancel request is forwarded, a startup message opens the session.
    let params = loop {
        match pgwire::take_startup(&mut cin.buf) {
            Err(e) => {
                let _ = fatal(out, "08P01", &format!("hoopx: {e}")).await;
                return Err(e.to_string());
            }
            Ok(None) => {
                if !cin.fill().await {
                    return Ok(());
                }
            }
            Ok(Some(Startup::Ssl | Startup::GssEnc)) => {
                out.raw(b"N");
                out.flush().await?;
            }
            Ok(Some(Startup::Cancel { pid, key })) => {
                return cancel(ctx, pid, &key).await;
            }
            Ok(Some(Startup::Params(p))) => break p,
        }
    };
    let params = match startup_params(&ctx.target, &params) {
        Ok(p) => p,
        Err((state, why)) => {
            fatal(out, state, &why).await?;
            return Err(why);
        }
    };
    if via == Via::Tcp {
        // The loopback port is open to every local user: the session's local password.
        out.queue(&pgwire::auth_cleartext());
        out.flush().await?;
        let ok = match cin.message().await? {
            Some(m) if m.tag == b'p' => match (pgwire::password(&m.body), &ctx.local_password) {
                (Ok(given), Some(want)) => constant_eq(given.as_bytes(), want.expose().as_bytes()),
                _ => false,
            },
            _ => false,
        };
        if !ok {
            fatal(
                out,
                "28P01",
                "hoopx: password authentication failed: the session's local endpoint takes the PGPASSWORD hoopx gave the tool",
            )
            .await?;
            return Err("wrong local password on the TCP endpoint".into());
        }
    }
    cin.deadline = None;
    let mut up = match upstream::connect(&ctx.target, &params).await {
        Ok(u) => u,
        Err(e) => {
            let why = format!(
                "hoopx: the gateway could not connect to target {:?}: {e}",
                ctx.target.name
            );
            out.event(FromChannel::Marker(
                json!({"pg_connect_failed": {"conn": ch, "error": e.to_string()}}),
            ));
            fatal(out, "08006", &why).await?;
            return Err(why);
        }
    };
    // The client gets a cancel key of the gateway's: the server's own never leaves it.
    let entry = Arc::new(CancelEntry {
        server: Mutex::new(up.key.clone()),
        waiting: Notify::new(),
    });
    let fake = {
        use rand::Rng;
        let mut rng = rand::rng();
        (rng.random_range(1..i32::MAX), rng.random::<i32>())
    };
    lock(&ctx.cancels).insert(fake, entry.clone());
    out.queue(&pgwire::auth_ok());
    for m in std::mem::take(&mut up.greeting) {
        out.queue(&m);
    }
    // BackendKeyData goes before ReadyForQuery, which ends the greeting.
    let z = out.pending.split_off(out.pending.len() - 6);
    out.queue(&pgwire::backend_key(fake.0, fake.1));
    out.pending.extend_from_slice(&z);
    out.flush().await?;
    out.event(FromChannel::Marker(json!({"pg_connected": {
        "conn": ch,
        "via": if via == Via::Tcp { "tcp" } else { "unix" },
        "database": param(&params, "database"),
        "user": param(&params, "user"),
        "application_name": param(&params, "application_name"),
    }})));
    let mut relay = Relay {
        ctx: ctx.clone(),
        ch,
        params,
        entry,
        refusals: Refusals::new(),
        runs: VecDeque::new(),
        epochs: VecDeque::new(),
        client_epoch: 0,
        open_extended: false,
        statements: HashMap::new(),
        portals: HashMap::new(),
        plan: None,
        names: HashMap::new(),
        prepared: HashMap::new(),
        set_history: String::new(),
        barrier: None,
        barrier_at_sync: false,
        catalog: None,
        wr: None,
        batch: BytesMut::new(),
        masks: Default::default(),
        copy_out: false,
    };
    let result = relay.run(cin, out, up).await;
    lock(&ctx.cancels).remove(&fake);
    if let Some(mut c) = relay.catalog.take() {
        let _ = c.io.shutdown().await;
    }
    result
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn param<'a>(params: &'a [(String, String)], k: &str) -> Option<&'a str> {
    params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
}

fn constant_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The startup parameters the gateway logs in with: the target's user and database (a
/// client may name them too, but not others), the client's other settings as they are.
/// Replication connections are refused: the gateway does not check what they carry.
fn startup_params(
    target: &Target,
    params: &[(String, String)],
) -> Result<Vec<(String, String)>, (&'static str, String)> {
    let a = &target.access;
    let mut out = Vec::new();
    let mut user = a.user.clone();
    let mut database = a.database.clone();
    for (k, v) in params {
        match k.as_str() {
            "replication" => {
                if !matches!(v.as_str(), "false" | "off" | "no" | "0") {
                    return Err((
                        "42501",
                        "hoopx: replication connections are refused: the gateway does not check what they carry".into(),
                    ));
                }
            }
            "user" => match &a.user {
                Some(u) if u != v => {
                    return Err((
                        "28000",
                        format!(
                            "hoopx: target {:?} connects as {u:?}, not {v:?}",
                            target.name
                        ),
                    ))
                }
                _ => user = Some(v.clone()),
            },
            "database" => match &a.database {
                Some(d) if d != v => {
                    return Err((
                        "3D000",
                        format!(
                            "hoopx: target {:?} connects to database {d:?} only, not {v:?}",
                            target.name
                        ),
                    ))
                }
                _ => database = Some(v.clone()),
            },
            "client_encoding" => {
                // libpq follows the server's ParameterStatus: the client reads UTF8 then.
            }
            "options" if GUARDED_SETTINGS.iter().any(|g| v.to_lowercase().contains(g)) => {
                return Err((
                    "42501",
                    "hoopx: the startup options may not change client_encoding, standard_conforming_strings or backslash_quote: the gateway reads statements as the server does only with its own".into(),
                ))
            }
            g if GUARDED_SETTINGS.contains(&g.to_lowercase().as_str()) => {
                return Err((
                    "42501",
                    format!("hoopx: the startup setting {g} is the gateway's to choose"),
                ))
            }
            _ => out.push((k.clone(), v.clone())),
        }
    }
    // The server parses what the gateway parsed: UTF-8, no backslash escapes in plain
    // strings.
    out.push(("client_encoding".into(), "UTF8".into()));
    out.push(("standard_conforming_strings".into(), "on".into()));
    let Some(user) = user else {
        return Err((
            "28000",
            "hoopx: no user named: the target sets none and the client sent none".into(),
        ));
    };
    out.insert(0, ("user".into(), user));
    if let Some(d) = database {
        out.insert(1, ("database".into(), d));
    }
    Ok(out)
}

/// Forwards a client's CancelRequest for one of this session's connections; a connection
/// waiting for a review gives up on it instead.
async fn cancel(ctx: &Arc<SessionCtx>, pid: i32, key: &[u8]) -> Result<(), String> {
    let Ok(k) = <[u8; 4]>::try_from(key) else {
        return Err("a cancel request with an unknown key length".into());
    };
    let entry = lock(&ctx.cancels)
        .get(&(pid, i32::from_be_bytes(k)))
        .cloned();
    let Some(entry) = entry else {
        // As PostgreSQL does: a wrong key gets no answer.
        return Err("a cancel request for no connection of this session".into());
    };
    // Wakes a connection waiting for a review, if one is (no permit is kept for later).
    entry.waiting.notify_waiters();
    let server = lock(&entry.server).clone();
    if let Some(server) = server {
        upstream::cancel(&ctx.target, &server)
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Server-side bookkeeping of what the server answers: epochs are simple queries or
/// Sync-delimited pipelines, answered in order, each ending with ReadyForQuery.
struct Epoch {
    id: u64,
    simple: bool,
    /// Describe requests of the pipeline, in order: `true` for the ones the gateway added
    /// (their answers are not relayed).
    describes: VecDeque<bool>,
}

struct Statement {
    runs: Vec<Run>,
    /// It ran under a review: it may be executed once.
    reviewed: bool,
    executions: u32,
}

struct Portal {
    statement: String,
    /// Executed before: a further Execute fetches more of its rows.
    started: bool,
}

struct Relay {
    ctx: Arc<SessionCtx>,
    ch: u32,
    params: Vec<(String, String)>,
    entry: Arc<CancelEntry>,
    refusals: Refusals,
    /// Statements sent for execution, in the order the server answers them.
    runs: VecDeque<Run>,
    epochs: VecDeque<Epoch>,
    client_epoch: u64,
    /// The client is inside a pipeline (extended messages since its last Sync).
    open_extended: bool,
    statements: HashMap<String, Statement>,
    portals: HashMap<String, Portal>,
    /// How the current result's rows are masked (from the last RowDescription).
    plan: Option<ColumnPlan>,
    /// SQL-level prepared statements of this connection, as checked when prepared.
    prepared: HashMap<String, sql::Statement>,
    /// The settings statements this connection ran, in order: they change what a later
    /// statement means, so a review is bound to them.
    set_history: String,
    /// The client's next messages wait until the server answered this epoch: it changes
    /// settings the gateway could not name before it runs.
    barrier: Option<u64>,
    /// The current pipeline holds such a statement: the barrier goes up at its Sync.
    barrier_at_sync: bool,
    /// Catalog names of table columns seen in results, for column rules.
    names: HashMap<(u32, i16), ColumnName>,
    /// The gateway's second connection, for catalog lookups (opened when first needed).
    catalog: Option<upstream::Upstream>,
    /// The server connection's write half, and client messages gathered for it.
    wr: Option<tokio::io::WriteHalf<Box<dyn upstream::Io>>>,
    batch: BytesMut,
    /// Values masked in rows not yet reported to the session, by rule.
    masks: std::collections::BTreeMap<String, u64>,
    copy_out: bool,
}

impl Relay {
    async fn run(
        &mut self,
        cin: &mut FromClient,
        out: &mut ToClient,
        up: upstream::Upstream,
    ) -> Result<(), String> {
        let (mut rd, wr) = tokio::io::split(up.io);
        self.wr = Some(wr);
        let mut sbuf = up.buf;
        loop {
            tokio::select! {
                m = cin.message(), if self.barrier.is_none() => {
                    let m = match m {
                        Ok(Some(m)) => m,
                        Ok(None) => return self.drain(out, &mut rd, &mut sbuf).await,
                        Err(e) => {
                            fatal(out, "08P01", &format!("hoopx: {e}")).await?;
                            return Err(e);
                        }
                    };
                    self.client_message(m, out).await?;
                    // Whatever else the client already sent goes in the same write (up to
                    // a barrier: a statement whose effect on parsing is known only once the
                    // server answered it).
                    while self.barrier.is_none() {
                        let m = match pgwire::take_message(&mut cin.buf, MAX_CLIENT_MESSAGE) {
                            Ok(Some(m)) => m,
                            Ok(None) => break,
                            Err(e) => {
                                fatal(out, "08P01", &format!("hoopx: {e}")).await?;
                                return Err(e.to_string());
                            }
                        };
                        self.client_message(m, out).await?;
                        if self.batch.len() > CHUNK { break; }
                    }
                    if let Err(e) = self.send_batch().await {
                        return self.server_lost(out, e).await;
                    }
                    out.flush().await?;
                }
                n = rd.read_buf(&mut sbuf) => {
                    match n {
                        Ok(0) => return self.server_lost(out, "the server closed the connection".into()).await,
                        Err(e) => return self.server_lost(out, e.to_string()).await,
                        Ok(_) => {}
                    }
                    loop {
                        let m = match pgwire::take_message(&mut sbuf, pgwire::MAX_MESSAGE) {
                            Ok(Some(m)) => m,
                            Ok(None) => break,
                            Err(e) => return self.server_lost(out, e.to_string()).await,
                        };
                        if m.tag == b'T' && self.ctx.columns.needs_catalog() {
                            self.resolve(&m.body).await;
                        }
                        if let Err(e) = self.server_message(m, out) {
                            fatal(out, "08006", &format!("hoopx: {e}")).await?;
                            return Err(e);
                        }
                        if out.pending.len() >= CHUNK {
                            self.report_masks(out);
                            out.flush().await?;
                        }
                    }
                    self.report_masks(out);
                    out.flush().await?;
                }
            }
        }
    }

    /// The client left: what it sent still runs on the server, so the server's answers are
    /// read (and dropped) to log each statement's outcome, for at most [`DRAIN`]; what is
    /// still unanswered then is logged as such.
    async fn drain(
        &mut self,
        out: &mut ToClient,
        rd: &mut tokio::io::ReadHalf<Box<dyn upstream::Io>>,
        sbuf: &mut BytesMut,
    ) -> Result<(), String> {
        let _ = self.send_batch().await;
        if let Some(wr) = self.wr.as_mut() {
            let _ = wr
                .write_all(&Message::new(b'X', Bytes::new()).encode())
                .await;
        }
        let deadline = tokio::time::Instant::now() + DRAIN;
        while !self.runs.is_empty() {
            loop {
                match pgwire::take_message(sbuf, pgwire::MAX_MESSAGE) {
                    Ok(Some(m)) => {
                        let _ = self.server_message(m, out);
                        out.pending.clear();
                    }
                    Ok(None) => break,
                    Err(_) => return self.unanswered(out),
                }
            }
            if self.runs.is_empty() {
                break;
            }
            match tokio::time::timeout_at(deadline, rd.read_buf(sbuf)).await {
                Ok(Ok(n)) if n > 0 => {}
                _ => break,
            }
        }
        self.report_masks(out);
        self.unanswered(out)
    }

    /// Logs the statements sent that the server never answered.
    fn unanswered(&mut self, out: &mut ToClient) -> Result<(), String> {
        for r in std::mem::take(&mut self.runs) {
            self.log(out, r, "unanswered", None, None, None);
        }
        Ok(())
    }

    /// Tells the session what was masked in the rows since the last report (before those
    /// rows leave, so the counts are recorded with them).
    fn report_masks(&mut self, out: &ToClient) {
        if !self.masks.is_empty() {
            out.event(FromChannel::Masks(std::mem::take(&mut self.masks)));
        }
    }

    /// Writes the client's messages gathered so far to the server.
    async fn send_batch(&mut self) -> Result<(), String> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let Some(wr) = self.wr.as_mut() else {
            return Err("no server connection".into());
        };
        let r = wr.write_all(&self.batch).await.map_err(|e| e.to_string());
        self.batch.clear();
        r
    }

    /// The server is gone: the client gets an error, the session a marker, and the
    /// connection ends.
    async fn server_lost(&mut self, out: &mut ToClient, why: String) -> Result<(), String> {
        for r in std::mem::take(&mut self.runs) {
            self.log(out, r, "lost", None, None, None);
        }
        out.event(FromChannel::Marker(
            json!({"pg_server_lost": {"conn": self.ch, "error": why}}),
        ));
        fatal(
            out,
            "08006",
            &format!("hoopx: the gateway lost the database server: {why}"),
        )
        .await?;
        Err(format!("server lost: {why}"))
    }

    fn log(
        &self,
        out: &ToClient,
        r: Run,
        status: &str,
        tag: Option<&str>,
        sqlstate: Option<&str>,
        error: Option<&str>,
    ) {
        let mut v = json!({
            "conn": self.ch,
            "protocol": r.protocol,
            "text": r.text,
            "normalized": r.normalized,
            "kinds": r.kinds,
            "relations": r.relations,
            "status": status,
            "duration_ms": (r.started.elapsed().as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0,
        });
        if let Some(t) = tag {
            v["tag"] = t.into();
            if let Some(n) = pgwire::tag_rows(t) {
                v["rows"] = n.into();
            }
        }
        if let Some(s) = sqlstate {
            v["sqlstate"] = s.into();
        }
        if let Some(e) = error {
            let (m, _) = self.ctx.masker.mask(e.as_bytes());
            v["error"] = String::from_utf8_lossy(&m).into();
        }
        if let Some(id) = r.review {
            v["review_id"] = id.into();
        }
        out.event(FromChannel::Statement(v));
    }

    /// Analyses and decides on SQL text from the client.
    fn decide(&self, text: &str, protocol: &'static str) -> Decided {
        let masker = &self.ctx.masker;
        let shown = |t: &str| {
            sql::display(t, |lit: &str| {
                String::from_utf8_lossy(&masker.mask(lit.as_bytes()).0).into_owned()
            })
        };
        let run = |text: String, kinds: Vec<String>, relations: Vec<String>| Run {
            normalized: sql::normalized(&text).unwrap_or_default(),
            text: shown(&text),
            kinds,
            relations,
            protocol,
            started: Instant::now(),
            epoch: 0,
            review: None,
        };
        // Parsing waits for the parser thread: let the runtime move other tasks meanwhile.
        let multi = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        let analyzed = if multi {
            tokio::task::block_in_place(|| sql::analyze(text))
        } else {
            sql::analyze(text)
        };
        let mut analysis = match analyzed {
            Ok(a) => a,
            Err(e) => {
                return Decided {
                    prepares: vec![],
                    barrier: false,
                    runs: vec![run(text.to_string(), vec!["unparsed".into()], vec![])],
                    verdict: Outcome::Unparsed(e.sqlstate, e.message),
                }
            }
        };
        // An EXECUTE of a statement this connection prepared (and the gateway checked) is
        // judged as what it runs as well as by its own arguments; one of an unknown name
        // stays dynamic.
        let mut prepares: Vec<(String, sql::Statement)> = Vec::new();
        let mut forbidden: Option<String> = None;
        let mut barrier = false;
        for st in &mut analysis.statements {
            if let Some(name) = &st.executes {
                let known = prepares
                    .iter()
                    .rev()
                    .find(|(n, _)| n == name)
                    .map(|(_, p)| p)
                    .or_else(|| self.prepared.get(name));
                if let Some(p) = known {
                    let own_dynamic = st.functions.iter().any(sql::is_dynamic_function);
                    let mut kinds: Vec<sql::Kind> = st
                        .kinds
                        .iter()
                        .copied()
                        .filter(|k| *k != sql::Kind::Dynamic || own_dynamic)
                        .collect();
                    for k in &p.kinds {
                        if *k != sql::Kind::Prepare && !kinds.contains(k) {
                            kinds.push(*k);
                        }
                    }
                    st.kinds = kinds;
                    for r in &p.relations {
                        if !st.relations.contains(r) {
                            st.relations.push(r.clone());
                        }
                    }
                    for f in &p.functions {
                        if !st.functions.contains(f) {
                            st.functions.push(f.clone());
                        }
                    }
                }
            }
            if let Some(name) = &st.prepares {
                prepares.push((name.clone(), st.clone()));
            }
            // The gateway parses as the server does only with these settings as it set them.
            if let Some(g) = st
                .settings
                .iter()
                .find(|g| GUARDED_SETTINGS.contains(&g.as_str()))
            {
                forbidden = Some(format!(
                    "the gateway keeps client_encoding UTF8 and standard_conforming_strings on, so that it reads statements as the server does; this statement changes {g}"
                ));
            }
            if st.settings.iter().any(|g| g == "*") {
                barrier = true;
            }
            if st.copy_out && !self.ctx.columns.rules.is_empty() && forbidden.is_none() {
                forbidden = Some(
                    "COPY … TO STDOUT is refused on a target with column rules: the gateway masks columns of result rows, which COPY does not send; use SELECT".into(),
                );
            }
        }
        let runs = analysis
            .statements
            .iter()
            .map(|s| {
                run(
                    s.text.clone(),
                    s.kinds.iter().map(|k| k.to_string()).collect(),
                    s.relations.iter().map(|r| r.to_string()).collect(),
                )
            })
            .collect();
        if let Some(message) = forbidden {
            return Decided {
                runs,
                verdict: Outcome::Deny {
                    rule: "pg-gateway-invariants".into(),
                    message,
                },
                prepares: vec![],
                barrier: false,
            };
        }
        let policy = &self.ctx.gw.policy;
        let verdict = match policy.check_statements(&self.ctx.target.name, &analysis) {
            Verdict::Allow => Outcome::Allow,
            Verdict::Deny(r) => Outcome::Deny {
                rule: r.name.clone(),
                message: r
                    .message
                    .clone()
                    .unwrap_or_else(|| format!("the statement matches deny rule {:?}", r.name)),
            },
            Verdict::Review(r) => Outcome::Review {
                rule: r.name.clone(),
            },
        };
        Decided {
            runs,
            verdict,
            prepares,
            barrier,
        }
    }

    /// The epoch the client's next extended message belongs to (a new pipeline after a
    /// Sync).
    fn extended_epoch(&mut self) -> u64 {
        if !self.open_extended {
            self.client_epoch += 1;
            self.open_extended = true;
            self.epochs.push_back(Epoch {
                id: self.client_epoch,
                simple: false,
                describes: VecDeque::new(),
            });
        }
        self.client_epoch
    }

    fn current_describes(&mut self) -> Option<&mut VecDeque<bool>> {
        self.epochs
            .back_mut()
            .filter(|e| !e.simple)
            .map(|e| &mut e.describes)
    }

    /// One client message: forwarded into `batch`, replaced by a stand-in, or answered.
    async fn client_message(&mut self, m: Message, out: &mut ToClient) -> Result<(), String> {
        match m.tag {
            b'Q' | b'F' if self.open_extended => {
                let why = "hoopx: a simple query or function call inside an unfinished extended-protocol pipeline (no Sync) is refused";
                fatal(out, "08P01", why).await?;
                return Err(why.into());
            }
            b'Q' => {
                let text = match pgwire::query_text(&m.body) {
                    Ok(t) => t.to_string(),
                    Err(e) => return Err(malformed(out, e).await),
                };
                self.open_extended = false;
                self.client_epoch += 1;
                let epoch = self.client_epoch;
                self.epochs.push_back(Epoch {
                    id: epoch,
                    simple: true,
                    describes: VecDeque::new(),
                });
                let decided = self.decide(&text, "simple");
                let sent = self.admit(decided, &text, epoch, out).await?;
                if let Some(text) = sent {
                    let mut body = BytesMut::from(text.as_bytes());
                    body.extend_from_slice(&[0]);
                    Message::new(b'Q', body.freeze()).encode_into(&mut self.batch);
                }
            }
            b'P' => {
                let p = match pgwire::parse_message(&m.body) {
                    Ok(p) => p,
                    Err(e) => return Err(malformed(out, e).await),
                };
                let (name, query) = (p.name.to_string(), p.query.to_string());
                let epoch = self.extended_epoch();
                let mut decided = self.decide(&query, "extended");
                // The statement runs at Execute; until then it is remembered by name.
                let runs = std::mem::take(&mut decided.runs);
                decided.runs = runs.clone();
                match self.admit_parse(decided, &query, epoch, out).await? {
                    Admit::Send(review) => {
                        let mut runs = runs;
                        for r in &mut runs {
                            r.review = review.clone();
                        }
                        if self.statements.len() >= MAX_NAMES
                            && !self.statements.contains_key(&name)
                        {
                            fatal(
                                out,
                                "54000",
                                "hoopx: too many prepared statements on one connection",
                            )
                            .await?;
                            return Err("too many prepared statements".into());
                        }
                        self.statements.insert(
                            name,
                            Statement {
                                runs,
                                reviewed: review.is_some(),
                                executions: 0,
                            },
                        );
                        m.encode_into(&mut self.batch);
                    }
                    Admit::StandIn(text) => {
                        // Same name and parameters, text that fails: the server aborts the
                        // pipeline as for a failing Parse.
                        let mut body = BytesMut::new();
                        body.extend_from_slice(name.as_bytes());
                        body.extend_from_slice(&[0]);
                        body.extend_from_slice(text.as_bytes());
                        body.extend_from_slice(&[0, 0, 0]);
                        Message::new(b'P', body.freeze()).encode_into(&mut self.batch);
                        self.statements.remove(&name);
                    }
                }
            }
            b'B' => {
                self.extended_epoch();
                let b = match pgwire::bind_message(&m.body) {
                    Ok(b) => b,
                    Err(e) => return Err(malformed(out, e).await),
                };
                // A statement prepared with SQL's PREPARE, bound by name: judged as what
                // was prepared.
                if !self.statements.contains_key(b.statement) {
                    if let Some(p) = self.prepared.get(b.statement) {
                        let analysis = sql::Analysis {
                            statements: vec![p.clone()],
                        };
                        let allowed = matches!(
                            self.ctx
                                .gw
                                .policy
                                .check_statements(&self.ctx.target.name, &analysis),
                            Verdict::Allow
                        );
                        if !allowed {
                            let why = "hoopx: a statement prepared with PREPARE that a rule denies or holds for review cannot be bound by the extended protocol";
                            fatal(out, "42501", why).await?;
                            return Err(why.into());
                        }
                    }
                }
                if self.portals.len() >= MAX_NAMES && !self.portals.contains_key(b.portal) {
                    fatal(out, "54000", "hoopx: too many portals on one connection").await?;
                    return Err("too many portals".into());
                }
                self.portals.insert(
                    b.portal.to_string(),
                    Portal {
                        statement: b.statement.to_string(),
                        started: false,
                    },
                );
                m.encode_into(&mut self.batch);
            }
            b'D' => {
                self.extended_epoch();
                if let Some(d) = self.current_describes() {
                    d.push_back(false);
                }
                m.encode_into(&mut self.batch);
            }
            b'E' => {
                let epoch = self.extended_epoch();
                let portal = match pgwire::execute_portal(&m.body) {
                    Ok(p) => p.to_string(),
                    Err(e) => return Err(malformed(out, e).await),
                };
                // The gateway describes the portal itself: its answer says which columns and
                // formats the rows have, whatever the client asked.
                let mut d = BytesMut::from(&b"P"[..]);
                d.extend_from_slice(portal.as_bytes());
                d.extend_from_slice(&[0]);
                Message::new(b'D', d.freeze()).encode_into(&mut self.batch);
                if let Some(d) = self.current_describes() {
                    d.push_back(true);
                }
                let (name, fresh) = match self.portals.get_mut(&portal) {
                    Some(p) => (
                        Some(p.statement.clone()),
                        !std::mem::replace(&mut p.started, true),
                    ),
                    None => (None, true),
                };
                let statement = match &name {
                    Some(n) => self.statements.get_mut(n),
                    None => None,
                };
                if let Some(st) = statement.as_ref() {
                    if st.reviewed && fresh && st.executions >= 1 {
                        let why = "hoopx: a statement approved by a review runs once; ask for a new review to run it again";
                        fatal(out, "42501", why).await?;
                        return Err(why.into());
                    }
                }
                let runs = match statement {
                    Some(st) => {
                        if fresh {
                            st.executions += 1;
                        }
                        st.runs.clone()
                    }
                    None => Vec::new(),
                };
                if runs.is_empty() {
                    // Bound to a statement this connection never parsed (or refused): the
                    // server will say so.
                    self.runs.push_back(Run {
                        text: String::new(),
                        normalized: String::new(),
                        kinds: vec!["unknown".into()],
                        relations: vec![],
                        protocol: "extended",
                        started: Instant::now(),
                        epoch,
                        review: None,
                    });
                }
                for mut r in runs {
                    r.epoch = epoch;
                    r.started = Instant::now();
                    self.runs.push_back(r);
                }
                m.encode_into(&mut self.batch);
            }
            b'C' => {
                self.extended_epoch();
                if let Ok((kind, name)) = pgwire::target_of(&m.body, "close") {
                    if kind == b'S' {
                        self.statements.remove(name);
                    } else {
                        self.portals.remove(name);
                    }
                }
                m.encode_into(&mut self.batch);
            }
            b'S' => {
                let epoch = self.extended_epoch();
                self.open_extended = false;
                if std::mem::take(&mut self.barrier_at_sync) {
                    self.barrier = Some(epoch);
                }
                m.encode_into(&mut self.batch);
            }
            b'F' => {
                // A function called by OID: what it does cannot be read off the message.
                // It is answered like a simple query (a result, then ReadyForQuery).
                self.open_extended = false;
                self.client_epoch += 1;
                let epoch = self.client_epoch;
                self.epochs.push_back(Epoch {
                    id: epoch,
                    simple: true,
                    describes: VecDeque::new(),
                });
                let analysis = sql::Analysis {
                    statements: vec![sql::Statement {
                        kinds: vec![sql::Kind::Dynamic],
                        relations: vec![],
                        functions: vec![],
                        text: String::new(),
                        prepares: None,
                        executes: None,
                        settings: vec![],
                        copy_out: false,
                    }],
                };
                let verdict = match self
                    .ctx
                    .gw
                    .policy
                    .check_statements(&self.ctx.target.name, &analysis)
                {
                    Verdict::Allow => None,
                    Verdict::Deny(r) => Some((r.name.clone(), r.message.clone())),
                    // A function call cannot be shown to a reviewer meaningfully.
                    Verdict::Review(r) => Some((r.name.clone(), None)),
                };
                let run = Run {
                    text: "<FunctionCall message>".into(),
                    normalized: String::new(),
                    kinds: vec!["dynamic".into(), "function_call".into()],
                    relations: vec![],
                    protocol: "function_call",
                    started: Instant::now(),
                    epoch,
                    review: None,
                };
                match verdict {
                    None => {
                        self.runs.push_back(run);
                        m.encode_into(&mut self.batch);
                    }
                    Some((rule, message)) => {
                        let message = message.unwrap_or_else(|| {
                            "function calls by OID (the FunctionCall message) are refused: the gateway cannot tell what they run".into()
                        });
                        self.denied(out, &rule, &message, run.text.clone());
                        self.log(out, run, "denied", None, Some("42501"), Some(&message));
                        // In its place, a query that fails: answered in order, its error
                        // replaced by this one.
                        let err = pgwire::error_response(
                            "ERROR",
                            "42501",
                            &format!("hoopx: {message}"),
                            None,
                        );
                        let mut body = BytesMut::from(self.refusals.stand_in(err).as_bytes());
                        body.extend_from_slice(&[0]);
                        Message::new(b'Q', body.freeze()).encode_into(&mut self.batch);
                    }
                }
            }
            b'X' => {
                m.encode_into(&mut self.batch);
            }
            b'd' | b'c' | b'f' | b'H' => m.encode_into(&mut self.batch),
            b'p' => {
                // A password message after the login: nothing asked for one.
                return Err(malformed(out, "an unexpected password message").await);
            }
            other => {
                fatal(
                    out,
                    "08P01",
                    &format!("hoopx: unknown message type {:?}", other as char),
                )
                .await?;
                return Err(format!("unknown client message {:?}", other as char));
            }
        }
        Ok(())
    }

    /// Bookkeeping of an allowed text as it is sent: its PREPAREs (a name that exists keeps
    /// its statement: preparing it again fails on the server), DEALLOCATE and DISCARD
    /// (forget every name: later EXECUTEs are dynamic again), and the settings it changes
    /// (reviews are bound to them).
    fn keep(&mut self, prepares: Vec<(String, sql::Statement)>, runs: &[Run]) {
        if runs
            .iter()
            .any(|r| r.kinds.iter().any(|k| k == "deallocate" || k == "reset"))
        {
            self.prepared.clear();
        }
        for (name, st) in prepares {
            if self.prepared.len() < MAX_NAMES {
                self.prepared.entry(name).or_insert(st);
            }
        }
        for r in runs {
            if r.kinds.iter().any(|k| k == "set" || k == "reset") {
                self.set_history.push_str(&r.text);
                self.set_history.push('\0');
            }
        }
    }

    /// A refused statement: told and logged, and the stand-in text the server gets in its
    /// place (its error is replaced by this one).
    #[allow(clippy::too_many_arguments)]
    fn refuse(
        &mut self,
        out: &ToClient,
        runs: Vec<Run>,
        shown: &str,
        status: &str,
        sqlstate: &str,
        msg: &str,
        rule: Option<&str>,
    ) -> String {
        if let Some(rule) = rule {
            self.denied(out, rule, msg, shown.to_string());
        }
        for r in runs {
            self.log(out, r, status, None, Some(sqlstate), Some(msg));
        }
        let err = pgwire::error_response("ERROR", sqlstate, &format!("hoopx: {msg}"), None);
        self.refusals.stand_in(err)
    }

    /// Tells the session (recording, caller) that a statement was refused.
    fn denied(&self, out: &ToClient, rule: &str, message: &str, text: String) {
        out.event(FromChannel::Marker(
            json!({"denied": rule, "statement": text}),
        ));
        out.event(FromChannel::Notice(Notice {
            kind: "denied".into(),
            rule: Some(rule.into()),
            message: format!(
                "statement refused by rule {rule:?}: {message}: {}",
                shorten(&text)
            ),
            review_id: None,
        }));
    }

    /// A simple query's verdict: the text to send (itself, or a stand-in when refused).
    async fn admit(
        &mut self,
        decided: Decided,
        text: &str,
        epoch: u64,
        out: &mut ToClient,
    ) -> Result<Option<String>, String> {
        let Decided {
            mut runs,
            verdict,
            prepares,
            barrier,
        } = decided;
        for r in &mut runs {
            r.epoch = epoch;
        }
        let shown = runs
            .iter()
            .map(|r| r.text.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        let refuse = |this: &mut Relay,
                      out: &ToClient,
                      runs: Vec<Run>,
                      status: &str,
                      sqlstate: &str,
                      msg: String,
                      rule: Option<&str>| {
            Some(this.refuse(out, runs, &shown, status, sqlstate, &msg, rule))
        };
        match verdict {
            Outcome::Allow => {
                self.keep(prepares, &runs);
                if barrier {
                    self.barrier = Some(epoch);
                }
                self.runs.extend(runs);
                Ok(Some(text.to_string()))
            }
            Outcome::Unparsed(state, why) => Ok(refuse(
                self,
                out,
                runs,
                "refused",
                state,
                format!("the gateway could not check this statement, so it was not sent: {why}"),
                None,
            )),
            Outcome::Deny { rule, message } => Ok(refuse(
                self,
                out,
                runs,
                "denied",
                "42501",
                message,
                Some(&rule),
            )),
            Outcome::Review { rule } => match self.review(&rule, text, &shown, out).await? {
                Ok(id) => {
                    for r in &mut runs {
                        r.review = Some(id.clone());
                    }
                    self.runs.extend(runs);
                    Ok(Some(text.to_string()))
                }
                Err((sqlstate, msg)) => {
                    Ok(refuse(self, out, runs, "not_approved", sqlstate, msg, None))
                }
            },
        }
    }

    async fn admit_parse(
        &mut self,
        decided: Decided,
        text: &str,
        epoch: u64,
        out: &mut ToClient,
    ) -> Result<Admit, String> {
        let Decided {
            runs,
            verdict,
            prepares,
            barrier,
        } = decided;
        let shown = runs
            .iter()
            .map(|r| r.text.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        let refuse = |this: &mut Relay,
                      out: &ToClient,
                      status: &str,
                      sqlstate: &str,
                      msg: String,
                      rule: Option<&str>| {
            let mut runs = runs.clone();
            for r in &mut runs {
                r.epoch = epoch;
            }
            Admit::StandIn(this.refuse(out, runs, &shown, status, sqlstate, &msg, rule))
        };
        Ok(match verdict {
            Outcome::Allow => {
                self.keep(prepares, &runs);
                self.barrier_at_sync |= barrier;
                Admit::Send(None)
            }
            Outcome::Unparsed(state, why) => refuse(
                self,
                out,
                "refused",
                state,
                format!("the gateway could not check this statement, so it was not sent: {why}"),
                None,
            ),
            Outcome::Deny { rule, message } => {
                refuse(self, out, "denied", "42501", message, Some(&rule))
            }
            Outcome::Review { rule } => match self.review(&rule, text, &shown, out).await? {
                Ok(id) => {
                    self.keep(prepares, &runs);
                    self.barrier_at_sync |= barrier;
                    Admit::Send(Some(id))
                }
                Err((sqlstate, msg)) => refuse(self, out, "not_approved", sqlstate, msg, None),
            },
        })
    }

    /// Waits for a review of `text` (or uses the approval the session brought): the
    /// review id once approved and used, or the error the client gets.
    async fn review(
        &mut self,
        rule: &str,
        text: &str,
        shown: &str,
        out: &mut ToClient,
    ) -> Result<Result<String, (&'static str, String)>, String> {
        // What the client sent before this statement goes now: it does not wait for the
        // review.
        self.send_batch().await?;
        out.flush().await?;
        let gw = self.ctx.gw.clone();
        let policy = gw.policy.clone();
        let Some(rule) = policy.review.iter().find(|r| r.name == rule) else {
            return Err(format!("review rule {rule:?} is gone"));
        };
        let exact = binding(&self.params, &self.set_history, text);
        let subject = self.ctx.identity.subject.clone();
        let hash = crate::policy::review::command_hash(
            &gw.review_key,
            &subject,
            &self.ctx.target.name,
            "statement",
            &exact,
        );
        let brought = lock(&self.ctx.approval).clone();
        if let Some(id) = brought {
            if let Ok(r) = gw
                .use_review(&id, &subject, &hash, &self.ctx.session_id)
                .await
            {
                lock(&self.ctx.approval).take();
                self.approved(out, &r);
                return Ok(Ok(r.id));
            }
        }
        let mut full = shown.to_string();
        if let Some(n) = sql::normalized(text).filter(|n| n != shown) {
            full.push_str("\n-- normalized: ");
            full.push_str(&n);
        }
        let r = gw
            .ask_review(Ask {
                rule,
                requester: &self.ctx.identity,
                target: &self.ctx.target.name,
                kind: "statement",
                shown: full,
                exact: &exact,
                session_id: Some(self.ctx.session_id.clone()),
            })
            .await
            .map_err(|e| e.to_string())?;
        out.event(FromChannel::Marker(json!({"review_requested": {"review_id": r.id, "rule": r.rule, "statement": shorten(shown)}})));
        out.event(FromChannel::Notice(Notice {
            kind: "approval_pending".into(),
            rule: Some(r.rule.clone()),
            message: format!(
                "waiting for approval of `{}` — review {}, reviewers: {}",
                shorten(shown),
                r.id,
                r.reviewers.join(", ")
            ),
            review_id: Some(r.id.clone()),
        }));
        let mut updates = gw.review_updates();
        loop {
            let now = gw.load_review(&r.id).await.map_err(|e| e.to_string())?;
            let Some(now) = now else {
                return Ok(Err(("42501", format!("review {} is gone", r.id))));
            };
            if now.status == crate::policy::review::APPROVED {
                return match gw
                    .use_review(&r.id, &subject, &hash, &self.ctx.session_id)
                    .await
                {
                    Ok(used) => {
                        self.approved(out, &used);
                        Ok(Ok(used.id))
                    }
                    Err(e) => Ok(Err(("42501", format!("review {}: {e}", r.id)))),
                };
            }
            if now.status != crate::policy::review::PENDING {
                let why = now.decided_by(None);
                out.event(FromChannel::Marker(json!({"not_approved": now.record()})));
                let message = format!("statement not sent: review {} {}{why}", now.id, now.status);
                out.event(FromChannel::Notice(Notice {
                    kind: "denied".into(),
                    rule: Some(now.rule.clone()),
                    message: message.clone(),
                    review_id: Some(now.id.clone()),
                }));
                return Ok(Err(("42501", message)));
            }
            tokio::select! {
                _ = updates.changed() => {}
                _ = tokio::time::sleep(reviews::POLL) => {}
                _ = self.entry.waiting.notified() => {
                    // Ctrl-C in the client: the request is withdrawn.
                    let _ = gw.decide_review(&r.id, None, reviews::Decision::Revoke, Some("cancelled by the requester".into())).await;
                    out.event(FromChannel::Marker(json!({"not_approved": {"review_id": r.id, "status": "revoked", "reason": "cancelled by the requester"}})));
                    out.event(FromChannel::Notice(Notice {
                        kind: "denied".into(),
                        rule: Some(r.rule.clone()),
                        message: format!("statement not sent: review {} withdrawn (cancelled)", r.id),
                        review_id: Some(r.id.clone()),
                    }));
                    return Ok(Err(("57014", "canceling statement due to user request: its review was withdrawn".into())));
                }
            }
        }
    }

    fn approved(&self, out: &ToClient, r: &ReviewInfo) {
        out.event(FromChannel::Marker(json!({"approved": r.record()})));
        out.event(FromChannel::Notice(Notice {
            kind: "approved".into(),
            rule: Some(r.rule.clone()),
            message: format!(
                "review {} approved by {}: statement released",
                r.id,
                r.approvers().join(", ")
            ),
            review_id: Some(r.id.clone()),
        }));
    }

    /// One server message: masked, logged, relayed (or dropped when it answers the
    /// gateway's own Describe).
    fn server_message(&mut self, m: Message, out: &mut ToClient) -> Result<(), String> {
        match m.tag {
            b'T' => {
                let fields = pgwire::row_description(&m.body).map_err(|e| e.to_string())?;
                let plan = self.ctx.columns.plan(&fields, &self.names);
                let swallow = self.describe_answered();
                let rewritten = plan.describe(&fields);
                self.plan = Some(plan);
                if !swallow {
                    out.queue(&pgwire::encode_row_description(&rewritten));
                }
            }
            b'n' => {
                // NoData: the result has no rows.
                self.plan = None;
                if !self.describe_answered() {
                    out.queue(&m);
                }
            }
            b't' => out.queue(&m),
            b'D' => {
                let masked = match &self.plan {
                    Some(plan) => plan
                        .row(&m.body, &self.ctx.masker, &mut self.masks)
                        .map_err(|e| e.to_string())?,
                    // Rows without a description: every value through the detectors.
                    None => ColumnPlan::unknown()
                        .row(&m.body, &self.ctx.masker, &mut self.masks)
                        .map_err(|e| e.to_string())?,
                };
                match masked {
                    Some(row) => out.queue(&row),
                    None => out.queue(&m),
                }
            }
            b'H' => {
                self.copy_out = true;
                out.queue(&m);
            }
            b'd' if self.copy_out => {
                let (masked, counts) = self.ctx.masker.mask_counted(&m.body);
                for (rule, n) in counts {
                    *self.masks.entry(rule).or_default() += n;
                }
                out.queue(&Message::new(b'd', Bytes::from(masked.into_owned())));
            }
            b'c' => {
                self.copy_out = false;
                out.queue(&m);
            }
            b'C' => {
                let tag = pgwire::command_tag(&m.body).unwrap_or("").to_string();
                self.plan = None;
                if let Some(r) = self.next_run() {
                    self.log(out, r, "ok", Some(&tag), None, None);
                }
                out.queue(&m);
            }
            b'I' => {
                if let Some(r) = self.next_run() {
                    self.log(out, r, "empty", None, None, None);
                }
                out.queue(&m);
            }
            b's' => {
                // PortalSuspended: the portal runs on at the next Execute.
                if let Some(r) = self.next_run() {
                    self.log(out, r, "suspended", None, None, None);
                }
                out.queue(&m);
            }
            b'E' => {
                self.copy_out = false;
                self.plan = None;
                let replaced = self.refusals.replace(&m.body);
                if replaced.is_none() {
                    let fields = pgwire::error_fields(&m.body).unwrap_or_default();
                    let get = |c: u8| fields.iter().find(|(k, _)| *k == c).map(|(_, v)| v.clone());
                    if let Some(r) = self.next_run() {
                        self.log(
                            out,
                            r,
                            "error",
                            None,
                            get(b'C').as_deref(),
                            get(b'M').as_deref(),
                        );
                    }
                }
                // The rest of the epoch is skipped by the server: its describes get no answer.
                if let Some(e) = self.epochs.front_mut() {
                    e.describes.clear();
                }
                let m = match replaced {
                    Some(mine) => mine,
                    None => self.mask_fields(m),
                };
                out.queue(&m);
            }
            // Notices and notifications carry data too (a duplicate key's value, a payload).
            b'N' => {
                let m = self.mask_fields(m);
                out.queue(&m);
            }
            b'A' => {
                let (masked, counts) = self.ctx.masker.mask_counted(&m.body);
                for (rule, n) in counts {
                    *self.masks.entry(rule).or_default() += n;
                }
                out.queue(&Message::new(b'A', Bytes::from(masked.into_owned())));
            }
            b'Z' => {
                // The epoch ends: statements it did not run never ran.
                let done = self.epochs.pop_front().map(|e| e.id);
                if self.barrier.is_some_and(|b| Some(b) <= done) {
                    self.barrier = None;
                }
                while self.runs.front().is_some_and(|r| Some(r.epoch) <= done) {
                    if let Some(r) = self.runs.pop_front() {
                        self.log(out, r, "not_run", None, None, None);
                    }
                }
                out.queue(&m);
            }
            b'K' => {
                // A new key mid-session is never relayed: the client keeps the gateway's.
            }
            b'S' => {
                // A guarded setting changed anyway (a function the rules let run): the
                // gateway would read the next statements otherwise than the server.
                let mut r = pgwire::Reader::new(&m.body, "parameter status");
                if let (Ok(name), Ok(value)) = (r.cstr(), r.cstr()) {
                    let bad = match name {
                        "client_encoding" => !value.eq_ignore_ascii_case("UTF8"),
                        "standard_conforming_strings" => value != "on",
                        _ => false,
                    };
                    if bad {
                        return Err(format!(
                            "the server reports {name} = {value}: the connection ends, since the gateway could no longer read statements as the server does"
                        ));
                    }
                }
                let m = self.mask_message(m);
                out.queue(&m);
            }
            b'V' => {
                let m = self.mask_message(m);
                out.queue(&m);
            }
            _ => out.queue(&m),
        }
        Ok(())
    }

    /// Looks up the catalog names of the table columns in a RowDescription that are not
    /// known yet. If the lookup fails, those columns are masked whole (fail closed).
    async fn resolve(&mut self, body: &[u8]) {
        let Ok(fields) = pgwire::row_description(body) else {
            return;
        };
        let mut tables: Vec<u32> = fields
            .iter()
            .filter(|f| f.table_oid != 0 && !self.names.contains_key(&(f.table_oid, f.column)))
            .map(|f| f.table_oid)
            .collect();
        tables.sort_unstable();
        tables.dedup();
        if tables.is_empty() {
            return;
        }
        let list = tables
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let query = format!(
            "select a.attrelid::int8, a.attnum, n.nspname, c.relname, a.attname \
             from pg_catalog.pg_attribute a join pg_catalog.pg_class c on c.oid = a.attrelid \
             join pg_catalog.pg_namespace n on n.oid = c.relnamespace \
             where a.attrelid in ({list}) and a.attnum > 0"
        );
        match self.lookup(&query).await {
            Ok(rows) => {
                for r in rows {
                    if let [Some(oid), Some(num), Some(schema), Some(table), Some(column)] = &r[..]
                    {
                        if let (Ok(oid), Ok(num)) = (oid.parse::<u32>(), num.parse::<i16>()) {
                            self.names.insert(
                                (oid, num),
                                ColumnName {
                                    schema: schema.clone(),
                                    table: table.clone(),
                                    column: column.clone(),
                                },
                            );
                        }
                    }
                }
            }
            Err(e) => {
                tracing::warn!(
                    session = %self.ctx.session_id,
                    connection = self.ch,
                    error = %e,
                    "catalog lookup failed, masking table columns whole"
                );
            }
        }
        // A column the lookup did not name (it failed, or the table is not visible to the
        // second connection, e.g. created in the client's open transaction) is masked whole.
        for f in &fields {
            if f.table_oid != 0 {
                self.names
                    .entry((f.table_oid, f.column))
                    .or_insert_with(ColumnName::unresolved);
            }
        }
    }

    /// Runs a catalog query on the gateway's second connection: rows of text values.
    async fn lookup(&mut self, query: &str) -> Result<Vec<Vec<Option<String>>>, String> {
        if self.catalog.is_none() {
            // The gateway's own settings only: a client's search_path could put its own
            // operators and views in the lookup's way.
            let mut params: Vec<(String, String)> = self
                .params
                .iter()
                .filter(|(k, _)| k == "user" || k == "database")
                .cloned()
                .collect();
            params.push(("options".into(), "-c search_path=pg_catalog".into()));
            params.push(("client_encoding".into(), "UTF8".into()));
            params.push(("application_name".into(), "hoopx-gateway-catalog".into()));
            let c = upstream::connect(&self.ctx.target, &params)
                .await
                .map_err(|e| e.to_string())?;
            self.catalog = Some(c);
        }
        let Some(c) = self.catalog.as_mut() else {
            return Err("no catalog connection".into());
        };
        let mut body = BytesMut::from(query.as_bytes());
        body.extend_from_slice(&[0]);
        let result = async {
            c.io.write_all(&Message::new(b'Q', body.freeze()).encode())
                .await
                .map_err(|e| e.to_string())?;
            let mut rows = Vec::new();
            let mut error = None;
            loop {
                let m = match pgwire::take_message(&mut c.buf, pgwire::MAX_MESSAGE)
                    .map_err(|e| e.to_string())?
                {
                    Some(m) => m,
                    None => {
                        if c.io.read_buf(&mut c.buf).await.map_err(|e| e.to_string())? == 0 {
                            return Err("the catalog connection closed".to_string());
                        }
                        continue;
                    }
                };
                match m.tag {
                    b'D' => rows.push(
                        pgwire::data_row(&m.body)
                            .map_err(|e| e.to_string())?
                            .into_iter()
                            .map(|v| v.map(|v| String::from_utf8_lossy(v).into_owned()))
                            .collect(),
                    ),
                    b'E' => error = Some(upstream::describe_error(&m.body)),
                    b'Z' => break,
                    _ => {}
                }
            }
            match error {
                Some(e) => Err(e),
                None => Ok(rows),
            }
        }
        .await;
        if result.is_err() {
            self.catalog = None;
        }
        result
    }

    /// A message whose whole body goes through the masker (a ParameterStatus value, a
    /// function call's result): its strings and length stay well-formed.
    fn mask_message(&mut self, m: Message) -> Message {
        let (masked, counts) = self.ctx.masker.mask_counted(&m.body);
        if counts.is_empty() {
            return m;
        }
        for (rule, n) in counts {
            *self.masks.entry(rule).or_default() += n;
        }
        Message::new(m.tag, Bytes::from(masked.into_owned()))
    }

    /// An ErrorResponse or NoticeResponse with its texts masked (message, detail, hint,
    /// where, …; the codes and severities as they are).
    fn mask_fields(&mut self, m: Message) -> Message {
        let Ok(fields) = pgwire::error_fields(&m.body) else {
            return m;
        };
        let mut changed = false;
        let fields: Vec<(u8, String)> = fields
            .into_iter()
            .map(|(code, v)| {
                if matches!(code, b'S' | b'V' | b'C' | b'P' | b'p' | b'L' | b'R' | b'F') {
                    return (code, v);
                }
                let (masked, counts) = self.ctx.masker.mask_counted(v.as_bytes());
                if counts.is_empty() {
                    return (code, v);
                }
                changed = true;
                for (rule, n) in counts {
                    *self.masks.entry(rule).or_default() += n;
                }
                (code, String::from_utf8_lossy(&masked).into_owned())
            })
            .collect();
        if !changed {
            return m;
        }
        pgwire::encode_fields(m.tag, &fields)
    }

    /// A RowDescription or NoData arrived: whether it answers the gateway's own Describe.
    fn describe_answered(&mut self) -> bool {
        match self.epochs.front_mut() {
            Some(e) if !e.simple => e.describes.pop_front().unwrap_or(false),
            _ => false,
        }
    }

    /// The statement the server's next completion answers, within the current epoch.
    fn next_run(&mut self) -> Option<Run> {
        let epoch = self.epochs.front().map(|e| e.id)?;
        if self.runs.front().is_some_and(|r| r.epoch == epoch) {
            self.runs.pop_front()
        } else {
            None
        }
    }
}

enum Admit {
    /// Send the message (the review it was approved under, if any).
    Send(Option<String>),
    /// Send a stand-in with this text instead.
    StandIn(String),
}

fn shorten(s: &str) -> String {
    const MAX: usize = 200;
    if s.chars().count() <= MAX {
        return s.to_string();
    }
    let mut t: String = s.chars().take(MAX).collect();
    t.push('…');
    t
}

/// Bounds on one session's tunnels.
pub const MAX_CHANNELS: usize = 64;
/// How long a client may take to send its startup (and the TCP side's password).
const LOGIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// Largest message a client may send: a statement is checked whole (1 MiB of SQL at most),
/// a Bind carries its parameters.
const MAX_CLIENT_MESSAGE: usize = 16 * 1024 * 1024;
/// How long a connection whose client left is kept to read the server's answers.
const DRAIN: std::time::Duration = std::time::Duration::from_secs(30);
/// Prepared statements and portals one connection may have the gateway remember.
const MAX_NAMES: usize = 10_000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_replace_only_their_own_errors() {
        let mut r = Refusals::new();
        let mine = pgwire::error_response("ERROR", "42501", "hoopx: no", None);
        let text = r.stand_in(mine.clone());
        let server = pgwire::error_response(
            "ERROR",
            "42601",
            &format!("syntax error at or near \"{text}\""),
            None,
        );
        assert_eq!(r.replace(&server.body), Some(mine));
        // Answered once.
        assert_eq!(r.replace(&server.body), None);
        let other = pgwire::error_response("ERROR", "42601", "syntax error at or near \"x\"", None);
        assert_eq!(r.replace(&other.body), None);
        // Another connection's nonce is not ours.
        let mut r2 = Refusals::new();
        let t2 = r2.stand_in(pgwire::error_response("ERROR", "1", "m", None));
        let theirs = pgwire::error_response("ERROR", "42601", &format!("at \"{t2}\""), None);
        assert_eq!(r.replace(&theirs.body), None);
    }

    #[test]
    fn approvals_bind_the_connection_settings() {
        let p = |db: &str| {
            vec![
                ("user".to_string(), "app".to_string()),
                ("database".to_string(), db.to_string()),
            ]
        };
        let b = |p: &[(String, String)], h: &str, t: &str| binding(p, h, t);
        let base = b(&p("shop"), "", "delete from t");
        assert_ne!(base, b(&p("other"), "", "delete from t"));
        assert_ne!(base, b(&p("shop"), "", "delete from u"));
        let mut with_path = p("shop");
        with_path.push(("options".into(), "-c search_path=evil".into()));
        assert_ne!(base, b(&with_path, "", "delete from t"));
        let mut guc = p("shop");
        guc.push(("search_path".into(), "billing".into()));
        assert_ne!(base, b(&guc, "", "delete from t"));
        assert_ne!(base, b(&p("shop"), "set role admin", "delete from t"));
        let mut app = p("shop");
        app.push(("application_name".into(), "psql".into()));
        assert_eq!(base, b(&app, "", "delete from t"));
    }

    #[test]
    fn startup_params_pin_user_and_database_and_refuse_replication() {
        let mut t = crate::policy::Policy::from_toml(
            "[[targets]]\nname = \"pg\"\nkind = \"postgres\"\nuser = \"app\"\ndatabase = \"shop\"\n",
            "t.toml",
        )
        .unwrap()
        .targets
        .remove(0);
        let kv = |v: &[(&str, &str)]| {
            v.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect::<Vec<_>>()
        };
        let ok = startup_params(&t, &kv(&[("user", "app"), ("application_name", "psql")])).unwrap();
        assert_eq!(
            ok,
            kv(&[
                ("user", "app"),
                ("database", "shop"),
                ("application_name", "psql"),
                ("client_encoding", "UTF8"),
                ("standard_conforming_strings", "on"),
            ])
        );
        // The settings that decide how the server reads text are the gateway's.
        let sjis = startup_params(&t, &kv(&[("client_encoding", "SJIS")])).unwrap();
        assert!(sjis.contains(&("client_encoding".into(), "UTF8".into())));
        assert!(!sjis.contains(&("client_encoding".into(), "SJIS".into())));
        for bad in [
            ("options", "-c standard_conforming_strings=off"),
            ("options", "--client_encoding=SJIS"),
            ("standard_conforming_strings", "off"),
            ("Backslash_Quote", "on"),
        ] {
            assert_eq!(
                startup_params(&t, &kv(&[bad])).unwrap_err().0,
                "42501",
                "{bad:?}"
            );
        }
        assert_eq!(
            startup_params(&t, &kv(&[("user", "postgres")]))
                .unwrap_err()
                .0,
            "28000"
        );
        assert_eq!(
            startup_params(&t, &kv(&[("database", "postgres")]))
                .unwrap_err()
                .0,
            "3D000"
        );
        assert_eq!(
            startup_params(&t, &kv(&[("replication", "database")]))
                .unwrap_err()
                .0,
            "42501"
        );
        assert!(startup_params(&t, &kv(&[("replication", "false")])).is_ok());
        t.access.user = None;
        assert_eq!(startup_params(&t, &kv(&[])).unwrap_err().0, "28000");
    }
}
