//! Reviews at the gateway: created when a review rule matches, decided over the API, used
//! once by the session they were asked for. State lives in the store (so replicas share it);
//! every change is an optimistic update that retries when another request changed the
//! review first. The transitions themselves are pure: [`crate::policy::review`].

use std::time::Duration;

use serde_json::json;

use super::store::{ReviewFilter, StoreError};
use super::{now_ms, Gateway};
use crate::auth::Identity;
use crate::policy::review::{self, DecideError, UseError};
use crate::policy::ReviewRule;
use crate::proto::ReviewInfo;

/// How often a waiting session or long poll looks at the store for decisions made on
/// another replica (decisions on this one wake them at once).
pub(crate) const POLL: Duration = Duration::from_millis(500);

/// Attempts of one read-modify-write before giving up on a review that keeps changing.
const RETRIES: usize = 8;

#[derive(Debug, thiserror::Error)]
pub(crate) enum ReviewError {
    #[error("no review {0}")]
    NotFound(String),
    #[error(transparent)]
    Decide(#[from] DecideError),
    #[error(transparent)]
    Use(#[from] UseError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("review {0} kept changing under concurrent updates; try again")]
    Busy(String),
}

/// What a reviewer does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    Approve,
    Reject,
    Revoke,
}

/// A new review: what waits, for whom, under which rule.
pub(crate) struct Ask<'a> {
    pub rule: &'a ReviewRule,
    pub requester: &'a Identity,
    pub target: &'a str,
    /// `command`, `line` or `statement`.
    pub kind: &'a str,
    /// What a reviewer sees: masked.
    pub shown: String,
    /// The exact bytes the approval is bound to.
    pub exact: &'a [u8],
    pub session_id: Option<String>,
}

impl Gateway {
    /// Opens a review, or for a command or statement returns the requester's still-open
    /// review of the very same one (an agent that asks again does not pile up requests).
    pub(crate) async fn ask_review(&self, ask: Ask<'_>) -> Result<ReviewInfo, StoreError> {
        let now = now_ms();
        let hash = review::command_hash(
            &self.review_key,
            &ask.requester.subject,
            ask.target,
            ask.kind,
            ask.exact,
        );
        if ask.kind != "line" {
            let open = self
                .store
                .list_reviews(&ReviewFilter {
                    status: Some(review::PENDING.into()),
                    requester: Some(ask.requester.subject.clone()),
                    target: Some(ask.target.to_string()),
                    command_hash: Some(hash.clone()),
                    limit: 1,
                    ..Default::default()
                })
                .await?;
            if let Some(r) = open.into_iter().next() {
                if let Some(r) = self.fresh(r).await? {
                    if r.status == review::PENDING {
                        return Ok(r);
                    }
                }
            }
        }
        let ttl = i64::try_from(self.policy.reviews.ttl.as_millis()).unwrap_or(i64::MAX);
        let r = ReviewInfo {
            id: uuid::Uuid::new_v4().to_string(),
            status: review::PENDING.into(),
            kind: ask.kind.into(),
            requester: ask.requester.subject.clone(),
            target: ask.target.into(),
            command: ask.shown,
            command_hash: hash,
            rule: ask.rule.name.clone(),
            reviewers: ask.rule.reviewers.clone(),
            min_approvals: ask.rule.min_approvals,
            session_id: ask.session_id,
            created_at: now,
            expires_at: now.saturating_add(ttl),
            ..Default::default()
        };
        self.store.create_review(&r).await?;
        tracing::info!(
            target: "hoopx::access",
            review = %r.id,
            requester = %r.requester,
            target_name = %r.target,
            rule = %r.rule,
            command = ?r.command,
            "review requested"
        );
        self.metrics.review(&r.status);
        self.notify_review("review.created", &r);
        Ok(r)
    }

    /// A review as it stands now: expiry applied (and stored).
    pub(crate) async fn load_review(&self, id: &str) -> Result<Option<ReviewInfo>, StoreError> {
        match self.store.review(id).await? {
            Some(r) => self.fresh(r).await,
            None => Ok(None),
        }
    }

    /// Applies expiry to a review just read; stores the change if there is one.
    async fn fresh(&self, mut r: ReviewInfo) -> Result<Option<ReviewInfo>, StoreError> {
        let before = r.version;
        if r.expire(now_ms()) {
            r.version += 1;
            if !self.store.update_review(&r, before).await? {
                // Someone else changed it first: theirs is the current one.
                return self.store.review(&r.id).await;
            }
            self.metrics.review(&r.status);
            self.review_changed();
        }
        Ok(Some(r))
    }

