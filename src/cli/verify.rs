//! `hoopx verify SESSION|FILE|DIR|last [--key PUBKEY]` proves a recording unaltered; `hoopx
//! verify --all` checks the gateway's session ledger against every session of its store.
//!
//! A session is checked three ways: its hash chain and signed checkpoints; the stored
//! fields against the final facts its last event signs; and its ledger entries (entered when
//! it opened and closed), which catch a session cut short, re-opened or inserted.

use std::collections::{BTreeMap, HashSet};
use std::process::ExitCode;

use clap::Args;
use ed25519_dalek::VerifyingKey;
use serde_json::json;

use super::source::{self, Loaded};
use super::{code, parse_duration, Failure, GatewayArgs, OutputFormat};
use crate::client::GatewayClient;
use crate::proto::SessionInfo;
use crate::recording::evidence::{self, ClosedFacts};
use crate::recording::ledger::{self, LedgerEntry};
use crate::recording::{chain, Recording};

#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub gateway: GatewayArgs,
    /// A session id, `last`, an exported file (`hoopx replay --format json|cast|cast3`) or an
    /// evidence directory (`hoopx sessions export`).
    #[arg(
        value_name = "SESSION|FILE|DIR|last",
        required_unless_present = "all",
        conflicts_with = "all"
    )]
    pub what: Option<String>,
    /// Check the gateway's whole session ledger against the sessions in its store: every
    /// session deleted, cut short, re-opened or inserted is reported.
    #[arg(long)]
    pub all: bool,
    /// With --all: check only sessions started within this long, e.g. 24h, 30d (the ledger
    /// itself is always checked whole).
    #[arg(long, value_name = "DUR", requires = "all", value_parser = parse_duration)]
    pub since: Option<std::time::Duration>,
    /// With --all: a ledger head kept from an earlier run (`SIZE:HASH`, as printed); the
    /// ledger must still begin with exactly those entries.
    #[arg(long, value_name = "SIZE:HASH", requires = "all")]
    pub head: Option<String>,
    /// The public key to trust: base64 of the 32 key bytes, a PEM block, or a file holding
    /// either (the gateway serves its keys at /v1/keys). Without it: the gateway's key for a
    /// session; for a file, its key only if it is the configured gateway's or one of this
    /// machine's gateways'.
    #[arg(long, value_name = "PUBKEY")]
    pub key: Option<String>,
    /// `text` for people, `json` for scripts and agents (shapes: docs/JSON.md).
    #[arg(short = 'o', long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

/// The outcome of checking a loaded recording.
pub struct Outcome {
    pub result: Result<chain::Verified, chain::Failure>,
    /// Said next to the result: where the trusted key came from, when that matters.
    pub note: Option<String>,
    /// What else is wrong although the chain holds: stored fields that disagree with the
    /// signed close, ledger gaps. Each fails the verification.
    pub problems: Vec<String>,
    /// The final facts the recording signs, when it closed with them.
    pub facts: Option<ClosedFacts>,
    /// Who vouches for the recording: the signing key's holder.
    pub signer: Option<Signer>,
    /// Closed as abandoned by another replica: how much its own replica signed.
    pub abandoned: Option<evidence::Abandoned>,
}

impl Outcome {
    pub fn ok(&self) -> bool {
        self.result.is_ok() && self.problems.is_empty()
    }

    fn failed(f: chain::Failure, note: Option<String>) -> Outcome {
        Outcome {
            result: Err(f),
            note,
            problems: vec![],
            facts: None,
            signer: None,
            abandoned: None,
        }
    }
}

/// What the key that signed is, and so what its signature proves.
#[derive(Debug, Clone)]
pub struct Signer {
    /// `served`, `embedded`, `given` (passed with --key) or `unknown`.
    pub holder: &'static str,
    pub says: String,
}

const EMBEDDED: &str = "an embedded gateway's key, which the user who ran that hoopx holds \
    in their own data directory: it shows the recording is as that hoopx wrote it, but the \
    user could have rewritten and re-signed it, so it is no evidence against that user";

