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
//! Besides these contract fields, a row carries its spread: `min`,
//! `median` and `max` of its repetitions (and `baseline_min`, … for its
//! baseline), `reps`, and for a row measured as alternated [`pairs`]
//! `ratio_min` / `ratio_max` with `ratio` the median of the per-pair ratios
//! (`"ratio_of": "pairs"`). Rows measured against Python also record
//! `python_versions`. Readers of the five contract fields are unaffected.
//!
//! Python baselines (joblib, NumPy) come from [`python_venv`], a virtualenv
//! created once under `target/bench-venv` with [`PYTHON_PINS`] installed;
//! a [`PythonWorker`] runs them one repetition at a time so they alternate
//! with the Rust subject. Where Python or the package registry is
//! unavailable the row is written with a null baseline, and `cargo xtask
//! bench` fails if that row has a floor.
#![deny(missing_docs)]

mod python;
mod stats;

pub use python::{
    matches_pins, python_measure, python_venv, python_versions, PythonWorker, PYTHON_PINS,
};
pub use stats::{pairs, samples, samples_of, Pairs, Samples, Spread};

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Repetitions measured after one warm-up, unless a group asks for more.
pub const DEFAULT_REPS: usize = 5;

/// Runs `f` once to warm up, then `reps` times (at least five), and returns
/// the median wall time.
pub fn median<F: FnMut()>(reps: usize, f: F) -> Duration {
    samples(reps, f).median()
}

/// The wall time of `f` alone: its result is dropped after the clock stops,
/// so freeing a large value is not counted.
pub fn timed<T>(f: impl FnOnce() -> T) -> Duration {
    let start = Instant::now();
    let value = f();
    let elapsed = start.elapsed();
    drop(value);
    elapsed
}

/// Like [`median`], but `f` does its own set-up and returns only the time of
/// the part being measured (for example, a load that must start from a
/// freshly written file).
pub fn median_of<F: FnMut() -> Duration>(reps: usize, f: F) -> Duration {
    samples_of(reps, f).median()
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
    /// The spread of `value` over the repetitions, when known.
    pub spread: Option<Spread>,
    /// The spread of `baseline` over the repetitions, when known.
    pub baseline_spread: Option<Spread>,
    /// The spread of the per-pair ratios, when the row was measured as
    /// alternated pairs (then `ratio` is their median).
    pub ratio_spread: Option<Spread>,
    /// How many repetitions the medians are taken over, when known.
    pub reps: Option<usize>,
    /// Further fields written as they are (for example `python_versions`).
    pub extra: Vec<(String, serde_json::Value)>,
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
            spread: None,
            baseline_spread: None,
            ratio_spread: None,
            reps: None,
            extra: Vec::new(),
        }
    }

    /// A row of times measured as alternated [`Pairs`]: `value` and
    /// `baseline` are the medians converted by `unit_of` (for example
    /// [`micros`], or a GB/s rate of the bytes moved), `ratio` the median of
    /// the per-pair ratios (baseline time ÷ subject time, "higher is better"
    /// whatever the unit), each with its spread. Without a baseline the row
    /// has a null baseline and ratio.
    pub fn from_pairs(
        name: &str,
        unit: &str,
        pairs: &Pairs,
        unit_of: impl Fn(Duration) -> f64,
    ) -> Row {
        let (subject, baseline) = pairs.medians();
        let ratio_spread = pairs.ratio_spread();
        Row {
            baseline: pairs.baseline.as_ref().map(|_| unit_of(baseline)),
            ratio: ratio_spread.map(|s| s.median),
            spread: pairs.subject.spread(&unit_of),
            baseline_spread: pairs.baseline.as_ref().and_then(|b| b.spread(&unit_of)),
            ratio_spread,
            reps: Some(pairs.subject.0.len()),
            ..Row::plain(name, unit_of(subject), unit)
        }
    }

    /// A row without baseline from its [`Samples`], with their spread.
    pub fn from_samples(
        name: &str,
        unit: &str,
        samples: &Samples,
        unit_of: impl Fn(Duration) -> f64,
    ) -> Row {
        Row {
            spread: samples.spread(&unit_of),
            reps: Some(samples.0.len()),
            ..Row::plain(name, unit_of(samples.median()), unit)
        }
    }

    /// The same row with one more JSON field (a field of the contract, or
    /// one already set, is not replaced).
    pub fn with_field(mut self, key: &str, value: serde_json::Value) -> Row {
        self.extra.push((key.to_string(), value));
        self
    }

    /// The same row recording the versions of the bench venv's Python and
    /// pinned packages ([`python_versions`]) as `python_versions`, when the
    /// venv was set up in this run.
    pub fn with_python_versions(self) -> Row {
        match python_versions() {
            Some(v) => self.with_field("python_versions", v),
            None => self,
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
        let mut json = serde_json::json!({
            "name": self.name,
            "value": self.value,
            "unit": self.unit,
            "baseline": self.baseline,
            "ratio": self.ratio,
        });
        let Some(object) = json.as_object_mut() else {
            return json;
        };
        let spreads = [
            ("", self.spread),
            ("baseline_", self.baseline_spread),
            ("ratio_", self.ratio_spread),
        ];
        for (prefix, spread) in spreads {
            let Some(s) = spread else { continue };
            object.insert(format!("{prefix}min"), s.min.into());
            if prefix != "ratio_" {
                // The ratio's median is `ratio` itself.
                object.insert(format!("{prefix}median"), s.median.into());
            }
            object.insert(format!("{prefix}max"), s.max.into());
        }
        if self.ratio_spread.is_some() {
            object.insert("ratio_of".into(), "pairs".into());
        }
        if let Some(reps) = self.reps {
            object.insert("reps".into(), reps.into());
        }
        for (key, value) in &self.extra {
            object.entry(key.clone()).or_insert_with(|| value.clone());
        }
        json
    }
}

