//! `hoopx sessions`: the sessions of whichever gateway is in use.

use std::process::ExitCode;

use clap::{Subcommand, ValueEnum};

use super::{code, settings, Failure, GatewayArgs};
use crate::client::GatewayClient;
use crate::gateway::embedded;
use crate::proto::SessionInfo;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Output {
    Table,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum SessionsCommand {
    /// List sessions, newest first.
    List {
        #[command(flatten)]
        gateway: GatewayArgs,
        /// How many sessions to show.
        #[arg(long, default_value_t = 20)]
        limit: u32,
        #[arg(long, value_enum, default_value_t = Output::Table)]
        output: Output,
    },
    /// Show one session.
    Show {
        #[command(flatten)]
        gateway: GatewayArgs,
        /// Session id (as listed by `hoopx sessions list`).
        id: String,
        #[arg(long, value_enum, default_value_t = Output::Table)]
        output: Output,
    },
}

pub fn run(cmd: SessionsCommand) -> Result<ExitCode, Failure> {
    let rt = super::runtime()?;
    let result = rt.block_on(async move {
        let (gw_args, limit, id, output) = match &cmd {
            SessionsCommand::List {
                gateway,
                limit,
                output,
            } => (gateway, *limit, None, *output),
            SessionsCommand::Show {
                gateway,
                id,
                output,
            } => (gateway, 1, Some(id.clone()), *output),
        };
        let r = settings::resolve(gw_args, None)?;
        let (client, _embedded) = match &r.gateway {
            Some(url) => (GatewayClient::new(url, r.token.clone())?, None),
            None => {
                let e = embedded::start()
                    .await
                    .map_err(|e| Failure::new(code::UNAVAILABLE, e.to_string()))?;
                (GatewayClient::new(&e.url, Some(e.token.clone()))?, Some(e))
            }
        };
        let sessions = match id {
            Some(id) => vec![client.session(&id).await?],
            None => client.list_sessions(limit.clamp(1, 1000)).await?,
        };
        match output {
            Output::Json => {
                let v = if matches!(cmd, SessionsCommand::Show { .. }) {
                    serde_json::to_string_pretty(&sessions[0])
                } else {
                    serde_json::to_string_pretty(&sessions)
                };
                println!("{}", v.unwrap_or_default());
            }
            Output::Table => print_table(&sessions),
        }
        Ok(ExitCode::SUCCESS)
    });
    rt.shutdown_background();
    result
}

fn print_table(sessions: &[SessionInfo]) {
    println!(
        "{:<36}  {:<19}  {:<16}  {:<10}  {:<8}  {:>4}  COMMAND",
        "ID", "STARTED", "IDENTITY", "TARGET", "STATUS", "EXIT"
    );
    for s in sessions {
        let started = chrono::DateTime::from_timestamp_millis(s.started_at)
            .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
            .unwrap_or_default();
        let exit = s
            .exit_code
            .map(|c| c.to_string())
            .unwrap_or_else(|| "-".into());
        let mut command = s.argv.join(" ");
        if command.chars().count() > 60 {
            command = command.chars().take(59).collect::<String>() + "…";
        }
        println!(
            "{:<36}  {:<19}  {:<16}  {:<10}  {:<8}  {:>4}  {}",
            s.id, started, s.identity, s.target, s.status, exit, command
        );
    }
}
