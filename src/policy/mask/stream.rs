//! [`MaskStream`]: one stream's masking over time.
//!
//! `push` emits what is decided and holds back a tail that could still be part of a
//! secret. What happens to a held tail when the tool goes quiet is the caller's call,
//! made with [`MaskStream::release`]; the rules that keep a value from ever being shown
//! whole live here:
//!
//! - `Release::Clear` lets go only of what holds no part of a value yet (`password=`, the
//!   first digits of a number, a word that could still become an address) and of values
//!   complete as they stand, masked. The part of a value still being written stays held.
//! - `Release::Masked` lets go of everything, the part of a value still being written
//!   masked as that value.
//! - Either way, a match that was still open is remembered (its bytes stay in the buffer,
//!   however old) and later bytes are scanned together with it. When it completes, what
//!   comes after the released part is masked: in full when the released part went out in
//!   clear, and as a continuation of the same value (no second label; stars for
//!   same-width) when it went out masked.
//!
//! Matching runs on what a terminal shows (see [`super::view`]), so colour codes and
//! corrected typos inside a value do not hide it.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

use super::view::{self, Erase, View};
use super::{text, Engine, Found, Scratch, CONTEXT};

/// What a held-back tail may give up when a stream must let it go before it is decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Release {
    /// What holds no part of a value yet, and values complete as they stand (masked).
    Clear,
    /// Everything: the part of a value still being written goes out masked.
    Masked,
}

/// Masks one stream. Feed it chunks with [`push`](MaskStream::push); it returns what is
/// safe to emit and holds back a tail that could still be part of a secret. Call
/// [`release`](MaskStream::release) when the stream has gone quiet and
/// [`flush`](MaskStream::flush) at its end.
///
/// Pushing every chunk and then flushing gives exactly what [`super::Masker::mask`] gives
/// for the whole input. Releases in between change only how much of a value split by a
/// pause is masked, never whether it is: a value is never emitted whole.
pub struct MaskStream {
    engine: Arc<Engine>,
    /// Bytes already emitted (`..ctx`: context, and an open match), then the held-back ones.
    buf: Vec<u8>,
    ctx: usize,
    /// Start of the earliest match that was undecided when bytes after its start were
    /// released: scans start here, and what they find is emitted from `ctx`.
    open: Option<usize>,
    /// Where a value begins whose released part went out masked: a match that continues
    /// it (covers this byte and goes on past `ctx`) gets no second label.
    veiled: Option<usize>,
    erase: Erase,
    view: View,
    sc: Scratch,
    found: Vec<Found>,
    counts: BTreeMap<String, u64>,
}

impl MaskStream {
    pub(super) fn new(engine: Arc<Engine>, erase: Erase) -> MaskStream {
        MaskStream {
            sc: Scratch::new(&engine),
            engine,
            buf: Vec::new(),
            ctx: 0,
            open: None,
            veiled: None,
            erase,
            view: View::default(),
            found: Vec::new(),
            counts: BTreeMap::new(),
        }
    }

