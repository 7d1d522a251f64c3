//! `cargo bench --bench load`: the load and fault suite (not part of `cargo test`; about
//! two to four minutes, loopback only). Two gateway replicas share one PostgreSQL store
//! (a real server initialised in a temp dir) and the same signing key; sessions are
//! driven in-process through the client library (the same API and stream `hoopx exec`
//! uses), so thousands of sessions cost no processes.
//!
//! 1. **Load**: `HOOPX_LOAD_SESSIONS` (500) sessions at once, alternating between the
//!    replicas, each streaming `HOOPX_LOAD_CHUNKS` (40) chunks of 1 KiB output every
//!    `HOOPX_LOAD_EVERY_MS` (100 ms) and waiting for each to come back recorded. Checked:
//!    every session ends `exited`, the store's byte count equals what was sent, and every
//!    recording verifies (`hoopx verify`). Reported: memory per open session (RSS growth
//!    of both gateways / open sessions), sessions per core (open sessions / CPU cores the
//!    gateways used), p50/p99 relay latency (output sent → recorded answer back).
//! 2. **kill -9 a replica**: 100 sessions streaming; replica B is killed. Replica A's
//!    sessions end `exited` and verify; B's must become `abandoned` (the crash-recovery
//!    lease) within 90 s and verify as such.
//! 3. **PostgreSQL restart**: 100 sessions streaming; the server is stopped for 3 s and
//!    started again. Sessions fail closed: none has seen output the store does not hold
//!    (answers come back only once recorded). New sessions work once it is back.
//!
//! Exits non-zero when a check fails; the figures are printed either way.

#[path = "../tests/util.rs"]
mod util;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use hoopx::auth::Secret;
use hoopx::client::{GatewayClient, Opened};
use hoopx::proto::frame::{ClientFrame, ServerFrame, Stream};
use hoopx::proto::{Mode, OpenSession};
use tokio_tungstenite::tungstenite::Message;
use util::{Env, Gateway, Postgres, DEV_TOKEN};

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// What one driven session saw.
#[derive(Debug, Default)]
struct Driven {
    id: String,
    replica: usize,
    /// Output bytes sent, and those whose recorded answer came back.
    sent: u64,
    acked: u64,
    latencies_us: Vec<u64>,
    error: Option<String>,
}

const CHUNK: usize = 1024;

/// One identity drives every session: its per-identity limits are lifted.
const CONFIG: &str = r#"[[targets]]
name = "local"
kind = "command"

[limits]
requests_per_minute = 1000000
pending_sessions = 100000
"#;

/// Opens one session on `client`, streams `chunks` chunks, exits 0.
async fn drive(
    client: GatewayClient,
    replica: usize,
    chunks: u64,
    every: Duration,
    opened: Arc<AtomicU64>,
    start: Arc<tokio::sync::Barrier>,
) -> Driven {
    let mut d = Driven {
        replica,
        ..Default::default()
    };
    let req = OpenSession {
        target: Some("local".into()),
        argv: vec!["load-tool".into(), replica.to_string()],
        mode: Mode::Pipe,
        cols: None,
        rows: None,
        review: None,
        term: None,
    };
    let result = async {
        let s = match client.open_session(&req).await.map_err(|e| e.to_string())? {
            Opened::Session(s) => s,
            Opened::Review(_) => return Err("review required".to_string()),
        };
        d.id = s.session_id.clone();
        let mut ws = hoopx::client::session::connect(&client, &s.stream)
            .await
            .map_err(|e| e.to_string())?;
        loop {
            match next(&mut ws).await? {
                ServerFrame::Ready => break,
                _ => continue,
            }
        }
        opened.fetch_add(1, Ordering::SeqCst);
        start.wait().await;
        let line: Vec<u8> = b"load test output: the quick brown fox jumps over the lazy dog\n"
            .iter()
            .copied()
            .cycle()
            .take(CHUNK)
            .collect();
        let mut tick = tokio::time::interval(every);
        for _ in 0..chunks {
            tick.tick().await;
            let began = Instant::now();
            send(
                &mut ws,
                ClientFrame::Output {
                    stream: Stream::Stdout,
                    data: bytes::Bytes::from(line.clone()),
                },
            )
            .await?;
            d.sent += CHUNK as u64;
            loop {
                if let ServerFrame::Output { more: false, .. } = next(&mut ws).await? {
                    break;
                }
            }
            d.acked += CHUNK as u64;
            d.latencies_us.push(began.elapsed().as_micros() as u64);
        }
        send(
            &mut ws,
            ClientFrame::Exit {
                code: 0,
                signal: None,
            },
        )
        .await?;
        // The gateway answers once the end is recorded, then closes.
        while next(&mut ws).await.is_ok() {}
        Ok(())
    }
    .await;
    d.error = result.err();
    d
}

