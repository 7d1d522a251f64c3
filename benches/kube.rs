//! `cargo bench --bench kube`: what the Kubernetes API relay costs next to talking to the
//! API server directly, in the same run.
//!
//! No real cluster can run here: the API server is a stand-in started by the bench
//! (HTTPS, a bearer token, one `PodList` of `HOOPX_BENCH_KUBE_PODS` pods, ~1.3 KiB each,
//! the size of `kubectl get pods -o json` on a small namespace). One client (this binary,
//! run again with `--client`) reads the kubeconfig it is given and sends sequential GETs of
//! that list on one keep-alive connection, timing each:
//!
//! - direct: a kubeconfig with the stand-in's URL, CA and token;
//! - through hoopx: `hoopx exec --target cluster -- <this binary> --client`, whose
//!   kubeconfig names the session's endpoint; each GET crosses the session stream and a
//!   loopback gateway that checks, forwards, masks and logs it.
//!
//! Prints requests per second and latency p50/p99 both ways, medians of interleaved runs,
//! and the added latency. `HOOPX_BENCH_KUBE_RUNS` (3), `HOOPX_BENCH_KUBE_REQS` (1000) and
//! `HOOPX_BENCH_KUBE_PODS` (40) change the runs, the requests per run and the list size.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_hoopx");
const TOKEN: &str = "bench-token";
const KUBE_TOKEN: &str = "bench-kube-token-4d2f8a";

fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn median(xs: &[f64]) -> f64 {
    let mut xs = xs.to_vec();
    xs.sort_by(|a, b| a.total_cmp(b));
    let n = xs.len();
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    }
}

/// The `q` quantile (0..=1) of `xs`, nearest rank.
fn quantile(xs: &[f64], q: f64) -> f64 {
    let mut xs = xs.to_vec();
    xs.sort_by(|a, b| a.total_cmp(b));
    let rank = (xs.len() as f64 * q).ceil() as usize;
    xs[rank.saturating_sub(1).min(xs.len() - 1)]
}

/// The pod list the stand-in serves.
fn pod_list(pods: usize) -> String {
    let items: Vec<_> = (0..pods)
        .map(|i| {
            serde_json::json!({
                "metadata": {"name": format!("web-{i:04}-7d9f8c6b5-x2k4p"), "namespace": "shop",
                    "uid": format!("5b3c1f0e-8a2d-4e6b-9c7f-{i:012}"), "resourceVersion": "123456",
                    "creationTimestamp": "2026-01-01T00:00:00Z",
                    "labels": {"app": "web", "pod-template-hash": "7d9f8c6b5"},
                    "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                        "name": "web-7d9f8c6b5", "uid": "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0",
                        "controller": true, "blockOwnerDeletion": true}]},
                "spec": {"containers": [{"name": "app", "image": "registry.example.com/shop/web:1.42.0",
                    "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                    "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
                    "env": [{"name": "MODE", "value": "production"}]}],
                    "nodeName": "node-3", "serviceAccountName": "web", "restartPolicy": "Always"},
                "status": {"phase": "Running", "podIP": format!("10.42.3.{}", i % 250),
                    "hostIP": "192.168.1.13", "startTime": "2026-01-01T00:00:05Z",
                    "conditions": [{"type": "Ready", "status": "True",
                        "lastTransitionTime": "2026-01-01T00:00:09Z"}],
                    "containerStatuses": [{"name": "app", "ready": true, "restartCount": 0,
                        "image": "registry.example.com/shop/web:1.42.0",
                        "state": {"running": {"startedAt": "2026-01-01T00:00:08Z"}}}]}
            })
        })
        .collect();
    serde_json::json!({"kind": "PodList", "apiVersion": "v1",
        "metadata": {"resourceVersion": "123456"}, "items": items})
    .to_string()
}

