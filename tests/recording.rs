//! The recording as audit evidence: verify, tampering in the store and in exported files,
//! exports a standard asciinema plays, text replay of real psql sessions, strict recording.

use std::process::Command;
use std::time::Duration;

use base64::Engine as _;

use crate::util::{run, spawn_piped, Env, Gateway, LongTool, Output, Postgres, PtyChild};
use crate::{EXAMPLE_CONFIG, SHELL_CONFIG};

const T: Duration = Duration::from_secs(60);

/// Runs `sh -c script` through the gateway; returns the session id.
fn session(gw: &Gateway, env: &Env, script: &str) -> String {
    let mut c = gw.hoopx(env);
    c.args(["exec", "--no-tty", "--", "sh", "-c", script]);
    let out = run(c, "", T);
    assert_eq!(out.code(), 0, "{out:?}");
    newest(gw, env)
}

fn newest(gw: &Gateway, env: &Env) -> String {
    let mut c = gw.hoopx(env);
    c.args(["sessions", "list", "--limit", "1", "--output", "json"]);
    let out = run(c, "", T);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("sessions list JSON");
    v[0]["id"].as_str().expect("an id").to_string()
}

fn hoopx(gw: &Gateway, env: &Env, args: &[&str]) -> Output {
    let mut c = gw.hoopx(env);
    c.args(args);
    run(c, "", T)
}

/// `hoopx verify` with no gateway configured at all: what an auditor with only a file has.
fn verify_offline(env: &Env, args: &[&str]) -> Output {
    let mut c = env.hoopx();
    c.arg("verify").args(args);
    run(c, "", T)
}

fn assert_ok(out: &Output) {
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(out.stdout.starts_with("OK: "), "{out:?}");
    assert!(out.stdout.contains("signed by ed25519:"), "{out:?}");
}

fn assert_failed(out: &Output, what: &str) {
    assert_eq!(out.code(), 1, "{what}: {out:?}");
    assert!(out.stdout.starts_with("FAILED: "), "{what}: {out:?}");
}

/// Runs SQL against the gateway's SQLite store directly: what an attacker with the database
/// file could do.
fn tamper(env: &Env, sql: &[String]) {
    let url = format!("sqlite://{}", env.path().join("gw.db").display());
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        use sqlx::Connection;
        let mut db = sqlx::SqliteConnection::connect(&url).await.unwrap();
        for s in sql {
            sqlx::query(s).execute(&mut db).await.unwrap();
        }
    });
}

const SCRIPT: &str = "echo line one; echo line two >&2; echo mail bob@example.com; exit 0";

