//! The command line: clap definitions, dispatch, and the one place exit codes and error
//! messages are decided.

mod exec;
mod export;
mod gateway;
mod generate;
mod login;
mod mcp;
mod replay;
mod review;
mod sessions;
pub mod settings;
mod source;
mod verify;

use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

/// Exit codes of hoopx's own failures (the tool's own code is passed through otherwise).
pub mod code {
    /// What was asked for does not exist (e.g. `hoopx sessions show` of an unknown id).
    pub const NOT_FOUND: u8 = 1;
    pub const USAGE: u8 = 64;
    pub const TOKEN: u8 = 67;
    pub const UNAVAILABLE: u8 = 69;
    /// The command waits for a review, or the wait for it timed out.
    pub const PENDING: u8 = 75;
    pub const PROTOCOL: u8 = 76;
    pub const DENIED: u8 = 77;
    pub const CONFIG: u8 = 78;
    /// The tool could not be started (shell convention).
    pub const CANNOT_RUN: u8 = 127;
}

/// A failure to report: what happened, what to do next, and the exit code.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
    pub hint: Option<String>,
    /// The review a command waits for or was refused under, for JSON outputs.
    pub review_id: Option<String>,
}

impl Failure {
    pub fn new(code: u8, message: impl Into<String>) -> Failure {
        Failure {
            code,
            message: message.into(),
            hint: None,
            review_id: None,
        }
    }

    pub fn review(mut self, id: impl Into<String>) -> Failure {
        self.review_id = Some(id.into());
        self
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Failure {
        self.hint = Some(hint.into());
        self
    }

    /// Ends with `code` and says nothing (e.g. stdout closed by `| head`).
    pub fn silent(code: u8) -> Failure {
        Failure::new(code, "")
    }

    fn report(&self) {
        if self.message.is_empty() {
            return;
        }
        let (red, yellow, off) = if color_on() {
            ("\x1b[1;31m", "\x1b[33m", "\x1b[0m")
        } else {
            ("", "", "")
        };
        crate::client::session::say(&format!("{red}{}{off}", self.message));
        if let Some(h) = &self.hint {
            crate::client::session::say(&format!("{yellow}hint:{off} {h}"));
        }
    }
}

/// `--color`: when hoopx's own messages (and clap's help) use color.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorWhen {
    /// When stderr is a terminal, NO_COLOR is unset or empty, and TERM is not `dumb`.
    Auto,
    Always,
    Never,
}

static COLOR: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether hoopx's own messages on stderr are colored.
pub fn color_on() -> bool {
    COLOR.load(std::sync::atomic::Ordering::Relaxed)
}

fn decide_color(when: ColorWhen) -> bool {
    use std::io::IsTerminal;
    match when {
        ColorWhen::Always => true,
        ColorWhen::Never => false,
        ColorWhen::Auto => {
            std::io::stderr().is_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                && std::env::var("TERM").map_or(true, |t| t != "dumb")
        }
    }
}

/// `--color` read ahead of parsing, so clap's own help and errors follow it too.
fn color_from_args() -> ColorWhen {
    // Arguments that are not UTF-8 are clap's to report, not ours to panic on.
    let args: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let mut when = ColorWhen::Auto;
    for (i, a) in args.iter().enumerate() {
        if a == "--" {
            break;
        }
        let value = match a.strip_prefix("--color=") {
            Some(v) => Some(v),
            None if a == "--color" => args.get(i + 1).map(String::as_str),
            None => None,
        };
        match value {
            Some("always") => when = ColorWhen::Always,
            Some("never") => when = ColorWhen::Never,
            Some("auto") => when = ColorWhen::Auto,
            _ => {}
        }
    }
    when
}

impl From<crate::client::ClientError> for Failure {
    fn from(e: crate::client::ClientError) -> Failure {
        use crate::client::ClientError as E;
        let code = match &e {
            E::BadUrl(_) | E::UnknownTarget { .. } => code::USAGE,
            E::Tls(_) => code::CONFIG,
            E::Unreachable { .. } | E::Api { .. } => code::UNAVAILABLE,
            E::Unauthorized { .. } => code::TOKEN,
            E::Denied { .. } | E::Forbidden { .. } => code::DENIED,
            E::Pending { .. } => code::PENDING,
            E::Conflict { .. } => code::NOT_FOUND,
            E::Protocol(_) => code::PROTOCOL,
            E::NotFound { .. } => code::NOT_FOUND,
        };
        let hint = e.hint();
        let message = match &e {
            E::Denied {
                message,
                rule: Some(rule),
                ..
            } => format!("denied by policy (rule {rule}): {message}"),
            _ => e.to_string(),
        };
        Failure {
            code,
            message,
            hint,
            review_id: None,
        }
    }
}

