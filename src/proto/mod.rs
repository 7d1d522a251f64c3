//! Wire types shared by the client and the gateway: the protocol version, the JSON bodies of
//! the HTTP API and the binary frames of the session stream. Written down in docs/PROTOCOL.md.

pub mod auth;
pub mod frame;
pub mod pgwire;

use serde::{Deserialize, Serialize};

/// The protocol this build speaks. Carried in the `hoopx-protocol` header of every request
/// and response; a mismatch is refused on both sides.
pub const PROTOCOL_VERSION: u32 = 1;

/// HTTP header that carries [`PROTOCOL_VERSION`].
pub const PROTOCOL_HEADER: &str = "hoopx-protocol";

/// How the tool is attached on the client side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Under a pseudo-terminal: one output stream, keystrokes as input.
    Pty,
    /// Under pipes: stdout and stderr kept apart, stdin streamed line by line.
    #[default]
    Pipe,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Pty => "pty",
            Mode::Pipe => "pipe",
        }
    }
}

/// `POST /v1/sessions`
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OpenSession {
    /// Target name; when absent the gateway picks the one target that runs `argv[0]`.
    #[serde(default)]
    pub target: Option<String>,
    pub argv: Vec<String>,
    pub mode: Mode,
    #[serde(default)]
    pub cols: Option<u16>,
    #[serde(default)]
    pub rows: Option<u16>,
    /// An approved review for exactly this command (`hoopx exec --review ID`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review: Option<String>,
    /// The caller's `TERM` (PTY mode): an ssh target's remote terminal gets it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub term: Option<String>,
}

/// A request that waits for a human: a command at open, or an input line in a session.
/// Served by `GET /v1/reviews/{id}`; `202 Accepted` answer to [`OpenSession`] as
/// [`ApprovalRequired`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReviewInfo {
    pub id: String,
    /// `pending`, `approved`, `executed`, `rejected`, `expired` or `revoked`.
    pub status: String,
    /// `command` (a command line at session open) or `line` (an input line in a session).
    pub kind: String,
    pub requester: String,
    pub target: String,
    /// What waits, masked: the command line or the input line.
    pub command: String,
    /// Keyed SHA-256 (hex) over requester, target and the exact command: an approval is
    /// used only for the very command it was given for. Kept in the store, never served.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub command_hash: String,
    pub rule: String,
    /// Groups whose members may decide.
    pub reviewers: Vec<String>,
    pub min_approvals: u32,
    /// For `line` reviews, the session the line belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// Unix time in milliseconds.
    pub created_at: i64,
    /// Past this (Unix ms) a pending review, or an unused approval, is expired.
    pub expires_at: i64,
    #[serde(default)]
    pub decisions: Vec<ReviewDecision>,
    /// When it was approved, rejected, expired or revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_at: Option<i64>,
    /// The session an approved command ran in (`executed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executed_session: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executed_at: Option<i64>,
    /// Optimistic-concurrency counter: every change bumps it.
    #[serde(default)]
    pub version: i64,
}

/// One reviewer's word on a review.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewDecision {
    pub reviewer: String,
    /// `approve`, `reject` or `revoke`.
    pub decision: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Unix time in milliseconds.
    pub at: i64,
}

/// `GET /v1/reviews`
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReviewList {
    pub reviews: Vec<ReviewInfo>,
}

/// `POST /v1/reviews/{id}/approve|reject|revoke`
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DecideReview {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `202 Accepted` answer to [`OpenSession`]: the command waits for a review.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApprovalRequired {
    pub review: ReviewInfo,
}

/// `201 Created` answer to [`OpenSession`].
#[derive(Clone, Serialize, Deserialize)]
pub struct SessionOpened {
    pub session_id: String,
    pub target: String,
    /// Path of the session's WebSocket stream, relative to the gateway URL.
    pub stream: String,
    /// Environment the target asks the tool to run with: its plain settings and its
    /// secrets (`secret_env`), which the client hands to the tool only and never prints.
    #[serde(default)]
    pub env: std::collections::BTreeMap<String, String>,
    /// Variables the tool must not inherit from the caller (they could point its
    /// credentials elsewhere, e.g. `PGHOSTADDR`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env_remove: Vec<String>,
    /// Files the client writes in the session's private directory (0700, files 0600) and
    /// removes when the session ends: credentials and generated tool configs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<ToolFile>,
    /// The command line to run instead of the requested one, when the target rewrites it
    /// (ssh: `-F <dir>/ssh_config` and the target's host alias).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub argv: Option<Vec<ToolArg>>,
    /// A local endpoint the client opens for the tool and tunnels over the session stream
    /// (postgres targets): the tool connects to it instead of holding credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tunnel: Option<Box<TunnelSpec>>,
    /// The gateway runs the session's terminal itself (ssh targets: `"ssh"`, the gateway's
    /// own SSH channel): the client starts no tool and relays its terminal or pipes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<String>,
}

/// `SessionOpened.tunnel`: what the local endpoint speaks and how the tool reaches it.
#[derive(Clone, Serialize, Deserialize)]
pub struct TunnelSpec {
    /// `postgres`: a Unix socket `.s.PGSQL.<port>` in the session's private directory and
    /// a loopback TCP port (the same number), in `PGHOST`/`PGPORT`. `kubernetes`: plain
    /// HTTP on the loopback port, named by a kubeconfig the client writes (`KUBECONFIG`).
    pub kind: String,
    /// The password of the loopback TCP endpoint, valid for this session only (the tool
    /// gets it as `PGPASSWORD`; the Unix socket needs none). Not a target credential.
    /// `kubernetes`: the bearer token of the session's kubeconfig.
    pub local_password: String,
    /// `kubernetes`: the default namespace of the session's kubeconfig.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// `kubernetes`: the certificate (PEM, not secret) of the endpoint's TLS, which the
    /// gateway terminates; the kubeconfig trusts it alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<String>,
}

impl std::fmt::Debug for TunnelSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TunnelSpec")
            .field("kind", &self.kind)
            .field("local_password", &"<redacted>")
            .finish()
    }
}