#[test]
fn verify_passes_untouched_sessions_and_catches_every_tampering_in_the_store() {
    let env = Env::new();
    let gw = Gateway::start(&env, Some(SHELL_CONFIG), None);
    let ids: Vec<String> = (0..5).map(|_| session(&gw, &env, SCRIPT)).collect();
    for id in &ids {
        assert_ok(&hoopx(&gw, &env, &["verify", id]));
    }
    assert_ok(&hoopx(&gw, &env, &["verify", "last"]));

    let flipped = &ids[0];
    let dropped = &ids[1];
    let swapped = &ids[2];
    let forged = &ids[3];
    let fake_sig = base64::engine::general_purpose::STANDARD.encode([7u8; 64]);
    tamper(
        &env,
        &[
            // One flipped byte in the first event's data.
            format!(
                "UPDATE events SET data = CAST(char(unicode(substr(data, 1, 1)) + 1) || substr(data, 2) AS BLOB) \
                 WHERE session_id = '{flipped}' AND seq = 0"
            ),
            // The exit event removed.
            format!(
                "DELETE FROM events WHERE session_id = '{dropped}' AND seq = \
                 (SELECT MAX(seq) FROM events WHERE session_id = '{dropped}')"
            ),
            // The first two events swapped.
            format!("UPDATE events SET seq = -1 WHERE session_id = '{swapped}' AND seq = 0"),
            format!("UPDATE events SET seq = 0 WHERE session_id = '{swapped}' AND seq = 1"),
            format!("UPDATE events SET seq = 1 WHERE session_id = '{swapped}' AND seq = -1"),
            // A signature replaced.
            format!("UPDATE checkpoints SET signature = '{fake_sig}' WHERE session_id = '{forged}'"),
        ],
    );
    let out = hoopx(&gw, &env, &["verify", flipped]);
    assert_failed(&out, "flipped byte");
    assert!(out.stdout.contains("event 0"), "{out:?}");
    assert!(out.stdout.contains("altered"), "{out:?}");
    assert_failed(&hoopx(&gw, &env, &["verify", dropped]), "dropped event");
    assert_failed(&hoopx(&gw, &env, &["verify", swapped]), "swapped events");
    let out = hoopx(&gw, &env, &["verify", forged]);
    assert_failed(&out, "forged signature");
    assert!(out.stdout.contains("signature"), "{out:?}");
    // The untouched one still verifies.
    assert_ok(&hoopx(&gw, &env, &["verify", &ids[4]]));

    // JSON for scripts.
    let out = hoopx(&gw, &env, &["verify", flipped, "--output", "json"]);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        (v["ok"].as_bool(), v["event"].as_i64()),
        (Some(false), Some(0))
    );
}

/// Lines of `text` with the `n`th line (0-based) replaced by `f(line)`.
fn edit_line(text: &str, n: usize, f: impl Fn(&str) -> String) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    lines[n] = f(&lines[n]);
    lines.join("\n") + "\n"
}

