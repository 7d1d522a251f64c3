//! The gateway config's `[auth]` table: which OpenID provider people log in with, which CI
//! issuers the gateway trusts and on what conditions. Parsed with spans like the rest of
//! the config (errors name FILE:LINE:COL); pure data, no I/O.

use std::collections::BTreeMap;
use std::ops::Range;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::ConfigError;

/// Signature algorithms a token may be signed with. HS* (shared secrets) and `none` are
/// never accepted.
pub const ALGORITHMS: &[&str] = &[
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
];

/// How the gateway authenticates people and machines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthSettings {
    /// The OpenID provider's issuer URL, exactly as in its tokens' `iss`.
    pub issuer: String,
    /// What tokens must carry in `aud` to be accepted here (the gateway's resource).
    pub audience: String,
    /// The public client `hoopx login` uses at the provider.
    pub cli_client_id: Option<String>,
    /// The claim whose strings are the identity's groups.
    pub groups_claim: String,
    /// Algorithms accepted; empty: each published key's own (RS256 for an RSA key…).
    pub algorithms: Vec<String>,
    /// The provider's JWKS URL; default: from its discovery document.
    pub jwks_uri: Option<String>,
    /// Clock skew allowed on `exp` and `nbf`.
    pub leeway: Duration,
    /// Lifetime of the session tokens the gateway issues in exchange for CI tokens.
    pub session_ttl: Duration,
    /// How long a running session outlives its token when no fresh token arrives.
    pub expiry_grace: Duration,
    pub trusted_issuers: Vec<TrustedIssuer>,
    /// How tokens that are not JWTs (opaque access tokens) are checked; `None`: refused.
    pub opaque_tokens: Option<OpaqueTokens>,
    /// How long an opaque token's answer from the provider is reused.
    pub opaque_cache: Duration,
    /// `opaque_tokens = "introspect"`: the gateway's confidential client at the provider.
    pub introspection_client: Option<(String, crate::auth::Secret)>,
}

/// How the gateway checks an opaque access token with the provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpaqueTokens {
    /// The provider's userinfo endpoint (from discovery): the token is good while it
    /// answers with the user's claims.
    UserInfo,
    /// RFC 7662 introspection (from discovery), as the gateway's own client: the token must
    /// be active, unexpired, and for the gateway (`aud`) or issued to `cli_client_id`.
    Introspect,
}

/// A CI issuer (GitHub Actions, GitLab…) whose tokens the gateway exchanges for its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedIssuer {
    /// Prefix of the identities it yields: `NAME:SUB`.
    pub name: String,
    pub issuer: String,
    pub audience: String,
    pub jwks_uri: Option<String>,
    /// Claim name → accepted values (any of them; `*` matches any run of characters).
    pub claims: BTreeMap<String, Vec<String>>,
    /// Groups of the identities this issuer's tokens become.
    pub groups: Vec<String>,
}

impl TrustedIssuer {
    /// The first claim constraint `claims` does not meet, as "claim (got …, wanted …)".
    pub fn unmet(&self, claims: &serde_json::Map<String, serde_json::Value>) -> Option<String> {
        for (name, wanted) in &self.claims {
            let got = claims.get(name).and_then(|v| v.as_str());
            if !got.is_some_and(|g| wanted.iter().any(|w| glob(w, g))) {
                return Some(format!(
                    "claim {name:?} is {} but this gateway accepts {}",
                    got.map_or_else(|| "missing".to_string(), |g| format!("{g:?}")),
                    wanted
                        .iter()
                        .map(|w| format!("{w:?}"))
                        .collect::<Vec<_>>()
                        .join(" or ")
                ));
            }
        }
        None
    }
}

