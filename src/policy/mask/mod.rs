//! The streaming mask engine: finds secrets and personal data in a tool's output and
//! replaces them, chunk by chunk, with the same result whatever the chunking, and without
//! ever showing a value whole however the tool pauses (see [`MaskStream`] and [`timing`]).
//! Pure: no I/O, no clock (the caller says when a stream went quiet). Files: `detect`
//! (built-in detectors), `digits` (the hand-parsed ones), `view` (the text a terminal
//! shows), `text` (escapes, characters, replacements), `stream`, `timing`.
//!
//! How a scan decides. At each position the leftmost match of any rule wins; of matches
//! starting at the same byte the longest wins, then the rule listed first; scanning goes on
//! after the winner. Every rule has a maximum match length, and whether a rule matches at a
//! position depends only on the bytes from a few before it to `max_len + LOOKAHEAD` after it.
//! So a stream emits every byte before the earliest position where a match could still
//! start, and holds back the rest (at most the largest rule window) until more bytes, a
//! release or the end decide it.
//!
//! Speed. Most rules only match near a literal anchor (`AKIA`, `ghp_`, `@`, `password`…):
//! one Aho-Corasick pass finds them all, and regexes run only around hits. The digit
//! detectors look only at runs of digits and separators with enough digits in them. Text
//! with nothing suspicious costs a few memchr-class passes.

pub mod detect;
mod digits;
mod stream;
mod text;
pub mod timing;
mod view;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use regex_automata::hybrid::dfa::{Cache as DfaCache, DFA};
use regex_automata::meta::Regex;
use regex_automata::util::captures::Captures;
use regex_automata::util::syntax;
use regex_automata::{Anchored, Input, PatternID};

pub use stream::{MaskStream, Release};
pub use text::Replace;

use self::detect::{Spec, BUILTINS};
use self::digits::{num_start, Digits, DIGITS_MAX, DIGITS_MIN};
use self::view::{Erase, View};
use super::MaskRule;

/// Bytes past a rule's window that may decide its match (a word boundary, an escape
/// sequence or a character the match ends inside).
const LOOKAHEAD: usize = 96;

/// Bytes before the scan position kept as context (look-behind, escape sequences).
const CONTEXT: usize = 96;

/// Bytes a digit detector's parse reads: what its matches are made of (digits, capitals,
/// separators, parentheses, `+`) and the punctuation it looks past to tell where a number
/// ends (`/`, `:`, `,`).
static TAIL: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = c.is_ascii_digit()
            || c.is_ascii_uppercase()
            || matches!(
                c,
                b' ' | b'-' | b'.' | b'(' | b')' | b'+' | b'/' | b':' | b','
            );
        b += 1;
    }
    t
};

/// Bytes of an exact string (a target secret, a literal rule) that a match still being
/// written has before they count as part of a value.
const LITERAL_PARTIAL: usize = 3;

/// At most this many bytes of a custom regex's match without an anchor byte count as not
/// yet part of a value.
const PARTIAL_MAX: usize = 16;

/// Undecided matches of one rule looked at one by one for where their value starts.
const PARTIAL_CANDIDATES: usize = 32;

/// Shortest target secret value masked: shorter values would mask ordinary text.
pub const SECRET_MIN_LEN: usize = 4;

/// The rule name under which a target's own secret values are counted.
pub const TARGET_SECRET: &str = "target-secret";

/// Default maximum match length of a custom regex rule.
pub const DEFAULT_MAX_LEN: usize = 256;

/// Largest maximum match length a custom rule may ask for.
pub const MAX_MAX_LEN: usize = 64 * 1024;

/// What a mask rule looks for.
#[derive(Clone)]
pub enum Matcher {
    /// A built-in detector, by name (see [`detect::names`]).
    Detector(&'static str),
    /// A custom regex. It is matched within `max_len` bytes of where a match starts: a
    /// longer value is cut there.
    Regex {
        pattern: String,
        regex: Arc<Regex>,
        max_len: usize,
    },
    /// Exact strings (case-sensitive); the longest wins where several start at one place.
    Literals(Vec<String>),
}

impl std::fmt::Debug for Matcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Matcher::Detector(d) => write!(f, "Detector({d})"),
            Matcher::Regex {
                pattern, max_len, ..
            } => write!(f, "Regex({pattern:?}, max_len={max_len})"),
            Matcher::Literals(l) => write!(f, "Literals({} values)", l.len()),
        }
    }
}

/// Compiles a custom rule's regex the way the engine runs it: `^` and `$` match at line
/// ends (a stream has no other start or end), bytes need not be UTF-8.
pub fn compile_regex(pattern: &str, size_limit: usize) -> Result<Regex, String> {
    Regex::builder()
        .syntax(syntax::Config::new().multi_line(true).utf8(false))
        .configure(
            Regex::config()
                .nfa_size_limit(Some(size_limit))
                .utf8_empty(false),
        )
        .build(pattern)
        .map_err(|e| {
            let detail = e.to_string();
            detail.lines().last().unwrap_or("").trim().to_string()
        })
}

/// A built-in detector compiled.
struct Compiled {
    re: Regex,
    /// For deciding whether a match is still being written.
    dfa: DFA,
    /// The `secret` group, when the detector replaces only part of its match.
    group: Option<usize>,
    /// The pattern before the `secret` group: where the value of a match still being
    /// written begins (`password=` is not part of it).
    value_at: Option<Regex>,
}

/// Built-in detector `i` (an anchored one), compiled once per process on first use: a
/// session compiles only the detectors whose anchors its data contains, so starting a
/// process that masks costs nothing until something looks like a secret.
fn builtin_compiled(i: usize) -> &'static Compiled {
    static RES: OnceLock<Vec<OnceLock<Compiled>>> = OnceLock::new();
    let all = RES.get_or_init(|| BUILTINS.iter().map(|_| OnceLock::new()).collect());
    all[i].get_or_init(|| {
        let b = &BUILTINS[i];
        let Spec::Anchored(a) = &b.spec else {
            unreachable!("digit detectors have no regex")
        };
        let syntax = syntax::Config::new().unicode(false).utf8(false);
        // The built-in patterns are constants covered by the tests.
        let re = Regex::builder()
            .syntax(syntax)
            .configure(Regex::config().utf8_empty(false))
            .build(a.pattern)
            .unwrap_or_else(|e| panic!("built-in detector {}: {e}", b.name));
        let dfa = DFA::builder()
            .syntax(syntax)
            .build(a.pattern)
            .unwrap_or_else(|e| panic!("built-in detector {}: {e}", b.name));
        let group = secret_group(&re);
        let value_at = a.pattern.split_once("(?P<secret>").map(|(before, _)| {
            Regex::builder()
                .syntax(syntax)
                .build(before)
                .unwrap_or_else(|e| panic!("built-in detector {}: {e}", b.name))
        });
        Compiled {
            re,
            dfa,
            group,
            value_at,
        }
    })
}

