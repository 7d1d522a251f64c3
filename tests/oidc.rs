//! Identity: a real OpenID provider (the npm package oidc-provider, tests/oidc/provider.mjs)
//! on loopback, a real gateway with an `[auth]` table, the real `hoopx` binary.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine;
use serde_json::{json, Value};

use crate::util::{run, wait_for, Env, Gateway, Lines};

const T: Duration = Duration::from_secs(30);
pub const AUDIENCE: &str = "urn:hoopx:gateway";
pub const CI_CLIENT: &str = "ci-bot";
pub const CI_SECRET: &str = "ci-bot-secret-0123456789";

/// The OpenID provider, started with node; stopped on drop.
pub struct Idp {
    child: Child,
    pub issuer: String,
    /// Where the provider wrote its signing key (private.pem, public.pem, kid).
    pub keys: tempfile::TempDir,
    pub stderr: Lines,
}

impl Idp {
    /// `groups`: account or client id → groups in its tokens. `access_ttl`: seconds.
    pub fn start(groups: Value, access_ttl: u64) -> Idp {
        Idp::start_with(groups, access_ttl, false)
    }

    /// With `opaque`, the provider has no resource indicators: its access tokens are
    /// opaque strings, not JWTs (as Google's are).
    pub fn start_with(groups: Value, access_ttl: u64, opaque: bool) -> Idp {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/oidc");
        assert!(
            dir.join("node_modules/oidc-provider").is_dir(),
            "the test OpenID provider is not installed: run scripts/test.sh (it runs `npm ci` in tests/oidc)"
        );
        let keys = tempfile::Builder::new()
            .prefix("hoopx-idp-")
            .tempdir()
            .unwrap();
        let mut child = Command::new("node")
            .arg(dir.join("provider.mjs"))
            .current_dir(&dir)
            .env("HOOPX_TEST_AUDIENCE", AUDIENCE)
            .env("HOOPX_TEST_OUT", keys.path())
            .env("HOOPX_TEST_ACCESS_TTL", access_ttl.to_string())
            .env("HOOPX_TEST_GROUPS", groups.to_string())
            .env("HOOPX_TEST_OPAQUE", if opaque { "1" } else { "0" })
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start node (the tests need node 20 or later on PATH)");
        let stdout = Lines::collect(child.stdout.take().unwrap());
        let stderr = Lines::collect(child.stderr.take().unwrap());
        let issuer = wait_for("the OpenID provider to listen", T, || {
            if let Ok(Some(s)) = child.try_wait() {
                panic!("the OpenID provider exited with {s}: {}", stderr.text());
            }
            let t = stdout.text();
            let rest = &t[t.find("listening on ")? + "listening on ".len()..];
            Some(rest[..rest.find('\n')?].trim().to_string())
        });
        Idp {
            child,
            issuer,
            keys,
            stderr,
        }
    }

    pub fn kid(&self) -> String {
        std::fs::read_to_string(self.keys.path().join("kid")).unwrap()
    }

    pub fn private_pem(&self) -> Vec<u8> {
        std::fs::read(self.keys.path().join("private.pem")).unwrap()
    }

    pub fn public_pem(&self) -> Vec<u8> {
        std::fs::read(self.keys.path().join("public.pem")).unwrap()
    }

    /// A token signed with the provider's own key, with `claims`.
    pub fn sign(&self, kid: &str, claims: &Value) -> String {
        let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        h.kid = Some(kid.into());
        jsonwebtoken::encode(
            &h,
            claims,
            &jsonwebtoken::EncodingKey::from_rsa_pem(&self.private_pem()).unwrap(),
        )
        .unwrap()
    }

    /// The claims of a good access token for `sub`.
    pub fn claims(&self, sub: &str, groups: &[&str]) -> Value {
        let now = chrono::Utc::now().timestamp();
        json!({"iss": self.issuer, "aud": AUDIENCE, "sub": sub, "groups": groups,
               "iat": now, "exp": now + 300, "client_id": "hoopx-cli"})
    }

