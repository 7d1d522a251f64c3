//! `hoopx sessions`: the sessions of whichever gateway is in use.

use std::process::ExitCode;

use clap::Subcommand;

use super::{
    parse_duration, printable, shell_join, source, verify, Failure, GatewayArgs, OutputFormat,
};
use crate::proto::SessionInfo;
use crate::recording::evidence;

#[derive(Debug, Subcommand)]
pub enum SessionsCommand {
    /// List sessions, newest first.
    List {
        #[command(flatten)]
        gateway: GatewayArgs,
        /// Only sessions of this identity.
        #[arg(long, value_name = "USER")]
        user: Option<String>,
        /// Only sessions on this target.
        #[arg(long, value_name = "TARGET")]
        target: Option<String>,
        /// Only sessions started within this long, e.g. 90m, 24h, 7d.
        #[arg(long, value_name = "DUR", value_parser = parse_duration)]
        since: Option<std::time::Duration>,
        /// Only sessions in this state: open, running, exited, aborted or denied.
        #[arg(long, value_name = "S", value_parser = ["open", "running", "exited", "aborted", "denied"])]
        status: Option<String>,
        /// How many sessions to show at most.
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=1000))]
        limit: u32,
        /// `text` for people, `json` for scripts and agents (shapes: docs/JSON.md).
        #[arg(short = 'o', long, value_enum, default_value_t = OutputFormat::Text)]
        output: OutputFormat,
    },
    /// Show one session, with the verification of its recording.
    Show {
        #[command(flatten)]
        gateway: GatewayArgs,
        /// Session id (as listed by `hoopx sessions list`), or `last`.
        id: String,
        /// `text` for people, `json` for scripts and agents (shapes: docs/JSON.md).
        #[arg(short = 'o', long, value_enum, default_value_t = OutputFormat::Text)]
        output: OutputFormat,
    },
    /// Write sessions, their reviews, the ledger covering them and the gateway's keys to a
    /// directory for an audit; `hoopx verify DIR --key PUBKEY` checks it offline.
    Export {
        #[command(flatten)]
        gateway: GatewayArgs,
        /// A new (or empty) directory to write the evidence into.
        #[arg(value_name = "DIR")]
        out: std::path::PathBuf,
        /// Only sessions started within this long, e.g. 24h, 30d.
        #[arg(long, value_name = "DUR", value_parser = parse_duration)]
        since: Option<std::time::Duration>,
        /// Only sessions of this identity.
        #[arg(long, value_name = "USER")]
        user: Option<String>,
        /// Only sessions on this target.
        #[arg(long, value_name = "TARGET")]
        target: Option<String>,
        /// `text` for people, `json` for scripts and agents (shapes: docs/JSON.md).
        #[arg(short = 'o', long, value_enum, default_value_t = OutputFormat::Text)]
        output: OutputFormat,
    },
}

