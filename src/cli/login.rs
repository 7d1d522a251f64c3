//! `hoopx login`, `hoopx logout`, `hoopx status`: who you are at a gateway.

use std::process::ExitCode;

use clap::Args;

use super::{code, print_line, settings, Failure, OutputFormat};
use crate::auth::cache;
use crate::auth::login::{self, LoginError, Provider, Source};
use crate::client::session::say;
use crate::client::GatewayClient;

impl From<LoginError> for Failure {
    fn from(e: LoginError) -> Failure {
        let hint = e.hint();
        let code = match &e {
            LoginError::Unreachable { .. } => code::UNAVAILABLE,
            LoginError::Refused { .. } => code::TOKEN,
            LoginError::Setup { .. } => code::USAGE,
            LoginError::Cache(_) => code::CONFIG,
            LoginError::Gateway(_) => code::UNAVAILABLE,
        };
        if let LoginError::Gateway(g) = e {
            return Failure::from(g);
        }
        let f = Failure::new(code, e.to_string());
        match hint {
            Some(h) => f.hint(h),
            None => f,
        }
    }
}

#[derive(Debug, Args)]
#[command(
    after_help = "By default hoopx prints an address and a code to approve in any browser (the device flow: works over SSH and on headless machines).\n\nExamples:\n  hoopx login --gateway https://gw.example.com\n  hoopx login --browser\n  HOOPX_CLIENT_ID=ci HOOPX_CLIENT_SECRET=… hoopx login --client-credentials"
)]
pub struct LoginArgs {
    /// Gateway URL (default: HOOPX_GATEWAY, then the client config's `gateway`).
    #[arg(long, env = crate::env_vars::HOOPX_GATEWAY, value_name = "URL")]
    pub gateway: Option<String>,
    /// Log in in a browser on this machine (authorization code with PKCE and a 127.0.0.1
    /// redirect) instead of the device flow.
    #[arg(long, conflicts_with = "client_credentials")]
    pub browser: bool,
    /// With --browser: print the address instead of opening a browser.
    #[arg(long, requires = "browser")]
    pub no_open: bool,
    /// Log in as a machine with HOOPX_CLIENT_ID and HOOPX_CLIENT_SECRET.
    #[arg(long)]
    pub client_credentials: bool,
    /// `json`: NDJSON on stdout — a `device_code` event (address and code to relay to a
    /// person) when the device flow starts, then a `logged_in` event (docs/JSON.md).
    #[arg(short = 'o', long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

#[derive(Debug, Args)]
pub struct LogoutArgs {
    /// Gateway URL (default: HOOPX_GATEWAY, then the client config's `gateway`).
    #[arg(long, env = crate::env_vars::HOOPX_GATEWAY, value_name = "URL")]
    pub gateway: Option<String>,
    /// `json`: one object, `{"gateway", "logged_out", "revoked"}`.
    #[arg(short = 'o', long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub gateway: super::GatewayArgs,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value = "text")]
    pub output: OutputFormat,
}

fn gateway_of(flag: Option<String>) -> Result<Option<String>, Failure> {
    match flag.filter(|g| !g.is_empty()) {
        Some(g) => Ok(Some(g)),
        None => Ok(settings::load_config()?.gateway),
    }
}

fn need_gateway(flag: Option<String>) -> Result<String, Failure> {
    let gw = gateway_of(flag)?.ok_or_else(|| {
        Failure::new(
            code::USAGE,
            "no gateway to log in to: without one, hoopx runs an embedded gateway that needs no login",
        )
        .hint("pass --gateway URL, set HOOPX_GATEWAY, or put `gateway = \"URL\"` in the client config")
    })?;
    GatewayClient::new(&gw, None)?;
    Ok(gw.trim_end_matches('/').to_string())
}

pub fn login(args: LoginArgs) -> Result<ExitCode, Failure> {
    let gateway = need_gateway(args.gateway.clone())?;
    let rt = super::runtime()?;
    let result = rt.block_on(login_async(args, gateway));
    rt.shutdown_background();
    result
}

async fn login_async(args: LoginArgs, gateway: String) -> Result<ExitCode, Failure> {
    let p = Provider::discover(&gateway).await?;
    let (client_id, flow, tokens) = if args.client_credentials {
        let id = std::env::var(crate::env_vars::HOOPX_CLIENT_ID).unwrap_or_default();
        let secret = std::env::var(crate::env_vars::HOOPX_CLIENT_SECRET).unwrap_or_default();
        if id.is_empty() || secret.is_empty() {
            return Err(Failure::new(
                code::USAGE,
                "--client-credentials needs HOOPX_CLIENT_ID and HOOPX_CLIENT_SECRET",
            )
            .hint("set both to the machine's client id and secret at the identity provider"));
        }
        let t = p
            .client_credentials(&id, &crate::auth::Secret::new(secret))
            .await?;
        (id, "client-credentials", t)
    } else if args.browser {
        let id = p.cli_client_id()?;
        let t = crate::auth::pkce::login(&p, &id, !args.no_open).await?;
        (id, "browser", t)
    } else {
        let id = p.cli_client_id()?;
        let start = p.device_start(&id).await?;
        let minutes = ((start.expires_at - login::now()) / 60).max(1);
        say(&format!(
            "to log in to {gateway}, open this address in a browser (on any device):"
        ));
        eprintln!(
            "\n    {}\n",
            start
                .verification_uri_complete
                .as_deref()
                .unwrap_or(&start.verification_uri)
        );
        say(&format!(
            "and check that it shows the code {}",
            start.user_code
        ));
        say(&format!(
            "waiting for the approval (the code expires in {minutes} min)…"
        ));
        if args.output == OutputFormat::Json {
            print_line(
                &serde_json::json!({
                    "event": "device_code",
                    "verification_uri": start.verification_uri,
                    "verification_uri_complete": start.verification_uri_complete,
                    "user_code": start.user_code,
                    "expires_at": start.expires_at,
                })
                .to_string(),
            )?;
        }
        let t = p.device_poll(&id, &start).await?;
        (id, "device", t)
    };
    let mut entry = p.entry(&client_id, flow, tokens);
    // The gateway has the last word: check it accepts the token before keeping it.
    let who = GatewayClient::new(&gateway, Some(entry.access_token.clone()))?
        .whoami()
        .await
        .map_err(|e| {
            let f = Failure::from(e);
            let message = format!(
                "logged in at the identity provider, but the gateway refuses the token: {}",
                f.message
            );
            Failure { message, ..f }
        })?;
    entry.subject = who.subject.clone();
    entry.groups = who.groups.clone();
    if let Some(e) = who.expires_at {
        entry.expires_at = Some(e);
    }
    cache::put(&gateway, &entry).map_err(LoginError::from)?;
    let renew = if entry.refresh_token.is_some() {
        "; renewed automatically"
    } else {
        ""
    };
    if args.output == OutputFormat::Json {
        print_line(
            &serde_json::json!({
                "event": "logged_in",
                "gateway": gateway,
                "identity": who.subject,
                "groups": who.groups,
                "flow": flow,
                "expires_at": entry.expires_at,
                "refreshable": entry.refresh_token.is_some(),
            })
            .to_string(),
        )?;
    }
    say(&format!(
        "logged in to {gateway} as {}{}{}",
        super::printable(&who.subject),
        groups_text(&who.groups),
        entry
            .expires_at
            .map(|e| format!(", token valid until {}{renew}", when(e)))
            .unwrap_or_default()
    ));
    Ok(ExitCode::SUCCESS)
}

fn groups_text(groups: &[String]) -> String {
    if groups.is_empty() {
        String::new()
    } else {
        format!(" (groups: {})", super::printable(&groups.join(", ")))
    }
}

fn when(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|| unix.to_string())
}

