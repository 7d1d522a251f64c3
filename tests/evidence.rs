//! Evidence an auditor can rely on: the session ledger catches sessions deleted, cut short,
//! re-opened or inserted in the store; stored fields are checked against the signed close;
//! an embedded key says it is no evidence against its user; an export verifies offline.
//! Every attack edits the real store (SQLite file) as someone with write access would.

use std::time::Duration;

use ed25519_dalek::pkcs8::EncodePrivateKey;
use ed25519_dalek::SigningKey;
use hoopx::recording::{chain, ledger};

use crate::util::{run, Env, Gateway, Output, Postgres};
use crate::SHELL_CONFIG;

const T: Duration = Duration::from_secs(60);

fn hoopx(gw: &Gateway, env: &Env, args: &[&str]) -> Output {
    let mut c = gw.hoopx(env);
    c.args(args);
    run(c, "", T)
}

/// Runs `sh -c script` through `gw`; returns the session id.
fn session(gw: &Gateway, env: &Env, script: &str, code: i32) -> String {
    let out = hoopx(gw, env, &["exec", "--no-tty", "--", "sh", "-c", script]);
    assert_eq!(out.code(), code, "{out:?}");
    newest(hoopx(
        gw,
        env,
        &["sessions", "list", "--limit", "1", "--output", "json"],
    ))
}

fn newest(out: Output) -> String {
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("sessions list JSON");
    v[0]["id"].as_str().expect("an id").to_string()
}

fn sql(db: &std::path::Path, statements: &[String]) {
    let url = format!("sqlite://{}", db.display());
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        use sqlx::Connection;
        let mut db = sqlx::SqliteConnection::connect(&url).await.unwrap();
        for s in statements {
            sqlx::query(s).execute(&mut db).await.unwrap();
        }
    });
}

fn failed(out: &Output, needle: &str) {
    assert_eq!(out.code(), 1, "{needle}: {out:?}");
    assert!(out.stdout.contains("FAILED: "), "{needle}: {out:?}");
    assert!(out.stdout.contains(needle), "{needle}: {out:?}");
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:?}"))
}

#[test]
fn the_ledger_catches_sessions_deleted_cut_reopened_and_inserted() {
    let env = Env::new();
    let gw = Gateway::start(&env, Some(SHELL_CONFIG), None);
    let db = env.path().join("gw.db");
    let ids: Vec<String> = (0..4)
        .map(|i| session(&gw, &env, &format!("echo one {i}; echo two; echo three"), 0))
        .collect();
    let all = hoopx(&gw, &env, &["verify", "--all", "--output", "json"]);
    assert_eq!(all.code(), 0, "{all:?}");
    let v = json(&all);
    assert_eq!(
        (v["ok"].as_bool(), v["sessions"].as_u64()),
        (Some(true), Some(4))
    );
    assert_eq!(
        v["entries"].as_u64(),
        Some(8),
        "an open and a close per session"
    );
    let kept = format!(
        "{}:{}",
        v["head"]["size"].as_i64().unwrap(),
        v["head"]["hash"].as_str().unwrap()
    );
    let text = hoopx(&gw, &env, &["verify", "--all"]);
    assert!(text.stdout.starts_with("OK: "), "{text:?}");
    assert!(text.stdout.contains(&format!("head: {kept}")), "{text:?}");

    // Deleted whole: nothing of it is left in the store.
    let deleted = &ids[0];
    sql(
        &db,
        &["events", "checkpoints"]
            .map(|t| format!("DELETE FROM {t} WHERE session_id = '{deleted}'"))
            .into_iter()
            .chain([format!("DELETE FROM sessions WHERE id = '{deleted}'")])
            .collect::<Vec<_>>(),
    );
    let out = hoopx(&gw, &env, &["verify", "--all"]);
    failed(&out, &format!("session {deleted}"));
    assert!(out.stdout.contains("it was deleted"), "{out:?}");

    // Cut after its first event and set back to running, as if it were still going.
    let cut = &ids[1];
    sql(
        &db,
        &[
            format!("DELETE FROM events WHERE session_id = '{cut}' AND seq >= 1"),
            format!("DELETE FROM checkpoints WHERE session_id = '{cut}' AND last = 1"),
            format!(
                "UPDATE sessions SET status = 'running', ended_at = NULL, exit_code = NULL, \
                 event_count = 1 WHERE id = '{cut}'"
            ),
        ],
    );
    // The session on its own verifies as far as its chain goes; the ledger gives it away.
    let out = hoopx(&gw, &env, &["verify", cut]);
    failed(&out, "re-opened");
    assert!(out.stdout.contains("cut off"), "{out:?}");
    let out = hoopx(&gw, &env, &["verify", "--all"]);
    failed(
        &out,
        &format!("session {cut} is running, but the ledger closed it"),
    );

    // Inserted: a copy of a real session under a new id, never entered in the ledger.
    let copied = &ids[2];
    sql(
        &db,
        &[format!(
            "INSERT INTO sessions SELECT 'inserted-1', identity, target, argv, mode, status, \
                 started_at, ended_at, exit_code, reason, event_count, bytes_in, bytes_out, masks, \
                 denials, approvals, replica FROM sessions WHERE id = '{copied}'"
        )],
    );
    let out = hoopx(&gw, &env, &["verify", "--all"]);
    failed(&out, "session inserted-1 is not in the ledger");

    // The ledger's own tail cut: the last session's close is gone, and the head kept
    // earlier no longer fits.
    sql(
        &db,
        &["DELETE FROM ledger WHERE seq = (SELECT MAX(seq) FROM ledger)".into()],
    );
    let out = hoopx(&gw, &env, &["verify", "--all", "--head", &kept]);
    failed(&out, "the head you kept says 8");
    assert!(
        out.stdout.contains(&format!(
            "session {} ended (exited), but the ledger never closed it",
            ids[3]
        )),
        "{out:?}"
    );
    // The untouched session alone still verifies.
    let out = hoopx(&gw, &env, &["verify", copied]);
    assert_eq!(out.code(), 0, "{out:?}");
}

