//! The gateway's TOML config: parsed with spans so every refusal names the file, the line
//! and the reason.

use std::collections::{BTreeMap, HashSet};
use std::ops::Range;

use serde::Deserialize;
use toml::Spanned;

use self::access::RawText;
use super::mask::{self, detect, Matcher, Replace};
use super::sql::{Kind, NameGlob, SqlMatch};
use super::{
    targets, DenyRule, DevIdentity, MaskRule, Policy, ReviewRule, ReviewSettings, Target,
    TargetKind,
};

mod access;
mod kube_rules;

/// A config the gateway refuses to start with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{column}: {reason}")]
pub struct ConfigError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub reason: String,
}

impl ConfigError {
    pub(super) fn at(
        text: &str,
        file: &str,
        span: Option<Range<usize>>,
        reason: impl Into<String>,
    ) -> Self {
        let (line, column) = span.map(|s| line_col(text, s.start)).unwrap_or((1, 1));
        ConfigError {
            file: file.to_string(),
            line,
            column,
            reason: reason.into(),
        }
    }
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text.as_bytes()[..offset];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let col = offset
        - before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |p| p + 1)
        + 1;
    (line, col)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    targets: Vec<Spanned<RawTarget>>,
    #[serde(default)]
    rules: RawRules,
    #[serde(default)]
    auth: Option<super::auth::RawAuth>,
    #[serde(default)]
    reviews: Option<Spanned<RawReviews>>,
    #[serde(default)]
    dev: Option<RawDev>,
    #[serde(default)]
    access: Option<RawAccess>,
    #[serde(default)]
    store: Option<RawStore>,
    #[serde(default)]
    limits: Option<RawLimits>,
}

/// `[access]`: who reads more than their own sessions.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAccess {
    #[serde(default)]
    auditors: Vec<String>,
}

/// `[store]`: how long ended sessions are kept.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStore {
    #[serde(default)]
    retention: Option<Spanned<String>>,
}

/// `[limits]`: connection and per-identity limits (see [`super::Limits`]).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    #[serde(default)]
    header_read_timeout: Option<Spanned<String>>,
    #[serde(default)]
    idle_timeout: Option<Spanned<String>>,
    #[serde(default)]
    max_connections: Option<Spanned<i64>>,
    #[serde(default)]
    pending_sessions: Option<Spanned<i64>>,
    #[serde(default)]
    argv_bytes: Option<Spanned<i64>>,
    #[serde(default)]
    body_bytes: Option<Spanned<i64>>,
    #[serde(default)]
    body_read_timeout: Option<Spanned<String>>,
    #[serde(default)]
    requests_per_minute: Option<Spanned<i64>>,
    #[serde(default)]
    attach_within: Option<Spanned<String>>,
}

/// `[reviews]`: how long a review waits and who hears about it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReviews {
    #[serde(default)]
    ttl: Option<Spanned<String>>,
    #[serde(default)]
    webhook_url: Option<Spanned<String>>,
    #[serde(default)]
    webhook_timeout: Option<Spanned<String>>,
    #[serde(default)]
    webhook_retries: Option<Spanned<i64>>,
}

/// `[dev]`: settings that only mean something under `gateway serve --dev`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDev {
    #[serde(default)]
    identities: Vec<Spanned<RawDevIdentity>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDevIdentity {
    name: Spanned<String>,
    token: Spanned<String>,
    #[serde(default)]
    groups: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTarget {
    name: Spanned<String>,
    kind: Spanned<String>,
    #[serde(default)]
    command: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    /// Secret environment for the tool, resolved by the gateway at start:
    /// `PGPASSWORD = { env = "PROD_DB_PASSWORD" }` or `{ file = "/run/secrets/pg" }`.
    #[serde(default)]
    secret_env: BTreeMap<String, Spanned<RawSecret>>,
    #[serde(default)]
    #[allow(dead_code)]
    description: Option<String>,
    /// Groups whose members may open sessions here; empty: anyone authenticated.
    #[serde(default)]
    groups: Vec<Spanned<String>>,
    // Connection settings and credentials by kind: see `targets::Access` and docs/TARGETS.md.
    #[serde(default)]
    host: Option<Spanned<String>>,
    #[serde(default)]
    port: Option<Spanned<i64>>,
    #[serde(default)]
    user: Option<Spanned<String>>,
    #[serde(default)]
    database: Option<Spanned<String>>,
    #[serde(default)]
    namespace: Option<Spanned<String>>,
    #[serde(default)]
    server: Option<Spanned<String>>,
    #[serde(default)]
    known_hosts: Option<Spanned<RawText>>,
    #[serde(default)]
    ca: Option<Spanned<RawText>>,
    #[serde(default)]
    password: Option<Spanned<RawSecret>>,
    #[serde(default)]
    private_key: Option<Spanned<RawSecret>>,
    #[serde(default)]
    token: Option<Spanned<RawSecret>>,
    #[serde(default)]
    client_certificate: Option<Spanned<RawText>>,
    #[serde(default)]
    client_key: Option<Spanned<RawSecret>>,
    #[serde(default)]
    secret_files: BTreeMap<String, Spanned<RawSecret>>,
    /// The kind's built-in deny rules to keep, by name; default: all of them.
    #[serde(default)]
    builtin_deny: Option<Spanned<Vec<Spanned<String>>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSecret {
    env: Option<String>,
    file: Option<std::path::PathBuf>,
}

/// Reads a secret from where the config says it is. Errors name the place, never the value.
pub(super) fn resolve_secret(raw: RawSecret) -> Result<crate::auth::Secret, String> {
    let value = match (raw.env, raw.file) {
        (Some(var), None) => std::env::var(&var).map_err(|_| {
            format!("the gateway's environment has no {var} (set it where the gateway starts)")
        })?,
        (None, Some(path)) => std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?
            .trim_end_matches(['\n', '\r'])
            .to_string(),
        _ => return Err("give exactly one of env = \"VAR\" or file = \"PATH\"".into()),
    };
    if value.is_empty() {
        return Err("the value is empty".into());
    }
    Ok(crate::auth::Secret::new(value))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRules {
    /// Built-in detectors on for every target: names, or `"all"`.
    #[serde(default)]
    builtin_masks: Vec<Spanned<String>>,
    /// How the `builtin_masks` rules replace: `"label"` (default) or `"same-width"`.
    #[serde(default)]
    builtin_replace: Option<Spanned<String>>,
    #[serde(default)]
    mask: Vec<RawMask>,
    #[serde(default)]
    deny: Vec<RawDeny>,
    #[serde(default)]
    review: Vec<RawReview>,
    #[serde(default)]
    columns: Vec<RawColumns>,
}

/// A `[[rules.columns]]` table: result columns of postgres targets masked whole.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawColumns {
    name: Spanned<String>,
    #[serde(default)]
    columns: Vec<Spanned<String>>,
    #[serde(default)]
    types: Vec<Spanned<String>>,
    #[serde(default)]
    targets: Vec<Spanned<String>>,
    #[serde(default)]
    replacement: Option<String>,
}

/// A list of strings in the config, each with its place.
type SpannedList = Spanned<Vec<Spanned<String>>>;

/// A `[[rules.review]]` table: a command, line or statement that waits for a human.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReview {
    name: Spanned<String>,
    #[serde(default)]
    pattern: Option<Spanned<String>>,
    #[serde(default)]
    statements: Option<SpannedList>,
    #[serde(default)]
    relations: Option<SpannedList>,
    #[serde(default)]
    functions: Option<SpannedList>,
    /// Request conditions (kubernetes targets): see [`super::kube::KubeMatch`].
    #[serde(default)]
    verbs: Option<SpannedList>,
    #[serde(default)]
    groups: Option<SpannedList>,
    #[serde(default)]
    resources: Option<SpannedList>,
    #[serde(default)]
    namespaces: Option<SpannedList>,
    #[serde(default)]
    names: Option<SpannedList>,
    reviewers: Spanned<Vec<String>>,
    #[serde(default)]
    targets: Vec<Spanned<String>>,
    #[serde(default)]
    min_approvals: Option<Spanned<i64>>,
    #[serde(default)]
    message: Option<String>,
}

/// A `[[rules.mask]]` table: exactly one of `pattern`, `literals` and `detector`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMask {
    name: Spanned<String>,
    #[serde(default)]
    pattern: Option<Spanned<String>>,
    #[serde(default)]
    max_len: Option<Spanned<i64>>,
    #[serde(default)]
    literals: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    detector: Option<Spanned<String>>,
    #[serde(default)]
    targets: Vec<Spanned<String>>,
    #[serde(default)]
    replace: Option<Spanned<String>>,
    /// Label text, `[REDACTED:<name>]` by default.
    #[serde(default)]
    replacement: Option<Spanned<String>>,
}