    /// An access token from the provider's token endpoint (client credentials).
    pub fn client_credentials(&self) -> String {
        let resp: Value = reqwest::blocking::Client::new()
            .post(format!("{}/token", self.issuer))
            .basic_auth(CI_CLIENT, Some(CI_SECRET))
            .form(&[
                ("grant_type", "client_credentials"),
                ("resource", AUDIENCE),
                ("scope", "hoopx"),
            ])
            .send()
            .unwrap()
            .json()
            .unwrap();
        resp["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("no access token: {resp}\n{}", self.stderr.text()))
            .to_string()
    }

    /// Approves a device code as `account` would at the browser (test helper route).
    pub fn approve(&self, user_code: &str, account: &str) {
        let resp = reqwest::blocking::Client::new()
            .post(format!("{}/test/approve", self.issuer))
            .body(json!({"user_code": user_code, "account": account}).to_string())
            .send()
            .unwrap();
        assert_eq!(resp.status(), 200, "{}", resp.text().unwrap_or_default());
    }

    pub fn deny(&self, user_code: &str) {
        let resp = reqwest::blocking::Client::new()
            .post(format!("{}/test/deny", self.issuer))
            .body(json!({ "user_code": user_code }).to_string())
            .send()
            .unwrap();
        assert_eq!(resp.status(), 200);
    }
}

impl Drop for Idp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A gateway config that trusts `idp`: target `shell` for anyone, `dba` for group dba only.
pub fn config(idp: &Idp, extra: &str) -> String {
    format!(
        r#"[auth]
issuer = "{}"
audience = "{AUDIENCE}"
cli_client_id = "hoopx-cli"
groups_claim = "groups"
{extra}

[[targets]]
name = "shell"
kind = "command"
command = ["sh", "cat", "true"]

[[targets]]
name = "dba"
kind = "command"
command = ["echo"]
groups = ["dba"]
"#,
        idp.issuer
    )
}

/// A real gateway with `config`, without `--dev`: only OpenID tokens get in.
pub fn gateway(env: &Env, config: &str) -> Gateway {
    let p = env.write("gateway.toml", config);
    let mut cmd = env.hoopx();
    cmd.args(["gateway", "serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(p)
        .arg("--store")
        .arg(format!("sqlite://{}", env.path().join("gw.db").display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn gateway");
    let stderr = Lines::collect(child.stderr.take().unwrap());
    let url = wait_for("the gateway to listen", T, || {
        if let Ok(Some(s)) = child.try_wait() {
            panic!("gateway exited with {s}: {}", stderr.text());
        }
        let t = stderr.text();
        let rest = &t[t.find("listening on ")? + "listening on ".len()..];
        let line = &rest[..rest.find('\n')?];
        Some(line.split_whitespace().next()?.to_string())
    });
    Gateway { child, url, stderr }
}

fn get(url: &str, token: &str) -> (u16, Value) {
    let resp = reqwest::blocking::Client::new()
        .get(url)
        .bearer_auth(token)
        .send()
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().unwrap_or(Value::Null))
}

#[test]
fn provider_tokens_get_in_and_groups_come_from_the_claim() {
    let idp = Idp::start(json!({"ci-bot": ["ci", "deployers"]}), 600);
    let env = Env::new();
    let gw = gateway(&env, &config(&idp, ""));
    let token = idp.client_credentials();
    let (status, who) = get(&format!("{}/v1/auth/whoami", gw.url), &token);
    assert_eq!(status, 200, "{who}");
    assert_eq!(who["subject"], "ci-bot");
    assert_eq!(who["groups"], json!(["ci", "deployers"]));
    assert!(who["expires_at"].as_i64().unwrap() > chrono::Utc::now().timestamp());

    // The gateway tells clients where to log in, without a token.
    let info: Value = reqwest::blocking::get(format!("{}/v1/auth", gw.url))
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(info["mode"], "oidc");
    assert_eq!(info["issuer"], idp.issuer);
    assert_eq!(info["audience"], AUDIENCE);
    assert_eq!(info["cli_client_id"], "hoopx-cli");

    // The dev token of a dev gateway means nothing here.
    let (status, _) = get(&format!("{}/v1/sessions", gw.url), crate::util::DEV_TOKEN);
    assert_eq!(status, 401);

    let mut c = env.hoopx();
    c.env("HOOPX_GATEWAY", &gw.url)
        .env("HOOPX_TOKEN", &token)
        .args(["exec", "--target", "shell", "--", "sh", "-c", "echo hello"]);
    let out = run(c, "", T);
    assert_eq!(out.code(), 0, "{out:?}");
    assert_eq!(out.stdout, "hello\n");
}

#[test]
fn targets_restricted_to_groups_refuse_others_with_77() {
    let idp = Idp::start(json!({"ci-bot": ["ci"]}), 600);
    let env = Env::new();
    let gw = gateway(&env, &config(&idp, ""));
    let exec = |token: &str| {
        let mut c = env.hoopx();
        c.env("HOOPX_GATEWAY", &gw.url)
            .env("HOOPX_TOKEN", token)
            .args(["exec", "--target", "dba", "--", "echo", "ran"]);
        run(c, "", T)
    };
    let out = exec(&idp.client_credentials());
    assert_eq!(out.code(), 77, "{out:?}");
    assert!(!out.stdout.contains("ran"), "{out:?}");
    assert!(
        out.stderr.contains("open to the groups dba only") && out.stderr.contains("ci-bot"),
        "{out:?}"
    );
    // The operator sees the refusal in the gateway's log.
    gw.stderr.wait_for(
        "session refused: not in the target's groups identity=ci-bot target_name=dba",
        T,
    );
    // A member of dba (a token with the provider's key and its groups claim) gets in.
    let alice = idp.sign(&idp.kid(), &idp.claims("alice", &["dba"]));
    let out = exec(&alice);
    assert_eq!(out.code(), 0, "{out:?}");
    assert_eq!(out.stdout, "ran\n");
}

#[test]
fn bad_tokens_get_401_at_the_gateway_and_exit_67_at_the_cli() {
    let idp = Idp::start(json!({}), 600);
    let env = Env::new();
    let gw = gateway(&env, &config(&idp, ""));
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let kid = idp.kid();
    let now = chrono::Utc::now().timestamp();
    let good = idp.client_credentials();
    let parts: Vec<&str> = good.split('.').collect();
    let payload: Value = serde_json::from_slice(&b64.decode(parts[1]).unwrap()).unwrap();

    let with = |patch: Value| {
        let mut c = idp.claims("alice", &["dba"]);
        for (k, v) in patch.as_object().unwrap() {
            c[k] = v.clone();
        }
        idp.sign(&kid, &c)
    };
    let mut tampered_claims = payload.clone();
    tampered_claims["sub"] = "admin".into();
    let hs256 = {
        // The classic confusion attack: HMAC keyed with the provider's public key.
        let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        h.kid = Some(kid.clone());
        jsonwebtoken::encode(
            &h,
            &payload,
            &jsonwebtoken::EncodingKey::from_secret(&idp.public_pem()),
        )
        .unwrap()
    };
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "alg none",
            format!(
                "{}.{}.",
                b64.encode(json!({"alg": "none", "typ": "JWT", "kid": kid}).to_string()),
                parts[1]
            ),
            "unsigned",
        ),
        ("HS256 keyed with the public key", hs256, "shared-secret"),
        (
            "tampered payload",
            format!(
                "{}.{}.{}",
                parts[0],
                b64.encode(tampered_claims.to_string()),
                parts[2]
            ),
            "signature does not verify",
        ),
        (
            "wrong aud",
            with(json!({"aud": "urn:other"})),
            "another audience",
        ),
        (
            "wrong iss",
            with(json!({"iss": "https://evil.example.com"})),
            "issued by \"https://evil.example.com\"",
        ),
        ("expired", with(json!({"exp": now - 3600})), "expired"),
        (
            "not yet valid",
            with(json!({"nbf": now + 3600})),
            "not valid yet",
        ),
        (
            "unknown kid",
            idp.sign("no-such-key", &idp.claims("alice", &[])),
            "does not publish",
        ),
        ("garbage", "garbage".into(), "not a JWT"),
        ("garbage parts", "e30.e30.e30".into(), "no algorithm"),
    ];
    // The good token works (so the refusals below are about the tokens, not the setup).
    assert_eq!(get(&format!("{}/v1/sessions", gw.url), &good).0, 200);
    let marker = env.path().join("ran");
    for (name, token, why) in &cases {
        let (status, body) = get(&format!("{}/v1/sessions", gw.url), token);
        assert_eq!(status, 401, "{name}: {body}");
        assert_eq!(body["error"]["code"], "unauthorized", "{name}: {body}");
        let message = body["error"]["message"].as_str().unwrap_or("");
        assert!(message.contains(why), "{name}: {message}");
        assert!(
            !message.contains(token.as_str()) || token.len() < 12,
            "{name}: the token is echoed"
        );

        let mut c = env.hoopx();
        c.env("HOOPX_GATEWAY", &gw.url)
            .env("HOOPX_TOKEN", token)
            .args(["exec", "--target", "shell", "--", "sh", "-c"])
            .arg(format!("touch {}", marker.display()));
        let out = run(c, "", T);
        assert_eq!(out.code(), 67, "{name}: {out:?}");
        assert!(out.stderr.contains(why), "{name}: {out:?}");
        assert!(out.stderr.contains("hoopx login"), "{name}: {out:?}");
        assert!(!marker.exists(), "{name}: the tool ran");
    }
}

#[test]
fn a_gateway_without_auth_or_dev_refuses_to_start_and_bad_auth_config_names_the_line() {
    let env = Env::new();
    let p = env.write(
        "gw.toml",
        "[auth]\nissuer = \"https://idp.example.com\"\naudience = \"urn:x\"\nalgorithms = [\"RS256\", \"HS256\"]\n\n[[targets]]\nname = \"a\"\nkind = \"command\"\n",
    );
    let mut c = env.hoopx();
    c.args(["gateway", "check", "--config"]).arg(&p);
    let out = run(c, "", T);
    assert_eq!(out.code(), 78, "{out:?}");
    assert!(out.stderr.contains("gw.toml:4:"), "{out:?}");
    assert!(out.stderr.contains("shared-secret"), "{out:?}");

    let p = env.write(
        "none.toml",
        "[[targets]]\nname = \"a\"\nkind = \"command\"\n",
    );
    let mut c = env.hoopx();
    c.args(["gateway", "serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&p);
    let out = run(c, "", T);
    assert_eq!(out.code(), 78, "{out:?}");
    assert!(out.stderr.contains("[auth]"), "{out:?}");
}

/// Runs `hoopx login` and approves (or denies) its device code as `account` would.
fn device_login(env: &Env, gw: &Gateway, idp: &Idp, account: Option<&str>) -> crate::util::Output {
    let mut c = env.hoopx();
    c.args(["login", "--gateway", &gw.url, "--output", "json"]);
    let (mut child, stdout, stderr) = crate::util::spawn_piped(c);
    let text = stderr.wait_for("waiting for the approval", T);
    let code = text
        .split("shows the code ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .expect("a user code")
        .to_string();
    assert!(text.contains(&format!("{}/device", idp.issuer)), "{text}");
    // The same, for a program that relays it to a person: a JSON event on stdout.
    let first = stdout.wait_for("\n", T);
    let event: Value = serde_json::from_str(first.lines().next().unwrap()).unwrap();
    assert_eq!(event["event"], "device_code", "{event}");
    assert_eq!(event["user_code"], code.as_str(), "{event}");
    match account {
        Some(a) => idp.approve(&code, a),
        None => idp.deny(&code),
    }
    let status = crate::util::wait_timeout(&mut child, T).expect("hoopx login ends");
    crate::util::Output {
        status,
        stdout: stdout.text(),
        stderr: stderr.text(),
    }
}

fn cache_path(env: &Env) -> PathBuf {
    env.path().join(".local/state/hoopx/tokens.json")
}

fn cached(env: &Env, gw: &Gateway) -> Value {
    let v: Value = serde_json::from_slice(&std::fs::read(cache_path(env)).unwrap()).unwrap();
    v["gateways"][gw.url.as_str()].clone()
}

#[test]
fn device_login_then_exec_status_silent_refresh_and_logout() {
    let idp = Idp::start(json!({"alice": ["dba", "dev"]}), 600);
    let env = Env::new();
    let gw = gateway(&env, &config(&idp, ""));

    let out = device_login(&env, &gw, &idp, Some("alice"));
    assert_eq!(out.code(), 0, "{out:?}");
    let done: Value = serde_json::from_str(out.stdout.lines().last().unwrap()).unwrap();
    assert_eq!(done["event"], "logged_in", "{out:?}");
    assert_eq!(done["identity"], "alice");
    assert_eq!(done["groups"], json!(["dba", "dev"]));
    assert!(
        out.stderr.contains(&format!(
            "logged in to {} as alice (groups: dba, dev)",
            gw.url
        )),
        "{out:?}"
    );
    // Cached 0600 in a 0700 directory, and never printed.
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(cache_path(&env)).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let dir = std::fs::metadata(cache_path(&env).parent().unwrap()).unwrap();
    assert_eq!(dir.permissions().mode() & 0o777, 0o700);
    let first = cached(&env, &gw);
    let access = first["access_token"].as_str().unwrap().to_string();
    assert!(first["refresh_token"].is_string(), "{first}");
    assert!(!out.stderr.contains(&access) && !out.stdout.contains(&access));

    // The login is used by exec, on a target open to dba only.
    let exec = || {
        let mut c = env.hoopx();
        c.env("HOOPX_GATEWAY", &gw.url)
            .args(["exec", "--target", "dba", "--", "echo", "ran"]);
        run(c, "", T)
    };
    let out = exec();
    assert_eq!((out.code(), out.stdout.as_str()), (0, "ran\n"), "{out:?}");

    let mut c = env.hoopx();
    c.args(["status", "--gateway", &gw.url, "--output", "json"]);
    let out = run(c, "", T);
    assert_eq!(out.code(), 0, "{out:?}");
    let st: Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(st["subject"], "alice");
    assert_eq!(st["groups"], json!(["dba", "dev"]));
    assert_eq!(st["gateway"], gw.url.as_str());
    assert_eq!(st["source"], "hoopx login");
    assert!(st["expires_at"].as_i64().unwrap() > chrono::Utc::now().timestamp());
    let mut c = env.hoopx();
    c.args(["status", "--gateway", &gw.url]);
    let out = run(c, "", T);
    assert!(out.stdout.contains("identity: alice"), "{out:?}");
    assert!(out.stdout.contains("renewed automatically"), "{out:?}");

    // A token about to expire is refreshed silently before use (the cache is told it
    // expires now; the provider's refresh grant gives a new one).
    let mut file: Value =
        serde_json::from_slice(&std::fs::read(cache_path(&env)).unwrap()).unwrap();
    file["gateways"][gw.url.as_str()]["expires_at"] = json!(chrono::Utc::now().timestamp());
    std::fs::write(cache_path(&env), file.to_string()).unwrap();
    let out = exec();
    assert_eq!((out.code(), out.stdout.as_str()), (0, "ran\n"), "{out:?}");
    let second = cached(&env, &gw);
    assert_ne!(second["access_token"], first["access_token"]);
    assert_ne!(second["refresh_token"], first["refresh_token"], "rotated");
    assert!(second["expires_at"].as_i64().unwrap() > chrono::Utc::now().timestamp() + 60);

    // Logout forgets the login and revokes it at the provider.
    let refresh = second["refresh_token"].as_str().unwrap().to_string();
    let mut c = env.hoopx();
    c.args(["logout", "--gateway", &gw.url, "--output", "json"]);
    let out = run(c, "", T);
    assert_eq!(out.code(), 0, "{out:?}");
    let v: Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(
        v,
        json!({"gateway": gw.url, "logged_out": true, "revoked": true})
    );
    assert!(cached(&env, &gw).is_null());
    let resp: Value = reqwest::blocking::Client::new()
        .post(format!("{}/token", idp.issuer))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh.as_str()),
            ("client_id", "hoopx-cli"),
        ])
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(resp["error"], "invalid_grant", "{resp}");
    let mut c = env.hoopx();
    c.args(["status", "--gateway", &gw.url]);
    let out = run(c, "", T);
    assert_eq!(out.code(), 67, "{out:?}");
    assert!(out.stderr.contains("not logged in"), "{out:?}");
    assert!(out.stderr.contains("hoopx login"), "{out:?}");
    let out = exec();
    assert_eq!(out.code(), 67, "{out:?}");
}

#[test]
fn a_denied_device_login_exits_67_and_caches_nothing() {
    let idp = Idp::start(json!({}), 600);
    let env = Env::new();
    let gw = gateway(&env, &config(&idp, ""));
    let out = device_login(&env, &gw, &idp, None);
    assert_eq!(out.code(), 67, "{out:?}");
    assert!(out.stderr.contains("denied"), "{out:?}");
    assert!(!cache_path(&env).exists());
}

#[test]
fn machines_use_client_credentials_from_the_environment() {
    let idp = Idp::start(json!({"ci-bot": ["ci"]}), 600);
    let env = Env::new();
    let gw = gateway(&env, &config(&idp, ""));
    let mut c = env.hoopx();
    c.env("HOOPX_GATEWAY", &gw.url)
        .env("HOOPX_CLIENT_ID", CI_CLIENT)
        .env("HOOPX_CLIENT_SECRET", CI_SECRET)
        .args([
            "exec",
            "--target",
            "shell",
            "--",
            "sh",
            "-c",
            "echo machine",
        ]);
    let out = run(c, "", T);
    assert_eq!(
        (out.code(), out.stdout.as_str()),
        (0, "machine\n"),
        "{out:?}"
    );

    let mut c = env.hoopx();
    c.env("HOOPX_CLIENT_ID", CI_CLIENT)
        .env("HOOPX_CLIENT_SECRET", CI_SECRET)
        .args(["status", "--gateway", &gw.url, "--output", "json"]);
    let out = run(c, "", T);
    let st: Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(st["subject"], "ci-bot", "{out:?}");
    assert_eq!(st["groups"], json!(["ci"]));
    assert_eq!(st["source"], "client credentials (HOOPX_CLIENT_ID)");

    // `hoopx login --client-credentials` caches the machine's token.
    let mut c = env.hoopx();
    c.env("HOOPX_CLIENT_ID", CI_CLIENT)
        .env("HOOPX_CLIENT_SECRET", CI_SECRET)
        .args(["login", "--client-credentials", "--gateway", &gw.url]);
    let out = run(c, "", T);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(out.stderr.contains("as ci-bot (groups: ci)"), "{out:?}");
    assert_eq!(cached(&env, &gw)["flow"], "client-credentials");

    // Half a machine identity is a usage error, not a silent fallback.
    let mut c = env.hoopx();
    c.env("HOOPX_GATEWAY", &gw.url)
        .env("HOOPX_CLIENT_ID", CI_CLIENT)
        .args([
            "exec",
            "--target",
            "shell",
            "--",
            "sh",
            "-c",
            "echo machine",
        ]);
    let out = run(c, "", T);
    assert_eq!(out.code(), 64, "{out:?}");
    assert!(out.stderr.contains("HOOPX_CLIENT_SECRET is not"), "{out:?}");

    // A wrong secret is refused by the provider: 67, and the secret is not shown.
    let mut c = env.hoopx();
    c.env("HOOPX_GATEWAY", &gw.url)
        .env("HOOPX_CLIENT_ID", CI_CLIENT)
        .env("HOOPX_CLIENT_SECRET", "wrong-secret-value")
        .args([
            "exec",
            "--target",
            "shell",
            "--",
            "sh",
            "-c",
            "echo machine",
        ]);
    let out = run(c, "", T);
    assert_eq!(out.code(), 67, "{out:?}");
    assert!(out.stderr.contains("refused client \"ci-bot\""), "{out:?}");
    assert!(!out.stderr.contains("wrong-secret-value"), "{out:?}");
    assert!(!out.stdout.contains("machine"));
}

/// Stand-in for the GitHub Actions OIDC issuer (token.actions.githubusercontent.com and
/// the runner's ID-token request endpoint), which cannot run here: discovery, a JWKS with
/// an Ed25519 test key, and `GET /token?audience=…` answering `{"value": JWT}` to the
/// request token, as the runner does. The gateway checks its tokens exactly as GitHub's.
pub struct CiIssuer {
    pub issuer: String,
    key: jsonwebtoken::EncodingKey,
    /// Audiences asked for at /token.
    pub asked: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

pub const REQUEST_TOKEN: &str = "runner-request-token-42";

impl CiIssuer {
    /// Issues tokens with `claims` (plus iss, aud, iat, nbf, exp).
    pub fn start(claims: Value) -> CiIssuer {
        use ed25519_dalek::pkcs8::EncodePrivateKey;
        use std::io::{Read, Write};
        let sk = ed25519_dalek::SigningKey::from_bytes(&rand::random::<[u8; 32]>());
        let der = sk.to_pkcs8_der().unwrap();
        let key = jsonwebtoken::EncodingKey::from_ed_der(der.as_bytes());
        let x =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sk.verifying_key().as_bytes());
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let issuer = format!("http://{}", listener.local_addr().unwrap());
        let asked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let ci = CiIssuer {
            issuer: issuer.clone(),
            key: key.clone(),
            asked: asked.clone(),
        };
        let signer = CiIssuer {
            issuer: issuer.clone(),
            key,
            asked: asked.clone(),
        };
        std::thread::spawn(move || {
            for mut s in listener.incoming().flatten() {
                let mut buf = vec![0u8; 16384];
                let mut n = 0;
                while let Ok(k) = s.read(&mut buf[n..]) {
                    if k == 0 {
                        break;
                    }
                    n += k;
                    if buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
                        break;
                    }
                }
                let head = String::from_utf8_lossy(&buf[..n]).to_string();
                let target = head.split_whitespace().nth(1).unwrap_or("").to_string();
                let url = reqwest::Url::parse(&format!("http://x{target}")).unwrap();
                let authorized = head.lines().any(|l| {
                    l.eq_ignore_ascii_case(&format!("authorization: bearer {REQUEST_TOKEN}"))
                });
                let (status, body) = match url.path() {
                    "/.well-known/openid-configuration" => (
                        200,
                        json!({"issuer": issuer, "jwks_uri": format!("{issuer}/jwks")}),
                    ),
                    "/jwks" => (
                        200,
                        json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": x, "kid": "gh-test", "alg": "EdDSA", "use": "sig"}]}),
                    ),
                    "/token" if authorized => {
                        let aud = url
                            .query_pairs()
                            .find(|(k, _)| k == "audience")
                            .map(|(_, v)| v.to_string())
                            .unwrap_or_default();
                        asked.lock().unwrap().push(aud.clone());
                        (
                            200,
                            json!({"count": 1, "value": signer.sign(&aud, &claims, 300)}),
                        )
                    }
                    "/token" => (401, json!({"message": "bad request token"})),
                    _ => (404, json!({})),
                };
                let body = body.to_string();
                let _ = write!(
                    s,
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        ci
    }

    /// A token for `aud` with `claims`, valid for `ttl` seconds.
    pub fn sign(&self, aud: &str, claims: &Value, ttl: i64) -> String {
        let now = chrono::Utc::now().timestamp();
        let mut c = claims.clone();
        c["iss"] = self.issuer.clone().into();
        c["aud"] = aud.into();
        c["iat"] = now.into();
        c["nbf"] = now.into();
        c["exp"] = (now + ttl).into();
        let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
        h.kid = Some("gh-test".into());
        jsonwebtoken::encode(&h, &c, &self.key).unwrap()
    }
}

fn github_claims(repository: &str) -> Value {
    json!({"sub": format!("repo:{repository}:ref:refs/heads/main"), "repository": repository,
           "ref": "refs/heads/main", "environment": "production", "workflow": "deploy"})
}

fn trusted(ci: &CiIssuer) -> String {
    format!(
        r#"
[[auth.trusted_issuers]]
name = "github"
issuer = "{}"
audience = "{AUDIENCE}"
groups = ["ci", "dba"]
[auth.trusted_issuers.claims]
repository = "acme/app"
ref = ["refs/heads/main", "refs/tags/v*"]
"#,
        ci.issuer
    )
}

fn sessions_identities(env: &Env) -> Vec<String> {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = hoopx::gateway::store::open(&format!(
            "sqlite://{}",
            env.path().join("gw.db").display()
        ))
        .await
        .unwrap();
        store
            .list_sessions(&hoopx::gateway::store::SessionFilter {
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_iter()
            .map(|s| s.identity)
            .collect()
    })
}

#[test]
fn github_actions_id_tokens_are_detected_and_exchanged_without_a_stored_secret() {
    let idp = Idp::start(json!({}), 600);
    let ci = CiIssuer::start(github_claims("acme/app"));
    let env = Env::new();
    let gw = gateway(&env, &config(&idp, &trusted(&ci)));
    let gh = |c: &mut Command| {
        c.env("HOOPX_GATEWAY", &gw.url)
            .env(
                "ACTIONS_ID_TOKEN_REQUEST_URL",
                format!("{}/token?api-version=2.0", ci.issuer),
            )
            .env("ACTIONS_ID_TOKEN_REQUEST_TOKEN", REQUEST_TOKEN);
    };
    let mut c = env.hoopx();
    gh(&mut c);
    c.args(["exec", "--target", "dba", "--", "echo", "deployed"]);
    let out = run(c, "", T);
    assert_eq!(
        (out.code(), out.stdout.as_str()),
        (0, "deployed\n"),
        "{out:?}"
    );
    assert_eq!(ci.asked.lock().unwrap().as_slice(), [AUDIENCE]);
    assert_eq!(
        sessions_identities(&env),
        ["github:repo:acme/app:ref:refs/heads/main"]
    );

    let mut c = env.hoopx();
    gh(&mut c);
    c.args(["status", "--output", "json"]);
    let out = run(c, "", T);
    let st: Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(
        st["source"], "GitHub Actions ID token, exchanged",
        "{out:?}"
    );
    assert_eq!(st["groups"], json!(["ci", "dba"]));
    let ttl = st["expires_at"].as_i64().unwrap() - chrono::Utc::now().timestamp();
    assert!(
        (0..=300).contains(&ttl),
        "never longer than the CI token: {ttl}"
    );

    // The CI token itself is not a gateway token: it must be exchanged.
    let raw = ci.sign(AUDIENCE, &github_claims("acme/app"), 300);
    let (status, body) = get(&format!("{}/v1/sessions", gw.url), &raw);
    assert_eq!(status, 401);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("exchanged first"),
        "{body}"
    );
}

#[test]
fn ci_tokens_that_miss_the_claim_constraints_or_the_audience_are_refused() {
    let idp = Idp::start(json!({}), 600);
    let fork = CiIssuer::start(github_claims("evil/fork"));
    let env = Env::new();
    let gw = gateway(&env, &config(&idp, &trusted(&fork)));
    let mut c = env.hoopx();
    c.env("HOOPX_GATEWAY", &gw.url)
        .env(
            "ACTIONS_ID_TOKEN_REQUEST_URL",
            format!("{}/token", fork.issuer),
        )
        .env("ACTIONS_ID_TOKEN_REQUEST_TOKEN", REQUEST_TOKEN)
        .args(["exec", "--target", "shell", "--", "sh", "-c", "echo ran"]);
    let out = run(c, "", T);
    assert_eq!(out.code(), 67, "{out:?}");
    assert!(
        out.stderr.contains(
            "claim \"repository\" is \"evil/fork\" but this gateway accepts \"acme/app\""
        ),
        "{out:?}"
    );
    assert!(!out.stdout.contains("ran"));

    // GitLab style: the ID token in a variable (HOOPX_ID_TOKEN), here for another audience.
    let exchange = |token: &str| {
        let mut c = env.hoopx();
        c.env("HOOPX_GATEWAY", &gw.url)
            .env("HOOPX_ID_TOKEN", token)
            .args(["exec", "--target", "shell", "--", "sh", "-c", "echo ran"]);
        run(c, "", T)
    };
    let mut good_claims = github_claims("acme/app");
    good_claims["ref"] = "refs/tags/v1.4.0".into();
    let out = exchange(&fork.sign("urn:someone-else", &good_claims, 300));
    assert_eq!(out.code(), 67, "{out:?}");
    assert!(out.stderr.contains("another audience"), "{out:?}");
    let out = exchange(&fork.sign(AUDIENCE, &good_claims, -120));
    assert_eq!(out.code(), 67, "{out:?}");
    assert!(out.stderr.contains("expired"), "{out:?}");
    // A tag matching refs/tags/v* from the right repository gets in.
    let out = exchange(&fork.sign(AUDIENCE, &good_claims, 300));
    assert_eq!((out.code(), out.stdout.as_str()), (0, "ran\n"), "{out:?}");
}

/// The newest session and its markers, once the gateway has recorded its end (the client
/// may exit on the gateway's error frame before the gateway has stored the close).
fn events(env: &Env) -> (hoopx::proto::SessionInfo, Vec<String>) {
    crate::util::wait_for(
        "the gateway to record the session's end",
        std::time::Duration::from_secs(30),
        || {
            let (s, m) = events_now(env);
            (!matches!(s.status.as_str(), "open" | "running")).then_some((s, m))
        },
    )
}

fn events_now(env: &Env) -> (hoopx::proto::SessionInfo, Vec<String>) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = hoopx::gateway::store::open(&format!(
            "sqlite://{}",
            env.path().join("gw.db").display()
        ))
        .await
        .unwrap();
        let s = store
            .list_sessions(&hoopx::gateway::store::SessionFilter {
                limit: 1,
                ..Default::default()
            })
            .await
            .unwrap()
            .remove(0);
        let markers = store
            .events(&s.id, 0, 10_000)
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.event.kind == hoopx::recording::EventKind::Marker)
            .map(|e| String::from_utf8_lossy(&e.event.data).into_owned())
            .collect();
        (s, markers)
    })
}

