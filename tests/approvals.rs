//! Guardrails and just-in-time approvals, end to end: real psql against a real PostgreSQL
//! through a real gateway; requester and reviewers are separate `hoopx` processes with their
//! own dev identities. Each story checks in the database what did or did not run.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::util::{run, spawn_piped, wait_for, wait_timeout, Env, Gateway, Postgres, PtyChild};

const T: Duration = Duration::from_secs(30);

const AGENT: &str = "tok-agent-0001";
const ALICE: &str = "tok-alice-0001";
const BOB: &str = "tok-bob-00001";
const CAROL: &str = "tok-carol-0001";

fn config(ttl: &str, webhook: Option<&str>) -> String {
    let hook = webhook
        .map(|u| format!("webhook_url = \"{u}\"\nwebhook_timeout = \"2s\"\n"))
        .unwrap_or_default();
    format!(
        r#"[[targets]]
name = "pg"
kind = "postgres"
command = ["psql"]

[[rules.deny]]
name = "no-drop-table"
pattern = '(?i)\bdrop\s+table\b'

[[rules.review]]
name = "deletes-need-a-dba"
pattern = '(?i)\bdelete\s+from\b'
reviewers = ["dba"]

[access]
# Alice audits too: she reads the sessions she approved.
auditors = ["audit"]

[reviews]
ttl = "{ttl}"
{hook}
[[dev.identities]]
name = "agent"
token = "{AGENT}"
groups = ["agents"]

[[dev.identities]]
name = "alice"
token = "{ALICE}"
groups = ["dba", "audit"]

[[dev.identities]]
name = "bob"
token = "{BOB}"
groups = ["dev"]

[[dev.identities]]
name = "carol"
token = "{CAROL}"
groups = ["dba", "agents"]
"#
    )
}

struct World {
    env: Env,
    pg: Postgres,
    gw: Gateway,
}

fn world(ttl: &str, webhook: Option<&str>) -> World {
    let env = Env::new();
    let pg = Postgres::start();
    pg.create_db("app");
    pg.sql(
        "app",
        "create table users (id int primary key, name text); \
         insert into users values (1, 'Alice'), (2, 'Bob'), (3, 'Carol');",
    );
    let gw = Gateway::start(&env, Some(&pg.config(&config(ttl, webhook))), None);
    World { env, pg, gw }
}

impl World {
    /// `hoopx` against the gateway as `token`'s identity.
    fn hoopx(&self, token: &str) -> Command {
        let mut c = self.gw.hoopx(&self.env);
        c.env("HOOPX_TOKEN", token);
        c
    }

    /// `hoopx exec [flags] -- psql … [extra]` as the agent, in pipe mode.
    fn psql(&self, flags: &[&str], extra: &[&str]) -> Command {
        let mut c = self.hoopx(AGENT);
        c.args(["exec", "--no-tty"])
            .args(flags)
            .arg("--")
            .arg("psql")
            .args(["-X", "app"])
            .args(extra);
        c
    }

    fn review(&self, token: &str, args: &[&str]) -> crate::util::Output {
        let mut c = self.hoopx(token);
        c.arg("review").args(args);
        run(c, "", T)
    }

    fn users(&self) -> String {
        self.pg.sql("app", "select count(*) from users")
    }
}

/// The review id in a line such as "… review 3f…-…, reviewers: dba".
fn review_id(text: &str) -> Option<String> {
    let at = text.find("review ")? + "review ".len();
    let id: String = text[at..]
        .chars()
        .take_while(|c| c.is_ascii_hexdigit() || *c == '-')
        .collect();
    (id.len() == 36).then_some(id)
}

