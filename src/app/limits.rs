//! The application's own rate limits (docs/configuration.md): `chat:send` and DMs per user, and
//! `room:sync` answers in preparation per socket. The per-socket event bucket lives in the
//! `socketio` layer (`SocketIo::event_rate`).

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::error::{AppError, Code};
use crate::config::LimitsConfig;

/// Checks between two sweeps of idle users out of the keyed bucket.
const SWEEP_EVERY: u32 = 4096;

/// A bucket per user on the messages they send (`chat:send`, DMs), on this node.
pub struct UserSends {
    buckets: Option<Arc<DefaultKeyedRateLimiter<String>>>,
    checks: AtomicU32,
    /// The limit's name in `rt_limit_refusals_total`.
    name: &'static str,
}

impl UserSends {
    /// From `limits.user_sends_per_s` / `user_sends_burst` (0: no limit).
    pub fn new(cfg: &LimitsConfig) -> Self {
        Self::with(cfg.user_sends_per_s, cfg.user_sends_burst, "user_sends")
    }

    /// HTTP API requests per user: the per-socket event rate (`limits.events_per_s` /
    /// `events_burst`), applied per user.
    pub fn requests(cfg: &LimitsConfig) -> Self {
        Self::with(cfg.events_per_s, cfg.events_burst, "requests")
    }

    fn with(per_s: u32, burst: u32, name: &'static str) -> Self {
        let quota = NonZeroU32::new(per_s)
            .zip(NonZeroU32::new(burst))
            .map(|(rate, burst)| Quota::per_second(rate).allow_burst(burst));
        let buckets = quota.map(|q| Arc::new(RateLimiter::keyed(q)));
        if let Some(b) = &buckets {
            let map = if name == "requests" {
                "request_buckets"
            } else {
                "user_send_buckets"
            };
            crate::metrics::track_weak(map, b, |b| b.len());
        }
        UserSends {
            buckets,
            checks: AtomicU32::new(0),
            name,
        }
    }

    /// One message from `user`: `RATE_LIMITED` when over the limit.
    pub fn check(&self, user: &str) -> Result<(), AppError> {
        let Some(b) = &self.buckets else {
            return Ok(());
        };
        if self.checks.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            // users whose bucket is full again hold nothing worth keeping
            b.retain_recent();
            b.shrink_to_fit();
        }
        if b.check_key(&user.to_owned()).is_ok() {
            return Ok(());
        }
        crate::metrics::get().refused(self.name);
        Err(AppError::refused(
            Code::RateLimited,
            if self.name == "requests" {
                "too many requests, slow down"
            } else {
                "too many messages, slow down"
            },
        ))
    }
}

/// `room:sync` answers being prepared, per socket id.
#[derive(Clone)]
pub struct SyncSlots {
    max: usize,
    busy: Arc<Mutex<HashMap<String, usize>>>,
}

/// A taken slot; dropping it frees the slot.
pub struct SyncSlot {
    slots: SyncSlots,
    socket: String,
}

impl SyncSlots {
    /// At most `limits.sync_in_flight` per socket.
    pub fn new(cfg: &LimitsConfig) -> Self {
        let busy: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
        crate::metrics::track_weak("sync_slots", &busy, |b| {
            b.lock().unwrap_or_else(|p| p.into_inner()).len()
        });
        SyncSlots {
            max: cfg.sync_in_flight,
            busy,
        }
    }

    /// A slot for `socket`, or `RATE_LIMITED` when all of its slots are taken.
    pub fn take(&self, socket: &str) -> Result<SyncSlot, AppError> {
        let mut busy = self.busy.lock().unwrap_or_else(|p| p.into_inner());
        let n = busy.entry(socket.to_owned()).or_insert(0);
        if *n >= self.max {
            crate::metrics::get().refused("sync");
            return Err(AppError::refused(
                Code::RateLimited,
                "a room:sync or rooms:list is already under way, wait for its answer",
            ));
        }
        *n += 1;
        Ok(SyncSlot {
            slots: self.clone(),
            socket: socket.to_owned(),
        })
    }
}

impl Drop for SyncSlot {
    fn drop(&mut self) {
        let mut busy = self.slots.busy.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = busy.get_mut(&self.socket) {
            *n -= 1;
            if *n == 0 {
                busy.remove(&self.socket);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(per_s: u32, burst: u32, syncs: usize) -> LimitsConfig {
        LimitsConfig {
            user_sends_per_s: per_s,
            user_sends_burst: burst,
            sync_in_flight: syncs,
            ..LimitsConfig::default()
        }
    }

    #[test]
    fn user_sends_are_bucketed_per_user() {
        let l = UserSends::new(&cfg(1, 3, 2));
        for _ in 0..3 {
            assert!(l.check("alice").is_ok());
        }
        let e = l.check("alice").unwrap_err();
        assert_eq!(e.code(), Code::RateLimited);
        assert!(
            l.check("bob").is_ok(),
            "another user has a bucket of their own"
        );
    }

    #[test]
    fn zero_means_no_limit() {
        let l = UserSends::new(&cfg(0, 40, 2));
        for _ in 0..1000 {
            assert!(l.check("alice").is_ok());
        }
    }

    #[test]
    fn sync_slots_are_freed_when_dropped() {
        let s = SyncSlots::new(&cfg(1, 1, 2));
        let a = s.take("sock").unwrap();
        let b = s.take("sock").unwrap();
        assert_eq!(
            s.take("sock").err().map(|e| e.code()),
            Some(Code::RateLimited)
        );
        assert!(s.take("other").is_ok());
        drop(a);
        let _c = s.take("sock").unwrap();
        drop(b);
        drop(_c);
        assert!(s.busy.lock().unwrap().is_empty(), "no entry left behind");
    }
}
