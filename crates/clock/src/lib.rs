//! The lab clock: the one source of time for every part of a lab.
//!
//! Active Directory stamps everything with time: `pwdLastSet`, `badPasswordTime` and
//! `lockoutTime` as FILETIME (100 ns ticks since 1601-01-01 UTC), `whenChanged` as
//! GeneralizedTime with one-second resolution. Tests and scenarios must be able to move
//! that time forward ("two days later the password has expired") without sleeping, so
//! every component reads time from a [`Clock`] handed to it, never from the system.
//!
//! Two modes:
//! - [`Clock::frozen`]: time stands still until [`Clock::advance`] moves it (tests,
//!   scenarios; byte-stable transcripts);
//! - [`Clock::running`]: wall-clock time plus whatever has been advanced (an interactive
//!   lab, where a trainee still wants to "skip ahead two days").
//!
//! Clones share one timeline.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

pub use time::{OffsetDateTime, format_description};

/// FILETIME ticks (100 ns) between 1601-01-01 and 1970-01-01.
const FILETIME_UNIX_EPOCH: i64 = 116_444_736_000_000_000;

/// AD's "never" for `accountExpires` and computed expiry times.
pub const FILETIME_NEVER: i64 = i64::MAX;

#[derive(Clone, Debug)]
pub struct Clock {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// `None`: follow the system clock.
    base: Option<OffsetDateTime>,
    /// Nanoseconds added by `advance`.
    offset_ns: AtomicI64,
}

impl Clock {
    /// A clock that stands still at `start` until advanced.
    pub fn frozen(start: OffsetDateTime) -> Clock {
        Clock { inner: Arc::new(Inner { base: Some(start), offset_ns: AtomicI64::new(0) }) }
    }

    /// A clock that follows the system clock, plus what has been advanced.
    pub fn running() -> Clock {
        Clock { inner: Arc::new(Inner { base: None, offset_ns: AtomicI64::new(0) }) }
    }

    /// The default start of frozen labs: a fixed instant, so transcripts are stable.
    pub fn lab_epoch() -> OffsetDateTime {
        time::macros::datetime!(2026-01-05 09:00:00 UTC)
    }

    pub fn now(&self) -> OffsetDateTime {
        let base = self.inner.base.unwrap_or_else(OffsetDateTime::now_utc);
        base + time::Duration::nanoseconds(self.inner.offset_ns.load(Ordering::SeqCst))
    }

    /// Moves the lab's time forward. Time never goes back.
    pub fn advance(&self, by: Duration) {
        let ns = i64::try_from(by.as_nanos()).unwrap_or(i64::MAX);
        self.inner.offset_ns.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |o| Some(o.saturating_add(ns))).ok();
    }

    pub fn is_frozen(&self) -> bool {
        self.inner.base.is_some()
    }

    /// Now, as AD's FILETIME.
    pub fn filetime(&self) -> i64 {
        to_filetime(self.now())
    }
}

/// 100 ns ticks since 1601-01-01 UTC.
pub fn to_filetime(t: OffsetDateTime) -> i64 {
    let ticks = t.unix_timestamp_nanos() / 100;
    i64::try_from(ticks).unwrap_or(i64::MAX).saturating_add(FILETIME_UNIX_EPOCH)
}

pub fn from_filetime(ft: i64) -> OffsetDateTime {
    let ns = (i128::from(ft) - i128::from(FILETIME_UNIX_EPOCH)) * 100;
    OffsetDateTime::from_unix_timestamp_nanos(ns).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// AD's GeneralizedTime for whenCreated / whenChanged: `YYYYMMDDhhmmss.0Z`, whole seconds.
pub fn generalized_time(t: OffsetDateTime) -> String {
    format!("{:04}{:02}{:02}{:02}{:02}{:02}.0Z", t.year(), u8::from(t.month()), t.day(), t.hour(), t.minute(), t.second())
}

/// Parses AD GeneralizedTime (`YYYYMMDDhhmmss[.f]Z`), as used in filters and LDIF.
pub fn parse_generalized_time(s: &str) -> Option<OffsetDateTime> {
    let digits = s.get(..14)?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) || !s.ends_with('Z') {
        return None;
    }
    let n = |r: std::ops::Range<usize>| digits[r].parse::<u32>().ok();
    let month = time::Month::try_from(u8::try_from(n(4..6)?).ok()?).ok()?;
    let date = time::Date::from_calendar_date(i32::try_from(n(0..4)?).ok()?, month, u8::try_from(n(6..8)?).ok()?).ok()?;
    let t = time::Time::from_hms(u8::try_from(n(8..10)?).ok()?, u8::try_from(n(10..12)?).ok()?, u8::try_from(n(12..14)?).ok()?).ok()?;
    Some(date.with_time(t).assume_utc())
}

/// Parses a lab duration: `90s`, `15m`, `1h`, `2d`, `1w`, or combinations such as `1d12h`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let mut total: u64 = 0;
    let mut num = String::new();
    let mut seen_unit = false;
    for c in s.trim().chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3_600,
            'd' => 86_400,
            'w' => 604_800,
            _ => return Err(format!("`{s}`: unknown unit `{c}` (expected s, m, h, d or w)")),
        };
        let n: u64 = num.parse().map_err(|_| format!("`{s}`: a number must come before `{c}`"))?;
        total = total.saturating_add(n.saturating_mul(unit));
        num.clear();
        seen_unit = true;
    }
    if !num.is_empty() || !seen_unit {
        return Err(format!("`{s}`: expected a duration such as 90s, 15m, 1h, 2d or 1w"));
    }
    Ok(Duration::from_secs(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filetime_matches_samba_transcript() {
        // Samba #7: pwdLastSet 134397848067191680 was set at 2026-11-22 01:33:26 UTC
        // (whenChanged 20261122013326.0Z in the same snapshot).
        let t = from_filetime(134_397_848_067_191_680);
        assert_eq!(generalized_time(t), "20261122013326.0Z");
        assert_eq!(to_filetime(t), 134_397_848_067_191_680);
    }

    #[test]
    fn frozen_clock_moves_only_when_advanced() {
        let c = Clock::frozen(Clock::lab_epoch());
        let a = c.filetime();
        assert_eq!(c.filetime(), a);
        c.clone().advance(Duration::from_secs(2 * 86_400));
        assert_eq!(c.filetime() - a, 2 * 86_400 * 10_000_000);
    }

    #[test]
    fn generalized_time_round_trips() {
        let t = Clock::lab_epoch();
        assert_eq!(generalized_time(t), "20260105090000.0Z");
        assert_eq!(parse_generalized_time("20260105090000.0Z"), Some(t));
        assert_eq!(parse_generalized_time("2026010509000Z"), None);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("2d").unwrap(), Duration::from_secs(172_800));
        assert_eq!(parse_duration("1d12h").unwrap(), Duration::from_secs(129_600));
        assert!(parse_duration("12").unwrap_err().contains("expected a duration"));
        assert!(parse_duration("3y").unwrap_err().contains("unknown unit `y`"));
    }
}
