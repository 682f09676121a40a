//! `cargo xtask release` on a temporary clone of this repository at HEAD.
//!
//! The fast tests pass `--skip-checks` (no fmt/clippy/test/doc runs and no
//! package verification builds); `full_dry_run_on_a_clone` runs everything
//! and is ignored by default: `cargo test -p xtask -- --ignored`.
// Test code: a failed setup step should stop the test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository this test was built from.
fn source_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A fresh clone of HEAD (committed state only) in a temporary directory.
fn clone_head() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let source = source_root();
    git(dir.path(), &["init", "--quiet"]);
    git(
        dir.path(),
        &["fetch", "--quiet", source.to_str().unwrap(), "HEAD"],
    );
    git(
        dir.path(),
        &["checkout", "--quiet", "--detach", "FETCH_HEAD"],
    );
    dir
}

fn xtask(dir: &Path, args: &[&str]) -> (Output, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .current_dir(dir)
        .args(args)
        .env("CARGO_TARGET_DIR", dir.join("target"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out, stdout, stderr)
}

const PUBLISH_ORDER: [&str; 7] = [
    "jobcache-hash",
    "jobcache-persist",
    "jobcache-store",
    "jobcache-trace",
    "jobcache-memo",
    "jobcache",
    "jobcache-cli",
];

/// The `Cargo.toml` inside a packaged `.crate`, when `tar` can read it.
fn packaged_manifest(dir: &Path, name: &str, version: &str) -> Option<String> {
    let file = dir
        .join("target/package")
        .join(format!("{name}-{version}.crate"));
    if !file.exists() {
        return None;
    }
    let out = Command::new("tar")
        .arg("-xzOf")
        .arg(&file)
        .arg(format!("{name}-{version}/Cargo.toml"))
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn check_dry_run(extra: &[&str]) {
    let clone = clone_head();
    let dir = clone.path();
    let before = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
    let mut args = vec!["release", "9.9.9", "--dry-run"];
    args.extend(extra);
    let (out, stdout, stderr) = xtask(dir, &args);
    assert!(
        out.status.success(),
        "dry run failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );

    // The versions it would write.
    assert!(stdout.contains("0.1.0 -> 9.9.9"), "{stdout}");
    assert!(stdout.contains("->  version = \"9.9.9\""), "{stdout}");
    for krate in ["hash", "persist", "store", "trace", "memo"] {
        let pin = format!("jobcache-{krate} = {{ path = \"{krate}\", version = \"=9.9.9\" }}");
        assert!(stdout.contains(&pin), "missing `{pin}` in\n{stdout}");
    }
    assert!(stdout.contains("every publishable crate and internal requirement is at 9.9.9"));
    assert!(stdout.contains("+ ## [9.9.9] - 20"), "{stdout}");

    // Every publishable crate packaged, in dependency order.
    let positions: Vec<usize> = PUBLISH_ORDER
        .iter()
        .map(|name| {
            stdout
                .find(&format!("] package {name}\n"))
                .unwrap_or_else(|| panic!("no package step for {name} in\n{stdout}"))
        })
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{stdout}");
    let hash = packaged_manifest(dir, "jobcache-hash", "9.9.9").expect("jobcache-hash packaged");
    assert!(hash.contains("version = \"9.9.9\""), "{hash}");
    if let Some(memo) = packaged_manifest(dir, "jobcache-memo", "9.9.9") {
        assert!(memo.contains("version = \"9.9.9\""), "{memo}");
        assert!(memo.contains("version = \"=9.9.9\""), "{memo}");
    }

    // ...and the tree left as it was.
    assert!(stdout.contains("nothing committed or tagged"));
    assert_eq!(git(dir, &["status", "--porcelain"]), "");
    assert_eq!(
        std::fs::read_to_string(dir.join("Cargo.toml")).unwrap(),
        before
    );
    assert_eq!(git(dir, &["tag", "--list"]), "");
}

#[test]
fn dry_run_on_a_clone_writes_the_new_versions_and_restores_the_tree() {
    check_dry_run(&["--skip-checks"]);
}

#[test]
#[ignore = "runs fmt, clippy, the whole test suite and doc on a clone: minutes"]
fn full_dry_run_on_a_clone() {
    check_dry_run(&[]);
}

#[test]
fn a_dirty_tree_is_refused() {
    let clone = clone_head();
    let dir = clone.path();
    let readme = dir.join("README.md");
    let mut text = std::fs::read_to_string(&readme).unwrap();
    text.push_str("\nan uncommitted line\n");
    std::fs::write(&readme, &text).unwrap();
    let (out, stdout, stderr) = xtask(dir, &["release", "9.9.9", "--dry-run", "--skip-checks"]);
    assert!(!out.status.success(), "{stdout}");
    assert!(
        stderr.contains("release stopped at step `clean tree`"),
        "{stderr}"
    );
    assert!(stderr.contains("README.md"), "{stderr}");
    assert!(!stdout.contains("set versions"), "{stdout}");
    // Nothing else was touched.
    assert_eq!(git(dir, &["status", "--porcelain"]), " M README.md\n");
}

#[test]
fn a_version_not_above_the_current_one_is_refused() {
    let clone = clone_head();
    let dir = clone.path();
    for version in ["0.0.9", "0.1.0-rc.1", "not-a-version"] {
        let (out, stdout, stderr) = xtask(dir, &["release", version, "--dry-run", "--skip-checks"]);
        assert!(!out.status.success(), "{version}: {stdout}");
        assert!(
            stderr.contains("release stopped at step `version`"),
            "{version}: {stderr}"
        );
    }
    assert_eq!(git(dir, &["status", "--porcelain"]), "");
}

fn commit_all(dir: &Path, message: &str) {
    git(dir, &["config", "user.name", "Release Test"]);
    git(
        dir,
        &["config", "user.email", "release-test@example.invalid"],
    );
    git(dir, &["commit", "--quiet", "--all", "-m", message]);
}

#[test]
fn a_failure_after_the_rewrite_restores_every_file() {
    let clone = clone_head();
    let dir = clone.path();
    // An Unreleased section with no entries stops the `changelog` step,
    // after `set versions` has already rewritten the manifests.
    let changelog = dir.join("CHANGELOG.md");
    let text = std::fs::read_to_string(&changelog).unwrap();
    let start = text.find("## [Unreleased]").unwrap();
    let end = text.find("[Unreleased]: ").unwrap();
    let emptied = format!("{}## [Unreleased]\n\n{}", &text[..start], &text[end..]);
    std::fs::write(&changelog, emptied).unwrap();
    commit_all(dir, "Empty the Unreleased section");

    let (out, stdout, stderr) = xtask(dir, &["release", "9.9.9", "--skip-checks"]);
    assert!(!out.status.success(), "{stdout}");
    assert!(stdout.contains("] set versions"), "{stdout}");
    assert!(
        stderr.contains("release stopped at step `changelog`"),
        "{stderr}"
    );
    assert_eq!(git(dir, &["status", "--porcelain"]), "");
    assert_eq!(git(dir, &["tag", "--list"]), "");
}

#[test]
fn a_real_release_commits_and_tags() {
    let clone = clone_head();
    let dir = clone.path();
    git(dir, &["config", "user.name", "Release Test"]);
    git(
        dir,
        &["config", "user.email", "release-test@example.invalid"],
    );
    let (out, stdout, stderr) = xtask(dir, &["release", "9.9.9", "--skip-checks"]);
    assert!(
        out.status.success(),
        "release failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    assert!(
        stdout.contains("cargo publish -p jobcache-hash"),
        "{stdout}"
    );
    assert_eq!(git(dir, &["status", "--porcelain"]), "");
    assert_eq!(git(dir, &["tag", "--list"]), "v9.9.9\n");
    assert_eq!(git(dir, &["log", "-1", "--format=%s"]), "Release 9.9.9\n");
    let changed = git(dir, &["show", "--name-only", "--format=", "HEAD"]);
    for file in ["Cargo.toml", "Cargo.lock", "CHANGELOG.md"] {
        assert!(
            changed.lines().any(|l| l == file),
            "{file} not in\n{changed}"
        );
    }
    let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
    assert!(manifest.contains("version = \"9.9.9\"\n"));
    assert!(manifest.contains("jobcache-memo = { path = \"memo\", version = \"=9.9.9\" }"));
    let lock = std::fs::read_to_string(dir.join("Cargo.lock")).unwrap();
    assert!(lock.contains("name = \"jobcache-hash\"\nversion = \"9.9.9\""));
    let changelog = std::fs::read_to_string(dir.join("CHANGELOG.md")).unwrap();
    assert!(changelog.contains("## [Unreleased]\n\n## [9.9.9] - 20"));

    // Releasing the same version again is refused.
    let (out, _, stderr) = xtask(dir, &["release", "9.9.9", "--dry-run", "--skip-checks"]);
    assert!(!out.status.success());
    assert!(stderr.contains("step `version`"), "{stderr}");
}
