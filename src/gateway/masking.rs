//! A session's masked streams (stdout, stderr and what the caller types), each with the
//! holdback of [`crate::policy::mask::timing`]: what the relay shows and records, and
//! when it must come back to let a held tail go.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::time::Instant;

use bytes::Bytes;

use crate::policy::mask::timing::{Hold, Holdback};
use crate::policy::mask::{MaskStream, Release};

/// One masked stream and its holdback.
pub(super) struct Masked {
    stream: MaskStream,
    hold: Hold,
    /// The stream's counts as last reported, to tell what a push or release added.
    reported: BTreeMap<String, u64>,
}

/// Masked bytes and the values masked in them, per rule.
pub(super) type Out = (Bytes, BTreeMap<String, u64>);

impl Masked {
    pub fn new(stream: MaskStream) -> Masked {
        Masked {
            stream,
            hold: Hold::default(),
            reported: BTreeMap::new(),
        }
    }

    /// Masks a chunk; returns what may go on now. The quiet period of a held tail counts
    /// from here: a tail is let go only once the tool has said nothing more for a moment.
    pub fn push(&mut self, data: &Bytes, now: Instant) -> Out {
        let out = match self.stream.push(data) {
            // Clean chunks (the common case) go back as the very bytes that came in.
            Cow::Borrowed(b) => subslice(data, b),
            Cow::Owned(v) => Bytes::from(v),
        };
        self.hold.pushed(now, self.stream.held() > 0);
        (out, self.fresh())
    }

    /// When the held tail is next due for release, and how far.
    pub fn due(&self, holdback: &Holdback) -> Option<(Instant, Release)> {
        self.hold.due(holdback)
    }

    /// Lets the held tail go as far as `how` allows.
    pub fn release(&mut self, how: Release) -> Out {
        let out = Bytes::from(self.stream.release(how));
        self.hold.released(how, self.stream.held() > 0);
        (out, self.fresh())
    }

    /// The stream ended: everything held goes, masked as if it ended here.
    pub fn flush(&mut self) -> Out {
        let out = Bytes::from(self.stream.flush());
        self.hold.released(Release::Masked, false);
        (out, self.fresh())
    }

    /// What the counts gained since last asked. Counts only grow, so equal totals mean
    /// nothing new: the clean path allocates nothing.
    fn fresh(&mut self) -> BTreeMap<String, u64> {
        let now = self.stream.counts();
        if now.values().sum::<u64>() == self.reported.values().sum::<u64>() {
            return BTreeMap::new();
        }
        let fresh = now
            .iter()
            .filter_map(|(rule, n)| {
                let d = n - self.reported.get(rule).copied().unwrap_or(0);
                (d > 0).then(|| (rule.clone(), d))
            })
            .collect();
        self.reported = now.clone();
        fresh
    }
}

/// `part` as a slice of `whole` when it lies inside it (no copy), else a copy.
fn subslice(whole: &Bytes, part: &[u8]) -> Bytes {
    let (w, p) = (whole.as_ptr() as usize, part.as_ptr() as usize);
    if part.is_empty() {
        Bytes::new()
    } else if p >= w && p + part.len() <= w + whole.len() {
        whole.slice_ref(part)
    } else {
        Bytes::copy_from_slice(part)
    }
}
