//! The hash chain and the checkpoint signatures: how a recording proves it is unaltered.
//!
//! Everything here is pure (no I/O) and shared by the gateway, which builds the chain while it
//! records, and by `hoopx verify`, which rebuilds it offline from the store or a file.
//!
//! Canonical encodings (all integers big-endian, `lp(x)` = u64 length then the bytes):
//! - genesis: `SHA-256("hoopx-recording-v1\0" || lp(id) || lp(identity) || lp(target) ||
//!   u64 argc || lp(arg)… || lp(mode) || i64 started_at_ms)`
//! - event n: `SHA-256(h[n-1] || i64 seq || i64 t_us || u8 kind code || lp(data))`
//! - checkpoint message: `"hoopx-checkpoint-v1\0" || lp(session id) || i64 count ||
//!   h[count-1] || u8 last`

use base64::Engine as _;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use sha2::{Digest, Sha256};

use super::{Checkpoint, Event, PublicKeyInfo, Recording};
use crate::proto::{Mode, SessionInfo};

pub type Hash = [u8; 32];

fn lp(h: &mut Sha256, bytes: &[u8]) {
    h.update((bytes.len() as u64).to_be_bytes());
    h.update(bytes);
}

/// The hash before the first event: binds the chain to who ran what, where and when, so
/// events cannot be moved to another session.
pub fn genesis(
    id: &str,
    identity: &str,
    target: &str,
    argv: &[String],
    mode: Mode,
    started_at: i64,
) -> Hash {
    let mut h = Sha256::new();
    h.update(b"hoopx-recording-v1\0");
    lp(&mut h, id.as_bytes());
    lp(&mut h, identity.as_bytes());
    lp(&mut h, target.as_bytes());
    h.update((argv.len() as u64).to_be_bytes());
    for a in argv {
        lp(&mut h, a.as_bytes());
    }
    lp(&mut h, mode.as_str().as_bytes());
    h.update(started_at.to_be_bytes());
    h.finalize().into()
}

/// The genesis hash of a stored session.
pub fn session_genesis(s: &SessionInfo) -> Hash {
    genesis(&s.id, &s.identity, &s.target, &s.argv, s.mode, s.started_at)
}

/// The chain head after `event`, given the head before it.
pub fn next(prev: &Hash, event: &Event) -> Hash {
    let mut h = Sha256::new();
    h.update(prev);
    h.update(event.seq.to_be_bytes());
    h.update(event.t_us.to_be_bytes());
    h.update([event.kind.code().as_bytes()[0]]);
    lp(&mut h, &event.data);
    h.finalize().into()
}

/// What a checkpoint signs.
pub fn checkpoint_message(session_id: &str, count: i64, head: &Hash, last: bool) -> Vec<u8> {
    let mut m = Vec::with_capacity(64 + session_id.len());
    m.extend_from_slice(b"hoopx-checkpoint-v1\0");
    m.extend_from_slice(&(session_id.len() as u64).to_be_bytes());
    m.extend_from_slice(session_id.as_bytes());
    m.extend_from_slice(&count.to_be_bytes());
    m.extend_from_slice(head);
    m.push(last as u8);
    m
}

/// A key's id: `ed25519:` and the first 16 hex digits of SHA-256 of its 32 bytes.
pub fn key_id(key: &VerifyingKey) -> String {
    let d = Sha256::digest(key.as_bytes());
    format!("ed25519:{}", hex::encode(&d[..8]))
}

pub fn public_key_info(key: &VerifyingKey) -> PublicKeyInfo {
    PublicKeyInfo {
        id: key_id(key),
        alg: "Ed25519".into(),
        public_key: base64::engine::general_purpose::STANDARD.encode(key.as_bytes()),
        holder: None,
    }
}

