//! `hoopx mcp`: a Model Context Protocol server over stdio (JSON-RPC 2.0, one message per
//! line), so an agent calls hoopx as a tool instead of shelling out to psql or ssh.
//!
//! Tools: `exec` (a command through the gateway: masked output, exit code, session id; or a
//! pending review's id), `sessions` (recent sessions) and `replay_text` (a session as plain
//! text). Each call runs this same binary as a child (`hoopx exec --capture …`), so a tool
//! call is exactly a command-line call: same policy, same recording, same exit codes, and
//! nothing of one call's state leaks into the next.

use std::io::{BufRead, Read, Write};
use std::process::{Command, ExitCode, Stdio};

use clap::Args;
use serde_json::{json, Value};

use super::{Failure, GatewayArgs};

/// Protocol versions this server speaks, newest first.
const VERSIONS: &[&str] = &["2025-06-18", "2025-03-26", "2024-11-05"];

/// Largest request line accepted.
const MAX_LINE: usize = 4 * 1024 * 1024;

/// Text returned by `replay_text` at most.
const MAX_TEXT: usize = 1 << 20;

#[derive(Debug, Args)]
#[command(
    after_help = "Setup (Claude Code):  claude mcp add hoopx -- hoopx mcp\nOther clients: a stdio server with command \"hoopx\" and args [\"mcp\"]; pass HOOPX_GATEWAY and HOOPX_TOKEN in its env.\n\nTools: exec (command as an array, optional target, stdin, review_id), sessions, replay_text."
)]
pub struct McpArgs {
    #[command(flatten)]
    pub gateway: GatewayArgs,
}

pub fn run(args: McpArgs) -> Result<ExitCode, Failure> {
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = (&mut input)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut line)
            .map_err(|e| Failure::new(1, format!("cannot read stdin: {e}")))?;
        if n == 0 {
            return Ok(ExitCode::SUCCESS);
        }
        if line.len() > MAX_LINE {
            reply(error(Value::Null, -32600, "request line over 4 MiB"))?;
            // Skip the rest of the oversized line.
            let mut rest = Vec::new();
            let _ = input.read_until(b'\n', &mut rest);
            continue;
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim();
        if text.is_empty() {
            continue;
        }
        let answer = match serde_json::from_str::<Value>(text) {
            Err(e) => Some(error(Value::Null, -32700, &format!("parse error: {e}"))),
            Ok(Value::Array(_)) => Some(error(
                Value::Null,
                -32600,
                "batches are not supported; send one request per line",
            )),
            Ok(msg) => handle(&args.gateway, msg),
        };
        if let Some(a) = answer {
            reply(a)?;
        }
    }
}

fn reply(v: Value) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{v}")
        .and_then(|_| out.flush())
        .map_err(|_| Failure::silent(0))
}

fn error(id: Value, code: i64, message: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
}

