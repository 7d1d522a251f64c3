//! When a stream's held-back tail is let go. Pure: the caller owns the clock and asks.
//!
//! A [`super::MaskStream`] holds back a tail that could still be part of a secret. A tool
//! that pauses mid-value (an ssh link, `kubectl logs -f`, a slow query printing row by row,
//! a person typing) must not get it shown in clear, and an interactive prompt must not
//! stall. So, counted from the stream's last output:
//!
//! - after [`Holdback::clear_after`] of quiet, the tail is released as far as it holds no
//!   part of a value yet ([`Release::Clear`]): a prompt, ordinary typing, `password=`, the
//!   first digits of a number, values complete as they stand (masked);
//! - after [`Holdback::mask_after`] of quiet, the rest goes out too, the part of a value
//!   still being written masked as that value ([`Release::Masked`]); whatever continues it
//!   later is masked as its continuation.
//!
//! Either way a value never appears whole: what goes out in clear before a value is
//! decided is at most its prefix before the anchor or value start (see
//! [`super::MaskStream`]), and the stream remembers the open match so that its rest is
//! masked whenever it comes.

use std::time::{Duration, Instant};

use super::Release;

/// How long a stream's tail may be held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Holdback {
    pub clear_after: Duration,
    pub mask_after: Duration,
}

impl Holdback {
    /// A tool on pipes (agents, CI, scripts): nobody types, so part of a value waits a
    /// second for the rest before it goes out masked.
    pub const PIPE: Holdback = Holdback {
        clear_after: Duration::from_millis(15),
        mask_after: Duration::from_secs(1),
    };

    /// A tool under a terminal: ordinary typing echoes after a few milliseconds; a value
    /// being typed or written waits a quarter second for the next byte before what there
    /// is of it goes out masked.
    pub const PTY: Holdback = Holdback {
        clear_after: Duration::from_millis(10),
        mask_after: Duration::from_millis(250),
    };
}

/// The holdback of one stream: since when it has been quiet with a tail held, and whether
/// the tail was already released as far as [`Release::Clear`] goes.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Hold {
    since: Option<Instant>,
    cleared: bool,
}

impl Hold {
    /// The stream took output at `now`; `held` says whether its tail is held now.
    pub fn pushed(&mut self, now: Instant, held: bool) {
        self.since = held.then_some(now);
        self.cleared = false;
    }

    /// A release was made; `held` says whether a tail is still held.
    pub fn released(&mut self, how: Release, held: bool) {
        if !held {
            self.since = None;
        }
        self.cleared |= how == Release::Clear;
    }

    /// When the next release is due, and how far it goes.
    pub fn due(&self, holdback: &Holdback) -> Option<(Instant, Release)> {
        let since = self.since?;
        Some(if self.cleared {
            (since + holdback.mask_after, Release::Masked)
        } else {
            (since + holdback.clear_after, Release::Clear)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_tail_is_cleared_then_masked_counting_from_the_last_output() {
        let t0 = Instant::now();
        let hb = Holdback::PIPE;
        let mut h = Hold::default();
        assert_eq!(h.due(&hb), None);
        h.pushed(t0, true);
        assert_eq!(h.due(&hb), Some((t0 + hb.clear_after, Release::Clear)));
        h.released(Release::Clear, true);
        assert_eq!(h.due(&hb), Some((t0 + hb.mask_after, Release::Masked)));
        // More output starts the quiet period over.
        let t1 = t0 + Duration::from_millis(500);
        h.pushed(t1, true);
        assert_eq!(h.due(&hb), Some((t1 + hb.clear_after, Release::Clear)));
        h.released(Release::Clear, false);
        assert_eq!(h.due(&hb), None);
        h.pushed(t1, false);
        assert_eq!(h.due(&hb), None);
    }

    #[test]
    fn pipes_wait_longer_than_a_terminal() {
        assert!(Holdback::PIPE.mask_after > Holdback::PTY.mask_after);
        assert!(Holdback::PTY.clear_after <= Duration::from_millis(15));
    }
}
