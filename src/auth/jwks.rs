//! An issuer's signing keys (its JWKS) and the checks of a JWT against them.
//!
//! Keys are fetched on first use (discovery → `jwks_uri`), cached, refetched when a token
//! names a key id the cache does not have (key rotation) or when the cache is an hour old,
//! and never more often than [`MIN_REFETCH`]: a flood of tokens with made-up key ids cannot
//! turn the gateway into a load generator against the provider.
//!
//! Each key is pinned to one algorithm: the `alg` it is published with, else the one its
//! type implies (RSA → RS256, P-256 → ES256, P-384 → ES384, Ed25519 → EdDSA). A token
//! must use exactly that algorithm (and one of the configured ones, if the config pins a
//! list). Symmetric (`oct`) keys are ignored, so HS256 "signed with the public key" never
//! verifies, and `alg: none` is refused before any key is looked at.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

/// Least time between two fetches of one issuer's keys.
pub const MIN_REFETCH: Duration = Duration::from_secs(10);
/// Keys older than this are refetched on next use.
const MAX_AGE: Duration = Duration::from_secs(3600);

/// One verification key, pinned to one algorithm.
#[derive(Clone)]
pub struct Key {
    pub kid: Option<String>,
    pub alg: Algorithm,
    key: DecodingKey,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Key({:?}, {:?})", self.kid, self.alg)
    }
}

impl Key {
    pub fn new(kid: Option<String>, alg: Algorithm, key: DecodingKey) -> Key {
        Key { kid, alg, key }
    }
}

/// The signature keys of a JWKS document; keys that are not for signatures, symmetric or
/// of an unknown type are skipped.
pub fn parse_jwks(doc: &Value) -> Result<Vec<Key>, String> {
    let keys = doc
        .get("keys")
        .and_then(Value::as_array)
        .ok_or("the JWKS document has no \"keys\" array")?;
    let mut out = Vec::new();
    for k in keys {
        let Ok(jwk) = serde_json::from_value::<Jwk>(k.clone()) else {
            continue;
        };
        if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
            continue;
        }
        let Some(alg) = pinned_alg(&jwk) else {
            continue;
        };
        let Ok(key) = DecodingKey::from_jwk(&jwk) else {
            continue;
        };
        out.push(Key {
            kid: jwk.common.key_id.clone(),
            alg,
            key,
        });
    }
    Ok(out)
}

fn pinned_alg(jwk: &Jwk) -> Option<Algorithm> {
    let by_type = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Algorithm::RS256,
        AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
            EllipticCurve::P256 => Algorithm::ES256,
            EllipticCurve::P384 => Algorithm::ES384,
            _ => return None,
        },
        AlgorithmParameters::OctetKeyPair(_) => Algorithm::EdDSA,
        // Shared secrets: never a provider's public key.
        AlgorithmParameters::OctetKey(_) => return None,
    };
    let published = match jwk.common.key_algorithm {
        None => return Some(by_type),
        Some(KeyAlgorithm::RS256) => Algorithm::RS256,
        Some(KeyAlgorithm::RS384) => Algorithm::RS384,
        Some(KeyAlgorithm::RS512) => Algorithm::RS512,
        Some(KeyAlgorithm::PS256) => Algorithm::PS256,
        Some(KeyAlgorithm::PS384) => Algorithm::PS384,
        Some(KeyAlgorithm::PS512) => Algorithm::PS512,
        Some(KeyAlgorithm::ES256) => Algorithm::ES256,
        Some(KeyAlgorithm::ES384) => Algorithm::ES384,
        Some(KeyAlgorithm::EdDSA) => Algorithm::EdDSA,
        Some(_) => return None,
    };
    // The published alg must fit the key's type (an RSA key cannot be ES256).
    (family(published) == family(by_type)).then_some(published)
}

/// The kind of key an algorithm needs.
fn family(a: Algorithm) -> u8 {
    use Algorithm as A;
    match a {
        A::RS256 | A::RS384 | A::RS512 | A::PS256 | A::PS384 | A::PS512 => 0,
        A::ES256 | A::ES384 => 1,
        A::EdDSA => 2,
        A::HS256 | A::HS384 | A::HS512 => 3,
    }
}