#[test]
fn stored_fields_are_checked_against_the_signed_close() {
    let env = Env::new();
    let gw = Gateway::start(&env, Some(SHELL_CONFIG), None);
    let db = env.path().join("gw.db");
    let id = session(&gw, &env, "echo mail bob@example.com; exit 3", 3);
    let out = hoopx(&gw, &env, &["verify", &id, "--output", "json"]);
    assert_eq!(out.code(), 0, "{out:?}");
    let v = json(&out);
    assert_eq!(v["facts"]["exit_code"].as_i64(), Some(3), "{v}");
    assert_eq!(v["facts"]["masks"]["email"].as_u64(), Some(1), "{v}");
    assert_eq!(v["signer"]["holder"].as_str(), Some("served"), "{v}");

    // Each field the chain does not cover, edited one at a time: named, and `sessions show`
    // keeps showing the signed value.
    let edits = [
        ("status = 'aborted'", "stored status (aborted)"),
        ("exit_code = 0", "stored exit code (0)"),
        ("reason = 'all fine'", "stored reason (all fine)"),
        ("ended_at = ended_at + 60000", "stored end time"),
        ("bytes_in = 99", "stored input bytes (99)"),
        ("bytes_out = 1", "stored output bytes (1)"),
        ("masks = '{}'", "stored mask counts"),
        ("denials = 5", "stored denials (5)"),
    ];
    let original = |col: &str| format!("{col} = (SELECT {col} FROM saved)");
    sql(
        &db,
        &[format!(
            "CREATE TABLE saved AS SELECT * FROM sessions WHERE id = '{id}'"
        )],
    );
    for (set, says) in edits {
        sql(
            &db,
            &[format!("UPDATE sessions SET {set} WHERE id = '{id}'")],
        );
        let out = hoopx(&gw, &env, &["verify", &id]);
        failed(&out, says);
        assert!(
            out.stdout.contains("disagrees with the signed close"),
            "{out:?}"
        );
        let show = hoopx(&gw, &env, &["sessions", "show", &id]);
        assert!(show.stdout.contains("exit code   3"), "{set}: {show:?}");
        assert!(
            show.stdout.contains("masked      1 (email 1)"),
            "{set}: {show:?}"
        );
        assert!(show.stdout.contains(says), "{set}: {show:?}");
        let col = set.split_whitespace().next().unwrap();
        sql(
            &db,
            &[format!(
                "UPDATE sessions SET {} WHERE id = '{id}'",
                original(col)
            )],
        );
        let out = hoopx(&gw, &env, &["verify", &id]);
        assert_eq!(out.code(), 0, "restored {col}: {out:?}");
    }
}

