//! Policy: targets, mask rules and deny rules, parsed from the gateway's TOML config and
//! compiled once. Pure logic, no I/O: the caller reads the file and hands over its text.

pub mod auth;
pub mod columns;
pub mod config;
pub mod gate;
pub mod kube;
pub mod mask;
pub mod review;
pub mod screen;
pub mod sftp;
pub mod sql;
pub mod ssh;
pub mod targets;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use regex::bytes::Regex;

pub use config::ConfigError;
pub use gate::{GateAction, InputGate};
pub use mask::{MaskStream, Masker, Matcher, Replace};

/// What a target is; it decides defaults such as the escape hatches a target closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    Postgres,
    Ssh,
    Kubernetes,
    Command,
}

impl TargetKind {
    pub fn parse(s: &str) -> Option<TargetKind> {
        Some(match s {
            "postgres" => TargetKind::Postgres,
            "ssh" => TargetKind::Ssh,
            "kubernetes" => TargetKind::Kubernetes,
            "command" => TargetKind::Command,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone)]
pub struct Target {
    pub name: String,
    pub kind: TargetKind,
    /// Programs this target may run (matched on the basename of `argv[0]`); empty: any.
    pub command: Vec<String>,
    /// Plain environment handed to the tool.
    pub env: BTreeMap<String, String>,
    /// Secret environment handed to the tool, resolved at gateway start. Always masked in
    /// the target's output, whatever the rules say.
    pub secret_env: BTreeMap<String, crate::auth::Secret>,
    /// Groups whose members may open sessions here; empty: anyone authenticated.
    pub groups: Vec<String>,
    /// Connection settings and credentials the kind hands the tool (see [`targets`]).
    pub access: targets::Access,
}

impl Target {
    /// Whether an identity in `groups` may open sessions on this target.
    pub fn admits(&self, groups: &[String]) -> bool {
        self.groups.is_empty() || self.groups.iter().any(|g| groups.contains(g))
    }

    pub fn allows_program(&self, argv0: &str) -> bool {
        self.command.is_empty() || self.command.iter().any(|c| c == program_name(argv0))
    }
}

/// The basename of a program path: `/usr/bin/psql` → `psql`.
pub fn program_name(argv0: &str) -> &str {
    argv0.rsplit('/').next().unwrap_or(argv0)
}

/// A command or input line, or an SQL statement, that never runs.
#[derive(Debug, Clone)]
pub struct DenyRule {
    pub name: String,
    /// A line rule's regex over command lines and input lines; `None` for a statement rule.
    pub pattern: Option<Regex>,
    /// A statement rule's conditions on parsed SQL; `None` for a line rule.
    pub sql: Option<sql::SqlMatch>,
    /// A request rule's conditions on Kubernetes API requests (kubernetes targets).
    pub kube: Option<kube::KubeMatch>,
    /// Targets the rule applies to; empty: all.
    pub targets: Vec<String>,
    pub message: Option<String>,
}

/// A command or input line, or an SQL statement, that waits for a human before it runs.
#[derive(Debug, Clone)]
pub struct ReviewRule {
    pub name: String,
    /// A line rule's regex over command lines and input lines; `None` for a statement rule.
    pub pattern: Option<Regex>,
    /// A statement rule's conditions on parsed SQL; `None` for a line rule.
    pub sql: Option<sql::SqlMatch>,
    /// A request rule's conditions on Kubernetes API requests (kubernetes targets).
    pub kube: Option<kube::KubeMatch>,
    /// Targets the rule applies to; empty: all.
    pub targets: Vec<String>,
    /// Groups whose members may approve; the requester never approves their own request.
    pub reviewers: Vec<String>,
    /// Distinct approvals needed.
    pub min_approvals: u32,
    pub message: Option<String>,
}

/// `[limits]`: what keeps one client (or a pile of idle connections) from starving the
/// rest. Defaults suit a team's gateway; see docs/OPERATIONS.md.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// A connection that has not sent a whole request head this long after it opened (or
    /// after its previous request) is closed.
    pub header_read_timeout: std::time::Duration,
    /// A connection from which nothing arrives this long is closed (session streams ping
    /// every 15 s).
    pub idle_timeout: std::time::Duration,
    /// Open connections at most; past it new ones get 503 and are closed.
    pub max_connections: usize,
    /// Sessions one identity may have opened and not attached yet.
    pub pending_sessions: usize,
    /// Bytes of one session's command line (its arguments together).
    pub argv_bytes: usize,
    /// Bytes of one API request body.
    pub body_bytes: usize,
    /// A request body must arrive whole within this long after its head (a body sent a
    /// byte now and then would otherwise hold its connection for ever).
    pub body_read_timeout: std::time::Duration,
    /// API requests per identity per minute (a token bucket: bursts up to this many).
    pub requests_per_minute: u32,
    /// A session whose stream does not attach this long after it opened ends `aborted`.
    pub attach_within: std::time::Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_read_timeout: std::time::Duration::from_secs(10),
            idle_timeout: std::time::Duration::from_secs(300),
            max_connections: 4096,
            pending_sessions: 32,
            argv_bytes: 64 * 1024,
            body_bytes: 1024 * 1024,
            body_read_timeout: std::time::Duration::from_secs(30),
            requests_per_minute: 6000,
            attach_within: std::time::Duration::from_secs(60),
        }
    }
}