#[test]
fn an_approval_from_a_second_process_lets_the_waiting_command_run_once() {
    let hook = Webhook::start(1);
    let w = world("1h", Some(&hook.url));
    let (mut agent, stdout, stderr) =
        spawn_piped(w.psql(&[], &["-c", "delete from users where id = 1"]));
    let waiting = stderr.wait_for("reviewers: dba", T);
    assert!(
        waiting.contains("waiting for approval of `psql"),
        "{waiting}"
    );
    let id = review_id(&waiting).expect("a review id on stderr");
    // Nothing ran while it waits.
    assert_eq!(w.users(), "3");

    // The reviewer sees it, exactly, in JSON.
    let list = w.review(ALICE, &["list", "--status", "pending", "--output", "json"]);
    assert_eq!(list.code(), 0, "{list:?}");
    let reviews: serde_json::Value = serde_json::from_str(&list.stdout).unwrap();
    let r = &reviews[0];
    assert_eq!(r["id"], id.as_str());
    assert_eq!(r["status"], "pending");
    assert_eq!(r["requester"], "agent");
    assert_eq!(r["target"], "pg");
    assert!(
        r["command"]
            .as_str()
            .unwrap()
            .ends_with("-c 'delete from users where id = 1'"),
        "{r}"
    );

    let ok = w.review(ALICE, &["approve", &id, "--reason", "ticket 42", "--yes"]);
    assert_eq!(ok.code(), 0, "{ok:?}");
    assert!(ok.stdout.contains("approved"), "{ok:?}");
    let status = wait_timeout(&mut agent, T).expect("the agent's exec ends");
    assert_eq!(status.code(), Some(0), "{}", stderr.text());
    assert!(stdout.text().contains("DELETE 1"), "{}", stdout.text());
    assert_eq!(w.users(), "2");

    // Single use: the same approval does not run it again.
    let again = run(
        w.psql(
            &["--review", &id],
            &["-c", "delete from users where id = 1"],
        ),
        "",
        T,
    );
    assert_eq!(again.code(), 77, "{again:?}");
    assert!(again.stderr.contains("already used"), "{again:?}");

    // Evidence: the decision is on the session and in its recording.
    let show = run(
        {
            let mut c = w.hoopx(ALICE);
            c.args(["sessions", "list", "--status", "exited", "--output", "json"]);
            c
        },
        "",
        T,
    );
    let sessions: serde_json::Value = serde_json::from_str(&show.stdout).unwrap();
    let approvals = &sessions[0]["approvals"][0];
    assert_eq!(approvals["review_id"], id.as_str(), "{show:?}");
    assert_eq!(approvals["decisions"][0]["reviewer"], "alice");
    assert_eq!(approvals["decisions"][0]["reason"], "ticket 42");
    let replay = run(
        {
            let mut c = w.hoopx(ALICE);
            c.args([
                "replay",
                sessions[0]["id"].as_str().unwrap(),
                "--format",
                "json",
            ]);
            c
        },
        "",
        T,
    );
    assert!(replay.stdout.contains("ticket 42"), "{replay:?}");
    let executed = w.review(ALICE, &["show", &id, "--output", "json"]);
    let executed: serde_json::Value = serde_json::from_str(&executed.stdout).unwrap();
    assert_eq!(executed["status"], "executed");
    assert_eq!(executed["executed_session"], sessions[0]["id"]);

    // The session's evidence reads plainly too.
    let shown = run(
        {
            let mut c = w.hoopx(ALICE);
            c.args(["sessions", "show", sessions[0]["id"].as_str().unwrap()]);
            c
        },
        "",
        T,
    );
    assert!(
        shown.stdout.contains(&format!("{id} executed")) && shown.stdout.contains("alice approve"),
        "{shown:?}"
    );

    // The webhook heard about the new review (its first attempt failed and was retried)
    // and about the decision.
    let events = hook.wait_for(3);
    let of = |kind: &str| -> Vec<&serde_json::Value> {
        events.iter().filter(|e| e["event"] == kind).collect()
    };
    assert_eq!(of("review.created").len(), 2, "{events:?}");
    assert!(of("review.created")
        .iter()
        .all(|e| e["review"]["id"] == id.as_str()));
    assert_eq!(
        of("review.decided")[0]["review"]["status"],
        "approved",
        "{events:?}"
    );
}

