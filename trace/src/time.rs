//! RFC 3339 timestamps, converted by hand (Howard Hinnant's civil-date
//! algorithms), so that the journal needs no date-time dependency.

use crate::TraceError;
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A point in time, microseconds since the Unix epoch (UTC), written in the
/// journal as RFC 3339 with microseconds: `2024-05-01T12:00:00.250000Z`.
///
/// Years 0000 to 9999 (what RFC 3339 can write); values outside are clamped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(i64);

const MICROS_PER_SEC: i64 = 1_000_000;
const SECS_PER_DAY: i64 = 86_400;
/// 0000-01-01T00:00:00Z.
const MIN_MICROS: i64 = -62_167_219_200 * MICROS_PER_SEC;
/// 9999-12-31T23:59:59.999999Z.
const MAX_MICROS: i64 = 253_402_300_800 * MICROS_PER_SEC - 1;

impl Timestamp {
    /// The current time.
    pub fn now() -> Timestamp {
        Timestamp::from_system_time(SystemTime::now())
    }

    /// Converts a [`SystemTime`] (clamped to years 0000–9999).
    pub fn from_system_time(t: SystemTime) -> Timestamp {
        let micros = match t.duration_since(UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_micros()).unwrap_or(i64::MAX),
            Err(e) => i64::try_from(e.duration().as_micros()).map_or(i64::MIN, |m| -m),
        };
        Timestamp::from_unix_micros(micros)
    }

    /// From microseconds since the Unix epoch (clamped to years 0000–9999).
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
        parse(text.as_bytes()).map_err(|reason| TraceError::Timestamp {
            text: text.chars().take(64).collect(),
            reason,
        })
    }
}

impl Timestamp {
    /// `YYYY-MM-DDTHH:MM:SS.ffffffZ` as ASCII bytes, without the formatting
    /// machinery (this runs on every journal append).
    fn rfc3339(self) -> [u8; 27] {
        let secs = self.0.div_euclid(MICROS_PER_SEC);
        let micros = self.0.rem_euclid(MICROS_PER_SEC);
        let days = secs.div_euclid(SECS_PER_DAY);
        let sod = secs.rem_euclid(SECS_PER_DAY);
        let (y, m, d) = civil_from_days(days);
        let mut out = *b"0000-00-00T00:00:00.000000Z";
        let mut put = |at: usize, width: usize, mut v: i64| {
            for i in (at..at + width).rev() {
                if let Some(b) = out.get_mut(i) {
                    *b = b'0' + v.rem_euclid(10) as u8;
                }
                v /= 10;
            }
        };
        put(0, 4, y);
        put(5, 2, i64::from(m));
        put(8, 2, i64::from(d));
        put(11, 2, sod / 3600);
        put(14, 2, sod / 60 % 60);
        put(17, 2, sod % 60);
        put(20, 6, micros);
        out
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bytes = self.rfc3339();
        f.write_str(std::str::from_utf8(&bytes).map_err(|_| fmt::Error)?)
    }
}

impl serde::Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let bytes = self.rfc3339();
        match std::str::from_utf8(&bytes) {
            Ok(text) => s.serialize_str(text),
            Err(_) => s.collect_str(self),
        }
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

/// Days since 1970-01-01 of a proleptic Gregorian date.
pub(crate) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian date of a day number since 1970-01-01.
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    // Both are small and non-negative: day 1..=31, month 1..=12.
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn digits(b: &[u8], at: usize, n: usize) -> Result<i64, &'static str> {
    let s = b.get(at..at + n).ok_or("text ends early")?;
    s.iter().try_fold(0i64, |acc, &c| {
        if c.is_ascii_digit() {
            Ok(acc * 10 + i64::from(c - b'0'))
        } else {
            Err("a digit was expected")
        }
    })
}

fn expect(b: &[u8], at: usize, what: &[u8], reason: &'static str) -> Result<(), &'static str> {
    match b.get(at) {
        Some(c) if what.contains(c) => Ok(()),
        _ => Err(reason),
    }
}

fn parse(b: &[u8]) -> Result<Timestamp, &'static str> {
    let y = digits(b, 0, 4)?;
    expect(b, 4, b"-", "'-' expected after the year")?;
    let m = digits(b, 5, 2)? as u32;
    expect(b, 7, b"-", "'-' expected after the month")?;
    let d = digits(b, 8, 2)? as u32;
    if !(1..=12).contains(&m) {
        return Err("month out of range");
    }
    if d < 1 || d > days_in_month(y, m) {
        return Err("day out of range");
    }
    let days = days_from_civil(y, m, d);
    if b.len() == 10 {
        return Ok(Timestamp::from_unix_micros(
            days * SECS_PER_DAY * MICROS_PER_SEC,
        ));
    }
    expect(b, 10, b"Tt ", "'T' expected between date and time")?;
    let hh = digits(b, 11, 2)?;
    expect(b, 13, b":", "':' expected after the hour")?;
    let mm = digits(b, 14, 2)?;
    expect(b, 16, b":", "':' expected after the minutes")?;
    let ss = digits(b, 17, 2)?;
    if hh > 23 || mm > 59 || ss > 60 {
        return Err("time of day out of range");
    }
    let mut at = 19;
    let mut micros = 0i64;
    if b.get(at) == Some(&b'.') {
        at += 1;
        let start = at;
        while let Some(c) = b.get(at).filter(|c| c.is_ascii_digit()) {
            if at - start < 6 {
                micros = micros * 10 + i64::from(c - b'0');
            }
            at += 1;
        }
        if at == start {
            return Err("digits expected after '.'");
        }
        for _ in (at - start)..6 {
            micros *= 10;
        }
    }
    let offset_secs = match b.get(at) {
        Some(b'Z' | b'z') => {
            at += 1;
            0
        }
        Some(&sign @ (b'+' | b'-')) => {
            let oh = digits(b, at + 1, 2)?;
            expect(b, at + 3, b":", "':' expected in the UTC offset")?;
            let om = digits(b, at + 4, 2)?;
            if oh > 23 || om > 59 {
                return Err("UTC offset out of range");
            }
            at += 6;
            let off = oh * 3600 + om * 60;
            if sign == b'-' {
                -off
            } else {
                off
            }
        }
        _ => return Err("'Z' or a UTC offset expected"),
    };
    if at != b.len() {
        return Err("unexpected text after the timestamp");
    }
    let secs = days * SECS_PER_DAY + hh * 3600 + mm * 60 + ss.min(59) - offset_secs;
    Ok(Timestamp::from_unix_micros(secs * MICROS_PER_SEC + micros))
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
        assert_eq!(days_from_civil(2024, 3, 1), 19_783);
        assert_eq!(civil_from_days(19_783), (2024, 3, 1));
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
    fn clamps_to_four_digit_years() {
        assert_eq!(
            Timestamp::from_unix_micros(i64::MAX).to_string(),
            "9999-12-31T23:59:59.999999Z"
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
        fn prop_civil_days_round_trip(days in -719_528i64..2_932_896) {
            let (y, m, d) = civil_from_days(days);
            prop_assert!((1..=12).contains(&m) && d >= 1 && d <= days_in_month(y, m));
            prop_assert_eq!(days_from_civil(y, m, d), days);
        }

        #[test]
        fn prop_parse_never_panics(s in "\\PC{0,40}") {
            let _ = Timestamp::parse(&s);
        }
    }
}