/// `[reviews]`: review lifetime and the webhook told about new and decided reviews.
#[derive(Debug, Clone)]
pub struct ReviewSettings {
    /// How long a review waits for a decision, and how long an approval stays usable.
    pub ttl: std::time::Duration,
    pub webhook_url: Option<String>,
    /// Per attempt.
    pub webhook_timeout: std::time::Duration,
    /// Attempts after the first one.
    pub webhook_retries: u32,
}

impl Default for ReviewSettings {
    fn default() -> Self {
        ReviewSettings {
            ttl: std::time::Duration::from_secs(3600),
            webhook_url: None,
            webhook_timeout: std::time::Duration::from_secs(5),
            webhook_retries: 3,
        }
    }
}

/// `[[dev.identities]]`: named tokens with groups, accepted only by `gateway serve --dev`.
#[derive(Debug, Clone)]
pub struct DevIdentity {
    pub name: String,
    pub token: crate::auth::Secret,
    pub groups: Vec<String>,
}

/// What the policy says about a command line or an input line.
#[derive(Debug, Clone, Copy)]
pub enum Verdict<'a> {
    Allow,
    Deny(&'a DenyRule),
    Review(&'a ReviewRule),
}

/// One mask rule: what it looks for, where, and what it puts instead.
#[derive(Debug, Clone)]
pub struct MaskRule {
    /// Names the rule in counts and in the default label `[REDACTED:<name>]`.
    pub name: String,
    pub matcher: Matcher,
    /// Targets the rule applies to; empty: all.
    pub targets: Vec<String>,
    pub replace: Replace,
}

fn applies(targets: &[String], target: &str) -> bool {
    targets.is_empty() || targets.iter().any(|t| t == target)
}

/// Whether a line rule's pattern matches `text`; never for a statement rule.
fn line_match(pattern: &Option<Regex>, text: &[u8]) -> bool {
    pattern.as_ref().is_some_and(|p| p.is_match(text))
}

/// Whether a statement rule matches any statement of `a`; never for a line rule.
fn statement_match(m: &Option<sql::SqlMatch>, a: &sql::Analysis) -> bool {
    m.as_ref()
        .is_some_and(|m| a.statements.iter().any(|s| m.matches(s)))
}

/// A compiled policy.
#[derive(Debug, Clone)]
pub struct Policy {
    pub targets: Vec<Target>,
    /// Mask rules in priority order (see [`mask`]).
    pub mask: Vec<MaskRule>,
    pub deny: Vec<DenyRule>,
    /// The `[auth]` table: OpenID provider and trusted CI issuers; `None` in dev mode.
    pub auth: Option<auth::AuthSettings>,
    /// Review rules, checked after the deny rules.
    pub review: Vec<ReviewRule>,
    pub reviews: ReviewSettings,
    pub limits: Limits,
    pub dev_identities: Vec<DevIdentity>,
    /// `[[rules.columns]]`: result columns masked whole on postgres targets.
    pub columns: Vec<columns::ColumnRule>,
    /// `[access] auditors`: groups whose members read every session, review and the ledger.
    pub auditors: Vec<String>,
    /// `[store] retention`: ended sessions older than this are pruned.
    pub retention: Option<std::time::Duration>,
    /// Compiled maskers by target, built on first use.
    maskers: Arc<Mutex<HashMap<String, Masker>>>,
}

/// Why a session cannot open on the requested target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetError {
    Unknown(String),
    NoneRuns(String),
    Ambiguous(String, Vec<String>),
    ProgramNotAllowed { target: String, program: String },
}

impl std::fmt::Display for TargetError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TargetError::Unknown(t) => write!(f, "no target named {t:?} on this gateway"),
            TargetError::NoneRuns(p) => write!(f, "no target on this gateway runs {p:?}"),
            TargetError::Ambiguous(p, names) => write!(
                f,
                "several targets run {p:?} ({}); pass --target to pick one",
                names.join(", ")
            ),
            TargetError::ProgramNotAllowed { target, program } => {
                write!(f, "target {target:?} does not allow running {program:?}")
            }
        }
    }
}