#[test]
fn a_rejection_ends_the_wait_and_the_command_never_runs() {
    let w = world("1h", None);
    // --no-wait: exit 75 at once, with the review id as JSON.
    let asked = run(
        w.psql(
            &["--no-wait", "--output", "json"],
            &["-c", "delete from users"],
        ),
        "",
        T,
    );
    assert_eq!(asked.code(), 75, "{asked:?}");
    let first: serde_json::Value =
        serde_json::from_str(asked.stdout.lines().next().unwrap()).unwrap();
    assert_eq!(first["event"], "approval_pending");
    let id = first["review_id"].as_str().unwrap().to_string();
    // Still pending: --review says so with 75.
    let early = run(
        w.psql(&["--review", &id], &["-c", "delete from users"]),
        "",
        T,
    );
    assert_eq!(early.code(), 75, "{early:?}");

    // A reviewer without the group cannot decide; a rejection needs a reason.
    let bob = w.review(BOB, &["approve", &id, "--yes"]);
    assert_eq!(bob.code(), 77, "{bob:?}");
    assert!(bob.stderr.contains("not in a reviewer group"), "{bob:?}");
    let no_reason = run(
        {
            let mut c = w.hoopx(ALICE);
            c.args(["review", "reject", &id, "--yes"]);
            c
        },
        "",
        T,
    );
    assert_eq!(no_reason.code(), 64, "{no_reason:?}");

    let rejected = w.review(ALICE, &["reject", &id, "--reason", "not on prod", "--yes"]);
    assert_eq!(rejected.code(), 0, "{rejected:?}");
    let after = run(
        w.psql(&["--review", &id], &["-c", "delete from users"]),
        "",
        T,
    );
    assert_eq!(after.code(), 77, "{after:?}");
    assert!(
        after.stderr.contains("rejected by alice: not on prod"),
        "{after:?}"
    );
    assert_eq!(w.users(), "3");

    // A waiting exec learns of the rejection and exits 77.
    let (mut agent, _out, stderr) =
        spawn_piped(w.psql(&[], &["-c", "delete from users where id = 2"]));
    let id = review_id(&stderr.wait_for("reviewers: dba", T)).unwrap();
    let rejected = w.review(
        ALICE,
        &["reject", &id, "--reason", "use a migration", "--yes"],
    );
    assert_eq!(rejected.code(), 0, "{rejected:?}");
    let status = wait_timeout(&mut agent, T).unwrap();
    assert_eq!(status.code(), Some(77), "{}", stderr.text());
    assert!(
        stderr.text().contains("use a migration"),
        "{}",
        stderr.text()
    );
    assert_eq!(w.users(), "3");
}

#[test]
fn reviews_expire_and_waits_time_out() {
    let w = world("2s", None);
    let asked = run(w.psql(&["--no-wait"], &["-c", "delete from users"]), "", T);
    assert_eq!(asked.code(), 75, "{asked:?}");
    let id = review_id(&asked.stderr).expect("the review id on stderr");
    wait_for("the review to expire", T, || {
        let s = w.review(ALICE, &["show", &id, "--output", "json"]);
        let v: serde_json::Value = serde_json::from_str(&s.stdout).ok()?;
        (v["status"] == "expired").then_some(())
    });
    let late = w.review(ALICE, &["approve", &id, "--yes"]);
    assert_ne!(late.code(), 0, "{late:?}");
    let used = run(
        w.psql(&["--review", &id], &["-c", "delete from users"]),
        "",
        T,
    );
    assert_eq!(used.code(), 77, "{used:?}");
    assert!(used.stderr.contains("expired"), "{used:?}");

    // --approval-timeout ends a wait with 75; the review itself stays pending.
    let timed = run(
        w.psql(
            &["--approval-timeout", "1s"],
            &["-c", "delete from users where id = 3"],
        ),
        "",
        T,
    );
    assert_eq!(timed.code(), 75, "{timed:?}");
    assert!(timed.stderr.contains("--approval-timeout"), "{timed:?}");
    assert_eq!(w.users(), "3");
}