type Ws = hoopx::client::session::Ws;

async fn send(ws: &mut Ws, f: ClientFrame) -> Result<(), String> {
    ws.send(Message::Binary(f.encode()))
        .await
        .map_err(|e| e.to_string())
}

async fn next(ws: &mut Ws) -> Result<ServerFrame, String> {
    loop {
        match tokio::time::timeout(Duration::from_secs(60), ws.next()).await {
            Err(_) => return Err("no frame for 60 s".into()),
            Ok(None) => return Err("closed".into()),
            Ok(Some(Err(e))) => return Err(e.to_string()),
            Ok(Some(Ok(Message::Binary(b)))) => {
                let f = ServerFrame::decode(&b).map_err(|e| e.to_string())?;
                if let ServerFrame::Error(e) = &f {
                    return Err(format!("gateway error: {}", e.message));
                }
                return Ok(f);
            }
            Ok(Some(Ok(Message::Close(_)))) => return Err("closed".into()),
            Ok(Some(Ok(_))) => continue,
        }
    }
}

/// Resident memory (bytes) and CPU time (seconds) of a process.
fn usage(pid: u32) -> (u64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .unwrap_or(0)
        * 1024;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = f.get(11).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100) as f64;
    (rss, ticks / hz)
}

fn quantile(xs: &mut [u64], q: f64) -> u64 {
    if xs.is_empty() {
        return 0;
    }
    xs.sort_unstable();
    let rank = (xs.len() as f64 * q).ceil() as usize;
    xs[rank.saturating_sub(1).min(xs.len() - 1)]
}

struct Run {
    env: Env,
    clients: Vec<GatewayClient>,
}

