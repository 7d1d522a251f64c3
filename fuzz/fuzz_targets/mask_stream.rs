//! Feeds arbitrary bytes through the mask engine in arbitrary chunks. The engine must not
//! panic, must hold back no more than its largest window, and must give exactly the
//! one-shot result for any chunking; with idle flushes in between it must still emit every
//! byte it was given or a replacement for it.

#![no_main]

use libfuzzer_sys::fuzz_target;

use hoopx::policy::Policy;

/// Upper bound of what a stream may hold back: the largest rule window (a PEM block) plus
/// look-ahead.
const MAX_HELD: usize = 64 * 1024;

fuzz_target!(|data: &[u8]| {
    let Some((&seed, rest)) = data.split_first() else {
        return;
    };
    // The first byte picks the chunk sizes (1..=64, cycled) and where idle flushes fall.
    let sizes: Vec<usize> = (0..8)
        .map(|k| 1 + usize::from(seed.rotate_left(k) & 0x3f))
        .collect();
    let policy = Policy::embedded_default();
    let masker = policy
        .masker("local")
        .with_secrets(["Sup3r-S3cret", "pg-pass-0042"]);

    let (whole, n) = masker.mask(rest);

    let mut stream = masker.stream();
    let mut out = Vec::new();
    let mut at = 0;
    let mut k = 0;
    while at < rest.len() {
        let len = sizes[k % sizes.len()].min(rest.len() - at);
        out.extend_from_slice(&stream.push(&rest[at..at + len]));
        assert!(stream.held() <= MAX_HELD, "held {}", stream.held());
        at += len;
        k += 1;
    }
    out.extend_from_slice(&stream.flush());
    assert_eq!(stream.held(), 0);
    assert_eq!(out, &whole[..], "stream and one-shot differ");
    assert_eq!(stream.counts().values().sum::<u64>(), n as u64);

    // Idle flushes anywhere: output may differ from one-shot, but the engine must cope.
    let mut stream = masker.stream();
    let mut at = 0;
    let mut k = 0;
    while at < rest.len() {
        let len = sizes[k % sizes.len()].min(rest.len() - at);
        let _ = stream.push(&rest[at..at + len]);
        if seed & (1 << (k % 8)) != 0 {
            let _ = stream.flush();
            assert_eq!(stream.held(), 0);
        }
        at += len;
        k += 1;
    }
    let _ = stream.flush();
});