#[test]
fn nobody_approves_their_own_request() {
    let w = world("1h", None);
    let mut c = w.hoopx(CAROL);
    c.args(["exec", "--no-tty", "--no-wait", "--", "psql"])
        .args(["-X", "app"])
        .args(["-c", "delete from users"]);
    let asked = run(c, "", T);
    assert_eq!(asked.code(), 75, "{asked:?}");
    let id = review_id(&asked.stderr).unwrap();
    let own = w.review(CAROL, &["approve", &id, "--yes"]);
    assert_eq!(own.code(), 77, "{own:?}");
    assert!(own.stderr.contains("cannot decide it"), "{own:?}");
    let shown = w.review(ALICE, &["show", &id, "--output", "json"]);
    let v: serde_json::Value = serde_json::from_str(&shown.stdout).unwrap();
    assert_eq!(v["status"], "pending");
    assert_eq!(v["decisions"].as_array().unwrap().len(), 0);
    assert_eq!(w.users(), "3");
}

#[test]
fn an_approval_is_refused_for_a_different_command() {
    let w = world("1h", None);
    let asked = run(
        w.psql(&["--no-wait"], &["-c", "delete from users where id = 1"]),
        "",
        T,
    );
    let id = review_id(&asked.stderr).unwrap();
    assert_eq!(w.review(ALICE, &["approve", &id, "--yes"]).code(), 0);
    // The approval names one exact command: a wider delete is not it.
    let other = run(
        w.psql(&["--review", &id], &["-c", "delete from users"]),
        "",
        T,
    );
    assert_eq!(other.code(), 77, "{other:?}");
    assert!(other.stderr.contains("another command"), "{other:?}");
    // Nor is the same command from someone else.
    let mut c = w.hoopx(CAROL);
    c.args(["exec", "--no-tty", "--review", &id, "--", "psql"])
        .args(["-X", "app"])
        .args(["-c", "delete from users where id = 1"]);
    assert_eq!(run(c, "", T).code(), 77);
    assert_eq!(w.users(), "3", "nothing ran");
    // The refused uses did not spend it: the approved command runs.
    let ran = run(
        w.psql(
            &["--review", &id],
            &["-c", "delete from users where id = 1"],
        ),
        "",
        T,
    );
    assert_eq!(ran.code(), 0, "{ran:?}");
    assert_eq!(w.users(), "2");
}

#[test]
fn a_piped_line_waits_for_review_while_the_session_stays_open() {
    let w = world("1h", None);
    let (mut agent, stdout, stderr) = spawn_piped(w.psql(&["--output", "json"], &[]));
    let mut stdin = agent.stdin.take().unwrap();
    stdin
        .write_all(b"select 'before';\ndelete from users where id = 2;\nselect 'after', count(*) from users;\n")
        .unwrap();
    drop(stdin);
    stdout.wait_for("approval_pending", T);
    // Lines before the held one run; lines after it wait.
    let events = stdout.wait_for("before", T);
    assert!(!events.contains("after"), "{events}");
    let pending: serde_json::Value = events
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["event"] == "approval_pending")
        .unwrap();
    let id = pending["review_id"].as_str().unwrap().to_string();
    assert_eq!(w.users(), "3");
    let shown = w.review(ALICE, &["show", &id, "--output", "json"]);
    let v: serde_json::Value = serde_json::from_str(&shown.stdout).unwrap();
    assert_eq!(v["kind"], "line");
    assert_eq!(v["command"], "delete from users where id = 2;");
    assert_eq!(w.review(ALICE, &["approve", &id, "--yes"]).code(), 0);
    let status = wait_timeout(&mut agent, T).unwrap();
    assert_eq!(
        status.code(),
        Some(0),
        "{}\n{}",
        stdout.text(),
        stderr.text()
    );
    let out = stdout.text();
    assert!(out.contains("\"event\":\"approved\""), "{out}");
    assert!(out.contains("after"), "{out}");
    assert!(out.contains("\"event\":\"exit\""), "{out}");
    assert_eq!(w.users(), "2");
    assert!(!stderr.text().contains("hoopx: "), "{}", stderr.text());
}

