//! The command-line interface as a contract: `--help` of every subcommand and the shape of
//! every JSON output are snapshots (a change shows up in review; `UPDATE_SNAPSHOTS=1 cargo
//! test interface` rewrites them), usage errors exit 64, odd input never panics, and color
//! follows `--color` and `NO_COLOR`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::CommandFactory;
use serde_json::Value;

use crate::util::{run, Env, Gateway, PtyChild};
use crate::SHELL_CONFIG;

const T: Duration = Duration::from_secs(30);

fn snapshot_dir(kind: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots")
        .join(kind)
}

/// Compares `actual` with the snapshot file, or writes it under `UPDATE_SNAPSHOTS=1`.
/// Returns a complaint, if any.
fn check_snapshot(path: &Path, actual: &str) -> Option<String> {
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, actual).unwrap();
        return None;
    }
    match std::fs::read_to_string(path) {
        Ok(expected) if expected == actual => None,
        Ok(expected) => Some(format!(
            "{} changed (UPDATE_SNAPSHOTS=1 to accept):\n--- expected\n{expected}\n--- actual\n{actual}",
            path.display()
        )),
        Err(_) => Some(format!(
            "{} is missing (UPDATE_SNAPSHOTS=1 to create it)",
            path.display()
        )),
    }
}

/// Every visible subcommand path: [], ["exec"], ["gateway", "serve"], …
fn command_paths() -> Vec<Vec<String>> {
    fn walk(cmd: &clap::Command, prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
        out.push(prefix.clone());
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            let mut p = prefix.clone();
            p.push(sub.get_name().to_string());
            walk(sub, p, out);
        }
    }
    let mut out = Vec::new();
    walk(&hoopx::cli::Cli::command(), Vec::new(), &mut out);
    out
}

#[test]
fn help_of_every_subcommand_matches_its_snapshot() {
    let env = Env::new();
    let dir = snapshot_dir("help");
    let mut problems = Vec::new();
    let mut expected_files = Vec::new();
    for path in command_paths() {
        let name = if path.is_empty() {
            "hoopx.txt".to_string()
        } else {
            format!("hoopx-{}.txt", path.join("-"))
        };
        let mut c = env.hoopx();
        c.args(&path).arg("--help").env("NO_COLOR", "1");
        let out = run(c, "", T);
        assert_eq!(out.code(), 0, "{path:?}: {out:?}");
        if let Some(p) = check_snapshot(&dir.join(&name), &out.stdout) {
            problems.push(p);
        }
        expected_files.push(name);
    }
    // A snapshot of a subcommand that no longer exists is stale.
    for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !expected_files.contains(&name) {
            problems.push(format!("stale snapshot {name}: no such subcommand"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}

/// A JSON value's shape: objects keep their keys, arrays their first element, and every
/// other value becomes its type name.
fn shape(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), shape(v))).collect()),
        Value::Array(a) => Value::Array(a.first().map(shape).into_iter().collect()),
        Value::String(_) => "string".into(),
        Value::Number(_) => "number".into(),
        Value::Bool(_) => "bool".into(),
        Value::Null => "null".into(),
    }
}

const REVIEW_CONFIG: &str = r#"
[[rules.review]]
name = "deploys"
pattern = '\bdeploy\b'
reviewers = ["leads"]

[[dev.identities]]
name = "lena"
token = "tok-lena-00001"
groups = ["leads"]
"#;

