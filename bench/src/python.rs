//! Python peers: the bench virtualenv (pinned NumPy, joblib and lz4) and a
//! worker process that runs one repetition at a time, so that a Python
//! baseline alternates with its Rust subject like any other baseline.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

/// The packages installed in the bench virtualenv, at these exact versions
/// (a venv holding other versions is reinstalled): every Python figure of a
/// run is measured against the same joblib.
pub const PYTHON_PINS: &[(&str, &str)] =
    &[("numpy", "2.4.6"), ("joblib", "1.6.0"), ("lz4", "4.4.5")];

/// Prints the installed versions as `name version` lines, `python` first.
const VERSIONS_SCRIPT: &str = "import sys, importlib.metadata as m\n\
print('python', sys.version.split()[0])\n\
for n in sys.argv[1:]:\n    print(n, m.version(n))\n";

/// The versions a venv interpreter reports, or `None` if it cannot run.
fn installed_versions(python: &Path) -> Option<Vec<(String, String)>> {
    let names = PYTHON_PINS.iter().map(|(n, _)| *n);
    let out = Command::new(python)
        .arg("-c")
        .arg(VERSIONS_SCRIPT)
        .args(names)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    Some(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_once(' '))
            .map(|(n, v)| (n.to_string(), v.trim().to_string()))
            .collect(),
    )
}

/// Whether `versions` holds every pinned package at its pinned version.
pub fn matches_pins(versions: &[(String, String)]) -> bool {
    PYTHON_PINS
        .iter()
        .all(|(n, v)| versions.iter().any(|(name, ver)| name == n && ver == v))
}

static VERSIONS: OnceLock<Option<serde_json::Value>> = OnceLock::new();

/// The Python interpreter of a virtualenv under `target/bench-venv` with
/// [`PYTHON_PINS`] installed, created on first use and shared by every
/// group. `None`, with the reason printed, when Python or the package
/// registry is unavailable; a row whose floor needs that baseline then
/// fails `cargo xtask bench`.
pub fn python_venv() -> Option<PathBuf> {
    let venv = crate::target_dir().join("bench-venv");
    let python = venv.join("bin").join("python");
    let pinned = || installed_versions(&python).filter(|v| matches_pins(v));
    let versions = match pinned() {
        Some(v) => v,
        None => {
            let pins: Vec<String> = PYTHON_PINS
                .iter()
                .map(|(n, v)| format!("{n}=={v}"))
                .collect();
            let mut install = vec!["-m", "pip", "install", "--quiet"];
            install.extend(pins.iter().map(String::as_str));
            let steps: [(&str, Vec<&str>); 2] = [
                ("python3", vec!["-m", "venv", venv.to_str()?]),
                (python.to_str()?, install),
            ];
            for (program, args) in steps {
                let ok = Command::new(program)
                    .args(&args)
                    .status()
                    .is_ok_and(|s| s.success());
                if !ok {
                    eprintln!(
                        "  python baseline unavailable: `{program} {}` failed",
                        args.join(" ")
                    );
                    return None;
                }
            }
            match pinned() {
                Some(v) => v,
                None => {
                    eprintln!("  python baseline unavailable: the venv lacks the pinned versions");
                    return None;
                }
            }
        }
    };
    let _ = VERSIONS.set(Some(serde_json::Value::Object(
        versions
            .into_iter()
            .map(|(n, v)| (n, serde_json::Value::String(v)))
            .collect(),
    )));
    Some(python)
}

/// The versions of Python and of the pinned packages in the bench venv
/// (`{"python": "3.11.7", "numpy": "2.4.6", …}`), once [`python_venv`] has
/// returned it; recorded on Python rows as their `python_versions` field.
pub fn python_versions() -> Option<serde_json::Value> {
    VERSIONS.get().cloned().flatten()
}

