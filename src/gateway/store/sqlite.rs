//! SQLite backend: one file, WAL, created with 0700 parent directory. The log is
//! checkpointed by a task of its own, so a session never waits for a checkpoint.

use std::path::Path;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

use super::{
    close_body, next_entry, open_body, parse_approvals, parse_argv, parse_hash, parse_masks,
    parse_mode, parse_review, prune_body, Batch, NewSession, ReviewFilter, SessionEnd,
    SessionFilter, Signer, Store, StoreError, StoredEvent,
};
use crate::proto::{ReviewInfo, SessionInfo};
use crate::recording::ledger::LedgerEntry;
use crate::recording::{Checkpoint, Event, EventKind};

const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    identity TEXT NOT NULL,
    target TEXT NOT NULL,
    argv TEXT NOT NULL,
    mode TEXT NOT NULL,
    status TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    ended_at INTEGER,
    exit_code INTEGER,
    reason TEXT,
    event_count INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX sessions_started ON sessions (started_at DESC);
-- A rowid table, so large payloads are appended at the end of the b-tree instead of being
-- moved around inside a WITHOUT ROWID index.
CREATE TABLE events (
    id INTEGER PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions (id),
    seq INTEGER NOT NULL,
    t_us INTEGER NOT NULL,
    kind TEXT NOT NULL,
    data BLOB NOT NULL
);
CREATE UNIQUE INDEX events_session_seq ON events (session_id, seq);
"#,
    r#"
ALTER TABLE events ADD COLUMN hash BLOB;
ALTER TABLE sessions ADD COLUMN bytes_in INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN bytes_out INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN masks TEXT NOT NULL DEFAULT '{}';
ALTER TABLE sessions ADD COLUMN denials INTEGER NOT NULL DEFAULT 0;
CREATE TABLE checkpoints (
    id INTEGER PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions (id),
    count INTEGER NOT NULL,
    hash TEXT NOT NULL,
    key_id TEXT NOT NULL,
    signature TEXT NOT NULL,
    last INTEGER NOT NULL
);
CREATE INDEX checkpoints_session ON checkpoints (session_id, id);
CREATE INDEX sessions_identity ON sessions (identity, started_at DESC);
"#,
    r#"
ALTER TABLE sessions ADD COLUMN approvals TEXT NOT NULL DEFAULT '[]';
CREATE TABLE reviews (
    id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    requester TEXT NOT NULL,
    target TEXT NOT NULL,
    command_hash TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    version INTEGER NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX reviews_created ON reviews (created_at DESC);
CREATE INDEX reviews_binding ON reviews (requester, target, command_hash);
"#,
    r#"
CREATE TABLE ledger (
    seq INTEGER PRIMARY KEY,
    at_ms INTEGER NOT NULL,
    kind TEXT NOT NULL,
    session_id TEXT NOT NULL,
    body TEXT NOT NULL,
    hash TEXT NOT NULL,
    key_id TEXT NOT NULL,
    signature TEXT NOT NULL
);
CREATE INDEX ledger_session ON ledger (session_id, seq);
"#,
    r#"
ALTER TABLE sessions ADD COLUMN replica TEXT;
CREATE INDEX sessions_live ON sessions (status, replica);
CREATE TABLE replicas (
    id TEXT PRIMARY KEY,
    lease_until INTEGER NOT NULL
);
"#,
];
pub struct SqliteStore {
    pool: SqlitePool,
    /// Bytes of events appended, for the background checkpoint.
    written: Arc<AtomicU64>,
    fence: super::Fence,
}

/// Events inserted by one statement at most (six parameters each, well under SQLite's
/// limit).
const ROWS_PER_INSERT: usize = 64;
/// How often the background checkpoint looks at what was written.
const CHECKPOINT_POLL: Duration = Duration::from_millis(50);
/// Bytes of events after which the log is checkpointed in the background...
const CHECKPOINT_BYTES: u64 = 4 * 1024 * 1024;
/// ...or how long appends must pause.
const CHECKPOINT_IDLE: Duration = Duration::from_millis(200);
/// Bytes of log after which SQLite checkpoints on its own, in the commit that passes it:
/// the bound when the background checkpoint falls behind. The log file is cut back to this
/// after a checkpoint.
const WAL_LIMIT: usize = 16 * 1024 * 1024;
/// SQLite's page size (its default), to count the log in pages. Small pages keep the commit
/// of a keystroke's echo small.
const PAGE_SIZE: usize = 4096;