impl Policy {
    /// Parses and compiles a gateway config. `file` only names the source in errors.
    pub fn from_toml(text: &str, file: &str) -> Result<Policy, ConfigError> {
        config::parse(text, file)
    }

    /// Like [`Policy::from_toml`], with every error that can be found at once (see
    /// `gateway check`).
    pub fn from_toml_all(text: &str, file: &str) -> Result<Policy, Vec<ConfigError>> {
        config::parse_all(text, file)
    }

    /// The policy of the embedded gateway: one `local` target that runs anything, built-in
    /// masking on, nothing denied.
    pub fn embedded_default() -> Policy {
        Policy::new(
            vec![Target {
                name: "local".into(),
                kind: TargetKind::Command,
                command: vec![],
                env: BTreeMap::new(),
                secret_env: BTreeMap::new(),
                groups: vec![],
                access: targets::Access::default(),
            }],
            mask::builtin_rules(),
            vec![],
        )
    }

    /// A policy from compiled parts.
    pub fn new(targets: Vec<Target>, mask: Vec<MaskRule>, deny: Vec<DenyRule>) -> Policy {
        Policy {
            targets,
            mask,
            deny,
            auth: None,
            review: Vec::new(),
            reviews: ReviewSettings::default(),
            limits: Limits::default(),
            dev_identities: Vec::new(),
            columns: Vec::new(),
            auditors: Vec::new(),
            retention: None,
            maskers: Arc::default(),
        }
    }

    /// Picks the target of a session: the named one, or else the one target that runs
    /// `argv0`, and checks it may run `argv0`.
    pub fn resolve_target(
        &self,
        requested: Option<&str>,
        argv0: &str,
    ) -> Result<&Target, TargetError> {
        let program = program_name(argv0);
        let target = match requested {
            Some(name) => self
                .targets
                .iter()
                .find(|t| t.name == name)
                .ok_or_else(|| TargetError::Unknown(name.to_string()))?,
            None => {
                let explicit: Vec<&Target> = self
                    .targets
                    .iter()
                    .filter(|t| t.command.iter().any(|c| c == program))
                    .collect();
                let candidates = if explicit.is_empty() {
                    self.targets
                        .iter()
                        .filter(|t| t.command.is_empty())
                        .collect()
                } else {
                    explicit
                };
                match candidates.as_slice() {
                    [one] => *one,
                    [] => return Err(TargetError::NoneRuns(program.to_string())),
                    many => {
                        return Err(TargetError::Ambiguous(
                            program.to_string(),
                            many.iter().map(|t| t.name.clone()).collect(),
                        ))
                    }
                }
            }
        };
        if !target.allows_program(argv0) {
            return Err(TargetError::ProgramNotAllowed {
                target: target.name.clone(),
                program: program.to_string(),
            });
        }
        Ok(target)
    }

    /// The first deny line rule that matches `text` on `target`.
    pub fn denies(&self, target: &str, text: &[u8]) -> Option<&DenyRule> {
        self.deny
            .iter()
            .find(|r| applies(&r.targets, target) && line_match(&r.pattern, text))
    }

