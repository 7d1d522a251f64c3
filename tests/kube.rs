//! Kubernetes at the API level: real kubectl through the real `hoopx` and gateway to a
//! stand-in API server. No real cluster can run here, so [`ApiServer`] is a test double
//! written for these tests: HTTPS with a CA the test generates (openssl), a bearer token it
//! checks, discovery, pods, secrets and namespaces (get, list, table, watch, delete), a
//! followed pod log and an exec WebSocket (`v5.channel.k8s.io`), all as a real API server
//! shapes them for kubectl.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use crate::util::{run, spawn_piped, Env, Gateway, PtyChild, DEV_TOKEN};

const T: Duration = Duration::from_secs(60);

type Headers = HashMap<String, String>;

/// The stand-in API server (see the module header).
pub struct ApiServer {
    pub url: String,
    pub ca_pem: String,
    /// A client certificate the server accepts, and its key (PEM).
    pub client_cert: String,
    pub client_key: String,
    state: Arc<State>,
}

#[derive(Default)]
struct State {
    token: String,
    /// `METHOD PATH auth=BOOL`, in order.
    requests: Mutex<Vec<String>>,
    pods: Mutex<Vec<String>>,
    namespaces: Mutex<Vec<String>>,
    /// What exec streams received on stdin.
    exec_stdin: Mutex<Vec<u8>>,
    /// The followed log's second part waits for this.
    log_go: (Mutex<bool>, Condvar),
}

/// The Secret the stand-in holds: `conn` is `hunter2-s3cr3t`, base64.
pub const SECRET_B64: &str = "aHVudGVyMi1zM2NyM3Q=";

fn sh(cmd: &mut Command) {
    let out = cmd.stdin(Stdio::null()).output().expect("run");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl ApiServer {
    pub fn start(dir: &Path, token: &str) -> ApiServer {
        let openssl = |args: &[&str]| {
            sh(Command::new("openssl").args(args).current_dir(dir));
        };
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        let mut a = vec!["req", "-x509"];
        a.extend(ec);
        a.extend([
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "1",
            "-subj",
            "/CN=hoopx test CA",
        ]);
        openssl(&a);
        let mut a = vec!["req"];
        a.extend(ec);
        a.extend([
            "-keyout",
            "srv.key",
            "-out",
            "srv.csr",
            "-subj",
            "/CN=127.0.0.1",
        ]);
        openssl(&a);
        std::fs::write(
            dir.join("ext"),
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        openssl(&[
            "x509",
            "-req",
            "-in",
            "srv.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            "ext",
            "-outform",
            "DER",
            "-out",
            "srv.der",
        ]);
        openssl(&[
            "pkcs8",
            "-topk8",
            "-nocrypt",
            "-in",
            "srv.key",
            "-outform",
            "DER",
            "-out",
            "srv.key.der",
        ]);
        // A client certificate the CA signed, for a target that logs in with one.
        let mut a = vec!["req"];
        a.extend(ec);
        a.extend([
            "-keyout",
            "client.key",
            "-out",
            "client.csr",
            "-subj",
            "/CN=hoopx-gateway",
        ]);
        openssl(&a);
        std::fs::write(
            dir.join("client-ext"),
            "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n",
        )
        .unwrap();
        openssl(&[
            "x509",
            "-req",
            "-in",
            "client.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            "client-ext",
            "-out",
            "client.pem",
        ]);
        let mut roots = rustls::RootCertStore::empty();
        {
            use rustls::pki_types::pem::PemObject;
            for c in rustls::pki_types::CertificateDer::pem_file_iter(dir.join("ca.pem")).unwrap() {
                roots.add(c.unwrap()).unwrap();
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        // Client certificates are checked when presented; a bearer token does as well.
        let verifier =
            rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .allow_unauthenticated()
                .build()
                .unwrap();
        let cert =
            rustls::pki_types::CertificateDer::from(std::fs::read(dir.join("srv.der")).unwrap());
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(
            std::fs::read(dir.join("srv.key.der")).unwrap().into(),
        );
        let mut tls = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![cert], key)
        .unwrap();
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        let tls = Arc::new(tls);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!(
            "https://127.0.0.1:{}",
            listener.local_addr().unwrap().port()
        );
        let state = Arc::new(State {
            token: token.to_string(),
            pods: Mutex::new(vec!["web-1".into(), "web-2".into()]),
            namespaces: Mutex::new(vec!["default".into(), "shop".into()]),
            ..Default::default()
        });
        let st = state.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (tls, st) = (tls.clone(), st.clone());
                std::thread::spawn(move || {
                    let Ok(sc) = rustls::ServerConnection::new(tls) else {
                        return;
                    };
                    let mut s = rustls::StreamOwned::new(sc, conn);
                    while let Some((method, path, headers)) = read_request(&mut s) {
                        let cert = s.conn.peer_certificates().is_some_and(|c| !c.is_empty());
                        if !serve(&st, &mut s, &method, &path, &headers, cert) {
                            return;
                        }
                    }
                });
            }
        });
        ApiServer {
            url,
            ca_pem: std::fs::read_to_string(dir.join("ca.pem")).unwrap(),
            client_cert: std::fs::read_to_string(dir.join("client.pem")).unwrap(),
            client_key: std::fs::read_to_string(dir.join("client.key")).unwrap(),
            state,
        }
    }

    pub fn requests(&self) -> Vec<String> {
        self.state.requests.lock().unwrap().clone()
    }

    pub fn exec_stdin(&self) -> String {
        String::from_utf8_lossy(&self.state.exec_stdin.lock().unwrap()).into_owned()
    }

    /// Lets the followed log go on.
    pub fn release_log(&self) {
        let (m, c) = &self.state.log_go;
        *m.lock().unwrap() = true;
        c.notify_all();
    }
}

