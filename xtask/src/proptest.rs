//! `cargo xtask proptest [--cases N]`: every property test in the workspace.
//!
//! Convention: property tests are named `prop_*` (the function name), wherever
//! they live (unit tests or `tests/`), so a name filter finds them all. Each
//! publishable crate of the workspace (read from `cargo metadata`, so a new
//! crate is included without editing this file) runs in release mode with
//! `PROPTEST_CASES=N`; the task prints a count per crate and, on failure,
//! proptest's minimal input and the seed lines (`cc <seed>`) to add to the
//! crate's `proptest-regressions/` file.
//!
//! `PROPTEST_CASES` only reaches tests whose config starts from
//! `ProptestConfig::default()` (which reads it); a test that sets `cases`
//! itself must read the variable too (see MAINTAINING.md).

use crate::shell;

/// Crates run when `cargo metadata` cannot be read.
const FALLBACK_CRATES: [&str; 7] = [
    "jobcache-hash",
    "jobcache-persist",
    "jobcache-store",
    "jobcache-trace",
    "jobcache-memo",
    "jobcache",
    "jobcache-cli",
];

/// The publishable workspace packages, in workspace order.
fn crates() -> Vec<String> {
    let listed = shell::cargo()
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .output()
        .ok()
        .filter(|out| out.status.success())
        .and_then(|out| publishable_packages(&String::from_utf8_lossy(&out.stdout)));
    match listed {
        Some(list) if !list.is_empty() => list,
        _ => FALLBACK_CRATES.iter().map(|s| s.to_string()).collect(),
    }
}

fn publishable_packages(metadata: &str) -> Option<Vec<String>> {
    let json: serde_json::Value = serde_json::from_str(metadata).ok()?;
    let packages = json.get("packages")?.as_array()?;
    Some(
        packages
            .iter()
            .filter(|p| match p.get("publish") {
                Some(serde_json::Value::Array(registries)) => !registries.is_empty(),
                _ => true,
            })
            .filter_map(|p| Some(p.get("name")?.as_str()?.to_string()))
            .collect(),
    )
}

pub fn run(args: &[String]) -> Result<(), String> {
    let cases = parse_cases(args)?;
    let mut failures = Vec::new();
    let mut summary = Vec::new();
    for krate in crates() {
        let krate = krate.as_str();
        let (ok, output) = shell::run_captured(
            shell::cargo()
                .env("PROPTEST_CASES", cases.to_string())
                .args(["test", "--release", "-p", krate, "--", "prop_"]),
        )?;
        let (passed, failed) = count_results(&output);
        summary.push(format!("{krate:<20} {passed:>4} passed {failed:>4} failed"));
        if !ok {
            let seeds = failure_lines(&output);
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

/// The lines of a failed run that let it be reproduced: the failing tests,
/// proptest's minimal input, and the `cc <seed>` lines it persists.
fn failure_lines(output: &str) -> Vec<&str> {
    output
        .lines()
        .map(str::trim)
        .filter(|l| {
            l.contains("minimal failing input")
                || l.starts_with("cc ")
                || l.contains("seed")
                || l.contains("Saving this and future failures")
                || (l.starts_with("test ") && l.ends_with("FAILED"))
        })
        .collect()
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
    fn keeps_the_lines_that_reproduce_a_failure() {
        let out = "running 2 tests\n\
                   test prop_roundtrip ... FAILED\n\
                   test prop_other ... ok\n\
                   thread 'prop_roundtrip' panicked at src/lib.rs:9:5:\n\
                   Test failed: not equal; minimal failing input: x = 3\n\
                   \tsuccesses: 12\n\
                   proptest: Saving this and future failures in /w/hash/proptest-regressions/lib.txt\n\
                   cc 3a4f00 # shrinks to x = 3\n";
        assert_eq!(
            failure_lines(out),
            [
                "test prop_roundtrip ... FAILED",
                "Test failed: not equal; minimal failing input: x = 3",
                "proptest: Saving this and future failures in /w/hash/proptest-regressions/lib.txt",
                "cc 3a4f00 # shrinks to x = 3",
            ]
        );
    }

    #[test]
    fn lists_publishable_packages_from_metadata() {
        let meta = r#"{"packages":[{"name":"jobcache-hash","publish":null},
                                   {"name":"xtask","publish":[]},
                                   {"name":"jobcache","publish":null}]}"#;
        assert_eq!(
            publishable_packages(meta).unwrap(),
            ["jobcache-hash", "jobcache"]
        );
        assert!(publishable_packages("{}").is_none());
    }

    #[test]
    fn parses_cases_flag() {
        assert_eq!(parse_cases(&[]), Ok(10_000));
        assert_eq!(parse_cases(&["--cases".into(), "50".into()]), Ok(50));
        assert!(parse_cases(&["--cases".into(), "x".into()]).is_err());
        assert!(parse_cases(&["--wat".into()]).is_err());
    }
}
