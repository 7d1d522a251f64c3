//! `hoopx review`: the reviewer's side of approvals.

use std::process::ExitCode;

use clap::Subcommand;

use super::{print_line, printable, source, Failure, GatewayArgs, OutputFormat};
use crate::client::GatewayClient;
use crate::policy::review as status;
use crate::proto::ReviewInfo;

#[derive(Debug, Subcommand)]
pub enum ReviewCommand {
    /// List reviews, newest first.
    List {
        #[command(flatten)]
        gateway: GatewayArgs,
        /// Only reviews in this state.
        #[arg(long, value_name = "S", value_parser = ["pending", "approved", "executed", "rejected", "expired", "revoked"])]
        status: Option<String>,
        /// How many reviews to show at most.
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=1000))]
        limit: u32,
        /// `text` for people, `json` for scripts and agents (shapes: docs/JSON.md).
        #[arg(short = 'o', long, value_enum, default_value_t = OutputFormat::Text)]
        output: OutputFormat,
    },
    /// Show one review: the exact command, who asked, and every decision.
    Show {
        #[command(flatten)]
        gateway: GatewayArgs,
        /// Review id.
        id: String,
        /// `text` for people, `json` for scripts and agents (shapes: docs/JSON.md).
        #[arg(short = 'o', long, value_enum, default_value_t = OutputFormat::Text)]
        output: OutputFormat,
    },
    /// Approve a pending review (you cannot approve your own request).
    #[command(
        after_help = "On a terminal the exact command is shown and confirmed first; --yes skips that (scripts)."
    )]
    Approve {
        #[command(flatten)]
        gateway: GatewayArgs,
        /// Review id.
        id: String,
        /// Why, recorded with the decision.
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
        /// Do not ask for confirmation.
        #[arg(long, short = 'y')]
        yes: bool,
        /// `text` for people, `json` for scripts and agents (shapes: docs/JSON.md).
        #[arg(short = 'o', long, value_enum, default_value_t = OutputFormat::Text)]
        output: OutputFormat,
    },
    /// Reject a pending review; the command or line never runs.
    Reject {
        #[command(flatten)]
        gateway: GatewayArgs,
        /// Review id.
        id: String,
        /// Why, recorded with the decision and shown to the requester.
        #[arg(long, value_name = "TEXT", required = true)]
        reason: String,
        /// Do not ask for confirmation.
        #[arg(long, short = 'y')]
        yes: bool,
        /// `text` for people, `json` for scripts and agents (shapes: docs/JSON.md).
        #[arg(short = 'o', long, value_enum, default_value_t = OutputFormat::Text)]
        output: OutputFormat,
    },
    /// Withdraw a pending request or an approval not used yet.
    Revoke {
        #[command(flatten)]
        gateway: GatewayArgs,
        /// Review id.
        id: String,
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
        /// `text` for people, `json` for scripts and agents (shapes: docs/JSON.md).
        #[arg(short = 'o', long, value_enum, default_value_t = OutputFormat::Text)]
        output: OutputFormat,
    },
}

pub fn run(cmd: ReviewCommand) -> Result<ExitCode, Failure> {
    let rt = super::runtime()?;
    let result = rt.block_on(async move {
        match cmd {
            ReviewCommand::List {
                gateway,
                status,
                limit,
                output,
            } => {
                let (client, _embedded) = source::connect(&gateway).await?;
                let reviews = client.list_reviews(status.as_deref(), limit).await?;
                match output {
                    OutputFormat::Json => print_json(&reviews)?,
                    OutputFormat::Text => print_table(&reviews)?,
                }
                Ok(ExitCode::SUCCESS)
            }
            ReviewCommand::Show {
                gateway,
                id,
                output,
            } => {
                let (client, _embedded) = source::connect(&gateway).await?;
                let r = client.review(&id, 0).await?;
                show(&r, output)?;
                Ok(ExitCode::SUCCESS)
            }
            ReviewCommand::Approve {
                gateway,
                id,
                reason,
                yes,
                output,
            } => decide(&gateway, &id, "approve", reason, yes, output).await,
            ReviewCommand::Reject {
                gateway,
                id,
                reason,
                yes,
                output,
            } => {
                if reason.trim().is_empty() {
                    return Err(Failure::new(
                        super::code::USAGE,
                        "a rejection needs a reason: --reason TEXT (it is shown to the requester)",
                    ));
                }
                decide(&gateway, &id, "reject", Some(reason), yes, output).await
            }
            ReviewCommand::Revoke {
                gateway,
                id,
                reason,
                output,
            } => decide(&gateway, &id, "revoke", reason, true, output).await,
        }
    });
    rt.shutdown_background();
    result
}