/// One HTTP/1.1 request: method, path with query, headers (names lower case). The body,
/// if any, is read and dropped.
fn read_request(s: &mut impl Read) -> Option<(String, String, Headers)> {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if s.read(&mut b).ok()? == 0 {
            return None;
        }
        head.push(b[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let (method, path) = (first.next()?.to_string(), first.next()?.to_string());
    let headers: Headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let len: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).ok()?;
    Some((method, path, headers))
}

fn status_body(code: u16, reason: &str, message: &str) -> String {
    serde_json::json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code})
    .to_string()
}

fn pod(name: &str) -> serde_json::Value {
    serde_json::json!({"kind": "Pod", "apiVersion": "v1",
        "metadata": {"name": name, "namespace": "shop", "uid": format!("uid-{name}"),
            "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {"containers": [{"name": "app", "image": "app:1"}]},
        "status": {"phase": "Running"}})
}

fn secret() -> serde_json::Value {
    serde_json::json!({"kind": "Secret", "apiVersion": "v1",
        "metadata": {"name": "db-creds", "namespace": "shop", "uid": "uid-db-creds",
            "resourceVersion": "7", "creationTimestamp": "2026-01-01T00:00:00Z"},
        "type": "Opaque",
        "data": {"conn": SECRET_B64}})
}

fn namespace(name: &str) -> serde_json::Value {
    serde_json::json!({"kind": "Namespace", "apiVersion": "v1",
        "metadata": {"name": name, "uid": format!("uid-ns-{name}"), "creationTimestamp": "2026-01-01T00:00:00Z"},
        "status": {"phase": "Active"}})
}

/// A Table of `objects` (kubectl's default output asks for one).
fn table(objects: &[serde_json::Value]) -> serde_json::Value {
    serde_json::json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": "1"},
        "columnDefinitions": [
            {"name": "Name", "type": "string", "format": "name", "description": "", "priority": 0},
            {"name": "Data", "type": "string", "format": "", "description": "", "priority": 0}],
        "rows": objects.iter().map(|o| serde_json::json!({
            "cells": [o["metadata"]["name"], o.get("data").map(|d| d.to_string()).unwrap_or_else(|| "Running".into())],
            "object": o})).collect::<Vec<_>>()})
}

fn write_response(s: &mut impl Write, status: u16, body: &str) -> bool {
    let reason = match status {
        200 => "OK",
        401 => "Unauthorized",
        _ => "Not Found",
    };
    let resp = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(resp.as_bytes()).is_ok() && s.flush().is_ok()
}

fn chunk(s: &mut impl Write, data: &str) -> bool {
    s.write_all(format!("{:x}\r\n{data}\r\n", data.len()).as_bytes())
        .is_ok()
        && s.flush().is_ok()
}

