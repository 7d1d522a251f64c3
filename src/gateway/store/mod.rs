//! Where the gateway keeps sessions and their recordings: one trait, chosen once at start-up
//! from a URL. SQLite (default) for one gateway, PostgreSQL when replicas share state. Each
//! backend owns its schema and migrations.

mod postgres;
mod sqlite;

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;

use crate::proto::{ApprovalRecord, Mode, ReviewInfo, SessionInfo};
use crate::recording::chain::Hash;
use crate::recording::ledger::{self, CloseBody, LedgerEntry, OpenBody};
use crate::recording::{Checkpoint, Event};

/// The signing key, as the store needs it to enter sessions in the ledger.
pub type Signer = ed25519_dalek::SigningKey;

pub use postgres::PostgresStore;
pub use sqlite::{Checkpoints, SqliteStore};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("unsupported store URL {0:?}: use sqlite://PATH or postgres://USER@HOST/DB")]
    BadUrl(String),
    #[error("store unavailable: {0}")]
    Db(#[from] sqlx::Error),
    #[error("the store did not answer within {0} s")]
    Timeout(u64),
    #[error("store data is corrupt: {0}")]
    Corrupt(String),
    #[error("session {0} is no longer served by this gateway replica: another replica took it over (this one's lease in the store ran out), so nothing more is recorded here")]
    Fenced(String),
    #[error("cannot prepare the store directory {path}: {source}")]
    Dir {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A session as created at open.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub id: String,
    pub identity: String,
    pub target: String,
    pub argv: Vec<String>,
    pub mode: Mode,
    pub status: String,
    pub started_at: i64,
    pub reason: Option<String>,
    /// The gateway replica serving it (its lease in the store keeps the session alive).
    pub replica: Option<String>,
}

/// Running totals of a session, kept with it as it goes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionStats {
    /// Input bytes released to the tool.
    pub bytes_in: i64,
    /// Output bytes (stdout and stderr) as recorded, masked.
    pub bytes_out: i64,
    /// Values masked, per rule.
    pub masks: std::collections::BTreeMap<String, u64>,
    /// Input lines (or command lines) withheld by deny rules.
    pub denials: i64,
    /// Reviews the session asked for or ran under.
    pub approvals: Vec<ApprovalRecord>,
}

/// Which reviews `list_reviews` returns, newest first. `None` matches anything.
#[derive(Debug, Clone, Default)]
pub struct ReviewFilter {
    pub status: Option<String>,
    pub requester: Option<String>,
    pub target: Option<String>,
    pub command_hash: Option<String>,
    /// Only reviews whose `expires_at` is at or before this Unix time in milliseconds.
    pub expires_by: Option<i64>,
    pub limit: i64,
}

/// One batch for the log: events with their chain hashes, optionally a signed checkpoint
/// over the last of them, and the session's totals after them. Written atomically.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    pub events: Vec<Event>,
    pub hashes: Vec<Hash>,
    pub checkpoint: Option<Checkpoint>,
    pub stats: SessionStats,
}

/// Which sessions `list_sessions` returns, newest first.
#[derive(Debug, Clone, Default)]
pub struct SessionFilter {
    pub identity: Option<String>,
    pub target: Option<String>,
    pub status: Option<String>,
    /// Started at or after this Unix time in milliseconds.
    pub since_ms: Option<i64>,
    /// Started at or before this Unix time in milliseconds (to page back).
    pub until_ms: Option<i64>,
    pub limit: i64,
}

/// An event as stored, with the chain hash the gateway recorded for it (absent for events
/// written before the chain existed).
#[derive(Debug, Clone)]
pub struct StoredEvent {
    pub event: Event,
    pub hash: Option<Hash>,
}

