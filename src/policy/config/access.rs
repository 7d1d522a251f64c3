//! The per-kind parts of a target's config: connection settings, credentials, plain files
//! and the kind's built-in deny rules (see `policy::targets` and docs/TARGETS.md).

use std::collections::BTreeMap;
use std::ops::Range;

use serde::Deserialize;
use toml::Spanned;

use super::{resolve_secret, ConfigError, RawDeny, RawSecret, RawTarget};
use crate::policy::sql::{Kind, NameGlob, SqlMatch};
use crate::policy::{targets, DenyRule, TargetKind};

/// Text given inline or read from a file at start (not secret: known_hosts, a CA).
#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum RawText {
    Inline(String),
    File { file: std::path::PathBuf },
}

/// Reads known_hosts or CA text from where the config says it is.
fn resolve_text(raw: RawText) -> Result<String, String> {
    let text = match raw {
        RawText::Inline(t) => t,
        RawText::File { file } => std::fs::read_to_string(&file)
            .map_err(|e| format!("cannot read {}: {e}", file.display()))?,
    };
    if text.trim().is_empty() {
        return Err("the text is empty".into());
    }
    Ok(text)
}

/// A setting that goes into generated tool configs: one word, no quotes, no leading `-`.
fn plain_setting(v: &str) -> Result<String, String> {
    let v = v.trim();
    if v.is_empty() || v.len() > 255 {
        return Err("must be 1 to 255 characters".into());
    }
    if v.starts_with('-')
        || v.chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '"')
    {
        return Err(format!(
            "{v:?} must not start with '-' or hold spaces, quotes or control characters"
        ));
    }
    Ok(v.to_string())
}

/// The connection settings and credentials of a target: each only on the kinds it
/// applies to, each error at its own line.
pub(super) fn parse_access(
    t: &mut RawTarget,
    kind: TargetKind,
    name: &str,
    span: Range<usize>,
    err: &dyn Fn(Range<usize>, String) -> ConfigError,
) -> Result<targets::Access, ConfigError> {
    let kind_name = t.kind.get_ref().clone();
    let check = |field: &str, at: Range<usize>| {
        if targets::accepts(kind, field) {
            Ok(())
        } else {
            Err(err(
                at,
                format!("target {name:?}: {field} does not apply to a {kind_name} target"),
            ))
        }
    };
    let setting =
        |field: &str, v: &Option<Spanned<String>>| -> Result<Option<String>, ConfigError> {
            let Some(v) = v else { return Ok(None) };
            check(field, v.span())?;
            plain_setting(v.get_ref())
                .map(Some)
                .map_err(|why| err(v.span(), format!("target {name:?}: {field} {why}")))
        };
    let secret = |field: &str,
                  v: Option<Spanned<RawSecret>>|
     -> Result<Option<crate::auth::Secret>, ConfigError> {
        let Some(v) = v else { return Ok(None) };
        check(field, v.span())?;
        let at = v.span();
        resolve_secret(v.into_inner())
            .map(Some)
            .map_err(|why| err(at, format!("target {name:?}: {field}: {why}")))
    };
    let text = |field: &str, v: Option<Spanned<RawText>>| -> Result<Option<String>, ConfigError> {
        let Some(v) = v else { return Ok(None) };
        check(field, v.span())?;
        let at = v.span();
        resolve_text(v.into_inner())
            .map(Some)
            .map_err(|why| err(at, format!("target {name:?}: {field}: {why}")))
    };
    let mut a = targets::Access {
        host: setting("host", &t.host)?,
        user: setting("user", &t.user)?,
        database: setting("database", &t.database)?,
        namespace: setting("namespace", &t.namespace)?,
        server: setting("server", &t.server)?,
        known_hosts: text("known_hosts", t.known_hosts.take())?,
        ca: text("ca", t.ca.take())?,
        password: secret("password", t.password.take())?,
        private_key: secret("private_key", t.private_key.take())?,
        token: secret("token", t.token.take())?,
        client_certificate: text("client_certificate", t.client_certificate.take())?,
        client_key: secret("client_key", t.client_key.take())?,
        ..Default::default()
    };
    if a.client_certificate.is_some() != a.client_key.is_some() {
        return Err(err(
            span.clone(),
            format!("target {name:?}: client_certificate and client_key go together (the certificate the gateway presents to the API server, and its key)"),
        ));
    }
    if let Some(p) = &t.port {
        check("port", p.span())?;
        a.port = Some(
            u16::try_from(*p.get_ref())
                .ok()
                .filter(|&p| p > 0)
                .ok_or_else(|| {
                    err(
                        p.span(),
                        format!("target {name:?}: port must be between 1 and 65535"),
                    )
                })?,
        );
    }
    if let Some(s) = t.server.as_ref().zip(a.server.as_ref()) {
        if !s.1.starts_with("https://") && !s.1.starts_with("http://") {
            return Err(err(
                s.0.span(),
                format!("target {name:?}: server must be the API server's URL, https://HOST:PORT"),
            ));
        }
        if (a.token.is_some() || a.client_key.is_some()) && !s.1.starts_with("https://") {
            return Err(err(
                s.0.span(),
                format!("target {name:?}: the token would cross the network in the clear; use the API server's https:// URL"),
            ));
        }
    }
    for (var, raw) in std::mem::take(&mut t.secret_files) {
        let at = raw.span();
        if !var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') || var.is_empty() {
            return Err(err(
                at,
                format!("target {name:?}: secret_files.{var}: the key is the environment variable to set, letters, digits and '_'"),
            ));
        }
        let value = resolve_secret(raw.into_inner())
            .map_err(|why| err(at, format!("target {name:?}: secret file {var}: {why}")))?;
        a.secret_files.insert(var, value);
    }
    let missing = |what: &str, why: &str| {
        err(
            span.clone(),
            format!("target {name:?}: a {kind_name} target needs {what} ({why})"),
        )
    };
    match kind {
        TargetKind::Ssh if a.host.is_none() => Err(missing("host", "the machine ssh connects to")),
        TargetKind::Ssh if a.known_hosts.is_none() => Err(missing(
            "known_hosts",
            "the host's public key, so ssh checks it instead of asking; `ssh-keyscan HOST` prints it",
        )),
        TargetKind::Postgres if a.password.is_some() && a.host.is_none() => Err(missing(
            "host",
            "the server its password is for; the password goes to no other",
        )),
        TargetKind::Postgres if a.password.is_some() && a.user.is_none() => Err(missing(
            "user",
            "the role its password is for; a client may not pick another",
        )),
        TargetKind::Kubernetes if a.server.is_none() => {
            Err(missing("server", "the API server's URL"))
        }
        _ => Ok(a),
    }
}

