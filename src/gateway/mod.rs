//! The gateway: HTTP API under `/v1`, one WebSocket stream per session, policy decisions
//! and the recording. The same code serves `hoopx gateway serve` and the embedded default.

mod api;
pub mod embedded;
pub mod store;
mod stream;

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
    /// Sessions opened over HTTP whose stream has not attached yet.
    pending: Mutex<HashMap<String, Pending>>,
}

/// A session between `POST /v1/sessions` and the attach of its stream.
#[derive(Debug, Clone)]
pub(crate) struct Pending {
    pub id: String,
    pub identity: Identity,
    pub target: String,
    pub mode: Mode,
    pub started: Instant,
    pub cols: Option<u16>,
    pub rows: Option<u16>,
}

impl Gateway {
    pub fn new(policy: Policy, auth: Arc<dyn Authenticator>, store: Arc<dyn Store>) -> Arc<Self> {
        Arc::new(Gateway {
            policy: Arc::new(policy),
            auth,
            store,
            pending: Mutex::new(HashMap::new()),
        })
    }

    pub fn router(self: &Arc<Self>) -> Router {
        api::router(self.clone())
    }

    pub(crate) fn pending(&self) -> std::sync::MutexGuard<'_, HashMap<String, Pending>> {
        // A poisoned map only means another request panicked mid-insert; the map is fine.
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Serves the gateway on `listener` until `shutdown` resolves.
pub async fn serve(
    gateway: Arc<Gateway>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    // Frames are small and interactive: never let Nagle hold a keystroke back.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, gateway.router())
        .with_graceful_shutdown(shutdown)
        .await
}

/// Unix time in milliseconds.
pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