/// Runs a Python snippet with the venv's interpreter and returns the last
/// line it printed parsed as a number (the snippets print one measurement).
pub fn python_measure(python: &Path, script: &str) -> Option<f64> {
    let out = Command::new(python).args(["-c", script]).output().ok()?;
    if !out.status.success() {
        eprintln!(
            "  python baseline failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        return None;
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()?
        .trim()
        .parse()
        .ok()
}

/// The loop a [`PythonWorker`] runs after its set-up code: each line read
/// names a function of the set-up; it is called once and the seconds it
/// took are printed (or the float it returned, for a function that times
/// only part of its work itself, e.g. after its own clean-up).
const WORKER_LOOP: &str = r#"
import sys as _sys, time as _time, traceback as _tb
for _line in _sys.stdin:
    _name = _line.strip()
    try:
        _t = _time.perf_counter()
        _r = globals()[_name]()
        _dt = _time.perf_counter() - _t
        if isinstance(_r, float):
            _dt = _r
        del _r
        print(repr(_dt), flush=True)
    except BaseException:
        print("ERR " + _tb.format_exc().replace("\n", " | "), flush=True)
"#;

/// A Python process kept alive for a whole row, running one repetition of a
/// named function per request: the peer side of [`crate::pairs`].
#[derive(Debug)]
pub struct PythonWorker {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl PythonWorker {
    /// Starts `python` running `setup` (which defines the functions to time)
    /// followed by the request loop. `None`, with the reason printed, when
    /// the process cannot be started.
    pub fn start(python: &Path, setup: &str) -> Option<PythonWorker> {
        let mut child = Command::new(python)
            .args(["-u", "-c", &format!("{setup}\n{WORKER_LOOP}")])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| eprintln!("  python worker could not start: {e}"))
            .ok()?;
        let stdin = child.stdin.take()?;
        let stdout = BufReader::new(child.stdout.take()?);
        Some(PythonWorker {
            child,
            stdin,
            stdout,
        })
    }

    /// Runs `name()` once in the worker and returns its time; `None`, with
    /// the Python error printed, when it fails or the worker has died.
    pub fn time(&mut self, name: &str) -> Option<Duration> {
        writeln!(self.stdin, "{name}").ok()?;
        self.stdin.flush().ok()?;
        let mut line = String::new();
        if self.stdout.read_line(&mut line).ok()? == 0 {
            eprintln!("  python worker exited during `{name}`");
            return None;
        }
        match line.trim().parse::<f64>() {
            Ok(secs) if secs.is_finite() && secs >= 0.0 => Some(Duration::from_secs_f64(secs)),
            _ => {
                eprintln!("  python `{name}` failed: {}", line.trim());
                None
            }
        }
    }
}

impl Drop for PythonWorker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(n: &str, v: &str) -> (String, String) {
        (n.to_string(), v.to_string())
    }

    #[test]
    fn pins_must_all_match() {
        let all: Vec<_> = PYTHON_PINS.iter().map(|(n, v)| pair(n, v)).collect();
        assert!(matches_pins(&all));
        let mut other = all.clone();
        other[0].1 = "0.0.1".into();
        assert!(!matches_pins(&other));
        assert!(!matches_pins(&all[1..]));
    }

    #[test]
    fn a_worker_times_each_request_and_reports_failures() {
        let Ok(python) = which_python3() else {
            return; // no Python on this machine: nothing to check
        };
        let setup = "def fast():\n    pass\ndef own():\n    return 0.25\ndef bad():\n    raise ValueError('x')\n";
        let Some(mut w) = PythonWorker::start(&python, setup) else {
            return;
        };
        assert!(w.time("fast").is_some_and(|t| t < Duration::from_secs(1)));
        assert_eq!(w.time("own"), Some(Duration::from_millis(250)));
        assert_eq!(w.time("bad"), None);
        assert_eq!(w.time("missing"), None);
        assert!(
            w.time("fast").is_some(),
            "a failure does not end the worker"
        );
    }

    fn which_python3() -> Result<PathBuf, ()> {
        let ok = Command::new("python3")
            .arg("-c")
            .arg("pass")
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            Ok(PathBuf::from("python3"))
        } else {
            Err(())
        }
    }
}
