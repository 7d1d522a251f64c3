//! Failing closed: no gateway, a gateway that dies, bad tokens, other protocol versions.

use std::io::{Read, Write};
use std::time::Duration;

use crate::util::{run, spawn_piped, Env, Gateway, LongTool, DEV_TOKEN};
use crate::SHELL_CONFIG;

const T: Duration = Duration::from_secs(30);

#[test]
fn unreachable_gateway_exits_69_and_the_tool_never_runs() {
    let env = Env::new();
    let marker = env.path().join("ran");
    let mut c = env.hoopx();
    c.args(["exec", "--gateway", "http://127.0.0.1:1", "--", "sh", "-c"])
        .arg(format!("touch {}", marker.display()));
    let out = run(c, "", T);
    assert_eq!(out.code(), 69, "{out:?}");
    assert!(out.stderr.contains("cannot reach the gateway"), "{out:?}");
    assert!(out.stderr.contains("was not run"), "{out:?}");
    assert_eq!(
        out.stderr.lines().next().map(|l| l.starts_with("hoopx: ")),
        Some(true),
        "{out:?}"
    );
    assert!(!marker.exists(), "the tool must not run without a gateway");
}

#[test]
fn gateway_killed_mid_session_terminates_the_tool() {
    let env = Env::new();
    let mut gw = Gateway::start(&env, Some(SHELL_CONFIG), None);
    let tool = LongTool::new(&env);
    let mut c = gw.hoopx(&env);
    c.args(["exec", "--", "sh", "-c", &tool.script()]);
    let (mut child, stdout, stderr) = spawn_piped(c);
    stdout.wait_for("ready", T);

    gw.kill();
    let status =
        crate::util::wait_timeout(&mut child, T).expect("hoopx exits when the gateway dies");
    assert_eq!(status.code(), Some(69), "stderr: {}", stderr.text());
    stderr.wait_for("lost the gateway", T);
    tool.wait_gone(T);
}

#[test]
fn missing_or_wrong_tokens_exit_67_and_every_endpoint_answers_401_json() {
    let env = Env::new();
    let gw = Gateway::start(&env, Some(SHELL_CONFIG), None);
    for token in [None, Some("wrong-token")] {
        let mut c = env.hoopx();
        c.args(["exec", "--gateway", &gw.url, "--", "sh", "-c", "echo ran"]);
        if let Some(t) = token {
            c.env("HOOPX_TOKEN", t);
        }
        let out = run(c, "", T);
        assert_eq!(out.code(), 67, "{out:?}");
        assert!(!out.stdout.contains("ran"), "{out:?}");
    }
    let http = reqwest::blocking::Client::new();
    for (method, path) in [
        ("GET", "/v1/sessions"),
        ("POST", "/v1/sessions"),
        ("GET", "/v1/sessions/x"),
        ("GET", "/v1/sessions/x/events"),
        ("GET", "/v1/sessions/x/stream"),
    ] {
        for bearer in [None, Some("nope")] {
            let mut req = http.request(method.parse().unwrap(), format!("{}{path}", gw.url));
            if let Some(b) = bearer {
                req = req.bearer_auth(b);
            }
            let resp = req.send().unwrap();
            assert_eq!(resp.status(), 401, "{method} {path} {bearer:?}");
            assert_eq!(resp.headers()["www-authenticate"], "Bearer");
            let body: serde_json::Value = resp.json().unwrap();
            assert_eq!(
                body["error"]["code"], "unauthorized",
                "{method} {path}: {body}"
            );
        }
    }
    // Health needs no token and names the protocol.
    let h: serde_json::Value = http
        .get(format!("{}/v1/health", gw.url))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(h["protocol"], 1);
    // With the right token, the same request works.
    let ok = http
        .get(format!("{}/v1/sessions", gw.url))
        .bearer_auth(DEV_TOKEN)
        .send()
        .unwrap();
    assert_eq!(ok.status(), 200);
}

