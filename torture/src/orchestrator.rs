//! The orchestrator: starts the workers, runs the phases, injects faults,
//! runs the CLI and the maintenance API concurrently, and adds it all up.

use crate::faults::{self, Injector};
use crate::now_ns;
use crate::report::{Failure, Figures, WorkerReport};
use crate::rng::Rng;
use crate::sentinel::{self, Sentinel, DIR_KINDS};
use std::collections::BTreeMap;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What `jobcache-torture run` is told.
#[derive(Debug, Clone)]
pub struct RunArgs {
    /// The `jobcache` binary.
    pub cli: PathBuf,
    /// How long, in minutes.
    pub minutes: f64,
    /// The seed of every random choice.
    pub seed: u64,
    /// Worker processes (half copy mode, half mapped).
    pub workers: usize,
    /// The work directory (made fresh; must not exist or be a previous run's).
    pub dir: PathBuf,
    /// Whether to inject faults (off: the harness checking itself).
    pub faults: bool,
}

/// The outcome: the figures, and the details of every non-zero
/// must-be-zero figure (and of what else is worth a look).
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// The figures.
    pub figures: Figures,
    /// Details, by figure name.
    pub details: Details,
}

/// Details, by figure name.
type Details = BTreeMap<&'static str, Vec<String>>;

/// Adds a detail under `figure`.
fn add(details: &mut Details, figure: &'static str, what: String) {
    details.entry(figure).or_default().push(what);
}

/// The file that marks a work directory as the harness's own, so that a
/// second run may empty it.
const MARKER: &str = "jobcache-torture-run";
/// The file size limit of the `RLIMIT_FSIZE` phase.
const FSIZE_LIMIT: u64 = 2 << 20;
/// Kept under `gc` by the concurrent runs.
const GC_MAX_SIZE: &str = "160MiB";
const GC_MAX_AGE: &str = "30s";
const API_MAX_BYTES: u64 = 128 << 20;

struct Slot {
    child: Option<Child>,
    generation: u32,
    mapped: bool,
    killed: bool,
}

/// Which part of the run it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    /// Workers started together on a fresh directory; faults from 2 s on.
    Together,
    /// Faults of every kind, kills and restarts.
    Chaos,
    /// Workers restarted under `RLIMIT_FSIZE`.
    FileSizeLimit,
    /// Workers restarted; the root is removed under them.
    RootRemoval,
}

struct Run<'a> {
    args: &'a RunArgs,
    root: PathBuf,
    reports: PathBuf,
    injections: PathBuf,
    stop: PathBuf,
    worker_log: PathBuf,
    exe: PathBuf,
    slots: Vec<Slot>,
    crashes: Vec<String>,
    fsize: Option<u64>,
}