fn parse_key_arg(arg: &str) -> Result<VerifyingKey, Failure> {
    let text = match std::fs::read_to_string(arg) {
        Ok(t) => t,
        Err(_) if !std::path::Path::new(arg).exists() => arg.to_string(),
        Err(e) => {
            return Err(Failure::new(
                code::USAGE,
                format!("cannot read key file {arg}: {e}"),
            ))
        }
    };
    chain::parse_public_key(&text).map_err(|e| {
        Failure::new(code::USAGE, format!("--key: {e}"))
            .hint("pass the base64 `public_key` from the gateway's /v1/keys, a PEM PUBLIC KEY block, or a file with either")
    })
}

/// The public key of this machine's embedded gateway, if it has one.
fn local_embedded_key() -> Option<VerifyingKey> {
    let dir = crate::dirs::data_dir()?;
    crate::gateway::signing::public_key_of(&dir.join("embedded-signing.pem"))
}

/// Who holds `key`, from what this machine knows and what the recording says.
pub fn signer_of(key: &VerifyingKey, rec: &Recording, given: bool) -> Signer {
    let kid = chain::key_id(key);
    let listed = rec
        .keys
        .iter()
        .find(|k| k.id == kid)
        .and_then(|k| k.holder.as_deref());
    let signed_embedded = evidence::closed_facts(rec).is_some_and(|f| f.gateway == "embedded");
    if local_embedded_key().as_ref() == Some(key) || listed == Some("embedded") || signed_embedded {
        return Signer {
            holder: "embedded",
            says: EMBEDDED.into(),
        };
    }
    if given {
        return Signer {
            holder: "given",
            says: "the key you passed with --key".into(),
        };
    }
    if listed == Some("served") {
        return Signer {
            holder: "served",
            says: "the key of the gateway that serves this recording (hoopx gateway serve)".into(),
        };
    }
    Signer {
        holder: "unknown",
        says: "a key you trust".into(),
    }
}

/// Checks `loaded` against `key` (given), else the key its source vouches for: the gateway's
/// for a session, one of `trusted` for a file. Also compares the stored session's fields
/// with the signed close.
pub fn check(
    loaded: &Loaded,
    key: Option<&VerifyingKey>,
    trusted: &[VerifyingKey],
) -> Result<Outcome, Failure> {
    let rec = &loaded.recording;
    let given = key.is_some();
    let key = match key {
        Some(k) => *k,
        None => {
            let Some(wanted) = rec.checkpoints.first().map(|c| c.key_id.clone()) else {
                return Ok(Outcome::failed(
                    chain::Failure {
                        event: None,
                        reason:
                            "the recording carries no signed checkpoint, so nothing vouches for it"
                                .into(),
                    },
                    None,
                ));
            };
            let Some(info) = rec.keys.iter().find(|k| k.id == wanted) else {
                return Ok(Outcome::failed(
                    chain::Failure {
                        event: None,
                        reason: format!(
                            "it is signed by key {wanted}, which {} does not list",
                            if loaded.origin == "gateway" {
                                "the gateway"
                            } else {
                                "the file"
                            }
                        ),
                    },
                    Some("pass the signer's public key with --key".into()),
                ));
            };
            let k = chain::parse_public_key(&info.public_key).map_err(|e| {
                Failure::new(code::PROTOCOL, format!("key {wanted} is unreadable: {e}"))
            })?;
            // A file's own key vouches for nothing (whoever rewrote the file could have
            // re-signed it): it must be a key the caller trusts.
            if loaded.origin != "gateway" && !trusted.contains(&k) {
                return Ok(Outcome::failed(
                    chain::Failure {
                        event: None,
                        reason: format!(
                            "it is signed by key {wanted}, which is not a key you trust: anyone who \
                             rewrote the file could have signed it"
                        ),
                    },
                    Some(
                        "pass the gateway's public key with --key (GET /v1/keys on the gateway, no token \
                         needed), or point HOOPX_GATEWAY at the gateway that recorded it"
                            .into(),
                    ),
                ));
            }
            k
        }
    };
    let result = chain::verify(rec, loaded.hashes.as_deref(), &key);
    // Facts count only when the closing checkpoint covers them, i.e. the chain holds.
    let facts = result
        .as_ref()
        .ok()
        .filter(|v| v.complete)
        .and_then(|_| evidence::closed_facts(rec));
    let problems = match &facts {
        Some(f) => evidence::disagreements(&rec.session, f),
        None => vec![],
    };
    let abandoned = facts.as_ref().and_then(|_| evidence::abandoned(rec));
    Ok(Outcome {
        result,
        note: None,
        problems,
        facts,
        signer: Some(signer_of(&key, rec, given)),
        abandoned,
    })
}

