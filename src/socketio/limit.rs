//! The per-socket bucket on client events ([`super::EventRate`]): an event over it is
//! refused; a socket that keeps hitting it (refused at least once a second) for
//! `disconnect_after` is disconnected.

use std::time::{Duration, Instant};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

/// A quiet second (no refusal) ends a streak of refusals.
const STREAK_GAP: Duration = Duration::from_secs(1);

/// What to do with one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Within the limit.
    Pass,
    /// Over it: refuse the event.
    Refuse,
    /// Over it for too long: disconnect the socket.
    Disconnect,
}

/// One socket's bucket and its current streak of refusals.
pub(crate) struct EventLimiter {
    bucket: DefaultDirectRateLimiter,
    disconnect_after: Duration,
    /// First and last refusal of the current streak.
    streak: Option<(Instant, Instant)>,
}

impl EventLimiter {
    pub(crate) fn new(quota: Quota, disconnect_after: Duration) -> Box<Self> {
        Box::new(EventLimiter {
            bucket: RateLimiter::direct(quota),
            disconnect_after,
            streak: None,
        })
    }

    /// Takes a token for one event arriving `now`.
    pub(crate) fn check(&mut self, now: Instant) -> Verdict {
        if self.bucket.check().is_ok() {
            return Verdict::Pass;
        }
        let first = match self.streak {
            Some((first, last)) if now.saturating_duration_since(last) < STREAK_GAP => first,
            _ => now,
        };
        self.streak = Some((first, now));
        if now.saturating_duration_since(first) >= self.disconnect_after {
            Verdict::Disconnect
        } else {
            Verdict::Refuse
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::num::NonZeroU32;

    fn limiter(burst: u32, after_s: u64) -> Box<EventLimiter> {
        let one = NonZeroU32::MIN;
        let quota = Quota::per_hour(one).allow_burst(NonZeroU32::new(burst).unwrap_or(one));
        EventLimiter::new(quota, Duration::from_secs(after_s))
    }

    #[test]
    fn burst_passes_then_refuses() {
        let mut l = limiter(3, 10);
        let now = Instant::now();
        for _ in 0..3 {
            assert_eq!(l.check(now), Verdict::Pass);
        }
        assert_eq!(l.check(now), Verdict::Refuse);
    }

    #[test]
    fn a_long_streak_disconnects() {
        let mut l = limiter(1, 10);
        let t0 = Instant::now();
        assert_eq!(l.check(t0), Verdict::Pass);
        // refused every half second for 10 s
        for i in 0..20 {
            let at = t0 + Duration::from_millis(500 * i);
            assert_eq!(l.check(at), Verdict::Refuse, "at step {i}");
        }
        assert_eq!(l.check(t0 + Duration::from_secs(10)), Verdict::Disconnect);
    }

    #[test]
    fn a_quiet_second_ends_the_streak() {
        let mut l = limiter(1, 10);
        let t0 = Instant::now();
        assert_eq!(l.check(t0), Verdict::Pass);
        for i in 0..18 {
            assert_eq!(
                l.check(t0 + Duration::from_millis(500 * i)),
                Verdict::Refuse
            );
        }
        // 1.5 s without a refusal: a new streak starts
        let later = t0 + Duration::from_millis(500 * 17 + 1500);
        for i in 0..20 {
            assert_eq!(
                l.check(later + Duration::from_millis(500 * i)),
                Verdict::Refuse
            );
        }
        assert_eq!(
            l.check(later + Duration::from_secs(10)),
            Verdict::Disconnect
        );
    }
}