/// The rules of the embedded default policy: every built-in detector, labelled.
pub fn builtin_rules() -> Vec<MaskRule> {
    detect::names().map(builtin_rule).collect()
}

/// One built-in detector as a rule for all targets with the default label.
pub fn builtin_rule(name: &'static str) -> MaskRule {
    MaskRule {
        name: name.to_string(),
        matcher: Matcher::Detector(name),
        targets: vec![],
        replace: Replace::Label(format!("[REDACTED:{name}]")),
    }
}

/// A masker for one target: cheap to clone, shared by the sessions on that target.
#[derive(Clone)]
pub struct Masker {
    engine: Arc<Engine>,
}

impl std::fmt::Debug for Masker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Masker")
            .field("rules", &self.engine.names)
            .finish()
    }
}

impl Masker {
    /// Compiles `rules` (in priority order).
    pub fn new(rules: Vec<MaskRule>) -> Masker {
        Masker {
            engine: Arc::new(Engine::new(rules, vec![])),
        }
    }

    /// This masker plus a rule, first of all, that masks the target's own secret values
    /// (counted as `target-secret`, labelled `[REDACTED:target-secret]`). Values shorter
    /// than [`SECRET_MIN_LEN`] bytes are ignored. Replaces secrets given before.
    pub fn with_secrets<I, S>(&self, values: I) -> Masker
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut secrets: Vec<String> = values
            .into_iter()
            .map(|v| v.as_ref().to_string())
            .filter(|v| v.len() >= SECRET_MIN_LEN)
            .collect();
        secrets.sort();
        secrets.dedup();
        Masker {
            engine: Arc::new(Engine::new(self.engine.source.clone(), secrets)),
        }
    }

    /// Names of the rules, in priority order.
    pub fn rule_names(&self) -> &[String] {
        &self.engine.names
    }

    /// Masks one whole input (a command line, an input line); returns the masked bytes and
    /// how many values were replaced. Borrows the input when nothing matched.
    pub fn mask<'a>(&self, data: &'a [u8]) -> (Cow<'a, [u8]>, usize) {
        self.mask_into(data, None)
    }

    /// [`mask`](Self::mask), with the values masked counted per rule.
    pub fn mask_counted<'a>(&self, data: &'a [u8]) -> (Cow<'a, [u8]>, BTreeMap<String, u64>) {
        let mut counts = BTreeMap::new();
        let (out, _) = self.mask_into(data, Some(&mut counts));
        (out, counts)
    }

    fn mask_into<'a>(
        &self,
        data: &'a [u8],
        counts: Option<&mut BTreeMap<String, u64>>,
    ) -> (Cow<'a, [u8]>, usize) {
        if self.engine.rules.is_empty() || data.is_empty() {
            return (Cow::Borrowed(data), 0);
        }
        let mut sc = Scratch::new(&self.engine);
        let mut found = Vec::new();
        if view::needed(data, Erase::Backspace) {
            // Matched as displayed, replaced in the bytes as written.
            let mut v = View::default();
            v.build(data, Erase::Backspace, true);
            self.engine.scan(&v.text, 0, true, &mut sc, &mut found);
            for f in &mut found {
                f.map_to_input(&v);
            }
        } else {
            self.engine.scan(data, 0, true, &mut sc, &mut found);
        }
        if found.is_empty() {
            return (Cow::Borrowed(data), 0);
        }
        let mut out = Vec::with_capacity(data.len() + 32 * found.len());
        self.engine
            .assemble(data, 0, data.len(), &found, &mut out, counts);
        (Cow::Owned(out), found.len())
    }

    /// A stream for one session's output.
    pub fn stream(&self) -> MaskStream {
        MaskStream::new(self.engine.clone(), Erase::Backspace)
    }

    /// A stream for what a person types: like [`stream`](Self::stream), and a DEL deletes
    /// the character before it, so a typo corrected inside a secret does not hide it.
    pub fn input_stream(&self) -> MaskStream {
        MaskStream::new(self.engine.clone(), Erase::BackspaceAndDel)
    }
}

/// One match a scan decided: the rule, where it starts and ends, and the part replaced.
#[derive(Debug, Clone, Copy)]
struct Found {
    rule: usize,
    s: usize,
    e: usize,
    ms: usize,
    me: usize,
}

impl Found {
    /// From view positions to positions in the bytes the view shows.
    fn map_to_input(&mut self, v: &View) {
        self.s = v.start(self.s);
        self.ms = v.start(self.ms);
        self.me = v.end(self.me);
        self.e = v.end(self.e);
    }
}

enum Kind {
    Anchored {
        spec: &'static detect::Anchored,
        /// Index in `BUILTINS`: see [`builtin_compiled`].
        builtin: usize,
    },
    Regex {
        re: Arc<Regex>,
        group: Option<usize>,
        /// For deciding whether a stream's tail could still start a match; `None` when the
        /// pattern cannot be run as a lazy DFA (then the whole window is held).
        dfa: Option<Arc<DFA>>,
        /// The first byte every match contains at a fixed place in the pattern (`@` of an
        /// address pattern): before it, a match still being written holds no part of a
        /// value yet. `None` when the pattern has none.
        anchor: Option<u8>,
        /// Without an anchor: bytes a match still being written has before they count as
        /// part of a value.
        partial_len: usize,
        /// Every match begins with one of these, when the pattern says so: a start that
        /// agrees with none is decided at once, whatever the automaton can tell.
        prefixes: Option<Vec<Vec<u8>>>,
    },
    Literals {
        ac: AhoCorasick,
        lits: Vec<Vec<u8>>,
        first: Box<[bool; 256]>,
    },
    Digits(Digits),
}

