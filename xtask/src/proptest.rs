//! `cargo xtask proptest [--cases N]`: every property test in the workspace.
//!
//! Convention: property tests are named `prop_*` (the function name), wherever
//! they live (unit tests or `tests/`), so a name filter finds them all. Each
//! crate runs in release mode with `PROPTEST_CASES=N`; the task prints a count
//! per crate and, on failure, proptest's minimal input and seed lines.

use crate::shell;

const CRATES: [&str; 6] = [
    "jobcache-hash",
    "jobcache-persist",
    "jobcache-store",
    "jobcache-trace",
    "jobcache-memo",
    "jobcache-cli",
];

pub fn run(args: &[String]) -> Result<(), String> {
    let cases = parse_cases(args)?;
    let mut failures = Vec::new();
    let mut summary = Vec::new();
    for krate in CRATES {
        let (ok, output) = shell::run_captured(
            shell::cargo()
                .env("PROPTEST_CASES", cases.to_string())
                .args(["test", "--release", "-p", krate, "--", "prop_"]),
        )?;
        let (passed, failed) = count_results(&output);
        summary.push(format!("{krate:<20} {passed:>4} passed {failed:>4} failed"));
        if !ok {
            let seeds: Vec<&str> = output
                .lines()
                .filter(|l| l.contains("minimal failing input") || l.contains("seed"))
                .collect();
            failures.push(format!("{krate}:\n    {}", seeds.join("\n    ")));
        }
    }
    println!("property tests with PROPTEST_CASES={cases}:");
    for line in &summary {
        println!("  {line}");
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "property tests failed in\n  {}",
            failures.join("\n  ")
        ))
    }
}

fn parse_cases(args: &[String]) -> Result<u64, String> {
    match args {
        [] => Ok(10_000),
        [flag, n] if flag == "--cases" => n
            .parse()
            .map_err(|_| format!("--cases takes a whole number, got `{n}`")),
        _ => Err(format!(
            "usage: cargo xtask proptest [--cases N], got `{}`",
            args.join(" ")
        )),
    }
}

/// Sums the `test result:` lines of every test binary of one crate.
fn count_results(output: &str) -> (u64, u64) {
    let number_before = |line: &str, word: &str| -> u64 {
        let words: Vec<&str> = line.split_whitespace().collect();
        words
            .windows(2)
            .find(|w| w[1].trim_end_matches([';', ',']) == word)
            .and_then(|w| w[0].parse().ok())
            .unwrap_or(0)
    };
    output
        .lines()
        .filter(|l| l.starts_with("test result:"))
        .fold((0, 0), |(p, f), line| {
            (
                p + number_before(line, "passed"),
                f + number_before(line, "failed"),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_every_test_binary() {
        let out = "test result: ok. 3 passed; 0 failed; 0 ignored\n\
                   test result: FAILED. 1 passed; 2 failed; 0 ignored\n";
        assert_eq!(count_results(out), (4, 2));
    }

    #[test]
    fn parses_cases_flag() {
        assert_eq!(parse_cases(&[]), Ok(10_000));
        assert_eq!(parse_cases(&["--cases".into(), "50".into()]), Ok(50));
        assert!(parse_cases(&["--cases".into(), "x".into()]).is_err());
        assert!(parse_cases(&["--wat".into()]).is_err());
    }
}