/// The embedded gateway's key lives with the user: a user who swaps it and re-signs a
/// rewritten session gets a recording that verifies, and `verify` says plainly that such a
/// signature is no evidence against that user; a ledger head kept elsewhere catches it.
#[test]
fn an_embedded_key_is_no_evidence_against_its_user_and_a_kept_head_catches_a_rewrite() {
    let env = Env::new();
    let exec = |script: &str| {
        let mut c = env.hoopx();
        c.args(["exec", "--no-tty", "--", "sh", "-c", script]);
        let out = run(c, "", T);
        assert_eq!(out.code(), 0, "{out:?}");
    };
    let verify = |args: &[&str]| {
        let mut c = env.hoopx();
        c.arg("verify").args(args);
        run(c, "", T)
    };
    exec("echo transferred 100");
    exec("echo transferred 200");
    let out = verify(&["last", "--output", "json"]);
    assert_eq!(out.code(), 0, "{out:?}");
    let v = json(&out);
    assert_eq!(v["signer"]["holder"].as_str(), Some("embedded"), "{v}");
    assert!(
        v["signer"]["says"]
            .as_str()
            .unwrap()
            .contains("no evidence against that user"),
        "{v}"
    );
    let out = verify(&["--all", "--output", "json"]);
    assert_eq!(out.code(), 0, "{out:?}");
    let head = &json(&out)["head"];
    let kept = format!("{}:{}", head["size"], head["hash"].as_str().unwrap());

    // The user rewrites the first session's output and re-signs everything with a new key
    // of their own, put where the embedded gateway keeps its key.
    let data = env.path().join("data/hoopx");
    let db = data.join("embedded.db");
    let key = SigningKey::from_bytes(&[9; 32]);
    rewrite_and_resign(&db, &key, "transferred 100", "transferred 999");
    let pem = key.to_pkcs8_pem(Default::default()).unwrap();
    let key_file = data.join("embedded-signing.pem");
    std::fs::write(&key_file, pem.as_bytes()).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();

    // It verifies: the key that signs is the user's. Verify says what that is worth.
    let out = verify(&["last"]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(
        out.stdout.contains("no evidence against that user"),
        "{out:?}"
    );
    let out = verify(&["--all"]);
    assert_eq!(
        out.code(),
        0,
        "a consistent rewrite holds together: {out:?}"
    );
    assert!(out.stdout.contains("embedded gateway's ledger"), "{out:?}");
    // A head kept elsewhere before the rewrite does not fit the rewritten ledger.
    let out = verify(&["--all", "--head", &kept]);
    failed(&out, "the ledger was rewritten");
}

/// Rewrites `from` to `to` in one output event of the embedded store, recomputes every
/// session's chain and re-signs all checkpoints and the whole ledger with `key`.
fn rewrite_and_resign(db: &std::path::Path, key: &SigningKey, from: &str, to: &str) {
    let url = format!("sqlite://{}", db.display());
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        use sqlx::{Connection, Row};
        let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::query("UPDATE events SET data = CAST(replace(CAST(data AS TEXT), ?, ?) AS BLOB)")
            .bind(from)
            .bind(to)
            .execute(&mut c)
            .await
            .unwrap();
        let sessions = sqlx::query("SELECT * FROM sessions").fetch_all(&mut c).await.unwrap();
        let mut closes = std::collections::HashMap::new();
        for s in sessions {
            let id: String = s.get("id");
            let argv: Vec<String> = serde_json::from_str(&s.get::<String, _>("argv")).unwrap();
            let mode = match s.get::<String, _>("mode").as_str() {
                "pty" => hoopx::proto::Mode::Pty,
                _ => hoopx::proto::Mode::Pipe,
            };
            let mut head = chain::genesis(
                &id,
                &s.get::<String, _>("identity"),
                &s.get::<String, _>("target"),
                &argv,
                mode,
                s.get("started_at"),
            );
            let events = sqlx::query("SELECT seq, t_us, kind, data FROM events WHERE session_id = ? ORDER BY seq")
                .bind(&id)
                .fetch_all(&mut c)
                .await
                .unwrap();
            for e in &events {
                let event = hoopx::recording::Event {
                    seq: e.get("seq"),
                    t_us: e.get("t_us"),
                    kind: hoopx::recording::EventKind::from_code(&e.get::<String, _>("kind")).unwrap(),
                    data: e.get("data"),
                };
                head = chain::next(&head, &event);
                sqlx::query("UPDATE events SET hash = ? WHERE session_id = ? AND seq = ?")
                    .bind(head.to_vec())
                    .bind(&id)
                    .bind(event.seq)
                    .execute(&mut c)
                    .await
                    .unwrap();
            }
            let count = events.len() as i64;
            let cp = chain::sign(key, &id, count, &head, true);
            sqlx::query("DELETE FROM checkpoints WHERE session_id = ?")
                .bind(&id)
                .execute(&mut c)
                .await
                .unwrap();
            sqlx::query("INSERT INTO checkpoints (session_id, count, hash, key_id, signature, last) VALUES (?, ?, ?, ?, ?, 1)")
                .bind(&id)
                .bind(count)
                .bind(&cp.hash)
                .bind(&cp.key_id)
                .bind(&cp.signature)
                .execute(&mut c)
                .await
                .unwrap();
            closes.insert(id, (count, cp.hash));
        }
        let entries = sqlx::query("SELECT * FROM ledger ORDER BY seq").fetch_all(&mut c).await.unwrap();
        let mut prev = ledger::START;
        for e in entries {
            let sid: String = e.get("session_id");
            let kind: String = e.get("kind");
            let mut body: String = e.get("body");
            if kind == "close" {
                let mut b: ledger::CloseBody = serde_json::from_str(&body).unwrap();
                let (n, h) = closes[&sid].clone();
                b.events = Some(n);
                b.head = Some(h);
                body = serde_json::to_string(&b).unwrap();
            }
            let seq: i64 = e.get("seq");
            let new = ledger::make_entry(key, &prev, seq, e.get("at_ms"), &kind, &sid, body);
            sqlx::query("UPDATE ledger SET body = ?, hash = ?, key_id = ?, signature = ? WHERE seq = ?")
                .bind(&new.body)
                .bind(&new.hash)
                .bind(&new.key_id)
                .bind(&new.signature)
                .bind(seq)
                .execute(&mut c)
                .await
                .unwrap();
            prev = ledger::parse_hash(&new.hash).unwrap();
        }
    });
}