/// Tokens that live 4 s, no leeway, 2 s of grace: a session of 10 s needs renewals.
const SHORT: &str = "leeway = \"0s\"\nexpiry_grace = \"2s\"";

#[test]
fn a_long_session_outlives_its_token_when_the_login_refreshes() {
    let idp = Idp::start(json!({"alice": ["dev"]}), 4);
    let env = Env::new();
    let gw = gateway(&env, &config(&idp, SHORT));
    let out = device_login(&env, &gw, &idp, Some("alice"));
    assert_eq!(out.code(), 0, "{out:?}");
    let mut c = env.hoopx();
    c.env("HOOPX_GATEWAY", &gw.url).args([
        "exec",
        "--target",
        "shell",
        "--",
        "sh",
        "-c",
        "sleep 10; echo survived",
    ]);
    let out = run(c, "", T);
    assert_eq!(
        (out.code(), out.stdout.as_str()),
        (0, "survived\n"),
        "{out:?}"
    );
    let (session, markers) = events(&env);
    assert_eq!(session.status, "exited", "{session:?}");
    let renewed = markers
        .iter()
        .filter(|m| m.contains("token_renewed"))
        .count();
    assert!(renewed >= 2, "{markers:?}");
    assert!(
        !markers.iter().any(|m| m.contains("eyJ")),
        "no token in the recording"
    );
}

