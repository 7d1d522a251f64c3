//! hoopx: run psql, ssh, kubectl or any command through an access gateway that masks,
//! guards and records every byte.

pub mod auth; // identity: tokens, authenticators, secrets that redact themselves
pub mod cli; // clap definitions, one file per subcommand, exit codes
pub mod client; // gateway client: HTTP API and the session stream
pub mod dirs; // XDG config and data directories
pub mod env_vars; // every environment variable hoopx reads
pub mod gateway; // the server: API, stream relay, store (SQLite, PostgreSQL), embedded mode
pub mod policy; // pure policy: config parsing, deny rules, input gate, masking, SQL statement rules
pub mod proto; // wire types: protocol version, API bodies, session frames
pub mod pty; // running the tool under a PTY or pipes, raw mode, signals
pub mod recording; // the session event log
