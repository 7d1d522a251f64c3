//! Where a recording comes from: `SESSION` (an id on the gateway in use), `last` (that
//! gateway's newest session) or `FILE` (an export from `hoopx replay --format json|cast|cast3`).

use std::path::Path;

use base64::Engine as _;

use super::{code, settings, Failure, GatewayArgs};
use crate::client::GatewayClient;
use crate::gateway::embedded::{self, Embedded};
use crate::recording::chain::Hash;
use crate::recording::{Event, EventKind, Recording};

/// A client for the configured gateway, or for an embedded one started here (kept alive by
/// the returned guard).
pub async fn connect(args: &GatewayArgs) -> Result<(GatewayClient, Option<Embedded>), Failure> {
    let r = settings::resolve(args, None)?;
    Ok(match &r.gateway {
        Some(url) => (settings::remote_client(url, r.token.clone()).await?.0, None),
        None => {
            let e = embedded::start()
                .await
                .map_err(|e| Failure::new(code::UNAVAILABLE, e.to_string()))?;
            (GatewayClient::new(&e.url, Some(e.token.clone()))?, Some(e))
        }
    })
}

/// A recording and where it came from.
pub struct Loaded {
    pub recording: Recording,
    /// The chain hash recorded with each event, when the source kept them.
    pub hashes: Option<Vec<Hash>>,
    /// `gateway`, or the file's format (`json`, `cast`, `cast3`).
    pub origin: &'static str,
}

/// True when `what` names a file rather than a session: it exists as a path, or looks like
/// one.
pub fn is_file(what: &str) -> bool {
    what.contains('/')
        || Path::new(what).is_file()
        || [".cast", ".json", ".jsonl", ".ndjson"]
            .iter()
            .any(|ext| what.ends_with(ext))
}

pub fn load_file(path: &str) -> Result<Loaded, Failure> {
    let file = std::fs::File::open(path).map_err(|e| {
        Failure::new(code::NOT_FOUND, format!("cannot open recording {path}: {e}"))
            .hint("give a session id, `last`, or a file exported with `hoopx replay --format json > FILE`")
    })?;
    let mut reader = std::io::BufReader::new(file);
    let loaded = crate::recording::format::read(&mut reader).map_err(|e| {
        Failure::new(code::USAGE, format!("cannot read recording {path}: {e}"))
            .hint("hoopx reads its own JSON export and asciicast v2/v3 files")
    })?;
    Ok(Loaded {
        recording: loaded.recording,
        hashes: loaded.hashes,
        origin: loaded.format,
    })
}

/// The id `what` stands for: itself, or the newest session's for `last`.
pub async fn resolve_id(client: &GatewayClient, what: &str) -> Result<String, Failure> {
    if what != "last" {
        return Ok(what.to_string());
    }
    let newest = client.list_sessions(&[("limit", "1".to_string())]).await?;
    newest.into_iter().next().map(|s| s.id).ok_or_else(|| {
        Failure::new(code::NOT_FOUND, "there is no session yet")
            .hint("run one with `hoopx exec -- CMD`")
    })
}

/// Fetches a whole recording from the gateway: session, events (paged), checkpoints and the
/// gateway's keys.
pub async fn fetch(client: &GatewayClient, id: &str) -> Result<Loaded, Failure> {
    let session = client.session(id).await?;
    // Checkpoints first: while a session runs, every checkpoint read then covers events
    // that are already stored, so the events read after include them all.
    let checkpoints = client.checkpoints(id).await?;
    let mut events = Vec::with_capacity(session.event_count.max(0) as usize);
    let mut hashes = Vec::with_capacity(events.capacity());
    let mut all_hashed = true;
    loop {
        let page = client.events(id, events.len() as i64, 5000).await?;
        if page.is_empty() {
            break;
        }
        for e in page {
            let (event, hash) = decode_event(e)?;
            match hash {
                Some(h) => hashes.push(h),
                None => all_hashed = false,
            }
            events.push(event);
        }
    }
    let keys = client.keys().await?;
    Ok(Loaded {
        recording: Recording {
            session,
            keys,
            events,
            checkpoints,
        },
        hashes: all_hashed.then_some(hashes),
        origin: "gateway",
    })
}

/// An event as served, decoded; a malformed one is the gateway's protocol error.
pub fn decode_event(e: crate::proto::EventInfo) -> Result<(Event, Option<Hash>), Failure> {
    let bad = |what: &str| {
        Failure::new(
            code::PROTOCOL,
            format!("the gateway sent event {} with {what}", e.seq),
        )
    };
    let kind = EventKind::from_code(&e.kind).ok_or_else(|| bad("an unknown kind"))?;
    let data = base64::engine::general_purpose::STANDARD
        .decode(&e.data)
        .map_err(|_| bad("data that is not base64"))?;
    let hash = match &e.hash {
        Some(h) => Some(
            hex::decode(h)
                .ok()
                .and_then(|b| <Hash>::try_from(b).ok())
                .ok_or_else(|| bad("a malformed hash"))?,
        ),
        None => None,
    };
    Ok((
        Event {
            seq: e.seq,
            t_us: e.t_us,
            kind,
            data,
        },
        hash,
    ))
}

/// Loads `what` (a session id, `last`, or a file).
pub async fn load(args: &GatewayArgs, what: &str) -> Result<Loaded, Failure> {
    if is_file(what) {
        return load_file(what);
    }
    let (client, _embedded) = connect(args).await?;
    let id = resolve_id(&client, what).await?;
    fetch(&client, &id).await
}