#[test]
fn a_session_whose_login_was_revoked_ends_after_the_grace_and_the_recording_says_why() {
    // 10 s tokens: the session starts on the login's first token (renewal is due after
    // about 7 s), so the revocation only shows at the first renewal, mid-session.
    let idp = Idp::start(json!({"alice": ["dev"]}), 10);
    let env = Env::new();
    let gw = gateway(&env, &config(&idp, SHORT));
    let out = device_login(&env, &gw, &idp, Some("alice"));
    assert_eq!(out.code(), 0, "{out:?}");
    // The login is revoked at the provider (as an administrator would): no more refreshes.
    let refresh = cached(&env, &gw)["refresh_token"]
        .as_str()
        .unwrap()
        .to_string();
    let resp = reqwest::blocking::Client::new()
        .post(format!("{}/token/revocation", idp.issuer))
        .form(&[("token", refresh.as_str()), ("client_id", "hoopx-cli")])
        .send()
        .unwrap();
    assert!(resp.status().is_success());

    let tool = crate::util::LongTool::new(&env);
    let mut c = env.hoopx();
    c.env("HOOPX_GATEWAY", &gw.url).args([
        "exec",
        "--target",
        "shell",
        "--",
        "sh",
        "-c",
        &tool.script(),
    ]);
    let (mut child, stdout, stderr) = crate::util::spawn_piped(c);
    stdout.wait_for("ready", T);
    let status = crate::util::wait_timeout(&mut child, T).expect("hoopx exits");
    assert_eq!(status.code(), Some(67), "{}", stderr.text());
    let err = stderr.text();
    assert!(err.contains("cannot renew the identity"), "{err}");
    assert!(err.contains("identity expired"), "{err}");
    assert!(err.contains("hoopx login"), "{err}");
    tool.wait_gone(T);
    let (session, markers) = events(&env);
    assert_eq!(session.status, "aborted");
    assert!(
        session
            .reason
            .as_deref()
            .unwrap_or("")
            .contains("identity expired"),
        "{session:?}"
    );
    assert!(
        markers
            .iter()
            .any(|m| m.contains("\"aborted\"") && m.contains("identity expired")),
        "{markers:?}"
    );
}

