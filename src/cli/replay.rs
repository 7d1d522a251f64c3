//! `hoopx replay SESSION|FILE|last`: play a recording with its timing, or export it.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, ValueEnum};

use super::source::{self, Loaded};
use super::{code, Failure, GatewayArgs};
use crate::recording::{format, player, render, EventKind};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReplayFormat {
    /// Play on the terminal with the original timing.
    Pty,
    /// Everything the screen showed, without escape codes, as a transcript (greppable):
    /// lines that scrolled off or were cleared included.
    Text,
    /// The final screen only, as the terminal showed it when the session ended.
    Screen,
    /// asciicast v2 (asciinema 2.x), with what `hoopx verify` needs in the header.
    Cast,
    /// asciicast v3 (asciinema 3.x), with what `hoopx verify` needs in the header.
    Cast3,
    /// The events as JSON lines: hoopx's own export, verifiable.
    Json,
    /// The statement log of a postgres session: each statement as the gateway saw it on
    /// its own connection to the server, with its outcome (masked).
    Sql,
    /// The request log of a kubernetes session: each API request as the gateway resolved
    /// and decided it, with the API server's status.
    Requests,
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    #[command(flatten)]
    pub gateway: GatewayArgs,
    /// A session id, `last`, or an exported file.
    #[arg(value_name = "SESSION|FILE|last")]
    pub what: String,
    /// What to write: play it (pty), or export it (text, cast, cast3, json, sql, requests).
    #[arg(long, value_enum, default_value_t = ReplayFormat::Pty)]
    pub format: ReplayFormat,
    /// Playback speed factor, e.g. 2 or 0.5.
    #[arg(long, default_value_t = 1.0, value_parser = parse_speed, value_name = "X")]
    pub speed: f64,
    /// Shorten pauses longer than this many seconds.
    #[arg(long, value_name = "SECS", value_parser = parse_secs)]
    pub idle_limit: Option<Duration>,
    /// Start here: a time (90, 1:30, 1m30s, 500ms) or a marker's text (e.g. denied).
    #[arg(long, value_name = "POS")]
    pub from: Option<String>,
    /// Stop here: a time or a marker's text.
    #[arg(long, value_name = "POS")]
    pub to: Option<String>,
    /// Watch a running session live: catch up from its start, then follow until it ends.
    #[arg(long)]
    pub follow: bool,
}

fn parse_speed(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!("{s:?} is not a positive number")),
    }
}

fn parse_secs(s: &str) -> Result<Duration, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(Duration::from_secs_f64(v)),
        _ => Err(format!("{s:?} is not a positive number of seconds")),
    }
}

fn io_failure(e: std::io::Error) -> Failure {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        // A reader that went away (`| head`) is not a failure.
        return Failure::silent(0);
    }
    Failure::new(code::UNAVAILABLE, format!("cannot write the replay: {e}"))
}

pub fn run(args: ReplayArgs) -> Result<ExitCode, Failure> {
    let rt = super::runtime()?;
    let result = rt.block_on(async {
        if args.follow {
            return follow(&args).await;
        }
        let loaded = source::load(&args.gateway, &args.what).await?;
        output(&args, &loaded)
    });
    rt.shutdown_background();
    result
}

fn output(args: &ReplayArgs, loaded: &Loaded) -> Result<ExitCode, Failure> {
    let rec = &loaded.recording;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(256 * 1024, stdout.lock());
    match args.format {
        ReplayFormat::Text => render::text(rec, &mut out).map_err(io_failure)?,
        ReplayFormat::Screen => render::screen(rec, &mut out).map_err(io_failure)?,
        ReplayFormat::Json => {
            format::write_json(&mut out, rec, loaded.hashes.as_deref()).map_err(io_failure)?
        }
        ReplayFormat::Sql => {
            crate::recording::statements::write_sql(&mut out, rec).map_err(io_failure)?
        }
        ReplayFormat::Requests => {
            crate::recording::statements::write_requests(&mut out, rec).map_err(io_failure)?
        }
        ReplayFormat::Cast => format::write_cast(&mut out, rec, 2).map_err(io_failure)?,
        ReplayFormat::Cast3 => format::write_cast(&mut out, rec, 3).map_err(io_failure)?,
        ReplayFormat::Pty => {
            let position = |p: &Option<String>, flag: &str| {
                p.as_deref()
                    .map(|p| player::resolve_within(rec, p))
                    .transpose()
                    .map_err(|e| {
                        Failure::new(code::USAGE, format!("{flag}: {e}"))
                            .hint("give a time (90, 1:30, 1m30s, 500ms) or text from a marker")
                    })
            };
            let interactive = std::io::stdout().is_terminal() && std::io::stdin().is_terminal();
            let opts = player::PlayOptions {
                speed: args.speed,
                idle_limit: args.idle_limit,
                from_us: position(&args.from, "--from")?,
                to_us: position(&args.to, "--to")?,
                interactive,
            };
            if interactive {
                let _raw = crate::pty::RawModeGuard::enable().map_err(|e| {
                    Failure::new(
                        code::UNAVAILABLE,
                        format!("cannot set up the terminal: {e}"),
                    )
                })?;
                let keys = player::spawn_key_reader();
                player::play(rec, &opts, &mut out, Some(keys)).map_err(io_failure)?;
            } else {
                player::play(rec, &opts, &mut out, None).map_err(io_failure)?;
            }
        }
    }
    out.flush().map_err(io_failure)?;
    Ok(ExitCode::SUCCESS)
}

/// `--follow`: print the session's output as it is recorded, until it ends.
async fn follow(args: &ReplayArgs) -> Result<ExitCode, Failure> {
    if source::is_file(&args.what) {
        return Err(Failure::new(
            code::USAGE,
            "--follow watches a session on a gateway, not a file",
        )
        .hint("drop --follow to play the file"));
    }
    if !matches!(args.format, ReplayFormat::Pty | ReplayFormat::Json) {
        return Err(Failure::new(
            code::USAGE,
            "--follow writes the live output (--format pty) or its events (--format json)",
        ));
    }
    let (client, _embedded) = source::connect(&args.gateway).await?;
    let id = source::resolve_id(&client, &args.what).await?;
    let mut next = 0i64;
    let stdout = std::io::stdout();
    loop {
        // Read the status before the events: a session that ended before this page has all
        // its events in it or in the pages after.
        let status = client.session(&id).await?.status;
        // A closing checkpoint also says the log is complete, even if the session's status
        // was never updated (its gateway died between the two writes).
        let ended = !matches!(status.as_str(), "open" | "running")
            || client.checkpoints(&id).await?.iter().any(|c| c.last);
        let mut got = 0;
        let mut remote = false;
        loop {
            let page = client.events(&id, next, 5000).await?;
            if page.is_empty() {
                break;
            }
            let mut out = stdout.lock();
            for e in page {
                let (event, hash) = source::decode_event(e)?;
                next = event.seq + 1;
                got += 1;
                let written = match args.format {
                    // The export's own event lines, so a followed session reads like a file.
                    ReplayFormat::Json => {
                        remote |= crate::recording::evidence::opens_remote_terminal(
                            event.kind,
                            &event.data,
                        );
                        format::write_event_line(&mut out, &event, hash.as_ref(), remote)
                    }
                    _ if matches!(event.kind, EventKind::Output | EventKind::Stderr) => {
                        out.write_all(&event.data)
                    }
                    _ => Ok(()),
                };
                written.map_err(io_failure)?;
            }
            out.flush().map_err(io_failure)?;
        }
        if ended {
            return Ok(ExitCode::SUCCESS);
        }
        if got == 0 {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}