/// How a session ended.
#[derive(Debug, Clone)]
pub struct SessionEnd {
    pub status: String,
    pub ended_at: i64,
    pub exit_code: Option<i32>,
    pub reason: Option<String>,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Which backend, for logs: `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;
    /// Fences this store's session writes to `replica`: from now on, appending to or
    /// finishing a session that another replica has taken over (crash recovery: see
    /// `gateway::lease`) fails with [`StoreError::Fenced`] and writes nothing, so a replica
    /// that lost its lease cannot record past another's signed close.
    fn fence_to(&self, replica: &str);
    /// A cheap query, for readiness: `Ok` when the store answers.
    async fn ping(&self) -> Result<(), StoreError>;
    /// Creates the session and enters its opening in the ledger, in one transaction.
    async fn create_session(&self, s: &NewSession, signer: &Signer) -> Result<(), StoreError>;
    async fn set_status(&self, id: &str, status: &str) -> Result<(), StoreError>;
    /// Appends a batch in one transaction; its events' `seq` continue the session's log.
    async fn append(&self, id: &str, batch: &Batch) -> Result<(), StoreError>;
    /// Records how the session ended and enters its closing in the ledger (with the closing
    /// checkpoint stored for it), in one transaction.
    async fn finish_session(
        &self,
        id: &str,
        end: &SessionEnd,
        signer: &Signer,
    ) -> Result<(), StoreError>;
    /// Ledger entries with `seq >= from`, in order, at most `limit`.
    async fn ledger(&self, from: i64, limit: i64) -> Result<Vec<LedgerEntry>, StoreError>;
    /// The ledger entries of one session, in order.
    async fn ledger_of(&self, session_id: &str) -> Result<Vec<LedgerEntry>, StoreError>;
    async fn session(&self, id: &str) -> Result<Option<SessionInfo>, StoreError>;
    /// Newest first.
    async fn list_sessions(&self, filter: &SessionFilter) -> Result<Vec<SessionInfo>, StoreError>;
    /// Events with `seq >= from`, in order, at most `limit`.
    async fn events(&self, id: &str, from: i64, limit: i64)
        -> Result<Vec<StoredEvent>, StoreError>;
    /// The session's signed checkpoints, in the order they were written.
    async fn checkpoints(&self, id: &str) -> Result<Vec<Checkpoint>, StoreError>;
    async fn create_review(&self, r: &ReviewInfo) -> Result<(), StoreError>;
    async fn review(&self, id: &str) -> Result<Option<ReviewInfo>, StoreError>;
    async fn list_reviews(&self, filter: &ReviewFilter) -> Result<Vec<ReviewInfo>, StoreError>;
    /// Stores `r` only if the stored review still has version `expected` (nobody decided it
    /// in between); returns whether it did.
    async fn update_review(&self, r: &ReviewInfo, expected: i64) -> Result<bool, StoreError>;
    /// The store's clock, Unix ms: what leases are written and compared with, so replicas
    /// whose own clocks differ agree on when a lease ran out.
    async fn now_ms(&self) -> Result<i64, StoreError>;
    /// Records that `replica` is alive until `until_ms` (Unix ms).
    async fn renew_lease(&self, replica: &str, until_ms: i64) -> Result<(), StoreError>;
    /// Sessions still `open` or `running` whose replica's lease ran out before `now_ms`, as
    /// (session id, replica), at most `limit`.
    async fn orphaned(&self, now_ms: i64, limit: i64) -> Result<Vec<(String, String)>, StoreError>;
    /// Sessions that ended before `ended_before_ms` (Unix ms), oldest first, at most `limit`.
    async fn prunable(
        &self,
        ended_before_ms: i64,
        limit: i64,
    ) -> Result<Vec<SessionInfo>, StoreError>;
    /// Removes ended session `id` with its events and checkpoints, and enters a `prune`
    /// entry in the ledger (the ledger keeps its `open` and `close`), in one transaction.
    /// Returns whether it removed it (`false`: gone already, or not ended).
    async fn prune(&self, id: &str, signer: &Signer) -> Result<bool, StoreError>;
    /// Makes `to` the replica of session `id` if `from` still is and the session has not
    /// ended; returns whether it did (one replica wins).
    async fn claim(&self, id: &str, from: &str, to: &str) -> Result<bool, StoreError>;
}

/// The body of a session's `open` ledger entry.
pub(crate) fn open_body(s: &NewSession) -> String {
    let genesis = crate::recording::chain::genesis(
        &s.id,
        &s.identity,
        &s.target,
        &s.argv,
        s.mode,
        s.started_at,
    );
    serde_json::to_string(&OpenBody {
        identity: s.identity.clone(),
        target: s.target.clone(),
        started_at: s.started_at,
        genesis: hex::encode(genesis),
    })
    .unwrap_or_default()
}

/// The body of a session's `close` ledger entry, given its stored closing checkpoint.
pub(crate) fn close_body(end: &SessionEnd, closing: Option<(i64, String)>) -> String {
    let (events, head) = closing.unzip();
    serde_json::to_string(&CloseBody {
        status: end.status.clone(),
        ended_at: end.ended_at,
        events,
        head,
    })
    .unwrap_or_default()
}

/// The body of a session's `prune` ledger entry.
pub(crate) fn prune_body(s: &SessionInfo) -> String {
    serde_json::to_string(&ledger::PruneBody {
        status: s.status.clone(),
        ended_at: s.ended_at,
        events: s.event_count,
    })
    .unwrap_or_default()
}

/// The next ledger entry after `last` (the newest stored entry's seq and hash).
pub(crate) fn next_entry(
    signer: &Signer,
    last: Option<(i64, String)>,
    kind: &str,
    session_id: &str,
    body: String,
) -> Result<LedgerEntry, StoreError> {
    let (seq, prev) = match last {
        None => (0, ledger::START),
        Some((seq, hash)) => (
            seq + 1,
            ledger::parse_hash(&hash).ok_or_else(|| {
                StoreError::Corrupt(format!("ledger entry {seq} has a malformed hash"))
            })?,
        ),
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    Ok(ledger::make_entry(
        signer, &prev, seq, now, kind, session_id, body,
    ))
}

/// Removes the sessions that ended before `cutoff_ms` (see [`Store::prune`]), calling
/// `pruned` for each as it goes; with `dry_run`, only lists them. Returns them.
pub async fn prune_ended(
    store: &dyn Store,
    signer: &Signer,
    cutoff_ms: i64,
    dry_run: bool,
    mut pruned: impl FnMut(&SessionInfo),
) -> Result<Vec<SessionInfo>, StoreError> {
    const BATCH: i64 = 100;
    if dry_run {
        let all = store.prunable(cutoff_ms, i64::MAX).await?;
        all.iter().for_each(&mut pruned);
        return Ok(all);
    }
    let mut done = vec![];
    loop {
        let batch = store.prunable(cutoff_ms, BATCH).await?;
        let mut any = false;
        for s in batch {
            if store.prune(&s.id, signer).await? {
                pruned(&s);
                done.push(s);
                any = true;
            }
        }
        // Nothing left, or only sessions another replica pruned meanwhile.
        if !any {
            return Ok(done);
        }
    }
}

/// Opens the store a URL names: `sqlite://PATH` or `postgres://…` (also `postgresql://`),
/// for a gateway that runs on.
pub async fn open(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    open_with(url, Checkpoints::Background).await
}

/// [`open`] for a process that exits after one session (the embedded gateway).
pub async fn open_local(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    open_with(url, Checkpoints::InCommits).await
}

async fn open_with(url: &str, checkpoints: Checkpoints) -> Result<Arc<dyn Store>, StoreError> {
    if let Some(path) = url.strip_prefix("sqlite://") {
        if path.is_empty() {
            return Err(StoreError::BadUrl(url.to_string()));
        }
        return Ok(Arc::new(
            SqliteStore::open(PathBuf::from(path).as_path(), checkpoints).await?,
        ));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(Arc::new(PostgresStore::open(url).await?));
    }
    Err(StoreError::BadUrl(redact_url(url)))
}

/// A URL with any password replaced (in the user part or a `password=` parameter), for
/// messages.
pub fn redact_url(url: &str) -> String {
    let url = redact_userinfo(url);
    match url.split_once('?') {
        Some((base, query)) => {
            let params: Vec<String> = query
                .split('&')
                .map(|p| match p.split_once('=') {
                    Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                    _ => p.to_string(),
                })
                .collect();
            format!("{base}?{}", params.join("&"))
        }
        None => url,
    }
}

fn redact_userinfo(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let userinfo = &url[s + 3..at];
            match userinfo.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &userinfo[..c], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

pub(crate) fn parse_mode(s: &str) -> Result<Mode, StoreError> {
    match s {
        "pty" => Ok(Mode::Pty),
        "pipe" => Ok(Mode::Pipe),
        other => Err(StoreError::Corrupt(format!("unknown mode {other:?}"))),
    }
}

pub(crate) fn parse_masks(s: &str) -> Result<std::collections::BTreeMap<String, u64>, StoreError> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(format!("mask counts: {e}")))
}