/// A `[[rules.deny]]` table: a line rule (`pattern`) or a statement rule (`statements`,
/// `relations`, `functions`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDeny {
    name: Spanned<String>,
    #[serde(default)]
    pattern: Option<Spanned<String>>,
    #[serde(default)]
    statements: Option<SpannedList>,
    #[serde(default)]
    relations: Option<SpannedList>,
    #[serde(default)]
    functions: Option<SpannedList>,
    /// Request conditions (kubernetes targets): see [`super::kube::KubeMatch`].
    #[serde(default)]
    verbs: Option<SpannedList>,
    #[serde(default)]
    groups: Option<SpannedList>,
    #[serde(default)]
    resources: Option<SpannedList>,
    #[serde(default)]
    namespaces: Option<SpannedList>,
    #[serde(default)]
    names: Option<SpannedList>,
    #[serde(default)]
    targets: Vec<Spanned<String>>,
    #[serde(default)]
    message: Option<String>,
}

/// Largest compiled program size of one rule's regex: a runaway pattern is refused at start
/// instead of eating memory.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Why `pattern` is not a regex and where in it (a byte offset), as the regex parser says.
fn regex_error(pattern: &str) -> Option<(String, Option<usize>)> {
    let e = regex_syntax::ParserBuilder::new()
        .utf8(false)
        .build()
        .parse(pattern)
        .err()?;
    let (kind, span) = match &e {
        regex_syntax::Error::Parse(e) => (e.kind().to_string(), *e.span()),
        regex_syntax::Error::Translate(e) => (e.kind().to_string(), *e.span()),
        _ => return None,
    };
    Some((kind, Some(span.start.offset)))
}

/// Parses a config, collecting every error it can: after an error inside a
/// `[[rules.…]]` table that table is set aside and the rest parsed again. Errors elsewhere
/// (targets, `[auth]`, TOML syntax) end the collection, since what follows may depend on
/// them.
pub(super) fn parse_all(text: &str, file: &str) -> Result<Policy, Vec<ConfigError>> {
    const MAX_ERRORS: usize = 50;
    let mut errors: Vec<ConfigError> = Vec::new();
    let mut text = std::borrow::Cow::Borrowed(text);
    loop {
        match parse(&text, file) {
            Ok(p) if errors.is_empty() => return Ok(p),
            Ok(_) => break,
            Err(e) => {
                let next = blank_rule_table(&text, e.line);
                if errors.contains(&e) {
                    break;
                }
                errors.push(e);
                match next {
                    Some(t) if errors.len() < MAX_ERRORS => text = std::borrow::Cow::Owned(t),
                    _ => break,
                }
            }
        }
    }
    errors.sort_by_key(|e| (e.line, e.column));
    Err(errors)
}

/// `text` with the `[[rules.…]]` table around line `line` (1-based) emptied, its lines
/// kept so positions elsewhere stay the same; `None` when the line is in no rule table.
fn blank_rule_table(text: &str, line: usize) -> Option<String> {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let at = line.checked_sub(1)?.min(lines.len().checked_sub(1)?);
    let header = |l: &str| l.trim_start().starts_with('[');
    let start = (0..=at).rev().find(|&i| header(lines[i]))?;
    if !lines[start].trim_start().starts_with("[[rules.") {
        return None;
    }
    let end = (at + 1..lines.len())
        .find(|&i| header(lines[i]))
        .unwrap_or(lines.len());
    let mut out = String::with_capacity(text.len());
    for (i, l) in lines.iter().enumerate() {
        if (start..end).contains(&i) {
            if l.ends_with('\n') {
                out.push('\n');
            }
        } else {
            out.push_str(l);
        }
    }
    Some(out)
}

