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
/// XDG base directories.
pub const XDG_CONFIG_HOME: &str = "XDG_CONFIG_HOME";
pub const XDG_DATA_HOME: &str = "XDG_DATA_HOME";
pub const HOME: &str = "HOME";
