//! RFC 3339 timestamps, printed and parsed by `jiff`.

use crate::TraceError;
use jiff::fmt::temporal::{DateTimeParser, DateTimePrinter};
use jiff::fmt::StdFmtWrite;
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A point in time, microseconds since the Unix epoch (UTC), written in the
/// journal as RFC 3339 with microseconds: `2024-05-01T12:00:00.250000Z`.
///
/// From 0000-01-01 to 9999-12-30T22:00Z (what RFC 3339 and jiff can write);
/// values outside are clamped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(i64);

const MICROS_PER_SEC: i64 = 1_000_000;
/// 0000-01-01T00:00:00Z.
const MIN_MICROS: i64 = -62_167_219_200 * MICROS_PER_SEC;
/// 9999-12-30T22:00:00Z, jiff's last whole microsecond (it keeps room
/// for any UTC offset within year 9999).
const MAX_MICROS: i64 = 253_402_207_200 * MICROS_PER_SEC;

impl Timestamp {
    /// The current time.
    pub fn now() -> Timestamp {
        Timestamp::from_system_time(SystemTime::now())
    }

    /// Converts a [`SystemTime`] (clamped to the range above).
    pub fn from_system_time(t: SystemTime) -> Timestamp {
        let micros = match t.duration_since(UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_micros()).unwrap_or(i64::MAX),
            Err(e) => i64::try_from(e.duration().as_micros()).map_or(i64::MIN, |m| -m),
        };
        Timestamp::from_unix_micros(micros)
    }

    /// From microseconds since the Unix epoch (clamped to the range above).
    pub fn from_unix_micros(micros: i64) -> Timestamp {
        Timestamp(micros.clamp(MIN_MICROS, MAX_MICROS))
    }

    /// Microseconds since the Unix epoch.
    pub fn unix_micros(self) -> i64 {
        self.0
    }

    /// Seconds since the Unix epoch, with a fraction.
    pub fn unix_secs_f64(self) -> f64 {
        self.0 as f64 / 1e6
    }

    /// This time moved back by `d` (saturating at year 0000).
    pub fn saturating_sub(self, d: Duration) -> Timestamp {
        let micros = i64::try_from(d.as_micros()).unwrap_or(i64::MAX);
        Timestamp::from_unix_micros(self.0.saturating_sub(micros))
    }

    /// Parses RFC 3339 (`2024-05-01T12:00:00Z`, `2024-05-01T14:00:00.5+02:00`),
    /// or a bare date (`2024-05-01`, meaning midnight UTC). Fractions beyond
    /// microseconds are truncated; a leap second `:60` counts as `:59`.
    pub fn parse(text: &str) -> Result<Timestamp, TraceError> {
        parse(text).map_err(|reason| TraceError::Timestamp {
            text: text.chars().take(64).collect(),
            reason,
        })
    }
}

impl Timestamp {
    fn to_jiff(self) -> jiff::Timestamp {
        // In range by construction: years 0000-9999 are within jiff's.
        jiff::Timestamp::from_microsecond(self.0).unwrap_or(jiff::Timestamp::UNIX_EPOCH)
    }
}

/// Prints `YYYY-MM-DDTHH:MM:SS.ffffffZ`: always six fraction digits.
static PRINTER: DateTimePrinter = DateTimePrinter::new().precision(Some(6));
/// Parses RFC 3339 / RFC 9557 timestamps, which carry an offset.
static PARSER: DateTimeParser = DateTimeParser::new();

impl fmt::Display for Timestamp {
    /// `YYYY-MM-DDTHH:MM:SS.ffffffZ`, what jiff prints (a proptest checks
    /// every value agrees), written directly: every journal line has one.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.rfc3339() {
            Some(text) => f.write_str(std::str::from_utf8(&text).map_err(|_| fmt::Error)?),
            None => PRINTER
                .print_timestamp(&self.to_jiff(), StdFmtWrite(f))
                .map_err(|_| fmt::Error),
        }
    }
}

impl Timestamp {
    /// The RFC 3339 text of a time in years 0000-9999 (`None` outside,
    /// which the clamp rules out), from the proleptic Gregorian calendar
    /// (days to civil date as in Howard Hinnant's `civil_from_days`).
    fn rfc3339(self) -> Option<[u8; 27]> {
        let secs = self.0.div_euclid(MICROS_PER_SEC);
        let micros = self.0.rem_euclid(MICROS_PER_SEC);
        let days = secs.div_euclid(86_400);
        let in_day = secs.rem_euclid(86_400);
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        if !(0..=9999).contains(&year) {
            return None;
        }
        let mut out = *b"0000-00-00T00:00:00.000000Z";
        let mut put = |at: usize, width: usize, mut value: i64| {
            for i in (at..at + width).rev() {
                // `value % 10` is a digit 0-9: the cast cannot truncate.
                out[i] = b'0' + (value % 10) as u8;
                value /= 10;
            }
        };
        put(0, 4, year);
        put(5, 2, month);
        put(8, 2, day);
        put(11, 2, in_day / 3600);
        put(14, 2, in_day / 60 % 60);
        put(17, 2, in_day % 60);
        put(20, 6, micros);
        Some(out)
    }
}

