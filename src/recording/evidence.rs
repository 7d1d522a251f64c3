//! What a recording proves beyond its events: the session's final facts, signed as its last
//! event, and who each event comes from. Pure; used by `verify`, `sessions show`, replay and
//! exports.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::chain::session_genesis;
use super::ledger::{CloseBody, LedgerEntry, OpenBody};
use super::{EventKind, Recording};
use crate::proto::{ApprovalRecord, SessionInfo};

/// The session's end as the gateway signed it: the last event of a closed recording, a
/// marker `{"closed": …}` under the closing checkpoint. The store keeps the same fields on
/// the session for listing; only these are evidence.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClosedFacts {
    pub status: String,
    pub ended_at: i64,
    pub exit_code: Option<i32>,
    pub reason: Option<String>,
    pub bytes_in: i64,
    pub bytes_out: i64,
    pub masks: BTreeMap<String, u64>,
    pub denials: i64,
    #[serde(default)]
    pub approvals: Vec<ApprovalRecord>,
    /// Which kind of gateway signed: `served` (`hoopx gateway serve`) or `embedded` (run
    /// in-process by the user's own hoopx, whose key that user holds).
    pub gateway: String,
}

impl ClosedFacts {
    /// The marker event's JSON.
    pub fn marker(&self) -> serde_json::Value {
        serde_json::json!({ "closed": self })
    }
}

/// The signed final facts of a recording: its last event, when that is a `closed` marker.
/// (Whether a checkpoint covers it is `chain::verify`'s to say.)
pub fn closed_facts(rec: &Recording) -> Option<ClosedFacts> {
    let last = rec.events.last()?;
    if last.kind != EventKind::Marker {
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(&last.data).ok()?;
    serde_json::from_value(v.get("closed")?.clone()).ok()
}

/// A session closed as `abandoned` by another replica than the one that served it, as its
/// recording shows: how much of it the serving replica signed itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Abandoned {
    /// The replica that served the session and stopped renewing its lease.
    pub replica: Option<String>,
    /// The replica that closed it.
    pub closed_by: Option<String>,
    /// Events signed by the serving replica's checkpoints (the first `signed_through`).
    pub signed_through: i64,
    /// Events after those, recorded but signed only by the closing replica, as it found
    /// them in the store.
    pub unsigned_tail: i64,
}

/// What an abandoned recording's own checkpoints say of it; `None` unless its signed close
/// says `abandoned`. Counted from the checkpoints, not taken from the closer's marker.
pub fn abandoned(rec: &Recording) -> Option<Abandoned> {
    let facts = closed_facts(rec)?;
    if facts.status != "abandoned" {
        return None;
    }
    let signed_through = rec
        .checkpoints
        .iter()
        .filter(|c| !c.last)
        .map(|c| c.count)
        .max()
        .unwrap_or(0);
    // The closer's two events: its marker and the close.
    let recorded = rec.events.len() as i64 - 2;
    let marker = rec
        .events
        .iter()
        .rev()
        .nth(1)
        .and_then(|e| serde_json::from_slice::<serde_json::Value>(&e.data).ok())
        .and_then(|v| v.get("abandoned").cloned());
    let field = |k: &str| {
        marker
            .as_ref()
            .and_then(|m| m.get(k))
            .and_then(|v| v.as_str())
            .map(String::from)
    };
    Some(Abandoned {
        replica: field("replica"),
        closed_by: field("closed_by"),
        signed_through,
        unsigned_tail: (recorded - signed_through).max(0),
    })
}

