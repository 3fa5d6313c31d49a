//! Brute-force protection: failed attempts per client address in a sliding window.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Addresses remembered before stale ones are swept; bounds the memory an attacker can cost.
const SWEEP_ABOVE: usize = 10_000;

pub struct FailureLimiter {
    max_failures: usize,
    window: Duration,
    // std Mutex: map operations only, never across an await.
    failures: Mutex<HashMap<IpAddr, VecDeque<Instant>>>,
    /// Counts the refusals.
    refusals: prometheus_client::metrics::counter::Counter,
}

impl FailureLimiter {
    /// Allows `max_failures` failed attempts per address within `window`.
    pub fn new(max_failures: usize, window: Duration) -> Self {
        Self {
            max_failures,
            window,
            failures: Mutex::new(HashMap::new()),
            refusals: prometheus_client::metrics::counter::Counter::default(),
        }
    }

    /// This limiter, counting its refusals on `refusals`.
    pub fn counting(self, refusals: prometheus_client::metrics::counter::Counter) -> Self {
        Self { refusals, ..self }
    }

    /// `Err(wait)` if the address has used up its failures; `wait` is when the oldest expires.
    pub fn check(&self, ip: IpAddr) -> Result<(), Duration> {
        let now = Instant::now();
        let mut failures = self.lock();
        let Some(times) = failures.get_mut(&ip) else {
            return Ok(());
        };
        self.forget_old(times, now);
        if times.len() < self.max_failures {
            return Ok(());
        }
        self.refusals.inc();
        let oldest = *times.front().expect("full, so not empty");
        Err((oldest + self.window).saturating_duration_since(now))
    }

    pub fn record_failure(&self, ip: IpAddr) {
        let now = Instant::now();
        let mut failures = self.lock();
        if failures.len() > SWEEP_ABOVE {
            failures.retain(|_, times| times.back().is_some_and(|t| now - *t < self.window));
        }
        let times = failures.entry(ip).or_default();
        self.forget_old(times, now);
        times.push_back(now);
    }

    fn forget_old(&self, times: &mut VecDeque<Instant>, now: Instant) {
        while times.front().is_some_and(|t| now - *t >= self.window) {
            times.pop_front();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, VecDeque<Instant>>> {
        self.failures
            .lock()
            .expect("rate limiter lock is never held across a panic")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn blocks_after_the_limit_until_the_window_moves_on() {
        let limiter = FailureLimiter::new(3, Duration::from_secs(60));
        let ip: IpAddr = "10.0.0.7".parse().unwrap();
        let other: IpAddr = "10.0.0.8".parse().unwrap();
        for _ in 0..3 {
            assert!(limiter.check(ip).is_ok());
            limiter.record_failure(ip);
            tokio::time::advance(Duration::from_secs(1)).await;
        }
        let wait = limiter.check(ip).unwrap_err();
        assert_eq!(wait, Duration::from_secs(57));
        assert!(
            limiter.check(other).is_ok(),
            "other addresses are not affected"
        );
        tokio::time::advance(wait).await;
        assert!(limiter.check(ip).is_ok());
    }
}