#[test]
fn json_outputs_keep_their_shape() {
    let env = Env::new();
    let config = format!("{SHELL_CONFIG}{REVIEW_CONFIG}");
    let gw = Gateway::start(&env, Some(&config), None);
    let hoopx = |args: &[&str], stdin: &str| {
        let mut c = gw.hoopx(&env);
        c.args(args);
        run(c, stdin, T)
    };
    let mut shapes: Vec<(&str, Value)> = Vec::new();
    let json = |text: &str| -> Value {
        serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
    };

    let out = hoopx(
        &[
            "exec",
            "--capture",
            "--",
            "sh",
            "-c",
            "echo hi; echo x@example.com >&2",
        ],
        "",
    );
    shapes.push(("exec-capture", shape(&json(&out.stdout))));
    let out = hoopx(
        &["exec", "--output", "json", "--", "cat"],
        "one\nrm -rf /\n",
    );
    let events: Vec<Value> = out.stdout.lines().map(json).collect();
    // One shape per event kind, in order of first appearance.
    let mut by_kind = serde_json::Map::new();
    for e in &events {
        let kind = e["event"].as_str().unwrap().to_string();
        by_kind.entry(kind).or_insert_with(|| shape(e));
    }
    shapes.push(("exec-events", Value::Object(by_kind)));
    let out = hoopx(
        &[
            "exec",
            "--no-wait",
            "--output",
            "json",
            "--",
            "sh",
            "-c",
            "echo deploy",
        ],
        "",
    );
    assert_eq!(out.code(), 75, "{out:?}");
    let pending: Vec<Value> = out.stdout.lines().map(json).collect();
    shapes.push((
        "exec-approval-pending",
        Value::Array(pending.iter().map(shape).collect()),
    ));
    let review_id = pending[0]["review_id"].as_str().unwrap().to_string();
    let mut c = gw.hoopx(&env);
    c.env("HOOPX_TOKEN", "tok-lena-00001")
        .args(["review", "approve", &review_id, "--yes", "--output", "json"]);
    let approved = run(c, "", T);
    shapes.push(("review-approve", shape(&json(&approved.stdout))));
    let out = hoopx(&["review", "list", "--output", "json"], "");
    shapes.push(("review-list", shape(&json(&out.stdout))));
    let out = hoopx(&["sessions", "list", "--output", "json"], "");
    shapes.push(("sessions-list", shape(&json(&out.stdout))));
    let out = hoopx(&["sessions", "show", "last", "--output", "json"], "");
    shapes.push(("sessions-show", shape(&json(&out.stdout))));
    let out = hoopx(&["verify", "last", "--output", "json"], "");
    shapes.push(("verify", shape(&json(&out.stdout))));
    let out = hoopx(&["verify", "--all", "--output", "json"], "");
    shapes.push(("verify-all", shape(&json(&out.stdout))));
    let dir = env.path().join("evidence");
    let out = hoopx(
        &[
            "sessions",
            "export",
            dir.to_str().unwrap(),
            "--output",
            "json",
        ],
        "",
    );
    shapes.push(("sessions-export", shape(&json(&out.stdout))));
    let mut c = env.hoopx();
    c.args(["verify", dir.to_str().unwrap(), "--output", "json"]);
    let out = run(c, "", T);
    shapes.push(("verify-export", shape(&json(&out.stdout))));
    let out = hoopx(&["status", "--output", "json"], "");
    assert_eq!(out.code(), 0, "{out:?}");
    shapes.push(("status", shape(&json(&out.stdout))));
    let cfg = env.write("check.toml", SHELL_CONFIG);
    let out = hoopx(
        &[
            "gateway",
            "check",
            "--dev",
            "--config",
            cfg.to_str().unwrap(),
            "--output",
            "json",
        ],
        "",
    );
    shapes.push(("gateway-check", shape(&json(&out.stdout))));
    let bad = env.write("bad.toml", "[[targets]]\nname = 1\n");
    let out = hoopx(
        &[
            "gateway",
            "check",
            "--dev",
            "--config",
            bad.to_str().unwrap(),
            "--output",
            "json",
        ],
        "",
    );
    assert_eq!(out.code(), 78, "{out:?}");
    shapes.push(("gateway-check-error", shape(&json(&out.stdout))));

    let dir = snapshot_dir("json");
    let problems: Vec<String> = shapes
        .iter()
        .filter_map(|(name, v)| {
            check_snapshot(
                &dir.join(format!("{name}.json")),
                &(serde_json::to_string_pretty(v).unwrap() + "\n"),
            )
        })
        .collect();
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}

