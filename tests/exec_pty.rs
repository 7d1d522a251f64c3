//! PTY mode, driven from the test through a real pseudo-terminal.

use std::os::fd::AsFd;
use std::time::Duration;

use crate::util::{Env, Gateway, Postgres, PtyChild};
use crate::{EXAMPLE_CONFIG, SHELL_CONFIG};

const T: Duration = Duration::from_secs(30);

fn is_cooked(p: &PtyChild) -> bool {
    use nix::sys::termios::{tcgetattr, LocalFlags};
    let t = tcgetattr(p.slave.as_fd()).unwrap();
    t.local_flags
        .contains(LocalFlags::ICANON | LocalFlags::ECHO)
}

#[test]
fn interactive_psql_is_masked_and_a_denied_line_is_not_run() {
    let env = Env::new();
    let pg = Postgres::start();
    pg.create_db("app");
    pg.sql(
        "app",
        "create table users (id int, email text); insert into users values (1, 'alice@example.com');",
    );
    let gw = Gateway::start(&env, Some(&pg.config(EXAMPLE_CONFIG)), None);
    let mut cmd = gw.hoopx(&env);
    cmd.env("TERM", "xterm")
        .args(["exec", "--", "psql"])
        .args(["-X", "app"]);
    let mut p = PtyChild::spawn(cmd, 100, 30);
    p.output.wait_for("app=#", T);
    assert!(!is_cooked(&p), "hoopx puts the terminal in raw mode");

    p.type_str("select email from users;\r");
    let screen = p.output.wait_for("(1 row)", T);
    assert!(screen.contains("[REDACTED:email]"), "{screen}");
    assert!(!screen.contains("alice@example.com"), "{screen}");

    p.type_str("drop table users;\r");
    p.output.wait_for("no-drop-table", T);
    // Alt+Enter (ESC CR) is an Enter too.
    p.type_str("drop table users;\x1b\r");
    crate::util::wait_for("a second denial", T, || {
        (p.output.text().matches("no-drop-table").count() >= 2).then_some(())
    });
    p.type_str("select count(*) + 100 from users;\r");
    p.output.wait_for("101", T);
    p.type_str("\\q\r");
    let status = p.wait(T);
    assert_eq!(status.code(), Some(77), "{}", p.output.text());
    assert_eq!(pg.sql("app", "select count(*) from users"), "1");
    assert!(is_cooked(&p), "the terminal is restored when hoopx exits");
}

#[test]
fn pty_exit_code_ctrl_c_and_resize_reach_the_tool() {
    let env = Env::new();
    let gw = Gateway::start(&env, Some(SHELL_CONFIG), None);

    // The window size at start and after a resize.
    let mut cmd = gw.hoopx(&env);
    cmd.args([
        "exec",
        "--",
        "sh",
        "-c",
        "stty size; echo ready; read x; stty size; exit 3",
    ]);
    let mut p = PtyChild::spawn(cmd, 100, 30);
    p.output.wait_for("30 100", T);
    p.output.wait_for("ready", T);
    p.resize(120, 40);
    // Wait until the resize has travelled: hoopx forwards SIGWINCH, then we press Enter.
    crate::util::wait_for("the resize to be recorded", T, || {
        let out = gw
            .hoopx(&env)
            .args(["sessions", "list", "--output", "json"])
            .output()
            .ok()?;
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        let id = v[0]["id"].as_str()?.to_string();
        let events: serde_json::Value = reqwest::blocking::Client::new()
            .get(format!("{}/v1/sessions/{id}/events", gw.url))
            .bearer_auth(crate::util::DEV_TOKEN)
            .send()
            .ok()?
            .json()
            .ok()?;
        events
            .as_array()?
            .iter()
            .any(|e| e["kind"] == "r" && e["data"] == "MTIweDQw")
            .then_some(())
    });
    p.type_str("\r");
    p.output.wait_for("40 120", T);
    assert_eq!(p.wait(T).code(), Some(3), "{}", p.output.text());

    // Ctrl-C is a keystroke that goes through the gateway to the tool's terminal.
    let mut cmd = gw.hoopx(&env);
    cmd.args([
        "exec",
        "--",
        "sh",
        "-c",
        "trap 'echo got-sigint; exit 5' INT; echo armed; while :; do sleep 0.05; done",
    ]);
    let mut p = PtyChild::spawn(cmd, 80, 24);
    p.output.wait_for("armed", T);
    p.type_str("\x03");
    p.output.wait_for("got-sigint", T);
    assert_eq!(p.wait(T).code(), Some(5), "{}", p.output.text());
    assert!(is_cooked(&p));
}