#[test]
fn a_pty_line_recalled_from_history_and_edited_is_denied_and_a_held_line_waits() {
    let w = world("1h", None);
    let mut cmd = w.hoopx(AGENT);
    cmd.env("TERM", "xterm")
        .env("PSQL_HISTORY", w.env.path().join("psql_history"))
        .args(["exec", "--", "psql"])
        .args(["-X", "app"]);
    let mut p = PtyChild::spawn(cmd, 100, 30);
    p.output.wait_for("app=#", T);
    // `TABLE users;` is harmless (a SELECT); it goes into the line editor's history.
    p.type_str("TABLE users;\r");
    p.output.wait_for("(3 rows)", T);
    // Recall it (Up), go to the start (Ctrl-A), make it a DROP and press Enter, all in one
    // write as an agent would paste it. The keys alone never spell "drop table"; the line
    // on the screen does.
    p.type_str("\x1b[A");
    wait_for("the recalled line on screen", T, || {
        (p.output.text().matches("TABLE users;").count() >= 2).then_some(())
    });
    p.type_str("\x01drop \r");
    p.output.wait_for("no-drop-table", T);

    // A line that needs a review waits; the session stays open and usable afterwards.
    p.type_str("delete from users where id = 3;\r");
    let screen = p.output.wait_for("reviewers: dba", T);
    let id = review_id(&screen[screen.rfind("waiting for approval").unwrap()..]).unwrap();
    assert_eq!(w.users(), "3");
    assert_eq!(w.review(ALICE, &["approve", &id, "--yes"]).code(), 0);
    p.output.wait_for("DELETE 1", T);
    // Ctrl-C while a line waits gives up on it: the review is withdrawn, nothing runs.
    p.type_str("delete from users;\r");
    wait_for("a second waiting line", T, || {
        (p.output.text().matches("reviewers: dba").count() >= 2).then_some(())
    });
    p.type_str("\x03");
    p.output.wait_for("withdrawn (cancelled with Ctrl-C", T);
    let revoked = w.review(ALICE, &["list", "--status", "revoked", "--output", "json"]);
    let revoked: serde_json::Value = serde_json::from_str(&revoked.stdout).unwrap();
    assert_eq!(revoked[0]["command"], "delete from users;", "{revoked}");
    p.type_str("select 'still here';\r");
    p.output.wait_for("still here", T);
    p.type_str("\\q\r");
    let status = p.wait(T);
    // A line was withheld in this session: exit 77.
    assert_eq!(status.code(), Some(77), "{}", p.output.text());
    assert_eq!(w.users(), "2", "the table is still there, and one row went");
}

/// A webhook receiver: a plain HTTP/1.1 server on loopback that keeps the JSON bodies and
/// answers 200 (503 to the first `fail` requests), standing in for a chat tool's
/// incoming-webhook endpoint.
struct Webhook {
    url: String,
    bodies: Arc<Mutex<Vec<serde_json::Value>>>,
}

