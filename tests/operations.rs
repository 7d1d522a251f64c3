//! What an operator runs into: readiness, draining on SIGTERM, a replica killed mid-session,
//! retention, who may read what; the structured log, metrics, TLS on the listener, and the
//! limits that keep one client from starving the rest.

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::util::{
    run, spawn_piped, wait_for, wait_timeout, Env, Gateway, Lines, Postgres, DEV_TOKEN,
};
use crate::SHELL_CONFIG;

const T: Duration = Duration::from_secs(30);

/// A served gateway started from `cmd` (`hoopx gateway serve …` with its flags), waited on
/// until it listens; killed on drop.
struct Served {
    child: Child,
    url: String,
    stderr: Lines,
}

impl Served {
    fn start(env: &Env, store: &str, args: &[&str], vars: &[(&str, &str)]) -> Served {
        let mut cmd = env.hoopx();
        cmd.args(["gateway", "serve", "--dev", "--listen", "127.0.0.1:0"])
            .arg("--store")
            .arg(store)
            .args(args)
            .env("HOOPX_DEV_TOKEN", DEV_TOKEN)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in vars {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn gateway");
        let stderr = Lines::collect(child.stderr.take().unwrap());
        let url = crate::util::listening_url(&mut child, &stderr);
        Served { child, url, stderr }
    }

    fn hoopx(&self, env: &Env) -> Command {
        let mut c = env.hoopx();
        c.env("HOOPX_GATEWAY", &self.url)
            .env("HOOPX_TOKEN", DEV_TOKEN);
        c
    }

    fn signal(&self, sig: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.child.id() as i32), sig).unwrap();
    }

    fn get(&self, path: &str) -> (u16, serde_json::Value) {
        let resp = reqwest::blocking::Client::new()
            .get(format!("{}{path}", self.url))
            .bearer_auth(DEV_TOKEN)
            .send()
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().unwrap_or(serde_json::Value::Null))
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn config(env: &Env, text: &str) -> String {
    env.write("gateway.toml", text).display().to_string()
}

fn sqlite(env: &Env) -> String {
    format!("sqlite://{}", env.path().join("gw.db").display())
}

/// Stops the PostgreSQL server of `pg` (fast shutdown), as an outage would.
fn stop_postgres(pg: &Postgres) {
    let pid = std::fs::read_to_string(pg.dir.path().join("data/postmaster.pid")).unwrap();
    let pid: i32 = pid.lines().next().unwrap().trim().parse().unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    // The server is this process's child: its pid lives on as a zombie, its pid file not.
    wait_for("PostgreSQL to stop", T, || {
        (!pg.dir.path().join("data/postmaster.pid").exists()).then_some(())
    });
}

#[test]
fn readiness_follows_the_store_and_the_identity_provider() {
    let env = Env::new();
    let pg = Postgres::start();
    pg.create_db("gw");
    let gw = Served::start(&env, &pg.url("gw"), &[], &[]);
    let (status, body) = gw.get("/v1/ready");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["ready"], true);
    assert_eq!(body["checks"]["store"], "ok");
    assert_eq!(body["checks"]["signing_key"], "ok");
    assert_eq!(body["checks"]["identity_provider"], "not configured");

    stop_postgres(&pg);
    let (status, body) = gw.get("/v1/ready");
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["ready"], false);
    assert!(
        body["reason"].as_str().unwrap().starts_with("store: "),
        "{body}"
    );
    // Liveness: the process runs, whatever its store does.
    assert_eq!(gw.get("/v1/health").0, 200);

    // An identity provider whose keys cannot be fetched: not ready.
    let env = Env::new();
    let cfg = config(
        &env,
        &format!(
            "{SHELL_CONFIG}\n[auth]\nissuer = \"http://127.0.0.1:{}\"\naudience = \"hoopx\"\n",
            crate::util::free_port()
        ),
    );
    let gw = Served::start(&env, &sqlite(&env), &["--config", &cfg], &[]);
    let (status, body) = gw.get("/v1/ready");
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["checks"]["store"], "ok");
    assert!(
        body["reason"]
            .as_str()
            .unwrap()
            .starts_with("identity provider: "),
        "{body}"
    );
}