/// Several gateways on one PostgreSQL store append to one ledger, one entry at a time.
#[test]
fn replicas_on_one_postgres_store_keep_one_ledger() {
    let env = Env::new();
    let pg = Postgres::start();
    pg.create_db("gw");
    // Same data directory: the replicas share the signing key, as replicas must.
    let gws = [
        Gateway::start(&env, Some(SHELL_CONFIG), Some(&pg.url("gw"))),
        Gateway::start(&env, Some(SHELL_CONFIG), Some(&pg.url("gw"))),
    ];
    std::thread::scope(|scope| {
        for i in 0..8 {
            let gw = &gws[i % 2];
            let env = &env;
            scope.spawn(move || {
                let out = hoopx(
                    gw,
                    env,
                    &[
                        "exec",
                        "--no-tty",
                        "--",
                        "sh",
                        "-c",
                        &format!("echo replica {i}"),
                    ],
                );
                assert_eq!(out.code(), 0, "{out:?}");
            });
        }
    });
    let out = hoopx(&gws[1], &env, &["verify", "--all", "--output", "json"]);
    assert_eq!(out.code(), 0, "{out:?}");
    let v = json(&out);
    assert_eq!(
        (v["sessions"].as_u64(), v["entries"].as_u64()),
        (Some(8), Some(16)),
        "{v}"
    );
    assert_eq!(pg.sql("gw", "select count(distinct seq) from ledger"), "16");
}