/// Plays the browser: follows redirects from `url`, keeping the provider's cookies, until
/// the loopback redirect to hoopx has been fetched. Returns that page's text.
fn browse(url: &str) -> String {
    let http = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut cookies: std::collections::BTreeMap<String, String> = Default::default();
    let mut url = reqwest::Url::parse(url).unwrap();
    for _ in 0..12 {
        let cookie = cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let resp = http
            .get(url.clone())
            .header("cookie", cookie)
            .send()
            .unwrap();
        for c in resp.headers().get_all("set-cookie") {
            let pair = c.to_str().unwrap().split(';').next().unwrap();
            let (k, v) = pair.split_once('=').unwrap();
            cookies.insert(k.to_string(), v.to_string());
        }
        match resp.headers().get("location") {
            Some(loc) => url = url.join(loc.to_str().unwrap()).unwrap(),
            None => return resp.text().unwrap(),
        }
    }
    panic!("too many redirects, last {url}");
}

#[test]
fn browser_login_with_pkce_and_a_loopback_redirect() {
    let idp = Idp::start(json!({"alice": ["dba"]}), 600);
    let env = Env::new();
    let gw = gateway(&env, &config(&idp, ""));
    let mut c = env.hoopx();
    c.args(["login", "--browser", "--no-open", "--gateway", &gw.url]);
    let (mut child, _stdout, stderr) = crate::util::spawn_piped(c);
    let text = stderr.wait_for("waiting for the browser", T);
    let url = text
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with(&format!("{}/auth?", idp.issuer)))
        .unwrap_or_else(|| panic!("no authorization address: {text}"));
    assert!(url.contains("code_challenge_method=S256"), "{url}");
    assert!(
        url.contains("redirect_uri=http%3A%2F%2F127.0.0.1%3A"),
        "{url}"
    );
    let page = browse(url);
    assert!(page.contains("hoopx is logged in"), "{page}");
    let status = crate::util::wait_timeout(&mut child, T).expect("hoopx login ends");
    assert_eq!(status.code(), Some(0), "{}", stderr.text());
    assert!(
        stderr.text().contains("as alice (groups: dba)"),
        "{}",
        stderr.text()
    );
    let entry = cached(&env, &gw);
    assert_eq!(entry["flow"], "browser");
    assert!(entry["refresh_token"].is_string(), "{entry}");

    // A forged redirect (wrong state) is not taken as the login.
    let mut c = env.hoopx();
    c.args(["login", "--browser", "--no-open", "--gateway", &gw.url]);
    let (mut child, _stdout, stderr) = crate::util::spawn_piped(c);
    let text = stderr.wait_for("waiting for the browser", T);
    let url = text
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with(&format!("{}/auth?", idp.issuer)))
        .unwrap()
        .to_string();
    let redirect = reqwest::Url::parse(&url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "redirect_uri")
        .map(|(_, v)| v.to_string())
        .unwrap();
    let forged = reqwest::blocking::get(format!("{redirect}?code=stolen&state=wrong")).unwrap();
    assert_eq!(forged.status(), 400);
    assert!(forged.text().unwrap().contains("state mismatch"));
    assert!(
        child.try_wait().unwrap().is_none(),
        "still waiting for the real browser"
    );
    let page = browse(&url);
    assert!(page.contains("hoopx is logged in"), "{page}");
    let status = crate::util::wait_timeout(&mut child, T).expect("hoopx login ends");
    assert_eq!(status.code(), Some(0), "{}", stderr.text());
}