/// Runs the whole torture; `Err` for a setup problem (a usage error).
pub fn run(args: &RunArgs) -> Result<Outcome, String> {
    let dir = &args.dir;
    prepare(dir)?;
    let root = dir.join("cache");
    let file_kinds: Vec<&str> = faults::PLANT_KINDS
        .iter()
        .copied()
        .filter(|k| !DIR_KINDS.contains(k))
        .collect();
    let sentinel = Sentinel::create(&dir.join("sentinel"), &file_kinds)
        .map_err(|e| format!("cannot create the sentinel in {}: {e}", dir.display()))?;
    let before = sentinel.snapshot();
    let reports = dir.join("reports");
    std::fs::create_dir(&reports).map_err(|e| format!("{}: {e}", reports.display()))?;
    let injections = dir.join("injections.log");
    let mut injector = Injector::new(
        &root,
        &dir.join("held"),
        sentinel.clone(),
        &injections,
        args.seed ^ 0xFA017,
    )
    .map_err(|e| format!("{}: {e}", injections.display()))?;
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
    if !args.cli.is_file() {
        return Err(format!(
            "no jobcache binary at {}: build it with `cargo build --release -p jobcache-cli` and pass its path with --cli",
            args.cli.display()
        ));
    }
    let mut run = Run {
        args,
        root: root.clone(),
        reports: reports.clone(),
        injections,
        stop: dir.join("stop"),
        worker_log: dir.join("workers.log"),
        exe,
        slots: (0..args.workers)
            .map(|i| Slot {
                child: None,
                generation: 0,
                mapped: i % 2 == 1,
                killed: false,
            })
            .collect(),
        crashes: Vec::new(),
        fsize: None,
    };
    let mut rng = Rng::new(args.seed);
    let total = Duration::from_secs_f64(args.minutes * 60.0);
    let begin = Instant::now();

    // All workers start at one moment, on a directory that does not exist.
    let start_at = now_ns() + 1_000_000_000;
    for slot in 0..args.workers {
        run.spawn(slot, start_at);
    }
    std::thread::sleep(Duration::from_secs(1));

    let stop_maintenance = Arc::new(AtomicBool::new(false));
    let maintenance = args.faults.then(|| {
        let m = Maintenance::new(args.cli.clone(), root.clone(), args.seed ^ 0x6C1);
        let stop = Arc::clone(&stop_maintenance);
        std::thread::spawn(move || m.run(&stop))
    });

    let mut phase = Phase::Together;
    // The root removal: when it began, when the tree was gone, and when
    // the root had its layout file again.
    let mut removal: Option<(u64, u64, Option<u64>)> = None;
    let at = |fraction: f64| total.mul_f64(fraction);
    while begin.elapsed() < total {
        std::thread::sleep(Duration::from_millis(20));
        let elapsed = begin.elapsed();
        run.reap_and_restart();
        if !args.faults {
            continue;
        }
        let next = if elapsed >= at(0.75) {
            Phase::RootRemoval
        } else if elapsed >= at(0.6) {
            Phase::FileSizeLimit
        } else if elapsed >= at(0.1).max(Duration::from_secs(2)).min(at(0.5)) {
            Phase::Chaos
        } else {
            Phase::Together
        };
        if next != phase {
            phase = next;
            match phase {
                Phase::FileSizeLimit => run.restart_all(Some(FSIZE_LIMIT), &mut injector),
                Phase::RootRemoval => {
                    run.restart_all(None, &mut injector);
                    // Let them settle on the store, then remove it under them.
                    std::thread::sleep(Duration::from_millis(1500));
                    let t0 = now_ns();
                    match faults::remove_tree(&root, &dir.join("removed-root")) {
                        Ok(false) => injector.note("no root to remove".into()),
                        Ok(true) => {
                            injector.log(t0, "root-removal", ".");
                            injector.count("root removals");
                        }
                        Err(e) => injector.note(format!("could not remove the root: {e}")),
                    }
                    removal = Some((t0, now_ns(), None));
                }
                _ => {}
            }
        }
        if let Some((_, _, end @ None)) = &mut removal {
            if root.join("jobcache-store-layout").is_file() {
                *end = Some(now_ns() + 500_000_000);
            }
        }
        if elapsed < Duration::from_secs(2) {
            continue;
        }
        if rng.chance(0.15) {
            injector.damage();
        }
        if rng.chance(0.03) {
            injector.plant();
        }
        if matches!(phase, Phase::Chaos | Phase::FileSizeLimit) && rng.chance(0.006) {
            run.kill_one(&mut rng, &mut injector);
        }
        injector.unplant(false);
    }

    // The end: stop everything, then one gc with no live process.
    stop_maintenance.store(true, Ordering::Relaxed);
    let maintained = maintenance.and_then(|h| h.join().ok()).unwrap_or_default();
    run.stop_all();
    injector.unplant(true);
    let mut broken = injector.broken.clone();
    if let Some((t0, _, end)) = removal {
        broken.push((t0, end.unwrap_or(u64::MAX)));
    }

    let mut figures = Figures::default();
    let mut details = Details::new();
    let f = &mut figures;
    f.workers = args.workers;
    f.minutes = args.minutes;
    f.seed = args.seed;

    let mut failures = maintained.failures.clone();
    let final_gc = run_cli(&args.cli, &root, &["gc", "--max-size", "1GiB"]);
    if !final_gc.ok {
        // No excuse here: nothing is live and nothing is planted.
        add(
            &mut details,
            "failed API or CLI calls",
            format!("final {}", final_gc.describe()),
        );
        f.failed_calls += 1;
    }
    let tmp = root.join("tmp");
    f.leftover_temp_bytes = if std::fs::symlink_metadata(&tmp).is_ok_and(|m| m.is_dir()) {
        faults::bytes_under(&tmp)
    } else {
        0
    };
    if f.leftover_temp_bytes > 0 {
        let files = faults::regular_files(&tmp);
        details
            .entry("leftover temp bytes")
            .or_default()
            .extend(files.into_iter().take(5).map(|p| format!("tmp/{p}")));
    }
    if !root.join("jobcache-store-layout").is_file() {
        add(
            &mut details,
            "notes",
            "the cache root has no layout file at the end (never recreated?)".into(),
        );
    }

    let changes = sentinel::diff(&before, &sentinel.snapshot());
    f.changes_outside_root = changes.len() as u64;
    details
        .entry("changes outside the root")
        .or_default()
        .extend(changes.into_iter().take(8));

    // The workers' reports.
    let (worker_reports, computations) = read_reports(&reports);
    for r in &worker_reports {
        f.calls += r.calls;
        f.hits += r.hits;
        f.computations += r.computations;
        f.wrong_values += r.wrong_values;
        f.changed_after_verification += r.changed_after_verification;
        f.panics += r.panics;
        f.faults_detected += r.corrupt_warnings;
        failures.extend(r.failures.iter().cloned());
        for d in &r.details {
            let figure = if d.contains("panicked") {
                "panics"
            } else {
                "wrong values"
            };
            add(&mut details, figure, d.clone());
        }
        // Hits of calls that started a full second after the removed tree
        // was gone (a store holding the old directory open can hit in it
        // until then).
        if let Some((_, gone, _)) = removal {
            let after = gone / 1_000_000_000 + 1;
            f.hits_after_root_removal += r
                .hit_seconds
                .range(after + 1..)
                .map(|(_, n)| n)
                .sum::<u64>();
        }
    }
    f.panics += run.crashes.len() as u64;
    details
        .entry("panics")
        .or_default()
        .extend(run.crashes.iter().cloned());
    f.duplicate_computations = duplicates(&computations);
    f.faults_detected += maintained.verify_corrupt;

    // Failures while the harness had broken the root on purpose are
    // refusals the CLI documents (exit 2 for a directory that is not a
    // cache); the others are failures.
    for failure in failures {
        let excused = broken
            .iter()
            .any(|(b, e)| failure.start <= *e && failure.end >= *b);
        if excused {
            f.refusals_of_broken_root += 1;
            add(&mut details, "refusals", failure.what);
        } else {
            f.failed_calls += 1;
            add(&mut details, "failed API or CLI calls", failure.what);
        }
    }
    let mut faults = injector.counts.clone();
    for (k, v) in maintained.counts {
        *faults.entry(k).or_insert(0) += v;
    }
    f.faults = faults;
    details
        .entry("notes")
        .or_default()
        .extend(injector.notes.iter().cloned());
    Ok(Outcome { figures, details })
}