pub fn logout(args: LogoutArgs) -> Result<ExitCode, Failure> {
    let gateway = need_gateway(args.gateway)?;
    let json = args.output == OutputFormat::Json;
    let report = |logged_out: bool, revoked: bool| -> Result<(), Failure> {
        if json {
            print_line(
                &serde_json::json!({"gateway": gateway, "logged_out": logged_out, "revoked": revoked})
                    .to_string(),
            )?;
        }
        Ok(())
    };
    let Some(entry) = cache::remove(&gateway).map_err(LoginError::from)? else {
        say(&format!("not logged in to {gateway}"));
        report(false, false)?;
        return Ok(ExitCode::SUCCESS);
    };
    let mut revoked_ok = false;
    // Also end the login at the provider, so a copy of the refresh token is worthless.
    if let Some(refresh) = &entry.refresh_token {
        let rt = super::runtime()?;
        let revoked = rt.block_on(async {
            let p = Provider::discover(&gateway).await?;
            p.revoke(&entry.client_id, refresh).await
        });
        rt.shutdown_background();
        match revoked {
            Ok(_) => revoked_ok = true,
            Err(e) => say(&format!(
                "warning: could not revoke the login at the identity provider ({e}); it ends when it expires"
            )),
        }
    }
    say(&format!("logged out of {gateway}"));
    report(true, revoked_ok)?;
    Ok(ExitCode::SUCCESS)
}