#[test]
fn parallel_commands_share_one_refresh_of_a_rotating_login() {
    let idp = Idp::start(json!({"alice": ["dev"]}), 600);
    let env = Env::new();
    let gw = gateway(&env, &config(&idp, ""));
    let out = device_login(&env, &gw, &idp, Some("alice"));
    assert_eq!(out.code(), 0, "{out:?}");
    // The token is due for renewal; four commands start at once. Refresh tokens rotate
    // (and reuse of a spent one revokes the login at most providers): only one may refresh.
    let mut file: Value =
        serde_json::from_slice(&std::fs::read(cache_path(&env)).unwrap()).unwrap();
    file["gateways"][gw.url.as_str()]["expires_at"] = json!(chrono::Utc::now().timestamp());
    std::fs::write(cache_path(&env), file.to_string()).unwrap();
    let children: Vec<_> = (0..4)
        .map(|i| {
            let mut c = env.hoopx();
            c.env("HOOPX_GATEWAY", &gw.url).args([
                "exec",
                "--target",
                "shell",
                "--",
                "sh",
                "-c",
                &format!("echo run{i}"),
            ]);
            crate::util::spawn_piped(c)
        })
        .collect();
    for (i, (mut child, stdout, stderr)) in children.into_iter().enumerate() {
        let status = crate::util::wait_timeout(&mut child, T).expect("exec ends");
        assert_eq!(status.code(), Some(0), "run{i}: {}", stderr.text());
        assert_eq!(stdout.text(), format!("run{i}\n"));
    }
    // The login still works afterwards (no refresh token was spent twice).
    let mut c = env.hoopx();
    c.args(["status", "--gateway", &gw.url]);
    let out = run(c, "", T);
    assert_eq!(out.code(), 0, "{out:?}");
}

