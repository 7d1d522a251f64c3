//! `cargo bench --bench replay`: what rendering and seeking a large recording cost, next to
//! a plain copy of the same bytes, in the same run.
//!
//! Synthetic sessions of `HOOPX_BENCH_MIB` MiB (default 100): a PTY session like psql and
//! a shell (plain table rows, coloured prompts, `ls --color` blocks), a pipe session (log
//! lines, colours, a progress bar with CR), and a smaller full-screen one (cursor moves on
//! every line: the emulator's worst case). Figures are medians of `HOOPX_BENCH_RUNS` runs
//! (default 3); seeks are 50 random positions.

use std::io::{self, Write};
use std::time::Instant;

use hoopx::proto::{Mode, SessionInfo};
use hoopx::recording::render::{self, Timeline};
use hoopx::recording::{Event, EventKind, Recording};

fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.total_cmp(b));
    let n = xs.len();
    if n == 0 {
        return 0.0;
    }
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    }
}

/// A tiny deterministic generator (xorshift), so runs compare.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn session(mode: Mode) -> SessionInfo {
    SessionInfo {
        id: "bench".into(),
        identity: "dev".into(),
        target: "pg".into(),
        argv: vec!["psql".into()],
        mode,
        status: "exited".into(),
        started_at: 0,
        ended_at: None,
        exit_code: Some(0),
        reason: None,
        event_count: 0,
        ..Default::default()
    }
}

/// Cuts `stream` into 4 KiB output events 1 ms apart, after a resize, with a marker every
/// 1000 events.
fn recording(mode: Mode, stream: &[u8]) -> Recording {
    let mut events = vec![Event {
        seq: 0,
        t_us: 0,
        kind: EventKind::Resize,
        data: b"120x40".to_vec(),
    }];
    let mut t = 0;
    for (i, chunk) in stream.chunks(4096).enumerate() {
        t += 1000;
        if i % 1000 == 999 {
            events.push(Event {
                seq: events.len() as i64,
                t_us: t,
                kind: EventKind::Marker,
                data: format!("{{\"mask\":{i}}}").into_bytes(),
            });
        }
        events.push(Event {
            seq: events.len() as i64,
            t_us: t,
            kind: if mode == Mode::Pipe && i % 50 == 7 {
                EventKind::Stderr
            } else {
                EventKind::Output
            },
            data: chunk.to_vec(),
        });
    }
    Recording {
        session: session(mode),
        keys: vec![],
        events,
        checkpoints: vec![],
    }
}

fn pty_stream(bytes: usize, rng: &mut Rng) -> Vec<u8> {
    let mut s = Vec::with_capacity(bytes + 4096);
    let mut row = 0u64;
    while s.len() < bytes {
        s.extend_from_slice(
            b"\x1b[1;32mdev@host\x1b[0m:\x1b[34m~/src\x1b[0m$ psql -c 'select * from t'\r\n",
        );
        match rng.below(3) {
            0 | 1 => {
                // A psql table: header, rule, many plain rows.
                s.extend_from_slice(
                    b"   id   |        name          |   amount   |    created\r\n",
                );
                s.extend_from_slice(
                    b"--------+----------------------+------------+----------------\r\n",
                );
                for _ in 0..rng.below(2000) + 100 {
                    row += 1;
                    write!(
                        s,
                        " {:>6} | {:<20} | {:>10} | 2024-01-{:02} 10:{:02}\r\n",
                        row,
                        ["alice", "bob", "carol", "dave"][(row % 4) as usize],
                        row * 37 % 100_000,
                        row % 28 + 1,
                        row % 60
                    )
                    .ok();
                }
                write!(s, "({row} rows)\r\n\r\n").ok();
            }
            _ => {
                // ls --color: every name coloured.
                for i in 0..rng.below(300) + 20 {
                    write!(
                        s,
                        "-rw-r--r-- 1 dev dev {:>8} Jan  1 10:00 \x1b[0m\x1b[01;34mfile_{i}.txt\x1b[0m\r\n",
                        i * 131
                    )
                    .ok();
                }
            }
        }
    }
    s
}

