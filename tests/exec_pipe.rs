//! `hoopx exec -- psql` in pipe mode against a real PostgreSQL through a real gateway.

use std::time::Duration;

use crate::util::{run, Env, Gateway, Postgres};
use crate::EXAMPLE_CONFIG;

const T: Duration = Duration::from_secs(60);

fn setup() -> (Env, Postgres, Gateway) {
    let env = Env::new();
    let pg = Postgres::start();
    pg.create_db("app");
    pg.sql(
        "app",
        "create table users (id int primary key, name text, email text); \
         insert into users values (1, 'Alice', 'alice@example.com'), (2, 'Bob', 'bob.smith@corp.example.org');",
    );
    let gw = Gateway::start(&env, Some(&pg.config(EXAMPLE_CONFIG)), None);
    (env, pg, gw)
}

fn psql(gw: &Gateway, env: &Env, _pg: &Postgres, extra: &[&str]) -> std::process::Command {
    let mut c = gw.hoopx(env);
    c.args(["exec", "--no-tty", "--", "psql"])
        .args(["-X", "app"])
        .args(extra);
    c
}

#[test]
fn psql_output_is_masked_and_stdout_stderr_stay_apart() {
    let (env, pg, gw) = setup();
    let out = run(
        psql(
            &gw,
            &env,
            &pg,
            &["-c", "select id, email from users order by id"],
        ),
        "",
        T,
    );
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(out.stdout.contains("[REDACTED:email]"), "{out:?}");
    assert!(!out.stdout.contains("alice@example.com"), "{out:?}");
    assert!(!out.stdout.contains("bob.smith"), "{out:?}");
    assert!(out.stdout.contains("(2 rows)"), "{out:?}");

    // An error goes to stderr only, and psql's exit code comes through.
    let out = run(
        psql(&gw, &env, &pg, &["-c", "select nosuchcolumn from users"]),
        "",
        T,
    );
    assert_eq!(out.code(), 1, "{out:?}");
    assert!(out.stderr.contains("nosuchcolumn"), "{out:?}");
    assert!(!out.stdout.contains("nosuchcolumn"), "{out:?}");
}

#[test]
fn stdin_is_streamed_to_psql_and_eof_ends_it() {
    let (env, pg, gw) = setup();
    let out = run(
        psql(&gw, &env, &pg, &["-v", "ON_ERROR_STOP=1", "-At"]),
        "insert into users values (3, 'Carol', 'carol@example.net');\nselect count(*) from users;\n",
        T,
    );
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(out.stdout.contains("INSERT 0 1"), "{out:?}");
    assert!(out.stdout.lines().any(|l| l.trim() == "3"), "{out:?}");
    assert_eq!(
        pg.sql("app", "select name from users where id = 3"),
        "Carol"
    );
}

#[test]
fn a_denied_input_line_never_reaches_the_database() {
    let (env, pg, gw) = setup();
    let out = run(
        psql(&gw, &env, &pg, &["-At"]),
        "select count(*) from users;\nDROP TABLE users;\nselect 40 + 2;\n",
        T,
    );
    assert_eq!(out.code(), 77, "{out:?}");
    assert!(out.stderr.contains("no-drop-table"), "{out:?}");
    // The lines around the denied one ran.
    assert!(out.stdout.lines().any(|l| l.trim() == "2"), "{out:?}");
    assert!(out.stdout.lines().any(|l| l.trim() == "42"), "{out:?}");
    // The database shows the statement did not run.
    assert_eq!(pg.sql("app", "select count(*) from users"), "2");
}

#[test]
fn a_denied_command_line_never_starts_psql() {
    let (env, pg, gw) = setup();
    let out = run(psql(&gw, &env, &pg, &["-c", "drop  table users"]), "", T);
    assert_eq!(out.code(), 77, "{out:?}");
    assert!(out.stderr.contains("no-drop-table"), "{out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");
    assert_eq!(pg.sql("app", "select count(*) from users"), "2");
    // The refusal is on record.
    let list = run(
        {
            let mut c = gw.hoopx(&env);
            c.args(["sessions", "list", "--output", "json"]);
            c
        },
        "",
        T,
    );
    let sessions: serde_json::Value = serde_json::from_str(&list.stdout).unwrap();
    assert_eq!(sessions[0]["status"], "denied", "{list:?}");
}

#[test]
fn a_program_the_target_does_not_run_is_refused() {
    let env = Env::new();
    let gw = Gateway::start(&env, Some(EXAMPLE_CONFIG), None);
    let marker = env.path().join("ran");
    let mut c = gw.hoopx(&env);
    c.args(["exec", "--target", "pg", "--", "sh", "-c"])
        .arg(format!("touch {}", marker.display()));
    let out = run(c, "", T);
    assert_eq!(out.code(), 77, "{out:?}");
    assert!(!marker.exists());
    // Without --target, no target runs `sh`.
    let mut c = gw.hoopx(&env);
    c.args(["exec", "--", "sh", "-c", "true"]);
    let out = run(c, "", T);
    assert_eq!(out.code(), 64, "{out:?}");
    assert!(out.stderr.contains("no target"), "{out:?}");
}

