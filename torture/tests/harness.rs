//! The harness checking itself: a short run with no faults, through the
//! binary, must print a line that parses and whose must-be-zero figures
//! (and faults) are all zero.

use jobcache_torture::report::parse_line;
use std::path::PathBuf;
use std::process::Command;

/// The `jobcache` binary of this build's profile, built if missing (it is a
/// binary of another package, so cargo does not build it for these tests).
fn cli_binary() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    // target/<profile>/deps/harness-… → target/<profile>
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .ok_or("no profile directory above the test binary")?;
    let cli = profile_dir.join("jobcache");
    if !cli.is_file() {
        let mut cmd = Command::new(env!("CARGO"));
        cmd.args(["build", "-p", "jobcache-cli", "--bin", "jobcache"])
            .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            cmd.arg("--release");
        }
        let status = cmd.status().map_err(|e| format!("cargo build: {e}"))?;
        if !status.success() || !cli.is_file() {
            return Err(format!(
                "cargo build -p jobcache-cli did not make {}",
                cli.display()
            ));
        }
    }
    Ok(cli)
}

#[test]
fn a_short_run_without_faults_is_all_zeros() -> Result<(), String> {
    let cli = cli_binary()?;
    let work = std::env::temp_dir().join(format!("jobcache-torture-test-{}", std::process::id()));
    let out = Command::new(env!("CARGO_BIN_EXE_jobcache-torture"))
        .arg("run")
        .arg("--cli")
        .arg(&cli)
        .args([
            "--minutes",
            "0.08",
            "--workers",
            "2",
            "--seed",
            "7",
            "--no-faults",
        ])
        .arg("--dir")
        .arg(&work)
        .output()
        .map_err(|e| e.to_string())?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let _ = std::fs::remove_dir_all(&work);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    let line = stdout.lines().last().unwrap_or_default();
    let figures = parse_line(line).ok_or(format!("not a torture line: {line}"))?;
    let get = |name: &str| {
        figures
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| *v)
            .ok_or(format!("no `{name}` in {line}"))
    };
    assert!(get("calls")? > 0, "{line}");
    assert_eq!(get("calls")?, get("hits")? + get("computations")?, "{line}");
    for zero in [
        "faults injected",
        "faults detected",
        "wrong values",
        "panics",
        "changes outside the root",
        "failed API or CLI calls",
        "leftover temp bytes",
    ] {
        assert_eq!(get(zero)?, 0, "{zero} in {line}");
    }
    Ok(())
}

#[test]
fn usage_errors_exit_2() -> Result<(), String> {
    for args in [
        &["run"][..],
        &["run", "--cli", "x", "--dir", "y", "--workers", "1"][..],
        &["nope"][..],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_jobcache-torture"))
            .args(args)
            .output()
            .map_err(|e| e.to_string())?;
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
    Ok(())
}
