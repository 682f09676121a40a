//! The harness shared by every benchmark group that `cargo xtask bench` runs.
//!
//! Each crate owns one group as a `[[bench]]` target with `harness = false`
//! (`hash/benches/hash.rs`, `persist/benches/persist.rs`, …). A group measures
//! its rows with [`median`], pairs each with a baseline measured in the same
//! run ([`Row::ratio_higher_is_better`] and friends), and ends with
//! [`Group::finish`], which prints a table and writes
//! `target/bench/GROUP.json`, the contract described in the design notes:
//!
//! ```json
//! [{"name": "hash/ndarray_f64_256MiB", "value": 2.1, "unit": "GB/s",
//!   "baseline": 2.2, "ratio": 0.95}]
//! ```
//!
//! Python baselines (joblib, NumPy) come from [`python_venv`], a virtualenv
//! created once under `target/bench-venv`; where Python or the package
//! registry is unavailable it returns `None` and the row is written with a
//! null baseline instead of failing the run.
#![deny(missing_docs)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Repetitions measured after one warm-up, unless a group asks for more.
pub const DEFAULT_REPS: usize = 5;

/// Runs `f` once to warm up, then `reps` times (at least five), and returns
/// the median wall time.
pub fn median<F: FnMut()>(reps: usize, mut f: F) -> Duration {
    f();
    let mut times: Vec<Duration> = (0..reps.max(DEFAULT_REPS))
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect();
    times.sort();
    times[times.len() / 2]
}

/// Like [`median`], but `f` does its own set-up and returns only the time of
/// the part being measured (for example, a load that must start from a
/// freshly written file).
pub fn median_of<F: FnMut() -> Duration>(reps: usize, mut f: F) -> Duration {
    f();
    let mut times: Vec<Duration> = (0..reps.max(DEFAULT_REPS)).map(|_| f()).collect();
    times.sort();
    times[times.len() / 2]
}

/// Medians of `a` and `b` (each returning the time it measured), run
/// alternately after one warm-up each, so that the machine's changing load
/// weighs on both alike: the subject and its baseline of one row.
pub fn paired(
    reps: usize,
    mut a: impl FnMut() -> Duration,
    mut b: impl FnMut() -> Duration,
) -> (Duration, Duration) {
    a();
    b();
    let reps = reps.max(1);
    let (mut ta, mut tb): (Vec<Duration>, Vec<Duration>) = (0..reps).map(|_| (a(), b())).unzip();
    ta.sort();
    tb.sort();
    (ta[reps / 2], tb[reps / 2])
}

/// Throughput in GB/s (10^9 bytes per second) of `bytes` moved in `time`.
pub fn gb_per_s(bytes: u64, time: Duration) -> f64 {
    bytes as f64 / time.as_secs_f64() / 1e9
}

/// Microseconds in `time`.
pub fn micros(time: Duration) -> f64 {
    time.as_secs_f64() * 1e6
}

/// Milliseconds in `time`.
pub fn millis(time: Duration) -> f64 {
    time.as_secs_f64() * 1e3
}

/// One row of a group's table and JSON file.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// `GROUP/what`; a stable name that the issues and floors refer to.
    pub name: String,
    /// The median measured for this row.
    pub value: f64,
    /// Unit of `value` and `baseline`: `GB/s`, `ms`, `us`, `entries/s`, …
    pub unit: String,
    /// The baseline measured in the same run, in the same unit.
    pub baseline: Option<f64>,
    /// Ours relative to the baseline in "higher is better" terms.
    pub ratio: Option<f64>,
}

impl Row {
    /// A row without baseline.
    pub fn plain(name: &str, value: f64, unit: &str) -> Row {
        Row {
            name: name.to_string(),
            value,
            unit: unit.to_string(),
            baseline: None,
            ratio: None,
        }
    }

    /// A row where a larger value is better (throughput): ratio = ours ÷ baseline.
    pub fn ratio_higher_is_better(name: &str, value: f64, unit: &str, baseline: f64) -> Row {
        Row {
            ratio: Some(value / baseline),
            baseline: Some(baseline),
            ..Row::plain(name, value, unit)
        }
    }

    /// A row where a smaller value is better (a time): ratio = baseline ÷ ours.
    pub fn ratio_lower_is_better(name: &str, value: f64, unit: &str, baseline: f64) -> Row {
        Row {
            ratio: Some(baseline / value),
            baseline: Some(baseline),
            ..Row::plain(name, value, unit)
        }
    }