struct Rule {
    kind: Kind,
    /// Maximum match length.
    w: usize,
    replace: Replace,
}

struct Engine {
    /// The rules as given, to rebuild with secrets.
    source: Vec<MaskRule>,
    names: Vec<String>,
    rules: Vec<Rule>,
    /// Multi-byte anchors of all anchored rules, and for each the rules it serves.
    anchors: Option<AhoCorasick>,
    /// A SIMD (Teddy) search for the anchors' first four bytes, when the CPU has it: it
    /// finds every position where an anchor may start, much faster than the automaton.
    teddy: Option<aho_corasick::packed::Searcher>,
    anchor_rules: Vec<Vec<usize>>,
    anchor_lits: Vec<&'static [u8]>,
    /// Anchor ids by first byte, for finding anchors cut by the end of a buffer.
    anchor_by_first: Vec<Vec<usize>>,
    max_anchor: usize,
    /// Single-byte anchors (`@`) and their rules.
    byte_anchors: Vec<(u8, Vec<usize>)>,
    has_digits: bool,
}

impl Engine {
    fn new(source: Vec<MaskRule>, secrets: Vec<String>) -> Engine {
        let mut names = Vec::new();
        let mut rules = Vec::new();
        if !secrets.is_empty() {
            names.push(TARGET_SECRET.to_string());
            rules.push(literal_rule(
                &secrets,
                Replace::Label(format!("[REDACTED:{TARGET_SECRET}]")),
            ));
        }
        for r in &source {
            let rule = match &r.matcher {
                Matcher::Detector(name) => {
                    let Some(i) = BUILTINS.iter().position(|b| b.name == *name) else {
                        continue;
                    };
                    match &BUILTINS[i].spec {
                        Spec::Anchored(spec) => Rule {
                            kind: Kind::Anchored { spec, builtin: i },
                            w: spec.max_len,
                            replace: r.replace.clone(),
                        },
                        Spec::Digits(d) => Rule {
                            kind: Kind::Digits(*d),
                            w: DIGITS_MAX,
                            replace: r.replace.clone(),
                        },
                    }
                }
                Matcher::Regex {
                    pattern,
                    regex,
                    max_len,
                } => {
                    let dfa = DFA::builder()
                        .syntax(syntax::Config::new().multi_line(true).utf8(false))
                        .configure(DFA::config().unicode_word_boundary(true))
                        .build(pattern)
                        .ok()
                        .map(Arc::new);
                    let hir = syntax::parse_with(
                        pattern,
                        &syntax::Config::new().multi_line(true).utf8(false),
                    )
                    .ok();
                    let anchor = hir.as_ref().and_then(first_literal);
                    let prefixes = hir.as_ref().and_then(|h| {
                        let seq = regex_syntax::hir::literal::Extractor::new().extract(h);
                        let lits = seq.literals()?;
                        Some(lits.iter().map(|l| l.as_bytes().to_vec()).collect())
                    });
                    let partial_len = hir
                        .as_ref()
                        .and_then(|h| h.properties().minimum_len())
                        .map_or(PARTIAL_MAX, |m| m.div_ceil(2).clamp(1, PARTIAL_MAX));
                    Rule {
                        kind: Kind::Regex {
                            group: secret_group(regex),
                            re: regex.clone(),
                            dfa,
                            anchor,
                            partial_len,
                            prefixes,
                        },
                        w: (*max_len).clamp(1, MAX_MAX_LEN),
                        replace: r.replace.clone(),
                    }
                }
                Matcher::Literals(lits) => literal_rule(lits, r.replace.clone()),
            };
            names.push(r.name.clone());
            rules.push(rule);
        }

        let mut lits: Vec<&'static [u8]> = Vec::new();
        let mut anchor_rules: Vec<Vec<usize>> = Vec::new();
        let mut byte_anchors: Vec<(u8, Vec<usize>)> = Vec::new();
        for (ri, rule) in rules.iter().enumerate() {
            if let Kind::Anchored { spec, .. } = &rule.kind {
                for a in spec.anchors {
                    let a = a.as_bytes();
                    if a.len() == 1 {
                        match byte_anchors.iter_mut().find(|(b, _)| *b == a[0]) {
                            Some((_, rs)) => rs.push(ri),
                            None => byte_anchors.push((a[0], vec![ri])),
                        }
                    } else if let Some(k) = lits.iter().position(|l| *l == a) {
                        anchor_rules[k].push(ri);
                    } else {
                        lits.push(a);
                        anchor_rules.push(vec![ri]);
                    }
                }
            }
        }
        let anchors = (!lits.is_empty()).then(|| {
            AhoCorasickBuilder::new()
                .match_kind(MatchKind::Standard)
                .build(&lits)
                .expect("anchor literals are small")
        });
        let mut prefixes: Vec<&[u8]> = lits.iter().map(|l| &l[..l.len().min(4)]).collect();
        prefixes.sort_unstable();
        prefixes.dedup();
        let teddy = (!prefixes.is_empty())
            .then(|| {
                aho_corasick::packed::Config::new()
                    .builder()
                    .extend(&prefixes)
                    .build()
            })
            .flatten();
        let mut anchor_by_first = vec![Vec::new(); 256];
        for (k, l) in lits.iter().enumerate() {
            anchor_by_first[usize::from(l[0])].push(k);
        }
        let has_digits = rules.iter().any(|r| matches!(r.kind, Kind::Digits(_)));
        Engine {
            source,
            names,
            max_anchor: lits.iter().map(|l| l.len()).max().unwrap_or(0),
            rules,
            anchors,
            teddy,
            anchor_rules,
            anchor_lits: lits,
            anchor_by_first,
            byte_anchors,
            has_digits,
        }
    }

