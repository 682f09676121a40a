//! Running commands from the workspace root, printing each one first.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The workspace root: the nearest directory at or above the current one
/// that holds both `Cargo.toml` and `xtask/Cargo.toml` (so the tasks act on
/// the checkout they are run in, e.g. a temporary clone in the tests), else
/// the parent of this crate's own folder.
pub fn root() -> PathBuf {
    if let Ok(dir) = std::env::current_dir() {
        for candidate in dir.ancestors() {
            if candidate.join("Cargo.toml").is_file()
                && candidate.join("xtask/Cargo.toml").is_file()
            {
                return candidate.to_path_buf();
            }
        }
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// `cargo` as invoked by this process (honours `$CARGO`).
pub fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(root());
    cmd
}

/// Runs `cmd`, printing it first; an error names the command that failed.
pub fn run(cmd: &mut Command) -> Result<(), String> {
    let shown = describe(cmd);
    eprintln!("$ {shown}");
    let status = cmd
        .status()
        .map_err(|e| format!("could not start `{shown}`: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{shown}` failed ({status})"))
    }
}

/// Runs `cmd` and returns its standard output and error together, and
/// whether it succeeded; the output is also echoed.
pub fn run_captured(cmd: &mut Command) -> Result<(bool, String), String> {
    let shown = describe(cmd);
    eprintln!("$ {shown}");
    let out = cmd
        .output()
        .map_err(|e| format!("could not start `{shown}`: {e}"))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprint!("{text}");
    Ok((out.status.success(), text))
}

fn describe(cmd: &Command) -> String {
    let mut parts = vec![cmd.get_program().to_string_lossy().into_owned()];
    parts.extend(cmd.get_args().map(|a| a.to_string_lossy().into_owned()));
    let envs: Vec<String> = cmd
        .get_envs()
        .filter_map(|(k, v)| Some(format!("{}={}", k.to_string_lossy(), v?.to_string_lossy())))
        .collect();
    if envs.is_empty() {
        parts.join(" ")
    } else {
        format!("{} {}", envs.join(" "), parts.join(" "))
    }
}