/// Serves one request; false when the connection is done.
fn serve<S: Read + Write>(
    st: &State,
    s: &mut S,
    method: &str,
    path: &str,
    h: &Headers,
    cert: bool,
) -> bool {
    let token = h
        .get("authorization")
        .is_some_and(|v| *v == format!("Bearer {}", st.token));
    let authorized = token || cert;
    st.requests.lock().unwrap().push(format!(
        "{method} {path} auth={authorized}{}",
        if cert { " cert" } else { "" }
    ));
    if !authorized {
        return write_response(s, 401, &status_body(401, "Unauthorized", "Unauthorized"));
    }
    let (route, query) = path.split_once('?').unwrap_or((path, ""));
    let as_table = h
        .get("accept")
        .is_some_and(|a| a.starts_with("application/json;as=Table"));
    let watch = query
        .split('&')
        .any(|kv| kv == "watch=true" || kv == "watch=1");
    let ok = |s: &mut S, v: serde_json::Value| write_response(s, 200, &v.to_string());
    let not_found = |s: &mut S| {
        write_response(
            s,
            404,
            &status_body(
                404,
                "NotFound",
                "the server could not find the requested resource",
            ),
        )
    };
    let list = |s: &mut S, kind: &str, mut objects: Vec<serde_json::Value>| -> bool {
        // kubectl waits for a delete with a list by name.
        if let Some(at) = query.find("metadata.name%3D") {
            let name = query[at + "metadata.name%3D".len()..]
                .split('&')
                .next()
                .unwrap_or("");
            objects.retain(|o| o["metadata"]["name"] == name);
        }
        if watch {
            // Every object as an ADDED event, then the stream ends (as at a timeout).
            let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
            if s.write_all(head.as_bytes()).is_err() {
                return false;
            }
            for o in &objects {
                let o = if as_table {
                    table(std::slice::from_ref(o))
                } else {
                    o.clone()
                };
                let ev = serde_json::json!({"type": "ADDED", "object": o});
                if !chunk(s, &format!("{ev}\n")) {
                    return false;
                }
            }
            let _ = s.write_all(b"0\r\n\r\n");
            let _ = s.flush();
            return false;
        }
        if as_table {
            ok(s, table(&objects))
        } else {
            let items: Vec<_> = objects
                .into_iter()
                .map(|mut o| {
                    o.as_object_mut().unwrap().remove("kind");
                    o.as_object_mut().unwrap().remove("apiVersion");
                    o
                })
                .collect();
            ok(
                s,
                serde_json::json!({"kind": kind, "apiVersion": "v1",
                "metadata": {"resourceVersion": "1"}, "items": items}),
            )
        }
    };
    let shop = "/api/v1/namespaces/shop/";
    match (method, route) {
        ("GET", "/version") => ok(
            s,
            serde_json::json!({"major": "1", "minor": "32",
            "gitVersion": "v1.32.0", "platform": "linux/amd64"}),
        ),
        ("GET", "/api") => ok(
            s,
            serde_json::json!({"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]}),
        ),
        ("GET", "/apis") => ok(
            s,
            serde_json::json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": []}),
        ),
        ("GET", "/api/v1") => ok(
            s,
            serde_json::json!({"kind": "APIResourceList", "groupVersion": "v1",
            "resources": [
                {"name": "pods", "singularName": "pod", "namespaced": true, "kind": "Pod",
                 "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"],
                 "shortNames": ["po"], "categories": ["all"]},
                {"name": "pods/exec", "singularName": "", "namespaced": true, "kind": "PodExecOptions", "verbs": ["create", "get"]},
                {"name": "pods/log", "singularName": "", "namespaced": true, "kind": "Pod", "verbs": ["get"]},
                {"name": "secrets", "singularName": "secret", "namespaced": true, "kind": "Secret",
                 "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"]},
                {"name": "namespaces", "singularName": "namespace", "namespaced": false, "kind": "Namespace",
                 "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"], "shortNames": ["ns"]}]}),
        ),
        ("GET", "/api/v1/namespaces/shop/pods") => {
            let names: Vec<_> = st.pods.lock().unwrap().iter().map(|n| pod(n)).collect();
            list(s, "PodList", names)
        }
        ("GET", "/api/v1/namespaces/shop/secrets") => list(s, "SecretList", vec![secret()]),
        ("GET", "/api/v1/namespaces/shop/secrets/db-creds") => ok(s, secret()),
        ("GET", "/api/v1/namespaces") => {
            let all: Vec<_> = st
                .namespaces
                .lock()
                .unwrap()
                .iter()
                .map(|n| namespace(n))
                .collect();
            list(s, "NamespaceList", all)
        }
        ("GET" | "DELETE", r)
            if r.starts_with("/api/v1/namespaces/") && r.matches('/').count() == 4 =>
        {
            let name = &r["/api/v1/namespaces/".len()..];
            let mut all = st.namespaces.lock().unwrap();
            match all.iter().position(|n| n == name) {
                Some(i) if method == "GET" => ok(s, namespace(&all[i])),
                Some(i) => {
                    let gone = all.remove(i);
                    drop(all);
                    ok(s, namespace(&gone))
                }
                None => not_found(s),
            }
        }
        ("GET", r) if r.starts_with(shop) && r.ends_with("/log") => {
            // A followed log: a line, then (once the test lets it) a line with a key.
            let head =
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n";
            let pod = r.trim_end_matches("/log").rsplit('/').next().unwrap_or("");
            if s.write_all(head.as_bytes()).is_err() || !chunk(s, &format!("started {pod}\n")) {
                return false;
            }
            if query.contains("follow=true") {
                let (m, c) = &st.log_go;
                let mut go = m.lock().unwrap();
                while !*go {
                    let (g, t) = c.wait_timeout(go, Duration::from_secs(60)).unwrap();
                    go = g;
                    if t.timed_out() {
                        break;
                    }
                }
            }
            chunk(s, "using key AKIAIOSFODNN7QWERTYU\n");
            let _ = s.write_all(b"0\r\n\r\n");
            let _ = s.flush();
            false
        }
        ("GET", r) if r.starts_with(shop) && (r.ends_with("/exec") || r.ends_with("/attach")) => {
            exec(st, s, h)
        }
        (m, r) if r.starts_with("/api/v1/namespaces/shop/pods/") => {
            let name = &r["/api/v1/namespaces/shop/pods/".len()..];
            let mut list = st.pods.lock().unwrap();
            match list.iter().position(|n| n == name) {
                Some(i) if m == "GET" => ok(s, pod(&list[i])),
                Some(i) if m == "DELETE" => {
                    let gone = list.remove(i);
                    drop(list);
                    ok(s, pod(&gone))
                }
                _ => write_response(
                    s,
                    404,
                    &status_body(404, "NotFound", &format!("pods \"{name}\" not found")),
                ),
            }
        }
        _ => not_found(s),
    }
}

