//! The player behind `hoopx replay`: output with its original timing (scaled, idle gaps
//! capped), from and to any moment, and on a terminal an interactive mode with pause, seek,
//! speed and marker jumps over the [`Timeline`]'s keyframes.
//!
//! Everything here writes to a `Write` and reads keys from a channel; raw mode and the
//! terminal itself belong to the CLI. Time comes from a [`Clock`] so tests run instantly.

use std::io::{self, Read, Write};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use super::render::{display_bytes, Timeline};
use super::{EventKind, Recording};

/// How to play.
#[derive(Debug, Clone, PartialEq)]
pub struct PlayOptions {
    /// Playback speed: 2.0 plays twice as fast.
    pub speed: f64,
    /// Longest pause between two events, in recording time.
    pub idle_limit: Option<Duration>,
    /// Start here (microseconds since the session started), painting the screen as it was.
    pub from_us: Option<i64>,
    /// Stop before the first event after this time.
    pub to_us: Option<i64>,
    /// Draw a status line and take keys (the CLI puts the terminal in raw mode).
    pub interactive: bool,
}

impl Default for PlayOptions {
    fn default() -> Self {
        PlayOptions {
            speed: 1.0,
            idle_limit: None,
            from_us: None,
            to_us: None,
            interactive: false,
        }
    }
}

/// A key the interactive player acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    /// Space: pause or resume.
    Pause,
    /// →: forward 5 s.
    Forward,
    /// ←: back 5 s.
    Back,
    /// `+`: twice as fast.
    Faster,
    /// `-`: half as fast.
    Slower,
    /// `]`: to the next marker.
    NextMarker,
    /// `q` or Ctrl-C.
    Quit,
}

/// Turns raw terminal input into keys. Keeps an escape sequence split between reads.
#[derive(Debug, Default)]
pub struct KeyDecoder {
    pending: Vec<u8>,
}

impl KeyDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// The keys in `bytes`; unknown bytes and sequences are skipped.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<Key> {
        self.pending.extend_from_slice(bytes);
        let mut keys = Vec::new();
        let mut i = 0;
        let b = &self.pending;
        while i < b.len() {
            match b[i] {
                b' ' => keys.push(Key::Pause),
                b'+' | b'=' => keys.push(Key::Faster),
                b'-' | b'_' => keys.push(Key::Slower),
                b']' => keys.push(Key::NextMarker),
                b'q' | b'Q' | 0x03 | 0x04 => keys.push(Key::Quit),
                0x1b => {
                    // ESC [ C, ESC O C (application cursor mode) and their kin.
                    let Some(&intro) = b.get(i + 1) else { break };
                    if intro != b'[' && intro != b'O' {
                        i += 1;
                        continue;
                    }
                    // Parameters, then a final byte.
                    let mut j = i + 2;
                    while j < b.len() && (b[j].is_ascii_digit() || b[j] == b';') {
                        j += 1;
                    }
                    let Some(&fin) = b.get(j) else { break };
                    match fin {
                        b'C' => keys.push(Key::Forward),
                        b'D' => keys.push(Key::Back),
                        _ => {}
                    }
                    i = j + 1;
                    continue;
                }
                _ => {}
            }
            i += 1;
        }
        self.pending.drain(..i);
        if self.pending.len() > 64 {
            self.pending.clear(); // not a sequence we know
        }
        keys
    }
}

/// The keys in one read of raw terminal input.
pub fn decode_keys(bytes: &[u8]) -> Vec<Key> {
    KeyDecoder::new().push(bytes)
}

/// Reads stdin on a thread and sends the keys it decodes; the thread ends at EOF or when
/// the receiver is dropped (after its next read). The terminal must be in raw mode.
pub fn spawn_key_reader() -> Receiver<Key> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut stdin = io::stdin();
        let mut dec = KeyDecoder::new();
        let mut buf = [0u8; 64];
        loop {
            match stdin.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => {
                    for k in dec.push(&buf[..n]) {
                        if tx.send(k).is_err() {
                            return;
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return,
            }
        }
    });
    rx
}