#[derive(Debug, Parser)]
#[command(
    name = "hoopx",
    version,
    about = "Run psql, ssh, kubectl or any command through an access gateway that masks, guards and records every byte",
    after_help = "Exit codes: the tool's own code (signals as 128+n); hoopx's own: 1 not found, 64 usage, 67 token missing or rejected, \
69 gateway unreachable, 75 approval pending or wait timed out, 76 protocol error, 77 denied by policy or approval, 78 bad configuration, 127 the tool could not be started."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Color in hoopx's messages: auto (a terminal, and NO_COLOR unset), always or never.
    #[arg(long, global = true, value_enum, default_value_t = ColorWhen::Auto, value_name = "WHEN")]
    pub color: ColorWhen,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a command through the gateway: `hoopx exec -- psql -h db`.
    Exec(exec::ExecArgs),
    /// Run or manage a gateway.
    #[command(subcommand)]
    Gateway(gateway::GatewayCommand),
    /// List and inspect recorded sessions.
    #[command(subcommand)]
    Sessions(sessions::SessionsCommand),
    /// Serve hoopx to AI agents as an MCP server over stdio (tools: exec, sessions, replay_text).
    Mcp(mcp::McpArgs),
    /// Decide the commands that wait for approval: list, show, approve, reject, revoke.
    #[command(subcommand)]
    Review(review::ReviewCommand),
    /// Play a recorded session (or watch a live one), or export it as text, asciicast or JSON.
    Replay(replay::ReplayArgs),
    /// Prove a recording unaltered (hash chain, signatures, signed close, ledger), or the
    /// whole store against its ledger with --all, or an evidence export offline.
    Verify(verify::VerifyArgs),
    /// Log in to a gateway's identity provider (device flow; --browser; --client-credentials).
    Login(login::LoginArgs),
    /// Forget the login for a gateway and revoke it at the identity provider.
    Logout(login::LogoutArgs),
    /// Show who you are at the gateway: identity, groups, token source and expiry.
    Status(login::StatusArgs),
    /// Print the shell completion script: `hoopx completion bash > ~/.local/share/bash-completion/completions/hoopx`.
    Completion(generate::CompletionArgs),
    /// Print a man page (roff): `hoopx man exec | man -l -`.
    Man(generate::ManArgs),
    /// Regenerate shell completions and man pages (for packagers and the repository).
    #[command(hide = true)]
    Generate(generate::GenerateArgs),
}

/// A command line as a shell would quote it (`psql -c 'select 1'`).
pub fn shell_join(argv: &[String]) -> String {
    shlex::try_join(argv.iter().map(String::as_str)).unwrap_or_else(|_| argv.join(" "))
}

/// Prints one line on stdout; a reader that went away (`| head`) ends the command quietly.
pub fn print_line(text: &str) -> Result<(), Failure> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{text}").and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(Failure::silent(0)),
        Err(e) => Err(Failure::new(
            code::UNAVAILABLE,
            format!("cannot write to stdout: {e}"),
        )),
    }
}

/// Text from the store or the caller, safe to print on a terminal: control characters
/// (which could move the cursor or rewrite lines) shown as `^L`, `^?` (C1 ones escaped).
pub fn printable(s: &str) -> String {
    if !s.chars().any(char::is_control) {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            // As a terminal user writes them (`cat -v`): ^L for Ctrl-L, ^? for DEL.
            '\0'..='\u{1f}' => {
                out.push('^');
                out.push(char::from(c as u8 + 0x40));
            }
            '\u{7f}' => out.push_str("^?"),
            c if c.is_control() => out.extend(c.escape_default()),
            c => out.push(c),
        }
    }
    out
}

/// `--output`: for people, or JSON for programs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    #[value(alias = "table")]
    Text,
    Json,
}

/// A duration such as `90s`, `15m`, `1h30m`, `7d` or `2w` (a bare number is seconds): the
/// replay's time syntax.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    crate::recording::player::parse_time(s.trim())
        .and_then(|us| u64::try_from(us).ok())
        .map(std::time::Duration::from_micros)
        .ok_or_else(|| format!("{s:?} is not a duration; use e.g. 90s, 15m, 1h30m, 7d"))
}