    /// Takes a chunk and returns the bytes that are safe to emit now. Borrows the chunk (or
    /// a prefix of it) when nothing is masked and nothing was held back before.
    pub fn push<'a>(&mut self, chunk: &'a [u8]) -> Cow<'a, [u8]> {
        if chunk.is_empty() || self.engine.rules.is_empty() {
            return Cow::Borrowed(chunk);
        }
        let held_before = self.held();
        self.buf.extend_from_slice(chunk);
        if self.open.is_none() && !view::needed(&self.buf, self.erase) {
            // The common case: plain text, nothing open.
            self.found.clear();
            let end = self
                .engine
                .scan(&self.buf, self.ctx, false, &mut self.sc, &mut self.found);
            let out = if self.found.is_empty() && held_before == 0 {
                Cow::Borrowed(&chunk[..end - self.ctx])
            } else {
                let mut out = Vec::with_capacity(end - self.ctx + 32 * self.found.len());
                self.emit(end, &mut out);
                Cow::Owned(out)
            };
            self.advance(end);
            return out;
        }
        let (end, hold) = self.scan(false);
        let end = end.max(self.ctx);
        let mut out = Vec::with_capacity(end - self.ctx + 32 * self.found.len());
        self.emit(end, &mut out);
        self.reopen(hold, end);
        self.advance(end);
        Cow::Owned(out)
    }

    /// Lets the held-back tail go, as far as `how` allows (see [`Release`]); what stays
    /// held is part of a value still being written.
    pub fn release(&mut self, how: Release) -> Vec<u8> {
        if self.held() == 0 {
            return Vec::new();
        }
        let n = self.buf.len();
        let viewed = view::needed(&self.buf, self.erase);
        if viewed {
            self.view.build(&self.buf, self.erase, false);
        }
        let hay: &[u8] = if viewed { &self.view.text } else { &self.buf };
        let from = self.open.unwrap_or(self.ctx);
        let vfrom = if viewed {
            self.view.index_of(from)
        } else {
            from
        };
        let vctx = if viewed {
            self.view.index_of(self.ctx)
        } else {
            self.ctx
        };
        // Values complete as they stand...
        let mut fin = Vec::new();
        self.engine.scan(hay, vfrom, true, &mut self.sc, &mut fin);
        // ...and the first byte of a value still being written that none of them covers.
        self.engine.prepare(hay, vfrom, false, &mut self.sc);
        let hold = self.engine.hold(hay, vfrom, &mut self.sc);
        let partial = self.engine.partial_value(hay, vfrom, &mut self.sc, |m| {
            fin.iter().any(|f| f.ms <= m && m < f.me)
        });
        fin.retain(|f| f.me > vctx);
        let to_input = |v: usize| if viewed { self.view.start(v) } else { v };
        let hold = to_input(hold);
        // Where the value still being written starts, and whether it started in bytes
        // already emitted.
        let partial = partial.map(|(m, r)| (to_input(m), r));
        for f in &mut fin {
            if viewed {
                f.map_to_input(&self.view);
            }
        }
        let (clear_end, veil) = match (how, partial) {
            (_, None) => (n, None),
            (Release::Clear, Some((m, _))) => (m, None),
            (Release::Masked, Some((m, r))) => (m, Some(r)),
        };
        self.found.clear();
        self.found
            .extend(fin.into_iter().filter(|f| f.me <= clear_end));
        let clear_end = clear_end.max(self.ctx);
        let mut out = Vec::new();
        self.emit(clear_end, &mut out);
        // A match emitted up to here that is still undecided may go on in what comes next.
        let mut went_on = self
            .found
            .last()
            .filter(|f| f.me >= clear_end && f.s >= hold)
            .map(|f| f.ms);
        let end = match (veil, partial) {
            (Some(r), Some((m, _))) => {
                let replace = &self.engine.rules[r].replace;
                if m < self.ctx && self.veiled.is_some_and(|v| v <= m) {
                    text::continue_into(&mut out, &self.buf[clear_end..n], replace);
                } else {
                    text::replace_into(&mut out, &self.buf[clear_end..n], replace);
                    self.count(r);
                    went_on = Some(m);
                }
                n
            }
            _ => clear_end,
        };
        self.reopen(hold, end);
        if self.open.is_some() {
            if let Some(v) = went_on {
                self.veiled = Some(self.veiled.map_or(v, |old| old.min(v)));
            }
        }
        self.advance(end);
        out
    }

    /// Emits the held-back tail, masked as if the stream ended here; the stream starts over.
    pub fn flush(&mut self) -> Vec<u8> {
        if self.held() == 0 {
            self.open = None;
            self.veiled = None;
            return Vec::new();
        }
        self.scan(true);
        let n = self.buf.len();
        let mut out = Vec::with_capacity(n - self.ctx + 32 * self.found.len());
        self.emit(n, &mut out);
        self.open = None;
        self.veiled = None;
        self.advance(n);
        out
    }

    /// Bytes held back: when not zero, the caller arms a timer to release them.
    pub fn held(&self) -> usize {
        self.buf.len() - self.ctx
    }

    /// Values masked so far, by rule name. Never the values themselves.
    pub fn counts(&self) -> &BTreeMap<String, u64> {
        &self.counts
    }

    /// Scans from the open match (or the held-back tail) to the end, on the view when the
    /// bytes need one; leaves the matches in `found` (input positions) and returns where
    /// the decided part ends and where the earliest undecided match starts.
    fn scan(&mut self, fin: bool) -> (usize, usize) {
        let from = self.open.unwrap_or(self.ctx);
        self.found.clear();
        if !view::needed(&self.buf, self.erase) {
            let end = self
                .engine
                .scan(&self.buf, from, fin, &mut self.sc, &mut self.found);
            return (end, self.sc.hold);
        }
        self.view.build(&self.buf, self.erase, fin);
        let vfrom = self.view.index_of(from);
        let end = self
            .engine
            .scan(&self.view.text, vfrom, fin, &mut self.sc, &mut self.found);
        for f in &mut self.found {
            f.map_to_input(&self.view);
        }
        (self.view.start(end), self.view.start(self.sc.hold))
    }

    /// Writes `buf[ctx..end]` with the matches in `found` replaced. A match that began in
    /// bytes already emitted is replaced from `ctx` on: as a continuation when what was
    /// emitted of it went out masked.
    fn emit(&mut self, end: usize, out: &mut Vec<u8>) {
        let mut prev = self.ctx;
        let found = std::mem::take(&mut self.found);
        for f in &found {
            if f.me <= prev {
                continue;
            }
            let ms = f.ms.max(prev);
            out.extend_from_slice(&self.buf[prev..ms]);
            let replace = &self.engine.rules[f.rule].replace;
            if f.ms < self.ctx && self.veiled.is_some_and(|v| f.ms <= v && v < f.me) {
                text::continue_into(out, &self.buf[ms..f.me], replace);
            } else {
                text::replace_into(out, &self.buf[ms..f.me], replace);
                self.count(f.rule);
            }
            prev = f.me;
        }
        out.extend_from_slice(&self.buf[prev..end.max(prev)]);
        self.found = found;
    }

    /// After emitting up to `end`: a match still undecided from `hold` on, when that lies
    /// before `end`, stays open.
    fn reopen(&mut self, hold: usize, end: usize) {
        if hold < end {
            self.open = Some(hold);
        } else {
            self.open = None;
            self.veiled = None;
        }
    }

    fn count(&mut self, rule: usize) {
        let name = &self.engine.names[rule];
        match self.counts.get_mut(name) {
            Some(c) => *c += 1,
            None => {
                self.counts.insert(name.clone(), 1);
            }
        }
    }

    /// Drops the emitted bytes but the context and an open match.
    fn advance(&mut self, end: usize) {
        let lo = end.saturating_sub(CONTEXT);
        let lo = self.open.map_or(lo, |o| o.min(lo));
        self.buf.drain(..lo);
        self.ctx = end - lo;
        self.open = self.open.map(|o| o - lo);
        self.veiled = self.veiled.and_then(|v| v.checked_sub(lo));
    }
}
