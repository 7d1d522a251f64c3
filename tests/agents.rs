//! Built for agents: `hoopx mcp` driven with JSON-RPC from the test, and `exec --capture`.

use std::io::{BufRead, BufReader, Write};
use std::process::{ChildStdin, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{json, Value};

use crate::util::{run, Env, Gateway};

const T: Duration = Duration::from_secs(30);

const CONFIG: &str = r#"[[targets]]
name = "shell"
kind = "command"
command = ["sh", "cat"]

[[rules.mask]]
name = "email"
pattern = '[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}'

[[rules.deny]]
name = "no-rm"
pattern = '\brm\s+-rf\b'

[[rules.review]]
name = "deploys-need-a-lead"
pattern = '\bdeploy\b'
reviewers = ["leads"]

[[dev.identities]]
name = "agent"
token = "tok-agent-0001"
groups = ["agents"]

[[dev.identities]]
name = "lena"
token = "tok-lena-00001"
groups = ["leads"]
"#;

/// A running `hoopx mcp`, talked to line by line, as the agent `tok-agent-0001`.
pub(crate) struct Mcp {
    child: std::process::Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
    next_id: i64,
}

impl Mcp {
    pub(crate) fn start(gw: &Gateway, env: &Env) -> Mcp {
        let mut c = gw.hoopx(env);
        c.env("HOOPX_TOKEN", "tok-agent-0001")
            .arg("mcp")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = c.spawn().unwrap();
        let stdin = child.stdin.take().unwrap();
        let out = BufReader::new(child.stdout.take().unwrap());
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for l in out.lines() {
                let Ok(l) = l else { break };
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        Mcp {
            child,
            stdin,
            lines,
            next_id: 1,
        }
    }

    fn send_line(&mut self, line: &str) {
        writeln!(self.stdin, "{line}").unwrap();
        self.stdin.flush().unwrap();
    }

    fn answer(&mut self) -> Value {
        let line = self
            .lines
            .recv_timeout(T)
            .expect("an answer from hoopx mcp");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
    }

    fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.send_line(
            &json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}).to_string(),
        );
        let a = self.answer();
        assert_eq!(a["jsonrpc"], "2.0", "{a}");
        assert_eq!(a["id"], id, "{a}");
        a
    }

    pub(crate) fn tool(&mut self, name: &str, arguments: Value) -> Value {
        let a = self.request("tools/call", json!({"name": name, "arguments": arguments}));
        let r = &a["result"];
        assert!(r.is_object(), "{a}");
        // The text content carries the same JSON as the structured content.
        if name != "replay_text" {
            let text: Value =
                serde_json::from_str(r["content"][0]["text"].as_str().unwrap()).unwrap();
            assert_eq!(text, r["structuredContent"], "{a}");
        }
        r.clone()
    }
}

impl Drop for Mcp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn an_agent_drives_hoopx_over_mcp() {
    let env = Env::new();
    let gw = Gateway::start(&env, Some(CONFIG), None);
    let mut mcp = Mcp::start(&gw, &env);

