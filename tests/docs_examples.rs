//! Every command line in the README's and docs' shell blocks runs as written, with the result
//! the text claims (exit code and what it prints), against a real gateway started the way
//! the README says, on a real PostgreSQL prepared the way the examples assume (a role `app`,
//! a database `shop` with `customers`, `orders`, `carts`, `users`, `t`).
//!
//! What differs from a reader's machine is substituted, and only that: the gateway's address
//! (`https://gateway.internal`, `https://gw.example.com`, `127.0.0.1:8433`, a fixed
//! `--listen`) becomes the test gateway's loopback port; `db.internal` and the store URL
//! become the test server; placeholders (`SESSION_ID`, `SESSION`, `REVIEW_ID`, `ID`,
//! `3f1c…`, `BASE64`, `HEAD`, `PROD_DB_PASSWORD=…`) become the values the earlier steps
//! printed; `/etc/hoopx/gateway.toml` is the README's config in the working directory.
//!
//! A line that cannot run here says where it is exercised instead (`ELSEWHERE`), and the
//! last step checks that no shell line of the docs is left out of both: a new example must
//! be run here or say why not.

use std::collections::{BTreeSet, HashMap};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use crate::util::{run, Env, Lines, Output, Postgres};

const T: Duration = Duration::from_secs(60);

/// The documents whose shell blocks are examples.
const DOCS: &[&str] = &[
    "README.md",
    "docs/APPROVALS.md",
    "docs/IDENTITY.md",
    "docs/JSON.md",
    "docs/KUBERNETES.md",
    "docs/MASKING.md",
    "docs/POSTGRES.md",
    "docs/RECORDING.md",
    "docs/TARGETS.md",
];

/// The operator guide: walked by its own test, on a gateway with an [auth] table (the
/// guide serves without `--dev`) and a real OpenID provider.
const OPS_DOCS: &[&str] = &["docs/OPERATIONS.md"];

/// Lines of the operator guide that do not run in its walkthrough.
const OPS_ELSEWHERE: &[(&str, &str, &str)] = &[(
    "docs/OPERATIONS.md",
    "cargo bench --bench load",
    "a benchmark (the load and fault suite), not a test",
)];

/// Lines that do not run in this walkthrough, and the test or reason that covers them.
const ELSEWHERE: &[(&str, &str, &str)] = &[
    ("README.md", "scripts/deps.sh --build && cargo install --locked --path . && hoopx exec -- sh -c 'echo \"deploy key AKIAIOSFODNN7EXAMPLE, owner ops@example.com\"; exit 3'",
        "cli.rs: the_readme_main_job_does_what_the_readme_says runs it (the install is the build under test)"),
    ("README.md", "scripts/test.sh", "CI runs it (.ci/run)"),
    ("README.md", "claude mcp add hoopx -- hoopx mcp", "Claude Code is not installed here; agents.rs runs `hoopx mcp` as an MCP client would"),
    ("README.md", "hoopx gateway serve --config gateway.toml --listen 0.0.0.0:8433",
        "needs an [auth] table and a provider: oidc.rs starts `hoopx gateway serve --config` with one against a real oidc-provider"),
    ("README.md", "hoopx login", "oidc.rs: device_login_then_exec_status_silent_refresh_and_logout"),
    ("README.md", "hoopx login --gateway https://gw.example.com", "oidc.rs: device_login_then_exec_status_silent_refresh_and_logout"),
    ("README.md", "hoopx login --browser", "oidc.rs: browser_login_with_pkce_and_a_loopback_redirect"),
    ("README.md", "hoopx logout", "oidc.rs: device_login_then_exec_status_silent_refresh_and_logout"),
    ("README.md", "hoopx exec --target prod-pg -- psql -f migrations/042.sql",
        "oidc.rs: github_actions_id_tokens_are_detected_and_exchanged_without_a_stored_secret (GitHub's ID token)"),
    ("README.md", "systemctl enable --now hoopx-gateway", "no systemd here; readme.rs checks the unit's ExecStart parses"),
    ("README.md", "cargo bench --bench exec", "a benchmark, not a test"),
    ("README.md", "cargo bench --bench postgres", "a benchmark, not a test"),
    ("README.md", "cargo bench --bench kube", "a benchmark, not a test"),
    ("README.md", "cargo bench --bench ssh", "a benchmark, not a test"),
    ("README.md", "cargo bench --bench mask", "a benchmark, not a test"),
    ("README.md", "cargo bench --bench replay", "a benchmark, not a test"),
    ("docs/IDENTITY.md", "hoopx login --gateway https://gw.example.com", "oidc.rs: device_login_then_exec_status_silent_refresh_and_logout"),
    ("docs/IDENTITY.md", "hoopx login --browser", "oidc.rs: browser_login_with_pkce_and_a_loopback_redirect"),
    ("docs/IDENTITY.md", "hoopx logout", "oidc.rs: device_login_then_exec_status_silent_refresh_and_logout"),
    ("docs/IDENTITY.md", "hoopx exec --target prod-pg -- psql -f migrations/042.sql",
        "oidc.rs: github_actions_id_tokens_are_detected_and_exchanged_without_a_stored_secret"),
    ("docs/TARGETS.md", "hoopx exec --target web -- ssh", "ssh.rs: an interactive shell through the gateway's SSH client"),
    ("docs/TARGETS.md", "hoopx exec --target web -- ssh web 'uptime'", "ssh.rs: a command on the target host"),
    ("docs/TARGETS.md", "hoopx exec --target cluster -- kubectl get pods",
        "kube.rs (a stand-in API server: no Kubernetes API server can run here)"),
    ("docs/APPROVALS.md", "printf 'delete from users where id = 2;\\n' | hoopx exec --target pg --no-wait --output json -- psql",
        "approvals.rs: a_line_left_pending_by_no_wait_is_approved_later_and_runs_once_with_review (the same input, real psql)"),
    ("docs/APPROVALS.md", "printf 'delete from users where id = 2;\\n' | hoopx exec --target pg --no-wait --review ID -- psql",
        "approvals.rs: a_line_left_pending_by_no_wait_is_approved_later_and_runs_once_with_review (the same input, real psql)"),
    ("docs/APPROVALS.md", "hoopx review list [--status pending|approved|executed|rejected|expired|revoked] [--output json]", "a synopsis; approvals.rs runs each form"),
    ("docs/APPROVALS.md", "hoopx review show ID [--output json]", "a synopsis; approvals.rs runs each form"),
    ("docs/APPROVALS.md", "hoopx review approve ID [--reason TEXT] [--yes]", "a synopsis; approvals.rs runs each form"),
    ("docs/APPROVALS.md", "hoopx review reject ID --reason TEXT [--yes]", "a synopsis; approvals.rs runs each form"),
    ("docs/APPROVALS.md", "hoopx review revoke ID [--reason TEXT]", "a synopsis; approvals.rs runs each form"),
];