pub fn run(cmd: SessionsCommand) -> Result<ExitCode, Failure> {
    let rt = super::runtime()?;
    let result = rt.block_on(async move {
        match cmd {
            SessionsCommand::List {
                gateway,
                user,
                target,
                since,
                status,
                limit,
                output,
            } => {
                let (client, _embedded) = source::connect(&gateway).await?;
                let mut query = vec![("limit", limit.to_string())];
                query.extend(user.map(|u| ("user", u)));
                query.extend(target.map(|t| ("target", t)));
                query.extend(status.map(|s| ("status", s)));
                if let Some(d) = since {
                    let since = chrono::Utc::now().timestamp_millis() - d.as_millis() as i64;
                    query.push(("since", since.to_string()));
                }
                let sessions = client.list_sessions(&query).await?;
                super::print_line(&match output {
                    OutputFormat::Json => {
                        serde_json::to_string_pretty(&sessions).unwrap_or_default()
                    }
                    OutputFormat::Text => table(&sessions),
                })?;
                Ok(ExitCode::SUCCESS)
            }
            SessionsCommand::Show {
                gateway,
                id,
                output,
            } => {
                let (client, _embedded) = source::connect(&gateway).await?;
                let id = source::resolve_id(&client, &id).await?;
                let loaded = source::fetch(&client, &id).await?;
                let outcome = verify::check_session(&client, &loaded, None).await?;
                let shown = signed_view(&loaded.recording.session, &outcome);
                let s = &shown;
                let statements = statement_counts(&loaded.recording);
                let provenance = evidence::provenance_counts(&loaded.recording);
                super::print_line(&match output {
                    OutputFormat::Json => {
                        let mut v = serde_json::to_value(s).unwrap_or_default();
                        if let Some(o) = v.as_object_mut() {
                            o.insert("duration_ms".into(), duration_ms(s).into());
                            o.insert(
                                "statements".into(),
                                serde_json::json!({
                                    "total": statements.values().sum::<u64>(),
                                    "by_status": statements,
                                }),
                            );
                            o.insert("provenance".into(), serde_json::json!(provenance));
                            o.insert("verification".into(), verify::to_json(&outcome));
                        }
                        serde_json::to_string_pretty(&v).unwrap_or_default()
                    }
                    OutputFormat::Text => details(s, &outcome, &statements, &provenance),
                })?;
                Ok(ExitCode::SUCCESS)
            }
            SessionsCommand::Export {
                gateway,
                out,
                since,
                user,
                target,
                output,
            } => {
                let filter = super::export::Filter {
                    since_ms: since
                        .map(|d| chrono::Utc::now().timestamp_millis() - d.as_millis() as i64),
                    user,
                    target,
                };
                let done = super::export::export(&gateway, filter, &out).await?;
                super::print_line(&match output {
                    OutputFormat::Json => serde_json::json!({
                        "dir": done.dir,
                        "sessions": done.sessions,
                        "ledger_entries": done.entries,
                        "reviews": done.reviews,
                        "failed_verification": done.failed,
                    })
                    .to_string(),
                    OutputFormat::Text => format!(
                        "exported {} session(s), {} review(s) and {} ledger entries to {}{}\ncheck it with: hoopx verify {} --key GATEWAY_PUBLIC_KEY",
                        done.sessions,
                        done.reviews,
                        done.entries,
                        done.dir.display(),
                        if done.failed > 0 {
                            format!(" ({} failed verification: see SUMMARY.md)", done.failed)
                        } else {
                            String::new()
                        },
                        done.dir.display()
                    ),
                })?;
                Ok(if done.failed > 0 {
                    ExitCode::from(1)
                } else {
                    ExitCode::SUCCESS
                })
            }
        }
    });
    rt.shutdown_background();
    result
}

fn duration_ms(s: &SessionInfo) -> Option<i64> {
    s.ended_at.map(|e| (e - s.started_at).max(0))
}

pub(crate) fn time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_default()
}

fn human_duration(ms: Option<i64>) -> String {
    let Some(ms) = ms else { return "-".into() };
    if ms < 1_000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.1}s", ms as f64 / 1000.0)
    } else if ms < 3_600_000 {
        format!("{}m{:02}s", ms / 60_000, ms % 60_000 / 1000)
    } else {
        format!("{}h{:02}m", ms / 3_600_000, ms % 3_600_000 / 60_000)
    }
}