/// Signs the chain head after `count` events.
pub fn sign(key: &SigningKey, session_id: &str, count: i64, head: &Hash, last: bool) -> Checkpoint {
    let sig = key.sign(&checkpoint_message(session_id, count, head, last));
    Checkpoint {
        count,
        hash: hex::encode(head),
        key_id: key_id(&key.verifying_key()),
        signature: base64::engine::general_purpose::STANDARD.encode(sig.to_bytes()),
        last,
    }
}

/// Parses a public key given as base64 of its 32 bytes, or as a PEM `PUBLIC KEY` block.
pub fn parse_public_key(text: &str) -> Result<VerifyingKey, String> {
    let text = text.trim();
    if text.starts_with("-----BEGIN") {
        use ed25519_dalek::pkcs8::DecodePublicKey;
        return VerifyingKey::from_public_key_pem(text)
            .map_err(|e| format!("not an Ed25519 public key in PEM form: {e}"));
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|_| "not base64 and not a PEM block".to_string())?;
    let bytes: [u8; 32] = bytes.try_into().map_err(|b: Vec<u8>| {
        format!("an Ed25519 public key is 32 bytes, this one is {}", b.len())
    })?;
    VerifyingKey::from_bytes(&bytes).map_err(|e| format!("not a valid Ed25519 public key: {e}"))
}

/// What a successful verification established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub events: i64,
    pub key_id: String,
    /// The last signed checkpoint is the close: nothing was cut off the end.
    pub complete: bool,
    /// Events after the last checkpoint (a running session's unsigned tail).
    pub unsigned_tail: i64,
}

/// Why a recording failed verification: the first bad event (when one can be named) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub event: Option<i64>,
    pub reason: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.event {
            Some(n) => write!(f, "event {n}: {}", self.reason),
            None => f.write_str(&self.reason),
        }
    }
}

fn fail(event: Option<i64>, reason: impl Into<String>) -> Failure {
    Failure {
        event,
        reason: reason.into(),
    }
}

