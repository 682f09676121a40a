//! Human sizes (`10GiB`, `500MB`, `1.5G`) and durations (`30d`, `1h30m`),
//! parsed by hand: the grammar is small and its exact rules are documented
//! here rather than inherited from a dependency.

use std::time::Duration;

/// Parses a size: a number (decimals allowed) and an optional unit, case
/// insensitive, spaces allowed between them. `B` or none: bytes; `KB`, `MB`,
/// `GB`, `TB`: powers of 1000; `KiB`, `MiB`, `GiB`, `TiB` and the single
/// letters `K`, `M`, `G`, `T` (as `du -h` prints them): powers of 1024.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let bad = || {
        format!("invalid size {text:?}: expected a number and a unit such as 10GiB, 500MB, 1.5G or 4096")
    };
    if num.is_empty() || num.chars().filter(|&c| c == '.').count() > 1 {
        return Err(bad());
    }
    let value: f64 = num.parse().map_err(|_| bad())?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "t" | "tib" => 1 << 40,
        _ => return Err(bad()),
    };
    let bytes = value * mult as f64;
    if !bytes.is_finite() || bytes >= u64::MAX as f64 {
        return Err(format!("invalid size {text:?}: too large"));
    }
    Ok(bytes.round() as u64)
}

/// Parses a duration: one or more number-unit pairs (`30d`, `12h`, `90m`,
/// `1h30m`, `1.5h`, `45s`, `2w`); units `s`, `m` (minutes), `h`, `d`, `w`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || {
        format!("invalid duration {text:?}: expected a number and a unit (s, m, h, d, w) such as 30d, 12h, 90m or 1h30m")
    };
    let t = text.trim();
    if t.is_empty() {
        return Err(bad());
    }
    let mut rest = t;
    let mut total = 0f64;
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let (num, tail) = rest.split_at(n);
        if num.is_empty() || num.chars().filter(|&c| c == '.').count() > 1 {
            return Err(bad());
        }
        let value: f64 = num.parse().map_err(|_| bad())?;
        let u = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, next) = tail.split_at(u);
        let secs = match unit.trim().to_ascii_lowercase().as_str() {
            "s" | "sec" | "secs" => 1.0,
            "m" | "min" | "mins" => 60.0,
            "h" | "hour" | "hours" => 3600.0,
            "d" | "day" | "days" => 86_400.0,
            "w" | "week" | "weeks" => 604_800.0,
            _ => return Err(bad()),
        };
        total += value * secs;
        rest = next.trim_start();
    }
    if !total.is_finite() || total > 1e15 {
        return Err(format!("invalid duration {text:?}: too long"));
    }
    Ok(Duration::from_secs_f64(total))
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