    /// Decides `hay[pos0..]` (`hay[..pos0]` is context): pushes the matches to `found` and
    /// returns the end of what is decided. With `fin`, `hay` ends where the input ends and
    /// everything is decided.
    fn scan(
        &self,
        hay: &[u8],
        pos0: usize,
        fin: bool,
        sc: &mut Scratch,
        found: &mut Vec<Found>,
    ) -> usize {
        let n = hay.len();
        self.prepare(hay, pos0, fin, sc);
        let mut pos = pos0;
        loop {
            let h = if fin { n } else { self.hold(hay, pos, sc) };
            let mut best: Option<Found> = None;
            for r in 0..self.rules.len() {
                if let Some(c) = self.next(r, hay, pos, sc) {
                    if c.s < h && best.is_none_or(|b| c.s < b.s || c.s == b.s && c.e > b.e) {
                        best = Some(c);
                    }
                }
            }
            match best {
                Some(c) => {
                    found.push(c);
                    pos = c.e;
                }
                None if fin => {
                    sc.hold = n;
                    return n;
                }
                None => {
                    sc.hold = h;
                    return text::safe_boundary(hay, h, pos);
                }
            }
        }
    }

    /// Writes `hay[from..end]` with the matches replaced.
    fn assemble(
        &self,
        hay: &[u8],
        from: usize,
        end: usize,
        found: &[Found],
        out: &mut Vec<u8>,
        mut counts: Option<&mut BTreeMap<String, u64>>,
    ) {
        let mut prev = from;
        for f in found {
            out.extend_from_slice(&hay[prev..f.ms]);
            text::replace_into(out, &hay[f.ms..f.me], &self.rules[f.rule].replace);
            prev = f.me;
            if let Some(counts) = counts.as_deref_mut() {
                let name = &self.names[f.rule];
                match counts.get_mut(name) {
                    Some(c) => *c += 1,
                    None => {
                        counts.insert(name.clone(), 1);
                    }
                }
            }
        }
        out.extend_from_slice(&hay[prev..end]);
    }

    /// Per-scan state: anchor hits, digit regions, anchors cut by the end.
    fn prepare(&self, hay: &[u8], pos0: usize, fin: bool, sc: &mut Scratch) {
        let n = hay.len();
        sc.fin = fin;
        for r in 0..self.rules.len() {
            sc.hits[r].clear();
            sc.cursor[r] = 0;
            sc.next[r] = None;
            sc.viable[r] = None;
            sc.partial[r] = usize::MAX;
        }
        if let Some(teddy) = &self.teddy {
            let mut at = pos0;
            while let Some(m) = teddy.find_in(hay, aho_corasick::Span::from(at..n)) {
                let p = m.start();
                for &k in &self.anchor_by_first[usize::from(hay[p])] {
                    if hay[p..].starts_with(self.anchor_lits[k]) {
                        for &r in &self.anchor_rules[k] {
                            sc.hits[r].push(p);
                        }
                    }
                }
                at = p + 1;
            }
        } else if let Some(ac) = &self.anchors {
            for m in ac.find_overlapping_iter(aho_corasick::Input::new(hay).span(pos0..n)) {
                for &r in &self.anchor_rules[m.pattern().as_usize()] {
                    sc.hits[r].push(m.start());
                }
            }
        }
        for (b, rs) in &self.byte_anchors {
            for i in memchr::memchr_iter(*b, &hay[pos0..]) {
                for &r in rs {
                    sc.hits[r].push(pos0 + i);
                }
            }
        }
        for h in &mut sc.hits {
            if h.len() > 1 {
                h.sort_unstable();
                h.dedup();
            }
        }
        if !fin && self.max_anchor > 1 {
            for p in n.saturating_sub(self.max_anchor - 1).max(pos0)..n {
                for &k in &self.anchor_by_first[usize::from(hay[p])] {
                    let l = self.anchor_lits[k];
                    if l.len() > n - p && l.starts_with(&hay[p..]) {
                        for &r in &self.anchor_rules[k] {
                            sc.partial[r] = sc.partial[r].min(p);
                        }
                    }
                }
            }
        }
        sc.regions.clear();
        sc.ibans.clear();
        sc.region_cursor.iter_mut().for_each(|c| *c = 0);
        sc.trailing = n;
        if self.has_digits {
            digit_clusters(hay, pos0, &mut sc.regions, &mut sc.ibans);
            if !fin {
                let floor = n.saturating_sub(DIGITS_MAX + LOOKAHEAD).max(pos0);
                let mut j = n;
                while j > floor && TAIL[usize::from(hay[j - 1])] {
                    j -= 1;
                }
                sc.trailing = j;
            }
        }
        sc.n = n;
    }

    /// Starts before this are decided for rule `r` by the bytes at hand.
    fn decided_end(&self, r: usize, sc: &Scratch) -> usize {
        if sc.fin {
            return sc.n;
        }
        sc.n.saturating_sub(self.rules[r].w + LOOKAHEAD)
    }

    /// The earliest position at or after `x` where rule `r` could still match once more
    /// bytes come; the buffer end when there is none.
    fn hold(&self, hay: &[u8], x: usize, sc: &mut Scratch) -> usize {
        let mut h = sc.n;
        for r in 0..self.rules.len() {
            let v = match sc.viable[r] {
                Some((from, v)) if from <= x && v >= x => v,
                _ => {
                    let v = self.viable(r, hay, x, sc);
                    sc.viable[r] = Some((x, v));
                    v
                }
            };
            h = h.min(v);
        }
        h
    }

    /// Where the earliest value that may still be being written begins, and its rule: among
    /// the undecided matches starting at or after `x`, the first byte that would be part of
    /// a value if they were complete (see [`Self::value_start`]) and that `covered` (a
    /// value complete as it stands) does not take. Needs a scan prepared not final.
    fn partial_value(
        &self,
        hay: &[u8],
        x: usize,
        sc: &mut Scratch,
        covered: impl Fn(usize) -> bool,
    ) -> Option<(usize, usize)> {
        let n = hay.len();
        let mut best: Option<(usize, usize)> = None;
        let take = |m: usize, r: usize, best: &mut Option<(usize, usize)>| {
            if !covered(m) && best.is_none_or(|(b, _)| m < b) {
                *best = Some((m, r));
            }
        };
        for r in 0..self.rules.len() {
            if let Kind::Anchored { spec, .. } = &self.rules[r].kind {
                // Only a match whose anchor is complete holds part of a value: one per
                // anchor, the earliest undecided start before it.
                let first = sc.hits[r].partition_point(|&a| a < x);
                for k in first..sc.hits[r].len() {
                    let a = sc.hits[r][k];
                    if best.is_some_and(|(b, _)| a.saturating_sub(spec.back) >= b) {
                        break;
                    }
                    let from = pre_back(hay, a, spec, x);
                    if let Some(s) = (from..=a).find(|&s| !self.decided_early(r, hay, s, sc)) {
                        if let Some(m) = self.value_start(r, hay, s, sc) {
                            take(m, r, &mut best);
                        }
                    }
                }
                continue;
            }
            let mut at = x;
            for tried in 0.. {
                let s = self.viable(r, hay, at, sc);
                if s >= n || best.is_some_and(|(b, _)| s >= b) {
                    break;
                }
                if tried == PARTIAL_CANDIDATES {
                    // Too many to look at one by one: count the rest as values.
                    take(s, r, &mut best);
                    break;
                }
                if let Some(m) = self.value_start(r, hay, s, sc) {
                    take(m, r, &mut best);
                }
                at = s + 1;
            }
        }
        best
    }