impl Webhook {
    fn start(fail: usize) -> Webhook {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let keep = bodies.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { break };
                let keep = keep.clone();
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(conn.try_clone().unwrap());
                    let mut conn = conn;
                    loop {
                        let mut len = 0usize;
                        let mut line = String::new();
                        loop {
                            line.clear();
                            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                                return;
                            }
                            let l = line.trim_end();
                            if l.is_empty() {
                                break;
                            }
                            if let Some(v) = l.to_ascii_lowercase().strip_prefix("content-length:")
                            {
                                len = v.trim().parse().unwrap_or(0);
                            }
                        }
                        let mut body = vec![0u8; len];
                        if reader.read_exact(&mut body).is_err() {
                            return;
                        }
                        let seen = {
                            let mut k = keep.lock().unwrap();
                            if let Ok(v) = serde_json::from_slice(&body) {
                                k.push(v);
                            }
                            k.len()
                        };
                        let answer: &[u8] = if seen <= fail {
                            b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n"
                        } else {
                            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"
                        };
                        let _ = conn.write_all(answer);
                    }
                });
            }
        });
        Webhook { url, bodies }
    }

    fn wait_for(&self, n: usize) -> Vec<serde_json::Value> {
        wait_for(&format!("{n} webhook calls"), T, || {
            let b = self.bodies.lock().unwrap();
            (b.len() >= n).then(|| b.clone())
        })
    }
}

#[test]
fn a_reviewer_on_a_terminal_sees_the_exact_command_and_confirms() {
    let w = world("1h", None);
    let asked = run(
        w.psql(
            &["--no-wait"],
            &["-c", "delete from users where name = 'Bob'"],
        ),
        "",
        T,
    );
    let id = review_id(&asked.stderr).unwrap();
    let approve = || {
        let mut c = w.hoopx(ALICE);
        c.env("TERM", "xterm").args(["review", "approve", &id]);
        PtyChild::spawn(c, 120, 30)
    };
    // "n": nothing changes.
    let mut p = approve();
    let screen = p.output.wait_for("approve this?", T);
    assert!(
        screen.contains("-c 'delete from users where name = '\\''Bob'\\'''"),
        "the exact command is shown: {screen}"
    );
    assert!(screen.contains("agent on pg asks to run"), "{screen}");
    p.type_str("n");
    assert_eq!(p.wait(T).code(), Some(1), "{}", p.output.text());
    let shown = w.review(ALICE, &["show", &id, "--output", "json"]);
    assert!(shown.stdout.contains("\"pending\""), "{shown:?}");
    // "y": approved.
    let mut p = approve();
    p.output.wait_for("approve this?", T);
    p.type_str("y");
    assert_eq!(p.wait(T).code(), Some(0), "{}", p.output.text());
    let shown = w.review(ALICE, &["show", &id, "--output", "json"]);
    assert!(shown.stdout.contains("\"approved\""), "{shown:?}");

    // The requester on a terminal waits with a spinner, then the command runs.
    let mut c = w.hoopx(AGENT);
    c.env("TERM", "xterm")
        .args(["exec", "--no-tty", "--", "psql"])
        .args(["-X", "app"])
        .args(["-c", "delete from users where id = 3"]);
    let mut agent = PtyChild::spawn(c, 160, 30);
    let screen = agent.output.wait_for("reviewers: dba", T);
    let id = review_id(&screen[screen.find("waiting for approval").unwrap()..]).unwrap();
    assert_eq!(w.review(ALICE, &["approve", &id, "--yes"]).code(), 0);
    agent.output.wait_for("DELETE 1", T);
    assert_eq!(agent.wait(T).code(), Some(0), "{}", agent.output.text());
    assert_eq!(w.users(), "2");
}

/// A line editor on a slow link: it reads what was typed, waits 1.5 s, then echoes it all,
/// and runs a line at Enter by printing `ran: LINE` (Ctrl-D ends it).
const SLOW_ECHO: &str = r#"
use strict; $| = 1;
system("stty raw -echo");
print "ready> ";
my $line = "";
while (sysread(STDIN, my $buf, 1024)) {
    select(undef, undef, undef, 1.5);
    for my $c (split //, $buf) {
        if ($c eq "\r" || $c eq "\n") { print "\r\nran: $line\r\n"; $line = ""; }
        elsif ($c eq "\x04") { system("stty sane"); exit 0; }
        else { print $c; $line .= $c; }
    }
}
"#;

