//! `hoopx exec`: run a command with every byte of its input and output through the gateway.

use std::os::fd::AsFd;
use std::process::ExitCode;

use clap::Args;

use super::{code, parse_duration, settings, Failure, GatewayArgs, OutputFormat};
use crate::auth::login;
use crate::client::session::{self, say, RunOptions, SessionError};
use crate::client::session_dir;
use crate::client::{GatewayClient, Opened};
use crate::gateway::embedded;
use crate::policy::review as status;
use crate::proto::{Mode, OpenSession, ReviewInfo, SessionOpened};
use crate::pty;

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  hoopx exec -- psql -c 'select 1'\n  hoopx exec --target pg -- psql\n  HOOPX_GATEWAY=https://gw.example.com hoopx exec -- kubectl get pods\n  hoopx exec --no-wait --output json -- psql -c 'delete from t'   # exit 75 + review_id\n  hoopx exec --review 3f1c… -- psql -c 'delete from t'            # run it once approved\n\nA command that a review rule matches waits for a reviewer (`hoopx review approve`): with a \
spinner on a terminal, one line on stderr otherwise. Exit 75: still pending, or --approval-timeout \
passed; 77: rejected, expired, revoked, already used, or the review is for another command."
)]
pub struct ExecArgs {
    #[command(flatten)]
    pub gateway: GatewayArgs,
    /// Target to open the session on; by default the one target that runs the command.
    #[arg(long, env = crate::env_vars::HOOPX_TARGET, value_name = "NAME")]
    pub target: Option<String>,
    /// Run the command under a pseudo-terminal even when stdin/stdout are not terminals.
    #[arg(long, conflicts_with = "no_tty")]
    pub tty: bool,
    /// Run the command under pipes (stdout and stderr kept apart) even on a terminal.
    #[arg(long)]
    pub no_tty: bool,
    /// Do not wait for a review: exit 75 at once with the review id (a review of an input
    /// line stays pending; run again with the same input and --review ID once approved).
    #[arg(long)]
    pub no_wait: bool,
    /// Run under this approved review (single-use): of this very command line, or of one
    /// input line of it, which it then releases once.
    #[arg(long, value_name = "ID")]
    pub review: Option<String>,
    /// Give up waiting for a review after this long (exit 75), e.g. 10m. Default: wait
    /// until it is decided or expires.
    #[arg(long, value_name = "DUR", value_parser = parse_duration)]
    pub approval_timeout: Option<std::time::Duration>,
    /// `json`: NDJSON events on stdout (session, stdout, stderr, approval_pending,
    /// approved, denied, exit) instead of the tool's raw output; implies --no-tty.
    #[arg(short = 'o', long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    /// For tool calls: run under pipes and print one JSON object at the end (session_id,
    /// exit_code, masked stdout and stderr, truncation flags, notices) instead of the output.
    #[arg(long, conflicts_with_all = ["tty", "output"])]
    pub capture: bool,
    /// Bytes of stdout and of stderr kept by --capture; the rest is dropped and flagged.
    #[arg(long, value_name = "BYTES", default_value_t = 1 << 20, requires = "capture")]
    pub capture_limit: usize,
    /// The command and its arguments.
    #[arg(required = true, trailing_var_arg = true, value_name = "CMD")]
    pub command: Vec<String>,
}