/// The key a checked recording was verified with, for checking its ledger entries.
fn verified_key(loaded: &Loaded, key: Option<&VerifyingKey>) -> Option<VerifyingKey> {
    if let Some(k) = key {
        return Some(*k);
    }
    let wanted = loaded.recording.checkpoints.first()?.key_id.clone();
    let info = loaded.recording.keys.iter().find(|k| k.id == wanted)?;
    chain::parse_public_key(&info.public_key).ok()
}

/// Adds to `outcome` what the ledger says of the session: `entries` are its ledger
/// entries, each of whose signatures must hold under `keys`.
pub fn add_ledger(
    outcome: &mut Outcome,
    rec: &Recording,
    entries: &[LedgerEntry],
    ledger_began: Option<i64>,
    keys: &[VerifyingKey],
) {
    if entries.is_empty() && evidence::predates_ledger(&rec.session, ledger_began) {
        outcome.note = Some(
            "the session was recorded before this store had a ledger: only its own chain vouches for it"
                .into(),
        );
    }
    for e in entries {
        if let Err(why) = ledger::check_head(&ledger::head_of(e), keys) {
            outcome.problems.push(format!(
                "ledger entry {} ({} of session {}): {why}",
                e.seq, e.kind, e.session_id
            ));
        }
    }
    outcome
        .problems
        .extend(evidence::ledger_findings(rec, entries, ledger_began));
}

/// Checks a session served by the gateway: chain, signed close and ledger.
pub async fn check_session(
    client: &GatewayClient,
    loaded: &Loaded,
    key: Option<&VerifyingKey>,
) -> Result<Outcome, Failure> {
    let mut outcome = check(loaded, key, &[])?;
    if let Some(k) = verified_key(loaded, key) {
        let entries = client
            .ledger(0, 0, Some(&loaded.recording.session.id))
            .await?;
        let began = match entries.first() {
            Some(e) => Some(e.at_ms),
            None => client.ledger(0, 1, None).await?.first().map(|e| e.at_ms),
        };
        add_ledger(&mut outcome, &loaded.recording, &entries, began, &[k]);
    }
    Ok(outcome)
}

/// One line for people: `OK: …` or `FAILED: …`, then one line per further problem.
pub fn summary(o: &Outcome) -> String {
    let mut lines = vec![];
    match &o.result {
        Ok(v) if o.problems.is_empty() => {
            let mut s = format!("OK: {} events, signed by {}", v.events, v.key_id);
            if !v.complete {
                s.push_str(&format!(
                    "; the session has not closed yet ({} event(s) after the last checkpoint are not signed yet)",
                    v.unsigned_tail
                ));
            }
            lines.push(s);
            if let Some(a) = &o.abandoned {
                lines.push(abandoned_text(a));
            }
        }
        Ok(_) => {}
        Err(f) => lines.push(format!("FAILED: {f}")),
    }
    for p in &o.problems {
        lines.push(format!("FAILED: {p}"));
    }
    if let (Some(s), Ok(v)) = (&o.signer, &o.result) {
        lines.push(format!("signer: {} is {}", v.key_id, s.says));
    }
    lines.join("\n")
}

/// What an abandoned session's recording proves, for people.
pub fn abandoned_text(a: &evidence::Abandoned) -> String {
    let who = |r: &Option<String>| r.clone().unwrap_or_else(|| "?".into());
    let signed = match a.signed_through {
        0 => "no event was signed by the replica that recorded it".to_string(),
        n => format!(
            "events 0-{} were signed by the replica that recorded them",
            n - 1
        ),
    };
    format!(
        "ABANDONED: its gateway replica {} stopped renewing its lease and replica {} closed it: \
         {signed}; {} event(s) after those were never signed by it, and the closing replica \
         signed them as it found them in the store",
        who(&a.replica),
        who(&a.closed_by),
        a.unsigned_tail
    )
}