/// An exec stream: stdin is echoed on stdout (like `cat`) and kept; when stdin closes,
/// the status goes on channel 3 and the stream ends.
fn exec<S: Read + Write>(st: &State, mut s: &mut S, h: &Headers) -> bool {
    use tokio_tungstenite::tungstenite::{self, protocol::Role, Message};
    let protocols = h.get("sec-websocket-protocol").cloned().unwrap_or_default();
    if !protocols
        .split(',')
        .any(|p| p.trim() == "v5.channel.k8s.io")
    {
        return write_response(
            s,
            400,
            &status_body(400, "BadRequest", "v5.channel.k8s.io only"),
        );
    }
    let key = h.get("sec-websocket-key").cloned().unwrap_or_default();
    let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
    let resp = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\nSec-WebSocket-Protocol: v5.channel.k8s.io\r\n\r\n"
    );
    if s.write_all(resp.as_bytes()).is_err() || s.flush().is_err() {
        return false;
    }
    let mut ws = tungstenite::WebSocket::from_raw_socket(&mut s, Role::Server, None);
    loop {
        match ws.read() {
            Ok(Message::Binary(b)) if b.first() == Some(&0) && !b[1..].contains(&4) => {
                st.exec_stdin.lock().unwrap().extend_from_slice(&b[1..]);
                let mut out = vec![1u8];
                out.extend_from_slice(&b[1..]);
                if ws.send(Message::Binary(out.into())).is_err() {
                    return false;
                }
            }
            // v5: stdin closed; on a terminal, Ctrl-D.
            Ok(Message::Binary(b))
                if b.as_ref() == [255, 0] || (b.first() == Some(&0) && b[1..].contains(&4)) =>
            {
                let status = br#"{"metadata":{},"status":"Success"}"#;
                let mut out = vec![3u8];
                out.extend_from_slice(status);
                let _ = ws.send(Message::Binary(out.into()));
                let _ = ws.close(Some(tungstenite::protocol::CloseFrame {
                    code: tungstenite::protocol::frame::coding::CloseCode::Normal,
                    reason: "".into(),
                }));
                let _ = ws.flush();
                // Until the client's close arrives.
                while ws.read().is_ok() {}
                return false;
            }
            Ok(_) => {}
            Err(_) => return false,
        }
    }
}