const REVIEWED: &str = r#"
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
fn an_export_verifies_offline_after_the_store_is_gone_and_changes_to_it_are_caught() {
    let env = Env::new();
    let config = format!("{SHELL_CONFIG}{REVIEWED}");
    let mut gw = Gateway::start(&env, Some(&config), None);
    let a = session(&gw, &env, "echo mail bob@example.com; exit 3", 3);
    // A reviewed command: asked, approved by lena, then run under the approval.
    let asked = hoopx(
        &gw,
        &env,
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
    );
    assert_eq!(asked.code(), 75, "{asked:?}");
    let first: serde_json::Value =
        serde_json::from_str(asked.stdout.lines().next().unwrap()).unwrap();
    let review = first["review_id"].as_str().unwrap().to_string();
    let mut c = gw.hoopx(&env);
    c.env("HOOPX_TOKEN", "tok-lena-00001").args([
        "review",
        "approve",
        &review,
        "--yes",
        "--reason",
        "release 4.2",
    ]);
    let approved = run(c, "", T);
    assert_eq!(approved.code(), 0, "{approved:?}");
    let out = hoopx(
        &gw,
        &env,
        &["exec", "--review", &review, "--", "sh", "-c", "echo deploy"],
    );
    assert_eq!(out.code(), 0, "{out:?}");
    let b = newest(hoopx(
        &gw,
        &env,
        &["sessions", "list", "--limit", "1", "--output", "json"],
    ));
    let keys: serde_json::Value = reqwest::blocking::get(format!("{}/v1/keys", gw.url))
        .unwrap()
        .json()
        .unwrap();
    let key = keys["keys"][0]["public_key"].as_str().unwrap().to_string();
    assert_eq!(keys["keys"][0]["holder"].as_str(), Some("served"), "{keys}");

    let out_dir = env.path().join("evidence");
    let out = hoopx(
        &gw,
        &env,
        &["sessions", "export", out_dir.to_str().unwrap()],
    );
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(
        out.stdout.contains("exported 2 session(s), 1 review(s)"),
        "{out:?}"
    );
    let reviews = std::fs::read_to_string(out_dir.join("reviews.json")).unwrap();
    assert!(
        reviews.contains(&review) && reviews.contains("release 4.2"),
        "{reviews}"
    );
    // Never written over.
    let again = hoopx(
        &gw,
        &env,
        &["sessions", "export", out_dir.to_str().unwrap()],
    );
    assert_eq!(again.code(), 64, "{again:?}");

    let summary = std::fs::read_to_string(out_dir.join("SUMMARY.md")).unwrap();
    for needle in [
        format!("## Session {a}"),
        format!("## Session {b}"),
        "exited, exit code 3".to_string(),
        "**masked (signed)**: 1 (email 1)".to_string(),
        "**command**: sh -c 'echo mail [REDACTED:email]; exit 3'".to_string(),
        "**events by provenance**: client".to_string(),
        format!("**review**: {review} "),
        "lena approve at".to_string(),
        "(release 4.2)".to_string(),
    ] {
        assert!(summary.contains(&needle), "{needle}:\n{summary}");
    }
    assert!(!summary.contains("bob@example.com"), "{summary}");

    // The gateway and its store are gone; the auditor has the directory and the key.
    gw.kill();
    for f in ["gw.db", "gw.db-wal", "gw.db-shm"] {
        let _ = std::fs::remove_file(env.path().join(f));
    }
    let auditor = Env::new();
    let verify = |args: &[&str]| {
        let mut c = auditor.hoopx();
        c.arg("verify").args(args);
        run(c, "", T)
    };
    let dir = out_dir.to_str().unwrap();
    let out = verify(&[dir, "--key", &key]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(out.stdout.starts_with("OK: 2 session(s) verify"), "{out:?}");
    // The export's own key vouches for nothing.
    failed(
        &verify(&[dir]),
        "none of the export's keys is a key you trust",
    );

    // A recording in it altered.
    let copy = |name: &str| {
        let to = auditor.path().join(name);
        let status = std::process::Command::new("cp")
            .args(["-a", dir])
            .arg(&to)
            .status()
            .unwrap();
        assert!(status.success());
        to
    };
    let altered = copy("altered");
    let file = altered.join(format!("sessions/{a}.json"));
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, text.replace("exit_code\":3", "exit_code\":0")).unwrap();
    failed(
        &verify(&[altered.to_str().unwrap(), "--key", &key]),
        "disagrees with the signed close",
    );
    // A session left out (file and manifest line removed).
    let thinned = copy("thinned");
    std::fs::remove_file(thinned.join(format!("sessions/{b}.json"))).unwrap();
    let manifest = std::fs::read_to_string(thinned.join("manifest.json")).unwrap();
    let mut m: serde_json::Value = serde_json::from_str(&manifest).unwrap();
    m["sessions"]
        .as_array_mut()
        .unwrap()
        .retain(|s| s.as_str() != Some(&b));
    std::fs::write(thinned.join("manifest.json"), m.to_string()).unwrap();
    failed(
        &verify(&[thinned.to_str().unwrap(), "--key", &key]),
        &format!("the ledger opened session {b}"),
    );
    // The ledger stretch edited.
    let edited = copy("edited");
    let ledger_text = std::fs::read_to_string(edited.join("ledger.json")).unwrap();
    std::fs::write(
        edited.join("ledger.json"),
        ledger_text.replacen("\"open\"", "\"close\"", 1),
    )
    .unwrap();
    failed(
        &verify(&[edited.to_str().unwrap(), "--key", &key]),
        "the ledger",
    );
}