impl Run {
    /// Runs `n` sessions at once over the replicas in `on`; calls `during` once all are
    /// open (streaming), then waits for them all.
    fn sessions(
        &self,
        rt: &tokio::runtime::Runtime,
        on: &[usize],
        n: u64,
        chunks: u64,
        every: Duration,
        during: impl FnOnce(),
    ) -> Vec<Driven> {
        let opened = Arc::new(AtomicU64::new(0));
        let start = Arc::new(tokio::sync::Barrier::new(n as usize + 1));
        let handles: Vec<_> = (0..n)
            .map(|i| {
                let r = on[i as usize % on.len()];
                rt.spawn(drive(
                    self.clients[r].clone(),
                    r,
                    chunks,
                    every,
                    opened.clone(),
                    start.clone(),
                ))
            })
            .collect();
        // Sessions that fail before the barrier never reach it: wait for the rest only.
        let deadline = Instant::now() + Duration::from_secs(120);
        while opened.load(Ordering::SeqCst) < n && Instant::now() < deadline {
            if handles.iter().filter(|h| h.is_finished()).count() as u64
                + opened.load(Ordering::SeqCst)
                >= n
            {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let failed_early = n - opened.load(Ordering::SeqCst);
        if failed_early > 0 {
            eprintln!("  {failed_early} session(s) failed before streaming");
        }
        // Release the barrier: the missing parties are stood in for.
        let release = start.clone();
        let extra = failed_early as usize;
        rt.spawn(async move {
            for _ in 0..=extra {
                let r = release.clone();
                tokio::spawn(async move { r.wait().await });
            }
        });
        std::thread::sleep(every * (chunks as u32 / 2).max(1));
        during();
        rt.block_on(async {
            let mut out = Vec::new();
            for h in handles {
                out.push(h.await.unwrap());
            }
            out
        })
    }

    fn verify(&self, gw: &Gateway, id: &str) -> (i32, String) {
        let mut c = gw.hoopx(&self.env);
        c.args(["verify", id]);
        let out = util::run(c, "", Duration::from_secs(60));
        (out.code(), format!("{}{}", out.stdout, out.stderr))
    }
}

fn session_info(gw: &Gateway, id: &str) -> serde_json::Value {
    reqwest::blocking::Client::new()
        .get(format!("{}/v1/sessions/{id}", gw.url))
        .bearer_auth(DEV_TOKEN)
        .send()
        .and_then(|r| r.json())
        .unwrap_or_default()
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let sessions = env_num("HOOPX_LOAD_SESSIONS", 500);
    let chunks = env_num("HOOPX_LOAD_CHUNKS", 40);
    let every = Duration::from_millis(env_num("HOOPX_LOAD_EVERY_MS", 100));
    let mut failures: Vec<String> = Vec::new();

    let mut pg = Postgres::start();
    pg.sql("postgres", "alter system set max_connections = 200");
    pg.create_db("hoopx");
    pg.restart(Duration::ZERO);
    let env = Env::new();
    let key = env.path().join("signing.pem");
    let store = pg.url("hoopx");
    let replica = |env: &Env| {
        Gateway::start_with(env, Some(CONFIG), Some(&store), |c| {
            c.arg("--signing-key")
                .arg(&key)
                .env("HOOPX_LOG", "warn,hoopx::cli::gateway=info");
        })
    };
    let mut gws = vec![replica(&env), replica(&env)];
    let client =
        |gw: &Gateway| GatewayClient::new(&gw.url, Some(Secret::new(DEV_TOKEN))).expect("client");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut run = Run {
        clients: gws.iter().map(client).collect(),
        env,
    };

    // 1. Load.
    println!("load: {sessions} sessions over 2 replicas, {chunks} x 1 KiB each every {every:?}");
    let before: Vec<(u64, f64)> = gws.iter().map(|g| usage(g.child.id())).collect();
    let mut peak = (0u64, 0.0f64);
    let began = Instant::now();
    let pids: Vec<u32> = gws.iter().map(|g| g.child.id()).collect();
    let driven = run.sessions(&rt, &[0, 1], sessions, chunks, every, || {
        let now: Vec<(u64, f64)> = pids.iter().map(|p| usage(*p)).collect();
        peak.0 = now.iter().map(|u| u.0).sum();
    });
    let wall = began.elapsed().as_secs_f64();
    let after: Vec<(u64, f64)> = gws.iter().map(|g| usage(g.child.id())).collect();
    let rss_before: u64 = before.iter().map(|u| u.0).sum();
    let cpu: f64 = after.iter().zip(&before).map(|(a, b)| a.1 - b.1).sum();
    peak.1 = cpu;
    let errors: Vec<&Driven> = driven.iter().filter(|d| d.error.is_some()).collect();
    for d in errors.iter().take(5) {
        println!("  session {} failed: {:?}", d.id, d.error);
    }
    if !errors.is_empty() {
        failures.push(format!(
            "load: {} of {sessions} sessions failed",
            errors.len()
        ));
    }
    let mut lat: Vec<u64> = driven.iter().flat_map(|d| d.latencies_us.clone()).collect();
    let (p50, p99) = (quantile(&mut lat, 0.5), quantile(&mut lat, 0.99));
    let per_session = peak.0.saturating_sub(rss_before) as f64 / sessions as f64;
    let cores = cpu / wall;
    println!(
        "  memory per open session: {:.0} KiB (RSS {} MiB -> {} MiB over both replicas)",
        per_session / 1024.0,
        rss_before >> 20,
        peak.0 >> 20
    );
    println!(
        "  CPU: {cpu:.1} s over {wall:.1} s = {cores:.2} cores; {:.0} open sessions per core",
        sessions as f64 / cores.max(0.01)
    );
    println!(
        "  relay latency (output sent -> recorded answer): p50 {:.2} ms, p99 {:.2} ms over {} chunks",
        p50 as f64 / 1000.0,
        p99 as f64 / 1000.0,
        lat.len()
    );
    // Accounting and verification.
    let began = Instant::now();
    let mut unaccounted = 0;
    let mut unverified = 0;
    for d in driven.iter().filter(|d| d.error.is_none()) {
        let s = session_info(&gws[0], &d.id);
        if s["status"] != "exited" || s["bytes_out"].as_u64() != Some(d.sent) {
            unaccounted += 1;
            if unaccounted <= 3 {
                println!("  session {}: sent {} bytes, store says {s}", d.id, d.sent);
            }
        }
    }
    let verify_all: Vec<String> = driven
        .iter()
        .filter(|d| d.error.is_none())
        .map(|d| d.id.clone())
        .collect();
    std::thread::scope(|scope| {
        let chunks: Vec<&[String]> = verify_all
            .chunks(verify_all.len().div_ceil(4).max(1))
            .collect();
        let hs: Vec<_> = chunks
            .into_iter()
            .map(|ids| {
                let run = &run;
                let gw = &gws[1];
                scope.spawn(move || ids.iter().filter(|id| run.verify(gw, id).0 != 0).count())
            })
            .collect();
        for h in hs {
            unverified += h.join().unwrap();
        }
    });
    println!(
        "  accounted: {} of {} sessions hold every byte sent; verified: {} ({:.1} s)",
        verify_all.len() - unaccounted,
        verify_all.len(),
        verify_all.len() - unverified,
        began.elapsed().as_secs_f64()
    );
    if unaccounted > 0 || unverified > 0 {
        failures.push(format!(
            "load: {unaccounted} sessions with missing bytes, {unverified} not verifying"
        ));
    }

    // 2. kill -9 one replica mid-run.
    println!("kill -9: 100 sessions, replica B killed while they stream");
    let b_pid = gws[1].child.id();
    let killed_at = std::cell::Cell::new(Instant::now());
    let driven = run.sessions(&rt, &[0, 1], 100, chunks, every, || {
        killed_at.set(Instant::now());
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(b_pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
    });
    let (on_a, on_b): (Vec<&Driven>, Vec<&Driven>) = driven.iter().partition(|d| d.replica == 0);
    let a_ok = on_a
        .iter()
        .filter(|d| {
            d.error.is_none()
                && session_info(&gws[0], &d.id)["status"] == "exited"
                && run.verify(&gws[0], &d.id).0 == 0
        })
        .count();
    println!(
        "  replica A: {a_ok} of {} sessions exited and verify",
        on_a.len()
    );
    if a_ok != on_a.len() {
        failures.push("kill -9: replica A's sessions were disturbed".into());
    }
    let b_ids: Vec<&str> = on_b
        .iter()
        .map(|d| d.id.as_str())
        .filter(|i| !i.is_empty())
        .collect();
    let killed_at = killed_at.get();
    let deadline = killed_at + Duration::from_secs(90);
    let mut abandoned = 0;
    while Instant::now() < deadline {
        abandoned = b_ids
            .iter()
            .filter(|id| session_info(&gws[0], id)["status"] == "abandoned")
            .count();
        if abandoned == b_ids.len() {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let found_in = killed_at.elapsed();
    let b_verified = b_ids
        .iter()
        .filter(|id| {
            let (code, out) = run.verify(&gws[0], id);
            code == 0 && out.contains("ABANDONED: ")
        })
        .count();
    println!(
        "  replica B: {abandoned} of {} sessions marked abandoned {:.0} s after the kill (lease 15 s); {b_verified} verify as abandoned",
        b_ids.len(),
        found_in.as_secs_f64()
    );
    if abandoned != b_ids.len() {
        failures.push(format!(
            "kill -9: {} of B's sessions not abandoned within 90 s (crash recovery)",
            b_ids.len() - abandoned
        ));
    }
    if b_verified != b_ids.len() {
        failures.push(format!(
            "kill -9: {} of B's sessions do not verify as abandoned",
            b_ids.len() - b_verified
        ));
    }
    gws[1] = replica(&run.env);
    run.clients[1] = client(&gws[1]);

    // 3. PostgreSQL restart mid-run.
    println!("PostgreSQL restart: 100 sessions streaming, the store down for 3 s");
    let driven = run.sessions(&rt, &[0, 1], 100, chunks, every, || {
        pg.restart(Duration::from_secs(3));
    });
    let mut unrecorded_shown = 0;
    let mut failed_closed = 0;
    for d in &driven {
        if d.error.is_some() {
            failed_closed += 1;
        }
        if d.id.is_empty() {
            continue;
        }
        let s = session_info(&gws[0], &d.id);
        let stored = s["bytes_out"].as_u64().unwrap_or(0);
        if d.acked > stored {
            unrecorded_shown += 1;
        }
    }
    println!(
        "  {failed_closed} of 100 sessions ended with an error; {unrecorded_shown} showed output the store does not hold"
    );
    if unrecorded_shown > 0 {
        failures.push(format!(
            "postgres restart: {unrecorded_shown} sessions showed unrecorded output"
        ));
    }
    let after = run.sessions(&rt, &[0, 1], 20, 5, every, || {});
    let ok = after.iter().filter(|d| d.error.is_none()).count();
    println!("  after the restart: {ok} of 20 new sessions ran");
    if ok != 20 {
        failures.push(format!("postgres restart: {} new sessions failed", 20 - ok));
    }

    drop(gws);
    // exit() below skips destructors: stop the server first.
    drop(pg);
    if failures.is_empty() {
        println!("all checks passed");
    } else {
        println!("FAILED:");
        for f in &failures {
            println!("  {f}");
        }
        std::process::exit(1);
    }
}