pub fn status(args: StatusArgs) -> Result<ExitCode, Failure> {
    let json = args.output == OutputFormat::Json;
    let Some(gateway) = gateway_of(args.gateway.gateway.clone())? else {
        if json {
            print_line(&serde_json::json!({"gateway": null, "embedded": true}).to_string())?;
        } else {
            print_line(
                "gateway:  none (embedded: runs in-process as the local user; no login needed)",
            )?;
        }
        return Ok(ExitCode::SUCCESS);
    };
    let gateway = gateway.trim_end_matches('/').to_string();
    let given = args
        .gateway
        .token
        .clone()
        .filter(|t| !t.is_empty())
        .map(crate::auth::Secret::new);
    let rt = super::runtime()?;
    let result = rt.block_on(async {
        let var = settings::load_config()?
            .id_token_env
            .filter(|v| !v.is_empty());
        let creds = login::obtain(&gateway, given, var.as_deref()).await?;
        let Some(creds) = creds else {
            // A dev gateway has no provider to log in to: say what works there instead.
            let dev = match GatewayClient::new(&gateway, None)?.auth_info().await {
                Ok(info) => info.mode == "dev",
                Err(_) => false,
            };
            return Ok(Err(dev));
        };
        let who = GatewayClient::new(&gateway, Some(creds.token.clone()))?
            .whoami()
            .await?;
        Ok::<_, Failure>(Ok((creds, who)))
    });
    rt.shutdown_background();
    let (creds, who) = match result? {
        Ok(found) => found,
        Err(dev) => {
            if json {
                print_line(
                    &serde_json::json!({"gateway": gateway, "logged_in": false}).to_string(),
                )?;
            }
            let hint = if dev {
                "this is a dev gateway, with no identity provider to log in to: set HOOPX_TOKEN to the dev token it printed at start".to_string()
            } else {
                format!("run `hoopx login --gateway {gateway}`")
            };
            return Err(
                Failure::new(code::TOKEN, format!("not logged in to {gateway}")).hint(hint),
            );
        }
    };
    let expires_at = who.expires_at.or(creds.expires_at);
    let renews = !matches!(creds.source, Source::Given);
    if json {
        let v = serde_json::json!({
            "gateway": gateway,
            "logged_in": true,
            "subject": who.subject,
            "groups": who.groups,
            "source": creds.source.describe(),
            "expires_at": expires_at,
            "expires": expires_at.map(when),
            "renews": renews,
        });
        print_line(&v.to_string())?;
    } else {
        print_line(&format!("gateway:  {gateway}"))?;
        print_line(&format!("identity: {}", super::printable(&who.subject)))?;
        print_line(&format!(
            "groups:   {}",
            if who.groups.is_empty() {
                "(none)".to_string()
            } else {
                super::printable(&who.groups.join(", "))
            }
        ))?;
        print_line(&format!("via:      {}", creds.source.describe()))?;
        if let Some(e) = expires_at {
            let left = e - login::now();
            print_line(&format!(
                "expires:  {} (in {}){}",
                when(e),
                human(left),
                if renews {
                    "; renewed automatically"
                } else {
                    ""
                }
            ))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn human(secs: i64) -> String {
    if secs <= 0 {
        return "0s".into();
    }
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m {s}s"),
        _ => format!("{h}h {m}m"),
    }
}