#[test]
fn protocol_version_mismatch_is_a_clear_error() {
    let env = Env::new();
    let gw = Gateway::start(&env, Some(SHELL_CONFIG), None);
    let resp = reqwest::blocking::Client::new()
        .get(format!("{}/v1/sessions", gw.url))
        .bearer_auth(DEV_TOKEN)
        .header("hoopx-protocol", "99")
        .send()
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body: serde_json::Value = resp.json().unwrap();
    assert_eq!(body["error"]["code"], "protocol_mismatch");

    // A gateway of another protocol version. Test double: no other hoopx version exists
    // here, so a loopback server answers as a future gateway would.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for mut s in listener.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let body = r#"{"error":{"code":"protocol_mismatch","message":"this gateway speaks protocol 2"}}"#;
            let _ = write!(
                s,
                "HTTP/1.1 400 Bad Request\r\nhoopx-protocol: 2\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    let marker = env.path().join("ran");
    let mut c = env.hoopx();
    c.args([
        "exec",
        "--gateway",
        &format!("http://{addr}"),
        "--token",
        "t",
        "--",
        "sh",
        "-c",
    ])
    .arg(format!("touch {}", marker.display()));
    let out = run(c, "", T);
    assert_eq!(out.code(), 76, "{out:?}");
    assert!(out.stderr.contains("protocol 2"), "{out:?}");
    assert!(!marker.exists());
}

#[test]
fn a_stopping_gateway_ends_running_sessions_and_records_why() {
    let env = Env::new();
    let mut gw = Gateway::start(&env, Some(SHELL_CONFIG), None);
    let tool = LongTool::new(&env);
    let mut c = gw.hoopx(&env);
    c.args(["exec", "--", "sh", "-c", &tool.script()]);
    let (mut child, stdout, stderr) = spawn_piped(c);
    stdout.wait_for("ready", T);

    // The operator stops the gateway, without waiting for the drain (a second SIGTERM).
    let term = || {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(gw.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .unwrap()
    };
    term();
    gw.stderr.wait_for("draining", T);
    term();
    let gw_status = crate::util::wait_timeout(&mut gw.child, T).expect("the gateway stops");
    assert_eq!(gw_status.code(), Some(0));
    let status = crate::util::wait_timeout(&mut child, T).expect("hoopx exits");
    assert_eq!(status.code(), Some(69), "{}", stderr.text());
    stderr.wait_for("shutting down", T);
    tool.wait_gone(T);

    // The store says how the session ended.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sessions = rt.block_on(async {
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
    });
    assert_eq!(sessions[0].status, "aborted");
    assert!(
        sessions[0].reason.as_deref().unwrap_or("")
            == "the gateway was shutting down (stopped by its operator)",
        "a clean stop is not recorded as an internal error: {:?}",
        sessions[0]
    );
}

/// `gateway serve` checks its store and its port before it hands out a dev token, and says
/// what to do when the port is taken.
#[test]
fn gateway_serve_checks_store_and_port_before_printing_a_token() {
    let env = Env::new();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let mut c = env.hoopx();
    c.args([
        "gateway",
        "serve",
        "--dev",
        "--listen",
        &format!("127.0.0.1:{port}"),
    ]);
    let out = run(c, "", T);
    assert_eq!(out.code(), 69, "{out:?}");
    assert!(
        out.stderr.contains("another process listens there"),
        "{out:?}"
    );
    assert!(!out.stderr.contains("dev token"), "{out:?}");

    let mut c = env.hoopx();
    c.args(["gateway", "serve", "--dev", "--listen", "127.0.0.1:0"])
        .args(["--store", "postgres://nobody@127.0.0.1:1/none"]);
    let out = run(c, "", T);
    assert_eq!(out.code(), 69, "{out:?}");
    assert!(!out.stderr.contains("dev token"), "{out:?}");
}

#[test]
fn a_gateway_url_without_a_scheme_says_which_to_write() {
    let env = Env::new();
    let mut c = env.hoopx();
    c.env("HOOPX_GATEWAY", "gw.example.com:8433")
        .args(["sessions", "list"]);
    let out = run(c, "", T);
    assert_eq!(out.code(), 64, "{out:?}");
    assert!(
        out.stderr
            .contains("has no scheme: write https://gw.example.com:8433"),
        "{out:?}"
    );
}

#[test]
fn status_without_a_token_on_a_dev_gateway_says_what_works_there() {
    let env = Env::new();
    let gw = Gateway::start(&env, None, None);
    let mut c = env.hoopx();
    c.env("HOOPX_GATEWAY", &gw.url).arg("status");
    let out = run(c, "", T);
    assert_eq!(out.code(), 67, "{out:?}");
    assert!(out.stderr.contains("this is a dev gateway"), "{out:?}");
    assert!(out.stderr.contains("HOOPX_TOKEN"), "{out:?}");
    assert!(!out.stderr.contains("hoopx login"), "{out:?}");
}

/// The hint for an unreachable gateway names where its URL came from.
#[test]
fn an_unreachable_gateway_hint_names_where_the_url_came_from() {
    let env = Env::new();
    let dead = format!("http://127.0.0.1:{}", crate::util::free_port());
    std::fs::create_dir_all(env.path().join("config/hoopx")).unwrap();
    let config = env.path().join("config/hoopx/config.toml");
    std::fs::write(&config, format!("gateway = \"{dead}\"\n")).unwrap();
    let out = run(
        {
            let mut c = env.hoopx();
            c.args(["sessions", "list"]);
            c
        },
        "",
        T,
    );
    assert_eq!(out.code(), 69, "{out:?}");
    assert!(
        out.stderr
            .contains(&format!("check `gateway = …` in {}", config.display())),
        "{out:?}"
    );
    let out = run(
        {
            let mut c = env.hoopx();
            c.env("HOOPX_GATEWAY", &dead).args(["sessions", "list"]);
            c
        },
        "",
        T,
    );
    assert!(out.stderr.contains("check HOOPX_GATEWAY"), "{out:?}");
    let out = run(
        {
            let mut c = env.hoopx();
            c.args(["sessions", "list", "--gateway", &dead]);
            c
        },
        "",
        T,
    );
    assert!(out.stderr.contains("check --gateway"), "{out:?}");
}