fn ok(id: Value, result: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

/// One message; `None` for notifications (no answer).
fn handle(gateway: &GatewayArgs, msg: Value) -> Option<Value> {
    let id = msg.get("id").cloned();
    let Some(method) = msg.get("method").and_then(Value::as_str) else {
        // A response from the client, or garbage: answer garbage only when it has an id.
        return id.map(|id| error(id, -32600, "not a request: no method"));
    };
    let Some(id) = id else {
        // Notifications (initialized, cancelled, …) need no answer.
        return None;
    };
    let params = msg.get("params").cloned().unwrap_or(Value::Null);
    Some(match method {
        "initialize" => {
            let asked = params
                .get("protocolVersion")
                .and_then(Value::as_str)
                .unwrap_or(VERSIONS[0]);
            let version = VERSIONS
                .iter()
                .find(|v| **v == asked)
                .unwrap_or(&VERSIONS[0]);
            ok(
                id,
                json!({
                    "protocolVersion": version,
                    "capabilities": {"tools": {"listChanged": false}},
                    "serverInfo": {"name": "hoopx", "version": env!("CARGO_PKG_VERSION")},
                    "instructions": "Run database, ssh and kubectl commands through the hoopx gateway with the exec tool: output comes back masked, everything is recorded, and risky commands wait for a human (exec then returns approval_pending with a review_id; call exec again with the same command and stdin and that review_id once approved).",
                }),
            )
        }
        "ping" => ok(id, json!({})),
        "tools/list" => ok(id, json!({"tools": tools()})),
        "tools/call" => {
            let name = params.get("name").and_then(Value::as_str).unwrap_or("");
            let arguments = params.get("arguments").cloned().unwrap_or(json!({}));
            match call(gateway, name, &arguments) {
                Ok(result) => ok(id, result),
                Err(Invalid(why)) => error(id, -32602, &why),
            }
        }
        other => error(id, -32601, &format!("method not found: {other}")),
    })
}

fn tools() -> Value {
    json!([
        {
            "name": "exec",
            "title": "Run a command through the hoopx gateway",
            "description": "Runs a command (psql, ssh, kubectl, …) through the access gateway: secrets and personal data in its output are masked, the session is recorded, forbidden commands are refused and risky ones wait for human approval. Returns session_id, exit_code, masked stdout and stderr (truncated past a limit, flagged), or status approval_pending with a review_id: ask a human to approve it (`hoopx review approve ID`), then call exec again with the same command (and the same stdin) and that review_id.",
            "inputSchema": {
                "type": "object",
                "properties": {
                    "command": {"type": "array", "items": {"type": "string"}, "minItems": 1, "description": "Program and arguments, e.g. [\"psql\", \"-c\", \"select 1\"]"},
                    "target": {"type": "string", "description": "Gateway target; by default the one target that runs the program"},
                    "stdin": {"type": "string", "description": "Input for the command (each line is checked by the gateway's rules)"},
                    "review_id": {"type": "string", "description": "An approved review for exactly this command, or for the stdin line it was asked for (call again with the same command and stdin)"},
                    "wait_for_approval": {"type": "boolean", "description": "Wait for a reviewer instead of returning approval_pending at once (default false)"}
                },
                "required": ["command"]
            }
        },
        {
            "name": "sessions",
            "title": "List recorded sessions",
            "description": "Recent sessions on the gateway, newest first: id, identity, target, command, status, exit code, masks and denials.",
            "inputSchema": {
                "type": "object",
                "properties": {
                    "limit": {"type": "integer", "minimum": 1, "maximum": 1000},
                    "status": {"type": "string", "enum": ["open", "running", "exited", "aborted", "denied"]},
                    "user": {"type": "string"},
                    "target": {"type": "string"}
                }
            }
        },
        {
            "name": "replay_text",
            "title": "A recorded session as text",
            "description": "The masked output of a recorded session as plain text (what its terminal showed), up to 1 MiB.",
            "inputSchema": {
                "type": "object",
                "properties": {"session_id": {"type": "string", "description": "A session id, or \"last\""}},
                "required": ["session_id"]
            }
        }
    ])
}

/// Arguments the tool cannot run with (JSON-RPC invalid params).
struct Invalid(String);

fn str_arg<'a>(args: &'a Value, key: &str) -> Result<Option<&'a str>, Invalid> {
    match args.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(Invalid(format!("{key} must be a string"))),
    }
}