pub fn run(args: ExecArgs) -> Result<ExitCode, Failure> {
    let resolved = settings::resolve(&args.gateway, args.target.clone())?;
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    let on_terminal = pty::is_tty(stdin.as_fd()) && pty::is_tty(stdout.as_fd());
    let json = args.output == OutputFormat::Json;
    if json && args.tty {
        return Err(Failure::new(
            code::USAGE,
            "--output json and --tty do not go together: JSON events need pipes",
        ));
    }
    // `ssh`: a terminal as OpenSSH decides it (`-t`, `-T`, a command or not), unless
    // --tty or --no-tty say otherwise.
    let ssh_pty = ssh_wants_pty(&args.command, pty::is_tty(stdin.as_fd()));
    let mode = if !json && (args.tty || (!args.no_tty && ssh_pty.unwrap_or(on_terminal))) {
        Mode::Pty
    } else {
        Mode::Pipe
    };
    let capture = args.capture.then_some(args.capture_limit);
    let mode = if capture.is_some() { Mode::Pipe } else { mode };
    let wait = Wait {
        no_wait: args.no_wait,
        review: args.review.clone(),
        timeout: args.approval_timeout,
        json,
        capture,
    };
    let rt = super::runtime()?;
    let result = rt.block_on(exec(args.command, resolved, mode, wait));
    rt.shutdown_background();
    match result {
        Err(f) if (json || capture.is_some()) && !f.message.is_empty() => {
            // The caller reads stdout: the failure is an event (or the captured object) there
            // too.
            let status = if f.code == code::PENDING {
                "approval_pending"
            } else {
                "failed"
            };
            let mut ev = if capture.is_some() {
                serde_json::json!({"status": status, "exit_code": f.code, "message": f.message})
            } else {
                serde_json::json!({"event": "error", "exit_code": f.code, "message": f.message})
            };
            if let Some(h) = &f.hint {
                ev["hint"] = h.clone().into();
            }
            if let Some(id) = &f.review_id {
                ev["review_id"] = id.clone().into();
            }
            let _ = super::print_line(&ev.to_string());
            Err(f)
        }
        other => other,
    }
}

/// How to treat a command that waits for a review.
struct Wait {
    no_wait: bool,
    review: Option<String>,
    timeout: Option<std::time::Duration>,
    json: bool,
    capture: Option<usize>,
}

fn event(ev: serde_json::Value) {
    let _ = super::print_line(&ev.to_string());
}

async fn exec(
    argv: Vec<String>,
    r: settings::Resolved,
    mode: Mode,
    wait: Wait,
) -> Result<ExitCode, Failure> {
    let program = crate::policy::program_name(&argv[0]).to_string();
    // Keep the embedded gateway alive for the whole session.
    let not_run = |f: Failure| Failure {
        message: format!("{}; {program} was not run", f.message),
        ..f
    };
    let mut renewing = None;
    let (client, _embedded) = match &r.gateway {
        Some(url) => {
            let (client, creds) = settings::remote_client(url, r.token.clone())
                .await
                .map_err(not_run)?;
            renewing = creds.and_then(|c| keep_fresh(c, client.clone()));
            (client, None)
        }
        None => {
            let e = embedded::start().await.map_err(|e| {
                Failure::new(code::UNAVAILABLE, format!("{e}; {program} was not run"))
            })?;
            (GatewayClient::new(&e.url, Some(e.token.clone()))?, Some(e))
        }
    };
    let size = if mode == Mode::Pty {
        pty::window_size(std::io::stdout().as_fd())
    } else {
        None
    };
    let mut req = OpenSession {
        target: r.target.clone(),
        argv: argv.clone(),
        mode,
        cols: size.map(|s| s.0),
        rows: size.map(|s| s.1),
        review: wait.review.clone(),
        term: (mode == Mode::Pty)
            .then(|| std::env::var("TERM").ok())
            .flatten(),
    };
    let opened = open(&client, &mut req, &wait).await.map_err(not_run)?;
    if wait.json {
        event(
            serde_json::json!({"event": "session", "session_id": opened.session_id, "target": opened.target}),
        );
    }
    // Tokens renewed before the stream attaches are already on the client: the attach
    // carries the newest, so the session needs none of them.
    if let Some(rx) = renewing.as_mut() {
        while rx.try_recv().is_ok() {}
    }
    let mut ws = session::connect(&client, &opened.stream)
        .await
        .map_err(|e| not_run(e.into()))?;
    session::wait_ready(&mut ws)
        .await
        .map_err(|e| not_run(session_failure(e, &program)))?;

    // From here on a signal ends the session through its loop, so the session's private
    // files are removed on that path too.
    let signals = match session::install_signals() {
        Ok(s) => s,
        Err(e) => {
            session::report_not_started(ws, code::CANNOT_RUN as i32).await;
            return Err(Failure::new(
                code::CANNOT_RUN,
                format!("cannot install signal handlers ({e}); {program} was not run"),
            ));
        }
    };
    if opened.remote.is_some() {
        // The gateway runs the remote terminal itself (ssh targets): nothing starts here.
        let no_stdin = crate::policy::ssh::parse(&argv, "")
            .map(|c| c.no_stdin)
            .unwrap_or(false);
        let raw = raw_mode(mode);
        let outcome = crate::client::remote::run(
            ws,
            mode == Mode::Pty,
            no_stdin,
            signals,
            &run_options(&wait),
            renewing,
        )
        .await;
        drop(raw);
        return finish(outcome, &opened, &wait, &program);
    }
    // The target's credentials and configs, for the tool only; removed when `prepared`
    // drops, however the session ends.
    let mut prepared = match session_dir::prepare(&opened, &argv) {
        Ok(p) => p,
        Err(e) => {
            session::report_not_started(ws, code::CANNOT_RUN as i32).await;
            return Err(Failure::new(
                code::CANNOT_RUN,
                format!("cannot set up the target's credentials for {program}: {e}; {program} was not run"),
            )
            .hint("check that the temp directory (XDG_RUNTIME_DIR or TMPDIR) is writable"));
        }
    };
    let spawned = match mode {
        Mode::Pty => pty::spawn_pty(&prepared.argv, &prepared.env, &prepared.env_remove, size),
        Mode::Pipe => pty::spawn_pipes(&prepared.argv, &prepared.env, &prepared.env_remove),
    };
    let tool = match spawned {
        Ok(t) => t,
        Err(e) => {
            session::report_not_started(ws, code::CANNOT_RUN as i32).await;
            let hint = (e.kind() == std::io::ErrorKind::NotFound)
                .then(|| format!("is {program} installed and on PATH?"));
            let f = Failure::new(code::CANNOT_RUN, format!("cannot run {program}: {e}"));
            return Err(match hint {
                Some(h) => f.hint(h),
                None => f,
            });
        }
    };
    let raw = raw_mode(mode);
    let outcome = session::run_renewing(
        ws,
        tool,
        mode == Mode::Pty,
        signals,
        &run_options(&wait),
        renewing,
        prepared.endpoint.take(),
    )
    .await;
    drop(raw);
    drop(prepared);
    finish(outcome, &opened, &wait, &program)
}

