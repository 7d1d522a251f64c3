//! `hoopx generate`: shell completions and man pages, from the clap definitions.
//! A test regenerates them and fails on drift from `completions/` and `man/`.
//! `hoopx completion SHELL` and `hoopx man [COMMAND…]` print one of them, as `gh completion`
//! and `kubectl completion` do, for installs that did not ship the files.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, CommandFactory};
use clap_complete::Shell;

use super::{code, Cli, Failure};

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Directory that receives `completions/` and `man/`.
    #[arg(long, default_value = ".", value_name = "DIR")]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct CompletionArgs {
    /// The shell: bash, zsh, fish, elvish or powershell.
    #[arg(value_enum)]
    pub shell: Shell,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// The command whose page to print, e.g. `exec` or `sessions export`; none: hoopx's.
    #[arg(value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// Prints the completion script for a shell on stdout.
pub fn completion(args: CompletionArgs) -> Result<ExitCode, Failure> {
    let mut cmd = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "hoopx", &mut out);
    write_stdout(&out)
}

/// Prints the man page of hoopx or one of its commands on stdout.
pub fn man(args: ManArgs) -> Result<ExitCode, Failure> {
    let mut cmd = Cli::command();
    let mut name = String::from("hoopx");
    for word in &args.command {
        let Some(sub) = cmd
            .get_subcommands()
            .find(|s| s.get_name() == word && !s.is_hide_set())
            .cloned()
        else {
            return Err(
                Failure::new(code::USAGE, format!("there is no command `{name} {word}`"))
                    .hint(format!("`{name} --help` lists its commands")),
            );
        };
        name = format!("{name}-{word}");
        cmd = sub;
    }
    let cmd = cmd.name(name.clone()).bin_name(name.replace('-', " "));
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd)
        .render(&mut out)
        .map_err(|e| Failure::new(code::CANNOT_RUN, format!("cannot render the page: {e}")))?;
    write_stdout(&out)
}

fn write_stdout(bytes: &[u8]) -> Result<ExitCode, Failure> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
        Err(e) => Err(Failure::new(code::CANNOT_RUN, format!("cannot write: {e}"))),
    }
}

pub fn run(args: GenerateArgs) -> Result<ExitCode, Failure> {
    write_all(&args.out).map_err(|e| {
        Failure::new(
            code::CONFIG,
            format!("cannot write into {}: {e}", args.out.display()),
        )
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Writes every completion script and man page under `out`.
pub fn write_all(out: &Path) -> std::io::Result<()> {
    let comp = out.join("completions");
    let man = out.join("man");
    std::fs::create_dir_all(&comp)?;
    std::fs::create_dir_all(&man)?;
    for shell in [
        Shell::Bash,
        Shell::Zsh,
        Shell::Fish,
        Shell::Elvish,
        Shell::PowerShell,
    ] {
        let mut cmd = Cli::command();
        clap_complete::generate_to(shell, &mut cmd, "hoopx", &comp)?;
    }
    let cmd = Cli::command();
    write_man(&cmd, "hoopx", &man)?;
    Ok(())
}

fn write_man(cmd: &clap::Command, name: &str, dir: &Path) -> std::io::Result<()> {
    if cmd.is_hide_set() {
        return Ok(());
    }
    let cmd = cmd
        .clone()
        .name(name.to_string())
        .bin_name(name.replace('-', " "));
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut buf)?;
    std::fs::write(dir.join(format!("{name}.1")), buf)?;
    for sub in cmd.get_subcommands() {
        if sub.get_name() == "help" {
            continue;
        }
        write_man(sub, &format!("{name}-{}", sub.get_name()), dir)?;
    }
    Ok(())
}