    /// For rule `r`'s undecided match at `s`, the first byte that already belongs to the
    /// value it would replace; `None` while the bytes so far are only what comes before a
    /// value, or too little of one to tell it from ordinary text:
    ///
    /// - an anchored detector: nothing before its anchor (`@`, `AKIA`, `://`) is complete;
    ///   then the whole match, or, for detectors that replace only a `secret` group, what
    ///   follows the text before that group (`password=`, `Bearer `, `user:`);
    /// - a digit detector: a few digits and letters ([`Digits::partial`]);
    /// - exact strings: [`LITERAL_PARTIAL`] bytes of one;
    /// - a custom regex: the first literal byte every match has (`@` of an address pattern),
    ///   or, for patterns without one, half the shortest match (at most [`PARTIAL_MAX`]).
    fn value_start(&self, r: usize, hay: &[u8], s: usize, sc: &mut Scratch) -> Option<usize> {
        let n = hay.len();
        match &self.rules[r].kind {
            Kind::Anchored { spec, builtin } => {
                let hits = &sc.hits[r];
                let a = *hits.get(hits.partition_point(|&a| a < s))?;
                if a - s > spec.back || !hay[s..a].iter().all(|&b| (spec.pre)(b)) {
                    return None;
                }
                match &builtin_compiled(*builtin).value_at {
                    None => Some(s),
                    Some(before) => {
                        let input = Input::new(hay).span(s..n).anchored(Anchored::Yes);
                        let m = before.search(&input)?;
                        (m.end() < n).then_some(m.end())
                    }
                }
            }
            Kind::Regex {
                anchor,
                partial_len,
                ..
            } => match anchor {
                Some(b) => memchr::memchr(*b, &hay[s..]).map(|_| s),
                None => (n - s >= *partial_len).then_some(s),
            },
            Kind::Literals { .. } => (n - s >= LITERAL_PARTIAL).then_some(s),
            Kind::Digits(d) => {
                let count = hay[s..]
                    .iter()
                    .filter(|b| b.is_ascii_alphanumeric())
                    .count();
                (count >= d.partial()).then_some(s)
            }
        }
    }

    fn viable(&self, r: usize, hay: &[u8], x: usize, sc: &mut Scratch) -> usize {
        let n = sc.n;
        let x = x.max(self.decided_end(r, sc));
        if x >= n {
            return n;
        }
        match &self.rules[r].kind {
            Kind::Anchored { spec, .. } => {
                // Candidate starts lie just before an anchor: a complete one, one cut by the
                // end, or one still to come right after the end.
                let mut v = n;
                let mut checked = x;
                let first = sc.hits[r].partition_point(|&a| a < x);
                for k in first..sc.hits[r].len() {
                    let a = sc.hits[r][k];
                    if a >= v {
                        break;
                    }
                    let from = pre_back(hay, a, spec, checked);
                    if let Some(s) = (from..=a).find(|&s| !self.decided_early(r, hay, s, sc)) {
                        v = s;
                        break;
                    }
                    checked = a + 1;
                }
                // An anchor cut by the end starts at `partial`; one to come starts at `n`.
                let mut tails = [None, None];
                if sc.partial[r] < n && sc.partial[r] >= x {
                    tails[0] = Some((sc.partial[r], sc.partial[r] + 1));
                }
                if spec.back > 0 {
                    tails[1] = Some((n, n));
                }
                for (t, end) in tails.into_iter().flatten() {
                    let from = pre_back(hay, t, spec, x);
                    if let Some(s) =
                        (from..end.min(v)).find(|&s| !self.decided_early(r, hay, s, sc))
                    {
                        v = s;
                    }
                }
                v
            }
            Kind::Regex { .. } => (x..n)
                .find(|&s| !self.decided_early(r, hay, s, sc))
                .unwrap_or(n),
            Kind::Literals { .. } => (x..n)
                .find(|&s| !self.decided_early(r, hay, s, sc))
                .unwrap_or(n),
            Kind::Digits(d) => (x.max(sc.trailing)..n)
                .find(|&s| !d.rejects(hay, s) && !self.decided_early(r, hay, s, sc))
                .unwrap_or(n),
        }
    }

    /// Whether rule `r`'s match at `s` (which may lie in the last window of the buffer) is
    /// already decided by the bytes at hand: its automaton dies, with a margin for checks
    /// that look past a match, before the buffer ends.
    fn decided_early(&self, r: usize, hay: &[u8], s: usize, sc: &mut Scratch) -> bool {
        let n = hay.len();
        if sc.fin || s + self.rules[r].w + LOOKAHEAD <= n {
            return true;
        }
        match &self.rules[r].kind {
            Kind::Anchored { builtin, spec } => {
                let c = builtin_compiled(*builtin);
                let cache = sc.dfa_caches[r].get_or_insert_with(|| c.dfa.create_cache());
                let Some(extend) = spec.extend else {
                    return dfa_dies(&c.dfa, cache, hay, s, false);
                };
                // A match its `extend` grows reads on past the regex: decided when the
                // regex cannot match at all, or when what it grows into is.
                if dfa_dies(&c.dfa, cache, hay, s, true) {
                    return true;
                }
                let limit = (s + self.rules[r].w).min(n);
                let input = Input::new(hay).span(s..limit).anchored(Anchored::Yes);
                c.re.search(&input)
                    .is_some_and(|m| extend(hay, m.end(), limit).1)
            }
            Kind::Regex {
                prefixes: Some(p), ..
            } if !p.iter().any(|p| {
                let rest = &hay[s..];
                rest.starts_with(p) || p.starts_with(rest)
            }) =>
            {
                true
            }
            Kind::Regex { dfa: Some(dfa), .. } => {
                let cache = sc.dfa_caches[r].get_or_insert_with(|| dfa.create_cache());
                dfa_dies(dfa, cache, hay, s, false)
            }
            // A literal that fits is decided; one cut by the end is not.
            Kind::Literals { lits, first, .. } => {
                !first[usize::from(hay[s])]
                    || !lits
                        .iter()
                        .any(|l| s + l.len() > n && l.starts_with(&hay[s..]))
            }
            // Decided unless the parse read up to the end, which it can only do through
            // the bytes of the trailing run.
            Kind::Digits(d) => s < sc.trailing || !d.decide(hay, s, (s + DIGITS_MAX).min(n)).1,
            _ => false,
        }
    }