#[test]
fn exported_files_verify_offline_and_tampering_is_caught() {
    let env = Env::new();
    let gw = Gateway::start(&env, Some(SHELL_CONFIG), None);
    let id = session(&gw, &env, SCRIPT);
    let export = |format: &str| {
        let out = hoopx(&gw, &env, &["replay", &id, "--format", format]);
        assert_eq!(out.code(), 0, "{out:?}");
        out.stdout
    };
    let json = export("json");
    let cast = export("cast");
    let cast3 = export("cast3");
    // Masked in every export; the raw value never.
    for f in [&json, &cast, &cast3] {
        assert!(!f.contains("bob@example.com"), "{f}");
        assert!(f.contains("line one"), "{f}");
    }
    let file = |name: &str, text: &str| env.write(name, text).display().to_string();
    let (fj, fc, fc3) = (
        file("s.jsonl", &json),
        file("s.cast", &cast),
        file("s3.cast", &cast3),
    );
    // On the machine that ran the gateway its key is known: the files verify as they are.
    for f in [&fj, &fc, &fc3] {
        assert_ok(&verify_offline(&env, &[f]));
    }
    // An auditor elsewhere does not trust the key a file carries for itself.
    let elsewhere = Env::new();
    let copy = elsewhere.write("s.jsonl", &json);
    let out = verify_offline(&elsewhere, &[copy.to_str().unwrap()]);
    assert_failed(&out, "untrusted key");
    assert!(out.stdout.contains("not a key you trust"), "{out:?}");
    assert!(out.stderr.contains("--key"), "{out:?}");

    // Pinning the gateway's key (from /v1/keys, which needs no token) passes; another key fails.
    let keys: serde_json::Value = reqwest::blocking::Client::new()
        .get(format!("{}/v1/keys", gw.url))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let key = keys["keys"][0]["public_key"].as_str().unwrap().to_string();
    assert_ok(&verify_offline(&env, &[&fj, "--key", &key]));
    assert_ok(&verify_offline(
        &elsewhere,
        &[copy.to_str().unwrap(), "--key", &key],
    ));
    let key_file = file("gateway.pub", &key);
    assert_ok(&verify_offline(&env, &[&fc, "--key", &key_file]));
    let other = base64::engine::general_purpose::STANDARD.encode(
        ed25519_dalek::SigningKey::from_bytes(&[9; 32])
            .verifying_key()
            .as_bytes(),
    );
    let out = verify_offline(&env, &[&fj, "--key", &other]);
    assert_failed(&out, "another key");
    let out = verify_offline(&env, &[&fj, "--key", "not-a-key"]);
    assert_eq!(out.code(), 64, "{out:?}");

    let at = json
        .lines()
        .position(|l| l.starts_with("{\"seq\"") && l.contains("line one"))
        .expect("the output event");
    let altered = edit_line(&json, at, |l| l.replace("line one", "line 0ne"));
    assert_failed(
        &verify_offline(&env, &[&file("a.jsonl", &altered)]),
        "altered",
    );
    let lines: Vec<&str> = json.lines().collect();
    let events: Vec<usize> = (1..lines.len())
        .filter(|&i| lines[i].starts_with("{\"seq\""))
        .collect();
    assert!(events.len() >= 2, "{json}");
    let without: String = lines
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != events[1])
        .map(|(_, l)| format!("{l}\n"))
        .collect();
    assert_failed(
        &verify_offline(&env, &[&file("d.jsonl", &without)]),
        "dropped",
    );
    let mut swapped: Vec<&str> = lines.clone();
    swapped.swap(events[0], events[1]);
    let swapped = swapped.join("\n") + "\n";
    assert_failed(
        &verify_offline(&env, &[&file("s2.jsonl", &swapped)]),
        "swapped",
    );
    let cp = lines
        .iter()
        .position(|l| l.starts_with("{\"checkpoint\""))
        .expect("a checkpoint line");
    let forged = edit_line(&json, cp, |l| {
        let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
        v["checkpoint"]["signature"] = base64::engine::general_purpose::STANDARD
            .encode([1u8; 64])
            .into();
        v.to_string()
    });
    assert_failed(
        &verify_offline(&env, &[&file("f.jsonl", &forged)]),
        "forged",
    );
    let at = cast
        .lines()
        .position(|l| l.starts_with('[') && l.contains("line one"))
        .expect("the output event");
    let altered_cast = edit_line(&cast, at, |l| l.replace("line one", "line 0ne"));
    assert_failed(
        &verify_offline(&env, &[&file("a.cast", &altered_cast)]),
        "altered cast",
    );

    // Garbage is refused with a message, not a panic.
    let out = verify_offline(&env, &[&file("junk.cast", "{not json\n")]);
    assert_eq!(out.code(), 64, "{out:?}");
    assert!(out.stderr.contains("junk.cast"), "{out:?}");
    assert!(!out.stderr.contains("panicked"), "{out:?}");

    // A file replays like a session.
    let mut c = env.hoopx();
    c.args(["replay", &fj, "--format", "text"]);
    let out = run(c, "", T);
    assert!(out.stdout.contains("line one"), "{out:?}");
}

#[test]
fn a_real_asciinema_plays_the_cast_export() {
    let env = Env::new();
    let gw = Gateway::start(&env, Some(SHELL_CONFIG), None);
    session(
        &gw,
        &env,
        "printf 'first row\\r\\n'; printf '\\033[1mbold\\033[0m row\\r\\n'",
    );
    let out = hoopx(&gw, &env, &["replay", "last", "--format", "cast"]);
    let path = env.write("s.cast", &out.stdout);
    // asciinema wants a terminal: give it one with script(1).
    let out = run(
        {
            let mut c = Command::new("script");
            c.args([
                "-qec",
                &format!("asciinema cat {}", path.display()),
                "/dev/null",
            ])
            .env("TERM", "xterm");
            c
        },
        "",
        T,
    );
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(out.stdout.contains("first row"), "{out:?}");
    assert!(out.stdout.contains("\x1b[1mbold\x1b[0m row"), "{out:?}");
}

