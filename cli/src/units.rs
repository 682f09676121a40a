//! Human sizes (`10GiB`, `500MB`, `1.5G`) parsed by `bytesize`, and
//! durations (`30d`, `1h30m`, `1.5h`) parsed by `jiff`'s friendly format.
//! The accepted syntax is documented on each function and in the README.

use std::time::Duration;

/// Parses a size: a number (decimals allowed) and an optional unit, case
/// insensitive, spaces allowed between them. `B` or none: bytes; `KB`, `MB`,
/// `GB`, `TB`: powers of 1000; `KiB`, `MiB`, `GiB`, `TiB` and the single
/// letters `K`, `M`, `G`, `T` (as `du -h` prints them): powers of 1024.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let bad = || {
        format!("invalid size {text:?}: expected a number and a unit such as 10GiB, 500MB, 1.5G or 4096")
    };
    let t = text.trim();
    // bytesize reads a single letter as decimal (`1G` = 10^9); `du -h`
    // and this command line read it as binary.
    let unit_at = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == ' '))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(unit_at);
    if num.trim().is_empty()
        || !num.trim().bytes().all(|c| c.is_ascii_digit() || c == b'.')
        || unit.contains(' ')
    {
        return Err(bad());
    }
    let unit = match unit.to_ascii_lowercase().as_str() {
        u @ ("k" | "m" | "g" | "t") => format!("{u}ib"),
        u => u.to_string(),
    };
    let size: bytesize::ByteSize = format!("{}{unit}", num.trim()).parse().map_err(|_| bad())?;
    if size.as_u64() == u64::MAX {
        return Err(format!("invalid size {text:?}: too large"));
    }
    Ok(size.as_u64())
}

/// Parses a duration in jiff's friendly format: one or more number-unit
/// pairs (`30d`, `12h`, `90m`, `1h30m`, `1h 30m`, `1.5h`, `45s`, `2w`,
/// `3 days`); units `s`, `m` (minutes), `h`, `d` (24 hours), `w` (7 days)
/// and their long names; a fraction only on the last pair.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || {
        format!("invalid duration {text:?}: expected a number and a unit (s, m, h, d, w) such as 30d, 12h, 90m or 1h30m")
    };
    let span: jiff::Span = text.trim().parse().map_err(|_| bad())?;
    if span.is_negative() {
        return Err(bad());
    }
    let total = jiff::SpanTotal::from(jiff::Unit::Second).days_are_24_hours();
    let secs = span.total(total).map_err(|_| bad())?;
    if !secs.is_finite() || secs > 1e15 {
        return Err(format!("invalid duration {text:?}: too long"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// An age for a table: `12s`, `5m`, `3h`, `2d`, `7w`.
pub fn short_age(d: Duration) -> String {
    let s = d.as_secs();
    if s < 60 {
        format!("{s}s")
    } else if s < 3600 {
        format!("{}m", s / 60)
    } else if s < 86_400 {
        format!("{}h", s / 3600)
    } else if s < 14 * 86_400 {
        format!("{}d", s / 86_400)
    } else {
        format!("{}w", s / 604_800)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("10GiB"), Ok(10 << 30));
        assert_eq!(parse_size("10 gib"), Ok(10 << 30));
        assert_eq!(parse_size("500MB"), Ok(500_000_000));
        assert_eq!(parse_size("1.5G"), Ok(3 << 29));
        assert_eq!(parse_size("2k"), Ok(2048));
        assert_eq!(parse_size("1KB"), Ok(1000));
        assert_eq!(parse_size("7B"), Ok(7));
        assert_eq!(parse_size("0.5KiB"), Ok(512));
        assert_eq!(parse_size(" 3T "), Ok(3 << 40));
    }

    #[test]
    fn bad_sizes() {
        for bad in [
            "",
            "GiB",
            "10XB",
            "1.2.3G",
            "-5G",
            "10 G B",
            "1e9",
            "99999999999999999999T",
        ] {
            assert!(parse_size(bad).is_err(), "{bad:?} accepted");
        }
        assert!(parse_size("10XB").unwrap_err().contains("10GiB"));
    }

    #[test]
    fn durations() {
        let h = 3600;
        assert_eq!(parse_duration("30d"), Ok(Duration::from_secs(30 * 24 * h)));
        assert_eq!(parse_duration("12h"), Ok(Duration::from_secs(12 * h)));
        assert_eq!(parse_duration("90m"), Ok(Duration::from_secs(90 * 60)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(h + 1800)));
        assert_eq!(parse_duration("1h 30m"), Ok(Duration::from_secs(h + 1800)));
        assert_eq!(parse_duration("1.5h"), Ok(Duration::from_secs(h + 1800)));
        assert_eq!(parse_duration("45s"), Ok(Duration::from_secs(45)));
        assert_eq!(parse_duration("2w"), Ok(Duration::from_secs(14 * 24 * h)));
        assert_eq!(
            parse_duration("1 hour 30 minutes"),
            Ok(Duration::from_secs(h + 1800))
        );
        assert_eq!(
            parse_duration("3 days"),
            Ok(Duration::from_secs(3 * 24 * h))
        );
    }

    #[test]
    fn bad_durations() {
        for bad in ["", "30", "d", "10y", "1h30", "1..5h", "-3d", "1e400d"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn ages() {
        assert_eq!(short_age(Duration::from_secs(12)), "12s");
        assert_eq!(short_age(Duration::from_secs(300)), "5m");
        assert_eq!(short_age(Duration::from_secs(3 * 3600 + 5)), "3h");
        assert_eq!(short_age(Duration::from_secs(2 * 86_400)), "2d");
        assert_eq!(short_age(Duration::from_secs(30 * 86_400)), "4w");
    }

    proptest! {
        #[test]
        fn prop_size_with_unit_round_trips(n in 0u64..1_000_000, unit in 0usize..9) {
            let (name, mult) = [("", 1u64), ("B", 1), ("KB", 1000), ("KiB", 1024), ("K", 1024),
                ("MB", 1_000_000), ("MiB", 1 << 20), ("G", 1 << 30), ("GiB", 1 << 30)][unit];
            prop_assert_eq!(parse_size(&format!("{n}{name}")), Ok(n * mult));
        }

        #[test]
        fn prop_duration_pairs_add_up(h in 0u64..10_000, m in 0u64..10_000, s in 0u64..10_000) {
            let text = format!("{h}h{m}m{s}s");
            prop_assert_eq!(parse_duration(&text), Ok(Duration::from_secs(h * 3600 + m * 60 + s)));
        }

        #[test]
        fn prop_parsers_never_panic(text in "\\PC{0,20}") {
            let _ = parse_size(&text);
            let _ = parse_duration(&text);
        }
    }
}