    /// Expires every review whose time is up, so listings by status are right.
    pub(crate) async fn expire_reviews(&self) -> Result<(), StoreError> {
        for status in [review::PENDING, review::APPROVED] {
            let due = self
                .store
                .list_reviews(&ReviewFilter {
                    status: Some(status.into()),
                    expires_by: Some(now_ms()),
                    limit: 1000,
                    ..Default::default()
                })
                .await?;
            for r in due {
                self.fresh(r).await?;
            }
        }
        Ok(())
    }

    /// A reviewer's approval or rejection, or a revocation.
    pub(crate) async fn decide_review(
        &self,
        id: &str,
        who: Option<&Identity>,
        decision: Decision,
        reason: Option<String>,
    ) -> Result<ReviewInfo, ReviewError> {
        let ttl = i64::try_from(self.policy.reviews.ttl.as_millis()).unwrap_or(i64::MAX);
        let r = self
            .update(id, |r| {
                let now = now_ms();
                match (decision, who) {
                    (Decision::Approve, Some(w)) => r.decide(w, true, reason.clone(), now, ttl),
                    (Decision::Reject, Some(w)) => r.decide(w, false, reason.clone(), now, ttl),
                    (_, w) => r.revoke(w, reason.clone(), now),
                }
                .map_err(ReviewError::from)
            })
            .await?;
        let last = r.decisions.last();
        tracing::info!(
            target: "hoopx::access",
            review = %r.id,
            decision = last.map_or("decided", |d| d.decision.as_str()),
            reviewer = last.map_or("?", |d| d.reviewer.as_str()),
            status = %r.status,
            "review decided"
        );
        self.metrics.review(&r.status);
        self.notify_review("review.decided", &r);
        Ok(r)
    }

    /// Uses an approval for `hash`, once.
    pub(crate) async fn use_review(
        &self,
        id: &str,
        requester: &str,
        hash: &str,
        session: &str,
    ) -> Result<ReviewInfo, ReviewError> {
        let r = self
            .update(id, |r| {
                r.consume(requester, hash, session, now_ms())
                    .map_err(ReviewError::from)
            })
            .await?;
        tracing::info!(
            target: "hoopx::access",
            review = %r.id,
            requester = %r.requester,
            session = %session,
            "review used"
        );
        self.metrics.review("used");
        Ok(r)
    }

    /// Read, change, write if unchanged meanwhile; again if it was changed.
    async fn update(
        &self,
        id: &str,
        change: impl Fn(&mut ReviewInfo) -> Result<(), ReviewError>,
    ) -> Result<ReviewInfo, ReviewError> {
        for _ in 0..RETRIES {
            // Expiry is applied (and stored) first, so a refusal below changes nothing.
            let Some(mut r) = self.load_review(id).await? else {
                return Err(ReviewError::NotFound(id.to_string()));
            };
            let before = r.version;
            let result = change(&mut r);
            if r.version == before {
                result?;
                return Ok(r);
            }
            if self.store.update_review(&r, before).await? {
                self.review_changed();
                result?;
                return Ok(r);
            }
        }
        Err(ReviewError::Busy(id.to_string()))
    }

    fn review_changed(&self) {
        self.reviews_changed.send_modify(|n| *n = n.wrapping_add(1));
    }

    pub(crate) fn review_updates(&self) -> tokio::sync::watch::Receiver<u64> {
        self.reviews_changed.subscribe()
    }

    /// Tells the configured webhook, in the background: a few attempts, each with a
    /// timeout. A webhook that fails is logged; it never holds up a review.
    fn notify_review(&self, event: &'static str, r: &ReviewInfo) {
        let Some(url) = self.policy.reviews.webhook_url.clone() else {
            return;
        };
        let body = json!({"event": event, "review": r.clone().public()});
        let timeout = self.policy.reviews.webhook_timeout;
        let retries = self.policy.reviews.webhook_retries;
        let id = r.id.clone();
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        handle.spawn(async move {
            let client = match reqwest::Client::builder().timeout(timeout).build() {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(review = %id, error = %e, "review webhook: no HTTP client");
                    return;
                }
            };
            let mut last = String::new();
            for attempt in 0..=retries {
                if attempt > 0 {
                    tokio::time::sleep(Duration::from_millis(250 << attempt.min(6))).await;
                }
                match client.post(&url).json(&body).send().await {
                    Ok(resp) if resp.status().is_success() => return,
                    Ok(resp) => last = format!("answered {}", resp.status()),
                    Err(e) => last = e.without_url().to_string(),
                }
            }
            tracing::warn!(
                review = %id,
                event = %event,
                attempts = retries + 1,
                error = %last,
                "review webhook failed"
            );
        });
    }
}