#[test]
fn usage_errors_exit_64_and_odd_input_never_panics() {
    let env = Env::new();
    for args in [
        vec!["--no-such-flag"],
        vec!["no-such-command"],
        vec!["exec"],
        vec!["exec", "--tty", "--output", "json", "--", "true"],
        vec!["exec", "--approval-timeout", "soon", "--", "true"],
        vec!["exec", "--capture-limit", "10", "--", "true"],
        vec!["sessions", "list", "--limit", "0"],
        vec!["sessions", "list", "--status", "sleeping"],
        vec!["review", "reject", "some-id"],
        vec!["review", "list", "--status", "maybe"],
        vec!["replay"],
        vec!["--color", "sometimes", "sessions", "list"],
    ] {
        let mut c = env.hoopx();
        c.args(&args);
        let out = run(c, "", T);
        assert_eq!(out.code(), 64, "{args:?}: {out:?}");
        assert!(!out.stderr.contains("panicked"), "{args:?}: {out:?}");
        // Usage errors read like every other failure (`exec` alone prints help instead).
        if args != ["exec"] && args != ["replay"] {
            assert!(out.stderr.starts_with("hoopx: "), "{args:?}: {out:?}");
            assert!(!out.stderr.contains("\nerror: "), "{args:?}: {out:?}");
        }
    }
    // Arguments that are not UTF-8, empty, or huge: a clear message, never a panic.
    use std::os::unix::ffi::OsStrExt;
    let huge = "x".repeat(100_000);
    let odd: Vec<Vec<std::ffi::OsString>> = vec![
        vec![std::ffi::OsStr::from_bytes(b"\xff\xfe").into()],
        vec![
            "sessions".into(),
            "show".into(),
            std::ffi::OsStr::from_bytes(b"id\xff").into(),
        ],
        vec!["sessions".into(), "show".into(), "".into()],
        vec!["replay".into(), huge.clone().into()],
        vec!["verify".into(), "/dev/null".into()],
        vec!["review".into(), "show".into(), "../../etc/passwd".into()],
    ];
    for args in odd {
        let mut c = env.hoopx();
        c.args(&args);
        let out = run(c, "", T);
        assert!(out.status.code().is_some_and(|c| c != 101), "{out:?}");
        assert!(!out.stderr.contains("panicked"), "{out:?}");
        assert!(
            !out.stderr.contains(" { ") && !out.stderr.contains("Os {"),
            "no Rust debug formatting: {out:?}"
        );
        assert!(out.stderr.starts_with("hoopx: "), "{out:?}");
    }
}

#[test]
fn color_follows_the_flag_the_terminal_and_no_color() {
    let env = Env::new();
    let failing = |extra: &[&str]| {
        let mut c = env.hoopx();
        c.args([
            "sessions",
            "show",
            "no-such-session",
            "--gateway",
            "http://127.0.0.1:9",
        ])
        .args(extra);
        c
    };
    // Piped stderr: no color unless asked for.
    let out = run(failing(&[]), "", T);
    assert_eq!(out.code(), 69, "{out:?}");
    assert!(!out.stderr.contains('\x1b'), "{out:?}");
    let out = run(failing(&["--color", "always"]), "", T);
    assert!(out.stderr.contains("\x1b[1;31m"), "{out:?}");
    // On a terminal: color by default, none with NO_COLOR or --color never.
    let on_tty = |cmd: std::process::Command| {
        let mut p = PtyChild::spawn(cmd, 100, 20);
        p.wait(T);
        p.output.wait_for("embedded gateway", T)
    };
    assert!(on_tty(failing(&[])).contains("\x1b[1;31m"));
    let mut c = failing(&[]);
    c.env("NO_COLOR", "1");
    assert!(!on_tty(c).contains('\x1b'));
    assert!(!on_tty(failing(&["--color", "never"])).contains('\x1b'));
}