/// The stand-in API server: HTTPS on a loopback port, the pod list for a good token.
fn stand_in(body: String) -> (String, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["127.0.0.1".into()]).unwrap();
    params.is_ca = rcgen::IsCa::NoCa;
    let cert = params.self_signed(&key).unwrap();
    let ca_pem = cert.pem();
    let mut tls = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![cert.der().clone()],
        rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
    )
    .unwrap();
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    let tls = Arc::new(tls);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "https://127.0.0.1:{}",
        listener.local_addr().unwrap().port()
    );
    let body = Arc::new(body);
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let (tls, body) = (tls.clone(), body.clone());
            std::thread::spawn(move || {
                let _ = conn.set_nodelay(true);
                let Ok(sc) = rustls::ServerConnection::new(tls) else {
                    return;
                };
                let mut s = BufReader::new(rustls::StreamOwned::new(sc, conn));
                loop {
                    let mut auth = false;
                    let mut line = String::new();
                    let mut first = true;
                    loop {
                        line.clear();
                        if s.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        if line == "\r\n" && !first {
                            break;
                        }
                        first = false;
                        if line.to_ascii_lowercase().starts_with("authorization:") {
                            auth = line.trim_end().ends_with(&format!("Bearer {KUBE_TOKEN}"));
                        }
                    }
                    let (status, b) = if auth {
                        ("200 OK", body.as_str())
                    } else {
                        ("401 Unauthorized", "{}")
                    };
                    let head = format!(
                        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                        b.len()
                    );
                    let w = s.get_mut();
                    if w.write_all(head.as_bytes()).is_err()
                        || w.write_all(b.as_bytes()).is_err()
                        || w.flush().is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    (url, ca_pem)
}

/// `--client N`: N sequential GETs of the pod list with the kubeconfig in `KUBECONFIG`;
/// prints each one's seconds, one a line.
fn client(n: usize) {
    use base64::Engine;
    let path = std::env::var("KUBECONFIG").expect("KUBECONFIG");
    let k: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let server = k["clusters"][0]["cluster"]["server"].as_str().unwrap();
    let ca = base64::engine::general_purpose::STANDARD
        .decode(
            k["clusters"][0]["cluster"]["certificate-authority-data"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
    let token = k["users"][0]["user"]["token"].as_str().unwrap();
    let http = reqwest::blocking::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
        .build()
        .unwrap();
    let url = format!("{server}/api/v1/namespaces/shop/pods");
    let mut out = String::new();
    for _ in 0..n {
        let t = Instant::now();
        let r = http
            .get(&url)
            .bearer_auth(token)
            .header("accept", "application/json")
            .send()
            .unwrap();
        assert!(r.status().is_success(), "{}", r.status());
        let b = r.bytes().unwrap();
        assert!(b.len() > 100);
        out.push_str(&format!("{}\n", t.elapsed().as_secs_f64()));
    }
    print!("{out}");
}

fn latencies(stdout: &[u8]) -> Vec<f64> {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

struct Gateway(Child, String);

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_gateway(home: &Path, config: &str) -> Gateway {
    let path = home.join("gateway.toml");
    std::fs::write(&path, config).unwrap();
    let mut c = Command::new(BIN);
    c.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("XDG_DATA_HOME", home.join("data"))
        .env("XDG_CONFIG_HOME", home.join("config"))
        .args(["gateway", "serve", "--dev", "--listen", "127.0.0.1:0"])
        .arg("--config")
        .arg(&path)
        .arg("--store")
        .arg(format!("sqlite://{}", home.join("gw.db").display()))
        .env("HOOPX_DEV_TOKEN", TOKEN)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut gw = Gateway(c.spawn().expect("start gateway"), String::new());
    let mut err = BufReader::new(gw.0.stderr.take().unwrap());
    let mut line = String::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        line.clear();
        if err.read_line(&mut line).unwrap_or(0) == 0 {
            panic!("gateway exited");
        }
        if let Some(at) = line.find("listening on ") {
            gw.1 = line[at + 13..]
                .split_whitespace()
                .next()
                .unwrap()
                .to_string();
            std::thread::spawn(move || {
                let mut sink = String::new();
                let _ = err.read_to_string(&mut sink);
            });
            return gw;
        }
    }
    panic!("gateway did not start");
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|a| a == "--client") {
        client(args.get(at + 1).and_then(|n| n.parse().ok()).unwrap_or(100));
        return;
    }
    let runs = env_num("HOOPX_BENCH_KUBE_RUNS", 3).max(1);
    let reqs = env_num("HOOPX_BENCH_KUBE_REQS", 1000).max(10);
    let pods = env_num("HOOPX_BENCH_KUBE_PODS", 40).max(1);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let home = tempfile::Builder::new()
        .prefix("hoopx-bench-")
        .tempdir()
        .unwrap();
    let body = pod_list(pods);
    let size = body.len();
    let (url, ca_pem) = stand_in(body);
    use base64::Engine;
    let direct_config = serde_json::json!({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": url,
            "certificate-authority-data": base64::engine::general_purpose::STANDARD.encode(&ca_pem)}}],
        "users": [{"name": "c", "user": {"token": KUBE_TOKEN}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "c"}}],
        "current-context": "c"});
    let direct_kc = home.path().join("direct-kubeconfig");
    std::fs::write(&direct_kc, direct_config.to_string()).unwrap();
    std::fs::write(home.path().join("ca.pem"), &ca_pem).unwrap();
    std::fs::write(home.path().join("token"), KUBE_TOKEN).unwrap();
    let me = std::env::current_exe().unwrap();
    let me_name = me.file_name().unwrap().to_string_lossy().into_owned();
    let config = format!(
        "[[targets]]\nname = \"cluster\"\nkind = \"kubernetes\"\ncommand = [\"{me_name}\"]\nserver = \"{url}\"\nca = {{ file = \"{}\" }}\ntoken = {{ file = \"{}\" }}\nnamespace = \"shop\"\n\n[rules]\nbuiltin_masks = [\"all\"]\n\n[[rules.deny]]\nname = \"keep-namespaces\"\nverbs = [\"delete\"]\nresources = [\"namespaces\"]\n",
        home.path().join("ca.pem").display(),
        home.path().join("token").display()
    );
    let gw = start_gateway(home.path(), &config);
    println!(
        "kube relay: {reqs} sequential GETs of a {pods}-pod list ({:.1} KiB) per run, {runs} runs; loadavg {}",
        size as f64 / 1024.0,
        load.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
    );
    let (mut d_rps, mut h_rps, mut d_lat, mut h_lat) = (vec![], vec![], vec![], vec![]);
    for _ in 0..runs {
        let out = Command::new(&me)
            .args(["--client", &reqs.to_string()])
            .env("KUBECONFIG", &direct_kc)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let l = latencies(&out.stdout);
        d_rps.push(l.len() as f64 / l.iter().sum::<f64>());
        d_lat.extend(l);
        let out = Command::new(BIN)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", home.path())
            .env("XDG_DATA_HOME", home.path().join("data"))
            .env("XDG_CONFIG_HOME", home.path().join("config"))
            .env("HOOPX_GATEWAY", &gw.1)
            .env("HOOPX_TOKEN", TOKEN)
            .args(["exec", "--no-tty", "--target", "cluster", "--"])
            .arg(&me)
            .args(["--client", &reqs.to_string()])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let l = latencies(&out.stdout);
        assert_eq!(l.len(), reqs, "{}", String::from_utf8_lossy(&out.stderr));
        h_rps.push(l.len() as f64 / l.iter().sum::<f64>());
        h_lat.extend(l);
    }
    let ms = |x: f64| x * 1000.0;
    let (dr, hr) = (median(&d_rps), median(&h_rps));
    println!(
        "  {:<28} {:>12} {:>12} {:>12}",
        "figure", "direct", "hoopx", "hoopx/direct"
    );
    println!(
        "  {:<28} {:>12.0} {:>12.0} {:>12.2}",
        "GETs per second",
        dr,
        hr,
        hr / dr
    );
    for (name, q) in [("latency p50 (ms)", 0.5), ("latency p99 (ms)", 0.99)] {
        let (d, h) = (ms(quantile(&d_lat, q)), ms(quantile(&h_lat, q)));
        println!("  {name:<28} {d:>12.3} {h:>12.3} {:>+12.3} ms", h - d);
    }
}