#[test]
fn sigterm_drains_running_sessions_and_refuses_new_ones() {
    let env = Env::new();
    let cfg = config(&env, SHELL_CONFIG);
    let store = sqlite(&env);
    let gw = Served::start(
        &env,
        &store,
        &["--config", &cfg, "--drain-grace", "20s"],
        &[],
    );
    let mut c = gw.hoopx(&env);
    c.args(["exec", "--", "cat"]);
    let (mut client, out, _err) = spawn_piped(c);
    let mut stdin = client.stdin.take().unwrap();
    stdin.write_all(b"before\n").unwrap();
    out.wait_for("before", T);

    gw.signal(nix::sys::signal::Signal::SIGTERM);
    wait_for("readiness to fail", T, || {
        let (status, body) = gw.get("/v1/ready");
        (status == 503 && body["draining"] == true).then_some(())
    });
    let mut c = gw.hoopx(&env);
    c.args(["exec", "--", "sh", "-c", "echo ran"]);
    let refused = run(c, "", T);
    assert_eq!(refused.code(), 69, "{refused:?}");
    assert!(!refused.stdout.contains("ran"), "{refused:?}");
    assert!(refused.stderr.contains("draining"), "{refused:?}");

    // The running session goes on, and ends as it would have.
    stdin.write_all(b"after\n").unwrap();
    out.wait_for("after", T);
    drop(stdin);
    let status = wait_timeout(&mut client, T).expect("the client ends");
    assert!(status.success(), "{status:?}");
    let mut gw = gw;
    let status = wait_timeout(&mut gw.child, T).expect("the gateway stops once drained");
    assert!(status.success(), "{status:?} {}", gw.stderr.text());
    assert!(
        gw.stderr.text().contains("draining"),
        "{}",
        gw.stderr.text()
    );

    // With a short grace, a session that does not end is aborted, recorded.
    let gw = Served::start(
        &env,
        &store,
        &["--config", &cfg, "--drain-grace", "1s"],
        &[],
    );
    let mut c = gw.hoopx(&env);
    c.args(["exec", "--", "sh", "-c", "echo ready; exec sleep 600"]);
    let (mut client, out, _err) = spawn_piped(c);
    out.wait_for("ready", T);
    gw.signal(nix::sys::signal::Signal::SIGTERM);
    let mut gw = gw;
    wait_timeout(&mut gw.child, T).expect("the gateway stops after the grace");
    wait_timeout(&mut client, T).expect("the client ends");
    let gw = Served::start(&env, &store, &["--config", &cfg], &[]);
    let (_, list) = gw.get("/v1/sessions");
    let statuses: Vec<&str> = list["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["aborted", "exited"], "{list}");
}

#[test]
fn a_killed_replicas_sessions_end_abandoned_and_verify_as_such() {
    let env = Env::new();
    let cfg = config(&env, SHELL_CONFIG);
    let store = sqlite(&env);
    let lease = ["--config", &cfg, "--lease", "1s"];
    let mut a = Served::start(&env, &store, &lease, &[]);
    let mut c = a.hoopx(&env);
    c.args([
        "exec",
        "--",
        "sh",
        "-c",
        "echo ready; while :; do echo tick; sleep 0.05; done",
    ]);
    let (mut client, out, _err) = spawn_piped(c);
    out.wait_for("ready", T);
    out.wait_for("tick", T);
    // A second replica on the same store, serving on.
    let b = Served::start(&env, &store, &lease, &[]);
    let (_, list) = b.get("/v1/sessions");
    let id = list["sessions"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(list["sessions"][0]["status"], "running", "{list}");
    // Someone follows it live through the other replica.
    let mut c = b.hoopx(&env);
    c.args(["replay", "--follow", &id]);
    let (mut follower, followed, _) = spawn_piped(c);
    followed.wait_for("tick", T);
    a.signal(nix::sys::signal::Signal::SIGKILL);
    let _ = a.child.wait();
    let _ = wait_timeout(&mut client, T);

    let s = wait_for("the session to be abandoned", T, || {
        let (_, s) = b.get(&format!("/v1/sessions/{id}"));
        (s["status"] == "abandoned").then_some(s)
    });
    assert!(
        s["reason"]
            .as_str()
            .unwrap()
            .contains("stopped renewing its lease"),
        "{s}"
    );
    let mut c = b.hoopx(&env);
    c.args(["verify", &id]);
    let v = run(c, "", T);
    assert_eq!(v.code(), 0, "{v:?}");
    assert!(v.stdout.starts_with("OK: "), "{v:?}");
    assert!(v.stdout.contains("ABANDONED: "), "{v:?}");
    assert!(v.stdout.contains("never signed by it"), "{v:?}");
    let mut c = b.hoopx(&env);
    c.args(["verify", &id, "-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(&run(c, "", T).stdout).unwrap();
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["facts"]["status"], "abandoned", "{v}");
    let tail = v["abandoned"]["unsigned_tail"].as_i64().unwrap();
    let signed = v["abandoned"]["signed_through"].as_i64().unwrap();
    assert!(
        tail > 0,
        "the killed replica left events it had not signed: {v}"
    );
    assert_eq!(signed + tail + 2, v["events"].as_i64().unwrap(), "{v}");
    // The replica that closed it counts it.
    assert_eq!(
        sample(
            &scrape(&b.url),
            "hoopx_sessions_ended_total",
            &[("target", "shell"), ("outcome", "abandoned")]
        ),
        Some(1.0)
    );
    // The ledger agrees: the whole store verifies.
    let mut c = b.hoopx(&env);
    c.args(["verify", "--all"]);
    let all = run(c, "", T);
    assert_eq!(all.code(), 0, "{all:?}");
    // Following it ended; listing shows it.
    let status = wait_timeout(&mut follower, T).expect("--follow ends on an abandoned session");
    assert!(status.success(), "{status:?}");
    let mut c = b.hoopx(&env);
    c.args(["sessions", "list"]);
    let list = run(c, "", T);
    assert!(list.stdout.contains("abandoned"), "{list:?}");
}

/// A replica that stalls past its lease (SIGSTOP here: a frozen VM, a long pause) while
/// another closes its session as abandoned cannot record past that close when it wakes: the
/// store refuses its writes, the caller's session ends, and the recording still verifies.
#[test]
fn a_stalled_replica_cannot_record_past_the_close_of_its_abandoned_session() {
    use nix::sys::signal::Signal;
    let env = Env::new();
    let cfg = config(&env, SHELL_CONFIG);
    let store = sqlite(&env);
    let lease = ["--config", &cfg, "--lease", "1s"];
    let a = Served::start(&env, &store, &lease, &[]);
    let mut c = a.hoopx(&env);
    c.args([
        "exec",
        "--",
        "sh",
        "-c",
        "echo ready; while :; do echo tick; sleep 0.05; done",
    ]);
    let (mut client, out, err) = spawn_piped(c);
    out.wait_for("tick", T);
    let b = Served::start(&env, &store, &lease, &[]);
    let (_, list) = b.get("/v1/sessions");
    let id = list["sessions"][0]["id"].as_str().unwrap().to_string();
    a.signal(Signal::SIGSTOP);
    let closed = wait_for("the session to be abandoned", T, || {
        let (_, s) = b.get(&format!("/v1/sessions/{id}"));
        (s["status"] == "abandoned").then_some(s)
    });
    a.signal(Signal::SIGCONT);
    // The woken replica cannot record the tool's output any more: the session ends.
    let status = wait_timeout(&mut client, T).expect("the caller's session ends");
    assert!(!status.success(), "{status:?}\n{}", err.text());
    // Nothing landed after the close: the recording verifies, as abandoned.
    let (_, s) = b.get(&format!("/v1/sessions/{id}"));
    assert_eq!(s["event_count"], closed["event_count"], "{s}");
    assert_eq!(s["status"], "abandoned", "{s}");
    let mut c = b.hoopx(&env);
    c.args(["verify", &id]);
    let v = run(c, "", T);
    assert_eq!(v.code(), 0, "{v:?}");
    assert!(v.stdout.contains("ABANDONED: "), "{v:?}");
    assert!(
        err.text()
            .contains("no longer served by this gateway replica"),
        "{}",
        err.text()
    );
    // Its end stays the one the closing replica recorded, entered once in the ledger.
    let (_, s) = b.get(&format!("/v1/sessions/{id}"));
    assert_eq!(s["status"], "abandoned", "{s}");
    let mut c = b.hoopx(&env);
    c.args(["verify", "--all"]);
    let all = run(c, "", T);
    assert_eq!(all.code(), 0, "{all:?}");
    // The woken replica serves new sessions as before.
    let mut c = a.hoopx(&env);
    c.args(["exec", "--", "sh", "-c", "echo again"]);
    let again = run(c, "", T);
    assert_eq!(
        (again.code(), again.stdout.as_str()),
        (0, "again\n"),
        "{again:?}"
    );
}

const ACCESS_CONFIG: &str = r#"[[targets]]
name = "shell"
kind = "command"
command = ["sh"]

[[rules.review]]
name = "wipes-need-a-dba"
pattern = '\bwipe\b'
reviewers = ["dba"]

[access]
auditors = ["audit"]

[[dev.identities]]
name = "alice"
token = "tok-alice-0001"
groups = []

[[dev.identities]]
name = "bob"
token = "tok-bob-00001"
groups = []

[[dev.identities]]
name = "carol"
token = "tok-carol-0001"
groups = ["audit"]

[[dev.identities]]
name = "dan"
token = "tok-dan-00001"
groups = ["dba"]
"#;

#[test]
fn identities_read_their_own_sessions_reviewers_their_reviews_auditors_all() {
    let env = Env::new();
    let cfg = config(&env, ACCESS_CONFIG);
    let gw = Served::start(&env, &sqlite(&env), &["--config", &cfg], &[]);
    let as_ = |token: &str| {
        let mut c = env.hoopx();
        c.env("HOOPX_GATEWAY", &gw.url).env("HOOPX_TOKEN", token);
        c
    };
    let http = reqwest::blocking::Client::new();
    let get = |token: &str, path: &str| {
        let r = http
            .get(format!("{}{path}", gw.url))
            .bearer_auth(token)
            .send()
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json::<serde_json::Value>().unwrap())
    };
    let (alice, bob, carol, dan) = (
        "tok-alice-0001",
        "tok-bob-00001",
        "tok-carol-0001",
        "tok-dan-00001",
    );
    for who in [alice, bob] {
        let mut c = as_(who);
        c.args(["exec", "--", "sh", "-c", "echo secret-output"]);
        assert_eq!(run(c, "", T).code(), 0);
    }
    let ids = |token: &str| -> Vec<(String, String)> {
        let (status, list) = get(token, "/v1/sessions");
        assert_eq!(status, 200, "{list}");
        list["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["identity"].as_str().unwrap().to_string(),
                    s["id"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    let mine = ids(bob);
    assert_eq!(mine.len(), 1, "{mine:?}");
    assert_eq!(mine[0].0, "bob");
    let all = ids(carol);
    assert_eq!(all.len(), 2, "an auditor reads all: {all:?}");
    let alices = &all.iter().find(|(who, _)| who == "alice").unwrap().1;

    // Bob may not read Alice's session in any way.
    for path in [
        format!("/v1/sessions/{alices}"),
        format!("/v1/sessions/{alices}/events"),
        format!("/v1/sessions/{alices}/checkpoints"),
        format!("/v1/ledger?session={alices}"),
        "/v1/ledger".to_string(),
        "/v1/sessions?user=alice".to_string(),
    ] {
        let (status, body) = get(bob, &path);
        assert_eq!(status, 403, "{path}: {body}");
        assert_eq!(body["error"]["code"], "forbidden", "{path}: {body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("bob may not read"),
            "{body}"
        );
    }
    let mut c = as_(bob);
    c.args(["replay", alices]);
    let out = run(c, "", T);
    assert_ne!(out.code(), 0, "{out:?}");
    assert!(!out.stdout.contains("secret-output"), "{out:?}");
    assert!(out.stderr.contains("may not read"), "{out:?}");
    // Alice reads and verifies her own; the auditor reads hers and the whole ledger.
    let mut c = as_(alice);
    c.args(["verify", alices]);
    let out = run(c, "", T);
    assert_eq!(out.code(), 0, "{out:?}");
    let mut c = as_(carol);
    c.args(["replay", alices]);
    assert!(run(c, "", T).stdout.contains("secret-output"));
    let mut c = as_(carol);
    c.args(["verify", "--all"]);
    assert_eq!(run(c, "", T).code(), 0);

    // A review: its requester and the reviewers who may decide it read it; others do not.
    let opened = http
        .post(format!("{}/v1/sessions", gw.url))
        .bearer_auth(alice)
        .json(&serde_json::json!({"argv": ["sh", "-c", "echo wipe"], "mode": "pipe"}))
        .send()
        .unwrap();
    assert_eq!(opened.status(), 202);
    let review: serde_json::Value = opened.json().unwrap();
    let rid = review["review"]["id"].as_str().unwrap().to_string();
    for (token, readable) in [(alice, true), (dan, true), (carol, true), (bob, false)] {
        let (status, body) = get(token, &format!("/v1/reviews/{rid}"));
        assert_eq!(status, if readable { 200 } else { 403 }, "{body}");
        let (_, list) = get(token, "/v1/reviews");
        let listed = list["reviews"].as_array().unwrap().len();
        assert_eq!(listed, usize::from(readable), "{list}");
    }
}

#[test]
fn export_then_prune_keeps_the_evidence_verifiable_and_the_ledger_whole() {
    let env = Env::new();
    let cfg = config(
        &env,
        &format!("{SHELL_CONFIG}\n[store]\nretention = \"90d\"\n"),
    );
    let store = sqlite(&env);
    let gw = Served::start(&env, &store, &["--config", &cfg], &[]);
    for word in ["one", "two"] {
        let mut c = gw.hoopx(&env);
        c.args(["exec", "--", "sh", "-c", &format!("echo {word}")]);
        assert_eq!(run(c, "", T).code(), 0);
    }
    let dir = env.path().join("evidence");
    let mut c = gw.hoopx(&env);
    c.args(["sessions", "export"]).arg(&dir);
    let out = run(c, "", T);
    assert_eq!(out.code(), 0, "{out:?}");

    let prune = |extra: &[&str]| {
        let mut c = env.hoopx();
        c.args(["gateway", "prune", "--store", &store, "--older-than", "0s"])
            .args(extra);
        run(c, "", T)
    };
    let dry = prune(&["--dry-run"]);
    assert_eq!(dry.code(), 0, "{dry:?}");
    assert_eq!(
        dry.stdout.matches("would prune session ").count(),
        2,
        "{dry:?}"
    );
    assert_eq!(
        gw.get("/v1/sessions").1["sessions"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let done = prune(&[]);
    assert_eq!(done.code(), 0, "{done:?}");
    assert_eq!(
        done.stdout.matches("pruned session ").count(),
        2,
        "{done:?}"
    );
    assert!(done.stdout.contains("pruned 2 session(s)"), "{done:?}");
    assert!(gw.get("/v1/sessions").1["sessions"]
        .as_array()
        .unwrap()
        .is_empty());

    // The export still verifies offline; the store's ledger knows what was pruned.
    let mut c = gw.hoopx(&env);
    c.arg("verify").arg(&dir);
    let out = run(c, "", T);
    assert_eq!(out.code(), 0, "{out:?}");
    let mut c = gw.hoopx(&env);
    c.args(["verify", "--all"]);
    let out = run(c, "", T);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(out.stdout.contains("2 pruned by retention"), "{out:?}");
    // An export made after the prune does not miss the pruned sessions either.
    let mut c = gw.hoopx(&env);
    c.args(["exec", "--", "sh", "-c", "echo three"]);
    assert_eq!(run(c, "", T).code(), 0);
    let later = env.path().join("later");
    let mut c = gw.hoopx(&env);
    c.args(["sessions", "export"]).arg(&later);
    assert_eq!(run(c, "", T).code(), 0);
    let mut c = gw.hoopx(&env);
    c.arg("verify").arg(&later);
    let out = run(c, "", T);
    assert_eq!(out.code(), 0, "{out:?}");

    // Without a period, prune asks for one.
    let mut c = env.hoopx();
    c.args(["gateway", "prune", "--store", &store]);
    let out = run(c, "", T);
    assert_eq!(out.code(), 64, "{out:?}");
    assert!(out.stderr.contains("--older-than"), "{out:?}");
}

/// A shell session whose command line and output carry an e-mail address (masked by the
/// config) and whose environment carries the bearer token.
fn session_with_secrets(gw: &Gateway, env: &Env) -> String {
    let mut c = gw.hoopx(env);
    c.args([
        "exec",
        "--target",
        "shell",
        "--",
        "sh",
        "-c",
        "echo out-alice@example.com; exit 3 # carol@example.net",
    ]);
    let out = run(c, "", T);
    assert_eq!(out.code(), 3, "{out:?}");
    assert!(out.stdout.contains("[REDACTED:email]"), "{out:?}");
    out.stdout
}

#[test]
fn the_json_log_has_one_object_per_event_with_fields_and_never_a_secret() {
    let env = Env::new();
    let gw = Gateway::start_with(&env, Some(SHELL_CONFIG), None, |c| {
        c.args(["--log-format", "json"]).env("HOOPX_LOG", "debug");
    });
    session_with_secrets(&gw, &env);
    let log = gw.stderr.wait_for("\"session ended\"", T);
    let events: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let opened = events
        .iter()
        .find(|e| e["message"] == "session opened")
        .expect("a session opened event");
    assert_eq!(opened["level"], "INFO");
    assert_eq!(opened["target"], "hoopx::access");
    assert_eq!(opened["identity"], "dev");
    assert_eq!(opened["target_name"], "shell");
    let id = opened["session"].as_str().unwrap();
    let ended = events
        .iter()
        .find(|e| e["message"] == "session ended")
        .unwrap();
    assert_eq!(ended["session"], id);
    assert_eq!(ended["status"], "exited");
    assert_eq!(ended["exit"], 3);
    // The command line is logged as stored: masked. No token, no unmasked output.
    assert!(opened["argv"]
        .as_str()
        .unwrap()
        .contains("[REDACTED:email]"));
    for secret in [DEV_TOKEN, "carol@example.net", "alice@example.com"] {
        assert!(!log.contains(secret), "{secret} in the log:\n{log}");
    }
}

#[test]
fn the_log_filter_comes_from_hoopx_log_and_a_bad_one_is_refused() {
    let env = Env::new();
    // Warnings only: the access log (info) is filtered out.
    let gw = Gateway::start_with(&env, Some(SHELL_CONFIG), None, |c| {
        c.env("HOOPX_LOG", "warn,hoopx=info,hoopx::access=warn");
    });
    session_with_secrets(&gw, &env);
    let mut c = gw.hoopx(&env);
    c.args(["sessions", "list", "--output", "json"]);
    let list = run(c, "", T);
    assert!(list.stdout.contains("\"exited\""), "{list:?}");
    assert!(
        !gw.stderr.text().contains("session opened"),
        "{}",
        gw.stderr.text()
    );

    let mut c = env.hoopx();
    c.args(["gateway", "serve", "--dev", "--listen", "127.0.0.1:0"])
        .env("HOOPX_LOG", "info,=[");
    let out = run(c, "", T);
    assert_eq!(out.code(), 78, "{out:?}");
    assert!(out.stderr.contains("bad log filter HOOPX_LOG"), "{out:?}");
}

/// The value of the sample `name` whose labels include `labels`, from Prometheus text.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (key, value) = l.rsplit_once(' ')?;
        let (n, rest) = key.split_once('{').unwrap_or((key, ""));
        let ok = n == name
            && labels
                .iter()
                .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")));
        ok.then(|| value.parse().ok()).flatten()
    })
}

fn scrape(url: &str) -> String {
    let resp = reqwest::blocking::get(format!("{url}/metrics")).unwrap();
    assert_eq!(resp.status(), 200);
    resp.text().unwrap()
}

#[test]
fn metrics_count_sessions_bytes_masks_denials_and_latencies() {
    let env = Env::new();
    let port = crate::util::free_port();
    let config =
        format!("{SHELL_CONFIG}\n[[rules.review]]\nname = \"deploys\"\npattern = '\\bdeploy\\b'\nreviewers = [\"dba\"]\n");
    let gw = Gateway::start_with(&env, Some(&config), None, |c| {
        c.args(["--metrics-listen", &format!("127.0.0.1:{port}")]);
    });
    let exec = |args: &[&str], stdin: &str| {
        let mut c = gw.hoopx(&env);
        c.args(["exec", "--target", "shell", "--"]).args(args);
        run(c, stdin, T)
    };
    // 34 bytes out, two e-mail addresses masked.
    let out = exec(&["sh", "-c", "echo alice@example.com bob@example.org"], "");
    assert_eq!(out.code(), 0, "{out:?}");
    // 6 bytes in, 6 out.
    let out = exec(&["cat"], "hello\n");
    assert_eq!(out.stdout, "hello\n", "{out:?}");
    // Refused by the deny rule before it starts.
    let out = exec(&["sh", "-c", "rm -rf /tmp/nothing-here"], "");
    assert_ne!(out.code(), 0, "{out:?}");

    let text = wait_for("the last session stream to end", T, || {
        let t = scrape(&gw.url);
        (sample(&t, "hoopx_sessions_open", &[]) == Some(0.0)).then_some(t)
    });
    let shell = [("target", "shell")];
    let get = |name: &str, labels: &[(&str, &str)]| {
        sample(&text, name, labels).unwrap_or_else(|| panic!("no {name} {labels:?} in\n{text}"))
    };
    assert_eq!(get("hoopx_sessions_started_total", &shell), 3.0);
    assert_eq!(
        get(
            "hoopx_sessions_ended_total",
            &[("target", "shell"), ("outcome", "exited")]
        ),
        2.0
    );
    assert_eq!(
        get(
            "hoopx_sessions_ended_total",
            &[("target", "shell"), ("outcome", "denied")]
        ),
        1.0
    );
    assert_eq!(
        get(
            "hoopx_session_bytes_total",
            &[("target", "shell"), ("direction", "in")]
        ),
        6.0
    );
    assert_eq!(
        get(
            "hoopx_session_bytes_total",
            &[("target", "shell"), ("direction", "out")]
        ),
        40.0
    );
    assert_eq!(get("hoopx_masks_total", &[("rule", "email")]), 2.0);
    assert_eq!(get("hoopx_denials_total", &[("rule", "no-rm")]), 1.0);
    assert!(get("hoopx_store_write_seconds_count", &[]) >= 2.0, "{text}");
    assert!(get("hoopx_relay_seconds_count", &[]) >= 2.0, "{text}");
    // The metrics listener serves the same registry.
    let other = scrape(&format!("http://127.0.0.1:{port}"));
    assert_eq!(
        sample(&other, "hoopx_sessions_started_total", &shell),
        Some(3.0)
    );

    // Reviews by state: one requested (pending), then revoked by its requester.
    assert_eq!(
        sample(&text, "hoopx_reviews_total", &[("state", "pending")]),
        None
    );
    let mut c = gw.hoopx(&env);
    c.args([
        "exec",
        "--target",
        "shell",
        "--no-wait",
        "--output",
        "json",
        "--",
    ])
    .args(["sh", "-c", "echo deploy"]);
    let asked = run(c, "", T);
    assert_eq!(asked.code(), 75, "{asked:?}");
    let first: serde_json::Value =
        serde_json::from_str(asked.stdout.lines().next().unwrap()).unwrap();
    let id = first["review_id"]
        .as_str()
        .expect("a review id")
        .to_string();
    let mut c = gw.hoopx(&env);
    c.args(["review", "revoke", &id]);
    let out = run(c, "", T);
    assert_eq!(out.code(), 0, "{out:?}");
    let text = scrape(&gw.url);
    let get = |name: &str, labels: &[(&str, &str)]| {
        sample(&text, name, labels).unwrap_or_else(|| panic!("no {name} {labels:?} in\n{text}"))
    };
    assert_eq!(get("hoopx_reviews_total", &[("state", "pending")]), 1.0);
    assert_eq!(get("hoopx_reviews_total", &[("state", "revoked")]), 1.0);
}

/// A CA and a certificate for 127.0.0.1 it signed, as PEM: (ca, cert, key).
pub(crate) fn issue(ca_name: &str) -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, ca_name);
    let ca = ca.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut leaf = CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
    leaf.distinguished_name.push(DnType::CommonName, "gateway");
    let leaf = leaf.signed_by(&key, &ca, &ca_key).unwrap();
    (ca.pem(), leaf.pem(), key.serialize_pem())
}

#[test]
fn a_tls_gateway_is_trusted_through_hoopx_ca_and_reloads_its_certificate() {
    let env = Env::new();
    let (ca, cert, key) = issue("first CA");
    let ca_path = env.write("ca.pem", &ca);
    let cert_path = env.write("gw.crt", &cert);
    let key_path = env.write("gw.key", &key);
    let gw = Gateway::start_with(&env, Some(SHELL_CONFIG), None, |c| {
        c.arg("--tls-cert").arg(&cert_path);
        c.arg("--tls-key").arg(&key_path);
    });
    assert!(gw.url.starts_with("https://127.0.0.1:"), "{}", gw.url);
    let exec = |ca: Option<&std::path::Path>| {
        let mut c = gw.hoopx(&env);
        if let Some(p) = ca {
            c.env("HOOPX_CA", p);
        }
        c.args([
            "exec",
            "--target",
            "shell",
            "--",
            "sh",
            "-c",
            "echo over-tls",
        ]);
        run(c, "", T)
    };
    // Trusted through HOOPX_CA: the API and the session stream both speak TLS.
    let out = exec(Some(&ca_path));
    assert_eq!(out.code(), 0, "{out:?}");
    assert_eq!(out.stdout, "over-tls\n");
    // Without it, a clear refusal that names HOOPX_CA; the tool never runs.
    let out = exec(None);
    assert_eq!(out.code(), 69, "{out:?}");
    assert!(out.stderr.contains("HOOPX_CA"), "{out:?}");
    assert!(!out.stdout.contains("over-tls"), "{out:?}");
    // Or through `ca` in the client config, relative to the config's directory: for exec
    // and for the commands that only ask the gateway (status).
    let dir = env.path().join("config/hoopx");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("ca.pem"), &ca).unwrap();
    std::fs::write(dir.join("config.toml"), "ca = \"ca.pem\"\n").unwrap();
    let out = exec(None);
    assert_eq!(out.code(), 0, "{out:?}");
    let mut c = gw.hoopx(&env);
    c.args(["status", "--output", "json"]);
    let out = run(c, "", T);
    assert_eq!(out.code(), 0, "{out:?}");
    std::fs::remove_file(dir.join("config.toml")).unwrap();
    // Plain http to the TLS port gets nothing.
    let mut c = env.hoopx();
    c.env("HOOPX_GATEWAY", gw.url.replace("https://", "http://"))
        .env("HOOPX_TOKEN", DEV_TOKEN)
        .args(["exec", "--target", "shell", "--", "true"]);
    assert_ne!(run(c, "", T).code(), 0);

    // A certificate from another CA replaces the files: the gateway picks it up.
    let (ca2, cert2, key2) = issue("second CA");
    let ca2_path = env.write("ca2.pem", &ca2);
    std::fs::write(&key_path, key2).unwrap();
    std::fs::write(&cert_path, cert2).unwrap();
    gw.stderr.wait_for("TLS certificate reloaded", T);
    wait_for("the new certificate in use", T, || {
        (exec(Some(&ca2_path)).code() == 0).then_some(())
    });
    let out = exec(Some(&ca_path));
    assert_eq!(out.code(), 69, "the old CA no longer verifies it: {out:?}");
    // SIGHUP reloads too.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(gw.child.id() as i32),
        nix::sys::signal::Signal::SIGHUP,
    )
    .unwrap();
    gw.stderr.wait_for("TLS certificate reloaded (SIGHUP)", T);
    assert_eq!(exec(Some(&ca2_path)).code(), 0);
}