/// Parses a `--from` / `--to` value: a time (`90`, `1.5`, `1:30`, `1:02:03`, `1m30s`,
/// `500ms`, `2h`) or else a marker, by exact label first and then by substring
/// (case-insensitive). Returns microseconds since the session started.
pub fn resolve_position(rec: &Recording, s: &str) -> Result<i64, String> {
    let s = s.trim();
    if let Some(t) = parse_time(s) {
        return Ok(t);
    }
    let markers: Vec<(i64, String)> = rec
        .events
        .iter()
        .filter(|e| e.kind == EventKind::Marker)
        .map(|e| (e.t_us, String::from_utf8_lossy(&e.data).into_owned()))
        .collect();
    if let Some((t, _)) = markers.iter().find(|(_, l)| l == s) {
        return Ok(*t);
    }
    let needle = s.to_lowercase();
    if !needle.is_empty() {
        if let Some((t, _)) = markers
            .iter()
            .find(|(_, l)| l.to_lowercase().contains(&needle))
        {
            return Ok(*t);
        }
    }
    Err(format!(
        "{s:?} is not a time (like 90, 1:30, 1m30s or 500ms) and no marker of this session matches it{}",
        if markers.is_empty() {
            " (it has no markers)".to_string()
        } else {
            const SHOWN: usize = 12;
            let mut list: Vec<String> = markers
                .iter()
                .take(SHOWN)
                .map(|(t, l)| {
                    let l: String = l.chars().take(80).collect();
                    format!("{} {l}", clock(*t))
                })
                .collect();
            if markers.len() > SHOWN {
                list.push(format!("… {} more", markers.len() - SHOWN));
            }
            format!("; its markers: {}", list.join(", "))
        }
    ))
}

/// [`resolve_position`], refusing a time past the session's end (which would play nothing
/// but the final screen).
pub fn resolve_within(rec: &Recording, s: &str) -> Result<i64, String> {
    let t = resolve_position(rec, s)?;
    let end = rec.events.last().map_or(0, |e| e.t_us);
    if t > end {
        return Err(format!(
            "{} is past the end of the session, which lasts {}",
            s.trim(),
            clock(end)
        ));
    }
    Ok(t)
}

/// `M:SS` of a time in microseconds.
fn clock(us: i64) -> String {
    let secs = us / 1_000_000;
    format!("{}:{:02}", secs / 60, secs % 60)
}

/// A time in seconds (fractions allowed), `[h:]m:s`, or a duration with units (`1h30m`,
/// `500ms`, `7d`: humantime's syntax), in microseconds. Also what `--since` durations are read with.
pub fn parse_time(s: &str) -> Option<i64> {
    fn secs(x: &str) -> Option<f64> {
        if x.is_empty() || !x.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            return None;
        }
        x.parse::<f64>().ok().filter(|v| v.is_finite())
    }
    let to_us = |v: f64| (v < 9.2e12).then(|| (v * 1e6).round() as i64);
    if let Some(v) = secs(s) {
        return to_us(v);
    }
    if s.contains(':') {
        let parts: Vec<&str> = s.split(':').collect();
        if parts.len() > 3 {
            return None;
        }
        let mut total = 0.0;
        for (i, p) in parts.iter().enumerate() {
            let v = secs(p)?;
            if i + 1 < parts.len() && p.contains('.') {
                return None;
            }
            total = total * 60.0 + v;
        }
        return to_us(total);
    }
    // Units (1h30m, 500ms, 250us, 7d, 2w, "1h 30m"): humantime's syntax.
    let d = humantime::parse_duration(s).ok()?;
    i64::try_from(d.as_micros()).ok()
}

/// Where the player's time comes from; tests give it a scripted one.
pub trait Clock {
    /// Time since playback started.
    fn now(&mut self) -> Duration;
    /// Waits `d`, or less when a key arrives (then returns it).
    fn wait(&mut self, d: Duration) -> Option<Key>;
}

/// Wall time, with keys from a channel.
pub struct RealClock {
    start: Instant,
    keys: Option<Receiver<Key>>,
}

impl RealClock {
    pub fn new(keys: Option<Receiver<Key>>) -> Self {
        RealClock {
            start: Instant::now(),
            keys,
        }
    }
}

impl Clock for RealClock {
    fn now(&mut self) -> Duration {
        self.start.elapsed()
    }