fn call(gateway: &GatewayArgs, name: &str, args: &Value) -> Result<Value, Invalid> {
    if !args.is_object() {
        return Err(Invalid("arguments must be an object".into()));
    }
    let mut cmd = hoopx(gateway);
    match name {
        "exec" => {
            let command: Vec<String> = match args.get("command") {
                Some(Value::Array(items)) if !items.is_empty() => items
                    .iter()
                    .map(|v| v.as_str().map(str::to_string))
                    .collect::<Option<_>>()
                    .ok_or_else(|| Invalid("command must be an array of strings".into()))?,
                _ => {
                    return Err(Invalid(
                        "command must be a non-empty array of strings, e.g. [\"psql\", \"-c\", \"select 1\"]".into(),
                    ))
                }
            };
            cmd.args(["exec", "--capture"]);
            if let Some(t) = str_arg(args, "target")? {
                cmd.arg("--target").arg(t);
            }
            if let Some(r) = str_arg(args, "review_id")? {
                cmd.arg("--review").arg(r);
            }
            if !args
                .get("wait_for_approval")
                .and_then(Value::as_bool)
                .unwrap_or(false)
            {
                cmd.arg("--no-wait");
            }
            let stdin = str_arg(args, "stdin")?.map(str::to_string);
            cmd.arg("--").args(command);
            let (code, out, err) = spawn(cmd, stdin);
            // `exec --capture` prints one JSON object, also when it fails.
            let result: Value = out
                .lines()
                .rev()
                .find_map(|l| serde_json::from_str(l).ok())
                .unwrap_or_else(
                    || json!({"status": "failed", "exit_code": code, "message": err.trim()}),
                );
            let failed = result["status"] == "failed";
            Ok(tool_result(result, failed))
        }
        "sessions" => {
            cmd.args(["sessions", "list", "--output", "json"]);
            match args.get("limit") {
                None | Some(Value::Null) => {}
                Some(Value::Number(n)) if n.as_u64().is_some_and(|n| (1..=1000).contains(&n)) => {
                    cmd.arg("--limit").arg(n.to_string());
                }
                Some(_) => return Err(Invalid("limit must be an integer from 1 to 1000".into())),
            }
            for key in ["status", "user", "target"] {
                if let Some(v) = str_arg(args, key)? {
                    cmd.arg(format!("--{key}")).arg(v);
                }
            }
            let (code, out, err) = spawn(cmd, None);
            Ok(match serde_json::from_str::<Value>(&out) {
                Ok(list) if code == 0 => tool_result(json!({"sessions": list}), false),
                _ => tool_result(
                    json!({"status": "failed", "exit_code": code, "message": err.trim()}),
                    true,
                ),
            })
        }
        "replay_text" => {
            let Some(id) = str_arg(args, "session_id")? else {
                return Err(Invalid("session_id is required".into()));
            };
            // A session of the gateway, never a file on this machine.
            let is_id = id == "last"
                || (id.len() == 36 && id.chars().all(|c| c.is_ascii_hexdigit() || c == '-'));
            if !is_id {
                return Err(Invalid(
                    "session_id must be a session id (as `sessions` lists them) or \"last\"".into(),
                ));
            }
            cmd.args(["replay", "--format", "text", "--", id]);
            let (code, out, err) = spawn(cmd, None);
            if code != 0 {
                return Ok(tool_result(
                    json!({"status": "failed", "exit_code": code, "message": err.trim()}),
                    true,
                ));
            }
            let truncated = out.len() > MAX_TEXT;
            let mut text = out;
            if truncated {
                let mut cut = MAX_TEXT;
                while !text.is_char_boundary(cut) {
                    cut -= 1;
                }
                text.truncate(cut);
            }
            Ok(json!({
                "content": [{"type": "text", "text": text}],
                "structuredContent": {"session_id": id, "truncated": truncated},
                "isError": false,
            }))
        }
        other => Err(Invalid(format!(
            "unknown tool {other:?}: use exec, sessions or replay_text"
        ))),
    }
}

fn tool_result(v: Value, is_error: bool) -> Value {
    json!({
        "content": [{"type": "text", "text": v.to_string()}],
        "structuredContent": v,
        "isError": is_error,
    })
}

/// This binary, with the gateway settings handed down by environment (never on the
/// command line, where a token would show in `ps`).
fn hoopx(gateway: &GatewayArgs) -> Command {
    let exe = std::env::current_exe().unwrap_or_else(|_| "hoopx".into());
    let mut c = Command::new(exe);
    if let Some(g) = &gateway.gateway {
        c.env(crate::env_vars::HOOPX_GATEWAY, g);
    }
    if let Some(t) = &gateway.token {
        c.env(crate::env_vars::HOOPX_TOKEN, t);
    }
    c.env("NO_COLOR", "1");
    c
}

/// Runs a child to the end: (exit code, stdout, stderr).
fn spawn(mut cmd: Command, stdin: Option<String>) -> (i32, String, String) {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return (1, String::new(), format!("cannot run hoopx: {e}")),
    };
    let writer = stdin.and_then(|s| {
        let mut pipe = child.stdin.take()?;
        Some(std::thread::spawn(move || {
            let _ = pipe.write_all(s.as_bytes());
        }))
    });
    let mut err = child.stderr.take();
    let err_reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        if let Some(e) = err.as_mut() {
            let _ = e.read_to_end(&mut s);
        }
        String::from_utf8_lossy(&s).into_owned()
    });
    let mut out = Vec::new();
    if let Some(mut o) = child.stdout.take() {
        let _ = o.read_to_end(&mut out);
    }
    let out = String::from_utf8_lossy(&out).into_owned();
    let code = child.wait().ok().and_then(|s| s.code()).unwrap_or(1);
    if let Some(w) = writer {
        let _ = w.join();
    }
    let err = err_reader.join().unwrap_or_default();
    (code, out, err)
}