/// For `ssh …`: whether OpenSSH would ask for a remote terminal; `None` for other programs
/// (or a command line the gateway will refuse anyway).
fn ssh_wants_pty(argv: &[String], stdin_is_tty: bool) -> Option<bool> {
    let program = crate::policy::program_name(argv.first()?);
    if program != "ssh" {
        return None;
    }
    crate::policy::ssh::parse(argv, "")
        .ok()
        .map(|c| c.wants_pty(stdin_is_tty))
}

/// The caller's terminal in raw mode for a PTY session on a terminal; restored on drop.
fn raw_mode(mode: Mode) -> Option<pty::RawModeGuard> {
    if mode == Mode::Pty && pty::is_tty(std::io::stdin().as_fd()) {
        match pty::RawModeGuard::enable() {
            Ok(g) => Some(g),
            Err(e) => {
                say(&format!(
                    "cannot put the terminal in raw mode ({e}); keys are line-buffered"
                ));
                None
            }
        }
    } else {
        None
    }
}

fn run_options(wait: &Wait) -> RunOptions {
    RunOptions {
        json: wait.json,
        // --no-wait: an input line that needs review ends the session at once (75) instead of
        // holding the caller.
        approval_timeout: if wait.no_wait {
            Some(std::time::Duration::ZERO)
        } else {
            wait.timeout
        },
        capture: wait.capture,
    }
}