    /// A time row whose baseline may be missing (a Python peer that could
    /// not be installed): the ratio is baseline ÷ ours when it exists.
    pub fn time_vs_optional(name: &str, value: f64, unit: &str, baseline: Option<f64>) -> Row {
        match baseline {
            Some(b) => Row::ratio_lower_is_better(name, value, unit, b),
            None => Row::plain(name, value, unit),
        }
    }

    fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "name": self.name,
            "value": self.value,
            "unit": self.unit,
            "baseline": self.baseline,
            "ratio": self.ratio,
        })
    }
}

/// The rows of one group, printed as they come and written at the end.
#[derive(Debug)]
pub struct Group {
    name: String,
    rows: Vec<Row>,
}

impl Group {
    /// Starts the group `name` (for example `hash`).
    pub fn new(name: &str) -> Group {
        eprintln!("bench group {name}");
        Group {
            name: name.to_string(),
            rows: Vec::new(),
        }
    }

    /// Records a row and prints it at once, so a long group shows progress.
    pub fn push(&mut self, row: Row) {
        eprintln!("  {}", format_row(&row));
        self.rows.push(row);
    }

    /// Prints the table and writes `target/bench/GROUP.json`.
    pub fn finish(self) -> std::io::Result<PathBuf> {
        let dir = output_dir();
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(format!("{}.json", self.name));
        let json: Vec<serde_json::Value> = self.rows.iter().map(Row::to_json).collect();
        let text = serde_json::to_string_pretty(&json).map_err(std::io::Error::other)?;
        std::fs::write(&path, text + "\n")?;
        println!(
            "{:<44} {:>12} {:>12} {:>8}",
            "row", "value", "baseline", "ratio"
        );
        for row in &self.rows {
            println!("{}", format_row(row));
        }
        println!("wrote {}", path.display());
        Ok(path)
    }
}

fn format_row(row: &Row) -> String {
    let baseline = row.baseline.map_or("-".to_string(), |b| format!("{b:.3}"));
    let ratio = row.ratio.map_or("-".to_string(), |r| format!("{r:.2}"));
    format!(
        "{:<44} {:>12} {:>12} {:>8}",
        row.name,
        format!("{:.3} {}", row.value, row.unit),
        baseline,
        ratio
    )
}

/// The workspace root: the parent of this crate's folder.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// The workspace's target directory (honours `CARGO_TARGET_DIR`).
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => workspace_root().join("target"),
    }
}

/// Where groups write their JSON: `target/bench`.
pub fn output_dir() -> PathBuf {
    target_dir().join("bench")
}

/// A scratch directory for a group's data files, on the same file system as
/// the target directory (not `/tmp`, which may be a RAM disk), emptied first.
pub fn scratch_dir(group: &str) -> std::io::Result<PathBuf> {
    let dir = target_dir().join("bench-scratch").join(group);
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// The Python interpreter of a virtualenv under `target/bench-venv` with
/// NumPy and joblib installed, created on first use and shared by every
/// group. `None`, with the reason printed, when Python or the package
/// registry is unavailable.
pub fn python_venv() -> Option<PathBuf> {
    let venv = target_dir().join("bench-venv");
    let python = venv.join("bin").join("python");
    let ready = || {
        Command::new(&python)
            .args(["-c", "import numpy, joblib"])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if ready() {
        return Some(python);
    }
    let steps: [(&str, Vec<&str>); 2] = [
        ("python3", vec!["-m", "venv", path_str(&venv)?]),
        (
            path_str(&python)?,
            vec!["-m", "pip", "install", "--quiet", "numpy", "joblib"],
        ),
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
    ready().then_some(python)
}

fn path_str(path: &Path) -> Option<&str> {
    path.to_str()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_are_in_higher_is_better_terms() {
        let fast = Row::ratio_higher_is_better("g/a", 2.0, "GB/s", 1.0);
        assert_eq!(fast.ratio, Some(2.0));
        let slow = Row::ratio_lower_is_better("g/b", 20.0, "us", 10.0);
        assert_eq!(slow.ratio, Some(0.5));
        assert_eq!(Row::time_vs_optional("g/c", 1.0, "ms", None).ratio, None);
    }

    #[test]
    fn median_takes_the_middle_of_at_least_five() {
        let mut calls = 0;
        median(1, || calls += 1);
        assert_eq!(calls, 1 + DEFAULT_REPS);
    }

    #[test]
    fn json_has_exactly_the_contract_fields() {
        let json = Row::plain("g/x", 1.5, "ms").to_json();
        let keys: Vec<&String> = json
            .as_object()
            .map(|o| o.keys().collect())
            .unwrap_or_default();
        assert_eq!(keys.len(), 5);
        assert!(json["baseline"].is_null() && json["ratio"].is_null());
    }
}