#[test]
fn a_pty_line_the_gate_cannot_follow_is_withheld_when_its_echo_never_comes() {
    let env = Env::new();
    let script = env.write("slow.pl", SLOW_ECHO);
    let gw = Gateway::start(
        &env,
        Some(
            r#"[[targets]]
name = "slow"
kind = "command"
command = ["perl"]

[[rules.deny]]
name = "no-drop-table"
pattern = '(?i)\bdrop\s+table\b'
"#,
        ),
        None,
    );
    let mut cmd = gw.hoopx(&env);
    cmd.env("TERM", "xterm")
        .args(["exec", "--", "perl"])
        .arg(&script);
    let mut p = PtyChild::spawn(cmd, 100, 30);
    p.output.wait_for("ready> ", T);
    // Plain typing: the gate's copy is the line, so it runs without waiting for the echo.
    p.type_str("select 1\r");
    p.output.wait_for("ran: select 1", T);
    // An arrow key and Ctrl-A: the line is only known from the screen, and the screen shows
    // nothing for 1.5 s. The Enter is not released: the line is withheld.
    p.type_str("\x1b[A\x01drop x\r");
    p.output.wait_for("pty-unverified-line", T);
    p.type_str("\x04");
    let status = p.wait(T);
    assert_eq!(status.code(), Some(77), "{}", p.output.text());
    let screen = p.output.text();
    assert!(!screen.contains("ran: \x1b[A"), "{screen}");
    assert_eq!(screen.matches("ran: ").count(), 1, "{screen}");
}

#[test]
fn a_line_left_pending_by_no_wait_is_approved_later_and_runs_once_with_review() {
    let w = world("1h", None);
    let line = "delete from users where id = 2;\n";
    // The agent does not wait: 75, and the review outlives the session.
    let asked = run(w.psql(&["--no-wait"], &[]), line, T);
    assert_eq!(asked.code(), 75, "{asked:?}");
    let id = review_id(&asked.stderr).unwrap();
    assert!(
        asked.stderr.contains(&format!("--review {id}")),
        "{asked:?}"
    );
    let shown = w.review(ALICE, &["show", &id, "--output", "json"]);
    let v: serde_json::Value = serde_json::from_str(&shown.stdout).unwrap();
    assert_eq!(v["status"], "pending", "{v}");
    assert_eq!(v["kind"], "line", "{v}");
    assert_eq!(w.review(ALICE, &["approve", &id, "--yes"]).code(), 0);
    // Another line is not the approved one: it asks anew, and nothing runs.
    let other = run(
        w.psql(&["--no-wait", "--review", &id], &[]),
        "delete from users where id = 3;\n",
        T,
    );
    assert_eq!(other.code(), 75, "{other:?}");
    assert_eq!(w.users(), "3");
    // Nor is the same line from someone else.
    let mut c = w.hoopx(CAROL);
    c.args([
        "exec",
        "--no-tty",
        "--no-wait",
        "--review",
        &id,
        "--",
        "psql",
    ])
    .args(["-X", "app"]);
    assert_eq!(run(c, line, T).code(), 77);
    // The approved line runs, once.
    let ran = run(w.psql(&["--no-wait", "--review", &id], &[]), line, T);
    assert_eq!(ran.code(), 0, "{ran:?}");
    assert!(ran.stdout.contains("DELETE 1"), "{ran:?}");
    assert_eq!(w.users(), "2");
    let again = run(w.psql(&["--no-wait", "--review", &id], &[]), line, T);
    assert_eq!(again.code(), 77, "{again:?}");
    assert!(again.stderr.contains("used"), "{again:?}");
}