#[test]
fn sessions_are_recorded_with_identity_target_argv_and_exit() {
    let (env, pg, gw) = setup();
    let out = run(
        psql(
            &gw,
            &env,
            &pg,
            &[
                "-c",
                "select email from users where email <> 'carol@example.net'",
            ],
        ),
        "",
        T,
    );
    assert_eq!(out.code(), 0, "{out:?}");
    let mut c = gw.hoopx(&env);
    c.args(["sessions", "list", "--output", "json"]);
    let list = run(c, "", T);
    let v: serde_json::Value = serde_json::from_str(&list.stdout).expect("json");
    let s = &v[0];
    assert_eq!(s["identity"], "dev");
    assert_eq!(s["target"], "pg");
    assert_eq!(s["argv"][0], "psql");
    assert!(
        !s["argv"].to_string().contains("carol@"),
        "the stored command line is masked: {s}"
    );
    assert_eq!(s["status"], "exited");
    assert_eq!(s["exit_code"], 0);
    assert!(s["ended_at"].as_i64().unwrap() >= s["started_at"].as_i64().unwrap());
    assert!(s["event_count"].as_i64().unwrap() >= 2, "{s}");
    // The recording holds only masked output.
    let id = s["id"].as_str().unwrap();
    let events: serde_json::Value = reqwest::blocking::Client::new()
        .get(format!("{}/v1/sessions/{id}/events", gw.url))
        .bearer_auth(crate::util::DEV_TOKEN)
        .send()
        .unwrap()
        .json()
        .unwrap();
    use base64::Engine;
    let all: Vec<u8> = events
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|e| {
            base64::engine::general_purpose::STANDARD
                .decode(e["data"].as_str().unwrap())
                .unwrap()
        })
        .collect();
    let all = String::from_utf8_lossy(&all);
    assert!(all.contains("[REDACTED:email]"), "{all}");
    assert!(!all.contains("alice@example.com"), "{all}");
    assert!(events.as_array().unwrap().iter().any(|e| e["kind"] == "x"));
    // The gateway's access log has one line for the start and one for the end.
    let log = gw.stderr.wait_for(
        &format!("session ended session={id} status=exited exit=0"),
        T,
    );
    assert!(
        log.contains(&format!(
            "session opened session={id} identity=dev target_name=pg mode=pipe"
        )),
        "{log}"
    );
    assert!(log.contains("[REDACTED:email]"), "{log}");
    assert!(
        !log.contains("carol@example.net"),
        "the logged command line is masked: {log}"
    );
}

#[test]
fn embedded_default_runs_without_any_gateway_and_lists_sessions() {
    let env = Env::new();
    let mut c = env.hoopx();
    c.args([
        "exec",
        "--",
        "sh",
        "-c",
        "echo mail me at jane@example.com; exit 7",
    ]);
    let out = run(c, "", T);
    assert_eq!(out.code(), 7, "{out:?}");
    assert_eq!(out.stdout, "mail me at [REDACTED:email]\n", "{out:?}");
    assert!(env.path().join("data/hoopx/embedded.db").exists());
    let mut c = env.hoopx();
    c.args(["sessions", "list"]);
    let list = run(c, "", T);
    assert_eq!(list.code(), 0, "{list:?}");
    assert!(list.stdout.contains("exited"), "{list:?}");
    assert!(
        list.stdout.contains("sh -c 'echo mail me"),
        "quoted as a shell would: {list:?}"
    );
    let id = list
        .stdout
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let mut c = env.hoopx();
    c.args(["sessions", "show", &id, "--output", "json"]);
    let show = run(c, "", T);
    let v: serde_json::Value = serde_json::from_str(&show.stdout).expect("json");
    assert_eq!(v["id"], id.as_str());
    assert_eq!(v["exit_code"], 7);
    assert_eq!(v["target"], "local");
    let mut c = env.hoopx();
    c.args(["sessions", "show", "no-such-session"]);
    let missing = run(c, "", T);
    assert_eq!(missing.code(), 1, "{missing:?}");
    assert!(missing.stderr.contains("no session"), "{missing:?}");
}

#[test]
fn a_targets_plain_environment_reaches_the_tool() {
    let env = Env::new();
    let config = format!(
        "{}\n[[targets]]\nname = \"greeter\"\nkind = \"command\"\ncommand = [\"env\"]\nenv = {{ GREETING = \"hello from the target\" }}\n",
        crate::SHELL_CONFIG
    );
    let gw = Gateway::start(&env, Some(&config), None);
    let mut c = gw.hoopx(&env);
    c.args(["exec", "--", "env"]);
    let out = run(c, "", T);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(
        out.stdout.contains("GREETING=hello from the target"),
        "{out:?}"
    );
}

#[test]
fn signals_come_through_as_128_plus_n() {
    let env = Env::new();
    let mut c = env.hoopx();
    c.args(["exec", "--", "sh", "-c", "kill -TERM $$"]);
    let out = run(c, "", T);
    assert_eq!(out.code(), 128 + 15, "{out:?}");
}