/// The command lines of a document's shell blocks (`sh`, `console`, `bash`, and `run:` steps
/// of `yaml` blocks): line number and the command without its trailing comment.
fn shell_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut lang: Option<String> = None;
    for (n, line) in text.lines().enumerate() {
        if let Some(rest) = line.strip_prefix("```") {
            lang = match lang {
                None => Some(rest.trim().to_string()),
                Some(_) => None,
            };
            continue;
        }
        let Some(l) = &lang else { continue };
        let cmd = match l.as_str() {
            "sh" | "bash" | "console" => line.trim(),
            // GitHub's `run:` steps, GitLab's `script:` items.
            "yaml" => {
                let l = line.trim();
                match l.strip_prefix("- run:").or(l.strip_prefix("run:")) {
                    Some(c) => c.trim(),
                    None => match l.strip_prefix("- ") {
                        Some(c) if c.starts_with("hoopx ") => c,
                        _ => continue,
                    },
                }
            }
            _ => continue,
        };
        let cmd = strip_comment(cmd);
        if cmd.is_empty() || cmd.starts_with('#') {
            continue;
        }
        out.push((n + 1, cmd.to_string()));
    }
    out
}

/// A command without its trailing `  # comment` (two spaces or more before the `#`).
fn strip_comment(line: &str) -> &str {
    match line.find("  #") {
        Some(i) => line[..i].trim_end(),
        None => line.trim_end(),
    }
}

/// The shell lines of the docs and which of them have run.
struct Docs {
    lines: HashMap<&'static str, Vec<(usize, String)>>,
    ran: Mutex<BTreeSet<(String, String)>>,
}

