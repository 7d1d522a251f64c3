//! The review lifecycle: pending → approved → executed; rejected; expired; revoked. Pure
//! state transitions on [`ReviewInfo`], no I/O: the gateway loads a review, applies one of
//! these, and stores it back only if nobody changed it in between.
//!
//! Rules: an approval is single-use and bound to the requester, the target and the exact
//! command (by hash); the requester never decides their own request; a reviewer must be in
//! one of the rule's groups; `min_approvals` distinct approvers are needed; one rejection
//! rejects. A pending review expires `ttl` after it was asked; an approval expires `ttl`
//! after it was given if it is not used.

use sha2::{Digest, Sha256};

use crate::auth::Identity;
use crate::proto::{ReviewDecision, ReviewInfo};

pub const PENDING: &str = "pending";
pub const APPROVED: &str = "approved";
pub const EXECUTED: &str = "executed";
pub const REJECTED: &str = "rejected";
pub const EXPIRED: &str = "expired";
pub const REVOKED: &str = "revoked";

/// Every status, for argument checking.
pub const STATUSES: &[&str] = &[PENDING, APPROVED, EXECUTED, REJECTED, EXPIRED, REVOKED];

/// The hash an approval is bound to: requester, target and the exact bytes of the command
/// (argv as JSON, or the input line), each length-prefixed, keyed with the gateway's
/// `key` (derived from its signing key, so replicas agree). It never leaves the gateway:
/// unkeyed and published, it would let anyone guess a masked secret in the command.
pub fn command_hash(
    key: &[u8],
    requester: &str,
    target: &str,
    kind: &str,
    command: &[u8],
) -> String {
    let mut h = Sha256::new();
    h.update(b"hoopx review binding v1\0");
    for part in [
        key,
        requester.as_bytes(),
        target.as_bytes(),
        kind.as_bytes(),
        command,
    ] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part);
    }
    hex::encode(h.finalize())
}

/// The exact bytes of a command line that [`command_hash`] covers.
pub fn argv_bytes(argv: &[String]) -> Vec<u8> {
    serde_json::to_vec(argv).unwrap_or_default()
}

/// A command line as a person reads it: arguments quoted for a POSIX shell where needed.
pub fn display_argv(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            let plain = !a.is_empty()
                && a.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,@%+".contains(&b));
            if plain {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Why a reviewer's decision was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecideError {
    #[error("review {id} is {status}; only a pending review can be decided")]
    NotPending { id: String, status: String },
    #[error("{who} asked for review {id} and cannot decide it; another reviewer must")]
    OwnRequest { id: String, who: String },
    #[error("{who} is not in a reviewer group of rule {rule:?} (needs one of: {groups})")]
    NotAReviewer {
        who: String,
        rule: String,
        groups: String,
    },
    #[error("{who} already approved review {id}; it needs another reviewer's approval")]
    AlreadyApproved { id: String, who: String },
    #[error("a rejection needs a reason (--reason TEXT)")]
    ReasonRequired,
    #[error("review {id} is {status}; only a pending or approved review can be revoked")]
    NotRevocable { id: String, status: String },
    #[error("only the requester or a reviewer of rule {rule:?} can revoke review {id}")]
    CannotRevoke { id: String, rule: String },
}

/// Why a review cannot be used to run a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UseError {
    #[error("review {id} is still pending ({have} of {need} approvals)")]
    Pending { id: String, have: usize, need: u32 },
    #[error("review {id} was rejected{by}")]
    Rejected { id: String, by: String },
    #[error("review {id} expired")]
    Expired { id: String },
    #[error("review {id} was revoked{by}")]
    Revoked { id: String, by: String },
    #[error("review {id} was already used (approvals are single-use); ask for a new review")]
    Used { id: String },
    #[error("review {id} was given for another command, target or identity")]
    Mismatch { id: String },
}

impl ReviewInfo {
    /// Applies the passage of time: a pending review, or an approval never used, expires.
    /// Returns whether the status changed.
    pub fn expire(&mut self, now_ms: i64) -> bool {
        if (self.status == PENDING || self.status == APPROVED) && now_ms >= self.expires_at {
            self.status = EXPIRED.into();
            self.decided_at = Some(self.expires_at);
            return true;
        }
        false
    }