/// The session's outcome as hoopx's exit: JSON or captured events, denied lines (77), the
/// tool's code.
fn finish(
    outcome: Result<session::Outcome, SessionError>,
    opened: &SessionOpened,
    wait: &Wait,
    program: &str,
) -> Result<ExitCode, Failure> {
    if let (true, Ok(o)) = (wait.json, &outcome) {
        event(
            serde_json::json!({"event": "exit", "code": o.code, "denied_lines": o.denied, "session_id": opened.session_id}),
        );
    }
    if let (Some(limit), Ok(o)) = (wait.capture, &outcome) {
        let c = o.captured.as_ref();
        let text =
            |b: Option<&Vec<u8>>| String::from_utf8_lossy(b.map_or(&[][..], |v| v)).into_owned();
        // The exit code hoopx itself ends with: 77 when input lines were withheld.
        let exit_code = if o.denied > 0 {
            i32::from(code::DENIED)
        } else {
            o.code & 0xff
        };
        event(serde_json::json!({
            "status": "exited",
            "session_id": opened.session_id,
            "target": opened.target,
            "exit_code": exit_code,
            "tool_exit_code": o.code,
            "stdout": text(c.map(|c| &c.stdout)),
            "stderr": text(c.map(|c| &c.stderr)),
            "stdout_truncated": c.is_some_and(|c| c.stdout_truncated),
            "stderr_truncated": c.is_some_and(|c| c.stderr_truncated),
            "limit": limit,
            "denied_lines": o.denied,
            "notices": c.map_or(&[][..], |c| &c.notices[..]),
        }));
    }
    match outcome {
        Ok(o) if o.denied > 0 => {
            let message = format!(
                "{} input line(s) denied by policy were not sent to {program} (it exited with {})",
                o.denied, o.code
            );
            if wait.capture.is_some() {
                // The captured object already says so on stdout.
                say(&message);
                Err(Failure::silent(code::DENIED))
            } else {
                Err(Failure::new(code::DENIED, message))
            }
        }
        Ok(o) => Ok(ExitCode::from((o.code & 0xff) as u8)),
        Err(e) => Err(session_failure(e, program)),
    }
}

fn session_failure(e: SessionError, program: &str) -> Failure {
    match e {
        SessionError::GatewayLost(why) => Failure::new(
            code::UNAVAILABLE,
            format!(
                "lost the gateway mid-session ({why}); stopped {program} so nothing runs unchecked"
            ),
        )
        .hint("check that the gateway is running and reachable, then run the command again"),
        SessionError::Protocol(why) => {
            Failure::new(code::PROTOCOL, format!("protocol error: {why}"))
                .hint("use a hoopx client and gateway of the same version")
        }
        SessionError::Policy(why) => Failure::new(code::DENIED, format!("denied by policy: {why}")),
        SessionError::GatewayFailed(why) => Failure::new(
            code::UNAVAILABLE,
            format!("the gateway ended the session: {why}"),
        ),
        SessionError::Spawn(why) => Failure::new(code::CANNOT_RUN, why),
        SessionError::Identity(why) => Failure::new(
            code::TOKEN,
            format!("the gateway ended the session and stopped {program}: {why}"),
        )
        .hint("run `hoopx login` (or renew the machine's credentials), then run the command again"),
        SessionError::ApprovalTimeout(id) => Failure::new(
            code::PENDING,
            format!("an input line needs review {id}, and hoopx does not wait for it (--no-wait or --approval-timeout); stopped {program}, the review stays pending"),
        )
        .hint(format!("once a reviewer approves it, run the same command with the same input and --review {id} (that line runs once); or run without --no-wait / with a longer --approval-timeout to wait in the session"))
        .review(id),
    }
}

/// Opens the session; a command that needs a review waits for it (unless told not to),
/// then opens again under the approval.
async fn open(
    client: &GatewayClient,
    req: &mut OpenSession,
    wait: &Wait,
) -> Result<SessionOpened, Failure> {
    let started = std::time::Instant::now();
    loop {
        let review = match client.open_session(req).await? {
            Opened::Session(s) => return Ok(s),
            Opened::Review(r) => r,
        };
        if wait.json && wait.capture.is_none() {
            event(serde_json::json!({
                "event": "approval_pending",
                "review_id": review.id,
                "rule": review.rule,
                "reviewers": review.reviewers,
                "command": review.command,
                "expires_at": review.expires_at,
            }));
        }
        let waiting = format!(
            "waiting for approval of `{}` — review {}, reviewers: {}",
            review.command,
            review.id,
            review.reviewers.join(", ")
        );
        if wait.no_wait {
            return Err(Failure::new(
                code::PENDING,
                format!(
                    "`{}` needs approval: review {} is pending",
                    review.command, review.id
                ),
            )
            .hint(format!(
                "once a reviewer approves it, run the same command with --review {}",
                review.id
            ))
            .review(&review.id));
        }
        let decided = wait_for(client, &review, &waiting, wait, started).await?;
        if decided.status != status::APPROVED {
            return Err(not_approved(&decided));
        }
        // Under --capture the captured object says it all.
        if wait.json && wait.capture.is_none() {
            event(
                serde_json::json!({"event": "approved", "review_id": decided.id, "decisions": decided.decisions}),
            );
        } else if !wait.json && wait.capture.is_none() {
            say(&super::printable(&format!(
                "review {} approved by {}",
                decided.id,
                decided.approvers().join(", ")
            )));
        }
        req.review = Some(decided.id);
    }
}