    fn wait(&mut self, d: Duration) -> Option<Key> {
        if let Some(k) = &self.keys {
            match k.recv_timeout(d) {
                Ok(key) => return Some(key),
                Err(RecvTimeoutError::Timeout) => return None,
                Err(RecvTimeoutError::Disconnected) => self.keys = None,
            }
        }
        std::thread::sleep(d);
        None
    }
}

/// Plays `rec` to `out`. With `keys` (interactive), space pauses, ←/→ seek 5 s, `+`/`-`
/// change speed, `]` jumps to the next marker and `q` quits.
pub fn play(
    rec: &Recording,
    opts: &PlayOptions,
    out: &mut dyn Write,
    keys: Option<Receiver<Key>>,
) -> io::Result<()> {
    play_with_clock(rec, opts, out, &mut RealClock::new(keys))
}

const SEEK_US: i64 = 5_000_000;
const STATUS_EVERY: Duration = Duration::from_millis(250);

/// [`play`] with the time source given.
pub fn play_with_clock(
    rec: &Recording,
    opts: &PlayOptions,
    out: &mut dyn Write,
    clock: &mut dyn Clock,
) -> io::Result<()> {
    let mode = rec.session.mode;
    let mut speed = if opts.speed.is_finite() && opts.speed > 0.0 {
        opts.speed.clamp(1.0 / 64.0, 1024.0)
    } else {
        1.0
    };
    let idle_us = opts
        .idle_limit
        .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX));
    let to_us = opts.to_us.unwrap_or(i64::MAX);
    let from = opts.from_us.unwrap_or(0).max(0);
    // Keyframes only when something will seek.
    let timeline = (opts.interactive || from > 0).then(|| Timeline::new(rec));
    let duration = timeline
        .as_ref()
        .map_or_else(|| rec.events.last().map_or(0, |e| e.t_us), |t| t.duration());

    let mut next = 0usize; // next event to play
    let mut pos = 0i64; // recording time shown
    if let Some(tl) = timeline.as_ref().filter(|_| from > 0) {
        next = tl.event_at(from);
        pos = from;
        out.write_all(&tl.screen_after(next))?;
    }
    let mut anchor_wall = clock.now();
    let mut anchor_rec = pos;
    let mut paused = false;
    let mut last_status: Option<Duration> = None;

    // Recording time shown at wall time `now`, given the next event's time.
    let position =
        |anchor_rec: i64, anchor_wall: Duration, now: Duration, speed: f64, limit: i64| {
            let elapsed = now.saturating_sub(anchor_wall).as_secs_f64() * speed * 1e6;
            let adv =
                (elapsed.min(i64::MAX as f64) as i64).min(limit.saturating_sub(anchor_rec).max(0));
            anchor_rec.saturating_add(adv)
        };

    while let Some(e) = rec.events.get(next) {
        if e.t_us > to_us {
            break;
        }
        // When the next event is due, in wall time.
        let gap = e.t_us.saturating_sub(anchor_rec).max(0);
        let gap = idle_us.map_or(gap, |l| gap.min(l));
        let due = anchor_wall + Duration::from_secs_f64((gap as f64 / 1e6 / speed).min(1e9));
        let now = clock.now();
        if paused || now < due {
            let mut wait = if paused {
                STATUS_EVERY
            } else {
                due.saturating_sub(now)
            };
            if opts.interactive {
                wait = wait.min(STATUS_EVERY);
            }
            let key = clock.wait(wait);
            let now = clock.now();
            let shown = if paused {
                pos
            } else {
                // A capped gap shows as its full length once passed.
                position(anchor_rec, anchor_wall, now, speed, e.t_us)
            };
            if let Some(k) = key {
                match k {
                    Key::Quit => break,
                    Key::Pause => {
                        paused = !paused;
                        pos = shown;
                        anchor_rec = shown;
                        anchor_wall = now;
                    }
                    Key::Faster | Key::Slower => {
                        speed = if k == Key::Faster {
                            (speed * 2.0).min(1024.0)
                        } else {
                            (speed / 2.0).max(1.0 / 64.0)
                        };
                        pos = shown;
                        anchor_rec = shown;
                        anchor_wall = now;
                    }
                    Key::Forward | Key::Back | Key::NextMarker => {
                        if let Some(tl) = &timeline {
                            let target = match k {
                                Key::Forward => Some(shown.saturating_add(SEEK_US).min(duration)),
                                Key::Back => Some(shown.saturating_sub(SEEK_US).max(0)),
                                _ => tl
                                    .markers()
                                    .into_iter()
                                    .map(|(t, _)| t)
                                    .find(|&t| t > shown),
                            };
                            if let Some(t) = target {
                                let t = t.min(to_us);
                                next = tl.event_at(t);
                                out.write_all(&tl.screen_after(next))?;
                                pos = t;
                                anchor_rec = t;
                                anchor_wall = now;
                            }
                        }
                    }
                }
                if opts.interactive {
                    status(out, timeline.as_ref(), next, pos, duration, speed, paused)?;
                    last_status = Some(now);
                }
                out.flush()?;
            } else if opts.interactive
                && last_status.is_none_or(|t| now.saturating_sub(t) >= STATUS_EVERY)
            {
                let p = if paused { pos } else { shown };
                status(out, timeline.as_ref(), next, p, duration, speed, paused)?;
                last_status = Some(now);
                out.flush()?;
            }
            continue;
        }
        // Everything due now, in one write.
        while let Some(e) = rec.events.get(next) {
            if e.t_us > to_us {
                break;
            }
            let gap = e.t_us.saturating_sub(anchor_rec).max(0);
            let gap = idle_us.map_or(gap, |l| gap.min(l));
            let due = anchor_wall + Duration::from_secs_f64((gap as f64 / 1e6 / speed).min(1e9));
            if due > now {
                break;
            }
            if matches!(e.kind, EventKind::Output | EventKind::Stderr) {
                if opts.interactive {
                    out.write_all(&display_bytes(mode, &e.data))?;
                } else {
                    out.write_all(&e.data)?;
                }
            }
            anchor_rec = anchor_rec.max(e.t_us);
            anchor_wall = due;
            pos = anchor_rec;
            next += 1;
        }
        if opts.interactive && last_status.is_none_or(|t| now.saturating_sub(t) >= STATUS_EVERY) {
            status(out, timeline.as_ref(), next, pos, duration, speed, paused)?;
            last_status = Some(now);
        }
        out.flush()?;
    }
    if opts.interactive {
        // Clear the status line, reset the attributes, and leave the cursor on that bottom
        // line: the shell's prompt comes back below the last frame, not inside it.
        let rows = timeline.as_ref().map_or(24, |t| t.size_after(next).1);
        write!(out, "\x1b[{rows};1H\x1b[0m\x1b[2K")?;
    }
    out.flush()
}

