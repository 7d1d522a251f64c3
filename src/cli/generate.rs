//! `hoopx generate`: shell completions and man pages, from the clap definitions.
//! A test regenerates them and fails on drift from `completions/` and `man/`.

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