    /// Rule `r`'s leftmost decided match starting at or after `x`.
    fn next(&self, r: usize, hay: &[u8], x: usize, sc: &mut Scratch) -> Option<Found> {
        if let Some((from, res)) = sc.next[r] {
            if from <= x && res.is_none_or(|c| c.s >= x) {
                return res;
            }
        }
        let res = self.find(r, hay, x, sc);
        sc.next[r] = Some((x, res));
        res
    }

    fn find(&self, r: usize, hay: &[u8], x: usize, sc: &mut Scratch) -> Option<Found> {
        let n = hay.len();
        let det = self.decided_end(r, sc);
        let rule = &self.rules[r];
        match &rule.kind {
            Kind::Anchored { spec, builtin } => {
                let mut i = sc.cursor[r];
                while i < sc.hits[r].len() && sc.hits[r][i] < x {
                    i += 1;
                }
                sc.cursor[r] = i;
                let mut floor = x;
                while i < sc.hits[r].len() {
                    let a = sc.hits[r][i];
                    i += 1;
                    if a < floor {
                        continue;
                    }
                    let mut lo = pre_back(hay, a, spec, floor);
                    if spec.back == 0 {
                        if a < det || self.decided_early(r, hay, a, sc) {
                            if let Some(c) = self.confirm(r, hay, a, sc) {
                                return Some(c);
                            }
                        }
                    } else {
                        let span_end = (a + rule.w).min(n);
                        // Compiled only now that an anchor is in the data.
                        let re = &builtin_compiled(*builtin).re;
                        while lo <= a {
                            match re.search(&Input::new(hay).span(lo..span_end)) {
                                Some(m) if m.start() <= a => {
                                    let s = m.start();
                                    if s < det || self.decided_early(r, hay, s, sc) {
                                        if let Some(c) = self.confirm(r, hay, s, sc) {
                                            return Some(c);
                                        }
                                    }
                                    lo = s + 1;
                                }
                                _ => break,
                            }
                        }
                    }
                    floor = a + 1;
                }
                None
            }
            Kind::Regex { re, .. } => {
                let mut lo = x;
                while lo < n {
                    let s = re.search(&Input::new(hay).span(lo..n))?.start();
                    if s < det || self.decided_early(r, hay, s, sc) {
                        if let Some(c) = self.confirm(r, hay, s, sc) {
                            return Some(c);
                        }
                    }
                    lo = s + 1;
                }
                None
            }
            Kind::Literals { ac, .. } => {
                let mut lo = x;
                while lo < n {
                    let m = ac.find(aho_corasick::Input::new(hay).span(lo..n))?;
                    let s = m.start();
                    if s < det || self.decided_early(r, hay, s, sc) {
                        if let Some(c) = finish(hay, r, s, m.end(), s, m.end()) {
                            return Some(c);
                        }
                    }
                    lo = s + 1;
                }
                None
            }
            Kind::Digits(Digits::Iban) => {
                let mut k = sc.region_cursor[digit_slot(Digits::Iban)];
                while k < sc.ibans.len() && sc.ibans[k] < x {
                    k += 1;
                }
                sc.region_cursor[digit_slot(Digits::Iban)] = k;
                for &s in &sc.ibans[k..] {
                    let (end, open) = Digits::Iban.decide(hay, s, (s + DIGITS_MAX).min(n));
                    if open && !sc.fin {
                        // Undecided: the scan holds from here (see `viable`).
                        continue;
                    }
                    if let Some(c) = end.and_then(|e| finish(hay, r, s, e, s, e)) {
                        return Some(c);
                    }
                }
                None
            }
            Kind::Digits(d) => {
                let mut k = sc.region_cursor[digit_slot(*d)];
                while k < sc.regions.len() && sc.regions[k] < x {
                    k += 1;
                }
                sc.region_cursor[digit_slot(*d)] = k;
                for &s in &sc.regions[k..] {
                    if d.rejects(hay, s) {
                        continue;
                    }
                    let (end, open) = d.decide(hay, s, (s + DIGITS_MAX).min(n));
                    if open && !sc.fin && s >= sc.trailing {
                        continue;
                    }
                    if let Some(c) = end.and_then(|e| finish(hay, r, s, e, s, e)) {
                        return Some(c);
                    }
                }
                None
            }
        }
    }

    /// Rule `r`'s match at exactly `s`, if any, validated and adjusted.
    fn confirm(&self, r: usize, hay: &[u8], s: usize, sc: &mut Scratch) -> Option<Found> {
        let rule = &self.rules[r];
        let limit = (s + rule.w).min(hay.len());
        let (re, group, spec) = match &rule.kind {
            Kind::Anchored { spec, builtin } => {
                let c = builtin_compiled(*builtin);
                (&c.re, c.group, Some(*spec))
            }
            Kind::Regex { re, group, .. } => (&**re, *group, None),
            _ => return None,
        };
        let input = Input::new(hay).span(s..limit).anchored(Anchored::Yes);
        let (e, ms, me) = match group {
            None => {
                let m = re.search(&input)?;
                (m.end(), s, m.end())
            }
            Some(g) => {
                let caps = sc.caps[r].get_or_insert_with(|| re.create_captures());
                re.search_captures(&input, caps);
                let m = caps.get_match()?;
                match caps.get_group(g) {
                    Some(sp) => (m.end(), sp.start, sp.end),
                    None => (m.end(), s, m.end()),
                }
            }
        };
        let mut e = e;
        let mut me = me;
        if let Some(spec) = spec {
            if let Some(validate) = spec.validate {
                if !validate(hay, s, e, ms, me) {
                    return None;
                }
            }
            if let Some(extend) = spec.extend {
                e = extend(hay, e, limit).0;
                me = e;
            }
        }
        finish(hay, r, s, e, ms, me)
    }
}