#[test]
fn a_bad_ca_file_or_certificate_is_a_config_error() {
    let env = Env::new();
    let bad = env.write("bad.pem", "not a certificate\n");
    let mut c = env.hoopx();
    c.args(["gateway", "serve", "--dev", "--listen", "127.0.0.1:0"])
        .arg("--tls-cert")
        .arg(&bad)
        .arg("--tls-key")
        .arg(&bad);
    let out = run(c, "", T);
    assert_eq!(out.code(), 78, "{out:?}");
    assert!(out.stderr.contains("bad.pem"), "{out:?}");

    let mut c = env.hoopx();
    c.env("HOOPX_GATEWAY", "https://127.0.0.1:1")
        .env("HOOPX_TOKEN", DEV_TOKEN)
        .env("HOOPX_CA", &bad)
        .args(["exec", "--", "true"]);
    let out = run(c, "", T);
    assert_eq!(out.code(), 78, "{out:?}");
    assert!(
        out.stderr.contains("HOOPX_CA") && out.stderr.contains("bad.pem"),
        "{out:?}"
    );
}

fn limits_config(limits: &str) -> String {
    format!("{SHELL_CONFIG}\n[limits]\n{limits}\n")
}

/// Opens a session over the API without attaching its stream.
fn open_unattached(gw: &Gateway, argv: &[&str]) -> reqwest::blocking::Response {
    reqwest::blocking::Client::new()
        .post(format!("{}/v1/sessions", gw.url))
        .bearer_auth(DEV_TOKEN)
        .json(&serde_json::json!({"target": "shell", "argv": argv, "mode": "pipe"}))
        .send()
        .unwrap()
}