#[test]
fn losing_the_gateway_under_a_pty_stops_the_tool_and_restores_the_terminal() {
    let env = Env::new();
    let mut gw = Gateway::start(&env, Some(SHELL_CONFIG), None);
    let tool = crate::util::LongTool::new(&env);
    let mut cmd = gw.hoopx(&env);
    cmd.args(["exec", "--", "sh", "-c", &tool.script()]);
    let mut p = PtyChild::spawn(cmd, 80, 24);
    p.output.wait_for("ready", T);
    assert!(!is_cooked(&p));
    gw.kill();
    assert_eq!(p.wait(T).code(), Some(69), "{}", p.output.text());
    p.output.wait_for("lost the gateway", T);
    tool.wait_gone(T);
    assert!(
        is_cooked(&p),
        "the terminal is restored on the failure path too"
    );
}

/// The screen a terminal shows for `bytes` (what a user sees), one string per row.
fn screen(bytes: &str, cols: usize, rows: usize) -> Vec<String> {
    let mut vt = avt::Vt::builder().size(cols, rows).build();
    let _ = vt.feed_str(bytes);
    vt.view().map(|l| l.text().trim_end().to_string()).collect()
}

#[test]
fn a_denied_line_reads_cleanly_on_the_terminal() {
    let env = Env::new();
    let pg = Postgres::start();
    pg.create_db("app");
    let config = EXAMPLE_CONFIG.replace(
        "pattern = '(?i)\\bdrop\\s+table\\b'",
        "pattern = '(?i)\\bdrop\\s+table\\b'\nmessage = \"tables are dropped by migrations\"",
    );
    assert_ne!(config, EXAMPLE_CONFIG);
    let gw = Gateway::start(&env, Some(&pg.config(&config)), None);
    let mut cmd = gw.hoopx(&env);
    cmd.env("TERM", "xterm")
        .args(["exec", "--", "psql"])
        .args(["-X", "app"]);
    let mut p = PtyChild::spawn(cmd, 160, 30);
    p.output.wait_for("app=#", T);
    p.type_str("drop table users;\r");
    // The tool's prompt is back after the notice.
    let rows = crate::util::wait_for("a prompt after the notice", T, || {
        let rows = screen(&p.output.text(), 160, 30);
        let at = rows.iter().position(|r| r.starts_with("hoopx: "))?;
        rows[at + 1..]
            .iter()
            .any(|r| r.starts_with("app=#"))
            .then_some(rows)
    });
    let at = rows.iter().position(|r| r.starts_with("hoopx: ")).unwrap();
    // The tool erased the line; the notice is on a line of its own with the rule's
    // message.
    assert_eq!(rows[at - 1], "app=#", "{rows:#?}");
    // The prompt is drawn again below it (nothing typed for the tool: hoopx redraws it).
    assert_eq!(rows[at + 1], "app=#", "{rows:#?}");
    assert_eq!(
        rows[at],
        "hoopx: input line withheld by deny rule \"no-drop-table\": drop table users; \
         — tables are dropped by migrations",
        "{rows:#?}"
    );
    // The prompt works: the next line runs.
    p.type_str("select 40 + 2 as answer;\r");
    p.output.wait_for("42", T);
    p.type_str("\\q\r");
    assert_eq!(p.wait(T).code(), Some(77), "{}", p.output.text());
}
