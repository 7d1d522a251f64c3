//! Crash recovery: each replica renews a lease in the store; a live replica closes the
//! sessions of a replica whose lease ran out as `abandoned`, signing what it found.
//!
//! What an abandoned session loses at most: the events its replica still held in memory
//! (not yet written to the store; the recorder writes every few milliseconds), and the
//! signature of its own replica over the events after its last checkpoint (at most 5 s or
//! 256 events): the closing replica signs those as it found them in the store, and the
//! recording says so.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::store::{Batch, SessionEnd, SessionStats};
use super::{now_ms, Gateway};
use crate::recording::{chain, Event, EventKind};

/// How long a lease lasts unless renewed (`--lease` for tests).
pub const DEFAULT_LEASE: Duration = Duration::from_secs(15);
/// How often at most a replica looks for abandoned sessions.
const REAP_EVERY: Duration = Duration::from_secs(5);
/// Sessions closed per look.
const REAP_BATCH: i64 = 100;

/// A replica's id: the host name and a random part, new at each start.
pub(crate) fn new_replica_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "gateway".into());
    let rand = uuid::Uuid::new_v4().simple().to_string();
    format!("{host}-{}", &rand[..8])
}

/// Renews this replica's lease and closes abandoned sessions, until the gateway is dropped.
/// The first round runs at once: a replica restarted on a store closes what its previous
/// run left, once that run's lease has run out.
pub(crate) async fn run(gw: Arc<Gateway>) {
    let lease = gw.lifecycle.lease();
    let renew = lease / 3;
    let reap = REAP_EVERY.min(renew);
    let mut last_reap: Option<tokio::time::Instant> = None;
    let mut renewed_at = tokio::time::Instant::now();
    loop {
        let replica = gw.lifecycle.replica.clone();
        // Leases are written and compared on the store's clock: replicas' clocks may differ.
        let renewed = match gw.store.now_ms().await {
            Ok(now) => {
                gw.store
                    .renew_lease(&replica, now + lease.as_millis() as i64)
                    .await
            }
            Err(e) => Err(e),
        };
        match renewed {
            Ok(()) => renewed_at = tokio::time::Instant::now(),
            Err(e) if renewed_at.elapsed() > lease => tracing::error!(
                error = %e,
                "cannot renew this replica's lease for {} s: other replicas may close its sessions as abandoned",
                renewed_at.elapsed().as_secs()
            ),
            Err(e) => tracing::warn!(error = %e, "cannot renew this replica's lease"),
        }
        if last_reap.is_none_or(|t| t.elapsed() >= reap) {
            last_reap = Some(tokio::time::Instant::now());
            if let Err(e) = reap_once(&gw).await {
                tracing::warn!(error = %e, "cannot look for abandoned sessions");
            }
        }
        tokio::time::sleep(renew.min(reap)).await;
    }
}

/// Closes the sessions whose replica's lease ran out; returns how many.
pub(crate) async fn reap_once(gw: &Arc<Gateway>) -> Result<usize, String> {
    let me = gw.lifecycle.replica.clone();
    let now = gw.store.now_ms().await.map_err(|e| e.to_string())?;
    let orphans = gw
        .store
        .orphaned(now, REAP_BATCH)
        .await
        .map_err(|e| e.to_string())?;
    let mut closed = 0;
    for (id, owner) in orphans {
        if owner == me {
            continue;
        }
        // One replica wins the session; the others see it taken.
        if !gw
            .store
            .claim(&id, &owner, &me)
            .await
            .map_err(|e| e.to_string())?
        {
            continue;
        }
        match abandon(gw, &id, &owner).await {
            Ok(()) => closed += 1,
            Err(e) => {
                tracing::error!(session = %id, error = %e, "cannot close a session as abandoned")
            }
        }
    }
    Ok(closed)
}