/// The kind's built-in deny rules this target keeps: all of them, or those `builtin_deny`
/// names.
pub(super) fn builtin_deny_kept(
    t: &RawTarget,
    kind: TargetKind,
    err: &dyn Fn(Range<usize>, String) -> ConfigError,
) -> Result<Vec<&'static str>, ConfigError> {
    let all = targets::builtin_deny_names(kind);
    Ok(match &t.builtin_deny {
        None => all,
        Some(list) => {
            let mut keep = Vec::new();
            for b in list.get_ref() {
                let Some(found) = all.iter().find(|d| **d == b.get_ref()) else {
                    return Err(err(
                        b.span(),
                        format!(
                            "unknown built-in deny rule {:?} for a {} target: expected one of {}",
                            b.get_ref(),
                            t.kind.get_ref(),
                            all.join(", ")
                        ),
                    ));
                };
                keep.push(*found);
            }
            keep
        }
    })
}

/// The built-in deny rules in use, each on the targets that keep it. A rule of the config's
/// own may not take a built-in rule's name.
pub(super) fn builtin_deny_rules(
    builtin_deny: BTreeMap<&'static str, Vec<String>>,
    user_rules: &[RawDeny],
    err: &dyn Fn(Range<usize>, String) -> ConfigError,
) -> Result<Vec<DenyRule>, ConfigError> {
    let mut rules = Vec::new();
    for (name, on) in builtin_deny {
        if let Some(r) = user_rules.iter().find(|r| r.name.get_ref() == name) {
            return Err(err(
                r.name.span(),
                format!("deny rule {name:?} has the name of a built-in deny rule of a target; rename it, or turn the built-in one off with builtin_deny = [] on the target"),
            ));
        }
        let kinds = [TargetKind::Postgres, TargetKind::Kubernetes];
        let line = kinds
            .iter()
            .flat_map(|k| targets::builtin_deny(*k))
            .find(|d| d.0 == name);
        let statements = kinds
            .iter()
            .flat_map(|k| targets::builtin_statement_deny(*k))
            .find(|d| d.0 == name);
        let (pattern, sql, message) = match (line, statements) {
            (Some((_, pattern, message)), _) => (
                Some(
                    regex::bytes::Regex::new(pattern)
                        .map_err(|e| err(0..0, format!("built-in deny rule {name}: {e}")))?,
                ),
                None,
                message,
            ),
            (None, Some((_, statements, functions, message))) => (
                None,
                Some(
                    builtin_sql_match(statements, functions)
                        .map_err(|e| err(0..0, format!("built-in deny rule {name}: {e}")))?,
                ),
                message,
            ),
            (None, None) => continue,
        };
        rules.push(DenyRule {
            name: name.to_string(),
            pattern,
            sql,
            kube: None,
            targets: on,
            message: Some(format!(
                "{message} (built-in rule {name}; builtin_deny on the target turns it off)"
            )),
        });
    }
    Ok(rules)
}

/// The conditions of a built-in statement rule.
pub(super) fn builtin_sql_match(
    statements: &[&str],
    functions: &[&str],
) -> Result<SqlMatch, String> {
    Ok(SqlMatch {
        kinds: statements
            .iter()
            .map(|k| Kind::parse(k).ok_or_else(|| format!("unknown statement kind {k:?}")))
            .collect::<Result<_, _>>()?,
        relations: vec![],
        functions: functions
            .iter()
            .map(|f| NameGlob::parse(f))
            .collect::<Result<_, _>>()?,
    })
}