    /// Who approved, in order.
    pub fn approvers(&self) -> Vec<&str> {
        self.decisions
            .iter()
            .filter(|d| d.decision == "approve")
            .map(|d| d.reviewer.as_str())
            .collect()
    }

    fn approvals(&self) -> usize {
        self.approvers().len()
    }

    /// ` by REVIEWER: reason` of the latest decision (of kind `decision`, if given); empty
    /// when there is none.
    pub fn decided_by(&self, decision: Option<&str>) -> String {
        self.decisions
            .iter()
            .rev()
            .find(|d| decision.is_none_or(|k| d.decision == k))
            .map(|d| {
                format!(
                    " by {}{}",
                    d.reviewer,
                    d.reason
                        .as_deref()
                        .map(|r| format!(": {r}"))
                        .unwrap_or_default()
                )
            })
            .unwrap_or_default()
    }

    fn may_review(&self, who: &Identity) -> bool {
        who.groups.iter().any(|g| self.reviewers.contains(g))
    }

    /// A reviewer approves (`approve`) or rejects. Expiry is applied first.
    pub fn decide(
        &mut self,
        who: &Identity,
        approve: bool,
        reason: Option<String>,
        now_ms: i64,
        ttl_ms: i64,
    ) -> Result<(), DecideError> {
        self.expire(now_ms);
        if self.status != PENDING {
            return Err(DecideError::NotPending {
                id: self.id.clone(),
                status: self.status.clone(),
            });
        }
        if who.subject == self.requester {
            return Err(DecideError::OwnRequest {
                id: self.id.clone(),
                who: who.subject.clone(),
            });
        }
        if !self.may_review(who) {
            return Err(DecideError::NotAReviewer {
                who: who.subject.clone(),
                rule: self.rule.clone(),
                groups: self.reviewers.join(", "),
            });
        }
        let reason = reason
            .map(|r| r.trim().to_string())
            .filter(|r| !r.is_empty());
        if !approve && reason.is_none() {
            return Err(DecideError::ReasonRequired);
        }
        if approve
            && self
                .decisions
                .iter()
                .any(|d| d.reviewer == who.subject && d.decision == "approve")
        {
            return Err(DecideError::AlreadyApproved {
                id: self.id.clone(),
                who: who.subject.clone(),
            });
        }
        self.decisions.push(ReviewDecision {
            reviewer: who.subject.clone(),
            decision: if approve { "approve" } else { "reject" }.into(),
            reason,
            at: now_ms,
        });
        if !approve {
            self.status = REJECTED.into();
            self.decided_at = Some(now_ms);
        } else if self.approvals() >= self.min_approvals as usize {
            self.status = APPROVED.into();
            self.decided_at = Some(now_ms);
            // An approval is for now, not forever: it must be used within one ttl.
            self.expires_at = now_ms.saturating_add(ttl_ms);
        }
        self.version += 1;
        Ok(())
    }

    /// The requester withdraws their request, or a reviewer withdraws an approval not yet
    /// used. `None` as identity: the gateway itself (the session the line belonged to ended).
    pub fn revoke(
        &mut self,
        who: Option<&Identity>,
        reason: Option<String>,
        now_ms: i64,
    ) -> Result<(), DecideError> {
        self.expire(now_ms);
        if self.status != PENDING && self.status != APPROVED {
            return Err(DecideError::NotRevocable {
                id: self.id.clone(),
                status: self.status.clone(),
            });
        }
        if let Some(who) = who {
            if who.subject != self.requester && !self.may_review(who) {
                return Err(DecideError::CannotRevoke {
                    id: self.id.clone(),
                    rule: self.rule.clone(),
                });
            }
        }
        self.decisions.push(ReviewDecision {
            reviewer: who.map_or_else(|| "gateway".to_string(), |w| w.subject.clone()),
            decision: "revoke".into(),
            reason: reason
                .map(|r| r.trim().to_string())
                .filter(|r| !r.is_empty()),
            at: now_ms,
        });
        self.status = REVOKED.into();
        self.decided_at = Some(now_ms);
        self.version += 1;
        Ok(())
    }