#[test]
fn the_ci_token_variable_can_be_named_in_the_client_config() {
    let idp = Idp::start(json!({}), 600);
    let ci = CiIssuer::start(github_claims("acme/app"));
    let env = Env::new();
    let gw = gateway(&env, &config(&idp, &trusted(&ci)));
    std::fs::create_dir_all(env.path().join("config/hoopx")).unwrap();
    std::fs::write(
        env.path().join("config/hoopx/config.toml"),
        format!(
            "gateway = \"{}\"\nid_token_env = \"GITLAB_OIDC_TOKEN\"\n",
            gw.url
        ),
    )
    .unwrap();
    let mut c = env.hoopx();
    c.env(
        "GITLAB_OIDC_TOKEN",
        ci.sign(AUDIENCE, &github_claims("acme/app"), 300),
    )
    .args(["status", "--output", "json"]);
    let out = run(c, "", T);
    assert_eq!(out.code(), 0, "{out:?}");
    let st: Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(
        st["source"],
        "CI ID token from GITLAB_OIDC_TOKEN, exchanged"
    );
    assert_eq!(st["subject"], "github:repo:acme/app:ref:refs/heads/main");
}

#[test]
fn a_review_wait_longer_than_the_token_lifetime_still_runs_the_command() {
    let idp = Idp::start(json!({"alice": ["dev"]}), 4);
    let env = Env::new();
    // A dev gateway with an [auth] table: the reviewer is a dev identity, alice logs in.
    let text = format!(
        "{}\n[[rules.review]]\nname = \"needs-ops\"\npattern = 'approved-please'\nreviewers = [\"ops\"]\n\n[[dev.identities]]\nname = \"rita\"\ntoken = \"tok-reviewer-1\"\ngroups = [\"ops\"]\n",
        config(&idp, SHORT)
    );
    let p = env.write("gateway.toml", &text);
    let mut cmd = env.hoopx();
    cmd.args([
        "gateway",
        "serve",
        "--dev",
        "--listen",
        "127.0.0.1:0",
        "--config",
    ])
    .arg(p)
    .arg("--store")
    .arg(format!("sqlite://{}", env.path().join("gw.db").display()))
    .env("HOOPX_DEV_TOKEN", crate::util::DEV_TOKEN)
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn gateway");
    let stderr = Lines::collect(child.stderr.take().unwrap());
    let url = wait_for("the gateway to listen", T, || {
        let t = stderr.text();
        let rest = &t[t.find("listening on ")? + "listening on ".len()..];
        Some(
            rest[..rest.find('\n')?]
                .split_whitespace()
                .next()?
                .to_string(),
        )
    });
    let gw = Gateway { child, url, stderr };
    let out = device_login(&env, &gw, &idp, Some("alice"));
    assert_eq!(out.code(), 0, "{out:?}");

    let mut c = env.hoopx();
    c.env("HOOPX_GATEWAY", &gw.url).args([
        "exec",
        "--target",
        "shell",
        "--",
        "sh",
        "-c",
        "echo approved-please",
    ]);
    let (mut exec, stdout, err) = crate::util::spawn_piped(c);
    let text = err.wait_for("reviewers: ops", T);
    let at = text.find("review ").unwrap() + "review ".len();
    let id: String = text[at..]
        .chars()
        .take_while(|c| c.is_ascii_hexdigit() || *c == '-')
        .collect();
    // The token alice started waiting with lapses (plus the gateway's grace) before anyone
    // decides.
    let first_exp = cached(&env, &gw)["expires_at"].as_i64().unwrap();
    wait_for("alice's first token to lapse", T, || {
        (chrono::Utc::now().timestamp() > first_exp + 3).then_some(())
    });
    let mut c = env.hoopx();
    c.env("HOOPX_GATEWAY", &gw.url)
        .env("HOOPX_TOKEN", "tok-reviewer-1")
        .args(["review", "approve", &id, "--yes"]);
    let out = run(c, "", T);
    assert_eq!(out.code(), 0, "{out:?}");
    let status = crate::util::wait_timeout(&mut exec, T).expect("exec ends");
    assert_eq!(status.code(), Some(0), "{}", err.text());
    assert_eq!(stdout.text(), "approved-please\n");
}

