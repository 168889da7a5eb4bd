//! The time the scheduler measures leases with. Production reads the system clock; a test
//! gives a [`ManualClock`] and moves it, so a lease expires without anyone waiting.

use std::sync::atomic::{AtomicI64, Ordering};

use crate::model::now_ms;

pub trait Clock: Send + Sync {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        now_ms()
    }
}

/// A clock that moves only when told to.
#[derive(Debug)]
pub struct ManualClock {
    now: AtomicI64,
}

impl ManualClock {
    pub fn starting_now() -> ManualClock {
        ManualClock {
            now: AtomicI64::new(now_ms()),
        }
    }

    pub fn advance(&self, millis: i64) {
        self.now.fetch_add(millis, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.now.load(Ordering::SeqCst)
    }
}