#[test]
fn psql_sessions_replay_as_the_text_the_screen_showed() {
    let env = Env::new();
    let pg = Postgres::start();
    pg.create_db("app");
    pg.sql(
        "app",
        "create table users (id int, name text); insert into users values (1, 'ada'), (2, 'grace')",
    );
    let gw = Gateway::start(&env, Some(&pg.config(EXAMPLE_CONFIG)), None);

    // Pipe mode: the text replay is exactly what stdout and stderr showed.
    let mut c = gw.hoopx(&env);
    c.args(["exec", "--no-tty", "--", "psql"])
        .args(["-X", "app"])
        .args(["-c", "select id, name from users order by id"]);
    let shown = run(c, "", T);
    assert_eq!(shown.code(), 0, "{shown:?}");
    let text = hoopx(&gw, &env, &["replay", "last", "--format", "text"]);
    assert_eq!(text.stdout, shown.stdout, "{text:?}");

    // PTY mode: an interactive psql; the text replay shows the query and its table.
    let mut c = gw.hoopx(&env);
    c.args(["exec", "--tty", "--", "psql"]).args(["-X", "app"]);
    c.env("TERM", "xterm"); // as a terminal sets it: readline clears the screen on Ctrl-L
    let mut p = PtyChild::spawn(c, 100, 30);
    p.output.wait_for("app=#", T);
    p.type_str("select name from users where id = 2;\r");
    p.output.wait_for("(1 row)", T);
    // An error, then the screen cleared (Ctrl-L: readline clears and redraws the prompt).
    p.type_str("select nosuch;\r");
    p.output.wait_for("ERROR:", T);
    p.type_str("\x0c");
    p.output.wait_for("\x1b[2J", T);
    p.type_str("\\q\r");
    assert!(p.wait(T).success());
    let text = hoopx(&gw, &env, &["replay", "last", "--format", "text"]);
    assert_eq!(text.code(), 0, "{text:?}");
    let t = &text.stdout;
    assert!(
        t.contains("ERROR:  column \"nosuch\" does not exist"),
        "{t}"
    );
    // The final screen has only what came after the clear.
    let screen = hoopx(&gw, &env, &["replay", "last", "--format", "screen"]);
    assert_eq!(screen.code(), 0, "{screen:?}");
    assert!(!screen.stdout.contains("ERROR"), "{screen:?}");
    assert!(screen.stdout.contains("app=# \\q"), "{screen:?}");
    assert!(
        t.contains("app=# select name from users where id = 2;"),
        "{t}"
    );
    assert!(t.contains(" grace"), "{t}");
    assert!(t.contains("(1 row)"), "{t}");
    assert!(!t.contains('\x1b'), "no escape codes: {t:?}");
}

#[test]
fn sessions_list_filters_and_show_tells_the_whole_story() {
    let env = Env::new();
    let gw = Gateway::start(&env, Some(SHELL_CONFIG), None);
    session(&gw, &env, "echo hi");
    let mut c = gw.hoopx(&env);
    c.args(["exec", "--no-tty", "--", "sh", "-c", "cat; exit 4"]);
    let out = run(c, "mail ada@example.com\nrm -rf /tmp/x\n", T);
    assert_eq!(out.code(), 77, "a withheld line makes exit 77: {out:?}");
    let id = newest(&gw, &env);

    let list = |args: &[&str]| -> Vec<serde_json::Value> {
        let mut all = vec!["sessions", "list", "--output", "json"];
        all.extend(args);
        let out = hoopx(&gw, &env, &all);
        assert_eq!(out.code(), 0, "{out:?}");
        serde_json::from_str(&out.stdout).unwrap()
    };
    assert_eq!(list(&[]).len(), 2);
    assert_eq!(list(&["--user", "dev"]).len(), 2);
    assert_eq!(list(&["--user", "nobody"]).len(), 0);
    assert_eq!(list(&["--target", "shell"]).len(), 2);
    assert_eq!(list(&["--target", "other"]).len(), 0);
    assert_eq!(list(&["--since", "1h"]).len(), 2);
    assert_eq!(list(&["--status", "exited"]).len(), 2);
    assert_eq!(list(&["--status", "running"]).len(), 0);
    let out = hoopx(&gw, &env, &["sessions", "list", "--since", "soon"]);
    assert_eq!(out.code(), 64, "{out:?}");

    let out = hoopx(&gw, &env, &["sessions", "show", &id, "--output", "json"]);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["exit_code"], 4);
    assert_eq!(v["denials"], 1);
    assert_eq!(v["bytes_in"], "mail ada@example.com\n".len());
    assert!(v["bytes_out"].as_i64().unwrap() > 0, "{v}");
    assert!(
        v["masks"].as_object().unwrap().values().any(|n| n == 2),
        "{v}"
    );
    assert!(v["duration_ms"].as_i64().is_some(), "{v}");
    assert_eq!(v["verification"]["ok"], true, "{v}");

    let out = hoopx(&gw, &env, &["sessions", "show", "last"]);
    for field in [
        "identity",
        "target",
        "command",
        "duration",
        "bytes",
        "masked",
        "denials",
        "verified    OK",
    ] {
        assert!(out.stdout.contains(field), "{field}: {out:?}");
    }
    assert!(!out.stdout.contains("ada@example.com"), "{out:?}");
}