async fn decide(
    gateway: &GatewayArgs,
    id: &str,
    action: &str,
    reason: Option<String>,
    yes: bool,
    output: OutputFormat,
) -> Result<ExitCode, Failure> {
    let (client, _embedded) = source::connect(gateway).await?;
    if !yes && on_terminal() {
        confirm(&client, id, action).await?;
    }
    let r = client.decide_review(id, action, reason).await?;
    match output {
        OutputFormat::Json => print_json(&r)?,
        OutputFormat::Text => {
            let have = r.approvers().len();
            let more = if r.status == status::PENDING {
                format!(" ({have} of {} approvals)", r.min_approvals)
            } else {
                String::new()
            };
            print_line(&format!("review {}: {}{more}", r.id, r.status))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn on_terminal() -> bool {
    use std::io::IsTerminal;
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

/// Shows the exact command and asks; "no" ends with exit 1 and changes nothing.
async fn confirm(client: &GatewayClient, id: &str, action: &str) -> Result<(), Failure> {
    let r = client.review(id, 0).await?;
    eprintln!(
        "{} on {} asks to run:\n\n    {}\n\nrule {}, review {} ({})",
        printable(&r.requester),
        printable(&r.target),
        printable(&r.command),
        printable(&r.rule),
        r.id,
        r.status
    );
    let answer = tokio::task::spawn_blocking({
        let prompt = format!("{action} this?");
        move || {
            dialoguer::Confirm::new()
                .with_prompt(prompt)
                .default(false)
                .interact()
        }
    })
    .await
    .map_err(|e| Failure::new(1, format!("the confirmation prompt failed: {e}")))?;
    match answer {
        Ok(true) => Ok(()),
        Ok(false) => Err(Failure::new(
            1,
            format!("not done: review {id} is unchanged"),
        )),
        Err(e) => Err(Failure::new(
            1,
            format!("cannot ask for confirmation ({e}); review {id} is unchanged"),
        )
        .hint("pass --yes to decide without a prompt")),
    }
}

fn print_json<T: serde::Serialize>(v: &T) -> Result<(), Failure> {
    let text = serde_json::to_string_pretty(v)
        .map_err(|e| Failure::new(1, format!("cannot write JSON: {e}")))?;
    print_line(&text)
}

fn ago(ms: i64) -> String {
    let secs = (chrono::Utc::now().timestamp_millis() - ms).max(0) / 1000;
    match secs {
        s if s < 120 => format!("{s}s ago"),
        s if s < 7200 => format!("{}m ago", s / 60),
        s if s < 172_800 => format!("{}h ago", s / 3600),
        s => format!("{}d ago", s / 86_400),
    }
}

fn print_table(reviews: &[ReviewInfo]) -> Result<(), Failure> {
    if reviews.is_empty() {
        return print_line("no reviews");
    }
    print_line(&format!(
        "{:<36}  {:<8}  {:<12}  {:<10}  {:<9}  COMMAND",
        "ID", "STATUS", "REQUESTER", "TARGET", "ASKED"
    ))?;
    for r in reviews {
        let mut command = printable(&r.command);
        if command.chars().count() > 60 {
            command = command.chars().take(59).collect::<String>() + "…";
        }
        print_line(&format!(
            "{:<36}  {:<8}  {:<12}  {:<10}  {:<9}  {command}",
            r.id,
            r.status,
            printable(&r.requester),
            printable(&r.target),
            ago(r.created_at)
        ))?;
    }
    Ok(())
}

fn show(r: &ReviewInfo, output: OutputFormat) -> Result<(), Failure> {
    if output == OutputFormat::Json {
        return print_json(r);
    }
    let time = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms)
            .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
            .unwrap_or_default()
    };
    let mut lines = vec![
        format!("review      {}", r.id),
        format!("status      {}", r.status),
        format!("command     {}", printable(&r.command)),
        format!("kind        {}", r.kind),
        format!("requester   {}", printable(&r.requester)),
        format!("target      {}", printable(&r.target)),
        format!("rule        {}", printable(&r.rule)),
        format!(
            "reviewers   {} (approvals needed: {})",
            r.reviewers.join(", "),
            r.min_approvals
        ),
        format!("asked       {} ({})", time(r.created_at), ago(r.created_at)),
        format!("expires     {}", time(r.expires_at)),
    ];
    if let Some(s) = &r.session_id {
        lines.push(format!("session     {s}"));
    }
    if let Some(s) = &r.executed_session {
        lines.push(format!(
            "executed    {} in session {s}",
            r.executed_at.map(time).unwrap_or_default()
        ));
    }
    for d in &r.decisions {
        lines.push(format!(
            "decision    {} {} at {}{}",
            printable(&d.reviewer),
            d.decision,
            time(d.at),
            d.reason
                .as_deref()
                .map(|x| format!(": {}", printable(x)))
                .unwrap_or_default()
        ));
    }
    print_line(&lines.join("\n"))
}