/// Checks a recording offline: the events form an unbroken chain from the session's
/// genesis, every checkpoint's signature is valid for `key`, and every checkpoint's hash is
/// the chain head at its position. `hashes`, when the source recorded one per event, lets the
/// failure name the first altered event exactly; without them it names the first event of
/// the range the broken checkpoint covers.
///
/// `key` is the key to trust; when `None`, the key the recording names is used (and the
/// caller says so).
pub fn verify(
    rec: &Recording,
    hashes: Option<&[Hash]>,
    key: &VerifyingKey,
) -> Result<Verified, Failure> {
    let kid = key_id(key);
    if rec.checkpoints.is_empty() {
        return Err(fail(
            None,
            "the recording carries no signed checkpoint, so nothing vouches for it",
        ));
    }
    // Order and numbering first: a removed, inserted or swapped event shows here already.
    for (i, e) in rec.events.iter().enumerate() {
        if e.seq != i as i64 {
            return Err(fail(
                Some(i as i64),
                format!("found event number {} where event {i} belongs: events were removed, inserted or reordered", e.seq),
            ));
        }
        if i > 0 && e.t_us < rec.events[i - 1].t_us {
            return Err(fail(
                Some(i as i64),
                "its time is earlier than the event before it: events were reordered",
            ));
        }
    }
    let mut heads = Vec::with_capacity(rec.events.len());
    let mut head = session_genesis(&rec.session);
    let genesis_hash = head;
    for (i, e) in rec.events.iter().enumerate() {
        head = next(&head, e);
        if let Some(recorded) = hashes.and_then(|h| h.get(i)) {
            if recorded != &head {
                return Err(fail(
                    Some(i as i64),
                    "its content does not match the hash recorded with it: the event was altered",
                ));
            }
        }
        heads.push(head);
    }
    let n = rec.events.len() as i64;
    let mut prev_count = 0i64;
    let mut last_seen = false;
    for (ci, c) in rec.checkpoints.iter().enumerate() {
        if last_seen {
            return Err(fail(
                None,
                format!("checkpoint {ci} follows the closing checkpoint"),
            ));
        }
        if c.count < prev_count {
            return Err(fail(
                None,
                format!("checkpoint {ci} covers fewer events than the one before it"),
            ));
        }
        if c.key_id != kid {
            return Err(fail(
                None,
                format!(
                    "checkpoint {ci} was signed by key {}, not by the trusted key {kid}",
                    c.key_id
                ),
            ));
        }
        let sig = base64::engine::general_purpose::STANDARD
            .decode(&c.signature)
            .ok()
            .and_then(|b| Signature::from_slice(&b).ok())
            .ok_or_else(|| fail(None, format!("checkpoint {ci} has a malformed signature")))?;
        let claimed: Hash = hex::decode(&c.hash)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| fail(None, format!("checkpoint {ci} has a malformed hash")))?;
        let msg = checkpoint_message(&rec.session.id, c.count, &claimed, c.last);
        if key.verify(&msg, &sig).is_err() {
            return Err(fail(
                None,
                format!("the signature of checkpoint {ci} (over the first {} events) is not valid for key {kid}: the checkpoint was forged or altered", c.count),
            ));
        }
        if c.count > n {
            return Err(fail(
                Some(n),
                format!("a signed checkpoint covers {} events but the recording has only {n}: events were removed", c.count),
            ));
        }
        let actual = if c.count == 0 {
            genesis_hash
        } else {
            heads[c.count as usize - 1]
        };
        if actual != claimed {
            return Err(fail(
                Some(prev_count),
                format!(
                    "events {prev_count}..{} do not hash to the signed checkpoint at event {}: an event in that range was altered, removed, inserted or reordered",
                    c.count - 1,
                    c.count - 1
                ),
            ));
        }
        prev_count = c.count;
        last_seen = c.last;
    }
    // Only a session still open or running may lack its close (the status itself is not
    // signed: see docs/RECORDING.md on what verify does not prove).
    let ended = !matches!(rec.session.status.as_str(), "open" | "running");
    if ended && !last_seen {
        return Err(fail(
            Some(prev_count),
            format!(
                "the session has ended ({}) but its closing checkpoint is missing: events from {prev_count} on may have been cut off or replaced",
                rec.session.status
            ),
        ));
    }
    if last_seen && prev_count != n {
        return Err(fail(
            Some(prev_count),
            format!("{} event(s) follow the closing checkpoint: they were added after the session ended", n - prev_count),
        ));
    }
    Ok(Verified {
        events: n,
        key_id: kid,
        complete: last_seen,
        unsigned_tail: n - prev_count,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recording::EventKind;

    fn session() -> SessionInfo {
        SessionInfo {
            id: "s1".into(),
            identity: "dev".into(),
            target: "local".into(),
            argv: vec!["psql".into()],
            mode: Mode::Pipe,
            status: "exited".into(),
            started_at: 1,
            ended_at: Some(2),
            exit_code: Some(0),
            reason: None,
            event_count: 0,
            ..Default::default()
        }
    }

    fn recording(key: &SigningKey, n: i64, every: i64) -> Recording {
        let s = session();
        let mut head = session_genesis(&s);
        let mut events = vec![];
        let mut checkpoints = vec![];
        for i in 0..n {
            let e = Event {
                seq: i,
                t_us: i * 10,
                kind: EventKind::Output,
                data: format!("line {i}\n").into_bytes(),
            };
            head = next(&head, &e);
            events.push(e);
            if (i + 1) % every == 0 {
                checkpoints.push(sign(key, &s.id, i + 1, &head, false));
            }
        }
        checkpoints.push(sign(key, &s.id, n, &head, true));
        Recording {
            session: s,
            keys: vec![public_key_info(&key.verifying_key())],
            events,
            checkpoints,
        }
    }

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    #[test]
    fn an_untouched_recording_verifies() {
        let k = key(1);
        let r = recording(&k, 10, 3);
        let v = verify(&r, None, &k.verifying_key()).unwrap();
        assert_eq!((v.events, v.complete, v.unsigned_tail), (10, true, 0));
        assert_eq!(v.key_id, key_id(&k.verifying_key()));
    }

    #[test]
    fn every_kind_of_tampering_is_caught() {
        let k = key(1);
        let pk = k.verifying_key();
        let good = recording(&k, 10, 3);

        let mut r = good.clone();
        r.events[4].data[0] ^= 1;
        assert_eq!(verify(&r, None, &pk).unwrap_err().event, Some(3));

        let mut r = good.clone();
        r.events.remove(5);
        assert_eq!(verify(&r, None, &pk).unwrap_err().event, Some(5));

        let mut r = good.clone();
        r.events.swap(2, 3);
        assert_eq!(verify(&r, None, &pk).unwrap_err().event, Some(2));

        let mut r = good.clone();
        r.events.truncate(9);
        assert!(verify(&r, None, &pk).is_err());

        // Renumbered after a removal, so the numbering looks right: the chain still breaks.
        let mut r = good.clone();
        r.events.remove(7);
        for (i, e) in r.events.iter_mut().enumerate() {
            e.seq = i as i64;
        }
        assert_eq!(verify(&r, None, &pk).unwrap_err().event, Some(6));

        let mut r = good.clone();
        let c = &mut r.checkpoints[1];
        let mut sig = base64::engine::general_purpose::STANDARD
            .decode(&c.signature)
            .unwrap();
        sig[0] ^= 1;
        c.signature = base64::engine::general_purpose::STANDARD.encode(sig);
        assert!(verify(&r, None, &pk)
            .unwrap_err()
            .reason
            .contains("not valid"));

        // Re-signed by someone else's key.
        let forged = recording(&key(2), 10, 3);
        assert!(verify(&forged, None, &pk)
            .unwrap_err()
            .reason
            .contains("trusted key"));

        // Cut back to an earlier checkpoint with the later ones removed: the session says it
        // ended, so the missing close gives it away.
        let mut r = good.clone();
        r.events.truncate(6);
        r.checkpoints.truncate(2);
        let f = verify(&r, None, &pk).unwrap_err();
        assert!(f.reason.contains("closing checkpoint is missing"), "{f}");
        // A status verify does not know is treated as ended.
        r.session.status = "EXITED".into();
        assert!(verify(&r, None, &pk).is_err());
        // The same log of a session still running is fine so far.
        r.session.status = "running".into();
        let v = verify(&r, None, &pk).unwrap();
        assert_eq!((v.events, v.complete), (6, false));

        // A different session's metadata breaks the genesis.
        let mut r = good.clone();
        r.session.identity = "someone-else".into();
        assert!(verify(&r, None, &pk).is_err());
    }

    #[test]
    fn recorded_hashes_name_the_altered_event() {
        let k = key(1);
        let good = recording(&k, 10, 5);
        let mut head = session_genesis(&good.session);
        let hashes: Vec<Hash> = good
            .events
            .iter()
            .map(|e| {
                head = next(&head, e);
                head
            })
            .collect();
        let mut r = good.clone();
        r.events[7].data = b"DROP TABLE x\n".to_vec();
        let f = verify(&r, Some(&hashes), &k.verifying_key()).unwrap_err();
        assert_eq!(f.event, Some(7), "{f}");
    }

    #[test]
    fn public_keys_parse_from_base64_and_pem() {
        use ed25519_dalek::pkcs8::EncodePublicKey;
        let pk = key(3).verifying_key();
        let b64 = public_key_info(&pk).public_key;
        assert_eq!(parse_public_key(&b64).unwrap(), pk);
        let pem = pk.to_public_key_pem(Default::default()).unwrap();
        assert_eq!(parse_public_key(&pem).unwrap(), pk);
        assert!(parse_public_key("nope").is_err());
        assert!(parse_public_key("AAAA").unwrap_err().contains("32 bytes"));
    }
}