#[test]
fn the_signing_key_is_private_stable_and_published() {
    let env = Env::new();
    let mut gw = Gateway::start(&env, Some(SHELL_CONFIG), None);
    let path = env.path().join("data/hoopx/gateway-signing.pem");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&path)
        .expect("the key file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let keys = |gw: &Gateway| -> serde_json::Value {
        reqwest::blocking::get(format!("{}/v1/keys", gw.url))
            .unwrap()
            .json()
            .unwrap()
    };
    let first = keys(&gw);
    let id = first["keys"][0]["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("ed25519:"), "{first}");
    assert!(
        gw.stderr.text().contains(&id),
        "the gateway says which key it signs with"
    );
    gw.kill();
    let gw = Gateway::start(&env, Some(SHELL_CONFIG), None);
    assert_eq!(keys(&gw), first, "the same key after a restart");

    // A key others can read is refused, as ssh refuses one.
    drop(gw);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut c = env.hoopx();
    c.args(["gateway", "serve", "--dev", "--listen", "127.0.0.1:0"]);
    let out = run(c, "", T);
    assert_eq!(out.code(), 78, "{out:?}");
    assert!(out.stderr.contains("chmod 600"), "{out:?}");
}

#[test]
fn a_session_never_runs_unrecorded() {
    let env = Env::new();
    let pg = Postgres::start();
    pg.create_db("gw");
    let gw = Gateway::start(&env, Some(SHELL_CONFIG), Some(&pg.url("gw")));
    let tool = LongTool::new(&env);
    let go = env.path().join("go");
    let script = tool.script().replace(
        "echo ready;",
        &format!(
            "echo ready; while [ ! -e {} ]; do sleep 0.05; done; echo after;",
            go.display()
        ),
    );
    let mut c = gw.hoopx(&env);
    c.args(["exec", "--no-tty", "--", "sh", "-c", &script]);
    let (mut child, stdout, stderr) = spawn_piped(c);
    stdout.wait_for("ready", T);

    // The store goes away mid-session, then the tool prints: what cannot be recorded is
    // never shown, the session ends and the tool is stopped.
    drop(pg);
    std::fs::write(&go, "").unwrap();
    let status = crate::util::wait_timeout(&mut child, T).expect("hoopx exits");
    assert_eq!(status.code(), Some(69), "{}", stderr.text());
    assert!(stderr.text().contains("record"), "{}", stderr.text());
    assert_eq!(
        stdout.text(),
        "ready\n",
        "output that was not recorded was shown"
    );
    tool.wait_gone(T);

    // With the store down, no new session starts.
    let marker = env.path().join("ran");
    let mut c = gw.hoopx(&env);
    c.args(["exec", "--no-tty", "--", "sh", "-c"])
        .arg(format!("touch {}", marker.display()));
    let out = run(c, "", T);
    assert_eq!(out.code(), 69, "{out:?}");
    assert!(!marker.exists(), "the tool ran without a recording");
}

