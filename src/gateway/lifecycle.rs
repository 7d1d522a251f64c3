//! A replica's life as operators see it: readiness, draining on SIGTERM, and (see
//! `super::lease`) the lease that lets other replicas close its sessions if it dies.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::Gateway;
use crate::proto::Readiness;

/// How long a readiness check waits for the store.
const STORE_CHECK: Duration = Duration::from_secs(3);
/// How long a readiness check waits for the identity provider's keys.
const AUTH_CHECK: Duration = Duration::from_secs(5);

/// What a replica keeps about its own life.
pub(crate) struct Lifecycle {
    /// Set on SIGTERM: new sessions are refused and readiness fails, running ones go on.
    draining: tokio::sync::watch::Sender<bool>,
    /// How long running sessions may go on once draining begins.
    drain_grace: Mutex<Duration>,
    /// This replica's id, new at each start: its sessions carry it in the store.
    pub replica: String,
    /// How long its lease lasts unless renewed.
    lease: Mutex<Duration>,
    /// Set to end a drain before its grace is over (a second SIGTERM).
    drain_cut: tokio::sync::watch::Sender<bool>,
    /// `--dev`: the dev token's own identity (`dev`, the operator's) reads everything.
    pub dev_reads_all: std::sync::atomic::AtomicBool,
}

impl Lifecycle {
    pub fn new() -> Lifecycle {
        Lifecycle {
            draining: tokio::sync::watch::channel(false).0,
            drain_grace: Mutex::new(Duration::ZERO),
            replica: super::lease::new_replica_id(),
            lease: Mutex::new(super::lease::DEFAULT_LEASE),
            dev_reads_all: std::sync::atomic::AtomicBool::new(false),
            drain_cut: tokio::sync::watch::channel(false).0,
        }
    }

    pub fn draining(&self) -> bool {
        *self.draining.borrow()
    }

    pub fn lease(&self) -> Duration {
        *self.lease.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Gateway {
    /// How long running sessions may go on after SIGTERM (default: none).
    pub fn set_drain_grace(&self, grace: Duration) {
        *self
            .lifecycle
            .drain_grace
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = grace;
    }

    /// How long this replica's lease lasts (default 15 s); others close its sessions as
    /// abandoned once it has not renewed it for that long.
    pub fn set_lease(&self, lease: Duration) {
        *self
            .lifecycle
            .lease
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = lease.max(Duration::from_millis(300));
    }

    /// Ends a drain at once (the operator asked twice): running sessions end as aborted.
    pub fn cut_drain_short(&self) {
        self.lifecycle.drain_cut.send_replace(true);
    }

    /// Stops taking sessions and waits, up to the drain grace, until the running ones
    /// (and those opened but not yet attached) have ended.
    pub(crate) async fn drain(&self) {
        self.lifecycle.draining.send_replace(true);
        let grace = *self
            .lifecycle
            .drain_grace
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let busy = || *self.active.borrow() > 0 || !self.pending().is_empty();
        if grace.is_zero() || !busy() {
            return;
        }
        tracing::info!(
            sessions = *self.active.borrow() + self.pending().len(),
            grace_seconds = grace.as_secs_f64(),
            "draining: new sessions are refused; running ones may go on until the grace ends"
        );
        let deadline = tokio::time::Instant::now() + grace;
        let mut active = self.active.subscribe();
        let cut = self.lifecycle.drain_cut.subscribe();
        while busy() && tokio::time::Instant::now() < deadline && !*cut.borrow() {
            // Pending sessions change without a signal: look again now and then.
            let _ = tokio::time::timeout_at(
                deadline.min(tokio::time::Instant::now() + Duration::from_millis(200)),
                active.changed(),
            )
            .await;
        }
        if busy() {
            tracing::warn!(
                sessions = *self.active.borrow() + self.pending().len(),
                "drain grace over: ending the sessions still running as aborted"
            );
        }
    }
}

/// How often a gateway with `[store] retention` prunes.
const RETAIN_EVERY: Duration = Duration::from_secs(3600);

/// `[store] retention`: prunes ended sessions past the period, now and every hour, logging
/// each.
pub(crate) async fn retain(gw: Arc<Gateway>, period: Duration) {
    loop {
        let cutoff = super::now_ms() - period.as_millis() as i64;
        let pruned = super::store::prune_ended(&*gw.store, &gw.signer, cutoff, false, |s| {
            tracing::info!(
                target: "hoopx::access",
                session = %s.id,
                identity = %s.identity,
                target_name = %s.target,
                status = %s.status,
                events = s.event_count,
                "session pruned (retention)"
            )
        })
        .await;
        if let Err(e) = pruned {
            tracing::error!(error = %e, "retention: cannot prune");
        }
        tokio::time::sleep(RETAIN_EVERY).await;
    }
}

/// `GET /v1/ready`: whether this replica should be sent sessions.
pub(crate) async fn ready(State(gw): State<Arc<Gateway>>) -> Response {
    let store = match tokio::time::timeout(STORE_CHECK, gw.store.ping()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {} s", STORE_CHECK.as_secs())),
    };
    let idp = if gw.policy.auth.is_none() {
        None
    } else {
        Some(
            match tokio::time::timeout(AUTH_CHECK, gw.auth.ready()).await {
                Ok(r) => r,
                Err(_) => Err(format!("no keys within {} s", AUTH_CHECK.as_secs())),
            },
        )
    };
    let draining = gw.lifecycle.draining();
    let shown = |r: &Result<(), String>| match r {
        Ok(()) => "ok".to_string(),
        Err(e) => e.clone(),
    };
    let mut checks = std::collections::BTreeMap::new();
    checks.insert("store".to_string(), shown(&store));
    // Loaded at start (the gateway does not run without it); said for completeness.
    checks.insert("signing_key".to_string(), "ok".to_string());
    checks.insert(
        "identity_provider".to_string(),
        idp.as_ref()
            .map_or_else(|| "not configured".to_string(), shown),
    );
    let reason = if draining {
        Some("the gateway is draining: it is shutting down".to_string())
    } else if let Err(e) = &store {
        Some(format!("store: {e}"))
    } else if let Some(Err(e)) = &idp {
        Some(format!("identity provider: {e}"))
    } else {
        None
    };
    let status = if reason.is_none() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = Readiness {
        ready: reason.is_none(),
        reason,
        checks,
        draining,
    };
    (status, Json(body)).into_response()
}