/// `1:05`, or `1:02:05` past an hour.
pub fn format_time(us: i64) -> String {
    let s = us.max(0) / 1_000_000;
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

fn status(
    out: &mut dyn Write,
    timeline: Option<&Timeline<'_>>,
    next: usize,
    pos: i64,
    duration: i64,
    speed: f64,
    paused: bool,
) -> io::Result<()> {
    let rows = timeline.map_or(24, |t| t.size_after(next).1);
    let speed = if speed >= 1.0 {
        format!("{speed}x")
    } else {
        format!("1/{}x", (1.0 / speed).round())
    };
    write!(
        out,
        "\x1b7\x1b[{rows};1H\x1b[0m\x1b[7m {} {} / {}  {speed}  space pause  \u{2190}\u{2192} seek  +/- speed  ] marker  q quit \x1b[0m\x1b[K\x1b8",
        if paused { "paused " } else { "playing" },
        format_time(pos),
        format_time(duration),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{Mode, SessionInfo};
    use crate::recording::Event;

    fn rec(events: Vec<(i64, EventKind, &str)>) -> Recording {
        Recording {
            session: SessionInfo {
                id: "s".into(),
                identity: "i".into(),
                target: "t".into(),
                argv: vec!["sh".into()],
                mode: Mode::Pty,
                status: "exited".into(),
                started_at: 0,
                ended_at: None,
                exit_code: None,
                reason: None,
                event_count: events.len() as i64,
                ..Default::default()
            },
            keys: vec![],
            events: events
                .into_iter()
                .enumerate()
                .map(|(i, (t_us, kind, d))| Event {
                    seq: i as i64,
                    t_us,
                    kind,
                    data: d.as_bytes().to_vec(),
                })
                .collect(),
            checkpoints: vec![],
        }
    }

    /// Virtual time: waits pass instantly; keys arrive at scripted times.
    struct FakeClock {
        now: Duration,
        script: Vec<(Duration, Key)>,
        waited: Duration,
    }

    impl Clock for FakeClock {
        fn now(&mut self) -> Duration {
            self.now
        }
        fn wait(&mut self, d: Duration) -> Option<Key> {
            if let Some(&(at, k)) = self.script.first() {
                if at <= self.now + d {
                    self.script.remove(0);
                    self.waited += at.saturating_sub(self.now);
                    self.now = self.now.max(at);
                    return Some(k);
                }
            }
            self.now += d;
            self.waited += d;
            None
        }
    }

    fn fake(script: Vec<(u64, Key)>) -> FakeClock {
        FakeClock {
            now: Duration::ZERO,
            script: script
                .into_iter()
                .map(|(ms, k)| (Duration::from_millis(ms), k))
                .collect(),
            waited: Duration::ZERO,
        }
    }

    /// The output without the status lines (each drawn between ESC 7 and ESC 8).
    /// What the player drew, without its status lines and its closing move to the bottom
    /// line.
    fn content(out: &[u8]) -> String {
        let s = String::from_utf8_lossy(out);
        let s = s.strip_suffix("\x1b[24;1H\x1b[0m\x1b[2K").unwrap_or(&s);
        let mut r = String::new();
        let mut rest = s;
        while let Some(i) = rest.find("\x1b7") {
            r.push_str(&rest[..i]);
            rest = rest[i..].split_once("\x1b8").map_or("", |(_, after)| after);
        }
        r.push_str(rest);
        r
    }

    fn sample() -> Recording {
        rec(vec![
            (0, EventKind::Resize, "80x24"),
            (0, EventKind::Output, "a"),
            (1_000_000, EventKind::Output, "b"),
            (2_000_000, EventKind::Marker, "approved by alice"),
            (61_000_000, EventKind::Output, "c"),
            (61_500_000, EventKind::Input, "typed"),
            (62_000_000, EventKind::Output, "d"),
        ])
    }

    #[test]
    fn plays_output_with_its_timing_scaled_and_idle_capped() {
        let r = sample();
        let mut out = Vec::new();
        let mut c = fake(vec![]);
        play_with_clock(&r, &PlayOptions::default(), &mut out, &mut c).unwrap();
        assert_eq!(out, b"abcd");
        assert_eq!(c.now, Duration::from_secs(62));

        let mut out = Vec::new();
        let mut c = fake(vec![]);
        let opts = PlayOptions {
            speed: 2.0,
            idle_limit: Some(Duration::from_secs(2)),
            ..Default::default()
        };
        play_with_clock(&r, &opts, &mut out, &mut c).unwrap();
        assert_eq!(out, b"abcd");
        // 1 s + 1 s + 2 s (capped 59 s) + 1 s, at double speed.
        assert_eq!(c.now, Duration::from_millis(2500));
    }

    #[test]
    fn from_paints_the_screen_then_continues_and_to_stops() {
        let r = sample();
        let mut out = Vec::new();
        let opts = PlayOptions {
            from_us: Some(1_500_000),
            to_us: Some(61_000_000),
            ..Default::default()
        };
        let mut c = fake(vec![]);
        play_with_clock(&r, &opts, &mut out, &mut c).unwrap();
        let tl = Timeline::new(&r);
        let mut want = tl.screen_at(1_500_000);
        want.extend_from_slice(b"c");
        assert_eq!(out, want);
        assert_eq!(c.now, Duration::from_micros(59_500_000));
    }

    #[test]
    fn keys_pause_seek_change_speed_jump_and_quit() {
        let r = sample();
        let opts = PlayOptions {
            interactive: true,
            ..Default::default()
        };
        // Pause at 0.5 s for 10 s: "b" comes at 11 s instead of 1 s.
        let mut out = Vec::new();
        let mut c = fake(vec![
            (500, Key::Pause),
            (10_500, Key::Pause),
            (11_200, Key::Quit),
        ]);
        play_with_clock(&r, &opts, &mut out, &mut c).unwrap();
        assert_eq!(content(&out), "ab");
        assert!(String::from_utf8_lossy(&out).contains("paused"));
        // On quit the cursor is left on the cleared bottom line, for the shell's prompt.
        assert!(out.ends_with(b"\x1b[24;1H\x1b[0m\x1b[2K"));
        assert_eq!(c.now, Duration::from_millis(11_200));

        // ] jumps to the marker at 2 s (painting the screen there), → seeks on to 7.1 s.
        let mut out = Vec::new();
        let mut c = fake(vec![
            (100, Key::NextMarker),
            (200, Key::Forward),
            (300, Key::Quit),
        ]);
        play_with_clock(&r, &opts, &mut out, &mut c).unwrap();
        let tl = Timeline::new(&r);
        let painted = tl.screen_at(2_000_000);
        let n = out
            .windows(painted.len())
            .filter(|w| *w == painted.as_slice())
            .count();
        assert_eq!(n, 2, "painted at the marker and again after the seek");
        assert!(!content(&out).contains('c'));
        assert_eq!(c.now, Duration::from_millis(300));

        // + twice: the 59 s gap to "c" plays in a quarter of the time.
        let mut out = Vec::new();
        let mut c = fake(vec![
            (1_000, Key::Faster),
            (1_000, Key::Faster),
            (30_000, Key::Quit),
        ]);
        play_with_clock(&r, &opts, &mut out, &mut c).unwrap();
        assert_eq!(content(&out), "abcd");
        assert!(String::from_utf8_lossy(&out).contains("4x"));
        assert!(c.now < Duration::from_secs(17));
    }

    #[test]
    fn key_decoding() {
        assert_eq!(
            decode_keys(b" +-]q\x03\x1b[C\x1b[D\x1bOC\x1b[1;5Dx"),
            vec![
                Key::Pause,
                Key::Faster,
                Key::Slower,
                Key::NextMarker,
                Key::Quit,
                Key::Quit,
                Key::Forward,
                Key::Back,
                Key::Forward,
                Key::Back,
            ]
        );
        let mut d = KeyDecoder::new();
        assert_eq!(d.push(b"\x1b"), vec![]);
        assert_eq!(d.push(b"["), vec![]);
        assert_eq!(d.push(b"C "), vec![Key::Forward, Key::Pause]);
        assert_eq!(d.push(b"\x1b[A\x1bx"), vec![]);
        assert_eq!(d.push(&[0x1b; 200]), vec![]);
        assert_eq!(d.push(b"q"), vec![Key::Quit]);
    }

    #[test]
    fn a_position_past_the_end_or_matching_nothing_says_what_there_is() {
        let r = sample();
        let end = r.events.last().unwrap().t_us;
        assert!(resolve_within(&r, "2h")
            .unwrap_err()
            .contains("past the end"));
        assert_eq!(resolve_within(&r, "0"), Ok(0));
        assert!(end >= 2_000_000);
        let e = resolve_position(&r, "nothing-like-this").unwrap_err();
        assert!(e.contains("its markers: 0:02 "), "{e}");
    }

    #[test]
    fn positions_resolve_from_times_and_markers() {
        let r = sample();
        for (s, want) in [
            ("90", 90_000_000),
            ("1.5", 1_500_000),
            ("1:30", 90_000_000),
            ("1:02:03", 3_723_000_000),
            ("1m30s", 90_000_000),
            ("500ms", 500_000),
            ("2h", 7_200_000_000),
            ("1d", 86_400_000_000),
            ("2w", 1_209_600_000_000),
            ("approved by alice", 2_000_000),
            ("ALICE", 2_000_000),
        ] {
            assert_eq!(resolve_position(&r, s), Ok(want), "{s}");
        }
        for bad in ["bob", "1:2:3:4", "5x", "", "1e400", "m"] {
            assert!(resolve_position(&r, bad).is_err(), "{bad}");
        }
    }
}