pub(crate) fn parse_approvals(s: &str) -> Result<Vec<ApprovalRecord>, StoreError> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(format!("approvals: {e}")))
}

pub(crate) fn parse_review(s: &str) -> Result<ReviewInfo, StoreError> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(format!("review: {e}")))
}

pub(crate) fn parse_hash(b: Option<Vec<u8>>) -> Result<Option<Hash>, StoreError> {
    b.map(|b| {
        b.try_into()
            .map_err(|_| StoreError::Corrupt("an event hash is not 32 bytes".into()))
    })
    .transpose()
}

pub(crate) fn parse_argv(s: &str) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(format!("argv: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords_in_urls() {
        assert_eq!(
            redact_url("postgres://app:hunter2@db:5432/x"),
            "postgres://app:***@db:5432/x"
        );
        assert_eq!(redact_url("postgres://app@db/x"), "postgres://app@db/x");
        assert_eq!(redact_url("mysql://a:b@c"), "mysql://a:***@c");
        assert_eq!(
            redact_url("postgres://db/x?sslmode=require&password=hunter2"),
            "postgres://db/x?sslmode=require&password=***"
        );
    }
}

/// The replica a store's session writes are fenced to (see [`Store::fence_to`]).
#[derive(Debug, Default)]
pub(crate) struct Fence(std::sync::RwLock<Option<String>>);

impl Fence {
    pub(crate) fn set(&self, replica: &str) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = Some(replica.to_string());
    }

    pub(crate) fn get(&self) -> Option<String> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}
