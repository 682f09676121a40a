//! What workers report, and the one line of figures the run prints.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A call that failed where the library promises it does not (a
/// `Memory::build`, `Memory::clear`, `reduce_size` error, or a CLI run
/// with an undocumented exit status), with when it ran.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// When the call started (`now_ns`).
    pub start: u64,
    /// When it returned.
    pub end: u64,
    /// The call and what went wrong.
    pub what: String,
}

/// The counters of one worker process (one generation of one slot),
/// written whole, often, to a file of its own outside the cache root.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerReport {
    /// The worker's slot (0..workers).
    pub slot: usize,
    /// How many times the slot was started before this process.
    pub generation: u32,
    /// Whether it calls arrays with `call_mapped` on an `mmap(true)` memory.
    pub mapped: bool,
    /// Cached calls made.
    pub calls: u64,
    /// Calls whose function did not run.
    pub hits: u64,
    /// Calls whose function ran.
    pub computations: u64,
    /// Mapped results that were views of the cache file.
    pub mapped_views: u64,
    /// Results that differ from the expected value.
    pub wrong_values: u64,
    /// Mapped results that differed only after an injected in-place change
    /// of their payload file that ended after the call started.
    pub changed_after_verification: u64,
    /// Panics caught.
    pub panics: u64,
    /// Warnings of the library that report a corrupt entry.
    pub corrupt_warnings: u64,
    /// Other warnings of the library (storage errors).
    pub other_warnings: u64,
    /// Failed API calls.
    pub failures: Vec<Failure>,
    /// Hits per Unix second (to see caching resume after the root is removed).
    pub hit_seconds: BTreeMap<u64, u64>,
    /// The first problems, in words.
    pub details: Vec<String>,
}

/// How many problem descriptions a report keeps.
pub const MAX_DETAILS: usize = 10;

impl WorkerReport {
    /// Notes a problem, keeping the first [`MAX_DETAILS`].
    pub fn detail(&mut self, what: String) {
        if self.details.len() < MAX_DETAILS {
            self.details.push(what);
        }
    }
}

/// Faults injected, by kind, in the order the line prints them.
pub const FAULT_KINDS: [&str; 17] = [
    "flips",
    "zero-fills",
    "truncations",
    "deletions",
    "symlinks",
    "pack flips",
    "pack zero-fills",
    "pack truncations",
    "pack deletions",
    "pack symlinks",
    "kills",
    "root removals",
    "gc runs",
    "verify runs",
    "clear runs",
    "API clears",
    "API reductions",
];

/// The figures of a run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Figures {
    /// Worker slots.
    pub workers: usize,
    /// Planned duration in minutes.
    pub minutes: f64,
    /// The seed.
    pub seed: u64,
    /// Cached calls made by workers.
    pub calls: u64,
    /// Calls whose function did not run.
    pub hits: u64,
    /// Calls whose function ran.
    pub computations: u64,
    /// Computations of a key another worker was computing at the same time.
    pub duplicate_computations: u64,
    /// Faults injected, by kind (names of [`FAULT_KINDS`]).
    pub faults: BTreeMap<String, u64>,
    /// Corruption warnings of the library plus corrupt entries `verify` found.
    pub faults_detected: u64,
    /// Mapped results changed by an injection after the call started.
    pub changed_after_verification: u64,
    /// Hits made more than a second after the root was removed.
    pub hits_after_root_removal: u64,
    /// Refusals (CLI exit 2, API errors) while the harness had made the root
    /// missing or replaced a top-level layout path with a symlink.
    pub refusals_of_broken_root: u64,
    /// Must be zero: results that differ from the expected value.
    pub wrong_values: u64,
    /// Must be zero: panics caught in workers, and workers that died by a
    /// signal the harness did not send.
    pub panics: u64,
    /// Must be zero: paths of the sentinel directory that changed.
    pub changes_outside_root: u64,
    /// Must be zero: failed API calls and CLI runs with an undocumented status.
    pub failed_calls: u64,
    /// Must be zero: bytes under `<root>/tmp` after the final `gc`.
    pub leftover_temp_bytes: u64,
}

impl Figures {
    /// Every fault injected.
    pub fn faults_injected(&self) -> u64 {
        self.faults.values().sum()
    }

    /// The must-be-zero figures, by the names the line gives them.
    pub fn must_be_zero(&self) -> [(&'static str, u64); 5] {
        [
            ("wrong values", self.wrong_values),
            ("panics", self.panics),
            ("changes outside the root", self.changes_outside_root),
            ("failed API or CLI calls", self.failed_calls),
            ("leftover temp bytes", self.leftover_temp_bytes),
        ]
    }

    /// The one line.
    pub fn line(&self) -> String {
        let faults: Vec<String> = FAULT_KINDS
            .iter()
            .map(|k| format!("{k} {}", self.faults.get(*k).copied().unwrap_or(0)))
            .collect();
        let zeros: Vec<String> = self
            .must_be_zero()
            .iter()
            .map(|(name, n)| format!("{name} {n}"))
            .collect();
        format!(
            "torture: {} workers, {:.1} min, seed {}: calls {}, hits {}, computations {}, \
             duplicate computations {}, faults injected {} ({}), faults detected {}, \
             mapped values changed after verification {}, hits after root removal {}, \
             refusals of a broken root {}, {}",
            self.workers,
            self.minutes,
            self.seed,
            self.calls,
            self.hits,
            self.computations,
            self.duplicate_computations,
            self.faults_injected(),
            faults.join(", "),
            self.faults_detected,
            self.changed_after_verification,
            self.hits_after_root_removal,
            self.refusals_of_broken_root,
            zeros.join(", ")
        )
    }
}

/// The `name number` figures of a line (after its `seed N:` prefix), in
/// order; `None` if the line is not a torture line.
pub fn parse_line(line: &str) -> Option<Vec<(String, u64)>> {
    let rest = line.strip_prefix("torture: ")?;
    let (_, figures) = rest.split_once(": ")?;
    let mut out = Vec::new();
    for piece in figures.split([',', '(', ')']) {
        let piece = piece.trim();
        if piece.is_empty() {
            continue;
        }
        let (name, number) = piece.rsplit_once(' ')?;
        out.push((name.to_string(), number.parse().ok()?));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_parses_back() {
        let mut f = Figures {
            workers: 8,
            minutes: 1.0,
            seed: 42,
            calls: 10,
            hits: 7,
            computations: 3,
            wrong_values: 2,
            ..Figures::default()
        };
        f.faults.insert("flips".into(), 5);
        f.faults.insert("kills".into(), 1);
        let line = f.line();
        let parsed = parse_line(&line).unwrap_or_default();
        let get = |n: &str| parsed.iter().find(|(k, _)| k == n).map(|(_, v)| *v);
        assert_eq!(get("calls"), Some(10));
        assert_eq!(get("faults injected"), Some(6));
        assert_eq!(get("flips"), Some(5));
        assert_eq!(get("wrong values"), Some(2));
        assert_eq!(get("leftover temp bytes"), Some(0));
        assert_eq!(parsed.len(), 5 + FAULT_KINDS.len() + 4 + 5);
        assert_eq!(parse_line("something else"), None);
    }
}