pub(super) fn parse(text: &str, file: &str) -> Result<Policy, ConfigError> {
    let raw: RawConfig = toml::from_str(text)
        .map_err(|e| ConfigError::at(text, file, e.span(), e.message().trim().to_string()))?;
    let err = |span: Range<usize>, reason: String| ConfigError::at(text, file, Some(span), reason);

    let mut targets = Vec::new();
    let mut names = HashSet::new();
    // Built-in deny rules and the targets that keep them.
    let mut builtin_deny: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
    for t in raw.targets {
        let span = t.span();
        let mut t = t.into_inner();
        let name = t.name.get_ref().trim();
        if !valid_name(name) {
            return Err(err(
                t.name.span(),
                format!("target name {name:?} must be letters, digits, '-', '_' or '.'"),
            ));
        }
        if !names.insert(name.to_string()) {
            return Err(err(t.name.span(), format!("duplicate target {name:?}")));
        }
        let kind = TargetKind::parse(t.kind.get_ref()).ok_or_else(|| {
            err(
                t.kind.span(),
                format!(
                    "unknown target kind {:?}: expected postgres, ssh, kubernetes or command",
                    t.kind.get_ref()
                ),
            )
        })?;
        if t.command.iter().any(|c| c.is_empty() || c.contains('/')) {
            return Err(err(
                span,
                format!("target {name:?}: command lists program names such as \"psql\", not paths or empty strings"),
            ));
        }
        let mut secret_env = BTreeMap::new();
        for (var, raw) in std::mem::take(&mut t.secret_env) {
            let span = raw.span();
            let value = resolve_secret(raw.into_inner())
                .map_err(|why| err(span, format!("target {name:?}: secret {var}: {why}")))?;
            secret_env.insert(var, value);
        }
        if let Some(g) = t.groups.iter().find(|g| g.get_ref().trim().is_empty()) {
            return Err(err(
                g.span(),
                format!("target {name:?}: groups lists group names; this one is empty"),
            ));
        }
        let name = name.to_string();
        let access = access::parse_access(&mut t, kind, &name, span.clone(), &err)?;
        let mut command = std::mem::take(&mut t.command);
        if command.is_empty() {
            command = targets::default_programs(kind)
                .iter()
                .map(|p| p.to_string())
                .collect();
        }
        if let Some(p) = command
            .iter()
            .find(|p| !targets::may_hold_credentials(kind, &access, p))
        {
            return Err(err(
                span,
                format!(
                    "target {name:?}: {p:?} would get the target's credentials; a {} target runs {}",
                    t.kind.get_ref(),
                    targets::credential_programs(kind).join(", ")
                ),
            ));
        }
        let keep = access::builtin_deny_kept(&t, kind, &err)?;
        for rule in keep {
            builtin_deny.entry(rule).or_default().push(name.clone());
        }
        targets.push(Target {
            name,
            kind,
            command,
            env: t.env,
            secret_env,
            groups: t.groups.into_iter().map(Spanned::into_inner).collect(),
            access,
        });
    }

    let check_targets = |list: &[Spanned<String>]| -> Result<Vec<String>, ConfigError> {
        list.iter()
            .map(|t| {
                if names.contains(t.get_ref()) {
                    Ok(t.get_ref().clone())
                } else {
                    Err(err(t.span(), format!("unknown target {:?}", t.get_ref())))
                }
            })
            .collect()
    };
    let check_name = |name: &Spanned<String>| {
        if valid_name(name.get_ref()) {
            Ok(())
        } else {
            Err(err(
                name.span(),
                format!(
                    "rule name {:?} must be letters, digits, '-', '_' or '.'",
                    name.get_ref()
                ),
            ))
        }
    };
    let compile = |name: &Spanned<String>, pattern: &Spanned<String>| {
        check_name(name)?;
        if pattern.get_ref().is_empty() {
            return Err(err(pattern.span(), "empty pattern".to_string()));
        }
        regex::bytes::RegexBuilder::new(pattern.get_ref())
            .size_limit(REGEX_SIZE_LIMIT)
            .build()
            .map_err(|e| {
                let detail = e.to_string();
                let last = detail.lines().last().unwrap_or("").trim().to_string();
                let (why, at) = regex_error(pattern.get_ref()).unwrap_or((last, None));
                let mut span = pattern.span();
                let mut reason = format!("rule {:?}: invalid regex: {why}", name.get_ref());
                if let Some(at) = at {
                    // Shown under the regex; in a literal string ('…') the position in the
                    // file is exact too.
                    let p = pattern.get_ref();
                    let col = p[..at.min(p.len())].chars().count();
                    reason.push_str(&format!("\n    {p}\n    {}^", " ".repeat(col)));
                    if text.as_bytes().get(span.start) == Some(&b'\'') {
                        span.start += 1 + at;
                    }
                }
                err(span, reason)
            })
    };

    // A rule's check: a line pattern, or statement conditions on postgres targets.
    let rule_check = |name: &Spanned<String>,
                      pattern: &Option<Spanned<String>>,
                      statements: &Option<SpannedList>,
                      relations: &Option<SpannedList>,
                      functions: &Option<SpannedList>,
                      on: &[Spanned<String>]|
     -> Result<(Option<regex::bytes::Regex>, Option<SqlMatch>), ConfigError> {
        let sql = sql_match(name, statements, relations, functions, &err)?;
        match (pattern, sql) {
            (Some(p), None) => Ok((Some(compile(name, p)?), None)),
            (None, Some(m)) => {
                check_name(name)?;
                if let Some(t) = on.iter().find(|t| {
                    targets
                        .iter()
                        .any(|k| &k.name == t.get_ref() && k.kind != TargetKind::Postgres)
                }) {
                    return Err(err(
                        t.span(),
                        format!(
                            "rule {:?} judges SQL statements, which only postgres targets relay; {:?} is not one",
                            name.get_ref(),
                            t.get_ref()
                        ),
                    ));
                }
                Ok((None, Some(m)))
            }
            (Some(p), Some(_)) => Err(err(
                p.span(),
                format!(
                    "rule {:?} has a pattern (a line rule) and statements, relations or functions (a statement rule); give one or the other, as two rules if both are meant",
                    name.get_ref()
                ),
            )),
            (None, None) => Err(err(
                name.span(),
                format!(
                    "rule {:?} needs a pattern (a regex over command and input lines) or statements, relations or functions (conditions on parsed SQL statements)",
                    name.get_ref()
                ),
            )),
        }
    };

    let mut rule_names = HashSet::new();
    let mut mask = Vec::new();
    let replace_style = |v: &Option<Spanned<String>>| -> Result<bool, ConfigError> {
        match v {
            None => Ok(false),
            Some(v) => match v.get_ref().as_str() {
                "label" => Ok(false),
                "same-width" => Ok(true),
                other => Err(err(
                    v.span(),
                    format!("unknown replace {other:?}: expected \"label\" or \"same-width\""),
                )),
            },
        }
    };
    let detector = |name: &Spanned<String>| {
        detect::names()
            .find(|d| d == name.get_ref())
            .ok_or_else(|| {
                err(
                    name.span(),
                    format!(
                        "unknown built-in detector {:?}: expected one of {}",
                        name.get_ref(),
                        detect::names().collect::<Vec<_>>().join(", ")
                    ),
                )
            })
    };
    for r in &raw.rules.mask {
        let name = r.name.get_ref();
        if !valid_name(name) {
            return Err(err(
                r.name.span(),
                format!("rule name {name:?} must be letters, digits, '-', '_' or '.'"),
            ));
        }
        let matcher = match (&r.pattern, &r.literals, &r.detector) {
            (Some(pattern), None, None) => {
                if pattern.get_ref().is_empty() {
                    return Err(err(pattern.span(), "empty pattern".to_string()));
                }
                let regex =
                    mask::compile_regex(pattern.get_ref(), REGEX_SIZE_LIMIT).map_err(|e| {
                        err(pattern.span(), format!("rule {name:?}: invalid regex: {e}"))
                    })?;
                if regex.is_match(b"") {
                    return Err(err(
                        pattern.span(),
                        format!("mask rule {name:?} matches the empty string"),
                    ));
                }
                let max_len = match &r.max_len {
                    None => mask::DEFAULT_MAX_LEN,
                    Some(m) => usize::try_from(*m.get_ref())
                        .ok()
                        .filter(|&m| (1..=mask::MAX_MAX_LEN).contains(&m))
                        .ok_or_else(|| {
                            err(
                                m.span(),
                                format!("max_len must be between 1 and {}", mask::MAX_MAX_LEN),
                            )
                        })?,
                };
                Matcher::Regex {
                    pattern: pattern.get_ref().clone(),
                    regex: std::sync::Arc::new(regex),
                    max_len,
                }
            }
            (None, Some(lits), None) => {
                if lits.get_ref().is_empty() || lits.get_ref().iter().any(|l| l.is_empty()) {
                    return Err(err(
                        lits.span(),
                        format!("mask rule {name:?}: literals must be a non-empty list of non-empty strings"),
                    ));
                }
                if lits.get_ref().iter().any(|l| l.len() > mask::MAX_MAX_LEN) {
                    return Err(err(
                        lits.span(),
                        format!(
                            "mask rule {name:?}: a literal is longer than {} bytes",
                            mask::MAX_MAX_LEN
                        ),
                    ));
                }
                Matcher::Literals(lits.get_ref().clone())
            }
            (None, None, Some(d)) => Matcher::Detector(detector(d)?),
            _ => {
                return Err(err(
                    r.name.span(),
                    format!(
                        "mask rule {name:?} needs exactly one of pattern, literals and detector"
                    ),
                ))
            }
        };
        if let (Some(m), false) = (&r.max_len, matches!(matcher, Matcher::Regex { .. })) {
            return Err(err(
                m.span(),
                "max_len only applies to a pattern".to_string(),
            ));
        }
        if !rule_names.insert(("mask", name.clone())) {
            return Err(err(r.name.span(), format!("duplicate mask rule {name:?}")));
        }
        let replace = if replace_style(&r.replace)? {
            if let Some(l) = &r.replacement {
                return Err(err(
                    l.span(),
                    "replacement sets a label; it does not go with replace = \"same-width\""
                        .to_string(),
                ));
            }
            Replace::SameWidth
        } else {
            Replace::Label(
                r.replacement
                    .as_ref()
                    .map(|l| l.get_ref().clone())
                    .unwrap_or_else(|| format!("[REDACTED:{name}]")),
            )
        };
        mask.push(MaskRule {
            name: name.clone(),
            matcher,
            targets: check_targets(&r.targets)?,
            replace,
        });
    }
    let builtin_same_width = replace_style(&raw.rules.builtin_replace)?;
    let mut builtins: Vec<&'static str> = Vec::new();
    for b in &raw.rules.builtin_masks {
        if b.get_ref() == "all" {
            builtins.extend(detect::names());
        } else {
            builtins.push(detector(b)?);
        }
    }
    for d in detect::names().filter(|d| builtins.contains(d)) {
        if !rule_names.insert(("mask", d.to_string())) {
            let span = raw
                .rules
                .mask
                .iter()
                .find(|r| r.name.get_ref() == d)
                .map(|r| r.name.span())
                .unwrap_or(0..0);
            return Err(err(
                span,
                format!("mask rule {d:?} has the name of a built-in detector that builtin_masks turns on; rename it"),
            ));
        }
        let mut rule = mask::builtin_rule(d);
        if builtin_same_width {
            rule.replace = Replace::SameWidth;
        }
        mask.push(rule);
    }
    let mut deny = Vec::new();
    for r in &raw.rules.deny {
        let kube = kube_rules::request_match(
            &r.name,
            [&r.verbs, &r.groups, &r.resources, &r.namespaces, &r.names],
            [
                &r.pattern.as_ref().map(|p| p.span()),
                &r.statements.as_ref().map(|p| p.span()),
                &r.relations.as_ref().map(|p| p.span()),
                &r.functions.as_ref().map(|p| p.span()),
            ],
            &r.targets,
            &targets,
            &err,
        )?;
        let (pattern, sql) = match kube {
            Some(_) => (None, None),
            None => rule_check(
                &r.name,
                &r.pattern,
                &r.statements,
                &r.relations,
                &r.functions,
                &r.targets,
            )?,
        };
        if !rule_names.insert(("deny", r.name.get_ref().clone())) {
            return Err(err(
                r.name.span(),
                format!("duplicate deny rule {:?}", r.name.get_ref()),
            ));
        }
        deny.push(DenyRule {
            name: r.name.get_ref().clone(),
            pattern,
            sql,
            kube,
            targets: check_targets(&r.targets)?,
            message: r.message.clone(),
        });
    }
    deny.extend(access::builtin_deny_rules(
        builtin_deny,
        &raw.rules.deny,
        &err,
    )?);
    let mut review = Vec::new();
    for r in &raw.rules.review {
        let kube = kube_rules::request_match(
            &r.name,
            [&r.verbs, &r.groups, &r.resources, &r.namespaces, &r.names],
            [
                &r.pattern.as_ref().map(|p| p.span()),
                &r.statements.as_ref().map(|p| p.span()),
                &r.relations.as_ref().map(|p| p.span()),
                &r.functions.as_ref().map(|p| p.span()),
            ],
            &r.targets,
            &targets,
            &err,
        )?;
        let (pattern, sql) = match kube {
            Some(_) => (None, None),
            None => rule_check(
                &r.name,
                &r.pattern,
                &r.statements,
                &r.relations,
                &r.functions,
                &r.targets,
            )?,
        };
        let name = r.name.get_ref();
        if !rule_names.insert(("review", name.clone())) {
            return Err(err(
                r.name.span(),
                format!("duplicate review rule {name:?}"),
            ));
        }
        let reviewers = r.reviewers.get_ref();
        if reviewers.is_empty() || reviewers.iter().any(|g| g.trim().is_empty()) {
            return Err(err(
                r.reviewers.span(),
                format!("review rule {name:?}: reviewers lists the groups whose members may approve; it cannot be empty"),
            ));
        }
        let min_approvals = match &r.min_approvals {
            None => 1,
            Some(m) => u32::try_from(*m.get_ref())
                .ok()
                .filter(|n| (1..=10).contains(n))
                .ok_or_else(|| {
                    err(
                        m.span(),
                        format!("review rule {name:?}: min_approvals must be between 1 and 10"),
                    )
                })?,
        };
        review.push(ReviewRule {
            name: name.clone(),
            pattern,
            sql,
            kube,
            targets: check_targets(&r.targets)?,
            reviewers: reviewers.clone(),
            min_approvals,
            message: r.message.clone(),
        });
    }
    let duration = |v: &Spanned<String>, what: &str| {
        crate::recording::player::parse_time(v.get_ref().trim())
            .filter(|us| *us > 0)
            .map(|us| std::time::Duration::from_micros(us as u64))
            .ok_or_else(|| {
                err(
                    v.span(),
                    format!(
                        "{what} {:?} is not a duration; use e.g. 90s, 15m, 1h",
                        v.get_ref()
                    ),
                )
            })
    };
    let mut reviews = ReviewSettings::default();
    if let Some(r) = &raw.reviews {
        let r = r.get_ref();
        if let Some(ttl) = &r.ttl {
            reviews.ttl = duration(ttl, "ttl")?;
        }
        if let Some(url) = &r.webhook_url {
            let parsed = reqwest::Url::parse(url.get_ref())
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https"));
            if parsed.is_none() {
                return Err(err(
                    url.span(),
                    format!("webhook_url {:?} is not an http(s) URL", url.get_ref()),
                ));
            }
            reviews.webhook_url = Some(url.get_ref().clone());
        }
        if let Some(t) = &r.webhook_timeout {
            reviews.webhook_timeout = duration(t, "webhook_timeout")?;
        }
        if let Some(n) = &r.webhook_retries {
            reviews.webhook_retries = u32::try_from(*n.get_ref())
                .ok()
                .filter(|n| *n <= 10)
                .ok_or_else(|| err(n.span(), "webhook_retries must be between 0 and 10".into()))?;
        }
    }
    let mut limits = super::Limits::default();
    if let Some(l) = &raw.limits {
        let count = |v: &Spanned<i64>, what: &str, max: i64| {
            usize::try_from(*v.get_ref())
                .ok()
                .filter(|n| *n >= 1 && *n as i64 <= max)
                .ok_or_else(|| err(v.span(), format!("{what} must be between 1 and {max}")))
        };
        if let Some(v) = &l.header_read_timeout {
            limits.header_read_timeout = duration(v, "header_read_timeout")?;
        }
        if let Some(v) = &l.idle_timeout {
            limits.idle_timeout = duration(v, "idle_timeout")?;
        }
        if let Some(v) = &l.body_read_timeout {
            limits.body_read_timeout = duration(v, "body_read_timeout")?;
        }
        if let Some(v) = &l.attach_within {
            limits.attach_within = duration(v, "attach_within")?;
        }
        if let Some(v) = &l.max_connections {
            limits.max_connections = count(v, "max_connections", 1_000_000)?;
        }
        if let Some(v) = &l.pending_sessions {
            limits.pending_sessions = count(v, "pending_sessions", 100_000)?;
        }
        if let Some(v) = &l.argv_bytes {
            limits.argv_bytes = count(v, "argv_bytes", 64 << 20)?;
        }
        if let Some(v) = &l.body_bytes {
            limits.body_bytes = count(v, "body_bytes", 64 << 20)?;
        }
        if let Some(v) = &l.requests_per_minute {
            limits.requests_per_minute = count(v, "requests_per_minute", 1_000_000)? as u32;
        }
    }
    let mut dev_identities: Vec<DevIdentity> = Vec::new();
    for d in raw.dev.map(|d| d.identities).unwrap_or_default() {
        let d = d.into_inner();
        let name = d.name.get_ref().trim();
        if !valid_name(name) {
            return Err(err(
                d.name.span(),
                format!("dev identity name {name:?} must be letters, digits, '-', '_' or '.'"),
            ));
        }
        if name == crate::auth::DEV_SUBJECT {
            return Err(err(
                d.name.span(),
                format!("dev identity name {name:?} is the dev token's own; pick another"),
            ));
        }
        if d.token.get_ref().len() < 8 {
            return Err(err(
                d.token.span(),
                format!("dev identity {name:?}: the token must be at least 8 characters"),
            ));
        }
        if dev_identities.iter().any(|o| o.name == name) {
            return Err(err(
                d.name.span(),
                format!("duplicate dev identity {name:?}"),
            ));
        }
        if dev_identities
            .iter()
            .any(|o| o.token.expose() == d.token.get_ref())
        {
            return Err(err(
                d.token.span(),
                format!("dev identity {name:?} has the same token as another; tokens name one identity each"),
            ));
        }
        dev_identities.push(DevIdentity {
            name: name.to_string(),
            token: crate::auth::Secret::new(d.token.get_ref().clone()),
            groups: d.groups,
        });
    }
    if targets.is_empty() {
        return Err(ConfigError::at(
            text,
            file,
            None,
            "no [[targets]]: declare at least one target the gateway may open sessions on",
        ));
    }
    let mut columns = Vec::new();
    for r in &raw.rules.columns {
        let name = r.name.get_ref();
        if !valid_name(name) {
            return Err(err(
                r.name.span(),
                format!("rule name {name:?} must be letters, digits, '-', '_' or '.'"),
            ));
        }
        if !rule_names.insert(("columns", name.clone())) {
            return Err(err(
                r.name.span(),
                format!("duplicate columns rule {name:?}"),
            ));
        }
        if r.columns.is_empty() && r.types.is_empty() {
            return Err(err(
                r.name.span(),
                format!("columns rule {name:?} needs columns (\"table.column\", \"*.ssn\", \"email\") or types (\"bytea\")"),
            ));
        }
        for c in &r.columns {
            let v = c.get_ref();
            let parts = v.split('.').count();
            if v.is_empty() || parts > 3 || v.split('.').any(str::is_empty) {
                return Err(err(
                    c.span(),
                    format!("columns rule {name:?}: {v:?} is not column, table.column or schema.table.column"),
                ));
            }
        }
        let mut types = Vec::new();
        for t in &r.types {
            let canon = super::columns::canonical_type(t.get_ref());
            if !(0..5000).any(|oid| super::columns::type_name(oid) == Some(canon.as_str())) {
                return Err(err(
                    t.span(),
                    format!("columns rule {name:?}: unknown type {:?} (built-in types by name: text, varchar, bytea, json, jsonb, int4, …)", t.get_ref()),
                ));
            }
            types.push(canon);
        }
        columns.push(super::columns::ColumnRule {
            name: name.clone(),
            columns: r
                .columns
                .iter()
                .map(|c| c.get_ref().to_lowercase())
                .collect(),
            types,
            targets: check_targets(&r.targets)?,
            label: r
                .replacement
                .clone()
                .unwrap_or_else(|| format!("[REDACTED:{name}]")),
        });
    }
    let mut policy = Policy::new(targets, mask, deny);
    policy.columns = columns;
    policy.auth = raw
        .auth
        .map(|a| super::auth::compile(a, text, file))
        .transpose()?;
    policy.review = review;
    policy.reviews = reviews;
    policy.limits = limits;
    policy.dev_identities = dev_identities;
    policy.auditors = raw.access.map(|a| a.auditors).unwrap_or_default();
    if let Some(r) = raw.store.and_then(|s| s.retention) {
        let d = duration(&r, "retention")?;
        if d.as_secs() < 3600 {
            return Err(err(
                r.span(),
                "retention must be at least 1h (e.g. \"90d\")".into(),
            ));
        }
        policy.retention = Some(d);
    }
    Ok(policy)
}