/// Checkpoints the log from a task of its own, off the commits: copying the log into the
/// database costs about as much as writing it, and done in a commit it stalls the session
/// that commits. It runs once [`CHECKPOINT_BYTES`] of events are in the log, or once
/// appends have paused for [`CHECKPOINT_IDLE`], so the log stays short (a process that
/// opens the store next reads all of it) and a burst of output is not slowed. A passive
/// checkpoint never blocks a writer; SQLite's own checkpoint at [`WAL_LIMIT`] is the bound.
async fn checkpoint_in_background(pool: SqlitePool, written: Arc<AtomicU64>) {
    let mut done = written.load(Ordering::Relaxed);
    let mut seen = done;
    let mut quiet_since = std::time::Instant::now();
    loop {
        tokio::time::sleep(CHECKPOINT_POLL).await;
        let now = written.load(Ordering::Relaxed);
        if now != seen {
            seen = now;
            quiet_since = std::time::Instant::now();
        }
        let due = now - done >= CHECKPOINT_BYTES
            || now != done && quiet_since.elapsed() >= CHECKPOINT_IDLE;
        if !due {
            continue;
        }
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&pool)
            .await
        {
            if pool.is_closed() {
                return;
            }
            tracing::warn!(error = %e, "could not checkpoint the store's log");
        }
        done = now;
    }
}

/// Who checkpoints the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checkpoints {
    /// A task of its own (see `checkpoint_in_background`): for a gateway that runs on.
    Background,
    /// SQLite, in the commit that passes 1000 pages: for a process that exits after one
    /// session (the embedded gateway), so the log the next process reads stays short.
    InCommits,
}

