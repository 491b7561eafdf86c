//! A log line that may repeat without bound (a malformed PDU, a refused connection, an
//! accept that fails while descriptors are short) is written at most once per period, with
//! how many were held back.

use std::time::{Duration, Instant};

pub struct Every {
    period: Duration,
    last: Option<Instant>,
    held: u64,
}

impl Every {
    pub fn new(period: Duration) -> Every {
        Every { period, last: None, held: 0 }
    }

    /// Some(how many were held back since the last line) when a line is due now.
    pub fn due(&mut self) -> Option<u64> {
        let now = Instant::now();
        if self.last.is_some_and(|l| now.duration_since(l) < self.period) {
            self.held += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.held))
    }
}

/// One limiter the whole process shares, for lines that come from many connections.
pub struct Shared(std::sync::Mutex<Every>);

impl Shared {
    pub const fn new(period: Duration) -> Shared {
        Shared(std::sync::Mutex::new(Every { period, last: None, held: 0 }))
    }

    pub fn due(&self) -> Option<u64> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).due()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_back_within_the_period_and_counts() {
        let mut e = Every::new(Duration::from_secs(3600));
        assert_eq!(e.due(), Some(0));
        assert_eq!(e.due(), None);
        assert_eq!(e.due(), None);
        e.last = Some(Instant::now() - Duration::from_secs(7200));
        assert_eq!(e.due(), Some(2));
    }
}
