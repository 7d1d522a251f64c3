//! The ledger: one append-only, hash-chained and signed log per store of every session's
//! opening and closing, so a session deleted, cut short or re-opened in the store shows as
//! a gap. Pure: the store appends entries, `hoopx verify --all` and exports check them.
//!
//! Canonical encodings (integers big-endian, `lp(x)` = u64 length then the bytes):
//! - entry n: `h[n] = SHA-256("hoopx-ledger-v1\0" || h[n-1] || i64 seq || i64 at_ms ||
//!   lp(kind) || lp(session id) || lp(body))`, with `h[-1]` 32 zero bytes;
//! - signed head after entry n: `"hoopx-ledger-head-v1\0" || i64 size (n + 1) || h[n]`.
//!
//! Every entry carries the signature of the head it makes, so any prefix of the ledger is a
//! signed head an auditor can keep elsewhere and check later ledgers against, as with a
//! transparency log's signed tree heads.

use base64::Engine as _;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::chain::{key_id, Hash};

/// The hash before the first entry.
pub const START: Hash = [0; 32];

/// One ledger entry as stored and served.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntry {
    /// Position from 0, without gaps.
    pub seq: i64,
    /// Unix time in milliseconds when it was entered.
    pub at_ms: i64,
    /// `open`, `close` or `prune` (the session's recording was removed from the store by
    /// retention, after it ended).
    pub kind: String,
    pub session_id: String,
    /// The facts entered, as canonical JSON text (hashed as these exact bytes).
    pub body: String,
    /// The chain head after this entry, hex.
    pub hash: String,
    /// The key that signed the head this entry makes.
    pub key_id: String,
    /// Ed25519 signature over [`head_message`] for `(seq + 1, hash)`, base64.
    pub signature: String,
}

/// What a session's `open` entry says: the session's genesis hash binds identity, target,
/// command, mode and start time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenBody {
    pub identity: String,
    pub target: String,
    pub started_at: i64,
    pub genesis: String,
}

/// What a session's `prune` entry says: the recording removed, and what it held.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PruneBody {
    pub status: String,
    pub ended_at: Option<i64>,
    pub events: i64,
}

/// What a session's `close` entry says: how it ended and the closing checkpoint its
/// recording must end with (`events`/`head` absent when none was stored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloseBody {
    pub status: String,
    pub ended_at: i64,
    pub events: Option<i64>,
    pub head: Option<String>,
}

/// A signed ledger head: "the first `size` entries hash to `hash`". Printed by
/// `hoopx verify --all` as `SIZE:HASH` for an auditor to keep.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    pub size: i64,
    pub hash: String,
    pub key_id: String,
    pub signature: String,
}

impl Head {
    /// `SIZE:HASH`, the form `--head` takes.
    pub fn short(&self) -> String {
        format!("{}:{}", self.size, self.hash)
    }
}

fn lp(h: &mut Sha256, bytes: &[u8]) {
    h.update((bytes.len() as u64).to_be_bytes());
    h.update(bytes);
}

/// The chain head after an entry, given the head before it.
pub fn entry_hash(
    prev: &Hash,
    seq: i64,
    at_ms: i64,
    kind: &str,
    session_id: &str,
    body: &str,
) -> Hash {
    let mut h = Sha256::new();
    h.update(b"hoopx-ledger-v1\0");
    h.update(prev);
    h.update(seq.to_be_bytes());
    h.update(at_ms.to_be_bytes());
    lp(&mut h, kind.as_bytes());
    lp(&mut h, session_id.as_bytes());
    lp(&mut h, body.as_bytes());
    h.finalize().into()
}

/// What a signed head signs.
pub fn head_message(size: i64, hash: &Hash) -> Vec<u8> {
    let mut m = Vec::with_capacity(64);
    m.extend_from_slice(b"hoopx-ledger-head-v1\0");
    m.extend_from_slice(&size.to_be_bytes());
    m.extend_from_slice(hash);
    m
}

/// Makes entry `seq` after `prev`, signed with `key`.
pub fn make_entry(
    key: &SigningKey,
    prev: &Hash,
    seq: i64,
    at_ms: i64,
    kind: &str,
    session_id: &str,
    body: String,
) -> LedgerEntry {
    let hash = entry_hash(prev, seq, at_ms, kind, session_id, &body);
    let sig = key.sign(&head_message(seq + 1, &hash));
    LedgerEntry {
        seq,
        at_ms,
        kind: kind.into(),
        session_id: session_id.into(),
        body,
        hash: hex::encode(hash),
        key_id: key_id(&key.verifying_key()),
        signature: base64::engine::general_purpose::STANDARD.encode(sig.to_bytes()),
    }
}

/// The signed head an entry makes.
pub fn head_of(e: &LedgerEntry) -> Head {
    Head {
        size: e.seq + 1,
        hash: e.hash.clone(),
        key_id: e.key_id.clone(),
        signature: e.signature.clone(),
    }
}

pub fn parse_hash(hex_text: &str) -> Option<Hash> {
    hex::decode(hex_text).ok()?.try_into().ok()
}