/// Reads until the peer closes; true if it closed within `within`.
fn closed_within(s: &mut std::net::TcpStream, within: Duration) -> bool {
    use std::io::Read;
    s.set_read_timeout(Some(within)).unwrap();
    let mut buf = [0u8; 512];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

#[test]
fn idle_and_half_sent_connections_neither_block_sessions_nor_stay() {
    use std::io::Write;
    let env = Env::new();
    let config = limits_config("header_read_timeout = \"1s\"\nmax_connections = 400");
    let gw = Gateway::start(&env, Some(&config), None);
    let addr = gw.url.trim_start_matches("http://").to_string();
    let mut idle: Vec<_> = (0..200)
        .map(|_| std::net::TcpStream::connect(&addr).unwrap())
        .collect();
    let mut half = std::net::TcpStream::connect(&addr).unwrap();
    half.write_all(b"GET /v1/health HTTP/1.1\r\nHost: gw\r\n")
        .unwrap();
    // A real session runs while they are open.
    let mut c = gw.hoopx(&env);
    c.args([
        "exec",
        "--target",
        "shell",
        "--",
        "sh",
        "-c",
        "echo still-served",
    ]);
    let out = run(c, "", T);
    assert_eq!(out.stdout, "still-served\n", "{out:?}");
    // The header timeout drops them all, the half-sent request included.
    assert!(closed_within(&mut half, Duration::from_secs(10)));
    for s in idle.iter_mut() {
        assert!(closed_within(s, Duration::from_secs(10)));
    }
}

#[test]
fn past_the_connection_cap_new_connections_get_503() {
    use std::io::{Read, Write};
    let env = Env::new();
    let gw = Gateway::start(&env, Some(&limits_config("max_connections = 4")), None);
    let addr = gw.url.trim_start_matches("http://").to_string();
    let _held: Vec<_> = (0..4)
        .map(|_| std::net::TcpStream::connect(&addr).unwrap())
        .collect();
    let text = wait_for("a 503 past the cap", T, || {
        let mut s = std::net::TcpStream::connect(&addr).ok()?;
        s.write_all(b"GET /v1/health HTTP/1.1\r\nHost: gw\r\n\r\n")
            .ok()?;
        let mut text = String::new();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let _ = s.read_to_string(&mut text);
        text.starts_with("HTTP/1.1 503").then_some(text)
    });
    assert!(text.contains("too many open connections"), "{text}");
    let body: serde_json::Value =
        serde_json::from_str(&text[text.find("\r\n\r\n").unwrap() + 4..]).unwrap();
    assert_eq!(body["error"]["code"], "unavailable", "{body}");
    assert!(text.contains("retry-after: 1"), "{text}");
    let metrics = reqwest::blocking::get(format!("{}/metrics", gw.url));
    // The metrics request itself needs a slot: the cap holds until one is freed.
    assert!(metrics.is_err() || metrics.unwrap().status() == 503);
}

/// A session stream is a connection like any other under `max_connections`, for as long as
/// it stays open (not only until its upgrade).
#[test]
fn an_attached_session_stream_holds_its_connection_slot() {
    use std::io::{Read, Write};
    let env = Env::new();
    let gw = Gateway::start(&env, Some(&limits_config("max_connections = 2")), None);
    let addr = gw.url.trim_start_matches("http://").to_string();
    let opened: serde_json::Value = open_unattached(&gw, &["cat"]).json().unwrap();
    let path = opened["stream"].as_str().expect("a stream path");
    let mut ws = std::net::TcpStream::connect(&addr).unwrap();
    write!(
        ws,
        "GET {path} HTTP/1.1\r\nHost: gw\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Authorization: Bearer {DEV_TOKEN}\r\nhoopx-protocol: 1\r\n\r\n"
    )
    .unwrap();
    let mut head = [0u8; 512];
    ws.set_read_timeout(Some(T)).unwrap();
    let n = ws.read(&mut head).unwrap();
    let head = String::from_utf8_lossy(&head[..n]).to_string();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    // With the stream open, one more connection fits and the next does not.
    let ask = |s: &mut std::net::TcpStream| -> String {
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(b"GET /v1/health HTTP/1.1\r\nHost: gw\r\n\r\n")
            .ok();
        let mut buf = [0u8; 1024];
        let n = s.read(&mut buf).unwrap_or(0);
        String::from_utf8_lossy(&buf[..n]).to_string()
    };
    wait_for("the stream and one connection to fill the cap", T, || {
        // The session request's own connection may still be closing: until it is, this
        // one is refused.
        let mut held = std::net::TcpStream::connect(&addr).ok()?;
        if !ask(&mut held).starts_with("HTTP/1.1 200") {
            return None;
        }
        let mut probe = std::net::TcpStream::connect(&addr).ok()?;
        ask(&mut probe).starts_with("HTTP/1.1 503").then_some(())
    });
    drop(ws);
}

#[test]
fn one_identity_cannot_pile_up_unattached_sessions_or_huge_command_lines() {
    let env = Env::new();
    let config = limits_config("pending_sessions = 2\nargv_bytes = 1000\nattach_within = \"60s\"");
    let gw = Gateway::start(&env, Some(&config), None);
    for _ in 0..2 {
        assert_eq!(open_unattached(&gw, &["cat"]).status(), 201);
    }
    let refused = open_unattached(&gw, &["cat"]);
    assert_eq!(refused.status(), 429);
    let body: serde_json::Value = refused.json().unwrap();
    assert_eq!(body["error"]["code"], "limited", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("2 sessions opened and not attached"),
        "{body}"
    );
    // The client says the same and the tool never runs.
    let mut c = gw.hoopx(&env);
    c.args(["exec", "--target", "shell", "--", "sh", "-c", "echo ran"]);
    let out = run(c, "", T);
    assert_ne!(out.code(), 0, "{out:?}");
    assert!(out.stderr.contains("not attached yet"), "{out:?}");
    assert!(!out.stdout.contains("ran"));

    let env2 = Env::new();
    let gw2 = Gateway::start(&env2, Some(&config), None);
    let huge = "x".repeat(2000);
    let mut c = gw2.hoopx(&env2);
    c.args([
        "exec",
        "--target",
        "shell",
        "--",
        "sh",
        "-c",
        &format!("echo {huge}"),
    ]);
    let out = run(c, "", T);
    assert_ne!(out.code(), 0, "{out:?}");
    assert!(
        out.stderr.contains("the command line is too long"),
        "{out:?}"
    );
    assert!(out.stderr.contains("argv_bytes"), "{out:?}");
    let list = {
        let mut c = gw2.hoopx(&env2);
        c.args(["sessions", "list", "--output", "json"]);
        run(c, "", T).stdout
    };
    assert_eq!(
        list.trim(),
        "[]",
        "nothing stored for a refused command line"
    );

    // A request body past body_bytes: a JSON refusal naming the limit, nothing stored.
    let env3 = Env::new();
    let gw3 = Gateway::start(&env3, Some(&limits_config("body_bytes = 4096")), None);
    let big = reqwest::blocking::Client::new()
        .post(format!("{}/v1/sessions", gw3.url))
        .bearer_auth(DEV_TOKEN)
        .header("content-type", "application/json")
        .body(serde_json::json!({"target": "shell", "argv": ["echo", "y".repeat(8000)], "mode": "pipe"}).to_string())
        .send()
        .unwrap();
    assert_eq!(big.status(), 413);
    let body: serde_json::Value = big.json().unwrap();
    assert_eq!(body["error"]["code"], "limited", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("4096 bytes"),
        "{body}"
    );
    assert!(
        body["error"]["hint"]
            .as_str()
            .unwrap()
            .contains("body_bytes"),
        "{body}"
    );
}

/// Concurrent session requests of one identity cannot all slip under `pending_sessions`.
#[test]
fn concurrent_session_requests_respect_pending_sessions() {
    let env = Env::new();
    let gw = Gateway::start(&env, Some(&limits_config("pending_sessions = 2")), None);
    let opened: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..16)
            .map(|_| s.spawn(|| open_unattached(&gw, &["cat"]).status().as_u16()))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let created = opened.iter().filter(|s| **s == 201).count();
    let refused = opened.iter().filter(|s| **s == 429).count();
    assert_eq!((created, refused), (2, 14), "{opened:?}");
}