impl serde::Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Timestamp;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an RFC 3339 timestamp")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Timestamp, E> {
                Timestamp::parse(v).map_err(E::custom)
            }
        }
        d.deserialize_str(V)
    }
}

/// RFC 3339 with a date, a time with seconds and an offset, or a bare date.
fn parse(text: &str) -> Result<Timestamp, String> {
    let b = text.as_bytes();
    // jiff also reads shorter forms (no seconds, no time); RFC 3339 and
    // the journal need them all.
    if b.len() == 10 {
        let date: jiff::civil::Date = text.parse().map_err(|e| format!("{e}"))?;
        let t = jiff::tz::Offset::UTC
            .to_timestamp(date.to_datetime(jiff::civil::Time::midnight()))
            .map_err(|e| format!("{e}"))?;
        return Ok(Timestamp::from_unix_micros(t.as_microsecond()));
    }
    let seconds_given = b.get(16) == Some(&b':') && b.get(13) == Some(&b':');
    if !seconds_given || !matches!(b.get(10), Some(b'T' | b't' | b' ')) {
        return Err("the time must be HH:MM:SS".into());
    }
    let t = PARSER.parse_timestamp(text).map_err(|e| format!("{e}"))?;
    Ok(Timestamp::from_unix_micros(t.as_microsecond()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_dates() {
        assert_eq!(Timestamp(0).to_string(), "1970-01-01T00:00:00.000000Z");
        let leap = Timestamp::parse("2000-02-29T12:34:56.789Z").unwrap();
        assert_eq!(leap.unix_micros(), 951_827_696_789_000);
        assert_eq!(leap.to_string(), "2000-02-29T12:34:56.789000Z");
        let before = Timestamp::parse("1969-12-31T23:59:59.5Z").unwrap();
        assert_eq!(before.unix_micros(), -500_000);
        assert_eq!(before.to_string(), "1969-12-31T23:59:59.500000Z");
    }

    #[test]
    fn offsets_and_dates() {
        let a = Timestamp::parse("2024-05-01T14:00:00+02:00").unwrap();
        let b = Timestamp::parse("2024-05-01T12:00:00Z").unwrap();
        let c = Timestamp::parse("2024-05-01t07:30:00.000000001-04:30").unwrap();
        assert_eq!(a, b);
        assert_eq!(b, c);
        let day = Timestamp::parse("2024-05-01").unwrap();
        assert_eq!(day.to_string(), "2024-05-01T00:00:00.000000Z");
        let leap = Timestamp::parse("2016-12-31T23:59:60Z").unwrap();
        assert_eq!(leap.to_string(), "2016-12-31T23:59:59.000000Z");
    }

    #[test]
    fn rejects_bad_text() {
        for bad in [
            "",
            "2024",
            "2024-13-01",
            "2023-02-29",
            "2024-05-01T25:00:00Z",
            "2024-05-01T12:00:00",
            "2024-05-01T12:00:00.Z",
            "2024-05-01T12:00:00Zjunk",
            "2024-05-01T12:00:00+2:00",
            "２０２４-05-01",
        ] {
            assert!(Timestamp::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn prints_as_jiff_at_the_edges() {
        for micros in [
            MIN_MICROS,
            MAX_MICROS,
            0,
            -1,
            951_782_400_000_000, // 2000-02-29
            -62_135_596_800_000_001,
            1_714_564_800_250_000,
        ] {
            let t = Timestamp::from_unix_micros(micros);
            let mut jiff = String::new();
            PRINTER
                .print_timestamp(&t.to_jiff(), StdFmtWrite(&mut jiff))
                .unwrap();
            assert_eq!(t.to_string(), jiff, "{micros}");
        }
    }

    #[test]
    fn clamps_to_four_digit_years() {
        assert_eq!(
            Timestamp::from_unix_micros(i64::MAX).to_string(),
            "9999-12-30T22:00:00.000000Z"
        );
        assert_eq!(
            Timestamp::from_unix_micros(i64::MIN).to_string(),
            "0000-01-01T00:00:00.000000Z"
        );
    }

    proptest! {
        #[test]
        fn prop_rfc3339_round_trips(micros in MIN_MICROS..=MAX_MICROS) {
            let t = Timestamp::from_unix_micros(micros);
            let text = t.to_string();
            prop_assert_eq!(Timestamp::parse(&text).unwrap(), t);
        }

        #[test]
        fn prop_printed_as_jiff_prints(micros in MIN_MICROS..=MAX_MICROS) {
            let t = Timestamp::from_unix_micros(micros);
            let mut jiff = String::new();
            PRINTER.print_timestamp(&t.to_jiff(), StdFmtWrite(&mut jiff)).unwrap();
            prop_assert_eq!(t.to_string(), jiff);
        }

        #[test]
        fn prop_parse_never_panics(s in "\\PC{0,40}") {
            let _ = Timestamp::parse(&s);
        }
    }
}
