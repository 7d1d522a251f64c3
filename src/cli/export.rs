//! `hoopx sessions export OUT`: evidence for an audit, in a directory `hoopx verify OUT`
//! checks offline — each session's recording, the reviews it ran under, the stretch of the
//! ledger that covers the sessions, the gateway's public keys and a readable summary.
//!
//! ```text
//! OUT/manifest.json      what was exported, with which filter, from which gateway
//! OUT/keys.json          the gateway's public keys (trusted only if you trust them: --key)
//! OUT/ledger.json        ledger entries from the first exported session's opening to the head
//! OUT/reviews.json       the reviews the sessions asked for or ran under, with decisions
//! OUT/sessions/ID.json   each recording, as `hoopx replay ID --format json` writes it
//! OUT/SUMMARY.md         per session: who, where, what, approvals, denials, masks, verdict
//! ```

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::source::{self, Loaded};
use super::{code, printable, verify, Failure, GatewayArgs};
use crate::proto::ReviewInfo;
use crate::recording::evidence;
use crate::recording::ledger::{self, LedgerEntry};
use crate::recording::{chain, PublicKeyInfo};

#[derive(Debug, Serialize, Deserialize)]
struct Manifest {
    hoopx_evidence: u32,
    exported_at: i64,
    /// The gateway's URL, or `embedded`.
    gateway: String,
    filter: Filter,
    sessions: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Filter {
    pub since_ms: Option<i64>,
    pub user: Option<String>,
    pub target: Option<String>,
}

impl Filter {
    fn matches(&self, identity: &str, target: &str, started_at: i64) -> bool {
        self.since_ms.is_none_or(|s| started_at >= s)
            && self.user.as_deref().is_none_or(|u| u == identity)
            && self.target.as_deref().is_none_or(|t| t == target)
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct LedgerFile {
    /// When the store's ledger began (its first entry), Unix ms: sessions started before
    /// have no entries to hold them against.
    #[serde(default)]
    began_at_ms: Option<i64>,
    /// The seq of the first entry here.
    first_seq: i64,
    /// The chain hash before it, hex.
    prev: String,
    entries: Vec<LedgerEntry>,
}

#[derive(Debug, Serialize, Deserialize)]
struct KeysFile {
    keys: Vec<PublicKeyInfo>,
}

#[derive(Debug, Serialize, Deserialize)]
struct ReviewsFile {
    reviews: Vec<ReviewInfo>,
}

/// A session id usable as a file name.
fn safe_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), Failure> {
    std::fs::write(path, bytes).map_err(|e| {
        Failure::new(
            code::CANNOT_RUN,
            format!("cannot write {}: {e}", path.display()),
        )
    })
}

fn json_pretty<T: Serialize>(v: &T) -> Vec<u8> {
    let mut out = serde_json::to_vec_pretty(v).unwrap_or_default();
    out.push(b'\n');
    out
}

/// Prepares `out`: created if missing, refused if it holds anything.
fn prepare(out: &Path) -> Result<(), Failure> {
    if out.exists() {
        let empty = std::fs::read_dir(out)
            .map(|mut d| d.next().is_none())
            .unwrap_or(false);
        if !empty {
            return Err(Failure::new(
                code::USAGE,
                format!("{} exists and is not an empty directory", out.display()),
            )
            .hint("export into a new directory: evidence is never merged into or written over"));
        }
    }
    std::fs::create_dir_all(out.join("sessions")).map_err(|e| {
        Failure::new(
            code::CANNOT_RUN,
            format!("cannot create {}: {e}", out.display()),
        )
    })
}

/// What an export wrote.
pub struct Exported {
    pub dir: PathBuf,
    pub sessions: usize,
    pub entries: usize,
    pub reviews: usize,
    pub failed: usize,
}

/// Exports the sessions `filter` selects from the gateway in use into `out`.
pub async fn export(args: &GatewayArgs, filter: Filter, out: &Path) -> Result<Exported, Failure> {
    prepare(out)?;
    let (client, embedded) = source::connect(args).await?;
    let mut q: Vec<(&'static str, String)> = vec![];
    q.extend(filter.user.clone().map(|u| ("user", u)));
    q.extend(filter.target.clone().map(|t| ("target", t)));
    let mut sessions = verify::all_sessions(&client, filter.since_ms, &q).await?;
    sessions.reverse(); // oldest first
    let keys = client.keys().await?;
    let entries = verify::whole_ledger(&client).await?;
    let ids: HashSet<&str> = sessions.iter().map(|s| s.id.as_str()).collect();
    let first = entries
        .iter()
        .position(|e| ids.contains(e.session_id.as_str()))
        .unwrap_or(entries.len());
    let prev = match first {
        0 => hex::encode(ledger::START),
        n => entries[n - 1].hash.clone(),
    };
    let segment = LedgerFile {
        began_at_ms: entries.first().map(|e| e.at_ms),
        first_seq: first as i64,
        prev,
        entries: entries[first..].to_vec(),
    };
    let mut summary = String::from("# hoopx evidence export\n\n");
    let _ = writeln!(
        summary,
        "Exported {} UTC from {}; {} session(s); ledger entries {}..{}.\n\nCheck it with `hoopx verify {} --key GATEWAY_PUBLIC_KEY` (the key as the gateway serves it at /v1/keys, obtained from the gateway, not from this directory).\n",
        super::sessions::time(chrono::Utc::now().timestamp_millis()),
        if embedded.is_some() { "the embedded gateway".to_string() } else { settings_url(args) },
        sessions.len(),
        segment.first_seq,
        segment.first_seq + segment.entries.len() as i64,
        out.display(),
    );
    let mut review_ids = BTreeMap::new();
    let mut failed = 0;
    let mut written = vec![];
    for s in &sessions {
        if !safe_id(&s.id) {
            failed += 1;
            let _ = writeln!(
                summary,
                "## (skipped) {}\n\nIts id cannot be a file name.\n",
                printable(&s.id)
            );
            continue;
        }
        let loaded = source::fetch(&client, &s.id).await?;
        let mut bytes = vec![];
        crate::recording::format::write_json(
            &mut bytes,
            &loaded.recording,
            loaded.hashes.as_deref(),
        )
        .map_err(|e| {
            Failure::new(
                code::CANNOT_RUN,
                format!("cannot write session {}: {e}", s.id),
            )
        })?;
        write_file(&out.join("sessions").join(format!("{}.json", s.id)), &bytes)?;
        let outcome = verify::check_session(&client, &loaded, None).await?;
        if !outcome.ok() {
            failed += 1;
        }
        for a in &loaded.recording.session.approvals {
            review_ids.insert(a.review_id.clone(), ());
        }
        if let Some(f) = &outcome.facts {
            for a in &f.approvals {
                review_ids.insert(a.review_id.clone(), ());
            }
        }
        summary.push_str(&session_summary(&loaded, &outcome));
        written.push(s.id.clone());
    }
    let mut reviews = vec![];
    for id in review_ids.keys() {
        // A review pruned or unknown is left out; the sessions' own markers still carry it.
        if let Ok(r) = client.review(id, 0).await {
            reviews.push(r);
        }
    }
    let manifest = Manifest {
        hoopx_evidence: 1,
        exported_at: chrono::Utc::now().timestamp_millis(),
        gateway: if embedded.is_some() {
            "embedded".into()
        } else {
            settings_url(args)
        },
        filter,
        sessions: written,
    };
    let n_reviews = reviews.len();
    write_file(&out.join("keys.json"), &json_pretty(&KeysFile { keys }))?;
    write_file(&out.join("ledger.json"), &json_pretty(&segment))?;
    write_file(
        &out.join("reviews.json"),
        &json_pretty(&ReviewsFile { reviews }),
    )?;
    write_file(&out.join("SUMMARY.md"), summary.as_bytes())?;
    // Last: a directory with a manifest is a complete export.
    write_file(&out.join("manifest.json"), &json_pretty(&manifest))?;
    Ok(Exported {
        dir: out.to_path_buf(),
        sessions: manifest.sessions.len(),
        entries: segment.entries.len(),
        reviews: n_reviews,
        failed,
    })
}

fn settings_url(args: &GatewayArgs) -> String {
    super::settings::resolve(args, None)
        .ok()
        .and_then(|r| r.gateway)
        .unwrap_or_else(|| "embedded".into())
}

/// The human-readable part of an export for one session.
fn session_summary(loaded: &Loaded, o: &verify::Outcome) -> String {
    let rec = &loaded.recording;
    let s = &rec.session;
    let mut out = String::new();
    let _ = writeln!(out, "## Session {}\n", s.id);
    let mut row = |k: &str, v: String| {
        let _ = writeln!(out, "- **{k}**: {}", printable(&v));
    };
    row("identity", s.identity.clone());
    row("target", s.target.clone());
    row("command", super::shell_join(&s.argv));
    row(
        "started",
        format!("{} UTC", super::sessions::time(s.started_at)),
    );
    match &o.facts {
        Some(f) => {
            row(
                "ended (signed)",
                format!(
                    "{} UTC, {}{}{}",
                    super::sessions::time(f.ended_at),
                    f.status,
                    f.exit_code
                        .map(|c| format!(", exit code {c}"))
                        .unwrap_or_default(),
                    f.reason
                        .as_deref()
                        .map(|r| format!(" ({r})"))
                        .unwrap_or_default()
                ),
            );
            row("denials (signed)", f.denials.to_string());
            let total: u64 = f.masks.values().sum();
            let by: Vec<String> = f.masks.iter().map(|(r, n)| format!("{r} {n}")).collect();
            row(
                "masked (signed)",
                if total == 0 {
                    "0".into()
                } else {
                    format!("{total} ({})", by.join(", "))
                },
            );
            for a in &f.approvals {
                let decisions: Vec<String> = a
                    .decisions
                    .iter()
                    .map(|d| {
                        format!(
                            "{} {} at {} UTC{}",
                            d.reviewer,
                            d.decision,
                            super::sessions::time(d.at),
                            d.reason
                                .as_deref()
                                .map(|r| format!(" ({r})"))
                                .unwrap_or_default()
                        )
                    })
                    .collect();
                row(
                    "review",
                    format!(
                        "{} {} `{}` (rule {}): {}",
                        a.review_id,
                        a.status,
                        a.command,
                        a.rule,
                        if decisions.is_empty() {
                            "no decision".into()
                        } else {
                            decisions.join("; ")
                        }
                    ),
                );
            }
        }
        None => row(
            "ended",
            "not signed (the session has not closed, or its close is missing)".into(),
        ),
    }
    let statements = crate::recording::statements::statements(rec);
    if !statements.is_empty() {
        row("statements", statements.len().to_string());
    }
    let by: Vec<String> = evidence::provenance_counts(rec)
        .iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    row("events by provenance", by.join(", "));
    row("verification", verify::summary(o).replace('\n', "; "));
    if !statements.is_empty() {
        out.push_str("\n```sql\n");
        for (_, st) in statements.iter().take(200) {
            let text = st
                .get("text")
                .and_then(|v| v.as_str())
                .unwrap_or("")
                .trim_end();
            let status = st.get("status").and_then(|v| v.as_str()).unwrap_or("");
            let _ = writeln!(
                out,
                "-- {status}\n{}",
                printable(text).replace("```", "'''")
            );
        }
        if statements.len() > 200 {
            let _ = writeln!(
                out,
                "-- … {} more: hoopx replay FILE --format sql",
                statements.len() - 200
            );
        }
        out.push_str("```\n");
    }
    out.push('\n');
    out
}

/// What `hoopx verify DIR` found.
pub struct DirReport {
    pub sessions: Vec<(String, String)>,
    pub problems: Vec<String>,
    pub entries: usize,
    pub head: Option<ledger::Head>,
    pub signer: Option<String>,
}

impl DirReport {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }

    pub fn text(&self) -> String {
        let mut lines = vec![];
        if self.ok() {
            lines.push(format!(
                "OK: {} session(s) verify, and the ledger's {} entries chain, are signed and match them",
                self.sessions.len(),
                self.entries
            ));
        }
        for p in &self.problems {
            lines.push(format!("FAILED: {p}"));
        }
        for (id, line) in &self.sessions {
            lines.push(format!("{id}: {line}"));
        }
        if let Some(h) = &self.head {
            lines.push(format!("head: {}", h.short()));
        }
        if let Some(s) = &self.signer {
            lines.push(format!("signer: {s}"));
        }
        lines.join("\n")
    }

    pub fn to_json(&self) -> serde_json::Value {
        json!({
            "ok": self.ok(),
            "sessions": self.sessions.iter().map(|(id, v)| json!({"id": id, "result": v})).collect::<Vec<_>>(),
            "entries": self.entries,
            "head": self.head,
            "problems": self.problems,
            "signer": self.signer,
        })
    }
}

fn read_json<T: for<'de> Deserialize<'de>>(dir: &Path, name: &str) -> Result<T, Failure> {
    let path = dir.join(name);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        Failure::new(
            code::NOT_FOUND,
            format!("cannot read {}: {e}", path.display()),
        )
        .hint("give the directory `hoopx sessions export` wrote")
    })?;
    serde_json::from_str(&text).map_err(|e| {
        Failure::new(
            code::USAGE,
            format!("{} is not an export's {name}: {e}", path.display()),
        )
    })
}