#[test]
fn follow_watches_a_running_session_until_it_ends() {
    let env = Env::new();
    let gw = Gateway::start(&env, Some(SHELL_CONFIG), None);
    let go = env.path().join("go");
    let script = format!(
        "echo before; while [ ! -e {go} ]; do sleep 0.05; done; echo after",
        go = go.display()
    );
    let mut c = gw.hoopx(&env);
    c.args(["exec", "--no-tty", "--", "sh", "-c", &script]);
    let (mut tool, tool_out, _) = spawn_piped(c);
    tool_out.wait_for("before", T);
    let id = newest(&gw, &env);

    let mut c = gw.hoopx(&env);
    c.args(["replay", &id, "--follow"]);
    let (mut watcher, watched, watch_err) = spawn_piped(c);
    watched.wait_for("before", T);
    assert!(!watched.text().contains("after"));
    std::fs::write(&go, "").unwrap();
    watched.wait_for("after", T);
    assert!(crate::util::wait_timeout(&mut tool, T).unwrap().success());
    let status =
        crate::util::wait_timeout(&mut watcher, T).expect("--follow ends with the session");
    assert!(status.success(), "{}", watch_err.text());
    assert_eq!(watched.text(), "before\nafter\n");

    // As JSON, --follow writes the export's own event lines.
    let followed = hoopx(&gw, &env, &["replay", &id, "--follow", "--format", "json"]);
    let export = hoopx(&gw, &env, &["replay", &id, "--format", "json"]);
    let events: Vec<&str> = export
        .stdout
        .lines()
        .filter(|l| l.starts_with("{\"seq\""))
        .collect();
    assert!(events.len() >= 3, "{export:?}");
    assert_eq!(followed.stdout.lines().collect::<Vec<_>>(), events);
}

/// A signed PTY recording of `rows` numbered rows in 64 KiB events, 100 ms apart, written as
/// the JSON export.
fn big_recording(env: &Env, mb: usize) -> (std::path::PathBuf, usize, i64, String) {
    use hoopx::recording::{chain, format, Event, EventKind, Recording};
    let key = ed25519_dalek::SigningKey::from_bytes(&[5; 32]);
    let session = hoopx::proto::SessionInfo {
        id: "big".into(),
        identity: "dev".into(),
        target: "local".into(),
        argv: vec!["big".into()],
        mode: hoopx::proto::Mode::Pty,
        status: "exited".into(),
        started_at: 1_700_000_000_000,
        ended_at: None,
        exit_code: Some(0),
        reason: None,
        event_count: 0,
        ..Default::default()
    };
    let mut head = chain::session_genesis(&session);
    let mut events = vec![];
    let mut checkpoints = vec![];
    let mut row = 0usize;
    let mut total = 0usize;
    let mut push = |kind: EventKind, data: Vec<u8>, events: &mut Vec<Event>| {
        let e = Event {
            seq: events.len() as i64,
            t_us: events.len() as i64 * 100_000,
            kind,
            data,
        };
        head = chain::next(&head, &e);
        events.push(e);
        if events.len() % 256 == 0 {
            checkpoints.push(chain::sign(&key, "big", events.len() as i64, &head, false));
        }
    };
    push(EventKind::Resize, b"100x30".to_vec(), &mut events);
    while total < mb * 1024 * 1024 {
        let mut chunk = Vec::with_capacity(64 * 1024 + 100);
        while chunk.len() < 64 * 1024 {
            chunk.extend_from_slice(
                format!("row {row:09} the quick brown fox jumps over the lazy dog\r\n").as_bytes(),
            );
            row += 1;
        }
        total += chunk.len();
        push(EventKind::Output, chunk, &mut events);
    }
    push(
        EventKind::Exit,
        br#"{"code":0,"signal":null}"#.to_vec(),
        &mut events,
    );
    checkpoints.push(chain::sign(&key, "big", events.len() as i64, &head, true));
    let duration = events.last().unwrap().t_us;
    let rec = Recording {
        session,
        keys: vec![chain::public_key_info(&key.verifying_key())],
        events,
        checkpoints,
    };
    let path = env.path().join("big.jsonl");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    format::write_json(&mut f, &rec, None).unwrap();
    use std::io::Write;
    f.flush().unwrap();
    let public = chain::public_key_info(&key.verifying_key()).public_key;
    (path, row, duration, public)
}