#[test]
fn a_session_that_never_attaches_expires_and_says_so() {
    let env = Env::new();
    let gw = Gateway::start(&env, Some(&limits_config("attach_within = \"1s\"")), None);
    let opened: serde_json::Value = open_unattached(&gw, &["cat"]).json().unwrap();
    let id = opened["session_id"].as_str().unwrap().to_string();
    let s = wait_for("the session to expire", T, || {
        let s: serde_json::Value = reqwest::blocking::Client::new()
            .get(format!("{}/v1/sessions/{id}", gw.url))
            .bearer_auth(DEV_TOKEN)
            .send()
            .ok()?
            .json()
            .ok()?;
        (s["status"] != "open").then_some(s)
    });
    assert_eq!(s["status"], "aborted", "{s}");
    assert!(
        s["reason"].as_str().unwrap().contains("never attached"),
        "{s}"
    );
    // Its recording verifies: the expiry is signed evidence like any end.
    let mut c = gw.hoopx(&env);
    c.args(["verify", &id]);
    let out = run(c, "", T);
    assert_eq!(out.code(), 0, "{out:?}");
}

#[test]
fn an_identity_past_its_request_rate_gets_429() {
    let env = Env::new();
    let gw = Gateway::start(&env, Some(&limits_config("requests_per_minute = 5")), None);
    let get = || {
        reqwest::blocking::Client::new()
            .get(format!("{}/v1/sessions", gw.url))
            .bearer_auth(DEV_TOKEN)
            .send()
            .unwrap()
    };
    for _ in 0..5 {
        assert_eq!(get().status(), 200);
    }
    let refused = get();
    assert_eq!(refused.status(), 429);
    // 5 a minute: the next one fits in 12 s.
    let after: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=12).contains(&after), "retry-after {after}");
    let body: serde_json::Value = refused.json().unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("more than 5 requests in a minute"),
        "{body}"
    );
    let text = reqwest::blocking::get(format!("{}/metrics", gw.url))
        .unwrap()
        .text()
        .unwrap();
    assert_eq!(
        sample(&text, "hoopx_requests_refused_total", &[("reason", "rate")]),
        Some(1.0)
    );

    // The client waits as the gateway says and sends the request again: a command run
    // past the burst slows down instead of failing.
    let env = Env::new();
    let gw = Gateway::start(&env, Some(&limits_config("requests_per_minute = 30")), None);
    let client = reqwest::blocking::Client::new();
    // Spend the burst (30), until a request is refused.
    let spent = (0..200).find(|_| {
        client
            .get(format!("{}/v1/sessions", gw.url))
            .bearer_auth(DEV_TOKEN)
            .send()
            .unwrap()
            .status()
            == 429
    });
    assert!(spent.is_some(), "the burst was spent");
    let mut c = gw.hoopx(&env);
    c.args(["sessions", "list", "--output", "json"]);
    let out = run(c, "", T);
    assert_eq!((out.code(), out.stdout.trim()), (0, "[]"), "{out:?}");
    let text = scrape(&gw.url);
    assert!(
        sample(&text, "hoopx_requests_refused_total", &[("reason", "rate")]).unwrap() >= 2.0,
        "the client's first try was refused: {text}"
    );
}

