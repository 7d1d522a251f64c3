//! The session recording: one append-only log of events per session, always masked,
//! hash-chained with SHA-256 and signed with the gateway's Ed25519 key at checkpoints.
//!
//! The chain: `h[-1] = genesis(session)`, `h[n] = SHA-256(h[n-1] || canonical(event n))`.
//! A checkpoint signs `(session id, number of events, h[count-1])`. See docs/RECORDING.md.

pub mod chain;
pub mod evidence;
pub mod format;
pub mod ledger;
pub mod player;
pub mod render;
pub mod statements;

/// What an event records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// Input released to the tool (masked).
    Input,
    /// Output of the tool on stdout or the terminal (masked).
    Output,
    /// Output of the tool on stderr, pipe mode only (masked).
    Stderr,
    /// Terminal size, as `COLSxROWS`.
    Resize,
    /// Something the gateway decided, as JSON: denials, mask counts, disconnects.
    Marker,
    /// The tool's exit, as JSON.
    Exit,
}

impl EventKind {
    /// The one-letter code stored and served; `i`, `o`, `r` and `m` follow asciicast.
    pub fn code(self) -> &'static str {
        match self {
            EventKind::Input => "i",
            EventKind::Output => "o",
            EventKind::Stderr => "e",
            EventKind::Resize => "r",
            EventKind::Marker => "m",
            EventKind::Exit => "x",
        }
    }

    pub fn from_code(code: &str) -> Option<EventKind> {
        Some(match code {
            "i" => EventKind::Input,
            "o" => EventKind::Output,
            "e" => EventKind::Stderr,
            "r" => EventKind::Resize,
            "m" => EventKind::Marker,
            "x" => EventKind::Exit,
            _ => return None,
        })
    }
}

/// One recorded event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Position in the session's log, from 0, without gaps.
    pub seq: i64,
    /// Microseconds since the session started.
    pub t_us: i64,
    pub kind: EventKind,
    pub data: Vec<u8>,
}

/// A signed statement about the chain: "the first `count` events of session S hash to
/// `hash`", made by the key `key_id`. `last` is set on the checkpoint written at close.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Checkpoint {
    /// How many events the checkpoint covers (events `0..count`).
    pub count: i64,
    /// Chain head after event `count - 1` (the genesis hash when `count` is 0), hex.
    pub hash: String,
    /// Which key signed: see [`chain::key_id`].
    pub key_id: String,
    /// Ed25519 signature over [`chain::checkpoint_message`], base64.
    pub signature: String,
    /// Written when the session ended: nothing may follow it.
    pub last: bool,
}

/// A public key as served at `/v1/keys` and carried by exported files.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PublicKeyInfo {
    /// `ed25519:` and the first 16 hex digits of SHA-256 of the key bytes.
    pub id: String,
    /// Always `Ed25519`.
    pub alg: String,
    /// The 32 key bytes, base64.
    pub public_key: String,
    /// Who holds the private key: `served` (a gateway run with `hoopx gateway serve`) or
    /// `embedded` (the user's own hoopx, so its signatures are no evidence against that
    /// user). As the gateway says; absent when unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holder: Option<String>,
}

/// A whole recording: what `hoopx replay` plays and `hoopx verify` checks, from the gateway
/// or from an exported file.
#[derive(Debug, Clone)]
pub struct Recording {
    pub session: crate::proto::SessionInfo,
    /// Keys that signed its checkpoints, as known to whoever produced the recording.
    pub keys: Vec<PublicKeyInfo>,
    pub events: Vec<Event>,
    pub checkpoints: Vec<Checkpoint>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_codes_roundtrip() {
        for k in [
            EventKind::Input,
            EventKind::Output,
            EventKind::Stderr,
            EventKind::Resize,
            EventKind::Marker,
            EventKind::Exit,
        ] {
            assert_eq!(EventKind::from_code(k.code()), Some(k));
        }
        assert_eq!(EventKind::from_code("z"), None);
    }
}