#[test]
fn a_recording_of_over_100_mb_verifies_replays_and_seeks() {
    let env = Env::new();
    let (path, rows, duration, key) = big_recording(&env, 101);
    let path = path.display().to_string();
    let offline = |args: &[&str]| {
        let mut c = env.hoopx();
        c.args(args);
        run(c, "", Duration::from_secs(300))
    };
    assert_ok(&offline(&["verify", &path, "--key", &key]));

    // Text: every row, in order, once; nothing else.
    let out = offline(&["replay", &path, "--format", "text"]);
    assert_eq!(out.code(), 0, "{}", out.stderr);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), rows, "one line per row");
    assert_eq!(
        lines[0],
        "row 000000000 the quick brown fox jumps over the lazy dog"
    );
    assert_eq!(
        lines[rows - 1],
        format!(
            "row {:09} the quick brown fox jumps over the lazy dog",
            rows - 1
        )
    );

    // A seek to the middle paints the screen as it was there and plays from there only.
    let mid = duration / 2 / 1_000_000;
    let out = offline(&[
        "replay",
        &path,
        "--from",
        &mid.to_string(),
        "--to",
        &(mid + 1).to_string(),
        "--speed",
        "1000",
    ]);
    assert_eq!(out.code(), 0, "{}", out.stderr);
    let rows_per_event = rows as i64 / (duration / 100_000);
    let around = (mid * 10 * rows_per_event) as usize;
    assert!(
        !out.stdout.contains("row 000000000 "),
        "started from the beginning"
    );
    let first_shown = out
        .stdout
        .find("row ")
        .map(|i| out.stdout[i + 4..i + 13].parse::<usize>().unwrap())
        .expect("rows on the screen");
    assert!(
        first_shown.abs_diff(around) < 3 * rows_per_event as usize,
        "first row shown {first_shown}, expected near {around}"
    );
    assert!(
        out.stdout.len() < 4 * 1024 * 1024,
        "played only from the seek point"
    );
}

#[test]
fn interactive_replay_shows_a_status_line_and_obeys_keys() {
    let env = Env::new();
    let gw = Gateway::start(&env, Some(SHELL_CONFIG), None);
    // Ten minutes of recording: only the keys can end the replay within the test's timeout.
    session(&gw, &env, "echo first; sleep 1; echo second");
    let out = hoopx(&gw, &env, &["replay", "last", "--format", "json"]);
    let stretched: String = out
        .stdout
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            if let Some(t) = v.get("t").and_then(|t| t.as_f64()) {
                v["t"] = (t * 600.0).into();
            }
            v.to_string() + "\n"
        })
        .collect();
    let file = env.write("long.jsonl", &stretched);

    let mut c = env.hoopx();
    c.arg("replay").arg(&file).env("TERM", "xterm");
    let mut p = PtyChild::spawn(c, 100, 30);
    p.output.wait_for("first", T);
    p.output.wait_for("playing", T);
    p.output.wait_for(" / 10:", T);
    p.type_str(" ");
    p.output.wait_for("paused", T);
    p.type_str("q");
    let status = p.wait(T);
    assert!(status.success(), "{status:?}: {}", p.output.text());
    assert!(!p.output.text().contains("second"), "quit before the end");
}