/// What a token must satisfy besides its signature.
#[derive(Debug, Clone)]
pub struct Expect {
    pub issuer: String,
    pub audience: String,
    /// Allowed algorithms; empty: the key's own.
    pub algorithms: Vec<Algorithm>,
    pub leeway: Duration,
}

/// The header fields a token names, read before anything is trusted.
#[derive(Debug)]
pub struct Peek {
    pub alg: String,
    pub kid: Option<String>,
    /// The unverified `iss`, to pick the issuer whose keys to check with.
    pub iss: Option<String>,
}

/// Reads a JWT's header and `iss` without verifying anything; refuses what no key could
/// ever accept (not a JWT, `alg: none`, a shared-secret algorithm).
pub fn peek(token: &str) -> Result<Peek, String> {
    let parts: Vec<&str> = token.split('.').collect();
    if parts.len() != 3 || parts.iter().any(|p| p.is_empty()) {
        if parts.len() == 3 && parts[2].is_empty() {
            return Err(
                "the token is unsigned (empty signature); unsigned tokens are never accepted"
                    .into(),
            );
        }
        return Err("the token is not a JWT (three dot-separated base64url parts)".into());
    }
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let json = |part: &str, what: &str| -> Result<Map<String, Value>, String> {
        let bytes = b64
            .decode(part.trim_end_matches('='))
            .map_err(|_| format!("the token's {what} is not base64url"))?;
        serde_json::from_slice(&bytes)
            .map_err(|_| format!("the token's {what} is not a JSON object"))
    };
    let header = json(parts[0], "header")?;
    let payload = json(parts[1], "payload")?;
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .ok_or("the token's header names no algorithm")?
        .to_string();
    if alg.eq_ignore_ascii_case("none") {
        return Err(
            "the token is unsigned (alg \"none\"); unsigned tokens are never accepted".into(),
        );
    }
    if alg.starts_with("HS") {
        return Err(format!(
            "the token is signed with {alg}, a shared-secret algorithm; only the provider's public-key signatures are accepted"
        ));
    }
    Ok(Peek {
        alg,
        kid: header
            .get("kid")
            .and_then(Value::as_str)
            .map(str::to_string),
        iss: payload
            .get("iss")
            .and_then(Value::as_str)
            .map(str::to_string),
    })
}

/// Checks `token` with `key`: signature, pinned algorithm, `iss`, `aud`, `exp` and `nbf`.
/// Returns its claims.
pub fn check(token: &str, key: &Key, expect: &Expect) -> Result<Map<String, Value>, String> {
    let peeked = peek(token)?;
    let alg_name = format!("{:?}", key.alg);
    if peeked.alg != alg_name {
        return Err(format!(
            "the token is signed with {}, but key {} is pinned to {alg_name}",
            peeked.alg,
            key.kid.as_deref().unwrap_or("(no kid)")
        ));
    }
    if !expect.algorithms.is_empty() && !expect.algorithms.contains(&key.alg) {
        return Err(format!(
            "the token is signed with {alg_name}, which this gateway's config does not allow"
        ));
    }
    let mut v = Validation::new(key.alg);
    v.set_issuer(&[&expect.issuer]);
    v.set_audience(&[&expect.audience]);
    v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    v.validate_exp = true;
    v.validate_nbf = true;
    v.leeway = expect.leeway.as_secs();
    let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, &v).map_err(|e| {
        use jsonwebtoken::errors::ErrorKind as K;
        match e.kind() {
            K::InvalidSignature => {
                "its signature does not verify (was the token altered?)".to_string()
            }
            K::ExpiredSignature => "the token has expired".to_string(),
            K::ImmatureSignature => "the token is not valid yet (nbf is in the future)".to_string(),
            K::InvalidAudience => format!(
                "the token is for another audience; this gateway accepts only {:?}",
                expect.audience
            ),
            K::InvalidIssuer => format!(
                "the token was issued by someone else; this gateway accepts {:?}",
                expect.issuer
            ),
            K::MissingRequiredClaim(c) => format!("the token has no {c:?} claim"),
            K::InvalidAlgorithm => format!("the token's algorithm is not {alg_name}"),
            _ => format!("the token is malformed ({e})"),
        }
    })?;
    Ok(data.claims)
}