/// Checks an export offline: every recording, the ledger stretch, and that they agree.
pub fn verify_dir(
    dir: &Path,
    key: Option<&VerifyingKey>,
    trusted: &[VerifyingKey],
) -> Result<DirReport, Failure> {
    let manifest: Manifest = read_json(dir, "manifest.json")?;
    let keys_file: KeysFile = read_json(dir, "keys.json")?;
    let segment: LedgerFile = read_json(dir, "ledger.json")?;
    let mut problems = vec![];
    // The export's own keys vouch for nothing: a key passed or trusted here must match.
    let keys: Vec<VerifyingKey> = match key {
        Some(k) => vec![*k],
        None => keys_file
            .keys
            .iter()
            .filter_map(|k| chain::parse_public_key(&k.public_key).ok())
            .filter(|k| trusted.contains(k))
            .collect(),
    };
    if keys.is_empty() {
        problems.push(
            "none of the export's keys is a key you trust: pass the gateway's public key with --key (from the gateway's /v1/keys, not from the export)"
                .to_string(),
        );
    }
    let prev = ledger::parse_hash(&segment.prev).ok_or_else(|| {
        Failure::new(code::USAGE, "ledger.json: `prev` is not a hash".to_string())
    })?;
    let head = match ledger::check(&segment.entries, segment.first_seq, &prev, &keys) {
        Ok(c) => c.head,
        Err(why) => {
            problems.push(format!("the ledger: {why}"));
            None
        }
    };
    let mut by_session: BTreeMap<&str, Vec<LedgerEntry>> = BTreeMap::new();
    for e in &segment.entries {
        by_session.entry(&e.session_id).or_default().push(e.clone());
    }
    let listed: HashSet<&str> = manifest.sessions.iter().map(String::as_str).collect();
    // Sessions the ledger opened within the stretch that the filter selects must be here,
    // unless the ledger says they were pruned.
    let pruned: HashSet<&str> = segment
        .entries
        .iter()
        .filter(|e| e.kind == "prune")
        .map(|e| e.session_id.as_str())
        .collect();
    for e in segment
        .entries
        .iter()
        .filter(|e| e.kind == "open" && !pruned.contains(e.session_id.as_str()))
    {
        let Ok(body) = serde_json::from_str::<ledger::OpenBody>(&e.body) else {
            continue;
        };
        if manifest
            .filter
            .matches(&body.identity, &body.target, body.started_at)
            && !listed.contains(e.session_id.as_str())
        {
            problems.push(format!(
                "the ledger opened session {} ({} on {}), which the export's filter selects, but the export lacks it",
                e.session_id, body.identity, body.target
            ));
        }
    }
    if let Ok(files) = std::fs::read_dir(dir.join("sessions")) {
        for f in files.flatten() {
            let name = f.file_name().to_string_lossy().to_string();
            let id = name.strip_suffix(".json").unwrap_or(&name);
            if !listed.contains(id) {
                problems.push(format!(
                    "sessions/{name} is not in the export's manifest: it was added afterwards"
                ));
            }
        }
    }
    let mut sessions = vec![];
    let mut signer = None;
    for id in &manifest.sessions {
        if !safe_id(id) {
            problems.push(format!(
                "the manifest names a session {id:?} that cannot be a file"
            ));
            continue;
        }
        let path = dir.join("sessions").join(format!("{id}.json"));
        let loaded = match source::load_file(&path.to_string_lossy()) {
            Ok(l) => l,
            Err(e) => {
                problems.push(format!("session {id}: {}", e.message));
                continue;
            }
        };
        if loaded.recording.session.id != *id {
            problems.push(format!(
                "sessions/{id}.json holds session {}",
                loaded.recording.session.id
            ));
            continue;
        }
        let mut o = verify::check(&loaded, None, &keys)?;
        let list = by_session.get(id.as_str()).cloned().unwrap_or_default();
        verify::add_ledger(&mut o, &loaded.recording, &list, segment.began_at_ms, &keys);
        if let (Some(s), Ok(v)) = (&o.signer, &o.result) {
            signer = Some(format!("{} is {}", v.key_id, s.says));
        }
        if let Err(f) = &o.result {
            problems.push(format!("session {id}: {f}"));
        }
        problems.extend(o.problems.iter().cloned());
        sessions.push((
            id.clone(),
            verify::summary(&o)
                .lines()
                .next()
                .unwrap_or_default()
                .to_string(),
        ));
    }
    Ok(DirReport {
        sessions,
        problems,
        entries: segment.entries.len(),
        head,
        signer,
    })
}