#[test]
fn opaque_access_tokens_are_checked_at_userinfo_or_by_introspection() {
    let env = Env::new();
    let idp = Idp::start_with(json!({"alice": ["dba"]}), 600, true);
    let gw = gateway(&env, &config(&idp, "opaque_tokens = \"userinfo\""));
    let out = device_login(&env, &gw, &idp, Some("alice"));
    assert_eq!(out.code(), 0, "{out:?}");
    let token = cached(&env, &gw)["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        token.matches('.').count(),
        0,
        "an opaque token, not a JWT: {token}"
    );
    // The gateway knows who it is (and the groups) from the provider's userinfo.
    let mut c = env.hoopx();
    c.args([
        "exec",
        "--gateway",
        &gw.url,
        "--target",
        "dba",
        "--",
        "echo",
        "as dba",
    ]);
    let ran = run(c, "", T);
    assert_eq!(ran.code(), 0, "{ran:?}");
    assert!(ran.stdout.contains("as dba"), "{ran:?}");
    // A token the provider does not know is refused (fail closed).
    let mut c = env.hoopx();
    c.env("HOOPX_TOKEN", "not-a-token-the-provider-issued")
        .args(["exec", "--gateway", &gw.url, "--", "true"]);
    let refused = run(c, "", T);
    assert_eq!(refused.code(), 67, "{refused:?}");
    assert!(refused.stderr.contains("userinfo"), "{refused:?}");

    // RFC 7662 introspection, as the gateway's own client: the same token is good, for
    // the groups the provider gives it.
    let env3 = Env::new();
    let secret = env3.write("introspect.secret", "hoopx-gateway-secret-0123456789\n");
    let gw3 = gateway(
        &env3,
        &config(
            &idp,
            &format!(
                "opaque_tokens = \"introspect\"\nintrospection_client_id = \"hoopx-gateway\"\nintrospection_client_secret = {{ file = \"{}\" }}",
                secret.display()
            ),
        ),
    );
    let mut c = env3.hoopx();
    c.env("HOOPX_TOKEN", &token).args([
        "exec",
        "--gateway",
        &gw3.url,
        "--target",
        "dba",
        "--",
        "echo",
        "introspected",
    ]);
    let ran = run(c, "", T);
    assert_eq!(ran.code(), 0, "{ran:?}");
    assert!(ran.stdout.contains("introspected"), "{ran:?}");
    let mut c = env3.hoopx();
    c.env("HOOPX_TOKEN", "not-a-token-the-provider-issued")
        .args(["exec", "--gateway", &gw3.url, "--", "true"]);
    let refused = run(c, "", T);
    assert_eq!(refused.code(), 67, "{refused:?}");
    assert!(refused.stderr.contains("not active"), "{refused:?}");

    // Without opaque_tokens, the gateway says what to set.
    let env2 = Env::new();
    let gw2 = gateway(&env2, &config(&idp, ""));
    let mut c = env2.hoopx();
    c.env("HOOPX_TOKEN", &token)
        .args(["exec", "--gateway", &gw2.url, "--", "true"]);
    let out = run(c, "", T);
    assert_eq!(out.code(), 67, "{out:?}");
    assert!(out.stderr.contains("opaque_tokens"), "{out:?}");
}