/// One issuer's keys, fetched and refreshed as described at the top of this module.
pub struct KeySet {
    issuer: String,
    jwks_uri: Mutex<Option<String>>,
    http: reqwest::Client,
    state: tokio::sync::Mutex<State>,
    min_refetch: Duration,
}

#[derive(Default)]
struct State {
    keys: Vec<Key>,
    fetched: Option<Instant>,
}

impl KeySet {
    pub fn new(issuer: &str, jwks_uri: Option<String>) -> KeySet {
        KeySet {
            issuer: issuer.trim_end_matches('/').to_string(),
            jwks_uri: Mutex::new(jwks_uri),
            http: reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(5))
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap_or_default(),
            state: tokio::sync::Mutex::new(State::default()),
            min_refetch: MIN_REFETCH,
        }
    }

    /// [`KeySet::new`] with another least time between fetches (tests).
    pub fn with_min_refetch(mut self, d: Duration) -> KeySet {
        self.min_refetch = d;
        self
    }

    /// Whether keys are at hand: fetched once already, else fetched now. `Err` says why
    /// none could be fetched.
    pub async fn ready(&self) -> Result<(), String> {
        let mut st = self.state.lock().await;
        if !st.keys.is_empty() {
            return Ok(());
        }
        st.keys = self.fetch().await?;
        st.fetched = Some(Instant::now());
        if st.keys.is_empty() {
            return Err(format!("{} publishes no keys", self.issuer));
        }
        Ok(())
    }

    /// The key a token names (by `kid`, else the one key of its algorithm). `Ok(None)`:
    /// no such key, even after a refetch. `Err`: the keys could not be fetched at all.
    pub async fn find(&self, kid: Option<&str>, alg: &str) -> Result<Option<Key>, String> {
        let mut st = self.state.lock().await;
        let stale = st.fetched.is_none_or(|t| t.elapsed() > MAX_AGE);
        if let (false, Some(k)) = (stale, pick(&st.keys, kid, alg)) {
            return Ok(Some(k));
        }
        let may_fetch = st.fetched.is_none_or(|t| t.elapsed() >= self.min_refetch);
        if may_fetch {
            match self.fetch().await {
                Ok(keys) => {
                    st.keys = keys;
                    st.fetched = Some(Instant::now());
                }
                // Keep serving the keys we have; with none, nothing can be checked.
                Err(e) if st.keys.is_empty() => return Err(e),
                Err(e) => eprintln!(
                    "hoopx gateway: keeping the cached keys of {}: {e}",
                    self.issuer
                ),
            }
        }
        Ok(pick(&st.keys, kid, alg))
    }

    async fn fetch(&self) -> Result<Vec<Key>, String> {
        let known = self
            .jwks_uri
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let uri = match known {
            Some(u) => u,
            None => {
                let url = format!("{}/.well-known/openid-configuration", self.issuer);
                let doc = self.get_json(&url).await?;
                let iss = doc.get("issuer").and_then(Value::as_str).unwrap_or("");
                if iss.trim_end_matches('/') != self.issuer {
                    return Err(format!(
                        "{url} names issuer {iss:?}, not {:?}: check [auth] issuer",
                        self.issuer
                    ));
                }
                let uri = doc
                    .get("jwks_uri")
                    .and_then(Value::as_str)
                    .ok_or_else(|| format!("{url} has no jwks_uri"))?
                    .to_string();
                *self.jwks_uri.lock().unwrap_or_else(|e| e.into_inner()) = Some(uri.clone());
                uri
            }
        };
        let doc = self.get_json(&uri).await?;
        parse_jwks(&doc).map_err(|e| format!("{uri}: {e}"))
    }

    async fn get_json(&self, url: &str) -> Result<Value, String> {
        let resp = self.http.get(url).send().await.map_err(|e| {
            format!(
                "cannot fetch {url}: {}",
                crate::client::describe_reqwest(&e)
            )
        })?;
        if !resp.status().is_success() {
            return Err(format!("{url} answered {}", resp.status()));
        }
        resp.json()
            .await
            .map_err(|e| format!("{url} is not JSON: {e}"))
    }
}