impl Docs {
    fn load(files: &[&'static str]) -> Docs {
        let lines = files
            .iter()
            .map(|f| {
                let path = format!("{}/{f}", env!("CARGO_MANIFEST_DIR"));
                let text = std::fs::read_to_string(&path).unwrap();
                (*f, shell_lines(&text))
            })
            .collect();
        Docs {
            lines,
            ran: Mutex::new(BTreeSet::new()),
        }
    }

    /// Checks that every shell line of the documents ran, or is listed in `elsewhere` with
    /// what covers it, and that `elsewhere` names only lines the documents still show.
    fn all_ran(&self, elsewhere: &[(&str, &str, &str)]) {
        let ran = self.ran.lock().unwrap().clone();
        let mut missing = Vec::new();
        for (file, lines) in &self.lines {
            for (n, cmd) in lines {
                let listed = elsewhere.iter().any(|(f, c, _)| f == file && c == cmd);
                if !listed && !ran.contains(&(file.to_string(), cmd.clone())) {
                    missing.push(format!("{file}:{n}: {cmd}"));
                }
            }
        }
        assert!(
            missing.is_empty(),
            "shell lines of the docs that no test runs (run them here or list them in ELSEWHERE):\n{}",
            missing.join("\n")
        );
        for (file, cmd, _) in elsewhere {
            assert!(
                self.lines[file].iter().any(|(_, c)| c == cmd),
                "ELSEWHERE lists `{cmd}`, which {file} no longer shows"
            );
        }
    }

    /// `cmd` as the document shows it; panics if the document has no such line.
    fn line(&self, file: &str, cmd: &str) -> String {
        let found = self.lines[file].iter().any(|(_, l)| l == cmd);
        assert!(
            found,
            "{file} no longer shows `{cmd}`: update this walkthrough with the docs"
        );
        self.ran
            .lock()
            .unwrap()
            .insert((file.to_string(), cmd.to_string()));
        cmd.to_string()
    }
}

/// The world the examples run in: a PostgreSQL server, the working directory, the gateway.
struct World {
    env: Env,
    pg: Postgres,
    docs: Docs,
    /// Placeholder → value, applied to every line before it runs.
    subst: Vec<(String, String)>,
    gateway: Option<(std::process::Child, Lines, String)>,
    /// What the docs' `export` lines set.
    exports: Vec<(String, String)>,
}

impl Drop for World {
    fn drop(&mut self) {
        if let Some((child, _, _)) = &mut self.gateway {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl World {
    fn set(&mut self, placeholder: &str, value: &str) {
        self.subst.retain(|(p, _)| p != placeholder);
        self.subst
            .push((placeholder.to_string(), value.to_string()));
        // Longer placeholders first (SESSION_ID before SESSION).
        self.subst.sort_by_key(|(p, _)| std::cmp::Reverse(p.len()));
    }

    fn substitute(&self, cmd: &str) -> String {
        let mut s = cmd.to_string();
        for (p, v) in &self.subst {
            s = replace_word(&s, p, v);
        }
        s
    }

    /// A shell for `line` in the working directory, with a clean environment plus `vars`.
    fn sh(&self, line: &str, vars: &[(&str, &str)]) -> Command {
        let mut c = Command::new("sh");
        c.arg("-c").arg(line).env_clear();
        for (k, v) in self.env.hoopx().get_envs() {
            if let Some(v) = v {
                c.env(k, v);
            }
        }
        // The binary under test is the `hoopx` on PATH.
        let bin_dir = std::path::Path::new(crate::util::BIN).parent().unwrap();
        c.env(
            "PATH",
            format!(
                "{}:{}",
                bin_dir.display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        );
        if let Some((_, _, url)) = &self.gateway {
            c.env("HOOPX_GATEWAY", url);
        }
        for (k, v) in &self.exports {
            c.env(k, v);
        }
        // The secrets the README's config names come from the gateway's environment.
        c.env("PROD_DB_PASSWORD", "pw-example")
            .env("WEB_SSH_KEY", "key-example")
            .env("K8S_TOKEN", "token-example");
        for (k, v) in vars {
            c.env(k, v);
        }
        c.current_dir(self.env.path());
        c
    }

    /// Runs the docs' line as written (placeholders filled in) and returns what it did.
    fn run(&self, file: &str, cmd: &str, vars: &[(&str, &str)], stdin: &str) -> Output {
        let line = self.substitute(&self.docs.line(file, cmd));
        let out = run(self.sh(&line, vars), stdin, T);
        eprintln!("$ {line}\n{out:?}");
        out
    }

    /// Runs the line and checks its exit code and that stdout+stderr hold `shows`.
    fn expect(
        &self,
        file: &str,
        cmd: &str,
        vars: &[(&str, &str)],
        code: i32,
        shows: &str,
    ) -> Output {
        let out = self.run(file, cmd, vars, "");
        assert_eq!(
            out.code(),
            code,
            "{file}: `{cmd}` should exit {code}: {out:?}"
        );
        assert!(
            out.stdout.contains(shows) || out.stderr.contains(shows),
            "{file}: `{cmd}` should show {shows:?}: {out:?}"
        );
        out
    }

    /// Starts the docs' `gateway serve` line in the background and waits until it listens.
    fn serve(&mut self, file: &str, cmd: &str) {
        // Another gateway: what pointed at the last one no longer holds.
        self.exports.clear();
        if let Some((mut child, _, _)) = self.gateway.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let mut line = self.substitute(&self.docs.line(file, cmd));
        if !line.contains("--listen") {
            line.push_str(" --listen 127.0.0.1:0");
        }
        // `exec env`: the gateway is the child (killed at the end), assignments included.
        let mut c = self.sh(&format!("exec env {line}"), &[]);
        c.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        let stderr = Lines::collect(child.stderr.take().unwrap());
        let url = crate::util::listening_url(&mut child, &stderr);
        let addr = url.trim_start_matches("http://").to_string();
        self.set("https://gateway.internal", &url);
        self.set("https://gw.example.com", &url);
        self.set("http://127.0.0.1:8433", &url);
        self.set("127.0.0.1:8433", &addr);
        self.gateway = Some((child, stderr, url));
    }
}

/// `s` with every `word` that stands alone (not inside a longer name) replaced by `value`.
fn replace_word(s: &str, word: &str, value: &str) -> String {
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find(word) {
        let before = rest[..i].chars().next_back();
        let after = rest[i + word.len()..].chars().next();
        let alone = !word.starts_with(is_name) || before.is_none_or(|c| !is_name(c));
        let alone = alone && (!word.ends_with(is_name) || after.is_none_or(|c| !is_name(c)));
        out.push_str(&rest[..i]);
        out.push_str(if alone { value } else { word });
        rest = &rest[i + word.len()..];
    }
    out.push_str(rest);
    out
}

/// The first fenced block of `lang` in `file` that contains `needle`.
fn block(file: &str, lang: &str, needle: &str) -> String {
    let text = std::fs::read_to_string(format!("{}/{file}", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let mut open: Option<(String, String)> = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("```") {
            match open.take() {
                None => open = Some((rest.trim().to_string(), String::new())),
                Some((l, body)) => {
                    if l == lang && body.contains(needle) {
                        return body;
                    }
                }
            }
        } else if let Some((_, body)) = &mut open {
            body.push_str(line);
            body.push('\n');
        }
    }
    panic!("{file} has no {lang} block with {needle:?}");
}

/// The review id in an `exec` message or JSON answer.
fn review_id(text: &str) -> String {
    if let Some(i) = text.find("\"review_id\":\"") {
        let rest = &text[i + 13..];
        return rest[..rest.find('"').unwrap()].to_string();
    }
    let i = text.find("review ").expect("a review id");
    text[i + 7..]
        .split(|c: char| c == ',' || c.is_whitespace())
        .next()
        .unwrap()
        .to_string()
}

const BOB: (&str, &str) = ("HOOPX_TOKEN", "tok-bob-change-me");
/// alice: a DBA, and in the README's config an auditor (reads the ledger, exports).
const AUDITOR: (&str, &str) = ("HOOPX_TOKEN", "tok-alice-change-me");

fn prepare_database(pg: &Postgres) {
    pg.sql("postgres", "create role app login password 'pw-example'");
    pg.sql("postgres", "create database shop owner app");
    pg.sql(
        "shop",
        "set role app;
         create table customers (id int primary key, name text, email text);
         insert into customers values (1, 'Ada', 'ada@example.com'), (2, 'Grace', 'grace@example.com');
         create table orders (id int primary key, total numeric);
         insert into orders values (1, 10), (2, 20), (3, 30);
         create table carts (id int primary key, item text);
         insert into carts values (1, 'book'), (2, 'pen');
         create table users (id int primary key, name text);
         insert into users values (1, 'ada'), (2, 'grace');
         create table t (id int);
         insert into t values (1), (2)",
    );
}

#[test]
fn every_docs_example_runs_as_written() {
    let pg = Postgres::start();
    prepare_database(&pg);
    let env = Env::new();
    let mut w = World {
        env,
        pg,
        docs: Docs::load(DOCS),
        subst: Vec::new(),
        gateway: None,
        exports: Vec::new(),
    };
    let port = w.pg.port.to_string();
    // The README's gateway config, its postgres target on the test server.
    let config = block("README.md", "toml", "[[targets]]").replace(
        "host = \"db.internal\"",
        &format!("host = \"127.0.0.1\"\nport = {port}"),
    );
    w.env.write("gateway.toml", &config);
    // The operator's config (no --dev): one with an [auth] table, as docs/IDENTITY.md shows.
    w.env.write(
        "identity.toml",
        &block("docs/IDENTITY.md", "toml", "[auth]"),
    );
    w.set("/etc/hoopx/gateway.toml", "identity.toml");
    w.set(
        "postgres://hoopx@db/hoopx",
        &format!("postgres://hoopx@127.0.0.1:{port}/hoopx"),
    );
    w.set("0.0.0.0:8433", "127.0.0.1:0");
    w.env
        .write("report.sql", "select count(*) as orders from orders;\n");
    w.env.write(
        "migration.sql",
        "create table if not exists shipments (id int);\n",
    );
    let pg_env = [
        ("PGHOST", "127.0.0.1"),
        ("PGPORT", port.as_str()),
        ("PGUSER", "postgres"),
    ];

    // --- For operators: the store, the config check, the gateway.
    w.expect(
        "README.md",
        "createuser hoopx && createdb -O hoopx hoopx",
        &pg_env,
        0,
        "",
    );
    w.expect(
        "README.md",
        "hoopx gateway check --config gateway.toml --dev",
        &[],
        0,
        ": OK",
    );
    let check = w.expect(
        "README.md",
        "hoopx gateway check --config /etc/hoopx/gateway.toml --output json",
        &[],
        0,
        "\"ok\":true",
    );
    serde_json::from_str::<serde_json::Value>(&check.stdout).expect("JSON");
    w.serve(
        "README.md",
        "hoopx gateway serve --config gateway.toml --store postgres://hoopx@db/hoopx --dev",
    );

    // The README's `export` lines: what every later line gets in its environment.
    for cmd in [
        "export HOOPX_GATEWAY=https://gateway.internal",
        "export HOOPX_TOKEN=tok-bob-change-me",
    ] {
        let line = w.substitute(&w.docs.line("README.md", cmd));
        let (k, v) = line["export ".len()..].split_once('=').unwrap();
        w.exports.push((k.to_string(), v.to_string()));
    }
    assert_eq!(w.exports[0].1, w.gateway.as_ref().unwrap().2);

    // --- The first example, and what agents run.
    let out = w.expect(
        "README.md",
        "hoopx exec -- psql -c 'select * from customers limit 5'",
        &[BOB],
        0,
        "Grace",
    );
    assert!(
        !out.stdout.contains("grace@example.com"),
        "the email column is masked: {out:?}"
    );
    w.expect(
        "README.md",
        "hoopx exec --capture -- psql -c 'select count(*) from orders'",
        &[BOB],
        0,
        "\"status\":\"exited\"",
    );
    let out = w.expect(
        "README.md",
        "hoopx exec --output json -- psql -f report.sql",
        &[BOB],
        0,
        "\"event\":\"exit\"",
    );
    assert!(out.stdout.starts_with("{\"event\":\"session\""), "{out:?}");
    let out = w.expect(
        "README.md",
        "hoopx exec --target pg --no-wait --capture -- psql -c 'delete from carts'",
        &[BOB],
        75,
        "\"status\":\"approval_pending\"",
    );
    let id = review_id(&out.stdout);
    assert_eq!(
        w.pg.sql("shop", "select count(*) from carts"),
        "2",
        "nothing deleted yet"
    );
    w.set("REVIEW_ID", &id);
    w.set("3f1c…", &id);
    w.expect(
        "README.md",
        "HOOPX_TOKEN=tok-alice-change-me hoopx review list",
        &[],
        0,
        &id[..8],
    );
    w.expect(
        "README.md",
        "HOOPX_TOKEN=tok-alice-change-me hoopx review approve 3f1c… --reason \"ticket 42\"",
        &[],
        0,
        "",
    );
    w.expect(
        "README.md",
        "hoopx exec --target pg --review REVIEW_ID --capture -- psql -c 'delete from carts'",
        &[BOB],
        0,
        "DELETE 2",
    );
    assert_eq!(w.pg.sql("shop", "select count(*) from carts"), "0");

    // --- Approvals: the command waits while a reviewer approves it.
    let line = w.substitute(&w.docs.line(
        "README.md",
        "hoopx exec -- psql -c 'delete from users where id = 1'",
    ));
    let mut waiting = w.sh(&line, &[BOB]);
    waiting.stdin(Stdio::null());
    let (mut child, stdout, stderr) = crate::util::spawn_piped(waiting);
    let text = stderr.wait_for(
        "hoopx: waiting for approval of `psql -c 'delete from users where id = 1'` — review ",
        T,
    );
    let id = review_id(&text[text.find("waiting for approval").unwrap()..]);
    w.set("3f1c…", &id);
    assert!(text.contains("reviewers: dba"), "{text}");
    w.expect(
        "README.md",
        "HOOPX_TOKEN=tok-alice-change-me hoopx review list",
        &[],
        0,
        &id[..8],
    );
    w.expect(
        "README.md",
        "HOOPX_TOKEN=tok-alice-change-me hoopx review approve 3f1c… --reason \"ticket 42\"",
        &[],
        0,
        "",
    );
    let status = crate::util::wait_timeout(&mut child, T).expect("the approved command ends");
    assert_eq!(
        status.code(),
        Some(0),
        "{}\n{}",
        stdout.text(),
        stderr.text()
    );
    assert!(stdout.text().contains("DELETE 1"), "{}", stdout.text());
    assert_eq!(w.pg.sql("shop", "select count(*) from users"), "1");

    // --- Using it: interactive psql fed on stdin, pipes, sessions.
    for cmd in ["hoopx exec -- psql", "hoopx exec --target pg -- psql"] {
        let out = w.run("README.md", cmd, &[BOB], "select 40 + 2 as answer;\n");
        assert_eq!(out.code(), 0, "{out:?}");
        assert!(out.stdout.contains("42"), "{out:?}");
    }
    w.expect(
        "README.md",
        "hoopx exec --no-tty -- psql -f migration.sql",
        &[BOB],
        0,
        "CREATE TABLE",
    );
    w.expect("README.md", "hoopx status", &[BOB], 0, "bob");
    w.expect("docs/IDENTITY.md", "hoopx status", &[BOB], 0, "bob");
    let status = w.expect(
        "docs/IDENTITY.md",
        "hoopx status --output json",
        &[BOB],
        0,
        "bob",
    );
    serde_json::from_str::<serde_json::Value>(&status.stdout).expect("JSON");
    // A session with a refused statement: what replay, verify and export are shown on.
    let denied = run(
        w.sh("hoopx exec -- psql -c 'drop table orders'", &[BOB]),
        "",
        T,
    );
    assert_ne!(denied.code(), 0, "{denied:?}");
    assert!(denied.stderr.contains("no-drops"), "{denied:?}");
    assert_eq!(w.pg.sql("shop", "select count(*) from orders"), "3");
    let list = w.expect("README.md", "hoopx sessions list", &[BOB], 0, "psql");
    let session = list
        .stdout
        .lines()
        .nth(1)
        .and_then(|l| l.split_whitespace().next())
        .expect("a session id")
        .to_string();
    w.set("SESSION_ID", &session);
    w.set("SESSION", &session);
    w.expect(
        "README.md",
        "hoopx sessions show SESSION_ID",
        &[BOB],
        0,
        "(denied 1",
    );
    w.expect(
        "README.md",
        "hoopx sessions list --user bob --target pg --status exited --since 24h",
        &[BOB],
        0,
        "psql",
    );

    // --- Replay and verify.
    w.expect(
        "README.md",
        "hoopx replay last",
        &[BOB],
        0,
        "needs a migration",
    );
    w.expect(
        "README.md",
        "hoopx replay SESSION_ID --speed 4 --idle-limit 2",
        &[BOB],
        0,
        "ERROR",
    );
    w.expect(
        "README.md",
        "hoopx replay SESSION_ID --from denied",
        &[BOB],
        0,
        "ERROR",
    );
    w.expect(
        "README.md",
        "hoopx replay last --follow",
        &[BOB],
        0,
        "ERROR",
    );
    w.expect(
        "README.md",
        "hoopx replay last --format text | grep -i error",
        &[BOB],
        0,
        "ERROR:",
    );
    w.expect(
        "README.md",
        "hoopx replay last --format cast > s.cast && asciinema play s.cast",
        &[BOB],
        0,
        "ERROR",
    );
    w.expect(
        "docs/RECORDING.md",
        "hoopx replay last --format text | grep ERROR",
        &[BOB],
        0,
        "ERROR:",
    );
    w.expect(
        "docs/RECORDING.md",
        "hoopx replay last --format screen",
        &[BOB],
        0,
        "ERROR",
    );
    w.expect("README.md", "hoopx sessions show last", &[BOB], 0, "verif");
    w.expect("README.md", "hoopx verify last", &[BOB], 0, "OK");
    w.expect("README.md", "hoopx verify --all", &[AUDITOR], 0, "OK");
    w.expect(
        "docs/POSTGRES.md",
        "hoopx replay SESSION --format sql",
        &[BOB],
        0,
        "denied",
    );
    w.expect(
        "docs/POSTGRES.md",
        "hoopx sessions show SESSION",
        &[BOB],
        0,
        "statements",
    );
    w.expect("docs/POSTGRES.md", "hoopx verify SESSION", &[BOB], 0, "OK");

    // --- The auditor's workflow.
    let keys = w.expect(
        "README.md",
        "curl -s \"$HOOPX_GATEWAY/v1/keys\"",
        &[],
        0,
        "\"keys\"",
    );
    w.expect(
        "docs/RECORDING.md",
        "curl -s \"$HOOPX_GATEWAY/v1/keys\"",
        &[],
        0,
        "\"holder\":\"served\"",
    );
    let keys: serde_json::Value = serde_json::from_str(&keys.stdout).unwrap();
    let key = keys["keys"][0]["public_key"].as_str().unwrap().to_string();
    w.set("BASE64", &key);
    let all = w.expect(
        "docs/RECORDING.md",
        "hoopx verify --all --key BASE64",
        &[AUDITOR],
        0,
        "OK: the ledger's",
    );
    let head = all.stdout[all.stdout.find("head: ").expect("a head") + 6..]
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    w.set("HEAD", &head);
    w.expect(
        "docs/RECORDING.md",
        "hoopx verify --all --key BASE64 --head HEAD",
        &[AUDITOR],
        0,
        "OK",
    );
    w.expect(
        "README.md",
        "hoopx sessions export evidence --since 90d",
        &[AUDITOR],
        0,
        "exported",
    );
    w.expect(
        "README.md",
        "hoopx verify evidence --key BASE64",
        &[BOB],
        0,
        "OK: ",
    );
    w.expect(
        "docs/RECORDING.md",
        "hoopx sessions export evidence-2026-q4 --since 90d",
        &[AUDITOR],
        0,
        "exported",
    );
    w.expect(
        "docs/RECORDING.md",
        "hoopx verify evidence-2026-q4 --key BASE64",
        &[BOB],
        0,
        "OK: ",
    );
    for file in ["README.md", "docs/RECORDING.md"] {
        w.expect(
            file,
            "hoopx replay SESSION_ID --format json > s.jsonl",
            &[BOB],
            0,
            "",
        );
    }
    w.expect(
        "README.md",
        "hoopx verify s.jsonl --key BASE64",
        &[BOB],
        0,
        "OK: ",
    );
    w.expect(
        "docs/RECORDING.md",
        "hoopx verify s.jsonl --key BASE64",
        &[BOB],
        0,
        "signed by",
    );

    // --- Completions and man pages.
    w.expect(
        "README.md",
        "mkdir -p ~/.local/share/bash-completion/completions",
        &[],
        0,
        "",
    );
    w.expect(
        "README.md",
        "hoopx completion bash > ~/.local/share/bash-completion/completions/hoopx",
        &[],
        0,
        "",
    );
    let completion = std::fs::read_to_string(
        w.env
            .path()
            .join(".local/share/bash-completion/completions/hoopx"),
    )
    .unwrap();
    assert!(
        completion.contains("complete -F"),
        "a bash completion script"
    );
    w.expect(
        "README.md",
        "hoopx man exec | man -l -",
        &[("MANPAGER", "cat")],
        0,
        "hoopx",
    );

    // --- TARGETS.md: the postgres target from the README's gateway.
    let out = w.run(
        "docs/TARGETS.md",
        "hoopx exec --target pg -- psql",
        &[BOB],
        "select current_user;\n",
    );
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(out.stdout.contains("app"), "the target's user: {out:?}");

    // --- APPROVALS.md: its own config and dev identities, served as it says.
    w.env.write(
        "approvals.toml",
        &block("docs/APPROVALS.md", "toml", "tok-agent").replace(
            "host = \"127.0.0.1\"",
            &format!("host = \"127.0.0.1\"\nport = {port}"),
        ),
    );
    w.set("PROD_DB_PASSWORD=…", "PROD_DB_PASSWORD=pw-example");
    w.serve(
        "docs/APPROVALS.md",
        "PROD_DB_PASSWORD=… hoopx gateway serve --dev --config approvals.toml",
    );
    let line = w.substitute(&w.docs.line(
        "docs/APPROVALS.md",
        "HOOPX_TOKEN=tok-agent hoopx exec --gateway http://127.0.0.1:8433 -- psql -c 'delete from t'",
    ));
    let mut agent = w.sh(&line, &[]);
    agent.stdin(Stdio::null());
    let (mut child, stdout, stderr) = crate::util::spawn_piped(agent);
    let text = stderr.wait_for("— review ", T);
    let id = review_id(&text[text.find("waiting for approval").expect(&text)..]);
    w.set("ID", &id);
    w.expect(
        "docs/APPROVALS.md",
        "HOOPX_TOKEN=tok-alice hoopx review list --gateway http://127.0.0.1:8433",
        &[],
        0,
        &id[..8],
    );
    w.expect(
        "docs/APPROVALS.md",
        "HOOPX_TOKEN=tok-alice hoopx review approve ID --gateway http://127.0.0.1:8433",
        &[],
        0,
        "",
    );
    let status = crate::util::wait_timeout(&mut child, T).expect("the agent's command ends");
    assert_eq!(
        status.code(),
        Some(0),
        "{}\n{}",
        stdout.text(),
        stderr.text()
    );
    assert!(stdout.text().contains("DELETE 2"), "{}", stdout.text());

    // --- Nothing left out: every shell line ran above or says where it runs.
    w.docs.all_ran(ELSEWHERE);
}

/// The machine identity the operator guide's client lines run as: client credentials of the
/// test provider, in groups that may use the README's postgres target and audit.
const MACHINE: [(&str, &str); 2] = [
    ("HOOPX_CLIENT_ID", crate::oidc::CI_CLIENT),
    ("HOOPX_CLIENT_SECRET", crate::oidc::CI_SECRET),
];

/// Sends SIGTERM to the current gateway.
fn terminate(w: &World) {
    let (child, _, _) = w.gateway.as_ref().expect("a gateway");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
}

/// docs/OPERATIONS.md as an operator runs it: the README's config with an [auth] table for
/// a real OpenID provider (the guide's gateways run without `--dev`), a PostgreSQL store,
/// TLS with a private CA, metrics on their own port, the JSON log, export, verify, prune and
/// a drain.
#[test]
fn every_operations_guide_example_runs_as_written() {
    let pg = Postgres::start();
    prepare_database(&pg);
    let idp = crate::oidc::Idp::start(serde_json::json!({ "ci-bot": ["dba", "dev"] }), 600);
    let mut w = World {
        env: Env::new(),
        pg,
        docs: Docs::load(OPS_DOCS),
        subst: Vec::new(),
        gateway: None,
        exports: Vec::new(),
    };
    let port = w.pg.port.to_string();
    let readme = block("README.md", "toml", "[[targets]]").replace(
        "host = \"db.internal\"",
        &format!("host = \"127.0.0.1\"\nport = {port}"),
    );
    let config = format!(
        "[auth]\nissuer = \"{}\"\naudience = \"{}\"\ncli_client_id = \"hoopx-cli\"\ngroups_claim = \"groups\"\n\n{readme}",
        idp.issuer,
        crate::oidc::AUDIENCE
    );
    w.env.write("gateway.toml", &config);
    let store = format!("postgres://hoopx@127.0.0.1:{port}/hoopx");
    w.set("postgres://hoopx@db/hoopx", &store);
    w.set("0.0.0.0:8433", "127.0.0.1:0");
    let data = w.env.path().join("data/hoopx");
    w.set(
        "/etc/hoopx/gateway-signing.pem",
        &data.join("gateway-signing.pem").display().to_string(),
    );
    let evidence = w.env.path().join("evidence");
    w.set("/srv/evidence/2025-q1", &evidence.display().to_string());
    let out = run(
        {
            let mut c = Command::new(crate::util::pg_bin("createuser"));
            c.args(["-h", "127.0.0.1", "-p", &port, "-U", "postgres", "hoopx"]);
            c
        },
        "",
        T,
    );
    assert_eq!(out.code(), 0, "{out:?}");
    w.pg.sql("postgres", "create database hoopx owner hoopx");
    let session = |w: &World, sql: &str| -> Output {
        let out = run(
            w.sh(
                &format!("hoopx exec --target pg -- psql -c '{sql}'"),
                &MACHINE,
            ),
            "",
            T,
        );
        assert_eq!(out.code(), 0, "{out:?}");
        out
    };

    // --- Draining, retention and evidence: a gateway on the PostgreSQL store.
    w.serve(
        "docs/OPERATIONS.md",
        "hoopx gateway serve --config gateway.toml --store postgres://hoopx@db/hoopx --drain-grace 2m",
    );
    let url = w.gateway.as_ref().unwrap().2.clone();
    w.set("https://hoopx.example.com", &url);
    let out = session(&w, "select 41 + 1 as answer");
    assert!(out.stdout.contains("42"), "{out:?}");
    w.expect(
        "docs/OPERATIONS.md",
        "hoopx sessions export /srv/evidence/2025-q1 --since 100d",
        &MACHINE,
        0,
        "",
    );
    assert!(evidence.is_dir(), "the export wrote {}", evidence.display());
    w.expect(
        "docs/OPERATIONS.md",
        "hoopx verify /srv/evidence/2025-q1 --key \"$(curl -s https://hoopx.example.com/v1/keys | jq -r '.keys[0].public_key')\"",
        &[],
        0,
        "OK: 1 session",
    );
    // Nothing here ended 90 days ago: both prune and its dry run find none to remove.
    w.expect(
        "docs/OPERATIONS.md",
        "hoopx gateway prune --older-than 90d --store postgres://hoopx@db/hoopx --signing-key /etc/hoopx/gateway-signing.pem --dry-run",
        &[],
        0,
        "would prune 0 session(s)",
    );
    w.expect(
        "docs/OPERATIONS.md",
        "hoopx gateway prune --older-than 90d --store postgres://hoopx@db/hoopx --signing-key /etc/hoopx/gateway-signing.pem",
        &[],
        0,
        "pruned 0 session(s)",
    );
    // SIGTERM while a statement runs: readiness drops at once, the statement finishes
    // within the grace, then the gateway stops.
    let mut slow = w.sh(
        "hoopx exec --target pg -- psql -c 'select pg_sleep(3), 7 as seven'",
        &MACHINE,
    );
    slow.stdin(Stdio::null());
    let (mut slow, slow_out, slow_err) = crate::util::spawn_piped(slow);
    let ready = format!("{url}/v1/ready");
    crate::util::wait_for("the slow session to run", T, || {
        let (_, stderr, _) = w.gateway.as_ref().unwrap();
        stderr.text().contains("pg_sleep").then_some(())
    });
    terminate(&w);
    crate::util::wait_for("readiness to answer 503", T, || {
        let r = reqwest::blocking::get(&ready).ok()?;
        (r.status() == 503).then_some(())
    });
    let status = crate::util::wait_timeout(&mut slow, T).expect("the session ends");
    assert_eq!(
        status.code(),
        Some(0),
        "{}{}",
        slow_out.text(),
        slow_err.text()
    );
    assert!(slow_out.text().contains('7'), "{}", slow_out.text());
    {
        let (child, stderr, _) = w.gateway.as_mut().unwrap();
        let status = crate::util::wait_timeout(child, T).expect("the drained gateway stops");
        assert_eq!(status.code(), Some(0), "{}", stderr.text());
    }

    // --- The JSON log: every line one object; the access log names the identity.
    w.serve(
        "docs/OPERATIONS.md",
        "hoopx gateway serve --config gateway.toml --log-format json",
    );
    session(&w, "select 1");
    let log = {
        let (_, stderr, _) = w.gateway.as_ref().unwrap();
        stderr.wait_for("\"session ended\"", T)
    };
    let events: Vec<serde_json::Value> = log
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let opened = events
        .iter()
        .find(|e| e["message"] == "session opened")
        .expect("a `session opened` event");
    assert_eq!(opened["target"], "hoopx::access", "{opened}");
    assert_eq!(opened["identity"], crate::oidc::CI_CLIENT, "{opened}");
    assert_eq!(opened["level"], "INFO", "{opened}");

    // --- Metrics on their own port.
    let metrics = format!("127.0.0.1:{}", crate::util::free_port());
    w.set("127.0.0.1:9433", &metrics);
    w.serve(
        "docs/OPERATIONS.md",
        "hoopx gateway serve --config gateway.toml --metrics-listen 127.0.0.1:9433",
    );
    session(&w, "select 1");
    let out = w.expect(
        "docs/OPERATIONS.md",
        "curl -s http://127.0.0.1:9433/metrics",
        &[],
        0,
        "# TYPE hoopx_sessions_open gauge",
    );
    assert!(
        out.stdout
            .contains("hoopx_sessions_started_total{target=\"pg\"} 1"),
        "{out:?}"
    );

    // --- TLS with a private CA.
    let (ca, cert, key) = crate::operations::issue("hoopx docs CA");
    for (name, pem) in [("ca.pem", &ca), ("tls.crt", &cert), ("tls.key", &key)] {
        let path = w.env.write(name, pem);
        w.set(&format!("/etc/hoopx/{name}"), &path.display().to_string());
    }
    w.serve(
        "docs/OPERATIONS.md",
        "hoopx gateway serve --config gateway.toml --listen 0.0.0.0:8433 --tls-cert /etc/hoopx/tls.crt --tls-key /etc/hoopx/tls.key",
    );
    let url = w.gateway.as_ref().unwrap().2.clone();
    assert!(url.starts_with("https://"), "{url}");
    w.set("https://gateway.internal:8433", &url);
    let line = w.substitute(
        &w.docs
            .line("docs/OPERATIONS.md", "export HOOPX_CA=/etc/hoopx/ca.pem"),
    );
    let (k, v) = line["export ".len()..].split_once('=').unwrap();
    w.exports.push((k.to_string(), v.to_string()));
    let out = w.run(
        "docs/OPERATIONS.md",
        "hoopx exec --gateway https://gateway.internal:8433 -- psql",
        &MACHINE,
        "select 6 * 7 as answer;\n",
    );
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(out.stdout.contains("42"), "{out:?}");

    // --- The guide's JSON blocks parse.
    let text =
        std::fs::read_to_string(format!("{}/docs/OPERATIONS.md", env!("CARGO_MANIFEST_DIR")))
            .unwrap();
    let mut json = 0;
    for piece in text.split("```json\n").skip(1) {
        let body = &piece[..piece.find("```").unwrap()];
        serde_json::from_str::<serde_json::Value>(body)
            .unwrap_or_else(|e| panic!("docs/OPERATIONS.md: not JSON ({e}): {body}"));
        json += 1;
    }
    assert!(json >= 1, "the guide's JSON examples were found");

    w.docs.all_ran(OPS_ELSEWHERE);
}

/// Every TOML block of the docs is a config `hoopx gateway check` accepts: a whole config
/// as it is, a fragment (rules, a table) added to the targets of the README's config, which
/// the fragments name. Secret files the examples name (`/run/secrets/…`) are made here.
#[test]
fn every_docs_config_is_accepted() {
    let env = Env::new();
    let readme = block("README.md", "toml", "[[targets]]");
    let targets = &readme[..readme.find("[rules]").expect("the README's [rules]")];
    let secrets = env.path().join("secrets");
    std::fs::create_dir(&secrets).unwrap();
    // A real certificate where the examples name a PEM file (a CA, a client certificate).
    let cert = env.path().join("cert.pem");
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ed25519",
            "-nodes",
            "-subj",
            "/CN=example",
            "-days",
            "1",
            "-keyout",
        ])
        .arg(env.path().join("key.pem"))
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl (scripts/deps.sh installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut checked = 0;
    for file in DOCS.iter().chain(OPS_DOCS) {
        let text =
            std::fs::read_to_string(format!("{}/{file}", env!("CARGO_MANIFEST_DIR"))).unwrap();
        let mut open: Option<(String, String, usize)> = None;
        for (n, line) in text.lines().enumerate() {
            if let Some(rest) = line.strip_prefix("```") {
                match open.take() {
                    None => open = Some((rest.trim().to_string(), String::new(), n + 1)),
                    Some((lang, body, at)) if lang == "toml" => {
                        let mut config = if body.contains("[[targets]]") {
                            body
                        } else {
                            format!("{targets}\n{body}")
                        };
                        for dir in ["/run/secrets/", "/etc/hoopx/"] {
                            while let Some(i) = config.find(dir) {
                                let end = config[i..].find('"').map(|e| i + e).unwrap();
                                let name = config[i + dir.len()..end].to_string();
                                let path = secrets.join(&name);
                                if name.ends_with(".pem") {
                                    std::fs::copy(&cert, &path).unwrap();
                                } else {
                                    std::fs::write(&path, "secret-example").unwrap();
                                }
                                config.replace_range(i..end, &path.display().to_string());
                            }
                        }
                        let path = env.write("doc.toml", &config);
                        let mut c = env.hoopx();
                        c.env("PROD_DB_PASSWORD", "pw-example")
                            .env("WEB_SSH_KEY", "key-example")
                            .env("K8S_TOKEN", "token-example")
                            .env("GCP_TOKEN", "token-example")
                            .args(["gateway", "check", "--dev", "--config"])
                            .arg(&path);
                        let out = run(c, "", T);
                        assert_eq!(out.code(), 0, "{file}:{at}: {out:?}\n{config}");
                        checked += 1;
                    }
                    Some(_) => {}
                }
            } else if let Some((_, body, _)) = &mut open {
                body.push_str(line);
                body.push('\n');
            }
        }
    }
    assert!(
        checked >= 10,
        "the docs' TOML blocks were found ({checked})"
    );
}
