//! Masking end to end: the streaming engine at the gateway, built-in detectors on the
//! embedded default, a target's own secrets, and held-back output released on idle.

use std::io::Write;
use std::time::Duration;

use crate::util::{run, spawn_piped, Env, Gateway};

const T: Duration = Duration::from_secs(60);

#[test]
fn the_embedded_default_masks_with_every_builtin_detector_and_counts_per_rule() {
    let env = Env::new();
    let mut c = env.hoopx();
    c.args(["exec", "--no-tty", "--", "sh", "-c"]).arg(
        "echo 'card 4111 1111 1111 1111 order 2024-01-05 v1.2.3'; \
         echo 'iban GB82 WEST 1234 5698 7654 32'; \
         echo 'Authorization: Bearer abcdefghijklmnopqrstuvwxyz012345'; \
         echo 'commit 9fceb02d0ae598e95dc970b74767f19372d61af8'",
    );
    let out = run(c, "", T);
    assert_eq!(out.code(), 0, "{out:?}");
    let s = &out.stdout;
    for secret in ["4111 1111", "WEST 1234", "abcdefghijklmnop"] {
        assert!(!s.contains(secret), "{secret} leaked: {s}");
    }
    assert!(s.contains("[REDACTED:payment-card]"), "{s}");
    assert!(s.contains("[REDACTED:iban]"), "{s}");
    // Look-alikes stay as they are.
    assert!(s.contains("order 2024-01-05 v1.2.3"), "{s}");
    assert!(
        s.contains("commit 9fceb02d0ae598e95dc970b74767f19372d61af8"),
        "{s}"
    );

    let mut c = env.hoopx();
    c.args(["sessions", "show", "last", "--output", "json"]);
    let out = run(c, "", T);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["masks"]["payment-card"], 1, "{v}");
    assert_eq!(v["masks"]["iban"], 1, "{v}");
    // The recording holds per-rule markers, never the values.
    let mut c = env.hoopx();
    c.args(["replay", "last", "--format", "json"]);
    let rec = run(c, "", T).stdout;
    assert!(rec.contains(r#"{\"masked\":{"#), "{rec}");
    assert!(!rec.contains("4111 1111"), "{rec}");
}

#[test]
fn a_prompt_is_shown_at_once_and_what_continues_it_is_still_masked() {
    let env = Env::new();
    let mut c = env.hoopx();
    // `token=` could be the start of a secret assignment: it holds no part of a value yet,
    // so the prompt shows at once, before any input. What the tool writes next continues
    // it on the screen (`token=hunter22`), so that is masked as the value.
    c.args([
        "exec",
        "--no-tty",
        "--",
        "sh",
        "-c",
        "printf 'token='; read x; echo \"$x done\"",
    ]);
    let (mut child, stdout, stderr) = spawn_piped(c);
    stdout.wait_for("token=", T);
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"hunter22\n").unwrap();
    drop(stdin);
    stdout.wait_for("done", T);
    let status = crate::util::wait_timeout(&mut child, T).expect("exits");
    assert!(status.success(), "{}", stderr.text());
    assert_eq!(
        stdout.text(),
        "token=[REDACTED:password-assignment] done\n",
        "{}",
        stderr.text()
    );
}

#[test]
fn a_targets_own_secrets_reach_the_tool_and_are_masked_in_its_output() {
    let env = Env::new();
    let secret = "s3cr3t-value-42";
    let file = env.write("db-pass", &format!("{secret}\n"));
    // No mask rule at all: the target's secret is masked anyway.
    let config = format!(
        r#"[[targets]]
name = "shell"
kind = "command"
command = ["sh"]
secret_env.DB_PASS = {{ file = "{}" }}
"#,
        file.display()
    );
    let gw = Gateway::start(&env, Some(&config), None);
    let mut c = gw.hoopx(&env);
    c.args(["exec", "--no-tty", "--", "sh", "-c"]).arg(format!(
        "test \"$DB_PASS\" = {secret} && echo match; echo \"pass is $DB_PASS\" >&2"
    ));
    let out = run(c, "", T);
    assert_eq!(out.code(), 0, "{out:?}");
    assert_eq!(out.stdout, "match\n", "the tool got the real value");
    assert_eq!(out.stderr, "pass is [REDACTED:target-secret]\n", "{out:?}");
    let mut c = gw.hoopx(&env);
    c.args(["replay", "last", "--format", "json"]);
    let rec = run(c, "", T).stdout;
    assert!(!rec.contains(secret), "{rec}");
    assert!(!gw.stderr.text().contains(secret));

    // A secret the gateway cannot resolve stops it from starting, naming the place only.
    let bad = env.write(
        "bad.toml",
        "[[targets]]\nname = \"x\"\nkind = \"command\"\nsecret_env.A = { env = \"HOOPX_TEST_UNSET_VAR\" }\n",
    );
    let mut c = env.hoopx();
    c.args(["gateway", "check", "--config"]).arg(&bad);
    let out = run(c, "", T);
    assert_eq!(out.code(), 78, "{out:?}");
    assert!(out.stderr.contains("bad.toml:4"), "{out:?}");
    assert!(out.stderr.contains("HOOPX_TEST_UNSET_VAR"), "{out:?}");
}
