//! `hoopx exec`: run a command with every byte of its input and output through the gateway.

use std::os::fd::AsFd;
use std::process::ExitCode;

use clap::Args;

use super::{code, settings, Failure, GatewayArgs};
use crate::auth::login;
use crate::client::session::{self, say, SessionError};
use crate::client::GatewayClient;
use crate::gateway::embedded;
use crate::proto::{Mode, OpenSession};
use crate::pty;

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  hoopx exec -- psql -h db.internal -c 'select 1'\n  hoopx exec --target pg -- psql\n  HOOPX_GATEWAY=https://gw.example.com hoopx exec -- kubectl get pods"
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
    /// The command and its arguments.
    #[arg(required = true, trailing_var_arg = true, value_name = "CMD")]
    pub command: Vec<String>,
}

pub fn run(args: ExecArgs) -> Result<ExitCode, Failure> {
    let resolved = settings::resolve(&args.gateway, args.target.clone())?;
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    let on_terminal = pty::is_tty(stdin.as_fd()) && pty::is_tty(stdout.as_fd());
    let mode = if args.tty || (on_terminal && !args.no_tty) {
        Mode::Pty
    } else {
        Mode::Pipe
    };
    let rt = super::runtime()?;
    let result = rt.block_on(exec(args.command, resolved, mode));
    rt.shutdown_background();
    result
}

async fn exec(argv: Vec<String>, r: settings::Resolved, mode: Mode) -> Result<ExitCode, Failure> {
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
    let opened = client
        .open_session(&OpenSession {
            target: r.target.clone(),
            argv: argv.clone(),
            mode,
            cols: size.map(|s| s.0),
            rows: size.map(|s| s.1),
        })
        .await
        .map_err(|e| not_run(e.into()))?;
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

    let spawned = match mode {
        Mode::Pty => pty::spawn_pty(&argv, &opened.env, size),
        Mode::Pipe => pty::spawn_pipes(&argv, &opened.env),
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
    let raw = if mode == Mode::Pty && pty::is_tty(std::io::stdin().as_fd()) {
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
    };
    let outcome = session::run_renewing(ws, tool, mode == Mode::Pty, renewing).await;
    drop(raw);
    match outcome {
        Ok(o) if o.denied > 0 => Err(Failure::new(
            code::DENIED,
            format!(
                "{} input line(s) denied by policy were not sent to {program} (it exited with {})",
                o.denied, o.code
            ),
        )),
        Ok(o) => Ok(ExitCode::from((o.code & 0xff) as u8)),
        Err(e) => Err(session_failure(e, &program)),
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
    }
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