fn pick(keys: &[Key], kid: Option<&str>, alg: &str) -> Option<Key> {
    match kid {
        Some(kid) => keys.iter().find(|k| k.kid.as_deref() == Some(kid)).cloned(),
        None => {
            let mut of_alg = keys.iter().filter(|k| format!("{:?}", k.alg) == alg);
            match (of_alg.next(), of_alg.next()) {
                (Some(k), None) => Some(k.clone()),
                _ => None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{encode, EncodingKey, Header};

    fn ed_key() -> (EncodingKey, Key) {
        use ed25519_dalek::pkcs8::EncodePrivateKey;
        let sk = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
        let der = sk.to_pkcs8_der().unwrap();
        let x =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sk.verifying_key().as_bytes());
        (
            EncodingKey::from_ed_der(der.as_bytes()),
            Key::new(
                Some("k1".into()),
                Algorithm::EdDSA,
                DecodingKey::from_ed_components(&x).unwrap(),
            ),
        )
    }

    fn expect() -> Expect {
        Expect {
            issuer: "https://idp".into(),
            audience: "urn:gw".into(),
            algorithms: vec![],
            leeway: Duration::from_secs(30),
        }
    }

    fn now() -> i64 {
        chrono::Utc::now().timestamp()
    }

    fn sign(enc: &EncodingKey, claims: Value) -> String {
        let mut h = Header::new(Algorithm::EdDSA);
        h.kid = Some("k1".into());
        encode(&h, &claims, enc).unwrap()
    }

    fn good() -> Value {
        serde_json::json!({"iss":"https://idp","aud":"urn:gw","sub":"alice","exp":now()+60,"groups":["dba"]})
    }

    #[test]
    fn a_good_token_passes_and_each_bad_claim_is_named() {
        let (enc, key) = ed_key();
        let claims = check(&sign(&enc, good()), &key, &expect()).unwrap();
        assert_eq!(claims["sub"], "alice");
        let bad = |patch: Value, why: &str| {
            let mut c = good();
            for (k, v) in patch.as_object().unwrap() {
                c[k] = v.clone();
            }
            let e = check(&sign(&enc, c), &key, &expect()).unwrap_err();
            assert!(e.contains(why), "{e}");
        };
        bad(serde_json::json!({"aud":"urn:other"}), "another audience");
        bad(serde_json::json!({"iss":"https://evil"}), "someone else");
        bad(serde_json::json!({"exp":now()-120}), "expired");
        bad(serde_json::json!({"nbf":now()+120}), "not valid yet");
        // Within the leeway, both pass.
        let mut c = good();
        c["exp"] = (now() - 10).into();
        c["nbf"] = (now() + 10).into();
        check(&sign(&enc, c), &key, &expect()).unwrap();
    }

    #[test]
    fn unsigned_shared_secret_tampered_and_garbage_tokens_are_refused() {
        let (enc, key) = ed_key();
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let good_token = sign(&enc, good());
        let parts: Vec<&str> = good_token.split('.').collect();
        let none = format!(
            "{}.{}.",
            b64.encode(r#"{"alg":"none","kid":"k1"}"#),
            parts[1]
        );
        assert!(check(&none, &key, &expect())
            .unwrap_err()
            .contains("unsigned"));
        let hs = encode(
            &Header::new(Algorithm::HS256),
            &good(),
            &EncodingKey::from_secret(b"public key bytes"),
        )
        .unwrap();
        assert!(check(&hs, &key, &expect())
            .unwrap_err()
            .contains("shared-secret"));
        let mut c = good();
        c["sub"] = "mallory".into();
        let tampered = format!(
            "{}.{}.{}",
            parts[0],
            b64.encode(serde_json::to_vec(&c).unwrap()),
            parts[2]
        );
        assert!(check(&tampered, &key, &expect())
            .unwrap_err()
            .contains("signature"));
        for garbage in ["", "x", "a.b.c", "....", "eyJ9.eyJ9.eyJ9"] {
            assert!(check(garbage, &key, &expect()).is_err(), "{garbage:?}");
        }
        // A configured algorithm list the key's algorithm is not in.
        let mut e = expect();
        e.algorithms = vec![Algorithm::RS256];
        assert!(check(&good_token, &key, &e)
            .unwrap_err()
            .contains("does not allow"));
    }

    /// A JWKS endpoint on loopback whose keys the test swaps, counting fetches.
    async fn jwks_server(
        doc: std::sync::Arc<Mutex<Value>>,
        hits: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    ) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/jwks", l.local_addr().unwrap());
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                hits.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let body = doc.lock().unwrap().to_string();
                let _ = s
                    .write_all(
                        format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                            body.len()
                        )
                        .as_bytes(),
                    )
                    .await;
            }
        });
        url
    }

    fn okp(kid: &str, seed: u8) -> Value {
        let sk = ed25519_dalek::SigningKey::from_bytes(&[seed; 32]);
        let x =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sk.verifying_key().as_bytes());
        serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid})
    }

    #[tokio::test]
    async fn keys_are_cached_refetched_for_an_unknown_kid_and_rate_limited() {
        use std::sync::atomic::Ordering::SeqCst;
        let doc = std::sync::Arc::new(Mutex::new(serde_json::json!({"keys": [okp("a", 1)]})));
        let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let url = jwks_server(doc.clone(), hits.clone()).await;

        // Rotation: a new kid is fetched once it is published.
        let keys =
            KeySet::new("http://127.0.0.1", Some(url.clone())).with_min_refetch(Duration::ZERO);
        assert!(keys.find(Some("a"), "EdDSA").await.unwrap().is_some());
        assert!(keys.find(Some("a"), "EdDSA").await.unwrap().is_some());
        assert_eq!(hits.load(SeqCst), 1, "cached");
        *doc.lock().unwrap() = serde_json::json!({"keys": [okp("a", 1), okp("b", 2)]});
        let b = keys.find(Some("b"), "EdDSA").await.unwrap().unwrap();
        assert_eq!((b.kid.as_deref(), b.alg), (Some("b"), Algorithm::EdDSA));
        assert_eq!(hits.load(SeqCst), 2);

        // Made-up kids do not turn into a fetch each.
        let before = hits.load(SeqCst);
        let limited =
            KeySet::new("http://127.0.0.1", Some(url)).with_min_refetch(Duration::from_secs(600));
        for i in 0..20 {
            assert!(limited
                .find(Some(&format!("nope-{i}")), "EdDSA")
                .await
                .unwrap()
                .is_none());
        }
        assert_eq!(hits.load(SeqCst) - before, 1);

        // A provider that cannot be reached: no keys, an error (never a pass).
        let down = KeySet::new("http://127.0.0.1:1", None);
        assert!(down.find(Some("a"), "EdDSA").await.is_err());
    }

    #[test]
    fn jwks_keep_signature_keys_pinned_and_skip_secrets() {
        let doc = serde_json::json!({"keys":[
            {"kty":"oct","k":"c2VjcmV0","kid":"hmac","alg":"HS256"},
            {"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","kid":"ed"},
            {"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","kid":"enc","use":"enc"},
            {"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0","kid":"ec","alg":"RS256"},
            {"kty":"weird"}
        ]});
        let keys = parse_jwks(&doc).unwrap();
        let names: Vec<_> = keys
            .iter()
            .map(|k| (k.kid.clone().unwrap(), k.alg))
            .collect();
        assert_eq!(names, vec![("ed".to_string(), Algorithm::EdDSA)]);
        assert!(parse_jwks(&serde_json::json!({})).is_err());
    }
}
