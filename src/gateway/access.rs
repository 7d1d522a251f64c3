//! Who may read what: an identity reads its own sessions and the reviews it asked for or
//! may decide; members of an auditor group (`[access] auditors`) read everything, the
//! session ledger included. The embedded gateway serves one user their own store: they
//! read all of it; so does the dev token of `gateway serve --dev` (the operator's).

use axum::http::StatusCode;

use super::api::ApiFailure;
use super::Gateway;
use crate::auth::Identity;
use crate::proto::{codes, ReviewInfo};

impl Gateway {
    /// Whether `who` reads every session, review and the ledger.
    pub(crate) fn reads_all(&self, who: &Identity) -> bool {
        let dev = self
            .lifecycle
            .dev_reads_all
            .load(std::sync::atomic::Ordering::Relaxed);
        self.kind() == "embedded"
            || (dev && who.subject == crate::auth::DEV_SUBJECT)
            || who.groups.iter().any(|g| self.policy.auditors.contains(g))
    }

    /// `--dev`: the dev token's identity is the operator's and reads everything (the
    /// `[[dev.identities]]` read as any identity).
    pub fn dev_token_reads_all(&self) {
        self.lifecycle
            .dev_reads_all
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether `who` may read a session of `owner`.
    pub(crate) fn may_read_session(&self, who: &Identity, owner: &str) -> bool {
        who.subject == owner || self.reads_all(who)
    }

    /// Whether `who` may read review `r`: they asked for it, may decide it, or audit.
    pub(crate) fn may_read_review(&self, who: &Identity, r: &ReviewInfo) -> bool {
        r.requester == who.subject
            || who.groups.iter().any(|g| r.reviewers.contains(g))
            || self.reads_all(who)
    }
}

/// 403: `who` may not read `what`.
pub(crate) fn refused(who: &Identity, what: &str) -> ApiFailure {
    ApiFailure::new(
        StatusCode::FORBIDDEN,
        codes::FORBIDDEN,
        format!(
            "{} may not read {what}: identities read their own sessions and the reviews they asked for or may decide",
            who.subject
        ),
    )
    .hint("an auditor group (`[access] auditors` in the gateway config) reads everything; ask an administrator")
}
