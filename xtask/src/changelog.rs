//! CHANGELOG.md in Keep a Changelog form (<https://keepachangelog.com/en/1.1.0/>):
//! moving the `## [Unreleased]` section under a released version.
//!
//! Before:
//!
//! ```text
//! ## [Unreleased]
//! ### Added
//! - ...
//!
//! ## [0.1.0] - 2026-01-10
//! ...
//! [Unreleased]: https://github.com/o/r/compare/v0.1.0...HEAD
//! [0.1.0]: https://github.com/o/r/releases/tag/v0.1.0
//! ```
//!
//! After releasing 0.2.0 the entries sit under `## [0.2.0] - DATE`, a fresh
//! empty `## [Unreleased]` heading stays on top, and the link references
//! become `[Unreleased]: …/compare/v0.2.0...HEAD` and
//! `[0.2.0]: …/compare/v0.1.0...v0.2.0` (or `…/releases/tag/v0.2.0` for the
//! first release).

const UNRELEASED: &str = "## [Unreleased]";

/// Moves the Unreleased entries under `## [VERSION] - DATE` and updates the
/// link references. `repository` (the `repository` URL of the workspace) is
/// used for links when the file has no compare link to extend.
pub fn release(text: &str, version: &str, date: &str, repository: &str) -> Result<String, String> {
    let lines: Vec<&str> = text.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.trim_end().eq_ignore_ascii_case(UNRELEASED))
        .ok_or("CHANGELOG.md has no `## [Unreleased]` heading")?;
    let heading = format!("## [{version}]");
    if lines.iter().any(|l| l.starts_with(&heading)) {
        return Err(format!("CHANGELOG.md already has a `{heading}` section"));
    }
    // The section ends at the next version heading or the link references.
    let end = lines[start + 1..]
        .iter()
        .position(|l| l.starts_with("## ") || is_link_reference(l))
        .map_or(lines.len(), |i| start + 1 + i);
    let body = &lines[start + 1..end];
    if !body.iter().any(|l| {
        let t = l.trim_start();
        t.starts_with("- ") || t.starts_with("* ")
    }) {
        return Err(
            "CHANGELOG.md's Unreleased section lists no changes: add them (`### Added`, `- ...`) before releasing"
                .into(),
        );
    }
    let trimmed_body = trim_blank(body);

    let mut out: Vec<String> = Vec::with_capacity(lines.len() + 4);
    out.extend(lines[..start].iter().map(|l| l.to_string()));
    out.push(UNRELEASED.to_string());
    out.push(String::new());
    out.push(format!("{heading} - {date}"));
    out.push(String::new());
    out.extend(trimmed_body.iter().map(|l| l.to_string()));
    if end < lines.len() {
        out.push(String::new());
    }
    for line in &lines[end..] {
        match link_reference(line) {
            Some(("Unreleased", url)) => {
                let (unreleased, released) = moved_links(url, version, repository);
                out.push(format!("[Unreleased]: {unreleased}"));
                out.push(format!("[{version}]: {released}"));
            }
            _ => out.push(line.to_string()),
        }
    }
    let mut text_out = out.join("\n");
    text_out.push('\n');
    Ok(text_out)
}

/// The new `[Unreleased]` and `[VERSION]` link targets.
fn moved_links(url: &str, version: &str, repository: &str) -> (String, String) {
    let tag = format!("v{version}");
    if let Some((base, range)) = url.rsplit_once("/compare/") {
        if let Some(previous) = range.strip_suffix("...HEAD") {
            return (
                format!("{base}/compare/{tag}...HEAD"),
                format!("{base}/compare/{previous}...{tag}"),
            );
        }
    }
    let base = repository.trim_end_matches('/');
    (
        format!("{base}/compare/{tag}...HEAD"),
        format!("{base}/releases/tag/{tag}"),
    )
}

fn is_link_reference(line: &str) -> bool {
    link_reference(line).is_some()
}

