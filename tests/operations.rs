//! What an operator runs into: readiness, draining on SIGTERM, a replica killed mid-session,
//! retention, and who may read what.

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::util::{run, spawn_piped, wait_for, wait_timeout, Env, Lines, Postgres, DEV_TOKEN};
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