fn pipe_stream(bytes: usize, rng: &mut Rng) -> Vec<u8> {
    let mut s = Vec::with_capacity(bytes + 4096);
    let mut n = 0u64;
    while s.len() < bytes {
        n += 1;
        match rng.below(100) {
            0 => {
                for p in 0..=10 {
                    write!(s, "\rdownloading {:>3}%", p * 10).ok();
                }
                s.push(b'\n');
            }
            1..=5 => {
                writeln!(
                    s,
                    "\x1b[31mERROR\x1b[0m request {n} failed: connection reset"
                )
                .ok();
            }
            _ => {
                writeln!(
                    s,
                    "2024-01-01T10:00:{:02}Z INFO handled request {n} in {}ms",
                    n % 60,
                    n % 97
                )
                .ok();
            }
        }
    }
    s
}

/// A full-screen program: cursor moves and colours on every line.
fn tui_stream(bytes: usize, rng: &mut Rng) -> Vec<u8> {
    let mut s = Vec::with_capacity(bytes + 4096);
    while s.len() < bytes {
        for r in 1..=40 {
            write!(
                s,
                "\x1b[{r};1H\x1b[{}m{:>5} cpu {:>3}% mem {:>5} proc_{}\x1b[K",
                31 + rng.below(6),
                rng.below(99999),
                rng.below(100),
                rng.below(99999),
                rng.below(1000)
            )
            .ok();
        }
    }
    s
}

fn output_bytes(rec: &Recording) -> usize {
    rec.events
        .iter()
        .filter(|e| matches!(e.kind, EventKind::Output | EventKind::Stderr))
        .map(|e| e.data.len())
        .sum()
}

/// The plain baseline: find every newline with memchr and copy the bytes out.
fn baseline(rec: &Recording) -> usize {
    let mut sink = io::sink();
    let mut lines = 0;
    for e in &rec.events {
        if matches!(e.kind, EventKind::Output | EventKind::Stderr) {
            lines += memchr::memchr_iter(b'\n', &e.data).count();
            sink.write_all(&e.data).ok();
        }
    }
    lines
}

fn bench(name: &str, rec: &Recording, runs: usize, seeks: bool) {
    let mb = output_bytes(rec) as f64 / 1e6;
    let mut base = vec![];
    let mut text = vec![];
    for _ in 0..runs {
        let t = Instant::now();
        std::hint::black_box(baseline(rec));
        base.push(mb / t.elapsed().as_secs_f64());
        let t = Instant::now();
        render::text(rec, &mut io::sink()).expect("render to a sink");
        text.push(mb / t.elapsed().as_secs_f64());
    }
    let (b, x) = (median(base), median(text));
    println!(
        "{name:<5} {mb:>7.1} MB  text {x:>8.1} MB/s   baseline (memchr + copy) {b:>8.1} MB/s   ratio {:>6.1}x slower",
        b / x
    );
    if !seeks {
        return;
    }
    let mut builds = vec![];
    let mut tl = None;
    for _ in 0..runs {
        let t = Instant::now();
        tl = Some(Timeline::new(rec));
        builds.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let Some(tl) = tl else { return };
    let build = median(builds);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut lat = vec![];
    for _ in 0..50 {
        let at = rng.below(tl.duration().max(1) as u64) as i64;
        let t = Instant::now();
        std::hint::black_box(tl.screen_at(at));
        lat.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let max = lat.iter().copied().fold(0.0, f64::max);
    println!(
        "{name:<5} timeline build {build:>7.0} ms ({:.1} MB/s, {} keyframes)   seek median {:.1} ms, max {max:.1} ms over 50",
        mb / (build / 1e3),
        tl.keyframes(),
        median(lat)
    );
}

fn main() {
    let mib = env_num("HOOPX_BENCH_MIB", 100);
    let runs = env_num("HOOPX_BENCH_RUNS", 3).max(1);
    let bytes = mib * 1024 * 1024;
    let mut rng = Rng(42);
    println!("replay benchmark: {mib} MiB sessions, median of {runs} runs");
    let pty = recording(Mode::Pty, &pty_stream(bytes, &mut rng));
    bench("pty", &pty, runs, true);
    drop(pty);
    let pipe = recording(Mode::Pipe, &pipe_stream(bytes, &mut rng));
    bench("pipe", &pipe, runs, true);
    drop(pipe);
    let tui = recording(Mode::Pty, &tui_stream(bytes / 10, &mut rng));
    bench("tui", &tui, runs, true);
}