/// Where the gateway is and how to authenticate, shared by client commands.
#[derive(Clone, Args)]
pub struct GatewayArgs {
    /// Gateway URL; without one, hoopx runs an embedded gateway in-process.
    #[arg(long, env = crate::env_vars::HOOPX_GATEWAY, value_name = "URL")]
    pub gateway: Option<String>,
    /// Bearer token for the gateway (prefer the HOOPX_TOKEN variable: flags show in `ps`).
    #[arg(long, env = crate::env_vars::HOOPX_TOKEN, hide_env_values = true, value_name = "TOKEN")]
    pub token: Option<String>,
}

impl std::fmt::Debug for GatewayArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayArgs")
            .field("gateway", &self.gateway)
            .field("token", &self.token.as_ref().map(|_| "***"))
            .finish()
    }
}

pub fn main() -> ExitCode {
    crate::pty::cloexec_inherited_fds();
    if let Some(code) = crate::client::sftp_bridge::run_if_bridge() {
        return code;
    }
    let early = color_from_args();
    let clap_color = match (early, decide_color(early)) {
        (ColorWhen::Always, _) => clap::ColorChoice::Always,
        (_, false) => clap::ColorChoice::Never,
        _ => clap::ColorChoice::Auto,
    };
    let parsed = <Cli as clap::CommandFactory>::command()
        .color(clap_color)
        .try_get_matches()
        .and_then(|m| <Cli as clap::FromArgMatches>::from_arg_matches(&m));
    let cli = match parsed {
        Ok(c) => {
            COLOR.store(decide_color(c.color), std::sync::atomic::Ordering::Relaxed);
            c
        }
        Err(e) => {
            use clap::error::ErrorKind;
            return match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
                    let _ = e.print();
                    ExitCode::SUCCESS
                }
                ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
                    let _ = e.print();
                    ExitCode::from(code::USAGE)
                }
                _ => {
                    usage_failure(&e.render().to_string()).report();
                    ExitCode::from(code::USAGE)
                }
            };
        }
    };
    let result = match cli.command {
        Command::Exec(a) => exec::run(a),
        Command::Gateway(c) => gateway::run(c),
        Command::Sessions(c) => sessions::run(c),
        Command::Replay(a) => replay::run(a),
        Command::Review(c) => review::run(c),
        Command::Mcp(a) => mcp::run(a),
        Command::Verify(a) => verify::run(a),
        Command::Login(a) => login::login(a),
        Command::Logout(a) => login::logout(a),
        Command::Status(a) => login::status(a),
        Command::Generate(a) => generate::run(a),
        Command::Completion(a) => generate::completion(a),
        Command::Man(a) => generate::man(a),
    };
    match result {
        Ok(code) => code,
        Err(f) => {
            f.report();
            ExitCode::from(f.code)
        }
    }
}

/// A clap usage error as hoopx reports every failure: `hoopx: what`, then one hint with
/// clap's tip and the usage line.
fn usage_failure(rendered: &str) -> Failure {
    let mut message = String::new();
    let mut hints = vec![];
    for line in rendered.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if let Some(m) = line.strip_prefix("error: ") {
            message = m.to_string();
        } else if let Some(tip) = line.strip_prefix("tip: ") {
            hints.push(tip.to_string());
        } else if let Some(usage) = line.strip_prefix("Usage: ") {
            hints.push(format!("usage: {usage}"));
        } else if line.starts_with("For more information") {
            hints.push(
                line.trim_start_matches("For more information, ")
                    .to_string(),
            );
        } else if message.is_empty() {
            message = line.to_string();
        } else {
            hints.push(line.to_string());
        }
    }
    let f = Failure::new(code::USAGE, message);
    if hints.is_empty() {
        f
    } else {
        f.hint(hints.join("; "))
    }
}

/// The one async runtime of a process.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    keep_freed_memory();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| {
            Failure::new(
                code::UNAVAILABLE,
                format!("cannot start the async runtime: {e}"),
            )
        })
}

/// Streams move output in chunks of up to 256 KiB, allocated and freed many times a second.
/// glibc maps such blocks afresh each time and hands freed memory back to the kernel, so
/// every chunk cost page faults and zeroed pages; kept in the heap, they are reused.
fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator thresholds; called before any thread starts.
    unsafe {
        nix::libc::mallopt(nix::libc::M_MMAP_THRESHOLD, 4 << 20);
        nix::libc::mallopt(nix::libc::M_TRIM_THRESHOLD, 64 << 20);
    }
}

#[cfg(test)]
mod printable_tests {
    #[test]
    fn control_characters_show_in_caret_notation() {
        assert_eq!(super::printable("plain"), "plain");
        assert_eq!(
            super::printable("drop\x0c table\x1b[2J;\x7f\u{85}"),
            "drop^L table^[[2J;^?\\u{85}"
        );
    }
}