/// Makes `dir` empty and ours: it must not exist, or hold the marker of a
/// previous run.
fn prepare(dir: &Path) -> Result<(), String> {
    if std::fs::symlink_metadata(dir).is_ok() {
        if !dir.join(MARKER).is_file() {
            return Err(format!(
                "{} exists and is not a previous torture run's directory: pass a new --dir",
                dir.display()
            ));
        }
        std::fs::remove_dir_all(dir).map_err(|e| format!("cannot empty {}: {e}", dir.display()))?;
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    std::fs::write(dir.join(MARKER), b"").map_err(|e| format!("{}: {e}", dir.display()))
}

impl Run<'_> {
    fn spawn(&mut self, slot: usize, start_at: u64) {
        let s = &mut self.slots[slot];
        let mut cmd = Command::new(&self.exe);
        cmd.arg("worker")
            .arg("--root")
            .arg(&self.root)
            .args(["--slot", &slot.to_string()])
            .args(["--generation", &s.generation.to_string()])
            .args(["--mode", if s.mapped { "mapped" } else { "copy" }])
            .args(["--seed", &self.args.seed.to_string()])
            .arg("--reports")
            .arg(&self.reports)
            .arg("--injections")
            .arg(&self.injections)
            .args(["--start-at", &start_at.to_string()])
            .arg("--stop")
            .arg(&self.stop)
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        if let Ok(log) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.worker_log)
        {
            cmd.stderr(log);
        }
        if let Some(limit) = self.fsize {
            // SAFETY: between fork and exec only async-signal-safe calls
            // (signal, setrlimit) on values owned by the closure.
            unsafe {
                cmd.pre_exec(move || {
                    // Writes past the limit then fail with EFBIG instead
                    // of killing the process.
                    libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
                    let lim = libc::rlimit {
                        rlim_cur: limit as libc::rlim_t,
                        rlim_max: limit as libc::rlim_t,
                    };
                    if libc::setrlimit(libc::RLIMIT_FSIZE, &lim) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        s.generation += 1;
        s.killed = false;
        match cmd.spawn() {
            Ok(child) => s.child = Some(child),
            Err(e) => self
                .crashes
                .push(format!("could not start worker {slot}: {e}")),
        }
    }

    /// Collects workers that ended; one that ended by itself before the
    /// end died of something (a signal not ours is a crash); restarts them.
    fn reap_and_restart(&mut self) {
        for slot in 0..self.slots.len() {
            let s = &mut self.slots[slot];
            let Some(child) = &mut s.child else { continue };
            let Ok(Some(status)) = child.try_wait() else {
                continue;
            };
            s.child = None;
            if !s.killed {
                if let Some(signal) = status.signal() {
                    self.crashes.push(format!(
                        "worker {slot} (generation {}) died by signal {signal}",
                        s.generation - 1
                    ));
                } else if status.code() != Some(0) {
                    self.crashes.push(format!(
                        "worker {slot} (generation {}) exited with {status}",
                        s.generation - 1
                    ));
                }
            }
            self.spawn(slot, now_ns());
        }
    }

    fn kill(&mut self, slot: usize) -> bool {
        let s = &mut self.slots[slot];
        let Some(child) = &mut s.child else {
            return false;
        };
        s.killed = true;
        let killed = child.kill().is_ok();
        let _ = child.wait();
        s.child = None;
        killed
    }

    fn kill_one(&mut self, rng: &mut Rng, injector: &mut Injector) {
        let slot = rng.below(self.slots.len() as u64) as usize;
        let t0 = now_ns();
        if self.kill(slot) {
            injector.log(t0, "kill", &format!("worker {slot}"));
            injector.count("kills");
            self.spawn(slot, now_ns());
        }
    }

    fn restart_all(&mut self, fsize: Option<u64>, injector: &mut Injector) {
        for slot in 0..self.slots.len() {
            let t0 = now_ns();
            if self.kill(slot) {
                injector.log(t0, "kill", &format!("worker {slot}"));
                injector.count("kills");
            }
        }
        self.fsize = fsize;
        let start_at = now_ns() + 200_000_000;
        for slot in 0..self.slots.len() {
            self.spawn(slot, start_at);
        }
    }

    /// Asks every worker to report and exit; kills the ones that do not
    /// within 20 s.
    fn stop_all(&mut self) {
        let _ = std::fs::write(&self.stop, b"");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let mut live = 0;
            for slot in 0..self.slots.len() {
                let s = &mut self.slots[slot];
                let Some(child) = &mut s.child else { continue };
                match child.try_wait() {
                    Ok(Some(status)) => {
                        s.child = None;
                        if status.signal().is_some() || status.code() != Some(0) {
                            self.crashes
                                .push(format!("worker {slot} ended with {status}"));
                        }
                    }
                    _ => live += 1,
                }
            }
            if live == 0 {
                return;
            }
            if Instant::now() >= deadline {
                for slot in 0..self.slots.len() {
                    if self.kill(slot) {
                        self.crashes
                            .push(format!("worker {slot} did not stop within 20 s; killed"));
                    }
                }
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// What the maintenance thread did.
#[derive(Debug, Default)]
struct Maintained {
    counts: BTreeMap<String, u64>,
    failures: Vec<Failure>,
    verify_corrupt: u64,
}

/// Runs `jobcache gc`, `verify --fix`, `clear --yes`, `Memory::clear` and
/// `Memory::reduce_size` concurrently with the workers.
struct Maintenance {
    cli: PathBuf,
    root: PathBuf,
    rng: Rng,
    done: Maintained,
}

impl Maintenance {
    fn new(cli: PathBuf, root: PathBuf, seed: u64) -> Maintenance {
        Maintenance {
            cli,
            root,
            rng: Rng::new(seed),
            done: Maintained::default(),
        }
    }

    fn run(mut self, stop: &AtomicBool) -> Maintained {
        let mut memory: Option<jobcache::Memory> = None;
        while !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(300 + self.rng.below(1700)));
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let roll = self.rng.below(100);
            let start = now_ns();
            if roll < 60 {
                let (kind, args): (&str, Vec<&str>) = match roll {
                    0..=29 => (
                        "gc runs",
                        vec![
                            "gc",
                            "--max-size",
                            GC_MAX_SIZE,
                            "--max-age",
                            GC_MAX_AGE,
                            "--json",
                        ],
                    ),
                    30..=52 => ("verify runs", vec!["verify", "--fix", "--json"]),
                    _ => ("clear runs", vec!["clear", "--yes", "--json"]),
                };
                let out = run_cli(&self.cli, &self.root, &args);
                self.count(kind);
                if kind == "verify runs" {
                    self.done.verify_corrupt += out.json_number("corrupt");
                }
                if !out.ok {
                    self.done.failures.push(Failure {
                        start,
                        end: now_ns(),
                        what: out.describe(),
                    });
                }
                continue;
            }
            // The API, on one long-lived memory (built when first needed).
            if memory.is_none() {
                match jobcache::Memory::builder(&self.root)
                    .verbose(0)
                    .journal(false)
                    .build()
                {
                    Ok(m) => memory = Some(m),
                    Err(e) => {
                        self.fail(start, format!("Memory::build: {e}"));
                        continue;
                    }
                }
            }
            let Some(m) = &memory else { continue };
            if roll < 85 {
                self.count("API reductions");
                let max_age = Some(Duration::from_secs(30));
                if let Err(e) = m.reduce_size(Some(API_MAX_BYTES), None, max_age) {
                    self.fail(start, format!("Memory::reduce_size: {e}"));
                }
            } else {
                self.count("API clears");
                if let Err(e) = m.clear() {
                    self.fail(start, format!("Memory::clear: {e}"));
                }
            }
        }
        self.done
    }

    fn count(&mut self, kind: &str) {
        *self.done.counts.entry(kind.to_string()).or_insert(0) += 1;
    }

    fn fail(&mut self, start: u64, what: String) {
        self.done.failures.push(Failure {
            start,
            end: now_ns(),
            what,
        });
    }
}

/// A CLI run's result.
struct CliRun {
    shown: String,
    status: String,
    ok: bool,
    stdout: String,
    stderr: String,
}

impl CliRun {
    fn describe(&self) -> String {
        let err: String = self
            .stderr
            .lines()
            .next()
            .unwrap_or("")
            .chars()
            .take(300)
            .collect();
        format!("`{}` {}: {err}", self.shown, self.status)
    }

    fn json_number(&self, field: &str) -> u64 {
        serde_json::from_str::<serde_json::Value>(&self.stdout)
            .ok()
            .and_then(|v| v.get(field).and_then(serde_json::Value::as_u64))
            .unwrap_or(0)
    }
}

/// Runs `jobcache --dir ROOT ARGS…`; `ok` when its exit status is one the
/// CLI README documents for success or for findings: 0, and 1 for
/// `verify` (corrupt entries found). 2 (an error) and signals are not.
fn run_cli(cli: &Path, root: &Path, args: &[&str]) -> CliRun {
    let shown = format!("jobcache {}", args.join(" "));
    let out = Command::new(cli)
        .arg("--dir")
        .arg(root)
        .args(args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output();
    match out {
        Ok(out) => {
            let code = out.status.code();
            let ok = code == Some(0) || (args.first() == Some(&"verify") && code == Some(1));
            CliRun {
                shown,
                status: match out.status.signal() {
                    Some(s) => format!("killed by signal {s}"),
                    None => format!("exited {}", code.unwrap_or(-1)),
                },
                ok,
                stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            }
        }
        Err(e) => CliRun {
            shown,
            status: format!("could not start: {e}"),
            ok: false,
            stdout: String::new(),
            stderr: String::new(),
        },
    }
}

/// One computation read back: function, id, start, end, and which worker
/// process ran it.
type Ran = (String, u64, u64, u64, String);

fn read_reports(dir: &Path) -> (Vec<WorkerReport>, Vec<Ran>) {
    let mut reports = Vec::new();
    let mut ran = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return (reports, ran);
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let owner = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        match path.extension().and_then(|e| e.to_str()) {
            Some("json") => {
                if let Ok(r) = std::fs::read(&path)
                    .map_err(|e| e.to_string())
                    .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
                {
                    reports.push(r);
                }
            }
            Some("computes") => {
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                for line in text.lines() {
                    let p: Vec<&str> = line.split(' ').collect();
                    if let [function, id, start, end] = p[..] {
                        if let (Ok(id), Ok(start), Ok(end)) =
                            (id.parse(), start.parse(), end.parse())
                        {
                            ran.push((function.to_string(), id, start, end, owner.clone()));
                        }
                    }
                }
            }
            _ => {}
        }
    }
    (reports, ran)
}

/// Computations that overlap in time a computation of the same key by
/// another worker process.
fn duplicates(ran: &[Ran]) -> u64 {
    let mut by_key: BTreeMap<(&str, u64), Vec<&Ran>> = BTreeMap::new();
    for r in ran {
        by_key.entry((r.0.as_str(), r.1)).or_default().push(r);
    }
    let mut count = 0;
    for runs in by_key.values() {
        for a in runs {
            if runs.iter().any(|b| b.4 != a.4 && b.2 < a.3 && a.2 < b.3) {
                count += 1;
            }
        }
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlapping_computations_of_one_key_by_two_workers_are_duplicates() {
        let r = |f: &str, id, s, e, w: &str| (f.to_string(), id, s, e, w.to_string());
        let ran = vec![
            r("f", 1, 0, 10, "a"),
            r("f", 1, 5, 15, "b"),
            r("f", 1, 20, 30, "c"),
            r("f", 2, 0, 10, "c"),
            r("f", 1, 12, 14, "a"),
        ];
        // a@0-10 and b@5-15 overlap; a@12-14 overlaps b@5-15.
        assert_eq!(duplicates(&ran), 3);
    }
}