/// Records the end of session `id` whose recording already ends with a signed close.
async fn finish_as_signed(gw: &Gateway, id: &str, events: i64) -> Result<(), String> {
    let last = gw
        .store
        .events(id, (events - 1).max(0), 1)
        .await
        .map_err(|e| e.to_string())?;
    let facts = last
        .first()
        .and_then(|e| serde_json::from_slice::<serde_json::Value>(&e.event.data).ok())
        .and_then(|v| v.get("closed").cloned())
        .and_then(|c| serde_json::from_value::<crate::recording::evidence::ClosedFacts>(c).ok())
        .ok_or("its recording is closed, but its last event is not a signed close")?;
    let end = SessionEnd {
        status: facts.status,
        ended_at: facts.ended_at,
        exit_code: facts.exit_code,
        reason: facts.reason,
    };
    gw.store
        .finish_session(id, &end, &gw.signer)
        .await
        .map_err(|e| e.to_string())?;
    tracing::info!(
        target: "hoopx::access",
        session = %id,
        status = %end.status,
        "session end recorded: its recording was closed but its end was not"
    );
    Ok(())
}

/// Ends session `id`, left by replica `owner`, as `abandoned`: a marker saying why and the
/// signed close, under a closing checkpoint over everything the store holds of it.
async fn abandon(gw: &Gateway, id: &str, owner: &str) -> Result<(), String> {
    let store = &gw.store;
    let s = store
        .session(id)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("the session is gone")?;
    let checkpoints = store.checkpoints(id).await.map_err(|e| e.to_string())?;
    if checkpoints.iter().any(|c| c.last) {
        // Its recording is closed already (its replica, or a closer that died before
        // recording the end): record the end its signed close says, append nothing.
        return finish_as_signed(gw, id, s.event_count).await;
    }
    let signed = checkpoints.last().map_or(0, |c| c.count);
    let mut head = chain::session_genesis(&s);
    let mut n = 0i64;
    let mut last_t = 0i64;
    loop {
        let page = store
            .events(id, n, 10_000)
            .await
            .map_err(|e| e.to_string())?;
        if page.is_empty() {
            break;
        }
        for e in page {
            if e.event.seq != n {
                return Err(format!(
                    "its stored events skip from {} to {}",
                    n - 1,
                    e.event.seq
                ));
            }
            head = chain::next(&head, &e.event);
            last_t = e.event.t_us;
            n += 1;
        }
    }
    let me = &gw.lifecycle.replica;
    let why = format!(
        "its gateway replica {owner} stopped renewing its lease (crashed, killed or cut off from the store); closed by replica {me}"
    );
    let end = SessionEnd {
        status: "abandoned".into(),
        ended_at: now_ms(),
        exit_code: None,
        reason: Some(why.clone()),
    };
    let stats = SessionStats {
        bytes_in: s.bytes_in,
        bytes_out: s.bytes_out,
        masks: s.masks.clone(),
        denials: s.denials,
        approvals: s.approvals.clone(),
    };
    let facts = super::stream::closed_facts(gw, &end, &stats);
    let t_us = last_t.max((end.ended_at - s.started_at) * 1000);
    let events: Vec<Event> = [
        json!({"abandoned": {
            "reason": why,
            "replica": owner,
            "closed_by": me,
            "signed_through": signed,
            "unsigned_tail": n - signed,
        }}),
        facts.marker(),
    ]
    .into_iter()
    .enumerate()
    .map(|(i, m)| Event {
        seq: n + i as i64,
        t_us,
        kind: EventKind::Marker,
        data: m.to_string().into_bytes(),
    })
    .collect();
    let hashes: Vec<_> = events
        .iter()
        .map(|e| {
            head = chain::next(&head, e);
            head
        })
        .collect();
    let batch = Batch {
        checkpoint: Some(chain::sign(&gw.signer, id, n + 2, &head, true)),
        events,
        hashes,
        stats,
    };
    store.append(id, &batch).await.map_err(|e| e.to_string())?;
    store
        .finish_session(id, &end, &gw.signer)
        .await
        .map_err(|e| e.to_string())?;
    tracing::info!(
        target: "hoopx::access",
        session = %id,
        replica = %owner,
        events = n,
        unsigned = n - signed,
        "session abandoned: its replica stopped renewing its lease"
    );
    gw.metrics.ended(&s.target, "abandoned");
    Ok(())
}
