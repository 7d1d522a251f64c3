//! The gateway: HTTP API under `/v1`, one WebSocket stream per session, policy decisions
//! and the recording. The same code serves `hoopx gateway serve` and the embedded default.

mod access;
mod api;
mod auth_api;
pub mod embedded;
mod kube;
mod lease;
mod lifecycle;
mod limits;
pub mod listener;
mod masking;
pub mod metrics;
mod pg;
mod reviews;
mod sftp;
pub mod signing;
mod ssh;
pub mod store;
mod stream;
mod tunnel;

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use tokio::net::TcpListener;

use crate::auth::{Authenticator, Identity};
use crate::policy::Policy;
use crate::proto::Mode;
use store::Store;

/// Everything a running gateway shares between requests.
pub struct Gateway {
    pub policy: Arc<Policy>,
    pub auth: Arc<dyn Authenticator>,
    pub store: Arc<dyn Store>,
    /// Signs the recordings' checkpoints.
    pub(crate) signer: Arc<ed25519_dalek::SigningKey>,
    /// Sessions opened over HTTP whose stream has not attached yet.
    pending: Mutex<HashMap<String, Pending>>,
    /// Set when the gateway begins to shut down: running sessions end, recorded.
    stopping: tokio::sync::watch::Sender<bool>,
    /// How many session streams are running.
    active: tokio::sync::watch::Sender<usize>,
    /// Keys review binding hashes (derived from the signing key: replicas agree).
    pub(crate) review_key: [u8; 32],
    /// Bumped on every review change made here, to wake whoever waits on a review.
    reviews_changed: tokio::sync::watch::Sender<u64>,
    /// The served gateway (true) or the embedded one. Only `hoopx gateway serve` installs
    /// a log subscriber, so the access log (`tracing` events with target `hoopx::access`,
    /// masked data only) reaches stderr there and nowhere in the embedded gateway.
    log_sessions: bool,
    /// Readiness, draining, the replica's lease.
    pub(crate) lifecycle: lifecycle::Lifecycle,
    /// What `/metrics` shows.
    pub(crate) metrics: metrics::Metrics,
    /// The listener's certificate (`--tls-cert`), if it serves HTTPS.
    tls: std::sync::OnceLock<Arc<listener::Tls>>,
    /// Requests per identity (`[limits] requests_per_minute`).
    rate: Mutex<limits::RateLimiter>,
    /// Session requests under way per identity, counted with the pending sessions against
    /// `[limits] pending_sessions` (so concurrent requests cannot all slip under it).
    pub(crate) opening: Mutex<HashMap<String, usize>>,
}

/// How long a stopping gateway waits for its sessions to record their end.
const DRAIN_SESSIONS: std::time::Duration = std::time::Duration::from_secs(10);

/// A session between `POST /v1/sessions` and the attach of its stream.
#[derive(Debug, Clone)]
pub(crate) struct Pending {
    pub id: String,
    pub identity: Identity,
    pub target: String,
    pub mode: Mode,
    /// As stored: masked.
    pub argv: Vec<String>,
    /// Unix time in milliseconds, as stored.
    pub started_at: i64,
    pub started: Instant,
    pub cols: Option<u16>,
    pub rows: Option<u16>,
    /// When the caller's token expires (Unix seconds); the stream ends the session a
    /// grace period after that unless the client sends a fresh token.
    pub expires_at: Option<i64>,
    /// The approved review this session runs under, already used.
    pub approval: Option<crate::proto::ReviewInfo>,
    /// An approved statement review brought with `--review`: used by the first statement
    /// it is bound to (postgres targets).
    pub statement_review: Option<String>,
    /// An approved input-line review brought with `--review`: releases the first input line
    /// it is bound to, once.
    pub line_review: Option<String>,
    /// The password of the session's loopback TCP endpoint (postgres targets).
    pub local_password: Option<crate::auth::Secret>,
    /// Kubernetes targets: the TLS of the session's local endpoint.
    pub local_tls: Option<kube::LocalTls>,
    /// ssh targets: what the gateway's own SSH channel runs.
    pub remote: Option<ssh::RemoteSpec>,
    /// ssh targets running `scp`/`sftp`: the user the SFTP channels log in as.
    pub sftp_user: Option<String>,
}