/// The rows of one group, printed as they come and written at the end.
#[derive(Debug)]
pub struct Group {
    name: String,
    rows: Vec<Row>,
}

impl Group {
    /// Starts the group `name` (for example `hash`) and deletes the JSON
    /// of its previous run, so that a run that stops early leaves no stale
    /// figures behind.
    pub fn new(name: &str) -> Group {
        eprintln!("bench group {name}");
        let old = group_json(&target_dir(), name);
        match std::fs::remove_file(&old) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => eprintln!("  cannot remove the old {}: {e}", old.display()),
        }
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
        std::fs::create_dir_all(output_dir())?;
        let path = group_json(&target_dir(), &self.name);
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

/// The workspace's target directory (honours `CARGO_TARGET_DIR`; see
/// [`target_dir_in`]).
pub fn target_dir() -> PathBuf {
    target_dir_in(
        &workspace_root(),
        std::env::var_os("CARGO_TARGET_DIR")
            .as_deref()
            .map(Path::new),
    )
}

/// The target directory of the workspace at `root` given the value of
/// `CARGO_TARGET_DIR`: that directory when set (a relative one taken from
/// `root`, where `cargo xtask bench` runs cargo; it passes an absolute
/// one), else `root/target`. The one rule that both the harness, which
/// writes the JSON, and `cargo xtask bench`, which reads it, follow.
pub fn target_dir_in(root: &Path, cargo_target_dir: Option<&Path>) -> PathBuf {
    match cargo_target_dir {
        Some(dir) if !dir.as_os_str().is_empty() => root.join(dir),
        _ => root.join("target"),
    }
}

/// Where groups write their JSON: `target/bench`.
pub fn output_dir() -> PathBuf {
    target_dir().join("bench")
}

/// The JSON file of `group` under the target directory `target`:
/// `target/bench/GROUP.json`.
pub fn group_json(target: &Path, group: &str) -> PathBuf {
    target.join("bench").join(format!("{group}.json"))
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

    #[test]
    fn paired_rows_carry_spreads_and_the_median_pair_ratio() {
        let ms = Duration::from_millis;
        let pairs = Pairs {
            subject: Samples(vec![ms(10), ms(40), ms(20)]),
            baseline: Some(Samples(vec![ms(40), ms(40), ms(30)])),
        };
        let json = Row::from_pairs("g/p", "ms", &pairs, millis)
            .with_field("python_versions", serde_json::json!({"joblib": "1"}))
            .to_json();
        assert_eq!(json["value"], 20.0);
        assert_eq!(json["baseline"], 40.0);
        assert_eq!(json["ratio"], 1.5);
        assert_eq!(
            (json["min"].clone(), json["max"].clone()),
            (10.0.into(), 40.0.into())
        );
        assert_eq!(json["baseline_min"], 30.0);
        assert_eq!(
            (json["ratio_min"].clone(), json["ratio_max"].clone()),
            (1.0.into(), 4.0.into())
        );
        assert_eq!(json["ratio_of"], "pairs");
        assert_eq!(json["reps"], 3);
        assert_eq!(json["python_versions"]["joblib"], "1");

        let alone = Row::from_pairs(
            "g/q",
            "ms",
            &Pairs {
                baseline: None,
                ..pairs
            },
            millis,
        );
        assert_eq!((alone.baseline, alone.ratio), (None, None));
        assert!(alone.spread.is_some());
    }

    #[test]
    fn extra_fields_never_replace_the_contract() {
        let json = Row::plain("g/x", 1.5, "ms")
            .with_field("value", 9.0.into())
            .to_json();
        assert_eq!(json["value"], 1.5);
    }

    #[test]
    fn the_output_dir_follows_cargo_target_dir() {
        let root = Path::new("/w");
        assert_eq!(target_dir_in(root, None), Path::new("/w/target"));
        assert_eq!(
            target_dir_in(root, Some(Path::new(""))),
            Path::new("/w/target")
        );
        assert_eq!(target_dir_in(root, Some(Path::new("/t"))), Path::new("/t"));
        assert_eq!(
            target_dir_in(root, Some(Path::new("t2"))),
            Path::new("/w/t2")
        );
        assert_eq!(
            group_json(Path::new("/t"), "memo"),
            Path::new("/t/bench/memo.json")
        );
    }

    #[test]
    fn a_new_group_deletes_its_old_json() {
        let name = "selftest-stale";
        let path = group_json(&target_dir(), name);
        std::fs::create_dir_all(output_dir()).unwrap();
        std::fs::write(&path, "[]").unwrap();
        let _group = Group::new(name);
        assert!(!path.exists());
    }
}