fn digit_slot(d: Digits) -> usize {
    match d {
        Digits::Card => 0,
        Digits::Iban => 1,
        Digits::Ssn => 2,
        Digits::Phone => 3,
    }
}

/// Final checks shared by all rules: a match is not empty and does not start inside an
/// escape sequence; the replaced part keeps escape sequences and characters whole.
fn finish(hay: &[u8], rule: usize, s: usize, e: usize, ms: usize, me: usize) -> Option<Found> {
    if e <= s || me <= ms || text::inside_escape(hay, s) {
        return None;
    }
    let n = hay.len();
    // Escape sequences inside the replaced part are kept by the replacement; only whole
    // characters are replaced.
    let mut ms = ms;
    while ms < me && text::is_cont(hay[ms]) {
        ms += 1;
    }
    let mut me = me;
    if hay[me - 1] >= 0x80 {
        let mut lead = me - 1;
        while lead > ms && text::is_cont(hay[lead]) && me - lead < 4 {
            lead -= 1;
        }
        let need = match hay[lead] {
            0xc0..=0xdf => 2,
            0xe0..=0xef => 3,
            0xf0..=0xf7 => 4,
            _ => 1,
        };
        while me < n && me < lead + need && text::is_cont(hay[me]) {
            me += 1;
        }
    }
    if ms >= me {
        return None;
    }
    Some(Found {
        rule,
        s,
        e: e.max(me),
        ms,
        me,
    })
}

/// The earliest start, not before `floor`, of a match whose anchor is at `a`: back over the
/// bytes the rule allows before its anchor.
fn pre_back(hay: &[u8], a: usize, spec: &detect::Anchored, floor: usize) -> usize {
    let stop = a.saturating_sub(spec.back).max(floor);
    let mut s = a;
    while s > stop && (spec.pre)(hay[s - 1]) {
        s -= 1;
    }
    s.max(floor)
}

/// The first byte of the first literal that every match of `hir` contains at a fixed place
/// in the pattern (an item of its top-level sequence).
fn first_literal(hir: &regex_syntax::hir::Hir) -> Option<u8> {
    use regex_syntax::hir::HirKind;
    match hir.kind() {
        HirKind::Literal(l) => l.0.first().copied(),
        HirKind::Capture(c) => first_literal(&c.sub),
        HirKind::Repetition(rep) if rep.min >= 1 => first_literal(&rep.sub),
        HirKind::Concat(items) => items.iter().find_map(first_literal),
        _ => None,
    }
}

fn secret_group(re: &Regex) -> Option<usize> {
    re.group_info().to_index(PatternID::ZERO, "secret")
}

fn literal_rule(values: &[String], replace: Replace) -> Rule {
    let lits: Vec<Vec<u8>> = values
        .iter()
        .filter(|v| !v.is_empty())
        .map(|v| v.as_bytes().to_vec())
        .collect();
    let mut first = Box::new([false; 256]);
    for l in &lits {
        first[usize::from(l[0])] = true;
    }
    Rule {
        w: lits.iter().map(|l| l.len()).max().unwrap_or(1),
        kind: Kind::Literals {
            ac: AhoCorasickBuilder::new()
                .match_kind(MatchKind::LeftmostLongest)
                .build(&lits)
                .expect("literal lists are bounded by the config"),
            lits,
            first,
        },
        replace,
    }
}

/// Whether the match of `dfa` anchored at `s` is decided by `hay`: its automaton dies
/// within `hay`, or ends in a state from which every byte leads to death. After non-ASCII
/// bytes a few more bytes must follow (a match is widened to whole characters). An
/// automaton that gives up counts as undecided. With `unmatched`, only dying without
/// having matched counts.
fn dfa_dies(dfa: &DFA, cache: &mut DfaCache, hay: &[u8], s: usize, unmatched: bool) -> bool {
    let n = hay.len();
    let input = Input::new(hay).range(s..).anchored(Anchored::Yes);
    let Ok(mut sid) = dfa.start_state_forward(cache, &input) else {
        return false;
    };
    if sid.is_dead() {
        return true;
    }
    let mut ascii = true;
    let mut matched = false;
    for (i, &b) in hay.iter().enumerate().skip(s) {
        match dfa.next_state(cache, sid, b) {
            Ok(next) => sid = next,
            Err(_) => return false,
        }
        if sid.is_tagged() {
            if sid.is_dead() {
                return !(unmatched && matched) && (ascii || i + 3 <= n);
            }
            if sid.is_quit() {
                return false;
            }
            matched |= sid.is_match();
        }
        ascii &= b < 0x80;
    }
    if !ascii || unmatched {
        return false;
    }
    // Can any byte still go on?
    let classes = *dfa.byte_classes();
    classes.representatives(0..=255).all(|unit| {
        let Some(b) = unit.as_u8() else { return true };
        matches!(dfa.next_state(cache, sid, b), Ok(next) if next.is_dead())
    })
}