    /// Uses an approval to run `hash` for `requester`: approved → executed. Anything else
    /// is refused, saying why.
    pub fn consume(
        &mut self,
        requester: &str,
        hash: &str,
        session: &str,
        now_ms: i64,
    ) -> Result<(), UseError> {
        self.expire(now_ms);
        let id = self.id.clone();
        let by = |d: &str| self.decided_by(Some(d));
        // The binding is checked first: a review for another command says nothing about this
        // one, whatever its state.
        if self.requester != requester || self.command_hash != hash {
            return Err(UseError::Mismatch { id });
        }
        match self.status.as_str() {
            APPROVED => {
                self.status = EXECUTED.into();
                self.executed_at = Some(now_ms);
                self.executed_session = Some(session.to_string());
                self.version += 1;
                Ok(())
            }
            PENDING => Err(UseError::Pending {
                id,
                have: self.approvals(),
                need: self.min_approvals,
            }),
            REJECTED => Err(UseError::Rejected {
                by: by("reject"),
                id,
            }),
            EXPIRED => Err(UseError::Expired { id }),
            REVOKED => Err(UseError::Revoked {
                by: by("revoke"),
                id,
            }),
            _ => Err(UseError::Used { id }),
        }
    }

    /// The review as shown outside the gateway: without its binding hash.
    pub fn public(mut self) -> ReviewInfo {
        self.command_hash.clear();
        self
    }