    let init = mcp.request(
        "initialize",
        json!({"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "test", "version": "0"}}),
    );
    assert_eq!(init["result"]["protocolVersion"], "2025-06-18");
    assert_eq!(init["result"]["serverInfo"]["name"], "hoopx");
    assert!(init["result"]["capabilities"]["tools"].is_object());
    // A notification gets no answer; the next answer is the next request's.
    mcp.send_line(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);

    let tools = mcp.request("tools/list", json!({}));
    let names: Vec<&str> = tools["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["exec", "sessions", "replay_text"]);

    // exec: masked output, both streams, the tool's exit code, a session id.
    let r = mcp.tool(
        "exec",
        json!({"command": ["sh", "-c", "echo mail alice@example.com; echo oops >&2; exit 3"]}),
    );
    let s = &r["structuredContent"];
    assert_eq!(s["status"], "exited", "{r}");
    assert_eq!(s["exit_code"], 3);
    assert_eq!(s["stdout"], "mail [REDACTED:email]\n");
    assert_eq!(s["stderr"], "oops\n");
    assert_eq!(s["stdout_truncated"], false);
    let first_session = s["session_id"].as_str().unwrap().to_string();
    assert_eq!(r["isError"], false);

    // stdin goes through the gateway's line checks: the denied line never reaches cat.
    let r = mcp.tool(
        "exec",
        json!({"command": ["cat"], "stdin": "hello\nrm -rf /tmp/x\nbye\n"}),
    );
    let s = &r["structuredContent"];
    assert_eq!(s["stdout"], "hello\nbye\n", "{r}");
    assert_eq!(s["exit_code"], 77, "a withheld line makes it 77: {r}");
    assert_eq!(s["notices"][0]["event"], "denied");
    assert_eq!(s["notices"][0]["rule"], "no-rm");

    // A command that needs a review comes back pending, with the review id…
    let deploy = json!(["sh", "-c", "echo deploy done"]);
    let r = mcp.tool("exec", json!({"command": deploy}));
    let s = &r["structuredContent"];
    assert_eq!(s["status"], "approval_pending", "{r}");
    assert_eq!(s["exit_code"], 75);
    let review = s["review_id"].as_str().unwrap().to_string();
    // …a human approves it…
    let mut c = gw.hoopx(&env);
    c.env("HOOPX_TOKEN", "tok-lena-00001")
        .args(["review", "approve", &review, "--yes"]);
    assert_eq!(run(c, "", T).code(), 0);
    // …and the agent runs it with the review id.
    let r = mcp.tool("exec", json!({"command": deploy, "review_id": review}));
    assert_eq!(r["structuredContent"]["stdout"], "deploy done\n", "{r}");
    assert_eq!(r["structuredContent"]["exit_code"], 0);

    // A stdin line that needs a review does not hold a tool call: it comes back pending.
    let r = mcp.tool("exec", json!({"command": ["cat"], "stdin": "deploy now\n"}));
    let s = &r["structuredContent"];
    assert_eq!(s["status"], "approval_pending", "{r}");
    assert_eq!(s["exit_code"], 75);
    let line_review = s["review_id"].as_str().unwrap().to_string();
    assert_eq!(line_review.len(), 36, "{r}");
    // The review stays pending after the call; once approved, the same call with the
    // review id releases that line, once.
    let mut c = gw.hoopx(&env);
    c.env("HOOPX_TOKEN", "tok-lena-00001")
        .args(["review", "approve", &line_review, "--yes"]);
    assert_eq!(run(c, "", T).code(), 0);
    let call = json!({"command": ["cat"], "stdin": "deploy now\n", "review_id": line_review});
    let r = mcp.tool("exec", call.clone());
    let s = &r["structuredContent"];
    assert_eq!(s["stdout"], "deploy now\n", "{r}");
    assert_eq!(s["exit_code"], 0, "{r}");
    let r = mcp.tool("exec", call);
    let s = &r["structuredContent"];
    assert_eq!(s["exit_code"], 77, "used once: {r}");
    assert!(
        s["message"].as_str().unwrap().contains("already used"),
        "{r}"
    );

    // replay_text reads sessions of the gateway, never local files.
    let a = mcp.request(
        "tools/call",
        json!({"name": "replay_text", "arguments": {"session_id": "/etc/passwd"}}),
    );
    assert_eq!(a["error"]["code"], -32602, "{a}");

    // sessions and replay_text.
    let r = mcp.tool("sessions", json!({"limit": 10}));
    let ids: Vec<&str> = r["structuredContent"]["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&first_session.as_str()), "{r}");
    let r = mcp.tool("replay_text", json!({"session_id": first_session}));
    let text = r["content"][0]["text"].as_str().unwrap();
    assert!(text.contains("mail [REDACTED:email]"), "{r}");
    assert!(!text.contains("alice@example.com"), "{r}");

    // Errors are JSON-RPC errors, and the server keeps going.
    let a = mcp.request("no/such", json!({}));
    assert_eq!(a["error"]["code"], -32601, "{a}");
    let a = mcp.request(
        "tools/call",
        json!({"name": "exec", "arguments": {"command": "psql"}}),
    );
    assert_eq!(a["error"]["code"], -32602, "{a}");
    let a = mcp.request("tools/call", json!({"name": "nope", "arguments": {}}));
    assert_eq!(a["error"]["code"], -32602, "{a}");
    mcp.send_line("{not json");
    let a = mcp.answer();
    assert_eq!(a["error"]["code"], -32700, "{a}");
    let a = mcp.request("ping", json!({}));
    assert_eq!(a["result"], json!({}));
}

#[test]
fn capture_returns_one_json_object_with_a_size_limit() {
    let env = Env::new();
    let gw = Gateway::start(&env, Some(CONFIG), None);
    let mut c = gw.hoopx(&env);
    c.env("HOOPX_TOKEN", "tok-agent-0001").args([
        "exec",
        "--capture",
        "--capture-limit",
        "10",
        "--",
        "sh",
        "-c",
        "printf 0123456789abcdef; printf 'bob@example.org' >&2",
    ]);
    let out = run(c, "", T);
    assert_eq!(out.code(), 0, "{out:?}");
    let v: Value = serde_json::from_str(out.stdout.trim()).expect("one JSON object");
    assert_eq!(v["stdout"], "0123456789");
    assert_eq!(v["stdout_truncated"], true);
    assert_eq!(
        v["stderr"], "[REDACTED:",
        "the limit applies to the masked text: {v}"
    );
    assert_eq!(v["stderr_truncated"], true);
    assert_eq!(v["exit_code"], 0);
    assert!(v["session_id"].as_str().is_some_and(|s| s.len() == 36));

    // Failures are an object too: a usage error of the gateway side, e.g. an unknown target.
    let mut c = gw.hoopx(&env);
    c.env("HOOPX_TOKEN", "tok-agent-0001").args([
        "exec",
        "--capture",
        "--target",
        "nope",
        "--",
        "sh",
        "-c",
        "true",
    ]);
    let out = run(c, "", T);
    assert_eq!(out.code(), 64, "{out:?}");
    let v: Value = serde_json::from_str(out.stdout.trim()).expect("one JSON object");
    assert_eq!(v["status"], "failed");
    assert_eq!(v["exit_code"], 64);
    assert!(v["message"].as_str().unwrap().contains("nope"), "{v}");
}