    /// Line rules on a command or input line: deny rules first, then review rules; the
    /// first that matches decides. Statement rules play no part (see
    /// [`Policy::check_statements`]).
    pub fn check(&self, target: &str, text: &[u8]) -> Verdict<'_> {
        if let Some(d) = self.denies(target, text) {
            return Verdict::Deny(d);
        }
        match self
            .review
            .iter()
            .find(|r| applies(&r.targets, target) && line_match(&r.pattern, text))
        {
            Some(r) => Verdict::Review(r),
            None => Verdict::Allow,
        }
    }

    /// Statement rules on the parsed SQL of one protocol message, decided as a whole: the
    /// first deny rule that matches any of its statements, else the first review rule.
    pub fn check_statements(&self, target: &str, a: &sql::Analysis) -> Verdict<'_> {
        if let Some(d) = self
            .deny
            .iter()
            .find(|r| applies(&r.targets, target) && statement_match(&r.sql, a))
        {
            return Verdict::Deny(d);
        }
        match self
            .review
            .iter()
            .find(|r| applies(&r.targets, target) && statement_match(&r.sql, a))
        {
            Some(r) => Verdict::Review(r),
            None => Verdict::Allow,
        }
    }

    /// Request rules on one Kubernetes API request: the first deny rule that matches,
    /// else the first review rule.
    pub fn check_request(&self, target: &str, r: &kube::RequestInfo) -> Verdict<'_> {
        let hit = |m: &Option<kube::KubeMatch>| m.as_ref().is_some_and(|m| m.matches(r));
        if let Some(d) = self
            .deny
            .iter()
            .find(|d| applies(&d.targets, target) && hit(&d.kube))
        {
            return Verdict::Deny(d);
        }
        match self
            .review
            .iter()
            .find(|v| applies(&v.targets, target) && hit(&v.kube))
        {
            Some(v) => Verdict::Review(v),
            None => Verdict::Allow,
        }
    }

    /// Whether any deny or review line rule applies on `target`.
    pub fn guards(&self, target: &str) -> bool {
        self.deny
            .iter()
            .any(|r| r.pattern.is_some() && applies(&r.targets, target))
            || self
                .review
                .iter()
                .any(|r| r.pattern.is_some() && applies(&r.targets, target))
    }

    /// Whether any deny or review statement rule applies on `target`.
    pub fn sql_rules(&self, target: &str) -> bool {
        self.deny
            .iter()
            .any(|r| r.sql.is_some() && applies(&r.targets, target))
            || self
                .review
                .iter()
                .any(|r| r.sql.is_some() && applies(&r.targets, target))
    }

    /// [`Policy::check`] on a command line (argv joined by spaces).
    pub fn check_argv(&self, target: &str, argv: &[String]) -> Verdict<'_> {
        self.check(target, argv.join(" ").as_bytes())
    }

    /// The first deny rule that matches the command line (argv joined by spaces).
    pub fn denies_argv(&self, target: &str, argv: &[String]) -> Option<&DenyRule> {
        self.denies(target, argv.join(" ").as_bytes())
    }

    /// The masker for sessions on `target`: compiled once, then shared.
    pub fn masker(&self, target: &str) -> Masker {
        let mut cache = self
            .maskers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        cache
            .entry(target.to_string())
            .or_insert_with(|| {
                let m = Masker::new(
                    self.mask
                        .iter()
                        .filter(|r| applies(&r.targets, target))
                        .cloned()
                        .collect(),
                );
                match self.targets.iter().find(|t| t.name == target) {
                    Some(t) if !t.secret_env.is_empty() || !t.access.secret_values().is_empty() => {
                        m.with_secrets(
                            t.secret_env
                                .values()
                                .map(|s| s.expose())
                                .chain(t.access.secret_values()),
                        )
                    }
                    _ => m,
                }
            })
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"
[[targets]]
name = "pg"
kind = "postgres"
command = ["psql"]

[[targets]]
name = "shell"
kind = "command"

[[rules.mask]]
name = "email"
pattern = '[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}'

[[rules.deny]]
name = "no-drop-table"
pattern = '(?i)\bdrop\s+table\b'
"#;

    #[test]
    fn resolves_targets_by_name_and_by_program() {
        let p = Policy::from_toml(EXAMPLE, "t.toml").unwrap();
        assert_eq!(p.resolve_target(None, "/usr/bin/psql").unwrap().name, "pg");
        assert_eq!(p.resolve_target(None, "ls").unwrap().name, "shell");
        assert_eq!(
            p.resolve_target(Some("shell"), "psql").unwrap().name,
            "shell"
        );
        assert_eq!(
            p.resolve_target(Some("pg"), "bash").unwrap_err(),
            TargetError::ProgramNotAllowed {
                target: "pg".into(),
                program: "bash".into()
            }
        );
        assert_eq!(
            p.resolve_target(Some("nope"), "psql").unwrap_err(),
            TargetError::Unknown("nope".into())
        );
    }

    #[test]
    fn deny_rules_match_argv_and_lines() {
        let p = Policy::from_toml(EXAMPLE, "t.toml").unwrap();
        let argv = vec!["psql".to_string(), "-c".into(), "DROP  TABLE users".into()];
        assert_eq!(p.denies_argv("pg", &argv).unwrap().name, "no-drop-table");
        assert!(p.denies("pg", b"select * from droptables;").is_none());
        assert!(p.denies("pg", b"drop table t;\n").is_some());
    }

    #[test]
    fn embedded_default_runs_anything_and_masks() {
        let p = Policy::embedded_default();
        assert_eq!(p.resolve_target(None, "true").unwrap().name, "local");
        let (out, n) = p.masker("local").mask(b"mail bob@example.com now");
        assert_eq!(&out[..], b"mail [REDACTED:email] now");
        assert_eq!(n, 1);
    }
}
