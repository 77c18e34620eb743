//! Pacing of a service's calls: at most a given rate, evenly spaced, and slower after a
//! throttle. The reconciler lists Identity Center assignments through one [`Pace`], so an
//! organization of any size stays under the service's rate instead of bursting into it.
//!
//! [`slot`] is the pure decision (the clock passed in); [`Pace`] keeps the next free slot.

use std::time::Duration;

use tokio::time::Instant;

/// The slowest a throttled pace gets, as a multiple of its configured interval.
const MAX_SLOWDOWN: u32 = 16;

/// When a call asked for at `now` may go, and the next free slot after it.
pub fn slot(next_free: Instant, now: Instant, interval: Duration) -> (Instant, Instant) {
    let at = next_free.max(now);
    (at, at + interval)
}

#[derive(Debug)]
struct State {
    next_free: Instant,
    /// The configured interval times this (1 until a throttle).
    slowdown: u32,
}

/// At most `per_second` calls a second, evenly spaced, shared by every task that holds it.
#[derive(Debug)]
pub struct Pace {
    interval: Duration,
    state: std::sync::Mutex<State>,
}

impl Pace {
    pub fn per_second(per_second: f64) -> Self {
        let per_second = if per_second.is_finite() && per_second > 0.0 {
            per_second
        } else {
            1.0
        };
        Pace {
            interval: Duration::from_secs_f64(1.0 / per_second),
            state: std::sync::Mutex::new(State {
                next_free: Instant::now(),
                slowdown: 1,
            }),
        }
    }

    /// Waits for the next free slot.
    pub async fn wait(&self) {
        let at = {
            let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
            let (at, next) = slot(s.next_free, Instant::now(), self.interval * s.slowdown);
            s.next_free = next;
            at
        };
        tokio::time::sleep_until(at).await;
    }

    /// The service said "too fast": halve the rate (down to 1/16 of the configured one).
    pub fn throttled(&self) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.slowdown = (s.slowdown * 2).min(MAX_SLOWDOWN);
    }

    /// A call went through: recover a step towards the configured rate.
    pub fn succeeded(&self) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.slowdown = (s.slowdown / 2).max(1);
    }

    /// The interval between two calls now.
    pub fn interval(&self) -> Duration {
        let s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        self.interval * s.slowdown
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_are_spaced_by_the_interval() {
        let t0 = Instant::now();
        let gap = Duration::from_millis(100);
        let (first, next) = slot(t0, t0, gap);
        assert_eq!(first, t0, "an idle pace lets the first call go at once");
        let (second, next) = slot(next, t0, gap);
        assert_eq!(second, t0 + gap, "a burst waits its turn");
        let later = t0 + Duration::from_secs(5);
        let (third, _) = slot(next, later, gap);
        assert_eq!(third, later, "idle time is not saved up for a burst");
    }

    #[test]
    fn a_throttle_slows_the_pace_and_success_recovers_it() {
        let pace = Pace::per_second(10.0);
        assert_eq!(pace.interval(), Duration::from_millis(100));
        pace.throttled();
        assert_eq!(pace.interval(), Duration::from_millis(200));
        for _ in 0..10 {
            pace.throttled();
        }
        assert_eq!(
            pace.interval(),
            Duration::from_millis(1600),
            "at most 16x slower"
        );
        pace.succeeded();
        assert_eq!(pace.interval(), Duration::from_millis(800));
        assert_eq!(Pace::per_second(0.0).interval(), Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn twenty_calls_at_ten_a_second_take_two_seconds() {
        let pace = Pace::per_second(10.0);
        let t0 = Instant::now();
        for _ in 0..20 {
            pace.wait().await;
        }
        assert_eq!(Instant::now() - t0, Duration::from_millis(1900));
    }
}
