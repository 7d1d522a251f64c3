//! Every environment variable hoopx reads, in one place.

/// Gateway URL for the client commands (`--gateway`).
pub const HOOPX_GATEWAY: &str = "HOOPX_GATEWAY";
/// Bearer token for the client commands (`--token`).
pub const HOOPX_TOKEN: &str = "HOOPX_TOKEN";
/// Default target for `hoopx exec` (`--target`).
pub const HOOPX_TARGET: &str = "HOOPX_TARGET";
/// The token `hoopx gateway serve --dev` accepts; generated when unset.
pub const HOOPX_DEV_TOKEN: &str = "HOOPX_DEV_TOKEN";
/// Overrides the client config file path.
pub const HOOPX_CONFIG: &str = "HOOPX_CONFIG";
/// Machine identity: OAuth client credentials (`hoopx exec` uses them when both are set;
/// `hoopx login --client-credentials`).
pub const HOOPX_CLIENT_ID: &str = "HOOPX_CLIENT_ID";
pub const HOOPX_CLIENT_SECRET: &str = "HOOPX_CLIENT_SECRET";
/// A CI ID token to exchange at the gateway (GitLab: `id_tokens: HOOPX_ID_TOKEN: {aud: …}`).
pub const HOOPX_ID_TOKEN: &str = "HOOPX_ID_TOKEN";
/// GitHub Actions (`permissions: id-token: write`): where and with what to ask for an ID token.
pub const ACTIONS_ID_TOKEN_REQUEST_URL: &str = "ACTIONS_ID_TOKEN_REQUEST_URL";
pub const ACTIONS_ID_TOKEN_REQUEST_TOKEN: &str = "ACTIONS_ID_TOKEN_REQUEST_TOKEN";
/// XDG base directories.
pub const XDG_CONFIG_HOME: &str = "XDG_CONFIG_HOME";
pub const XDG_DATA_HOME: &str = "XDG_DATA_HOME";
pub const XDG_STATE_HOME: &str = "XDG_STATE_HOME";
pub const HOME: &str = "HOME";
/// Where `hoopx exec` puts a session's private directory (credentials a target hands the
/// tool); else the temp directory (`TMPDIR`).
pub const XDG_RUNTIME_DIR: &str = "XDG_RUNTIME_DIR";
/// Set by `hoopx exec` for the tool (not read): the session's private directory, where a
/// target's credential files and generated configs are.
pub const HOOPX_SESSION_DIR: &str = crate::policy::targets::SESSION_DIR_VAR;
/// The served gateway's log filter (`tracing` directives, e.g. `info` or
/// `hoopx::access=info,warn`); else `RUST_LOG`; else `info`.
pub const HOOPX_LOG: &str = "HOOPX_LOG";
pub const RUST_LOG: &str = "RUST_LOG";
/// A PEM file of CA certificates the client trusts for an `https://` gateway, besides the
/// system roots (`ca` in the client config).
pub const HOOPX_CA: &str = "HOOPX_CA";
