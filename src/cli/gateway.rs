//! `hoopx gateway serve`: run the gateway for a team.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Subcommand};

use super::{code, Failure, OutputFormat};
use crate::auth::oidc::OidcAuthenticator;
use crate::auth::{generate_token, Authenticator, Chain, DevToken, Secret};
use crate::gateway::{self, store, Gateway};
use crate::policy::{ConfigError, Policy};

#[derive(Debug, Subcommand)]
pub enum GatewayCommand {
    /// Serve the HTTP API and session streams.
    Serve(ServeArgs),
    /// Check a gateway config file as `serve` would with the same flags, and exit (0 if it
    /// would start, 78 if not). Every error found is reported, and settings that would be
    /// ignored are warned about.
    Check {
        /// The TOML config file.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// Check for `serve --dev`: a config without an [auth] table is then fine.
        #[arg(long)]
        dev: bool,
        /// `json`: one object (`ok`, counts, targets; or `error` with file, line, column).
        #[arg(short = 'o', long, value_enum, default_value_t = OutputFormat::Text)]
        output: OutputFormat,
    },
    /// Remove sessions that ended longer ago than a period from the store: their events
    /// and checkpoints go, the ledger keeps their entries and enters each prune. Export them
    /// first (`hoopx sessions export`) to keep the evidence.
    Prune(PruneArgs),
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Prune sessions that ended longer ago than this, e.g. 90d (default: the config's
    /// [store] retention).
    #[arg(long, value_name = "DUR", value_parser = super::parse_duration)]
    pub older_than: Option<std::time::Duration>,
    /// The gateway's TOML config, for its [store] retention.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Store URL, as for `gateway serve` (default: gateway.db in the XDG data dir).
    #[arg(long, value_name = "URL")]
    pub store: Option<String>,
    /// The gateway's signing key, which signs the ledger's prune entries (default:
    /// gateway-signing.pem in the XDG data dir). It must exist.
    #[arg(long, value_name = "FILE")]
    pub signing_key: Option<PathBuf>,
    /// List what would be pruned; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// `json`: one object (`pruned`: the sessions, `dry_run`, `older_than_ms`).
    #[arg(short = 'o', long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The TOML config (targets and rules); without one, the default policy.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8433", value_name = "ADDR")]
    pub listen: String,
    /// Store URL: sqlite://PATH (default: gateway.db in the XDG data dir) or postgres://…
    #[arg(long, value_name = "URL")]
    pub store: Option<String>,
    /// The Ed25519 key that signs recordings (PKCS#8 PEM, mode 0600), created if missing.
    /// Default: gateway-signing.pem in the XDG data dir. Give replicas the same key.
    #[arg(long, value_name = "FILE")]
    pub signing_key: Option<PathBuf>,
    /// Development mode: accept one bearer token, HOOPX_DEV_TOKEN or a generated one (beside
    /// the OpenID tokens of an [auth] table, if the config has one).
    #[arg(long)]
    pub dev: bool,
    /// On SIGTERM or Ctrl-C, how long running sessions may go on (new ones are refused at
    /// once and /v1/ready answers 503); those still running then end as aborted. A second
    /// SIGTERM or Ctrl-C ends them at once.
    #[arg(long, default_value = "30s", value_name = "DUR", value_parser = super::parse_duration)]
    pub drain_grace: std::time::Duration,
    /// How long this replica's lease in the store lasts unless renewed (tests shorten it).
    #[arg(long, hide = true, default_value = "15s", value_parser = super::parse_duration)]
    pub lease: std::time::Duration,
    /// The log on stderr: `text` (one line per event) or `json` (one object per line). The
    /// filter comes from HOOPX_LOG, else RUST_LOG, else `info`.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, value_name = "FORMAT")]
    pub log_format: LogFormat,
    /// Also serve Prometheus metrics (`/metrics`) on this address, e.g. 127.0.0.1:9433
    /// (they are always at /metrics on --listen too).
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<String>,
    /// Serve HTTPS with this certificate chain (PEM); reloaded on SIGHUP and when the file
    /// changes.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

/// How `hoopx gateway serve` writes its log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Installs the served gateway's log: `tracing` events on stderr, filtered by HOOPX_LOG,
/// else RUST_LOG, else `info`. Only `gateway serve` calls it: the embedded gateway inside
/// `hoopx exec` has no subscriber, so it stays quiet.
fn init_logging(format: LogFormat) -> Result<(), Failure> {
    use tracing_subscriber::EnvFilter;
    let (var, spec) = [crate::env_vars::HOOPX_LOG, crate::env_vars::RUST_LOG]
        .into_iter()
        .find_map(|v| {
            std::env::var(v)
                .ok()
                .filter(|s| !s.trim().is_empty())
                .map(|s| (v, s))
        })
        .unwrap_or(("", "info".to_string()));
    let filter = EnvFilter::builder().parse(&spec).map_err(|e| {
        Failure::new(code::CONFIG, format!("bad log filter {var}={spec:?}: {e}"))
            .hint("a filter is a level (error, warn, info, debug, trace) or target=level pairs, e.g. HOOPX_LOG=info,hoopx::access=debug")
    })?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let set = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init(),
    };
    // Set already (a second serve in one process): keep the first.
    let _ = set;
    Ok(())
}

/// `n thing` or `n things`.
fn count(n: usize, thing: &str) -> String {
    if n == 1 {
        format!("1 {thing}")
    } else {
        format!("{n} {thing}s")
    }
}

/// What `serve` checks in a config before it starts, given `--dev` or not: the policy and
/// warnings about settings it would ignore, or every error found.
fn checked_policy(
    path: &std::path::Path,
    dev: bool,
) -> Result<(Policy, Vec<String>), Result<Vec<ConfigError>, Failure>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Err(Failure::new(
            code::CONFIG,
            format!("cannot read config {}: {e}", path.display()),
        ))
    })?;
    let file = path.display().to_string();
    let policy = Policy::from_toml_all(&text, &file).map_err(Ok)?;
    if !dev && policy.auth.is_none() {
        return Err(Err(no_auth()));
    }
    let mut warnings = Vec::new();
    if !dev && !policy.dev_identities.is_empty() {
        let n = policy.dev_identities.len();
        warnings.push(format!(
            "{file}: [[dev.identities]] ({}) are ignored without --dev: dev identities exist only on a dev gateway",
            if n == 1 { "1 entry".to_string() } else { format!("{n} entries") }
        ));
    }
    Ok((policy, warnings))
}