impl SqliteStore {
    pub async fn open(path: &Path, checkpoints: Checkpoints) -> Result<SqliteStore, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            crate::dirs::create_private_dir(dir).map_err(|source| StoreError::Dir {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let mut opts = SqliteConnectOptions::from_str("sqlite://")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            // A batch of events is written without spilling the page cache mid-transaction.
            .pragma("cache_size", "-8192")
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        if checkpoints == Checkpoints::Background {
            opts = opts
                .pragma("wal_autocheckpoint", (WAL_LIMIT / PAGE_SIZE).to_string())
                .pragma("journal_size_limit", WAL_LIMIT.to_string());
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(opts)
            .await?;
        let store = SqliteStore {
            pool,
            written: Arc::new(AtomicU64::new(0)),
            fence: super::Fence::default(),
        };
        store.migrate().await?;
        if checkpoints == Checkpoints::Background {
            tokio::spawn(checkpoint_in_background(
                store.pool.clone(),
                store.written.clone(),
            ));
        }
        Ok(store)
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("CREATE TABLE IF NOT EXISTS hoopx_schema (version INTEGER NOT NULL)")
            .execute(&mut *tx)
            .await?;
        let current: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM hoopx_schema")
            .fetch_one(&mut *tx)
            .await?;
        let current = current.unwrap_or(0) as usize;
        if current > MIGRATIONS.len() {
            return Err(StoreError::Corrupt(format!(
                "schema version {current} is newer than this hoopx knows ({}); upgrade hoopx",
                MIGRATIONS.len()
            )));
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(current) {
            sqlx::raw_sql(sql).execute(&mut *tx).await?;
            sqlx::query("INSERT INTO hoopx_schema (version) VALUES (?)")
                .bind(i as i64 + 1)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

fn row_to_info(r: &sqlx::sqlite::SqliteRow) -> Result<SessionInfo, StoreError> {
    Ok(SessionInfo {
        id: r.try_get("id")?,
        identity: r.try_get("identity")?,
        target: r.try_get("target")?,
        argv: parse_argv(r.try_get("argv")?)?,
        mode: parse_mode(r.try_get("mode")?)?,
        status: r.try_get("status")?,
        started_at: r.try_get("started_at")?,
        ended_at: r.try_get("ended_at")?,
        exit_code: r.try_get::<Option<i64>, _>("exit_code")?.map(|c| c as i32),
        reason: r.try_get("reason")?,
        event_count: r.try_get("event_count")?,
        bytes_in: r.try_get("bytes_in")?,
        bytes_out: r.try_get("bytes_out")?,
        masks: parse_masks(r.try_get("masks")?)?,
        denials: r.try_get("denials")?,
        approvals: parse_approvals(r.try_get("approvals")?)?,
    })
}

/// Appends a ledger entry inside `tx`, which already holds the write lock.
async fn enter(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    signer: &Signer,
    kind: &str,
    session_id: &str,
    body: String,
) -> Result<(), StoreError> {
    let last: Option<(i64, String)> =
        sqlx::query_as("SELECT seq, hash FROM ledger ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&mut **tx)
            .await?;
    let e = next_entry(signer, last, kind, session_id, body)?;
    sqlx::query(
        "INSERT INTO ledger (seq, at_ms, kind, session_id, body, hash, key_id, signature) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(e.seq)
    .bind(e.at_ms)
    .bind(&e.kind)
    .bind(&e.session_id)
    .bind(&e.body)
    .bind(&e.hash)
    .bind(&e.key_id)
    .bind(&e.signature)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

fn row_to_entry(r: &sqlx::sqlite::SqliteRow) -> Result<LedgerEntry, StoreError> {
    Ok(LedgerEntry {
        seq: r.try_get("seq")?,
        at_ms: r.try_get("at_ms")?,
        kind: r.try_get("kind")?,
        session_id: r.try_get("session_id")?,
        body: r.try_get("body")?,
        hash: r.try_get("hash")?,
        key_id: r.try_get("key_id")?,
        signature: r.try_get("signature")?,
    })
}

#[async_trait]
impl Store for SqliteStore {
    fn fence_to(&self, replica: &str) {
        self.fence.set(replica);
    }

    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn create_session(&self, s: &NewSession, signer: &Signer) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        // The insert takes the write lock first, so reading the ledger's head after it
        // cannot race another writer.
        sqlx::query(
            "INSERT INTO sessions (id, identity, target, argv, mode, status, started_at, reason, replica) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&s.id)
        .bind(&s.identity)
        .bind(&s.target)
        .bind(serde_json::to_string(&s.argv).unwrap_or_default())
        .bind(s.mode.as_str())
        .bind(&s.status)
        .bind(s.started_at)
        .bind(&s.reason)
        .bind(&s.replica)
        .execute(&mut *tx)
        .await?;
        enter(&mut tx, signer, "open", &s.id, open_body(s)).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn set_status(&self, id: &str, status: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE sessions SET status = ? WHERE id = ?")
            .bind(status)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn append(&self, id: &str, batch: &Batch) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        // First the session row, fenced to this replica (a write: it takes the lock), so a
        // session another replica took over gets nothing.
        let st = &batch.stats;
        let fence = self.fence.get();
        let updated = sqlx::query(
            "UPDATE sessions SET event_count = event_count + ?, bytes_in = ?, bytes_out = ?, \
             masks = ?, denials = ?, approvals = ? WHERE id = ? \
             AND (? IS NULL OR replica IS NULL OR replica = ?)",
        )
        .bind(batch.events.len() as i64)
        .bind(st.bytes_in)
        .bind(st.bytes_out)
        .bind(serde_json::to_string(&st.masks).unwrap_or_else(|_| "{}".into()))
        .bind(st.denials)
        .bind(serde_json::to_string(&st.approvals).unwrap_or_else(|_| "[]".into()))
        .bind(id)
        .bind(&fence)
        .bind(&fence)
        .execute(&mut *tx)
        .await?;
        if updated.rows_affected() != 1 {
            return Err(StoreError::Fenced(id.to_string()));
        }
        // Several rows a statement: each statement is a round trip to SQLite's thread.
        for (k, rows) in batch.events.chunks(ROWS_PER_INSERT).enumerate() {
            let mut sql = String::from(
                "INSERT INTO events (session_id, seq, t_us, kind, data, hash) VALUES ",
            );
            for r in 0..rows.len() {
                sql.push_str(if r == 0 {
                    "(?, ?, ?, ?, ?, ?)"
                } else {
                    ", (?, ?, ?, ?, ?, ?)"
                });
            }
            let mut q = sqlx::query(&sql);
            for (i, e) in rows.iter().enumerate() {
                q = q
                    .bind(id)
                    .bind(e.seq)
                    .bind(e.t_us)
                    .bind(e.kind.code())
                    .bind(&e.data)
                    .bind(batch.hashes.get(k * ROWS_PER_INSERT + i).map(|h| &h[..]));
            }
            q.execute(&mut *tx).await?;
        }
        if let Some(c) = &batch.checkpoint {
            sqlx::query(
                "INSERT INTO checkpoints (session_id, count, hash, key_id, signature, last) \
                 VALUES (?, ?, ?, ?, ?, ?)",
            )
            .bind(id)
            .bind(c.count)
            .bind(&c.hash)
            .bind(&c.key_id)
            .bind(&c.signature)
            .bind(c.last)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        let bytes: usize = batch.events.iter().map(|e| e.data.len()).sum();
        self.written.fetch_add(bytes as u64 + 1, Ordering::Relaxed);
        Ok(())
    }

    async fn finish_session(
        &self,
        id: &str,
        end: &SessionEnd,
        signer: &Signer,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        let fence = self.fence.get();
        let updated = sqlx::query(
            "UPDATE sessions SET status = ?, ended_at = ?, exit_code = ?, reason = ? WHERE id = ? \
             AND (? IS NULL OR replica IS NULL OR replica = ?)",
        )
        .bind(&end.status)
        .bind(end.ended_at)
        .bind(end.exit_code.map(i64::from))
        .bind(&end.reason)
        .bind(id)
        .bind(&fence)
        .bind(&fence)
        .execute(&mut *tx)
        .await?;
        if updated.rows_affected() != 1 {
            return Err(StoreError::Fenced(id.to_string()));
        }
        let closing: Option<(i64, String)> = sqlx::query_as(
            "SELECT count, hash FROM checkpoints WHERE session_id = ? AND last = 1 \
             ORDER BY id DESC LIMIT 1",
        )
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        enter(&mut tx, signer, "close", id, close_body(end, closing)).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn ledger(&self, from: i64, limit: i64) -> Result<Vec<LedgerEntry>, StoreError> {
        let rows = sqlx::query("SELECT * FROM ledger WHERE seq >= ? ORDER BY seq LIMIT ?")
            .bind(from)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(row_to_entry).collect()
    }

    async fn ledger_of(&self, session_id: &str) -> Result<Vec<LedgerEntry>, StoreError> {
        let rows = sqlx::query("SELECT * FROM ledger WHERE session_id = ? ORDER BY seq")
            .bind(session_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(row_to_entry).collect()
    }

    async fn session(&self, id: &str) -> Result<Option<SessionInfo>, StoreError> {
        let row = sqlx::query("SELECT * FROM sessions WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(row_to_info).transpose()
    }

    async fn list_sessions(&self, f: &SessionFilter) -> Result<Vec<SessionInfo>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM sessions WHERE (?1 IS NULL OR identity = ?1) AND (?2 IS NULL OR target = ?2) \
             AND (?3 IS NULL OR status = ?3) AND (?4 IS NULL OR started_at >= ?4) \
             AND (?6 IS NULL OR started_at <= ?6) ORDER BY started_at DESC, id LIMIT ?5",
        )
        .bind(&f.identity)
        .bind(&f.target)
        .bind(&f.status)
        .bind(f.since_ms)
        .bind(f.limit)
        .bind(f.until_ms)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(row_to_info).collect()
    }

    async fn events(
        &self,
        id: &str,
        from: i64,
        limit: i64,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, t_us, kind, data, hash FROM events WHERE session_id = ? AND seq >= ? ORDER BY seq LIMIT ?",
        )
        .bind(id)
        .bind(from)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let kind: String = r.try_get("kind")?;
                Ok(StoredEvent {
                    event: Event {
                        seq: r.try_get("seq")?,
                        t_us: r.try_get("t_us")?,
                        kind: EventKind::from_code(&kind)
                            .ok_or_else(|| StoreError::Corrupt(format!("event kind {kind:?}")))?,
                        data: r.try_get("data")?,
                    },
                    hash: parse_hash(r.try_get("hash")?)?,
                })
            })
            .collect()
    }

    async fn create_review(&self, r: &ReviewInfo) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO reviews (id, status, requester, target, command_hash, created_at, expires_at, version, doc) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )
        .bind(&r.id)
        .bind(&r.status)
        .bind(&r.requester)
        .bind(&r.target)
        .bind(&r.command_hash)
        .bind(r.created_at)
        .bind(r.expires_at)
        .bind(r.version)
        .bind(serde_json::to_string(r).map_err(|e| StoreError::Corrupt(e.to_string()))?)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn review(&self, id: &str) -> Result<Option<ReviewInfo>, StoreError> {
        let doc: Option<String> = sqlx::query_scalar("SELECT doc FROM reviews WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        doc.as_deref().map(parse_review).transpose()
    }

    async fn list_reviews(&self, f: &ReviewFilter) -> Result<Vec<ReviewInfo>, StoreError> {
        let docs: Vec<String> = sqlx::query_scalar(
            "SELECT doc FROM reviews WHERE (?1 IS NULL OR status = ?1) \
             AND (?2 IS NULL OR requester = ?2) AND (?3 IS NULL OR target = ?3) \
             AND (?4 IS NULL OR command_hash = ?4) \
             AND (?5 IS NULL OR expires_at <= ?5) \
             ORDER BY created_at DESC, id LIMIT ?6",
        )
        .bind(&f.status)
        .bind(&f.requester)
        .bind(&f.target)
        .bind(&f.command_hash)
        .bind(f.expires_by)
        .bind(f.limit)
        .fetch_all(&self.pool)
        .await?;
        docs.iter().map(|d| parse_review(d)).collect()
    }

    async fn update_review(&self, r: &ReviewInfo, expected: i64) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE reviews SET status = ?1, expires_at = ?2, version = ?3, doc = ?4 \
             WHERE id = ?5 AND version = ?6",
        )
        .bind(&r.status)
        .bind(r.expires_at)
        .bind(r.version)
        .bind(serde_json::to_string(r).map_err(|e| StoreError::Corrupt(e.to_string()))?)
        .bind(&r.id)
        .bind(expected)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn checkpoints(&self, id: &str) -> Result<Vec<Checkpoint>, StoreError> {
        let rows = sqlx::query(
            "SELECT count, hash, key_id, signature, last FROM checkpoints WHERE session_id = ? ORDER BY id",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Checkpoint {
                    count: r.try_get("count")?,
                    hash: r.try_get("hash")?,
                    key_id: r.try_get("key_id")?,
                    signature: r.try_get("signature")?,
                    last: r.try_get("last")?,
                })
            })
            .collect()
    }

    async fn now_ms(&self) -> Result<i64, StoreError> {
        // One file, one host: its replicas share this clock.
        Ok(crate::gateway::now_ms())
    }

    async fn renew_lease(&self, replica: &str, until_ms: i64) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO replicas (id, lease_until) VALUES (?1, ?2) \
             ON CONFLICT (id) DO UPDATE SET lease_until = excluded.lease_until",
        )
        .bind(replica)
        .bind(until_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn orphaned(&self, now_ms: i64, limit: i64) -> Result<Vec<(String, String)>, StoreError> {
        // A replica missing from `replicas` never renewed a lease: as good as expired.
        Ok(sqlx::query_as(
            "SELECT s.id, s.replica FROM sessions s LEFT JOIN replicas r ON r.id = s.replica \
             WHERE s.status IN ('open', 'running') AND s.replica IS NOT NULL \
             AND (r.lease_until IS NULL OR r.lease_until < ?1) ORDER BY s.started_at LIMIT ?2",
        )
        .bind(now_ms)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn claim(&self, id: &str, from: &str, to: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE sessions SET replica = ?3 WHERE id = ?1 AND replica = ?2 \
             AND status IN ('open', 'running')",
        )
        .bind(id)
        .bind(from)
        .bind(to)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn prunable(
        &self,
        ended_before_ms: i64,
        limit: i64,
    ) -> Result<Vec<SessionInfo>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM sessions WHERE status NOT IN ('open', 'running') \
             AND ended_at IS NOT NULL AND ended_at < ?1 ORDER BY ended_at, id LIMIT ?2",
        )
        .bind(ended_before_ms)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(row_to_info).collect()
    }

    async fn prune(&self, id: &str, signer: &Signer) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(
            "SELECT * FROM sessions WHERE id = ?1 AND status NOT IN ('open', 'running') \
             AND ended_at IS NOT NULL",
        )
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(s) = row.as_ref().map(row_to_info).transpose()? else {
            return Ok(false);
        };
        for sql in [
            "DELETE FROM events WHERE session_id = ?1",
            "DELETE FROM checkpoints WHERE session_id = ?1",
        ] {
            sqlx::query(sql).bind(id).execute(&mut *tx).await?;
        }
        let gone = sqlx::query("DELETE FROM sessions WHERE id = ?1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if gone.rows_affected() != 1 {
            return Ok(false);
        }
        enter(&mut tx, signer, "prune", id, prune_body(&s)).await?;
        tx.commit().await?;
        Ok(true)
    }
}