/// A rule's statement conditions; `None` when it gives none of them.
fn sql_match(
    name: &Spanned<String>,
    statements: &Option<SpannedList>,
    relations: &Option<SpannedList>,
    functions: &Option<SpannedList>,
    err: &dyn Fn(Range<usize>, String) -> ConfigError,
) -> Result<Option<SqlMatch>, ConfigError> {
    fn items(list: &Option<SpannedList>) -> impl Iterator<Item = &Spanned<String>> {
        list.iter().flat_map(|l| l.get_ref().iter())
    }
    if statements.is_none() && relations.is_none() && functions.is_none() {
        return Ok(None);
    }
    let rule = name.get_ref();
    let non_empty = |field: &str, list: &Option<SpannedList>| match list {
        Some(l) if l.get_ref().is_empty() => Err(err(
            l.span(),
            format!("rule {rule:?}: {field} cannot be empty; leave it out to match any"),
        )),
        _ => Ok(()),
    };
    non_empty("statements", statements)?;
    non_empty("relations", relations)?;
    non_empty("functions", functions)?;
    let mut m = SqlMatch::default();
    for k in items(statements) {
        m.kinds.push(Kind::parse(k.get_ref()).ok_or_else(|| {
            err(
                k.span(),
                format!(
                    "rule {rule:?}: unknown statement kind {:?}: expected one of {}",
                    k.get_ref(),
                    Kind::ALL.map(Kind::as_str).join(", ")
                ),
            )
        })?);
    }
    let globs = |field: &str, list: &Option<SpannedList>| {
        items(list)
            .map(|g| {
                NameGlob::parse(g.get_ref())
                    .map_err(|why| err(g.span(), format!("rule {rule:?}: {field}: {why}")))
            })
            .collect::<Result<Vec<_>, _>>()
    };
    m.relations = globs("relations", relations)?;
    m.functions = globs("functions", functions)?;
    Ok(Some(m))
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refuse(text: &str) -> ConfigError {
        parse(text, "gw.toml").unwrap_err()
    }

    #[test]
    fn every_bad_rule_is_reported_at_once_and_errors_elsewhere_stop_the_collection() {
        let text = "[[targets]]\nname = \"t\"\nkind = \"command\"\n\n[[rules.deny]]\nname = \"a\"\npattern = '('\n\n[[rules.mask]]\nname = \"m\"\npattern = ''\n\n[[rules.deny]]\nname = \"b\"\npattern = 'x{2,1}'\n";
        let errors = parse_all(text, "f.toml").unwrap_err();
        let lines: Vec<usize> = errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, [7, 11, 15], "{errors:#?}");
        // The caret points into the regex, and the column into the file.
        assert!(errors[0].reason.ends_with("    (\n    ^"), "{errors:#?}");
        assert_eq!(errors[0].column, 12);
        // A bad target: that one error (what follows may name the target).
        let text = "[[targets]]\nname = \"t\"\nkind = \"nope\"\n\n[[rules.deny]]\nname = \"a\"\npattern = '('\n";
        assert_eq!(parse_all(text, "f.toml").unwrap_err().len(), 1);
        assert!(parse_all("[[targets]]\nname = \"t\"\nkind = \"command\"\n", "f").is_ok());
    }

    #[test]
    fn limits_default_and_parse_and_bad_values_name_the_key() {
        let base = "[[targets]]\nname = \"a\"\nkind = \"command\"\n";
        assert_eq!(
            parse(base, "gw.toml").unwrap().limits,
            crate::policy::Limits::default()
        );
        let p = parse(
            &format!("{base}[limits]\nheader_read_timeout = \"2s\"\nmax_connections = 10\npending_sessions = 3\nrequests_per_minute = 60\nattach_within = \"5m\"\n"),
            "gw.toml",
        )
        .unwrap();
        assert_eq!(
            p.limits.header_read_timeout,
            std::time::Duration::from_secs(2)
        );
        assert_eq!(p.limits.max_connections, 10);
        assert_eq!(p.limits.pending_sessions, 3);
        assert_eq!(p.limits.requests_per_minute, 60);
        assert_eq!(p.limits.attach_within, std::time::Duration::from_secs(300));
        let e = refuse(&format!("{base}[limits]\nmax_connections = 0\n"));
        assert!(
            e.reason.contains("max_connections must be between 1"),
            "{e}"
        );
        assert_eq!(e.line, 5);
        let e = refuse(&format!("{base}[limits]\nidle_timeout = \"soon\"\n"));
        assert!(e.reason.contains("idle_timeout"), "{e}");
        let e = refuse(&format!("{base}[limits]\nmax_conections = 5\n"));
        assert!(e.reason.contains("max_conections"), "{e}");
    }

    #[test]
    fn the_issue_example_is_accepted() {
        let text = "[[targets]]\nname = \"pg\"\nkind = \"postgres\"\ncommand = [\"psql\"]\n\n[[rules.mask]]\nname = \"email\"\npattern = '[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\\.[A-Za-z]{2,}'\n\n[[rules.deny]]\nname = \"no-drop-table\"\npattern = '(?i)\\bdrop\\s+table\\b'\n";
        let p = parse(text, "gw.toml").unwrap();
        assert_eq!(p.targets.len(), 1);
        assert_eq!(p.mask[0].replace, Replace::Label("[REDACTED:email]".into()));
        assert_eq!(p.deny[0].name, "no-drop-table");
    }

    #[test]
    fn the_review_example_is_accepted() {
        let text = "[[targets]]\nname = \"pg\"\nkind = \"postgres\"\n\n[[dev.identities]]\nname = \"agent\"\ntoken = \"tok-agent\"\ngroups = [\"agents\"]\n\n[[rules.review]]\nname = \"deletes-need-a-dba\"\npattern = '(?i)\\bdelete\\s+from\\b'\nreviewers = [\"dba\"]\n";
        let p = parse(text, "gw.toml").unwrap();
        assert_eq!(p.review[0].reviewers, ["dba"]);
        assert_eq!(p.review[0].min_approvals, 1);
        assert_eq!(p.reviews.ttl, std::time::Duration::from_secs(3600));
        assert_eq!(p.dev_identities[0].groups, ["agents"]);
        assert!(!format!("{:?}", p.dev_identities).contains("tok-agent"));
        assert!(matches!(
            p.check("pg", b"DELETE FROM t"),
            super::super::Verdict::Review(_)
        ));
        assert!(matches!(
            p.check("pg", b"select 1"),
            super::super::Verdict::Allow
        ));
    }

    /// The verdict on `sql` at `target`: "allow", "deny:<rule>" or "review:<rule>".
    fn decide(p: &Policy, target: &str, sql: &str) -> String {
        let a = super::super::sql::analyze(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
        match p.check_statements(target, &a) {
            super::super::Verdict::Allow => "allow".into(),
            super::super::Verdict::Deny(r) => format!("deny:{}", r.name),
            super::super::Verdict::Review(r) => format!("review:{}", r.name),
        }
    }

    const STATEMENT_RULES: &str = r#"
[[targets]]
name = "pg"
kind = "postgres"

[[targets]]
name = "pg2"
kind = "postgres"
builtin_deny = []

[[targets]]
name = "shell"
kind = "command"

[[rules.deny]]
name = "no-drops"
statements = ["drop", "truncate"]

[[rules.deny]]
name = "carts-need-where"
statements = ["delete_no_where", "update_no_where"]
relations = ["public.carts"]
targets = ["pg"]

[[rules.review]]
name = "billing-writes"
statements = ["insert", "update", "delete", "merge"]
relations = ["billing.*"]
reviewers = ["dba"]

[[rules.review]]
name = "dynamic-sql"
statements = ["dynamic"]
reviewers = ["dba"]
targets = ["pg2"]

[[rules.deny]]
name = "line-drop"
pattern = '(?i)drop'
"#;

    #[test]
    fn statement_rules_decide_parsed_sql() {
        let p = parse(STATEMENT_RULES, "gw.toml").unwrap();
        let d = |target: &str, sql: &str| decide(&p, target, sql);
        assert_eq!(d("pg", "select * from carts"), "allow");
        assert_eq!(d("pg", "DROP\nTABLE t"), "deny:no-drops");
        assert_eq!(d("pg", "select 1; truncate a, b"), "deny:no-drops");
        assert_eq!(d("pg", "delete from carts"), "deny:carts-need-where");
        assert_eq!(
            d(
                "pg",
                "WITH d AS (DELETE FROM carts RETURNING *) SELECT * FROM d"
            ),
            "deny:carts-need-where"
        );
        assert_eq!(d("pg", "delete from public.carts where id = 1"), "allow");
        assert_eq!(d("pg", "delete from public.orders"), "allow");
        assert_eq!(
            d("pg2", "delete from public.carts"),
            "allow",
            "rule scoped to pg"
        );
        // The search_path is not known: an unqualified name may be billing's.
        assert_eq!(
            d("pg", "delete from carts where id = 1"),
            "review:billing-writes"
        );
        // Review rules wait for deny rules over the whole message.
        assert_eq!(
            d("pg", "insert into billing.invoices values (1)"),
            "review:billing-writes"
        );
        assert_eq!(
            d(
                "pg",
                "insert into billing.invoices values (1); drop table x"
            ),
            "deny:no-drops"
        );
        assert_eq!(
            d("pg", "update invoices set paid = true where id = 1"),
            "review:billing-writes",
            "an unqualified name may be in any schema"
        );
        assert_eq!(d("pg", "select * from billing.invoices"), "allow");
        // Built-in statement rules on postgres targets.
        assert_eq!(
            d("pg", "DO $$ BEGIN EXECUTE 'drop table t'; END $$"),
            "deny:pg-dynamic-sql"
        );
        assert_eq!(d("pg", "COPY t TO PROGRAM 'sh'"), "deny:pg-server-programs");
        assert_eq!(d("pg", "copy t from '/etc/passwd'"), "deny:pg-server-files");
        assert_eq!(
            d("pg", "select pg_read_file('/etc/passwd')"),
            "deny:pg-server-file-functions"
        );
        assert_eq!(
            d("pg", "select * from pg_catalog.pg_ls_dir('.')"),
            "deny:pg-server-file-functions"
        );
        assert_eq!(d("pg", "copy t to stdout"), "allow");
        // Without the built-ins, dynamic SQL waits for a reviewer instead.
        assert_eq!(
            d(
                "pg2",
                "select * from dblink('x', 'drop table t') as t(a int)"
            ),
            "review:dynamic-sql"
        );
        assert_eq!(d("pg2", "COPY t TO PROGRAM 'sh'"), "allow");
        // Line checks see line rules only, statement checks statement rules only.
        assert!(matches!(
            p.check("pg", b"truncate a"),
            super::super::Verdict::Allow
        ));
        assert_eq!(p.denies("pg", b"drop table t").unwrap().name, "line-drop");
        assert_eq!(d("pg", "select 'drop'"), "allow");
        assert!(p.sql_rules("pg") && p.sql_rules("pg2"));
        let rules: Vec<_> = p
            .deny
            .iter()
            .filter(|r| r.sql.is_some() && r.targets.contains(&"pg".to_string()))
            .map(|r| r.name.as_str())
            .collect();
        assert_eq!(
            rules,
            [
                "carts-need-where",
                "pg-dynamic-sql",
                "pg-server-file-functions",
                "pg-server-files",
                "pg-server-programs"
            ]
        );
    }

    #[test]
    fn bad_statement_rules_name_the_line() {
        let base = "[[targets]]\nname = \"pg\"\nkind = \"postgres\"\n[[targets]]\nname = \"sh\"\nkind = \"command\"\n";
        let e = refuse(&format!(
            "{base}[[rules.deny]]\nname = \"d\"\npattern = 'x'\nstatements = [\"drop\"]\n"
        ));
        assert_eq!((e.line, e.column), (9, 11), "{e}");
        assert!(e.reason.contains("give one or the other"), "{e}");
        let e = refuse(&format!("{base}[[rules.deny]]\nname = \"d\"\n"));
        assert_eq!(e.line, 8, "{e}");
        assert!(e.reason.contains("needs a pattern"), "{e}");
        let e = refuse(&format!(
            "{base}[[rules.deny]]\nname = \"d\"\nstatements = [\"select\", \"dropp\"]\n"
        ));
        assert_eq!((e.line, e.column), (9, 25), "{e}");
        assert!(
            e.reason
                .contains("unknown statement kind \"dropp\": expected one of select, insert,"),
            "{e}"
        );
        assert!(e.reason.contains("delete_no_where") && e.reason.contains("dynamic"));
        let e = refuse(&format!(
            "{base}[[rules.review]]\nname = \"r\"\nreviewers = [\"dba\"]\nstatements = []\n"
        ));
        assert_eq!(e.line, 10, "{e}");
        assert!(e.reason.contains("statements cannot be empty"), "{e}");
        let e = refuse(&format!(
            "{base}[[rules.deny]]\nname = \"d\"\nrelations = [\"a.b.c\"]\n"
        ));
        assert_eq!((e.line, e.column), (9, 14), "{e}");
        assert!(e.reason.contains("relations"), "{e}");
        let e = refuse(&format!(
            "{base}[[rules.deny]]\nname = \"d\"\nfunctions = [\"pg_catalog.\"]\n"
        ));
        assert!(e.reason.contains("functions"), "{e}");
        let e = refuse(&format!(
            "{base}[[rules.deny]]\nname = \"d\"\nstatements = [\"drop\"]\ntargets = [\"pg\", \"sh\"]\n"
        ));
        assert_eq!((e.line, e.column), (10, 18), "{e}");
        assert!(e.reason.contains("only postgres targets"), "{e}");
        let e = refuse(&format!(
            "{base}[[rules.deny]]\nname = \"bad name\"\nstatements = [\"drop\"]\n"
        ));
        assert!(e.reason.contains("rule name"), "{e}");
        let e = refuse(&format!(
            "{base}[[rules.deny]]\nname = \"pg-dynamic-sql\"\nstatements = [\"do\"]\n"
        ));
        assert!(e.reason.contains("built-in deny rule"), "{e}");
        let e = refuse(&format!(
            "{base}[[rules.deny]]\nname = \"d\"\nstatement = [\"drop\"]\n"
        ));
        assert!(e.reason.contains("statement"), "{e}");
    }

    #[test]
    fn builtin_statement_rules_are_kept_or_dropped_by_name() {
        let pg = "[[targets]]\nname = \"pg\"\nkind = \"postgres\"\n";
        let p = parse(
            &format!("{pg}builtin_deny = [\"psql-shell-escape\", \"pg-server-programs\"]\n"),
            "gw.toml",
        )
        .unwrap();
        let names: Vec<_> = p.deny.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["pg-server-programs", "psql-shell-escape"]);
        assert_eq!(decide(&p, "pg", "do $$ begin end $$"), "allow");
        let e = refuse(&format!("{pg}builtin_deny = [\"pg-dynamic\"]\n"));
        assert!(e.reason.contains("pg-dynamic-sql"), "{e}");
        // Kubernetes and command targets get no statement rules.
        let p = parse("[[targets]]\nname = \"c\"\nkind = \"command\"\n", "gw.toml").unwrap();
        assert!(!p.sql_rules("c"));
    }

    #[test]
    fn bad_review_settings_name_the_line() {
        let base = "[[targets]]\nname = \"pg\"\nkind = \"postgres\"\n";
        let e = refuse(&format!(
            "{base}[[rules.review]]\nname = \"r\"\npattern = 'x'\nreviewers = []\n"
        ));
        assert!(e.reason.contains("reviewers"), "{e}");
        assert_eq!(e.line, 7, "{e}");
        let e = refuse(&format!("{base}[[rules.review]]\nname = \"r\"\npattern = 'x'\nreviewers = [\"dba\"]\nmin_approvals = 0\n"));
        assert!(e.reason.contains("min_approvals"), "{e}");
        let e = refuse(&format!("{base}[reviews]\nttl = \"soon\"\n"));
        assert!(e.reason.contains("not a duration"), "{e}");
        assert_eq!(e.line, 5, "{e}");
        let e = refuse(&format!("{base}[reviews]\nwebhook_url = \"ftp://x\"\n"));
        assert!(e.reason.contains("http"), "{e}");
        let e = refuse(&format!(
            "{base}[[dev.identities]]\nname = \"a\"\ntoken = \"short\"\n"
        ));
        assert!(e.reason.contains("at least 8"), "{e}");
        assert!(
            !e.to_string().contains("short\""),
            "the token is not echoed: {e}"
        );
        let e = refuse(&format!("{base}[[dev.identities]]\nname = \"a\"\ntoken = \"same-token\"\n[[dev.identities]]\nname = \"b\"\ntoken = \"same-token\"\n"));
        assert!(e.reason.contains("same token"), "{e}");
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let e = refuse("[[targets]]\nname = \"pg\"\nkind = postgres\n");
        assert_eq!((e.file.as_str(), e.line), ("gw.toml", 3), "{e}");
    }

    #[test]
    fn bad_regex_names_the_line_and_rule() {
        let e = refuse(
            "[[targets]]\nname = \"pg\"\nkind = \"postgres\"\n\n[[rules.deny]]\nname = \"x\"\npattern = '(unclosed'\n",
        );
        assert_eq!(e.line, 7, "{e}");
        assert!(e.reason.contains("invalid regex"), "{e}");
        assert!(e.to_string().starts_with("gw.toml:7:"), "{e}");
    }

    #[test]
    fn unknown_fields_kinds_and_targets_are_refused() {
        let e = refuse("[[targets]]\nname = \"pg\"\nkind = \"postgres\"\ncomand = [\"psql\"]\n");
        assert!(e.reason.contains("comand"), "{e}");
        assert_eq!(e.line, 4, "{e}");
        let e = refuse("[[targets]]\nname = \"pg\"\nkind = \"mysql\"\n");
        assert_eq!(e.line, 3);
        assert!(e.reason.contains("unknown target kind"), "{e}");
        let e = refuse(
            "[[targets]]\nname = \"pg\"\nkind = \"postgres\"\n[[rules.deny]]\nname = \"d\"\npattern = 'x'\ntargets = [\"pgg\"]\n",
        );
        assert_eq!(e.line, 7, "{e}");
        let e = refuse("[[targets]]\nname = \"a\"\nkind = \"command\"\n[[targets]]\nname = \"a\"\nkind = \"command\"\n");
        assert!(e.reason.contains("duplicate target"), "{e}");
        assert_eq!(e.line, 5);
    }

    #[test]
    fn duplicate_rule_names_are_refused_per_kind() {
        let base = "[[targets]]\nname = \"a\"\nkind = \"command\"\n";
        let e = refuse(&format!(
            "{base}[[rules.mask]]\nname = \"m\"\npattern = 'x'\n[[rules.mask]]\nname = \"m\"\npattern = 'y'\n"
        ));
        assert!(e.reason.contains("duplicate mask rule"), "{e}");
        assert_eq!(e.line, 8, "{e}");
        let e = refuse(&format!(
            "{base}[[rules.deny]]\nname = \"d\"\npattern = 'x'\n[[rules.deny]]\nname = \"d\"\npattern = 'y'\n"
        ));
        assert!(e.reason.contains("duplicate deny rule"), "{e}");
        // The same name as a mask rule and as a deny rule is fine.
        parse(
            &format!("{base}[[rules.mask]]\nname = \"r\"\npattern = 'x'\n[[rules.deny]]\nname = \"r\"\npattern = 'y'\n"),
            "gw.toml",
        )
        .unwrap();
    }

    #[test]
    fn empty_and_empty_matching_patterns_are_refused() {
        let e = refuse("[[targets]]\nname = \"a\"\nkind = \"command\"\n[[rules.mask]]\nname = \"m\"\npattern = 'x*'\n");
        assert!(e.reason.contains("empty string"), "{e}");
        let e = refuse("");
        assert!(e.reason.contains("no [[targets]]"), "{e}");
    }

    #[test]
    fn builtin_masks_turn_detectors_on_by_name_or_all() {
        let base = "[[targets]]\nname = \"a\"\nkind = \"command\"\n";
        let p = parse(
            &format!("{base}[rules]\nbuiltin_masks = [\"all\"]\n"),
            "gw.toml",
        )
        .unwrap();
        let names: Vec<_> = p.mask.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, detect::names().collect::<Vec<_>>());
        let p = parse(
            &format!("{base}[rules]\nbuiltin_masks = [\"payment-card\", \"email\"]\nbuiltin_replace = \"same-width\"\n"),
            "gw.toml",
        )
        .unwrap();
        let names: Vec<_> = p.mask.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["email", "payment-card"]);
        assert_eq!(p.mask[0].replace, Replace::SameWidth);
        let (out, n) = p.masker("a").mask(b"pay 4111 1111 1111 1111 now");
        assert_eq!((&out[..], n), (&b"pay ******************* now"[..], 1));
        // Without builtin_masks a gateway config masks only what its rules say.
        let p = parse(base, "gw.toml").unwrap();
        assert!(p.mask.is_empty());
    }

    #[test]
    fn unknown_detectors_and_bad_mask_tables_name_the_line() {
        let base = "[[targets]]\nname = \"a\"\nkind = \"command\"\n";
        let e = refuse(&format!(
            "{base}[rules]\nbuiltin_masks = [\"email\", \"emial\"]\n"
        ));
        assert_eq!((e.line, e.column), (5, 27), "{e}");
        assert!(
            e.reason.contains("unknown built-in detector \"emial\""),
            "{e}"
        );
        let e = refuse(&format!(
            "{base}[[rules.mask]]\nname = \"m\"\ndetector = \"cards\"\n"
        ));
        assert_eq!(e.line, 6, "{e}");
        let e = refuse(&format!(
            "{base}[[rules.mask]]\nname = \"m\"\npattern = 'x'\nliterals = [\"y\"]\n"
        ));
        assert!(e.reason.contains("exactly one of"), "{e}");
        assert_eq!(e.line, 5, "{e}");
        let e = refuse(&format!(
            "{base}[[rules.mask]]\nname = \"m\"\nliterals = [\"y\"]\nmax_len = 3\n"
        ));
        assert!(e.reason.contains("max_len only applies"), "{e}");
        let e = refuse(&format!(
            "{base}[[rules.mask]]\nname = \"m\"\npattern = 'x'\nmax_len = 0\n"
        ));
        assert_eq!(e.line, 7, "{e}");
        let e = refuse(&format!(
            "{base}[[rules.mask]]\nname = \"m\"\npattern = 'x'\nreplace = \"stars\"\n"
        ));
        assert!(e.reason.contains("unknown replace"), "{e}");
        let e = refuse(&format!(
            "{base}[[rules.mask]]\nname = \"m\"\npattern = 'x'\nreplace = \"same-width\"\nreplacement = \"X\"\n"
        ));
        assert_eq!(e.line, 8, "{e}");
        let e = refuse(&format!(
            "{base}[rules]\nbuiltin_masks = [\"all\"]\n[[rules.mask]]\nname = \"email\"\npattern = 'x'\n"
        ));
        assert!(e.reason.contains("name of a built-in detector"), "{e}");
        assert_eq!(e.line, 7, "{e}");
        let e = refuse(&format!(
            "{base}[[rules.mask]]\nname = \"m\"\npatern = 'x'\n"
        ));
        assert!(e.reason.contains("patern"), "{e}");
    }

    #[test]
    fn mask_rules_carry_literals_detectors_targets_and_styles() {
        let text = r#"
[[targets]]
name = "pg"
kind = "postgres"

[[targets]]
name = "shell"
kind = "command"

[[rules.mask]]
name = "codenames"
literals = ["BLUEBIRD", "REDWING"]
replace = "same-width"
targets = ["pg"]

[[rules.mask]]
name = "cards"
detector = "payment-card"
replacement = "<card>"

[[rules.mask]]
name = "ticket"
pattern = 'TKT-[0-9]+'
max_len = 12
"#;
        let p = parse(text, "gw.toml").unwrap();
        let input = b"BLUEBIRD paid 4111111111111111 for TKT-1234";
        let (out, _) = p.masker("pg").mask(input);
        assert_eq!(&out[..], b"******** paid <card> for [REDACTED:ticket]");
        let (out, _) = p.masker("shell").mask(input);
        assert_eq!(&out[..], b"BLUEBIRD paid <card> for [REDACTED:ticket]");
        // A rule sees at most max_len bytes from where its match starts.
        let (out, n) = p.masker("shell").mask(b"TKT-1234567890");
        assert_eq!((&out[..], n), (&b"[REDACTED:ticket]90"[..], 1));
    }
}