#[test]
fn long_lines_and_binary_output_pass_through_intact() {
    let env = Env::new();
    // One 600 KiB line: longer than a frame carries, so the gateway releases it in parts.
    let line: String = (0..600 * 1024)
        .map(|i| (b'a' + (i % 26) as u8) as char)
        .collect();
    let mut c = env.hoopx();
    c.args(["exec", "--", "wc", "-c"]);
    let out = run(c, &format!("{line}\n"), T);
    assert_eq!(out.code(), 0, "{out:?}");
    assert_eq!(out.stdout.trim(), (600 * 1024 + 1).to_string());
    let mut c = env.hoopx();
    c.args(["exec", "--", "cat"]);
    let out = run(c, &format!("{line}\n{line}"), T);
    assert_eq!(
        out.stdout,
        format!("{line}\n{line}"),
        "no byte lost or reordered"
    );
}

#[test]
fn a_closed_stdout_stops_the_tool_like_a_pipe_would() {
    let env = Env::new();
    let mut c = env.hoopx();
    c.args(["exec", "--", "yes", "endless"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut first = [0u8; 8];
    std::io::Read::read_exact(&mut out, &mut first).unwrap();
    assert_eq!(&first, b"endless\n");
    drop(out);
    let status =
        crate::util::wait_timeout(&mut child, T).expect("hoopx ends when its reader is gone");
    assert_eq!(
        status.code(),
        Some(128 + 13),
        "yes dies of SIGPIPE, as in a shell pipeline"
    );
}

#[test]
fn a_tool_that_ignores_sigpipe_still_stops_when_stdout_closes() {
    let env = Env::new();
    let mut c = env.hoopx();
    c.args([
        "exec",
        "--",
        "sh",
        "-c",
        "trap '' PIPE; while :; do echo y || exit 9; done",
    ])
    .stdin(std::process::Stdio::null())
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut first = [0u8; 2];
    std::io::Read::read_exact(&mut out, &mut first).unwrap();
    drop(out);
    let status = crate::util::wait_timeout(&mut child, T).expect("hoopx ends");
    assert_eq!(
        status.code(),
        Some(9),
        "its writes fail once hoopx closes its stdout"
    );
}

#[test]
fn a_slow_reader_loses_no_output_after_the_tool_exits() {
    let env = Env::new();
    let mut c = env.hoopx();
    // The tool writes 3 MB and exits at once; the reader pauses before reading any of it.
    c.args([
        "exec",
        "--",
        "sh",
        "-c",
        "head -c 3000000 /dev/zero | tr '\\0' a",
    ])
    .stdin(std::process::Stdio::null())
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    let mut out = child.stdout.take().unwrap();
    std::thread::sleep(Duration::from_secs(4)); // the stimulus: a consumer that is slow to start
    let mut all = Vec::new();
    std::io::Read::read_to_end(&mut out, &mut all).unwrap();
    assert_eq!(all.len(), 3_000_000);
    assert!(all.iter().all(|&b| b == b'a'));
    assert_eq!(
        crate::util::wait_timeout(&mut child, T).unwrap().code(),
        Some(0)
    );
}

#[test]
fn the_tool_never_sees_the_callers_token_or_terminal() {
    let env = Env::new();
    let gw = Gateway::start(&env, Some(crate::SHELL_CONFIG), None);
    let mut c = gw.hoopx(&env);
    c.args([
        "exec",
        "--",
        "sh",
        "-c",
        "echo \"token=[${HOOPX_TOKEN:-none}]\"",
    ]);
    let out = run(c, "", T);
    assert_eq!(out.stdout, "token=[none]\n", "{out:?}");

    // Pipe mode on a terminal: the tool has no controlling terminal to go around the gateway.
    let mut c = gw.hoopx(&env);
    c.args([
        "exec",
        "--no-tty",
        "--",
        "sh",
        "-c",
        "if (exec 3</dev/tty) 2>/dev/null; then echo TTY-OPEN; else echo NO-TTY; fi",
    ]);
    let mut p = crate::util::PtyChild::spawn(c, 80, 24);
    assert_eq!(p.wait(T).code(), Some(0));
    let screen = p.output.wait_for("TTY", T);
    assert!(screen.contains("NO-TTY"), "{screen}");
}

#[test]
fn secrets_never_reach_the_store_unmasked() {
    let env = Env::new();
    let secret = "s3cr3t-Passw0rd-XYZ";
    let mut c = env.hoopx();
    c.args([
        "exec",
        "--",
        "sh",
        "-c",
        "cat >/dev/null; echo \"url $1\"",
        "sh",
        &format!("postgres://app:{secret}@db:5432/x"),
    ]);
    let out = run(c, &format!("password={secret}\n"), T);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(!out.stdout.contains(secret), "{out:?}");
    // Nothing under the data directory holds it: not the argv, the input, or the output.
    let mut files = vec![env.path().join("data")];
    let mut seen = 0;
    while let Some(p) = files.pop() {
        if p.is_dir() {
            files.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
        } else {
            seen += 1;
            let bytes = std::fs::read(&p).unwrap();
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{} holds the secret",
                p.display()
            );
        }
    }
    assert!(seen > 0, "the store was written");
}