fn human_bytes(n: i64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

fn masks(s: &SessionInfo) -> String {
    let total: u64 = s.masks.values().sum();
    if total == 0 {
        return "0".into();
    }
    let parts: Vec<String> = s.masks.iter().map(|(r, n)| format!("{r} {n}")).collect();
    format!("{total} ({})", parts.join(", "))
}

fn table(sessions: &[SessionInfo]) -> String {
    use std::fmt::Write;
    let mut out = format!(
        "{:<36}  {:<19}  {:>8}  {:<16}  {:<10}  {:<8}  {:>4}  {:>6}  COMMAND",
        "ID", "STARTED (UTC)", "DURATION", "IDENTITY", "TARGET", "STATUS", "EXIT", "MASKED"
    );
    for s in sessions {
        let exit = s
            .exit_code
            .map(|c| c.to_string())
            .unwrap_or_else(|| "-".into());
        let mut command = printable(&shell_join(&s.argv));
        if command.chars().count() > 60 {
            command = command.chars().take(59).collect::<String>() + "…";
        }
        let _ = write!(
            out,
            "\n{:<36}  {:<19}  {:>8}  {:<16}  {:<10}  {:<8}  {:>4}  {:>6}  {}",
            printable(&s.id),
            time(s.started_at),
            human_duration(duration_ms(s)),
            printable(&s.identity),
            printable(&s.target),
            printable(&s.status),
            exit,
            s.masks.values().sum::<u64>(),
            command
        );
    }
    out
}

/// The statements a postgres session's recording logs, by status (ok, error, denied, …).
fn statement_counts(rec: &crate::recording::Recording) -> std::collections::BTreeMap<String, u64> {
    let mut out = std::collections::BTreeMap::new();
    for (_, s) in crate::recording::statements::statements(rec) {
        let status = s
            .get("status")
            .and_then(|v| v.as_str())
            .unwrap_or("unknown")
            .to_string();
        *out.entry(status).or_default() += 1;
    }
    out
}

/// The session as shown: its end, totals and reviews as the recording signs them when it
/// closed with them; the store's copy otherwise (a session still running, or one recorded
/// before facts were signed), which `details` says.
fn signed_view(stored: &SessionInfo, outcome: &verify::Outcome) -> SessionInfo {
    let mut s = stored.clone();
    if let Some(f) = &outcome.facts {
        s.status = f.status.clone();
        s.exit_code = f.exit_code;
        s.reason = f.reason.clone();
        s.ended_at = Some(f.ended_at);
        s.bytes_in = f.bytes_in;
        s.bytes_out = f.bytes_out;
        s.masks = f.masks.clone();
        s.denials = f.denials;
        s.approvals = f.approvals.clone();
    }
    s
}

fn details(
    s: &SessionInfo,
    outcome: &verify::Outcome,
    statements: &std::collections::BTreeMap<String, u64>,
    provenance: &std::collections::BTreeMap<&'static str, u64>,
) -> String {
    let signed = outcome.facts.is_some();
    let mut out = Vec::new();
    let mut row = |k: &str, v: &str| out.push(format!("{k:<10}  {}", printable(v)));
    row("session", &s.id);
    row("identity", &s.identity);
    row("target", &s.target);
    row("command", &shell_join(&s.argv));
    row("mode", s.mode.as_str());
    row("status", &s.status);
    row(
        "exit code",
        &s.exit_code.map_or_else(|| "-".into(), |c| c.to_string()),
    );
    row("started", &format!("{} UTC", time(s.started_at)));
    row(
        "ended",
        &s.ended_at
            .map_or_else(|| "-".into(), |e| format!("{} UTC", time(e))),
    );
    row("duration", &human_duration(duration_ms(s)));
    row(
        "bytes",
        &format!(
            "in {}, out {}",
            human_bytes(s.bytes_in),
            human_bytes(s.bytes_out)
        ),
    );
    row("masked", &masks(s));
    row("denials", &s.denials.to_string());
    if !statements.is_empty() {
        let parts: Vec<String> = statements.iter().map(|(k, n)| format!("{k} {n}")).collect();
        row(
            "statements",
            &format!(
                "{} ({}; `hoopx replay {} --format sql` lists them)",
                statements.values().sum::<u64>(),
                parts.join(", "),
                s.id
            ),
        );
    }
    for a in &s.approvals {
        let decisions: Vec<String> = a
            .decisions
            .iter()
            .map(|d| {
                format!(
                    "{} {} at {} UTC{}",
                    printable(&d.reviewer),
                    d.decision,
                    time(d.at),
                    d.reason
                        .as_deref()
                        .map(|r| format!(" ({})", printable(r)))
                        .unwrap_or_default()
                )
            })
            .collect();
        row(
            "review",
            &format!(
                "{} {} `{}` (rule {}): {}",
                a.review_id,
                a.status,
                printable(&a.command),
                printable(&a.rule),
                if decisions.is_empty() {
                    "no decision".to_string()
                } else {
                    decisions.join("; ")
                }
            ),
        );
    }
    row("events", &s.event_count.to_string());
    let by: Vec<String> = provenance.iter().map(|(k, n)| format!("{k} {n}")).collect();
    row(
        "provenance",
        &format!(
            "{} (observed: seen by the gateway on its own connection to the target; gateway: its own decisions; client: reported by the caller's hoopx)",
            by.join(", ")
        ),
    );
    if let Some(r) = &s.reason {
        row("reason", r);
    }
    row(
        "facts",
        if signed {
            "status, exit code, end, totals and reviews above are the signed close's"
        } else {
            "not signed yet: the fields above are the store's (the session has not closed, or closed without signed facts)"
        },
    );
    let summary = verify::summary(outcome);
    let mut lines = summary.lines();
    row("verified", lines.next().unwrap_or_default());
    for l in lines {
        row("", l);
    }
    out.join("\n")
}