/// `*` matches any run of characters, everything else itself.
pub fn glob(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for p in middle {
        match rest.find(p) {
            Some(i) => rest = &rest[i + p.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAuth {
    issuer: Spanned<String>,
    audience: Spanned<String>,
    #[serde(default)]
    cli_client_id: Option<String>,
    #[serde(default)]
    groups_claim: Option<String>,
    #[serde(default)]
    algorithms: Vec<Spanned<String>>,
    #[serde(default)]
    jwks_uri: Option<Spanned<String>>,
    #[serde(default)]
    leeway: Option<Spanned<String>>,
    #[serde(default)]
    session_ttl: Option<Spanned<String>>,
    #[serde(default)]
    expiry_grace: Option<Spanned<String>>,
    #[serde(default)]
    trusted_issuers: Vec<RawTrusted>,
    #[serde(default)]
    opaque_tokens: Option<Spanned<String>>,
    #[serde(default)]
    opaque_cache: Option<Spanned<String>>,
    #[serde(default)]
    introspection_client_id: Option<Spanned<String>>,
    #[serde(default)]
    introspection_client_secret: Option<Spanned<super::config::RawSecret>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTrusted {
    name: Spanned<String>,
    issuer: Spanned<String>,
    audience: Spanned<String>,
    #[serde(default)]
    jwks_uri: Option<Spanned<String>>,
    #[serde(default)]
    claims: BTreeMap<String, Spanned<OneOrMany>>,
    #[serde(default)]
    groups: Vec<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

pub(super) fn compile(raw: RawAuth, text: &str, file: &str) -> Result<AuthSettings, ConfigError> {
    let err = |span: Range<usize>, reason: String| ConfigError::at(text, file, Some(span), reason);
    let url = |s: &Spanned<String>, what: &str| -> Result<String, ConfigError> {
        check_url(s.get_ref())
            .map(|()| s.get_ref().clone())
            .map_err(|why| err(s.span(), format!("{what}: {why}")))
    };
    let duration = |s: &Option<Spanned<String>>, default: u64, what: &str| {
        let Some(s) = s else {
            return Ok(Duration::from_secs(default));
        };
        crate::recording::player::parse_time(s.get_ref().trim())
            .and_then(|us| u64::try_from(us).ok())
            .map(Duration::from_micros)
            .ok_or_else(|| {
                err(
                    s.span(),
                    format!(
                        "{what} {:?} is not a duration; use e.g. 30s, 15m, 1h",
                        s.get_ref()
                    ),
                )
            })
    };
    let nonempty = |s: &Spanned<String>, what: &str| {
        if s.get_ref().trim().is_empty() {
            Err(err(s.span(), format!("{what} is empty")))
        } else {
            Ok(s.get_ref().clone())
        }
    };
    let mut algorithms = Vec::new();
    for a in &raw.algorithms {
        let name = a.get_ref();
        if !ALGORITHMS.contains(&name.as_str()) {
            let why = if name.starts_with("HS") {
                format!("{name} is a shared-secret algorithm: anyone who knows the provider's public key could forge it, so it is never accepted")
            } else if name.eq_ignore_ascii_case("none") {
                "\"none\" means unsigned tokens: never accepted".to_string()
            } else {
                format!("unknown algorithm {name:?}")
            };
            return Err(err(
                a.span(),
                format!("{why}; expected some of {}", ALGORITHMS.join(", ")),
            ));
        }
        algorithms.push(name.clone());
    }
    let mut trusted_issuers = Vec::new();
    for t in raw.trusted_issuers {
        let name = t.name.get_ref();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err(err(
                t.name.span(),
                format!("trusted issuer name {name:?} must be letters, digits, '-', '_' or '.'"),
            ));
        }
        if trusted_issuers
            .iter()
            .any(|x: &TrustedIssuer| &x.name == name)
        {
            return Err(err(
                t.name.span(),
                format!("duplicate trusted issuer {name:?}"),
            ));
        }
        let mut claims = BTreeMap::new();
        for (claim, v) in t.claims {
            let span = v.span();
            let values = match v.into_inner() {
                OneOrMany::One(s) => vec![s],
                OneOrMany::Many(v) => v,
            };
            if values.is_empty() || values.iter().any(String::is_empty) {
                return Err(err(
                    span,
                    format!("claim {claim:?}: give a non-empty value or list of values"),
                ));
            }
            claims.insert(claim, values);
        }
        if claims.is_empty() {
            // Without constraints any job of any repository on that CI would get in.
            return Err(err(
                t.name.span(),
                format!("trusted issuer {name:?} has no [claims]: constrain at least one claim (e.g. repository = \"org/repo\"), or every job on that CI could log in"),
            ));
        }
        trusted_issuers.push(TrustedIssuer {
            name: name.clone(),
            issuer: url(&t.issuer, "issuer")?,
            audience: nonempty(&t.audience, "audience")?,
            jwks_uri: t
                .jwks_uri
                .as_ref()
                .map(|u| url(u, "jwks_uri"))
                .transpose()?,
            claims,
            groups: t.groups,
        });
    }
    let opaque_tokens = match &raw.opaque_tokens {
        None => None,
        Some(o) if o.get_ref() == "userinfo" => Some(OpaqueTokens::UserInfo),
        Some(o) if o.get_ref() == "introspect" => Some(OpaqueTokens::Introspect),
        Some(o) => {
            return Err(err(
                o.span(),
                format!(
                    "opaque_tokens {:?}: expected \"userinfo\" or \"introspect\"",
                    o.get_ref()
                ),
            ))
        }
    };
    let introspection_client = match (
        raw.introspection_client_id,
        raw.introspection_client_secret,
    ) {
        (Some(id), Some(secret)) => {
            let span = secret.span();
            let secret = super::config::resolve_secret(secret.into_inner())
                .map_err(|why| err(span, format!("introspection_client_secret: {why}")))?;
            Some((nonempty(&id, "introspection_client_id")?, secret))
        }
        (None, None) => None,
        (Some(s), None) => {
            return Err(err(
                s.span(),
                "introspection_client_id needs introspection_client_secret = { env = \"VAR\" } (or file = \"PATH\")".into(),
            ))
        }
        (None, Some(s)) => {
            return Err(err(
                s.span(),
                "introspection_client_secret needs introspection_client_id".into(),
            ))
        }
    };
    if opaque_tokens == Some(OpaqueTokens::Introspect) && introspection_client.is_none() {
        return Err(err(
            raw.opaque_tokens.as_ref().map(|s| s.span()).unwrap_or(0..0),
            "opaque_tokens = \"introspect\" needs introspection_client_id and introspection_client_secret (the gateway's client at the provider)".into(),
        ));
    }
    Ok(AuthSettings {
        issuer: url(&raw.issuer, "issuer")?,
        audience: nonempty(&raw.audience, "audience")?,
        cli_client_id: raw.cli_client_id.filter(|c| !c.is_empty()),
        groups_claim: raw
            .groups_claim
            .filter(|c| !c.is_empty())
            .unwrap_or_else(|| "groups".into()),
        algorithms,
        jwks_uri: raw
            .jwks_uri
            .as_ref()
            .map(|u| url(u, "jwks_uri"))
            .transpose()?,
        leeway: duration(&raw.leeway, 30, "leeway")?,
        session_ttl: duration(&raw.session_ttl, 900, "session_ttl")?,
        expiry_grace: duration(&raw.expiry_grace, 60, "expiry_grace")?,
        trusted_issuers,
        opaque_tokens,
        introspection_client,
        opaque_cache: {
            let d = duration(&raw.opaque_cache, 60, "opaque_cache")?;
            if d > Duration::from_secs(3600) {
                return Err(err(
                    raw.opaque_cache.as_ref().map(|s| s.span()).unwrap_or(0..0),
                    "opaque_cache is at most 1h: a token revoked at the provider must stop working soon".into(),
                ));
            }
            d
        },
    })
}

/// An issuer or key URL: https, or http on a loopback address (for tests and local
/// providers).
fn check_url(s: &str) -> Result<(), String> {
    let (scheme, rest) = s
        .split_once("://")
        .ok_or_else(|| format!("{s:?} is not a URL"))?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    let hostname = if host.starts_with('[') {
        host.split(']').next().unwrap_or("").trim_start_matches('[')
    } else {
        host.split(':').next().unwrap_or("")
    };
    if hostname.is_empty() {
        return Err(format!("{s:?} has no host"));
    }
    match scheme {
        "https" => Ok(()),
        "http"
            if hostname == "localhost"
                || hostname
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback()) =>
        {
            Ok(())
        }
        _ => Err(format!(
            "{s:?} must be an https:// URL (http:// only on a loopback address)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob("refs/heads/main", "refs/heads/main"));
        assert!(!glob("refs/heads/main", "refs/heads/mainx"));
        assert!(glob("refs/tags/v*", "refs/tags/v1.2"));
        assert!(!glob("refs/tags/v*", "refs/heads/v1"));
        assert!(glob("*", ""));
        assert!(glob("a*b*c", "axxbyyc"));
        assert!(!glob("a*b*c", "axxbyy"));
    }

    fn refuse(auth: &str) -> crate::policy::ConfigError {
        let text = format!("{auth}\n[[targets]]\nname = \"a\"\nkind = \"command\"\n");
        crate::policy::Policy::from_toml(&text, "gw.toml").unwrap_err()
    }

    #[test]
    fn the_issue_example_is_accepted_with_defaults() {
        let text = "[auth]\nissuer = \"https://idp.example.com\"\naudience = \"urn:hoopx:gateway\"\ncli_client_id = \"hoopx-cli\"\ngroups_claim = \"groups\"\n\n[[targets]]\nname = \"pg\"\nkind = \"postgres\"\ngroups = [\"dba\"]\n";
        let p = crate::policy::Policy::from_toml(text, "gw.toml").unwrap();
        let a = p.auth.unwrap();
        assert_eq!(a.issuer, "https://idp.example.com");
        assert_eq!(a.cli_client_id.as_deref(), Some("hoopx-cli"));
        assert_eq!(a.leeway, Duration::from_secs(30));
        assert_eq!(a.expiry_grace, Duration::from_secs(60));
        assert!(p.targets[0].admits(&["dba".into()]));
        assert!(!p.targets[0].admits(&["dev".into()]));
        assert!(!p.targets[0].admits(&[]));
    }

    #[test]
    fn bad_auth_tables_name_the_line_and_why() {
        let base = "[auth]\nissuer = \"https://idp\"\naudience = \"urn:x\"\n";
        let e = refuse("[auth]\nissuer = \"http://idp.example.com\"\naudience = \"urn:x\"\n");
        assert_eq!(e.line, 2, "{e}");
        assert!(e.reason.contains("https://"), "{e}");
        let e = refuse(&format!("{base}algorithms = [\"none\"]\n"));
        assert_eq!(e.line, 4, "{e}");
        assert!(e.reason.contains("unsigned"), "{e}");
        let e = refuse(&format!("{base}expiry_grace = \"soon\"\n"));
        assert!(e.reason.contains("not a duration"), "{e}");
        let e = refuse(&format!(
            "{base}[[auth.trusted_issuers]]\nname = \"gh\"\nissuer = \"https://token.actions.githubusercontent.com\"\naudience = \"urn:x\"\n"
        ));
        assert_eq!(e.line, 5, "{e}");
        assert!(e.reason.contains("no [claims]"), "{e}");
        let e = refuse("[auth]\nissuer = \"https://idp\"\n");
        assert!(e.reason.contains("audience"), "{e}");
        let e = refuse(&format!("{base}isuer = \"x\"\n"));
        assert!(e.reason.contains("isuer"), "{e}");
        assert_eq!(e.line, 4, "{e}");
    }

    #[test]
    fn claim_constraints_name_what_did_not_match() {
        let t = TrustedIssuer {
            name: "gh".into(),
            issuer: "https://x".into(),
            audience: "a".into(),
            jwks_uri: None,
            claims: [(
                "ref".to_string(),
                vec!["refs/heads/main".to_string(), "refs/tags/v*".to_string()],
            )]
            .into_iter()
            .collect(),
            groups: vec![],
        };
        let claims = |r: serde_json::Value| r.as_object().unwrap().clone();
        assert_eq!(
            t.unmet(&claims(serde_json::json!({"ref": "refs/tags/v2"}))),
            None
        );
        let why = t
            .unmet(&claims(serde_json::json!({"ref": "refs/heads/dev"})))
            .unwrap();
        assert!(why.contains("\"refs/heads/dev\""), "{why}");
        let why = t.unmet(&claims(serde_json::json!({}))).unwrap();
        assert!(why.contains("missing"), "{why}");
        // Only strings match: a number or list is not a way around a constraint.
        assert!(t
            .unmet(&claims(serde_json::json!({"ref": ["refs/heads/main"]})))
            .is_some());
    }

    #[test]
    fn urls() {
        assert!(check_url("https://idp.example.com").is_ok());
        assert!(check_url("http://127.0.0.1:8080").is_ok());
        assert!(check_url("http://[::1]:8080/x").is_ok());
        assert!(check_url("http://idp.example.com").is_err());
        assert!(check_url("idp.example.com").is_err());
        assert!(check_url("https://").is_err());
    }
}