pub fn to_json(o: &Outcome) -> serde_json::Value {
    let signer = |kid: &str| {
        o.signer
            .as_ref()
            .map(|s| json!({"key_id": kid, "holder": s.holder, "says": s.says}))
    };
    match &o.result {
        Ok(v) => json!({
            "ok": o.problems.is_empty(),
            "events": v.events,
            "key_id": v.key_id,
            "complete": v.complete,
            "unsigned_tail": v.unsigned_tail,
            "problems": o.problems,
            "facts": o.facts,
            "signer": signer(&v.key_id),
            "note": o.note,
            "abandoned": o.abandoned,
        }),
        Err(f) => json!({
            "ok": false,
            "event": f.event,
            "reason": f.reason,
            "problems": o.problems,
            "note": o.note,
        }),
    }
}

/// Keys that vouch for a file without `--key`: the configured gateway's (from /v1/keys) and
/// the keys of gateways that ran on this machine under this user (embedded or served).
pub async fn trusted_keys(args: &GatewayArgs) -> Vec<VerifyingKey> {
    let mut keys = vec![];
    if let Some(dir) = crate::dirs::data_dir() {
        for name in ["embedded-signing.pem", "gateway-signing.pem"] {
            if let Some(k) = crate::gateway::signing::public_key_of(&dir.join(name)) {
                keys.push(k);
            }
        }
    }
    if let Ok(r) = super::settings::resolve(args, None) {
        if let Some(url) = &r.gateway {
            if let Ok(client) = crate::client::GatewayClient::new(url, r.token.clone()) {
                match client.keys().await {
                    Ok(list) => keys.extend(
                        list.iter()
                            .filter_map(|k| chain::parse_public_key(&k.public_key).ok()),
                    ),
                    Err(e) => crate::client::session::say(&format!(
                        "note: cannot fetch the gateway's keys to check the file against: {e}"
                    )),
                }
            }
        }
    }
    keys
}

/// What `verify --all` found.
struct AllReport {
    entries: usize,
    head: Option<ledger::Head>,
    signers: Vec<(String, i64)>,
    sessions: usize,
    /// Sessions the ledger says were pruned (removed by retention after they ended).
    pruned: usize,
    open: Vec<String>,
    problems: Vec<String>,
    embedded: bool,
}

/// Parses `SIZE:HASH`.
fn parse_head(text: &str) -> Result<(i64, String), Failure> {
    let bad = || {
        Failure::new(code::USAGE, format!("--head {text:?} is not SIZE:HASH"))
            .hint("pass the head `hoopx verify --all` printed, e.g. --head 42:3f0c…")
    };
    let (size, hash) = text.split_once(':').ok_or_else(bad)?;
    let size: i64 = size.parse().map_err(|_| bad())?;
    if size < 1 || ledger::parse_hash(hash).is_none() {
        return Err(bad());
    }
    Ok((size, hash.to_ascii_lowercase()))
}