/// Waits until the review is decided: a spinner on a terminal, one line otherwise.
async fn wait_for(
    client: &GatewayClient,
    review: &ReviewInfo,
    waiting: &str,
    wait: &Wait,
    started: std::time::Instant,
) -> Result<ReviewInfo, Failure> {
    let spinner = (!wait.json
        && std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var("TERM").map_or(true, |t| t != "dumb"))
    .then(|| {
        let pb = indicatif::ProgressBar::new_spinner();
        pb.set_message(waiting.to_string());
        pb.enable_steady_tick(std::time::Duration::from_millis(120));
        pb
    });
    if spinner.is_none() && !wait.json {
        say(waiting);
    }
    let result = async {
        loop {
            let left = wait
                .timeout
                .map(|t| t.saturating_sub(started.elapsed()));
            if left.is_some_and(|l| l.is_zero()) {
                return Err(Failure::new(
                    code::PENDING,
                    format!("no decision on review {} within the --approval-timeout", review.id),
                )
                .hint(format!(
                    "the review stays pending; once approved, run the same command with --review {}",
                    review.id
                ))
                .review(&review.id));
            }
            let secs = left.map_or(25, |l| l.as_secs().clamp(1, 25));
            let r = client.review(&review.id, secs).await?;
            if r.status != status::PENDING {
                return Ok(r);
            }
        }
    }
    .await;
    if let Some(pb) = spinner {
        pb.finish_and_clear();
    }
    result
}

/// A review that ended without an approval: exit 77, saying who decided and why.
fn not_approved(r: &ReviewInfo) -> Failure {
    // Reviewers' names and reasons: no control characters reach the terminal.
    let by = super::printable(&r.decided_by(None));
    Failure::new(
        code::DENIED,
        format!("review {} was {}{by}", r.id, r.status),
    )
    .hint("run the command again to ask for a new review")
    .review(&r.id)
}

/// Renews the token before it expires, for as long as the command runs: sets each fresh
/// one on `client` (for requests still to come, the stream's attach included) and hands it
/// to the session (which sends it to the gateway). `None` when the token cannot be renewed
/// (given as HOOPX_TOKEN) or does not expire.
fn keep_fresh(
    mut creds: login::Credentials,
    client: GatewayClient,
) -> Option<tokio::sync::mpsc::UnboundedReceiver<crate::auth::Secret>> {
    if creds.source == login::Source::Given {
        return None;
    }
    creds.expires_at?;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut retry_at = None;
        loop {
            let Some(exp) = creds.expires_at else { return };
            let at = retry_at.unwrap_or_else(|| login::renew_at(&creds.token, exp));
            let wait = (at - login::now()).max(0) as u64;
            tokio::time::sleep(std::time::Duration::from_secs(wait)).await;
            match login::renew(&creds).await {
                Ok(fresh) => {
                    client.set_token(fresh.token.clone());
                    if tx.send(fresh.token.clone()).is_err() {
                        return;
                    }
                    creds = fresh;
                    retry_at = None;
                }
                // Maybe a blip: try again while the current token still holds.
                Err(e @ login::LoginError::Unreachable { .. }) if login::now() < exp => {
                    say(&format!("cannot renew the identity yet ({e}); retrying"));
                    retry_at = Some(login::now() + 10);
                }
                Err(e) => {
                    say(&format!(
                        "cannot renew the identity: {e}; the gateway ends this session once the current token lapses"
                    ));
                    return;
                }
            }
        }
    });
    Some(rx)
}
