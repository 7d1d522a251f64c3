//! Client settings: flags, then environment variables, then the client config file
//! (`$XDG_CONFIG_HOME/hoopx/config.toml`, or `HOOPX_CONFIG`).

use std::path::PathBuf;

use serde::Deserialize;

use super::{code, Failure, GatewayArgs};
use crate::auth::Secret;

/// The client config file. Secrets do not belong here: tokens come from the environment.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    /// Gateway URL.
    pub gateway: Option<String>,
    /// Default target for `hoopx exec`.
    pub target: Option<String>,
    /// The environment variable that holds a CI ID token to exchange at the gateway
    /// (default `HOOPX_ID_TOKEN`), e.g. the name given in GitLab's `id_tokens`.
    pub id_token_env: Option<String>,
    /// A PEM file of CA certificates trusted for an `https://` gateway (HOOPX_CA wins).
    pub ca: Option<PathBuf>,
}

/// The client config file, and whether it was named explicitly (`HOOPX_CONFIG`).
pub fn config_path() -> Option<(PathBuf, bool)> {
    if let Some(p) = std::env::var_os(crate::env_vars::HOOPX_CONFIG).filter(|p| !p.is_empty()) {
        return Some((PathBuf::from(p), true));
    }
    crate::dirs::config_dir().map(|d| (d.join("config.toml"), false))
}

/// Reads the client config file; a missing file is an empty config, a bad one exits 78.
pub fn load_config() -> Result<ClientConfig, Failure> {
    let Some((path, explicit)) = config_path() else {
        return Ok(ClientConfig::default());
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        // The default file is optional; one named by HOOPX_CONFIG must exist.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => {
            return Ok(ClientConfig::default())
        }
        Err(e) => {
            return Err(Failure::new(
                code::CONFIG,
                format!("cannot read the client config {}: {e}", path.display()),
            ))
        }
    };
    let mut cfg: ClientConfig = toml::from_str(&text).map_err(|e| {
        let line = e
            .span()
            .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1)
            .unwrap_or(1);
        Failure::new(
            code::CONFIG,
            format!("{}:{line}: {}", path.display(), e.message().trim()),
        )
        .hint("the client config takes `gateway = \"URL\"`, `target = \"NAME\"`, `id_token_env = \"VAR\"` and `ca = \"FILE\"`")
    })?;
    // `ca` relative to the config file's directory; every command that reaches a gateway
    // (exec, sessions, login, …) trusts it.
    if let Some(ca) = cfg.ca.take() {
        let ca = match path.parent() {
            Some(dir) if ca.is_relative() => dir.join(ca),
            _ => ca,
        };
        crate::client::tls::set_config_ca(ca.clone());
        cfg.ca = Some(ca);
    }
    Ok(cfg)
}

/// Where to connect: a remote gateway, or none (the embedded one).
#[derive(Debug)]
pub struct Resolved {
    pub gateway: Option<String>,
    pub token: Option<Secret>,
    pub target: Option<String>,
}

pub fn resolve(args: &GatewayArgs, target: Option<String>) -> Result<Resolved, Failure> {
    let cfg = load_config()?;
    let given = args.gateway.clone().filter(|g| !g.is_empty());
    let source = match &given {
        // clap reads the flag and the variable into one field: tell them apart by value.
        Some(g) if std::env::var(crate::env_vars::HOOPX_GATEWAY).ok().as_ref() == Some(g) => {
            "HOOPX_GATEWAY".to_string()
        }
        Some(_) => "--gateway".to_string(),
        None => format!(
            "`gateway = …` in {}",
            config_path().map_or_else(
                || "the client config".into(),
                |(p, _)| p.display().to_string()
            )
        ),
    };
    crate::client::set_gateway_source(source);
    let gateway = given.or(cfg.gateway);
    Ok(Resolved {
        gateway,
        token: args
            .token
            .clone()
            .filter(|t| !t.is_empty())
            .map(Secret::new),
        target: target.filter(|t| !t.is_empty()).or(cfg.target),
    })
}

/// A client for the remote gateway at `url`, with the token the command runs with: the
/// given one, else client credentials, the cached login (refreshed) or a CI identity
/// (see [`crate::auth::login`]). No token at all is left for the gateway to refuse, with
/// its hint on how to log in.
pub async fn remote_client(
    url: &str,
    given: Option<Secret>,
) -> Result<
    (
        crate::client::GatewayClient,
        Option<crate::auth::login::Credentials>,
    ),
    Failure,
> {
    // A bad URL is a usage error before any token is looked for.
    crate::client::GatewayClient::new(url, None)?;
    let var = load_config()?.id_token_env.filter(|v| !v.is_empty());
    let creds = crate::auth::login::obtain(url, given, var.as_deref()).await?;
    let client = crate::client::GatewayClient::new(url, creds.as_ref().map(|c| c.token.clone()))?;
    Ok((client, creds))
}