/// Where a stored session's fields disagree with its signed facts, one sentence each.
pub fn disagreements(s: &SessionInfo, f: &ClosedFacts) -> Vec<String> {
    let mut out = vec![];
    let mut differ = |what: &str, stored: String, signed: String| {
        if stored != signed {
            out.push(format!(
                "the stored {what} ({stored}) disagrees with the signed close ({signed})"
            ));
        }
    };
    let opt = |v: Option<String>| v.unwrap_or_else(|| "none".into());
    differ("status", s.status.clone(), f.status.clone());
    differ(
        "exit code",
        opt(s.exit_code.map(|c| c.to_string())),
        opt(f.exit_code.map(|c| c.to_string())),
    );
    differ("reason", opt(s.reason.clone()), opt(f.reason.clone()));
    differ(
        "end time",
        opt(s.ended_at.map(|t| t.to_string())),
        f.ended_at.to_string(),
    );
    differ(
        "input bytes",
        s.bytes_in.to_string(),
        f.bytes_in.to_string(),
    );
    differ(
        "output bytes",
        s.bytes_out.to_string(),
        f.bytes_out.to_string(),
    );
    differ(
        "mask counts",
        format!("{:?}", s.masks),
        format!("{:?}", f.masks),
    );
    differ("denials", s.denials.to_string(), f.denials.to_string());
    let ids = |a: &[ApprovalRecord]| {
        a.iter()
            .map(|r| format!("{} {}", r.review_id, r.status))
            .collect::<Vec<_>>()
            .join(", ")
    };
    differ("reviews", ids(&s.approvals), ids(&f.approvals));
    out
}

/// Whether a session started before the store's ledger began (its start time is in the
/// signed genesis, so it cannot be moved back without breaking the chain).
pub fn predates_ledger(s: &SessionInfo, ledger_began: Option<i64>) -> bool {
    ledger_began.is_none_or(|b| s.started_at < b)
}

/// Who vouches for an event's content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Provenance {
    /// Seen by the gateway on its own connection to the target (a PostgreSQL statement and
    /// its outcome): the client could not have made it up.
    Observed,
    /// The gateway's own decision or accounting (denials, reviews, masks, the close).
    Gateway,
    /// Reported by the caller's hoopx: a local tool's terminal input and output, resizes,
    /// the tool's exit. The gateway masked and recorded it, but only the client saw it.
    Client,
}

impl Provenance {
    pub fn as_str(self) -> &'static str {
        match self {
            Provenance::Observed => "observed",
            Provenance::Gateway => "gateway",
            Provenance::Client => "client",
        }
    }
}

/// Whether a marker is the gateway's record of what it saw on its own connection to the
/// target: a PostgreSQL statement, a Kubernetes request or exec stream, an SFTP transfer.
fn observed_marker(data: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(data)
        .ok()
        .and_then(|v| {
            v.as_object().map(|o| {
                ["statement", "request", "exec", "transfer"]
                    .iter()
                    .any(|k| o.contains_key(*k))
            })
        })
        .unwrap_or(false)
}

/// Whether an event opens a remote terminal: the `{"ssh":…}` marker of a session whose
/// terminal is the gateway's own SSH channel (no tool ran on the client).
pub fn opens_remote_terminal(kind: EventKind, data: &[u8]) -> bool {
    kind == EventKind::Marker
        && serde_json::from_slice::<serde_json::Value>(data)
            .ok()
            .is_some_and(|v| v.get("ssh").is_some_and(|s| s.is_object()))
}

/// Whose word an event is. A function of the event's signed kind and content, and of
/// whether an earlier event of the session opened a remote terminal (`remote`): there the
/// output and the exit are what the gateway read from its own SSH channel. So it cannot be
/// relabelled without breaking the chain.
pub fn provenance(kind: EventKind, data: &[u8], remote: bool) -> Provenance {
    match kind {
        EventKind::Output | EventKind::Stderr | EventKind::Exit if remote => Provenance::Observed,
        EventKind::Input
        | EventKind::Output
        | EventKind::Stderr
        | EventKind::Resize
        | EventKind::Exit => Provenance::Client,
        EventKind::Marker if observed_marker(data) => Provenance::Observed,
        EventKind::Marker => Provenance::Gateway,
    }
}

/// Events of a recording by provenance.
pub fn provenance_counts(rec: &Recording) -> BTreeMap<&'static str, u64> {
    let mut out = BTreeMap::new();
    let mut remote = false;
    for e in &rec.events {
        remote |= opens_remote_terminal(e.kind, &e.data);
        *out.entry(provenance(e.kind, &e.data, remote).as_str())
            .or_default() += 1;
    }
    out
}

