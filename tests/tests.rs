//! All integration tests compile into this one binary; each module tells one story.

mod agents;
mod approvals;
mod cli;
mod evidence;
mod exec_pipe;
mod exec_pty;
mod failures;
mod frames;
mod interface;
mod kube;
mod masking;
mod masking_over_time;
mod oidc;
mod operations;
mod pg_rules;
mod postgres;
mod readme;
mod recording;
mod ssh;
mod store;
mod targets;
mod util;

/// The example config of the foundation issue, accepted as it is.
pub const EXAMPLE_CONFIG: &str = r#"[[targets]]
name = "pg"
kind = "postgres"
command = ["psql"]

[[rules.mask]]
name = "email"
pattern = '[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}'

[[rules.deny]]
name = "no-drop-table"
pattern = '(?i)\bdrop\s+table\b'
"#;

/// A config with a shell target, for stories that need no database.
pub const SHELL_CONFIG: &str = r#"[[targets]]
name = "shell"
kind = "command"
command = ["sh", "cat"]

[[rules.mask]]
name = "email"
pattern = '[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}'

[[rules.deny]]
name = "no-rm"
pattern = '\brm\s+-rf\b'
"#;