/// `[label]: url` → (label, url).
fn link_reference(line: &str) -> Option<(&str, &str)> {
    let rest = line.strip_prefix('[')?;
    let (label, url) = rest.split_once("]:")?;
    Some((label, url.trim()))
}

fn trim_blank<'a>(lines: &'a [&'a str]) -> &'a [&'a str] {
    let first = lines.iter().position(|l| !l.trim().is_empty());
    let last = lines.iter().rposition(|l| !l.trim().is_empty());
    match (first, last) {
        (Some(a), Some(b)) => &lines[a..=b],
        _ => &[],
    }
}

/// Today's date in UTC as `YYYY-MM-DD`.
pub fn today() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (y, m, d) = civil_from_days(secs / 86_400);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Days since 1970-01-01 → (year, month, day) in the proleptic Gregorian
/// calendar (Howard Hinnant's `civil_from_days`, for non-negative days).
pub fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPO: &str = "https://github.com/jobcache/jobcache";

    const FIRST: &str = "# Changelog

All notable changes to this project are documented in this file.

## [Unreleased]

### Added

- The workspace.
- `jobcache-hash`.

[Unreleased]: https://github.com/jobcache/jobcache/commits/main
";

    #[test]
    fn first_release_moves_entries_and_links_the_tag() {
        let out = release(FIRST, "0.1.0", "2026-11-25", REPO).unwrap();
        assert_eq!(
            out,
            "# Changelog

All notable changes to this project are documented in this file.

## [Unreleased]

## [0.1.0] - 2026-11-25

### Added

- The workspace.
- `jobcache-hash`.

[Unreleased]: https://github.com/jobcache/jobcache/compare/v0.1.0...HEAD
[0.1.0]: https://github.com/jobcache/jobcache/releases/tag/v0.1.0
"
        );
    }

    #[test]
    fn later_release_extends_the_compare_links() {
        let first = release(FIRST, "0.1.0", "2026-11-25", REPO).unwrap();
        let with_entry = first.replace(
            "## [Unreleased]\n",
            "## [Unreleased]\n\n### Fixed\n\n- A bug.\n",
        );
        let out = release(&with_entry, "0.2.0-rc.1", "2027-01-02", REPO).unwrap();
        assert!(out.contains(
            "## [Unreleased]\n\n## [0.2.0-rc.1] - 2027-01-02\n\n### Fixed\n\n- A bug.\n\n## [0.1.0] - 2026-11-25\n"
        ));
        assert!(out.ends_with(
            "[Unreleased]: https://github.com/jobcache/jobcache/compare/v0.2.0-rc.1...HEAD\n\
             [0.2.0-rc.1]: https://github.com/jobcache/jobcache/compare/v0.1.0...v0.2.0-rc.1\n\
             [0.1.0]: https://github.com/jobcache/jobcache/releases/tag/v0.1.0\n"
        ));
    }

    #[test]
    fn refuses_missing_empty_or_repeated_sections() {
        assert!(release("# Changelog\n", "1.0.0", "2026-01-01", REPO).is_err());
        let empty = "## [Unreleased]\n\n### Added\n\n## [0.1.0] - 2026-01-01\n- x\n";
        let err = release(empty, "1.0.0", "2026-01-01", REPO).unwrap_err();
        assert!(err.contains("lists no changes"), "{err}");
        let repeated = "## [Unreleased]\n- y\n\n## [1.0.0] - 2026-01-01\n- x\n";
        assert!(release(repeated, "1.0.0", "2026-01-02", REPO).is_err());
        // A heading that merely starts the same is a different version.
        assert!(release(repeated, "1.0.0-rc.1", "2026-01-02", REPO).is_ok());
        assert!(release(repeated, "1.0", "2026-01-02", REPO).is_ok());
    }

    #[test]
    fn dates_are_gregorian() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(59), (1970, 3, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(20_417), (2025, 11, 25));
        assert_eq!(civil_from_days(20_782), (2026, 11, 25));
        let today = today();
        assert_eq!(today.len(), 10);
        assert!(today.starts_with("20"));
    }
}