/// A gateway config for `api`, its token in a file of `gw_env`, plus `rules`.
fn config(gw_env: &Env, api: &ApiServer, token: &str, rules: &str) -> String {
    let tokfile = gw_env.write("kube-token", token);
    let cafile = gw_env.write("ca.pem", &api.ca_pem);
    format!(
        r#"[[targets]]
name = "cluster"
kind = "kubernetes"
command = ["kubectl", "sh"]
server = "{}"
ca = {{ file = "{}" }}
token = {{ file = "{}" }}
namespace = "shop"

[[dev.identities]]
name = "sam"
token = "tok-sam-000001"
groups = ["sre"]

[rules]
builtin_masks = ["all"]
{rules}"#,
        api.url,
        cafile.display(),
        tokfile.display()
    )
}

const TOKEN: &str = "kube-token-0b5e27d9c4a61f38";

fn hoopx(gw: &Gateway, env: &Env) -> Command {
    let mut c = gw.hoopx(env);
    let tmp = env.path().join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    c.env("TMPDIR", tmp);
    c
}

/// Every file under `dir` whose contents hold `needle`.
fn files_holding(dir: &Path, needle: &str) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path();
        let Ok(ft) = e.file_type() else { continue };
        if ft.is_dir() {
            out.extend(files_holding(&p, needle));
        } else if ft.is_file() {
            if let Ok(b) = std::fs::read(&p) {
                if b.windows(needle.len()).any(|w| w == needle.as_bytes()) {
                    out.push(p.display().to_string());
                }
            }
        }
    }
    out
}