/// Every session of the store started at or after `since_ms`, newest first, paged.
pub async fn all_sessions(
    client: &GatewayClient,
    since_ms: Option<i64>,
    extra: &[(&'static str, String)],
) -> Result<Vec<SessionInfo>, Failure> {
    let mut out: Vec<SessionInfo> = vec![];
    let mut seen = HashSet::new();
    let mut until: Option<i64> = None;
    loop {
        let mut q = vec![("limit", "1000".to_string())];
        q.extend(extra.iter().cloned());
        q.extend(since_ms.map(|s| ("since", s.to_string())));
        q.extend(until.map(|u| ("until", u.to_string())));
        let page = client.list_sessions(&q).await?;
        let full = page.len() == 1000;
        let mut fresh = 0;
        for s in page {
            until = Some(s.started_at);
            if seen.insert(s.id.clone()) {
                fresh += 1;
                out.push(s);
            }
        }
        if !full || fresh == 0 {
            return Ok(out);
        }
    }
}

/// The whole ledger, paged.
pub async fn whole_ledger(client: &GatewayClient) -> Result<Vec<LedgerEntry>, Failure> {
    let mut entries: Vec<LedgerEntry> = vec![];
    loop {
        let page = client.ledger(entries.len() as i64, 5000, None).await?;
        if page.is_empty() {
            return Ok(entries);
        }
        entries.extend(page);
    }
}

async fn verify_all(args: &VerifyArgs, key: Option<VerifyingKey>) -> Result<AllReport, Failure> {
    let kept = args.head.as_deref().map(parse_head).transpose()?;
    let (client, embedded) = source::connect(&args.gateway).await?;
    let keys: Vec<VerifyingKey> = match key {
        Some(k) => vec![k],
        None => client
            .keys()
            .await?
            .iter()
            .filter_map(|k| chain::parse_public_key(&k.public_key).ok())
            .collect(),
    };
    let entries = whole_ledger(&client).await?;
    let mut problems = vec![];
    let (head, signers) = match ledger::check(&entries, 0, &ledger::START, &keys) {
        Ok(c) => (c.head, c.signers),
        Err(why) => {
            problems.push(format!("the ledger: {why}"));
            (entries.last().map(ledger::head_of), vec![])
        }
    };
    if let Some((size, hash)) = &kept {
        match entries.get(*size as usize - 1) {
            None => problems.push(format!(
                "the ledger has {} entries, but the head you kept says {size}: entries were removed, or the ledger was rewritten",
                entries.len()
            )),
            Some(e) if &e.hash != hash => problems.push(format!(
                "ledger entry {} is not the one the head you kept names ({size}:{hash}): the ledger was rewritten",
                size - 1
            )),
            Some(_) => {}
        }
    }
    let since_ms = args
        .since
        .map(|d| chrono::Utc::now().timestamp_millis() - d.as_millis() as i64);
    let stored = all_sessions(&client, since_ms, &[]).await?;
    // Each session's entries, in ledger order.
    let mut by_session: BTreeMap<&str, Vec<LedgerEntry>> = BTreeMap::new();
    for e in &entries {
        by_session.entry(&e.session_id).or_default().push(e.clone());
    }
    let stored_ids: HashSet<&str> = stored.iter().map(|s| s.id.as_str()).collect();
    let mut pruned = 0;
    for (id, list) in &by_session {
        let was_pruned = list.iter().any(|e| e.kind == "prune");
        if stored_ids.contains(id) {
            if was_pruned {
                problems.push(format!(
                    "the ledger says session {id} was pruned, but the store has it: it was put back"
                ));
            }
            continue;
        }
        if was_pruned {
            // Removed by retention after it closed; the ledger keeps what it was.
            if !list.iter().any(|e| e.kind == "close") {
                problems.push(format!(
                    "the ledger says session {id} was pruned, but never closed it"
                ));
            }
            pruned += 1;
            continue;
        }
        let Some(open) = list.iter().find(|e| e.kind == "open") else {
            problems.push(format!(
                "the ledger closes session {id} but never opened it"
            ));
            continue;
        };
        let Ok(body) = serde_json::from_str::<ledger::OpenBody>(&open.body) else {
            problems.push(format!(
                "the ledger's opening entry of session {id} is unreadable"
            ));
            continue;
        };
        if since_ms.is_some_and(|s| body.started_at < s) {
            continue;
        }
        problems.push(format!(
            "session {id} ({} on target {}, started {}) is in the ledger but not in the store: it was deleted",
            body.identity,
            body.target,
            super::sessions::time(body.started_at)
        ));
    }
    let mut open = vec![];
    for s in &stored {
        let loaded = match source::fetch(&client, &s.id).await {
            Ok(l) => l,
            Err(e) => {
                problems.push(format!(
                    "session {}: cannot read its recording: {}",
                    s.id, e.message
                ));
                continue;
            }
        };
        let mut outcome = check(&loaded, key.as_ref(), &[])?;
        let list = by_session.get(s.id.as_str()).cloned().unwrap_or_default();
        add_ledger(
            &mut outcome,
            &loaded.recording,
            &list,
            entries.first().map(|e| e.at_ms),
            &keys,
        );
        if let Err(f) = &outcome.result {
            problems.push(format!("session {}: {f}", s.id));
        }
        problems.extend(outcome.problems);
        if matches!(s.status.as_str(), "open" | "running")
            && !list.iter().any(|e| e.kind == "close")
        {
            open.push(s.id.clone());
        }
    }
    Ok(AllReport {
        entries: entries.len(),
        head,
        signers,
        sessions: stored.len(),
        pruned,
        open,
        problems,
        embedded: embedded.is_some(),
    })
}

fn all_text(r: &AllReport) -> String {
    let mut lines = vec![];
    if r.problems.is_empty() {
        lines.push(format!(
            "OK: the ledger's {} entries chain and are signed; {} session(s) match it and verify{}{}",
            r.entries,
            r.sessions,
            if r.open.is_empty() {
                String::new()
            } else {
                format!(" ({} still open)", r.open.len())
            },
            if r.pruned == 0 {
                String::new()
            } else {
                format!("; {} pruned by retention (kept in the ledger only)", r.pruned)
            }
        ));
    } else {
        for p in &r.problems {
            lines.push(format!("FAILED: {p}"));
        }
    }
    if let Some(h) = &r.head {
        lines.push(format!(
            "head: {} (signed by {}; keep it, and check later ledgers against it with --head)",
            h.short(),
            h.key_id
        ));
    }
    if r.signers.len() > 1 {
        let parts: Vec<String> = r
            .signers
            .iter()
            .map(|(k, from)| format!("{k} from entry {from}"))
            .collect();
        lines.push(format!(
            "note: the gateway's key changed: {}",
            parts.join(", ")
        ));
    }
    if r.embedded {
        lines.push(format!(
            "note: this is the embedded gateway's ledger, signed with {EMBEDDED}"
        ));
    }
    lines.join("\n")
}

fn all_json(r: &AllReport) -> serde_json::Value {
    json!({
        "ok": r.problems.is_empty(),
        "entries": r.entries,
        "head": r.head,
        "signers": r.signers.iter().map(|(k, from)| json!({"key_id": k, "from_entry": from})).collect::<Vec<_>>(),
        "sessions": r.sessions,
        "pruned": r.pruned,
        "open": r.open,
        "problems": r.problems,
        "embedded": r.embedded,
    })
}

pub fn run(args: VerifyArgs) -> Result<ExitCode, Failure> {
    let key = args.key.as_deref().map(parse_key_arg).transpose()?;
    let rt = super::runtime()?;
    if args.all {
        let report = rt.block_on(verify_all(&args, key));
        rt.shutdown_background();
        let report = report?;
        super::print_line(&match args.output {
            OutputFormat::Json => all_json(&report).to_string(),
            OutputFormat::Text => all_text(&report),
        })?;
        return Ok(if report.problems.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        });
    }
    let what = args.what.clone().unwrap_or_default();
    if std::path::Path::new(&what).is_dir() {
        let result = rt.block_on(async {
            let trusted = if key.is_none() {
                trusted_keys(&args.gateway).await
            } else {
                vec![]
            };
            super::export::verify_dir(std::path::Path::new(&what), key.as_ref(), &trusted)
        });
        rt.shutdown_background();
        let report = result?;
        super::print_line(&match args.output {
            OutputFormat::Json => report.to_json().to_string(),
            OutputFormat::Text => report.text(),
        })?;
        return Ok(if report.ok() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        });
    }
    let outcome = rt.block_on(async {
        if source::is_file(&what) {
            let loaded = source::load_file(&what)?;
            let trusted = if key.is_none() {
                trusted_keys(&args.gateway).await
            } else {
                vec![]
            };
            let mut o = check(&loaded, key.as_ref(), &trusted)?;
            if o.note.is_none() && o.result.is_ok() {
                o.note = Some(
                    "a file carries no ledger: `hoopx sessions export` and `hoopx verify --all` check that too"
                        .into(),
                );
            }
            Ok::<_, Failure>(o)
        } else {
            let (client, _embedded) = source::connect(&args.gateway).await?;
            let id = source::resolve_id(&client, &what).await?;
            let loaded = source::fetch(&client, &id).await?;
            check_session(&client, &loaded, key.as_ref()).await
        }
    });
    rt.shutdown_background();
    let outcome = outcome?;
    let text = match args.output {
        OutputFormat::Json => to_json(&outcome).to_string(),
        OutputFormat::Text => summary(&outcome),
    };
    super::print_line(&text)?;
    if let (OutputFormat::Text, Some(n)) = (args.output, &outcome.note) {
        crate::client::session::say(&format!("note: {n}"));
    }
    Ok(if outcome.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
