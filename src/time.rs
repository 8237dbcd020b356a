//! Wall-clock time as the domain sees it: milliseconds since the Unix epoch.
//!
//! Stored as a plain integer so SQLite and PostgreSQL hold it alike, and passed into decisions
//! as `now` so that tests can use any clock they like.

use serde::{Deserialize, Serialize};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Milliseconds since 1970-01-01T00:00:00Z.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UnixMillis(pub i64);

impl UnixMillis {
    /// The system clock's reading. Only binaries call this; decisions take `now` as an argument.
    pub fn now() -> Self {
        let since = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        UnixMillis(i64::try_from(since.as_millis()).unwrap_or(i64::MAX))
    }

    /// This instant moved forward by `d` (saturating).
    pub fn plus(self, d: Duration) -> Self {
        UnixMillis(
            self.0
                .saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
        )
    }

    /// How long after `earlier` this is; zero if it is not after it.
    pub fn since(self, earlier: UnixMillis) -> Duration {
        Duration::from_millis(u64::try_from(self.0.saturating_sub(earlier.0)).unwrap_or(0))
    }

    /// A time as RFC 3339 writes it (any offset); `None` for anything else.
    pub fn parse_rfc3339(s: &str) -> Option<UnixMillis> {
        let t = ::time::OffsetDateTime::parse(s, &::time::format_description::well_known::Rfc3339)
            .ok()?;
        i64::try_from(t.unix_timestamp_nanos() / 1_000_000)
            .ok()
            .map(UnixMillis)
    }

    /// RFC 3339 in UTC with millisecond precision, as the API shows times.
    pub fn to_rfc3339(self) -> String {
        let nanos = i128::from(self.0) * 1_000_000;
        match ::time::OffsetDateTime::from_unix_timestamp_nanos(nanos) {
            Ok(t) => {
                let format = ::time::macros::format_description!(
                    "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
                );
                t.format(&format).unwrap_or_default()
            }
            Err(_) => String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_is_read_with_any_offset_and_nothing_else() {
        let t = UnixMillis(1_700_000_000_123);
        assert_eq!(UnixMillis::parse_rfc3339(&t.to_rfc3339()), Some(t));
        assert_eq!(
            UnixMillis::parse_rfc3339("2023-11-15T07:13:20.123+09:00"),
            Some(t)
        );
        for bad in ["", "2023-11-15", "yesterday", "2023-11-15T25:00:00Z"] {
            assert_eq!(UnixMillis::parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn arithmetic_saturates_and_formats() {
        let t = UnixMillis(1_700_000_000_123);
        assert_eq!(t.plus(Duration::from_secs(2)).0, 1_700_000_002_123);
        assert_eq!(
            t.plus(Duration::from_secs(2)).since(t),
            Duration::from_secs(2)
        );
        assert_eq!(t.since(t.plus(Duration::from_secs(1))), Duration::ZERO);
        assert_eq!(t.to_rfc3339(), "2023-11-14T22:13:20.123Z");
        assert_eq!(UnixMillis(i64::MAX).plus(Duration::MAX).0, i64::MAX);
    }
}