#[test]
fn a_request_whose_body_stalls_is_dropped_after_the_idle_timeout() {
    use std::io::Write;
    let env = Env::new();
    let config = limits_config("idle_timeout = \"1s\"\nheader_read_timeout = \"30s\"");
    let gw = Gateway::start(&env, Some(&config), None);
    let addr = gw.url.trim_start_matches("http://").to_string();
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    // Whole headers (the header timeout is done with) and a body that never comes.
    write!(
        s,
        "POST /v1/sessions HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer {DEV_TOKEN}\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{{\"argv\""
    )
    .unwrap();
    assert!(closed_within(&mut s, Duration::from_secs(10)));
}

#[test]
fn a_request_body_sent_a_byte_at_a_time_is_refused_after_the_body_read_timeout() {
    use std::io::{Read, Write};
    let env = Env::new();
    let config = limits_config("body_read_timeout = \"1s\"");
    let gw = Gateway::start(&env, Some(&config), None);
    let addr = gw.url.trim_start_matches("http://").to_string();
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    // No token needed: the body is read before anything else.
    write!(
        s,
        "POST /v1/sessions HTTP/1.1\r\nHost: gw\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n"
    )
    .unwrap();
    // A byte every 200 ms keeps the idle timeout (5 min) from ever firing.
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let began = std::time::Instant::now();
    let mut answer = Vec::new();
    while began.elapsed() < Duration::from_secs(20) {
        let _ = s.write_all(b" ");
        let mut buf = [0u8; 1024];
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
    }
    let answer = String::from_utf8_lossy(&answer).to_string();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"code\":\"limited\""), "{answer}");
    assert!(answer.contains("body_read_timeout"), "{answer}");
    assert!(
        began.elapsed() < Duration::from_secs(10),
        "refused and closed after about 1 s, not after {:?}",
        began.elapsed()
    );
}