/// Where digit detectors may match: clusters of digit runs joined by single separators
/// (or `) ` and ` (`) that hold enough digits for a card, phone number or SSN, and the
/// starts of IBANs (two capital letters before two digits).
///
/// A bit-parallel gate looks at 64 bytes at a time: a cluster with enough digits lies in
/// a run of at least `DIGITS_MIN` bytes that are digits, parentheses or separators between
/// them, and only such runs are looked at byte by byte. Dates, times, versions and hex
/// hashes are skipped without that.
fn digit_clusters(hay: &[u8], pos0: usize, starts: &mut Vec<usize>, ibans: &mut Vec<usize>) {
    const STEP: usize = 48;
    const OWNED: u64 = ((1u64 << STEP) - 1) << 8;
    let n = hay.len();
    let mut i = pos0;
    let mut done = pos0;
    let mut window = [0u8; 64];
    while i < n {
        // Bit k of the masks is byte `i - 8 + k`; bits 8..56 are this step's own.
        let w: &[u8; 64] = if i >= pos0 + 8 && i + 56 <= n {
            hay[i - 8..i + 56].try_into().expect("64 bytes")
        } else {
            for (k, slot) in window.iter_mut().enumerate() {
                let at = (i + k).wrapping_sub(8);
                *slot = if (pos0..n).contains(&at) { hay[at] } else { 0 };
            }
            &window
        };
        let (d, j, p, u) = text::classes(w);
        if d & OWNED == 0 && d >> 56 == 0 {
            i += STEP;
            continue;
        }
        let ib = u & (u >> 1) & (d >> 2) & (d >> 3) & OWNED;
        let mut bits = ib;
        while bits != 0 {
            ibans.push(i + bits.trailing_zeros() as usize - 8);
            bits &= bits - 1;
        }
        let dp = d | p;
        let c = dp | (j & (dp << 1) & (dp >> 1));
        let mut l = c & (c >> 1);
        l &= l >> 2;
        l &= l >> 4;
        l &= c >> 8;
        let mut trig = l & OWNED;
        while trig != 0 {
            let start = i + trig.trailing_zeros() as usize - 8;
            trig &= trig - 1;
            if start < done {
                continue;
            }
            // The run's end from the mask, byte by byte only past the window (bit 63
            // cannot see the byte after it).
            let bit = start + 8 - i;
            let len = (!(c >> bit)).trailing_zeros() as usize;
            let mut end = start + len;
            if bit + len >= 63 {
                end = end.min(i + 55);
                while end < n && in_cluster_run(hay, end, pos0) {
                    end += 1;
                }
            } else if ((d >> bit) & ((1u64 << len) - 1)).count_ones() < DIGITS_MIN as u32 {
                // Too few digits in the whole run for any cluster in it (a date, an
                // address): nothing to look at.
                done = end;
                continue;
            }
            cluster_range(hay, start.saturating_sub(2).max(done), end, pos0, starts);
            done = end;
        }
        i += STEP;
    }
}

/// Whether byte `k` belongs to a run the gate of [`digit_clusters`] looks at.
fn in_cluster_run(hay: &[u8], k: usize, pos0: usize) -> bool {
    let dp = |k: usize| hay[k].is_ascii_digit() || matches!(hay[k], b'(' | b')');
    dp(k)
        || matches!(hay[k], b' ' | b'-' | b'.' | b'+')
            && k > pos0
            && dp(k - 1)
            && k + 1 < hay.len()
            && dp(k + 1)
}

/// The places where a card, SSN or phone number may start in the clusters with enough
/// digits among the digit runs in `hay[from..to]`: runs that start a number, and a `+` or
/// `(` right before a run.
fn cluster_range(hay: &[u8], from: usize, to: usize, pos0: usize, starts: &mut Vec<usize>) {
    let joins = |gap: &[u8]| {
        matches!(
            gap,
            [b' ' | b'-' | b'.' | b'(' | b')' | b'+'] | b") " | b" ("
        )
    };
    let first = starts.len();
    let mut cluster = first;
    let hay_to = &hay[..to];
    let mut i = from;
    let (mut end, mut digits) = (usize::MAX, 0);
    while let Some(a) = next_digit(hay_to, i) {
        let mut b = a + 1;
        while b < to && hay[b].is_ascii_digit() {
            b += 1;
        }
        if end == usize::MAX || a - end > 2 || !joins(&hay[end..a]) {
            if digits < DIGITS_MIN {
                starts.truncate(cluster);
            }
            cluster = starts.len();
            digits = 0;
        }
        digits += b - a;
        if a > pos0 && matches!(hay[a - 1], b'+' | b'(') {
            starts.push(a - 1);
        }
        if num_start(hay, a) {
            starts.push(a);
        }
        end = b;
        i = b;
    }
    if digits < DIGITS_MIN {
        starts.truncate(cluster.max(first));
    }
}

/// The next ASCII digit at or after `i`, eight bytes at a time.
#[inline]
fn next_digit(hay: &[u8], mut i: usize) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    while i + 8 <= hay.len() {
        let w = u64::from_le_bytes(hay[i..i + 8].try_into().expect("8 bytes"));
        let x = w ^ (LO * 0x30);
        // A byte of `x` below 10 is a digit of `w`; bytes with the top bit set are not.
        let t = x.wrapping_sub(LO * 10) & !x & HI;
        if t != 0 {
            return Some(i + (t.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    (i..hay.len()).find(|&k| hay[k].is_ascii_digit())
}

/// Scratch space of scans, reused by a stream.
struct Scratch {
    fin: bool,
    n: usize,
    hits: Vec<Vec<usize>>,
    cursor: Vec<usize>,
    partial: Vec<usize>,
    next: Vec<Option<(usize, Option<Found>)>>,
    viable: Vec<Option<(usize, usize)>>,
    caps: Vec<Option<Captures>>,
    dfa_caches: Vec<Option<DfaCache>>,
    /// Where digit detectors may match (see [`digit_clusters`]).
    regions: Vec<usize>,
    ibans: Vec<usize>,
    region_cursor: [usize; 4],
    /// Where the last scan that was not final holds from: the earliest start of a match
    /// still undecided.
    hold: usize,
    /// Start of the run of bytes at the end that a digit detector's parse can read (see
    /// [`TAIL`]): a digit match starting before it is decided.
    trailing: usize,
}

impl Scratch {
    fn new(engine: &Engine) -> Scratch {
        let k = engine.rules.len();
        Scratch {
            fin: true,
            n: 0,
            hits: vec![Vec::new(); k],
            cursor: vec![0; k],
            partial: vec![usize::MAX; k],
            next: vec![None; k],
            viable: vec![None; k],
            caps: (0..k).map(|_| None).collect(),
            dfa_caches: (0..k).map(|_| None).collect(),
            regions: Vec::new(),
            ibans: Vec::new(),
            region_cursor: [0; 4],
            hold: 0,
            trailing: 0,
        }
    }
}

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;