#[test]
fn the_cluster_token_never_reaches_the_client() {
    let (env, gw_env) = (Env::new(), Env::new());
    let api = ApiServer::start(gw_env.path(), TOKEN);
    let gw = Gateway::start(&gw_env, Some(&config(&gw_env, &api, TOKEN, "")), None);
    // The session answer carries no cluster credential.
    let opened = reqwest::blocking::Client::new()
        .post(format!("{}/v1/sessions", gw.url))
        .bearer_auth(DEV_TOKEN)
        .header("hoopx-protocol", "1")
        .json(&serde_json::json!({"argv": ["kubectl", "get", "pods"], "mode": "pipe", "target": "cluster"}))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(opened.contains("\"kind\":\"kubernetes\""), "{opened}");
    assert!(!opened.contains(TOKEN), "{opened}");
    // A live session: kubectl works, and meanwhile a scanner running as the caller's user
    // finds the token in no process's environment or command line, no file of the
    // session directory and nowhere in HOME.
    let mut c = hoopx(&gw, &env);
    c.args([
        "exec",
        "--target",
        "cluster",
        "--",
        "sh",
        "-c",
        "kubectl get pods && cat \"$KUBECONFIG\" >/dev/null && echo ready && read line",
    ]);
    let (mut child, out, err) = spawn_piped(c);
    out.wait_for("ready", T);
    assert!(out.text().contains("web-1"), "{}", err.text());
    let mut seen = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        for f in ["environ", "cmdline"] {
            if let Ok(b) = std::fs::read(e.path().join(f)) {
                if b.windows(TOKEN.len()).any(|w| w == TOKEN.as_bytes()) {
                    seen.push(e.path().join(f).display().to_string());
                }
            }
        }
    }
    let session_dirs: Vec<_> = std::fs::read_dir(env.path().join("tmp"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(session_dirs.len(), 1, "the live session's directory");
    assert!(session_dirs[0].join("kubeconfig").exists());
    seen.extend(files_holding(env.path(), TOKEN));
    assert!(seen.is_empty(), "the cluster token is readable at {seen:?}");
    // The endpoint takes the session's own token only, and that token is worth nothing
    // once the session is over.
    let kc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(session_dirs[0].join("kubeconfig")).unwrap())
            .unwrap();
    let server = kc["clusters"][0]["cluster"]["server"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(server.starts_with("https://127.0.0.1:"), "{server}");
    use base64::Engine;
    let ca = base64::engine::general_purpose::STANDARD
        .decode(
            kc["clusters"][0]["cluster"]["certificate-authority-data"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
    let session_token = kc["users"][0]["user"]["token"]
        .as_str()
        .unwrap()
        .to_string();
    let http = reqwest::blocking::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
        .timeout(T)
        .build()
        .unwrap();
    let get = |token: &str| {
        http.get(format!("{server}/api/v1/namespaces/shop/pods"))
            .bearer_auth(token)
            .send()
    };
    assert_eq!(get(&session_token).unwrap().status(), 200);
    let wrong = get("not-the-session-token").unwrap();
    assert_eq!(wrong.status(), 401);
    assert!(wrong.text().unwrap().contains("Unauthorized"));
    assert_eq!(
        get(TOKEN).unwrap().status(),
        401,
        "the cluster's token is not the endpoint's"
    );
    child.stdin.take().unwrap().write_all(b"\n").unwrap();
    let status = crate::util::wait_timeout(&mut child, T).expect("the session ends");
    assert!(status.success(), "{}", err.text());
    assert!(!out.text().contains(TOKEN) && !err.text().contains(TOKEN));
    assert!(
        get(&session_token).is_err(),
        "the endpoint closed with the session"
    );
}

#[test]
fn requests_are_decided_masked_streamed_and_logged() {
    let (env, gw_env) = (Env::new(), Env::new());
    let api = ApiServer::start(gw_env.path(), TOKEN);
    let rules = r#"
[[rules.deny]]
name = "keep-namespaces"
verbs = ["delete", "deletecollection"]
resources = ["namespaces"]
message = "namespaces are deleted by the platform team only"

[[rules.review]]
name = "shop-deletes"
verbs = ["delete"]
namespaces = ["shop"]
reviewers = ["sre"]

[[rules.deny]]
name = "no-rm"
pattern = '\brm\s+-rf\b'
"#;
    let gw = Gateway::start(&gw_env, Some(&config(&gw_env, &api, TOKEN, rules)), None);
    let kubectl = |args: &[&str]| {
        let mut c = hoopx(&gw, &env);
        c.args(["exec", "--target", "cluster", "--", "kubectl"])
            .args(args);
        run(c, "", T)
    };
    let deletes = |what: &str| {
        api.requests()
            .iter()
            .filter(|r| r.starts_with(&format!("DELETE {what}")))
            .count()
    };

    // A denied request gets the API's own Forbidden, never reaches the server, and the
    // session goes on.
    let mut c = hoopx(&gw, &env);
    c.args([
        "exec",
        "--target",
        "cluster",
        "--",
        "sh",
        "-c",
        "kubectl delete namespace shop; echo \"delete exited $?\"; kubectl get pods",
    ]);
    let out = run(c, "", T);
    // The session exits 77 as for any denial in it, after the commands that followed.
    assert_eq!(out.code(), 77, "{out:?}");
    assert!(
        out.stderr.contains("Error from server (Forbidden)"),
        "{out:?}"
    );
    assert!(
        out.stderr
            .contains("namespaces are deleted by the platform team only"),
        "{out:?}"
    );
    assert!(out.stdout.contains("delete exited 1"), "{out:?}");
    assert!(out.stdout.contains("web-1"), "{out:?}");
    assert_eq!(
        deletes("/api/v1/namespaces/shop"),
        0,
        "{:?}",
        api.requests()
    );

    // A review-held delete: nothing reaches the server until it is approved, then the
    // request goes through once.
    let mut c = hoopx(&gw, &env);
    c.args([
        "exec",
        "--no-wait",
        "--output",
        "json",
        "--target",
        "cluster",
        "--",
        "kubectl",
        "delete",
        "pod",
        "web-1",
    ]);
    let asked = run(c, "", T);
    assert_eq!(asked.code(), 75, "{asked:?}");
    let pending: serde_json::Value = asked
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["review_id"].is_string())
        .unwrap_or_else(|| panic!("{asked:?}"));
    let review = pending["review_id"].as_str().unwrap().to_string();
    assert_eq!(deletes("/api/v1/namespaces/shop/pods/web-1"), 0);
    let mut c = hoopx(&gw, &env);
    c.env("HOOPX_TOKEN", "tok-sam-000001")
        .args(["review", "approve", &review, "--yes"]);
    assert_eq!(run(c, "", T).code(), 0);
    let mut c = hoopx(&gw, &env);
    c.args([
        "exec", "--review", &review, "--target", "cluster", "--", "kubectl", "delete", "pod",
        "web-1",
    ]);
    let out = run(c, "", T);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(out.stdout.contains("pod \"web-1\" deleted"), "{out:?}");
    assert_eq!(deletes("/api/v1/namespaces/shop/pods/web-1"), 1);

    // Secret values masked in every shape kubectl asks for.
    for args in [
        vec!["get", "secret", "db-creds", "-o", "yaml"],
        vec!["get", "secret", "db-creds", "-o", "json"],
        vec!["get", "secrets", "-o", "yaml"],
        vec!["get", "secrets"],
    ] {
        let out = kubectl(&args);
        assert_eq!(out.code(), 0, "{args:?}: {out:?}");
        assert!(out.stdout.contains("db-creds"), "{args:?}: {out:?}");
        assert!(!out.stdout.contains(SECRET_B64), "{args:?}: {out:?}");
        if args.len() > 2 {
            assert!(
                out.stdout.contains(hoopx::policy::kube::MASKED_DATA),
                "{args:?}: {out:?}"
            );
        }
    }
    // … and in a watch stream.
    let mut c = hoopx(&gw, &env);
    c.args([
        "exec", "--target", "cluster", "--", "kubectl", "get", "secrets", "--watch", "-o", "json",
    ]);
    let out = run(c, "", T);
    assert!(
        out.stdout.contains(hoopx::policy::kube::MASKED_DATA),
        "{out:?}"
    );
    assert!(!out.stdout.contains(SECRET_B64), "{out:?}");

    // A followed log streams: its first line arrives while the server still holds the
    // second, which goes through the detectors.
    let mut c = hoopx(&gw, &env);
    c.args([
        "exec", "--target", "cluster", "--", "kubectl", "logs", "-f", "web-2",
    ]);
    let (mut child, out, err) = spawn_piped(c);
    out.wait_for("started web-2", T);
    assert!(!out.text().contains("using key"));
    api.release_log();
    out.wait_for("using key", T);
    let status = crate::util::wait_timeout(&mut child, T).expect("logs -f ends");
    assert!(status.success(), "{}", err.text());
    assert!(
        out.text()
            .contains("using key [REDACTED:aws-access-key-id]"),
        "{}",
        out.text()
    );

    // exec with stdin: lines pass the line rules; a refused one never reaches the pod.
    let mut c = hoopx(&gw, &env);
    c.args([
        "exec", "--target", "cluster", "--", "sh", "-c",
        "printf 'hello\\nrm -\\162f /data\\nbye\\n' | kubectl exec -i web-2 -- cat; echo \"exec exited $?\"",
    ]);
    let out = run(c, "", T);
    assert_eq!(out.code(), 77, "a line was denied: {out:?}");
    assert!(out.stdout.contains("exec exited 0"), "{out:?}");
    assert!(
        out.stdout.contains("hello") && out.stdout.contains("bye"),
        "{out:?}"
    );
    assert!(out.stderr.contains("refused by rule no-rm"), "{out:?}");
    let got = api.exec_stdin();
    assert_eq!(got, "hello\nbye\n");

    // Every request is in the recording's hash chain: listed by replay, checked by verify.
    let mut c = hoopx(&gw, &env);
    c.args(["replay", "--format", "requests", "last"]);
    let out = run(c, "", T);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(
        out.stdout
            .contains("101 allowed get pods/exec web-2 -n shop -- cat"),
        "{out:?}"
    );
    let mut c = hoopx(&gw, &env);
    c.args(["sessions", "list", "--output", "json"]);
    let listed = run(c, "", T);
    let mut all = String::new();
    let listed: serde_json::Value = serde_json::from_str(&listed.stdout).unwrap();
    let ids: Vec<String> = listed
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v["id"].as_str().map(String::from))
        .collect();
    assert!(ids.len() >= 8, "{listed}");
    for id in ids {
        let mut c = hoopx(&gw, &env);
        c.args(["replay", "--format", "requests", &id]);
        all.push_str(&run(c, "", T).stdout);
        let mut c = hoopx(&gw, &env);
        c.args(["verify", &id]);
        let v = run(c, "", T);
        assert_eq!(v.code(), 0, "{v:?}");
    }
    assert!(
        all.contains("403 denied delete namespaces shop rule keep-namespaces"),
        "{all}"
    );
    assert!(
        all.contains(&format!(
            "200 approved delete pods web-1 -n shop rule shop-deletes review {review}"
        )),
        "{all}"
    );
    assert!(!all.contains(TOKEN) && !gw.stderr.text().contains(TOKEN));
}

#[test]
fn exec_on_a_terminal_and_attach_work_through_the_gateway() {
    let (env, gw_env) = (Env::new(), Env::new());
    let api = ApiServer::start(gw_env.path(), TOKEN);
    let rules = "\n[[rules.deny]]\nname = \"no-rm\"\npattern = '\\brm\\s+-rf\\b'\n";
    let gw = Gateway::start(&gw_env, Some(&config(&gw_env, &api, TOKEN, rules)), None);
    // `kubectl exec -it`: keystrokes reach the container as typed, its echo comes back.
    let mut c = hoopx(&gw, &env);
    c.args([
        "exec", "--target", "cluster", "--", "kubectl", "exec", "-it", "web-2", "--", "cat",
    ]);
    let mut p = PtyChild::spawn(c, 80, 24);
    let typed = |p: &mut PtyChild, what: &str| {
        for ch in what.chars() {
            p.type_str(&ch.to_string());
        }
    };
    crate::util::wait_for("the exec stream", T, || {
        api.requests()
            .iter()
            .any(|r| r.contains("/exec?"))
            .then_some(())
    });
    typed(&mut p, "hello\r");
    crate::util::wait_for("the echo", T, || {
        p.output.text().contains("hello").then_some(())
    });
    p.type_str("\x04");
    assert_eq!(p.wait(T).code(), Some(0), "{}", p.output.text());
    assert!(
        api.exec_stdin().contains("hello\r"),
        "{:?}",
        api.exec_stdin()
    );
    // `kubectl attach -i`, stdin from a pipe, line by line through the rules.
    let mut c = hoopx(&gw, &env);
    c.args([
        "exec",
        "--target",
        "cluster",
        "--",
        "sh",
        "-c",
        "printf 'one\\nrm -\\162f /\\ntwo\\nno newline' | kubectl attach -i web-1",
    ]);
    let out = run(c, "", T);
    assert!(
        out.stdout.contains("one") && out.stdout.contains("two"),
        "{out:?}"
    );
    assert!(
        !api.exec_stdin().contains("rm -rf"),
        "{:?}",
        api.exec_stdin()
    );
    // The last line, without a newline, goes when stdin ends.
    assert!(
        api.exec_stdin().ends_with("one\ntwo\nno newline"),
        "{:?}",
        api.exec_stdin()
    );
}

#[test]
fn the_rules_in_docs_kubernetes_md_are_a_config_the_gateway_accepts() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/KUBERNETES.md"))
        .unwrap();
    let mut config = String::from(
        "[[targets]]\nname = \"cluster\"\nkind = \"kubernetes\"\nserver = \"https://k8s.internal:6443\"\n\n",
    );
    let mut blocks = 0;
    for part in doc.split("```toml\n").skip(1) {
        config.push_str(part.split("```").next().unwrap());
        config.push('\n');
        blocks += 1;
    }
    assert!(blocks > 0);
    let env = Env::new();
    let p = env.write("gw.toml", &config);
    let mut c = env.hoopx();
    c.args(["gateway", "check", "--dev", "--config"]).arg(&p);
    let out = run(c, "", T);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(out.stdout.contains("keep-namespaces, no-exec"), "{out:?}");
}