/// Checks a head's signature against `keys` (any of them may have signed).
pub fn check_head(head: &Head, keys: &[VerifyingKey]) -> Result<(), String> {
    let hash = parse_hash(&head.hash).ok_or("the head's hash is malformed")?;
    let sig = base64::engine::general_purpose::STANDARD
        .decode(&head.signature)
        .ok()
        .and_then(|b| Signature::from_slice(&b).ok())
        .ok_or("the head's signature is malformed")?;
    let Some(key) = keys.iter().find(|k| key_id(k) == head.key_id) else {
        return Err(format!(
            "the head of {} entries is signed by key {}, which is not a key you trust",
            head.size, head.key_id
        ));
    };
    key.verify(&head_message(head.size, &hash), &sig)
        .map_err(|_| {
            format!(
                "the signature of the head of {} entries is not valid for key {}: it was forged or altered",
                head.size, head.key_id
            )
        })
}

/// What a checked stretch of ledger established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    /// The signed head after the last entry (`None` for an empty stretch).
    pub head: Option<Head>,
    /// The keys that signed, in the order they first appear, with the first entry each
    /// signed: more than one means the gateway's key changed.
    pub signers: Vec<(String, i64)>,
}

/// Checks a contiguous stretch of entries starting after `prev` (`START` and seq 0 for the
/// whole ledger): numbering without gaps from `first_seq`, each entry's hash, and each
/// entry's signature by one of `keys`.
pub fn check(
    entries: &[LedgerEntry],
    first_seq: i64,
    prev: &Hash,
    keys: &[VerifyingKey],
) -> Result<Checked, String> {
    let mut prev = *prev;
    let mut signers: Vec<(String, i64)> = vec![];
    for (i, e) in entries.iter().enumerate() {
        let want = first_seq + i as i64;
        if e.seq != want {
            return Err(format!(
                "found ledger entry {} where entry {want} belongs: entries were removed, inserted or reordered",
                e.seq
            ));
        }
        if !matches!(e.kind.as_str(), "open" | "close" | "prune") {
            return Err(format!(
                "ledger entry {want} has an unknown kind {:?}",
                e.kind
            ));
        }
        let h = entry_hash(&prev, e.seq, e.at_ms, &e.kind, &e.session_id, &e.body);
        if hex::encode(h) != e.hash {
            return Err(format!(
                "ledger entry {want} ({} of session {}) does not hash to its recorded head: it was altered, or an entry before it was",
                e.kind, e.session_id
            ));
        }
        check_head(&head_of(e), keys).map_err(|why| format!("ledger entry {want}: {why}"))?;
        if !signers.iter().any(|(k, _)| *k == e.key_id) {
            signers.push((e.key_id.clone(), e.seq));
        }
        prev = h;
    }
    Ok(Checked {
        head: entries.last().map(head_of),
        signers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    fn ledger(k: &SigningKey, n: i64) -> Vec<LedgerEntry> {
        let mut prev = START;
        (0..n)
            .map(|i| {
                let kind = if i % 2 == 0 { "open" } else { "close" };
                let e = make_entry(
                    k,
                    &prev,
                    i,
                    1000 + i,
                    kind,
                    &format!("s{}", i / 2),
                    format!("{{\"n\":{i}}}"),
                );
                prev = parse_hash(&e.hash).unwrap();
                e
            })
            .collect()
    }

    #[test]
    fn an_untouched_ledger_checks_and_names_its_head() {
        let k = key(1);
        let l = ledger(&k, 6);
        let c = check(&l, 0, &START, &[k.verifying_key()]).unwrap();
        let head = c.head.unwrap();
        assert_eq!(head.size, 6);
        assert_eq!(head.hash, l[5].hash);
        assert_eq!(c.signers.len(), 1);
        // A stretch checks from the hash before it.
        let prev = parse_hash(&l[1].hash).unwrap();
        assert!(check(&l[2..], 2, &prev, &[k.verifying_key()]).is_ok());
        assert!(check_head(&head, &[k.verifying_key()]).is_ok());
    }

    #[test]
    fn every_change_to_the_ledger_is_caught() {
        let k = key(1);
        let pk = [k.verifying_key()];
        let good = ledger(&k, 6);

        let mut l = good.clone();
        l.remove(2);
        assert!(check(&l, 0, &START, &pk).unwrap_err().contains("entry 2"));

        // Removed and renumbered: the chain breaks.
        let mut l = good.clone();
        l.remove(2);
        for (i, e) in l.iter_mut().enumerate() {
            e.seq = i as i64;
        }
        assert!(check(&l, 0, &START, &pk)
            .unwrap_err()
            .contains("does not hash"));

        let mut l = good.clone();
        l[3].body = "{\"n\":99}".into();
        assert!(check(&l, 0, &START, &pk).unwrap_err().contains("entry 3"));

        let mut l = good.clone();
        l[1].kind = "open".into();
        assert!(check(&l, 0, &START, &pk).is_err());

        // Rewritten whole and re-signed with another key: the key is not trusted.
        let forged = ledger(&key(2), 6);
        assert!(check(&forged, 0, &START, &pk)
            .unwrap_err()
            .contains("not a key you trust"));

        // A head with its hash swapped for another entry's fails its signature.
        let mut h = head_of(&good[5]);
        h.hash = good[4].hash.clone();
        assert!(check_head(&h, &pk).unwrap_err().contains("not valid"));
    }
}
