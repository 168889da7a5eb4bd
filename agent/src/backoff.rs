//! How long the agent waits before trying the coordinator again: exponential from 200 ms,
//! capped at 5 s, with jitter.
//!
//! The jitter is "equal jitter": half of each step is fixed, half is random. Agents that
//! lost the coordinator at the same moment (it restarted) then come back spread over the
//! step instead of all at once, and no wait shrinks below half its step, so that a
//! session failing the moment it opens (a message the agent cannot decode) never turns
//! into a hot loop. The caller resets the policy after a healthy session only, never
//! merely because a connection opened.

use std::time::Duration;

/// The first wait's step.
const FIRST: Duration = Duration::from_millis(200);
/// No step grows past this.
const CAP: Duration = Duration::from_secs(5);

/// The waits between attempts of one kind (registering, opening a session, reporting).
#[derive(Debug)]
pub struct Backoff {
    step: Duration,
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff { step: FIRST }
    }
}

impl Backoff {
    /// Starts again from the shortest wait (after a healthy session).
    pub fn reset(&mut self) {
        self.step = FIRST;
    }

    /// The next wait, random within its step.
    fn next_delay(&mut self) -> Duration {
        self.delay_for(rand::random())
    }

    /// Sleeps for [`Self::next_delay`].
    pub async fn wait(&mut self) {
        tokio::time::sleep(self.next_delay()).await;
    }

    /// The next wait given `unit` in `[0, 1]`: between half the step and the whole of it.
    fn delay_for(&mut self, unit: f64) -> Duration {
        let step = self.step;
        self.step = (step * 2).min(CAP);
        step.mul_f64(0.5 + unit.clamp(0.0, 1.0) / 2.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn millis(backoff: &mut Backoff, unit: f64, count: usize) -> Vec<u128> {
        (0..count)
            .map(|_| backoff.delay_for(unit).as_millis())
            .collect()
    }

    #[test]
    fn waits_double_up_to_the_cap_and_stay_there() {
        let mut backoff = Backoff::default();
        assert_eq!(
            millis(&mut backoff, 1.0, 8),
            [200, 400, 800, 1600, 3200, 5000, 5000, 5000]
        );
    }

    #[test]
    fn jitter_never_takes_a_wait_below_half_its_step() {
        let mut backoff = Backoff::default();
        assert_eq!(
            millis(&mut backoff, 0.0, 7),
            [100, 200, 400, 800, 1600, 2500, 2500]
        );
        for _ in 0..1000 {
            let delay = backoff.next_delay();
            assert!(
                (CAP / 2..=CAP).contains(&delay),
                "{delay:?} outside the capped step"
            );
        }
    }

    #[test]
    fn a_session_failing_at_once_reconnects_at_most_a_few_times_a_minute() {
        // The loop of issue 17: every session dropped as it opened. The worst case
        // (every random draw at its lowest) over one minute.
        let mut backoff = Backoff::default();
        let mut elapsed = Duration::ZERO;
        let mut attempts = 0;
        while elapsed < Duration::from_secs(60) {
            elapsed += backoff.delay_for(0.0);
            attempts += 1;
        }
        assert!(attempts <= 30, "{attempts} reconnects in a minute");
    }

    #[test]
    fn reset_starts_again_from_the_shortest_wait() {
        let mut backoff = Backoff::default();
        millis(&mut backoff, 1.0, 6);
        backoff.reset();
        assert_eq!(millis(&mut backoff, 1.0, 2), [200, 400]);
    }
}