/// A file of the session's private directory.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolFile {
    /// File name inside the directory: letters, digits, `-`, `_` and `.`.
    pub name: String,
    /// The contents; may be a secret.
    pub contents: String,
    /// An environment variable the tool gets set to the file's path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<String>,
}

impl std::fmt::Debug for ToolFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The contents may be a secret: name and size only.
        f.debug_struct("ToolFile")
            .field("name", &self.name)
            .field("len", &self.contents.len())
            .field("env", &self.env)
            .finish()
    }
}

/// One argument of a rewritten command line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ToolArg {
    /// This text, as is.
    Text(String),
    /// The path of this file of the session's private directory.
    File(String),
}

impl std::fmt::Debug for SessionOpened {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Values may be secrets: names only.
        f.debug_struct("SessionOpened")
            .field("session_id", &self.session_id)
            .field("target", &self.target)
            .field("stream", &self.stream)
            .field("env", &self.env.keys().collect::<Vec<_>>())
            .field("env_remove", &self.env_remove)
            .field("files", &self.files)
            .field("argv", &self.argv)
            .field("tunnel", &self.tunnel)
            .finish()
    }
}

/// One session as listed by `GET /v1/sessions` and `GET /v1/sessions/{id}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SessionInfo {
    pub id: String,
    pub identity: String,
    pub target: String,
    pub argv: Vec<String>,
    pub mode: Mode,
    /// `open`, `running`, `exited`, `denied` or `aborted`.
    pub status: String,
    /// Unix time in milliseconds.
    pub started_at: i64,
    #[serde(default)]
    pub ended_at: Option<i64>,
    #[serde(default)]
    pub exit_code: Option<i32>,
    #[serde(default)]
    pub reason: Option<String>,
    pub event_count: i64,
    /// Input bytes released to the tool.
    #[serde(default)]
    pub bytes_in: i64,
    /// Output bytes recorded (masked).
    #[serde(default)]
    pub bytes_out: i64,
    /// Values masked, per rule.
    #[serde(default)]
    pub masks: std::collections::BTreeMap<String, u64>,
    /// Input lines withheld by deny rules.
    #[serde(default)]
    pub denials: i64,
    /// Reviews this session asked for or ran under, with their decisions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvals: Vec<ApprovalRecord>,
}

/// A review as evidence on a session: what waited, and who decided what, when and why.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalRecord {
    pub review_id: String,
    pub rule: String,
    pub kind: String,
    pub command: String,
    /// The review's status when the session recorded it.
    pub status: String,
    pub decisions: Vec<ReviewDecision>,
}

/// `GET /v1/sessions`
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionList {
    pub sessions: Vec<SessionInfo>,
}

/// One recorded event as served by `GET /v1/sessions/{id}/events`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventInfo {
    pub seq: i64,
    /// Microseconds since the session started.
    pub t_us: i64,
    pub kind: String,
    /// The bytes as base64 (standard alphabet, padded); always masked.
    pub data: String,
    /// The chain hash the gateway recorded after this event, hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
}

/// `GET /v1/sessions/{id}/checkpoints`
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckpointList {
    pub checkpoints: Vec<crate::recording::Checkpoint>,
}

/// `GET /v1/keys`: the keys this gateway signs recordings with.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyList {
    pub keys: Vec<crate::recording::PublicKeyInfo>,
}

/// `GET /v1/ledger`: entries of the store's session ledger, in order.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LedgerList {
    pub entries: Vec<crate::recording::ledger::LedgerEntry>,
}

/// `GET /v1/ready` (no authentication): 200 when this replica takes sessions, else 503 with
/// the first reason it does not.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Readiness {
    pub ready: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Each check: `ok`, `not configured`, or why it failed.
    pub checks: std::collections::BTreeMap<String, String>,
    pub draining: bool,
}

/// `GET /v1/health` (no authentication).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Health {
    pub status: String,
    pub protocol: u32,
    pub version: String,
}

/// Every non-2xx answer carries this body.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ApiError,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiError {
    /// Stable machine-readable code, see docs/PROTOCOL.md.
    pub code: String,
    /// What happened, for a person.
    pub message: String,
    /// What to do next, when there is something to do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// The policy rule that decided, for `denied`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
}

/// Stable error codes of [`ApiError::code`].
pub mod codes {
    pub const UNAUTHORIZED: &str = "unauthorized";
    pub const DENIED: &str = "denied";
    pub const NOT_FOUND: &str = "not_found";
    pub const BAD_REQUEST: &str = "bad_request";
    pub const UNKNOWN_TARGET: &str = "unknown_target";
    /// The command waits for a review (`hoopx exec --review ID` before it is approved).
    pub const APPROVAL_PENDING: &str = "approval_pending";
    /// Not allowed to do this (approve one's own request, decide without the group).
    pub const FORBIDDEN: &str = "forbidden";
    /// The request does not fit the resource's state (deciding a decided review).
    pub const CONFLICT: &str = "conflict";
    pub const PROTOCOL_MISMATCH: &str = "protocol_mismatch";
    pub const INTERNAL: &str = "internal";
    /// Something the gateway depends on (its identity provider) cannot be reached.
    pub const UNAVAILABLE: &str = "unavailable";
    /// A limit of `[limits]` was reached (429 or 413): the message says which and what to do.
    pub const LIMITED: &str = "limited";
}
