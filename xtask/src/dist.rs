//! `cargo xtask dist [--out DIR]`: the files a package of the `jobcache`
//! binary ships besides the binary, made from its clap definition so they
//! never drift from its flags.
//!
//! Builds `jobcache-cli` in release mode, then writes (default
//! `target/dist`):
//! - `jobcache` (the binary),
//! - `completions/jobcache.bash`, `_jobcache` (zsh), `jobcache.fish`,
//!   `jobcache.elv`, `_jobcache.ps1` (`jobcache completions SHELL`),
//! - `man/jobcache.1` and `man/jobcache-COMMAND.1` (`jobcache man DIR`).

use crate::shell;
use std::path::PathBuf;
use std::process::Command;

const USAGE: &str = "usage: cargo xtask dist [--out DIR]";

/// The shells and the file name each one's completion script is saved as.
pub const COMPLETIONS: [(&str, &str); 5] = [
    ("bash", "jobcache.bash"),
    ("zsh", "_jobcache"),
    ("fish", "jobcache.fish"),
    ("elvish", "jobcache.elv"),
    ("powershell", "_jobcache.ps1"),
];

/// Runs the task.
pub fn run(args: &[String]) -> Result<(), String> {
    let root = shell::root();
    let out = match args {
        [] => root.join("target/dist"),
        [flag, dir] if flag == "--out" => PathBuf::from(dir),
        _ => return Err(USAGE.into()),
    };
    shell::run(shell::cargo().args([
        "build",
        "--release",
        "--locked",
        "-p",
        "jobcache-cli",
        "--bin",
        "jobcache",
    ]))?;
    let bin = root.join("target/release/jobcache");
    let completions = out.join("completions");
    std::fs::create_dir_all(&completions)
        .map_err(|e| format!("cannot create {}: {e}", completions.display()))?;
    std::fs::copy(&bin, out.join("jobcache"))
        .map_err(|e| format!("cannot copy {} to {}: {e}", bin.display(), out.display()))?;
    for (shell_name, file) in COMPLETIONS {
        let output = Command::new(&bin)
            .args(["completions", shell_name])
            .output()
            .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
        if !output.status.success() {
            return Err(format!(
                "`jobcache completions {shell_name}` failed: {}",
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        let path = completions.join(file);
        std::fs::write(&path, output.stdout)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    shell::run(Command::new(&bin).arg("man").arg(out.join("man")))?;
    eprintln!(
        "dist: {} (binary, {} completion scripts, man pages)",
        out.display(),
        COMPLETIONS.len()
    );
    Ok(())
}