    /// The review as evidence on a session.
    pub fn record(&self) -> crate::proto::ApprovalRecord {
        crate::proto::ApprovalRecord {
            review_id: self.id.clone(),
            rule: self.rule.clone(),
            kind: self.kind.clone(),
            command: self.command.clone(),
            status: self.status.clone(),
            decisions: self.decisions.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who(name: &str, groups: &[&str]) -> Identity {
        Identity {
            subject: name.into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
        }
    }

    fn review(min: u32) -> ReviewInfo {
        ReviewInfo {
            id: "r1".into(),
            status: PENDING.into(),
            kind: "command".into(),
            requester: "agent".into(),
            target: "pg".into(),
            command: "psql -c 'delete from t'".into(),
            command_hash: command_hash(b"k", "agent", "pg", "command", b"x"),
            rule: "deletes".into(),
            reviewers: vec!["dba".into()],
            min_approvals: min,
            created_at: 0,
            expires_at: 1000,
            ..Default::default()
        }
    }

    #[test]
    fn approve_then_use_once() {
        let mut r = review(1);
        r.decide(&who("alice", &["dba"]), true, None, 10, 500)
            .unwrap();
        assert_eq!(r.status, APPROVED);
        assert_eq!(r.expires_at, 510);
        let hash = r.command_hash.clone();
        r.consume("agent", &hash, "s1", 20).unwrap();
        assert_eq!(r.status, EXECUTED);
        assert_eq!(
            r.consume("agent", &hash, "s2", 30),
            Err(UseError::Used { id: "r1".into() })
        );
    }

    #[test]
    fn nobody_approves_their_own_request_or_without_the_group() {
        let mut r = review(1);
        assert!(matches!(
            r.decide(&who("agent", &["dba"]), true, None, 1, 500),
            Err(DecideError::OwnRequest { .. })
        ));
        assert!(matches!(
            r.decide(&who("bob", &["dev"]), true, None, 1, 500),
            Err(DecideError::NotAReviewer { .. })
        ));
        assert_eq!(r.status, PENDING);
        assert!(r.decisions.is_empty());
    }

    #[test]
    fn two_approvals_from_two_people() {
        let mut r = review(2);
        let alice = who("alice", &["dba"]);
        r.decide(&alice, true, None, 1, 500).unwrap();
        assert_eq!(r.status, PENDING);
        assert!(matches!(
            r.decide(&alice, true, None, 2, 500),
            Err(DecideError::AlreadyApproved { .. })
        ));
        let hash = r.command_hash.clone();
        assert!(matches!(
            r.consume("agent", &hash, "s", 3),
            Err(UseError::Pending {
                have: 1,
                need: 2,
                ..
            })
        ));
        r.decide(&who("carol", &["dba"]), true, None, 4, 500)
            .unwrap();
        assert_eq!(r.status, APPROVED);
    }

    #[test]
    fn rejection_needs_a_reason_and_is_final() {
        let mut r = review(1);
        let alice = who("alice", &["dba"]);
        assert_eq!(
            r.decide(&alice, false, Some("  ".into()), 1, 500),
            Err(DecideError::ReasonRequired)
        );
        r.decide(&alice, false, Some("not in prod".into()), 1, 500)
            .unwrap();
        assert_eq!(r.status, REJECTED);
        let hash = r.command_hash.clone();
        let e = r.consume("agent", &hash, "s", 2).unwrap_err();
        assert_eq!(
            e.to_string(),
            "review r1 was rejected by alice: not in prod"
        );
        assert!(matches!(
            r.decide(&who("carol", &["dba"]), true, None, 3, 500),
            Err(DecideError::NotPending { .. })
        ));
    }

    #[test]
    fn pending_and_unused_approvals_expire() {
        let mut r = review(1);
        assert!(matches!(
            r.decide(&who("alice", &["dba"]), true, None, 1000, 500),
            Err(DecideError::NotPending { .. })
        ));
        assert_eq!(r.status, EXPIRED);
        let mut r = review(1);
        r.decide(&who("alice", &["dba"]), true, None, 10, 500)
            .unwrap();
        let hash = r.command_hash.clone();
        assert_eq!(
            r.consume("agent", &hash, "s", 510),
            Err(UseError::Expired { id: "r1".into() })
        );
    }

    #[test]
    fn an_approval_is_for_one_command_and_one_requester() {
        let mut r = review(1);
        r.decide(&who("alice", &["dba"]), true, None, 1, 500)
            .unwrap();
        let other = command_hash(b"k", "agent", "pg", "command", b"y");
        assert!(matches!(
            r.consume("agent", &other, "s", 2),
            Err(UseError::Mismatch { .. })
        ));
        let hash = r.command_hash.clone();
        assert!(matches!(
            r.consume("mallory", &hash, "s", 2),
            Err(UseError::Mismatch { .. })
        ));
        assert_eq!(
            r.status, APPROVED,
            "a refused use does not spend the approval"
        );
    }

    #[test]
    fn revoke_by_requester_or_reviewer_only() {
        let mut r = review(1);
        assert!(matches!(
            r.revoke(Some(&who("bob", &["dev"])), None, 1),
            Err(DecideError::CannotRevoke { .. })
        ));
        r.revoke(Some(&who("agent", &[])), Some("not needed".into()), 1)
            .unwrap();
        assert_eq!(r.status, REVOKED);
    }

    #[test]
    fn hashes_bind_every_part() {
        let base = command_hash(b"k", "a", "t", "command", b"x");
        assert_ne!(base, command_hash(b"K", "a", "t", "command", b"x"));
        assert_ne!(base, command_hash(b"k", "b", "t", "command", b"x"));
        assert_ne!(base, command_hash(b"k", "a", "u", "command", b"x"));
        assert_ne!(base, command_hash(b"k", "a", "t", "line", b"x"));
        assert_ne!(base, command_hash(b"k", "a", "t", "command", b"y"));
        // Length prefixes: moving a byte between parts changes the hash.
        assert_ne!(
            command_hash(b"k", "ab", "t", "command", b"x"),
            command_hash(b"k", "a", "bt", "command", b"x")
        );
    }

    #[test]
    fn commands_display_shell_quoted() {
        let argv: Vec<String> = ["psql", "-c", "delete from t where name = 'x'"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            display_argv(&argv),
            "psql -c 'delete from t where name = '\\''x'\\'''"
        );
    }
}