fn no_auth() -> Failure {
    Failure::new(
        code::CONFIG,
        "no authentication is configured, so the gateway would accept no one",
    )
    .hint("add an [auth] table with your OpenID provider to the config (see docs/IDENTITY.md), or pass --dev for a development token")
}

/// Every config error as one failure: each on a line of its own.
fn config_failure(errors: &[ConfigError]) -> Failure {
    let list: Vec<String> = errors.iter().map(ToString::to_string).collect();
    let message = match list.as_slice() {
        [one] => format!("bad config: {one}"),
        _ => format!(
            "bad config ({}):\n{}",
            count(list.len(), "error"),
            list.join("\n")
        ),
    };
    Failure::new(code::CONFIG, message)
}

fn load_policy(path: &std::path::Path, dev: bool) -> Result<Policy, Failure> {
    match checked_policy(path, dev) {
        Ok((p, warnings)) => {
            for w in warnings {
                tracing::warn!("{w}");
            }
            Ok(p)
        }
        Err(Ok(errors)) => Err(config_failure(&errors)),
        Err(Err(f)) => Err(f),
    }
}

pub fn run(cmd: GatewayCommand) -> Result<ExitCode, Failure> {
    match cmd {
        GatewayCommand::Check {
            config,
            dev,
            output: OutputFormat::Json,
        } => check_json(&config, dev),
        GatewayCommand::Check { config, dev, .. } => {
            let p = match checked_policy(&config, dev) {
                Ok((p, warnings)) => {
                    for w in warnings {
                        eprintln!("hoopx: warning: {w}");
                    }
                    p
                }
                Err(Ok(errors)) => return Err(config_failure(&errors)),
                Err(Err(f)) => return Err(f),
            };
            println!(
                "{}: OK ({}, {}, {}, {}; {} of these on SQL statements)",
                config.display(),
                count(p.targets.len(), "target"),
                count(p.mask.len(), "mask rule"),
                count(p.deny.len(), "deny rule"),
                count(p.review.len(), "review rule"),
                statement_rules(&p)
            );
            // What each target runs and denies, built-in rules included: nothing hidden.
            for t in &p.targets {
                let deny: Vec<&str> = p
                    .deny
                    .iter()
                    .filter(|r| r.targets.is_empty() || r.targets.contains(&t.name))
                    .map(|r| r.name.as_str())
                    .collect();
                println!(
                    "  target {} ({}): runs {}; deny rules: {}",
                    t.name,
                    format!("{:?}", t.kind).to_lowercase(),
                    if t.command.is_empty() {
                        "any program".to_string()
                    } else {
                        t.command.join(", ")
                    },
                    if deny.is_empty() {
                        "none".to_string()
                    } else {
                        deny.join(", ")
                    }
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        GatewayCommand::Serve(args) => serve(args),
        GatewayCommand::Prune(args) => prune(args),
    }
}

/// How many deny and review rules judge parsed SQL statements rather than lines.
fn statement_rules(p: &Policy) -> usize {
    p.deny.iter().filter(|r| r.sql.is_some()).count()
        + p.review.iter().filter(|r| r.sql.is_some()).count()
}

/// The rules that apply on a target, by name.
fn deny_rules<'a>(p: &'a Policy, target: &str) -> Vec<&'a str> {
    p.deny
        .iter()
        .filter(|r| r.targets.is_empty() || r.targets.iter().any(|t| t == target))
        .map(|r| r.name.as_str())
        .collect()
}

fn check_json(config: &std::path::Path, dev: bool) -> Result<ExitCode, Failure> {
    let error_json = |e: &ConfigError| serde_json::json!({"file": e.file, "line": e.line, "column": e.column, "reason": e.reason});
    let answer = match checked_policy(config, dev) {
        Ok((p, warnings)) => serde_json::json!({
            "ok": true,
            "config": config.display().to_string(),
            "mask_rules": p.mask.len(),
            "deny_rules": p.deny.len(),
            "review_rules": p.review.len(),
            "statement_rules": statement_rules(&p),
            "targets": p.targets.iter().map(|t| serde_json::json!({
                "name": t.name,
                "kind": format!("{:?}", t.kind).to_lowercase(),
                "programs": t.command,
                "deny_rules": deny_rules(&p, &t.name),
            })).collect::<Vec<_>>(),
            "warnings": warnings,
        }),
        Err(Ok(errors)) => {
            super::print_line(
                &serde_json::json!({
                    "ok": false,
                    "config": config.display().to_string(),
                    "error": error_json(&errors[0]),
                    "errors": errors.iter().map(error_json).collect::<Vec<_>>(),
                })
                .to_string(),
            )?;
            return Err(config_failure(&errors));
        }
        Err(Err(f)) => {
            super::print_line(
                &serde_json::json!({
                    "ok": false,
                    "config": config.display().to_string(),
                    "error": {"file": config.display().to_string(), "line": null, "column": null, "reason": f.message},
                    "errors": [],
                })
                .to_string(),
            )?;
            return Err(f);
        }
    };
    super::print_line(&answer.to_string())?;
    Ok(ExitCode::SUCCESS)
}

fn serve(args: ServeArgs) -> Result<ExitCode, Failure> {
    init_logging(args.log_format)?;
    let policy = match &args.config {
        Some(p) => load_policy(p, args.dev)?,
        None => {
            tracing::warn!(
                "no --config: default policy (target \"local\" runs any command, \
                 built-in masking, nothing denied)"
            );
            Policy::embedded_default()
        }
    };
    if !args.dev && policy.auth.is_none() {
        return Err(no_auth());
    }
    // Dev tokens exist only in dev mode.
    // A generated dev token is printed only once the store and the port work.
    let (dev_token, generated) = if args.dev {
        match std::env::var(crate::env_vars::HOOPX_DEV_TOKEN) {
            Ok(t) if !t.trim().is_empty() => (Some(Secret::new(t.trim())), false),
            _ => (Some(generate_token()), true),
        }
    } else {
        (None, false)
    };
    let (store_url, key_path) = store_and_key(args.store, args.signing_key)?;
    let signer = gateway::signing::load_or_create(&key_path)
        .map_err(|e| Failure::new(code::CONFIG, e.to_string()))?;
    let rt = super::runtime()?;
    let result = rt.block_on(async move {
        let store = store::open(&store_url).await.map_err(|e| match e {
            store::StoreError::BadUrl(_) => Failure::new(code::CONFIG, e.to_string()),
            _ => Failure::new(
                code::UNAVAILABLE,
                format!("{e} ({})", store::redact_url(&store_url)),
            ),
        })?;
        let backend = store.backend();
        let key_id = crate::recording::chain::key_id(&signer.verifying_key());
        let listener = tokio::net::TcpListener::bind(&args.listen)
            .await
            .map_err(|e| {
                // An address that does not parse is a usage error; a taken port is not.
                let code = if e.kind() == std::io::ErrorKind::InvalidInput {
                    code::USAGE
                } else {
                    code::UNAVAILABLE
                };
                let hint = if e.kind() == std::io::ErrorKind::AddrInUse {
                    "another process listens there (another gateway?): stop it, or pick another port, e.g. --listen 127.0.0.1:8434"
                } else {
                    "--listen takes HOST:PORT, e.g. 127.0.0.1:8433, or 127.0.0.1:0 for any free port"
                };
                Failure::new(code, format!("cannot listen on {}: {e}", args.listen)).hint(hint)
            })?;
        let addr = listener
            .local_addr()
            .map_err(|e| Failure::new(code::UNAVAILABLE, e.to_string()))?;
        let tls = match (&args.tls_cert, &args.tls_key) {
            (Some(cert), Some(key)) => Some(gateway::listener::Tls::load(cert, key).map_err(|e| {
                Failure::new(code::CONFIG, e)
                    .hint("--tls-cert takes a PEM certificate chain (leaf first), --tls-key its PEM private key")
            })?),
            _ => None,
        };
        if !addr.ip().is_loopback() && tls.is_none() {
            tracing::warn!(
                "{addr} serves plain http and bearer tokens travel in the clear; \
                 pass --tls-cert and --tls-key, put TLS in front of it, or keep it on loopback"
            );
        }
        if let (true, Some(t)) = (generated, &dev_token) {
            eprintln!("hoopx gateway: dev token: {}", t.expose());
            eprintln!("hoopx gateway: clients: export HOOPX_TOKEN=<the dev token above>");
        }
        let mut auths: Vec<Arc<dyn Authenticator>> = Vec::new();
        let mut modes = Vec::new();
        if let Some(t) = dev_token {
            let mut dev = DevToken::new(t);
            for d in &policy.dev_identities {
                dev = dev.with_identity(
                    d.token.clone(),
                    crate::auth::Identity {
                        subject: d.name.clone(),
                        groups: d.groups.clone(),
                    },
                );
            }
            auths.push(Arc::new(dev));
            modes.push("dev mode".to_string());
        }
        if let Some(a) = &policy.auth {
            modes.push(format!("OpenID issuer {}", a.issuer));
            auths.push(OidcAuthenticator::new(a.clone(), &signer));
        }
        let auth: Arc<dyn Authenticator> = match auths.len() {
            1 => auths.remove(0),
            _ => Arc::new(Chain(auths)),
        };
        let gw = Gateway::new(policy, auth, store, signer, true);
        gw.set_drain_grace(args.drain_grace);
        gw.set_lease(args.lease);
        if args.dev {
            gw.dev_token_reads_all();
        }
        let scheme = match tls {
            Some(tls) => {
                tls.watch();
                gw.use_tls(tls);
                "https"
            }
            None => "http",
        };
        if let Some(at) = &args.metrics_listen {
            let l = tokio::net::TcpListener::bind(at).await.map_err(|e| {
                Failure::new(code::UNAVAILABLE, format!("cannot listen on {at} for metrics: {e}"))
                    .hint("--metrics-listen takes HOST:PORT, e.g. 127.0.0.1:9433")
            })?;
            let shown = l.local_addr().map_or_else(|_| at.clone(), |a| a.to_string());
            tracing::info!("metrics on http://{shown}/metrics");
            tokio::spawn(gateway::serve_metrics(gw.clone(), l, shutdown_signal()));
        }
        tracing::info!(
            "listening on {scheme}://{addr} (protocol {}, store {backend}, signing key {key_id}, {})",
            crate::proto::PROTOCOL_VERSION,
            modes.join(", ")
        );
        // The first SIGTERM or Ctrl-C drains; a second one ends the drain at once.
        let second = gw.clone();
        let shutdown = async move {
            shutdown_signal().await;
            tokio::spawn(async move {
                shutdown_signal().await;
                second.cut_drain_short();
            });
        };
        gateway::serve(gw, listener, shutdown)
            .await
            .map_err(|e| Failure::new(code::UNAVAILABLE, format!("gateway stopped: {e}")))?;
        tracing::info!("stopped");
        Ok(ExitCode::SUCCESS)
    });
    rt.shutdown_background();
    result
}

/// The store URL and signing key path, `--store`/`--signing-key` or their defaults in the
/// XDG data dir (what `serve` and `prune` both open).
fn store_and_key(
    store: Option<String>,
    signing_key: Option<PathBuf>,
) -> Result<(String, PathBuf), Failure> {
    let data_dir = || {
        crate::dirs::data_dir().ok_or_else(|| {
            Failure::new(
                code::CONFIG,
                "no data directory for the store and signing key",
            )
            .hint("set HOME or XDG_DATA_HOME, or pass --store and --signing-key")
        })
    };
    let store_url = match store {
        Some(s) => s,
        None => format!("sqlite://{}", data_dir()?.join("gateway.db").display()),
    };
    let key_path = match signing_key {
        Some(p) => p,
        None => data_dir()?.join("gateway-signing.pem"),
    };
    Ok((store_url, key_path))
}

fn prune(args: PruneArgs) -> Result<ExitCode, Failure> {
    let retention = match &args.config {
        Some(p) => load_policy(p, true)?.retention, // prune reads only the retention: no [auth] needed
        None => None,
    };
    let Some(period) = args.older_than.or(retention) else {
        return Err(
            Failure::new(code::USAGE, "how old must a session be to be pruned?").hint(
                "pass --older-than, e.g. --older-than 90d, or --config with a [store] retention",
            ),
        );
    };
    let (store_url, key_path) = store_and_key(args.store, args.signing_key)?;
    if !key_path.exists() {
        return Err(Failure::new(
            code::CONFIG,
            format!("no signing key at {}", key_path.display()),
        )
        .hint("pass --signing-key with the key the gateway signs with: the ledger's prune entries are signed like the rest of it"));
    }
    let signer = gateway::signing::load_or_create(&key_path)
        .map_err(|e| Failure::new(code::CONFIG, e.to_string()))?;
    let cutoff = gateway::now_ms() - period.as_millis() as i64;
    let json = args.output == OutputFormat::Json;
    let dry = args.dry_run;
    let rt = super::runtime()?;
    let result = rt.block_on(async {
        let store = store::open_local(&store_url).await.map_err(|e| match e {
            store::StoreError::BadUrl(_) => Failure::new(code::CONFIG, e.to_string()),
            _ => Failure::new(
                code::UNAVAILABLE,
                format!("{e} ({})", store::redact_url(&store_url)),
            ),
        })?;
        store::prune_ended(&*store, &signer, cutoff, dry, |s| {
            if !json {
                println!(
                    "{} session {}: {} on {}, {}, ended {} UTC, {} events",
                    if dry { "would prune" } else { "pruned" },
                    s.id,
                    s.identity,
                    s.target,
                    s.status,
                    s.ended_at.map(super::sessions::time).unwrap_or_default(),
                    s.event_count
                );
            }
        })
        .await
        .map_err(|e| Failure::new(code::UNAVAILABLE, e.to_string()))
    });
    rt.shutdown_background();
    let pruned = result?;
    if json {
        super::print_line(
            &serde_json::json!({
                "dry_run": dry,
                "older_than_ms": period.as_millis() as i64,
                "ended_before": cutoff,
                "pruned": pruned,
            })
            .to_string(),
        )?;
    } else {
        println!(
            "{} {} session(s) that ended before {} UTC{}",
            if dry { "would prune" } else { "pruned" },
            pruned.len(),
            super::sessions::time(cutoff),
            if dry {
                ""
            } else {
                "; the ledger keeps their entries and a prune entry for each"
            }
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
}