impl Gateway {
    pub fn new(
        policy: Policy,
        auth: Arc<dyn Authenticator>,
        store: Arc<dyn Store>,
        signer: ed25519_dalek::SigningKey,
        log_sessions: bool,
    ) -> Arc<Self> {
        let review_key: [u8; 32] = {
            use sha2::Digest;
            let mut h = sha2::Sha256::new();
            h.update(b"hoopx review binding key\0");
            h.update(signer.to_bytes());
            h.finalize().into()
        };
        let lifecycle = lifecycle::Lifecycle::new();
        // Its sessions are written only while they are still its own.
        store.fence_to(&lifecycle.replica);
        Arc::new(Gateway {
            review_key,
            log_sessions,
            signer: Arc::new(signer),
            policy: Arc::new(policy),
            auth,
            store,
            pending: Mutex::new(HashMap::new()),
            stopping: tokio::sync::watch::channel(false).0,
            active: tokio::sync::watch::channel(0).0,
            reviews_changed: tokio::sync::watch::channel(0).0,
            lifecycle,
            metrics: metrics::Metrics::new(),
            tls: std::sync::OnceLock::new(),
            rate: Mutex::default(),
            opening: Mutex::default(),
        })
    }

    pub fn router(self: &Arc<Self>) -> Router {
        api::router(self.clone())
    }

    /// `served` or `embedded`: which kind of gateway signs, as its closing facts say.
    pub(crate) fn kind(&self) -> &'static str {
        // Only the served gateway keeps an access log.
        if self.log_sessions {
            "served"
        } else {
            "embedded"
        }
    }

    /// Counts one request of `who`; `Err(wait)` past the per-identity rate.
    pub(crate) fn take_request(&self, who: &str) -> Result<(), std::time::Duration> {
        let per_minute = self.policy.limits.requests_per_minute;
        self.rate
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take(who, per_minute, Instant::now())
    }

    /// Serve HTTPS with `tls` (before [`serve`]).
    pub fn use_tls(&self, tls: Arc<listener::Tls>) {
        let _ = self.tls.set(tls);
    }

    pub(crate) fn stopping(&self) -> tokio::sync::watch::Receiver<bool> {
        self.stopping.subscribe()
    }

    /// Counts a running session stream until the guard is dropped.
    pub(crate) fn session_running(self: &Arc<Self>) -> ActiveGuard {
        self.active.send_modify(|n| *n += 1);
        self.metrics.session_opened();
        ActiveGuard(self.clone())
    }

    pub(crate) fn pending(&self) -> std::sync::MutexGuard<'_, HashMap<String, Pending>> {
        // A poisoned map only means another request panicked mid-insert; the map is fine.
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub(crate) struct ActiveGuard(Arc<Gateway>);

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.active.send_modify(|n| *n = n.saturating_sub(1));
        self.0.metrics.session_closed();
    }
}

/// Serves the gateway on `listener` until `shutdown` resolves; then it drains (new sessions
/// are refused, running ones may go on for the drain grace), and the sessions still running
/// are told the gateway is going away (their tools are stopped by the clients) and get up
/// to 10 s to record their end.
pub async fn serve(
    gateway: Arc<Gateway>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let lease = tokio::spawn(lease::run(gateway.clone()));
    let retain = gateway
        .policy
        .retention
        .map(|period| tokio::spawn(lifecycle::retain(gateway.clone(), period)));
    let gw = gateway.clone();
    let stop = async move {
        shutdown.await;
        gw.drain().await;
        gw.stopping.send_replace(true);
    };
    // Frames are small and interactive: the accept loop turns Nagle off on every connection.
    let gw = gateway.clone();
    listener::serve(
        listener,
        gateway.router(),
        gateway.tls.get().cloned(),
        gateway.policy.limits.clone(),
        Arc::new(move |why: &str| gw.metrics.refused(why)),
        stop,
    )
    .await?;
    gateway.stopping.send_replace(true);
    let mut active = gateway.active.subscribe();
    let _ = tokio::time::timeout(DRAIN_SESSIONS, active.wait_for(|n| *n == 0)).await;
    lease.abort();
    if let Some(r) = retain {
        r.abort();
    }
    Ok(())
}

/// Serves `/metrics` alone on `listener` (`--metrics-listen`) until `shutdown` resolves.
pub async fn serve_metrics(
    gateway: Arc<Gateway>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = Router::new()
        .route("/metrics", axum::routing::get(api::metrics))
        .with_state(gateway);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// Unix time in milliseconds.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
