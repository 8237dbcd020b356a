//! The one clock of both binaries: every service reads the time here, so that tests can run
//! it in simulated time (feature `binary`, for it is tokio's). Wall time (`now`, Unix milliseconds: stored times, expiries, mail dates)
//! and monotonic time (`instant`: latencies, deadlines) come from one source; sleeps and
//! intervals are tokio's.
//!
//! A simulated clock starts at a given wall time and moves with tokio's clock, which a test
//! pauses and advances (`#[tokio::test(start_paused = true)]`, `tokio::time::advance`): wall
//! time, monotonic time, sleeps and intervals then move together, and nothing waits.

use crate::UnixMillis;
use std::time::Duration;

/// Monotonic time: tokio's clock, which a paused test runtime moves (real or simulated, there
/// is only this one). The media path stamps frames with it without holding a [`Clock`].
pub fn monotonic() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
}

/// See the module's documentation. Cheap to clone.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    /// `None`: the system's wall clock. `Some((start, at))`: wall time `start` at tokio's
    /// instant `at`, moving with tokio's clock.
    simulated: Option<(UnixMillis, tokio::time::Instant)>,
}

impl Clock {
    /// The system's clocks.
    pub fn real() -> Clock {
        Clock { simulated: None }
    }

    /// Wall time `start` now, moving with tokio's (pausable) clock.
    pub fn simulated(start: UnixMillis) -> Clock {
        Clock {
            simulated: Some((start, tokio::time::Instant::now())),
        }
    }

    /// Wall time.
    pub fn now(&self) -> UnixMillis {
        match self.simulated {
            None => UnixMillis::now(),
            Some((start, at)) => start.plus(at.elapsed()),
        }
    }

    /// Monotonic time (see [`monotonic`]).
    pub fn instant(&self) -> std::time::Instant {
        monotonic()
    }

    /// Sleeps until monotonic `deadline` (one a sans-I/O core asked to be woken at);
    /// without one, forever.
    pub async fn sleep_until(&self, deadline: Option<std::time::Instant>) {
        match deadline {
            Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
            None => std::future::pending().await,
        }
    }

    /// An interval of `period`, its first tick at once.
    pub fn interval(&self, period: Duration) -> tokio::time::Interval {
        tokio::time::interval(period)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn simulated_wall_time_moves_with_tokios_clock_and_nothing_waits() {
        let clock = Clock::simulated(UnixMillis(1_800_000_000_000));
        let started = std::time::Instant::now();
        tokio::time::sleep(Duration::from_secs(3600)).await;
        assert_eq!(clock.now(), UnixMillis(1_800_003_600_000));
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "an hour passed at once"
        );
    }
}