/// Where a recording disagrees with what the ledger entered for its session (`entries`: that
/// session's entries, whose signatures the caller checks), one sentence each. An empty
/// `entries` means the ledger does not know the session: a finding, unless the session
/// started before the ledger's first entry (`ledger_began`, Unix ms; `None`: the ledger is
/// empty), i.e. it was recorded by a hoopx without a ledger (see [`predates_ledger`]).
pub fn ledger_findings(
    rec: &Recording,
    entries: &[LedgerEntry],
    ledger_began: Option<i64>,
) -> Vec<String> {
    let s = &rec.session;
    let mut out = vec![];
    if entries.is_empty() && predates_ledger(s, ledger_began) {
        return out;
    }
    let open = entries.iter().find(|e| e.kind == "open");
    match open.map(|e| serde_json::from_str::<OpenBody>(&e.body)) {
        None => out.push(format!(
            "session {} is not in the ledger: it was put into the store behind the gateway's back, or recorded before the store had a ledger",
            s.id
        )),
        Some(Err(_)) => out.push(format!(
            "the ledger's opening entry of session {} is unreadable",
            s.id
        )),
        Some(Ok(body)) => {
            if body.genesis != hex::encode(session_genesis(s)) {
                out.push(format!(
                    "the stored identity, target, command, mode or start time of session {} differ from what the ledger entered when it opened ({} on {})",
                    s.id, body.identity, body.target
                ));
            }
        }
    }
    let Some(close) = entries.iter().find(|e| e.kind == "close") else {
        if !matches!(s.status.as_str(), "open" | "running") {
            out.push(format!(
                "the store says session {} ended ({}), but the ledger never closed it",
                s.id, s.status
            ));
        }
        return out;
    };
    let Ok(body) = serde_json::from_str::<CloseBody>(&close.body) else {
        out.push(format!(
            "the ledger's closing entry of session {} is unreadable",
            s.id
        ));
        return out;
    };
    if matches!(s.status.as_str(), "open" | "running") {
        out.push(format!(
            "the store says session {} is {}, but the ledger closed it ({}, {} events): it was re-opened",
            s.id,
            s.status,
            body.status,
            body.events.map_or_else(|| "?".into(), |n| n.to_string())
        ));
    }
    let closing = rec.checkpoints.iter().rev().find(|c| c.last);
    match (closing, body.events, &body.head) {
        (Some(c), Some(n), Some(h)) if c.count == n && &c.hash == h => {}
        (None, Some(n), Some(_)) => out.push(format!(
            "the ledger closed session {} after {n} events, but its recording has no closing checkpoint: its end was cut off",
            s.id
        )),
        (Some(c), Some(n), Some(_)) => out.push(format!(
            "the ledger closed session {} after {n} events, but its recording closes after {} with another chain head: the recording was replaced",
            s.id, c.count
        )),
        (Some(_), _, _) => out.push(format!(
            "the ledger closed session {} without a closing checkpoint, but its recording has one",
            s.id
        )),
        (None, _, _) => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recording::Event;

    fn facts() -> ClosedFacts {
        ClosedFacts {
            status: "exited".into(),
            ended_at: 5,
            exit_code: Some(3),
            reason: None,
            bytes_in: 10,
            bytes_out: 20,
            masks: [("email".to_string(), 2u64)].into(),
            denials: 1,
            approvals: vec![],
            gateway: "served".into(),
        }
    }

    fn rec_with_last(data: Vec<u8>) -> Recording {
        Recording {
            session: SessionInfo::default(),
            keys: vec![],
            events: vec![Event {
                seq: 0,
                t_us: 0,
                kind: EventKind::Marker,
                data,
            }],
            checkpoints: vec![],
        }
    }

    #[test]
    fn an_abandoned_recording_says_how_much_its_own_replica_signed() {
        let ev = |seq: i64, data: serde_json::Value| Event {
            seq,
            t_us: seq,
            kind: EventKind::Marker,
            data: data.to_string().into_bytes(),
        };
        let cp = |count: i64, last: bool| crate::recording::Checkpoint {
            count,
            hash: String::new(),
            key_id: String::new(),
            signature: String::new(),
            last,
        };
        let mut f = facts();
        f.status = "abandoned".into();
        let mut events: Vec<Event> = (0..5).map(|i| ev(i, serde_json::json!({"n": i}))).collect();
        events.push(ev(
            5,
            serde_json::json!({"abandoned": {"replica": "r1", "closed_by": "r2"}}),
        ));
        events.push(ev(6, f.marker()));
        let mut rec = Recording {
            session: SessionInfo::default(),
            keys: vec![],
            events,
            checkpoints: vec![cp(1, false), cp(3, false), cp(7, true)],
        };
        assert_eq!(
            abandoned(&rec),
            Some(Abandoned {
                replica: Some("r1".into()),
                closed_by: Some("r2".into()),
                signed_through: 3,
                unsigned_tail: 2,
            })
        );
        rec.checkpoints = vec![cp(7, true)];
        assert_eq!(
            abandoned(&rec).map(|a| (a.signed_through, a.unsigned_tail)),
            Some((0, 5))
        );
        f.status = "exited".into();
        *rec.events.last_mut().unwrap() = ev(6, f.marker());
        assert_eq!(abandoned(&rec), None, "only an abandoned close");
    }

    #[test]
    fn facts_come_from_the_last_event_only() {
        let f = facts();
        let rec = rec_with_last(f.marker().to_string().into_bytes());
        assert_eq!(closed_facts(&rec), Some(f.clone()));
        let mut rec2 = rec.clone();
        rec2.events.push(Event {
            seq: 1,
            t_us: 1,
            kind: EventKind::Output,
            data: b"x".to_vec(),
        });
        assert_eq!(closed_facts(&rec2), None);
        assert_eq!(
            closed_facts(&rec_with_last(b"{\"aborted\":\"x\"}".to_vec())),
            None
        );
    }

    #[test]
    fn each_edited_field_is_named() {
        let f = facts();
        let s = SessionInfo {
            status: "exited".into(),
            ended_at: Some(5),
            exit_code: Some(3),
            bytes_in: 10,
            bytes_out: 20,
            masks: f.masks.clone(),
            denials: 1,
            ..Default::default()
        };
        assert!(disagreements(&s, &f).is_empty());
        type Edit = fn(&mut SessionInfo);
        let edits: Vec<(Edit, &str)> = vec![
            (|s| s.status = "aborted".into(), "status"),
            (|s| s.exit_code = Some(0), "exit code (0)"),
            (|s| s.reason = Some("fine".into()), "reason"),
            (|s| s.ended_at = Some(9), "end time"),
            (|s| s.bytes_in = 0, "input bytes"),
            (|s| s.bytes_out = 0, "output bytes"),
            (|s| s.masks.clear(), "mask counts"),
            (|s| s.denials = 0, "denials"),
        ];
        for (edit, what) in edits {
            let mut t = s.clone();
            edit(&mut t);
            let d = disagreements(&t, &f);
            assert_eq!(d.len(), 1, "{what}: {d:?}");
            assert!(d[0].contains(what), "{what}: {d:?}");
        }
    }

    #[test]
    fn provenance_follows_the_signed_content() {
        assert_eq!(
            provenance(EventKind::Output, b"x", false),
            Provenance::Client
        );
        assert_eq!(
            provenance(EventKind::Input, b"x", false),
            Provenance::Client
        );
        for observed in [
            &br#"{"statement":{"sql":"select 1"}}"#[..],
            br#"{"request":{"verb":"delete"}}"#,
            br#"{"transfer":{"path":"/etc/x"}}"#,
        ] {
            assert_eq!(
                provenance(EventKind::Marker, observed, false),
                Provenance::Observed
            );
        }
        assert_eq!(
            provenance(EventKind::Marker, br#"{"denied":"r"}"#, false),
            Provenance::Gateway
        );
        assert_eq!(
            provenance(EventKind::Marker, b"not json", false),
            Provenance::Gateway
        );
        // A remote terminal: output and exit come from the gateway's own SSH channel; what
        // the caller typed is still the caller's.
        assert!(opens_remote_terminal(
            EventKind::Marker,
            br#"{"ssh":{"user":"u"}}"#
        ));
        assert!(!opens_remote_terminal(
            EventKind::Output,
            br#"{"ssh":{"user":"u"}}"#
        ));
        assert_eq!(
            provenance(EventKind::Output, b"x", true),
            Provenance::Observed
        );
        assert_eq!(
            provenance(EventKind::Exit, b"{}", true),
            Provenance::Observed
        );
        assert_eq!(provenance(EventKind::Input, b"x", true), Provenance::Client);
    }

    #[test]
    fn the_ledger_catches_cut_reopened_replaced_and_unknown_sessions() {
        use crate::recording::chain::{genesis, sign};
        use crate::recording::ledger::{make_entry, parse_hash, START};
        let key = ed25519_dalek::SigningKey::from_bytes(&[1; 32]);
        let session = SessionInfo {
            id: "s".into(),
            identity: "dev".into(),
            target: "pg".into(),
            status: "exited".into(),
            ..Default::default()
        };
        let g = genesis("s", "dev", "pg", &[], session.mode, 0);
        let closing = sign(&key, "s", 0, &g, true);
        let rec = Recording {
            session: session.clone(),
            keys: vec![],
            events: vec![],
            checkpoints: vec![closing.clone()],
        };
        let open = make_entry(
            &key,
            &START,
            0,
            1,
            "open",
            "s",
            serde_json::to_string(&OpenBody {
                identity: "dev".into(),
                target: "pg".into(),
                started_at: 0,
                genesis: hex::encode(g),
            })
            .unwrap(),
        );
        let close_body = |events: Option<i64>, head: Option<String>| {
            serde_json::to_string(&CloseBody {
                status: "exited".into(),
                ended_at: 2,
                events,
                head,
            })
            .unwrap()
        };
        let prev = parse_hash(&open.hash).unwrap();
        let close = make_entry(
            &key,
            &prev,
            1,
            2,
            "close",
            "s",
            close_body(Some(0), Some(closing.hash.clone())),
        );
        let both = [open.clone(), close.clone()];
        assert!(
            ledger_findings(&rec, &both, Some(0)).is_empty(),
            "{:?}",
            ledger_findings(&rec, &both, Some(0))
        );

        // Unknown to the ledger.
        assert!(ledger_findings(&rec, &[], Some(0))[0].contains("not in the ledger"));
        // Cut: the closing checkpoint is gone and the status set back to running.
        let mut cut = rec.clone();
        cut.checkpoints.clear();
        cut.session.status = "running".into();
        let f = ledger_findings(&cut, &both, Some(0));
        assert!(f.iter().any(|x| x.contains("re-opened")), "{f:?}");
        assert!(f.iter().any(|x| x.contains("cut off")), "{f:?}");
        // Replaced: closes elsewhere.
        let mut other = rec.clone();
        other.checkpoints[0].count = 5;
        assert!(ledger_findings(&other, &both, Some(0))[0].contains("replaced"));
        // Moved to another identity.
        let mut moved = rec.clone();
        moved.session.identity = "someone".into();
        assert!(ledger_findings(&moved, &both, Some(0))[0].contains("differ"));
        // Ended in the store, never closed in the ledger.
        assert!(ledger_findings(&rec, &[open], Some(0))[0].contains("never closed"));
        // Recorded before the store had a ledger: nothing to hold it against.
        assert!(ledger_findings(&rec, &[], Some(1)).is_empty());
        assert!(ledger_findings(&rec, &[], None).is_empty());
    }
}