#[test]
fn a_target_can_log_in_with_a_client_certificate() {
    let (env, gw_env) = (Env::new(), Env::new());
    let api = ApiServer::start(gw_env.path(), TOKEN);
    let cafile = gw_env.write("ca.pem", &api.ca_pem);
    let certfile = gw_env.write("client.pem", &api.client_cert);
    let keyfile = gw_env.write("client.key", &api.client_key);
    let config = format!(
        "[[targets]]\nname = \"cluster\"\nkind = \"kubernetes\"\nserver = \"{}\"\nca = {{ file = \"{}\" }}\nclient_certificate = {{ file = \"{}\" }}\nclient_key = {{ file = \"{}\" }}\nnamespace = \"shop\"\n",
        api.url,
        cafile.display(),
        certfile.display(),
        keyfile.display()
    );
    let gw = Gateway::start(&gw_env, Some(&config), None);
    let mut c = hoopx(&gw, &env);
    c.args([
        "exec", "--target", "cluster", "--", "kubectl", "get", "pods",
    ]);
    let out = run(c, "", T);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(out.stdout.contains("web-1"), "{out:?}");
    let reqs = api.requests();
    assert!(
        reqs.iter()
            .any(|r| r.starts_with("GET /api/v1/namespaces/shop/pods")
                && r.ends_with("auth=true cert")),
        "{reqs:?}"
    );
    let key_line = api.client_key.lines().nth(1).unwrap().to_string();
    assert!(files_holding(env.path(), &key_line).is_empty());
    assert!(!out.stdout.contains(&key_line) && !out.stderr.contains(&key_line));
}
