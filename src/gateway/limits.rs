//! Per-identity request rate: a token bucket per identity, refilled continuously at
//! `requests_per_minute`, holding at most that many (a burst of one minute's worth).
//! Pure bookkeeping over given instants; the API layer answers 429.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Buckets by identity.
#[derive(Debug, Default)]
pub(crate) struct RateLimiter {
    buckets: HashMap<String, Bucket>,
    swept: Option<Instant>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl RateLimiter {
    /// Takes one request for `who` at `now`; `Err(wait)` when the bucket is empty, with how
    /// long until the next request fits.
    pub(crate) fn take(
        &mut self,
        who: &str,
        per_minute: u32,
        now: Instant,
    ) -> Result<(), Duration> {
        let cap = f64::from(per_minute.max(1));
        let rate = cap / 60.0;
        // Forget identities whose bucket has refilled (at most once a minute).
        if self
            .swept
            .is_none_or(|s| now.duration_since(s) >= Duration::from_secs(60))
        {
            self.swept = Some(now);
            self.buckets
                .retain(|_, b| b.tokens + now.duration_since(b.at).as_secs_f64() * rate < cap);
        }
        let b = self.buckets.entry(who.to_string()).or_insert(Bucket {
            tokens: cap,
            at: now,
        });
        b.tokens = (b.tokens + now.duration_since(b.at).as_secs_f64() * rate).min(cap);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - b.tokens) / rate))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_up_to_the_rate_then_refused_then_refilled() {
        let mut r = RateLimiter::default();
        let t0 = Instant::now();
        for _ in 0..60 {
            assert!(r.take("alice", 60, t0).is_ok());
        }
        let wait = r.take("alice", 60, t0).unwrap_err();
        assert!(
            wait <= Duration::from_secs(1) && wait > Duration::ZERO,
            "{wait:?}"
        );
        // Another identity has its own bucket.
        assert!(r.take("bob", 60, t0).is_ok());
        // One second later, one more request fits (60 a minute).
        assert!(r.take("alice", 60, t0 + Duration::from_secs(1)).is_ok());
        assert!(r.take("alice", 60, t0 + Duration::from_secs(1)).is_err());
    }

    #[test]
    fn full_buckets_are_forgotten() {
        let mut r = RateLimiter::default();
        let t0 = Instant::now();
        r.take("alice", 60, t0).unwrap();
        r.take("bob", 60, t0 + Duration::from_secs(120)).unwrap();
        assert!(!r.buckets.contains_key("alice"));
    }
}
