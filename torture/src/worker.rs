//! A worker process: cached calls in a loop, each result checked.

use crate::calls::{self, Op};
use crate::report::{Failure, WorkerReport};
use crate::{faults, now_ns, rng::Rng};
use jobcache::{Cached, Memory};
use std::io::Write;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What a worker is told on its command line.
#[derive(Debug, Clone)]
pub struct WorkerArgs {
    /// The cache directory.
    pub root: PathBuf,
    /// Its slot.
    pub slot: usize,
    /// How many times the slot was started before.
    pub generation: u32,
    /// Mapped mode (`mmap(true)` and `call_mapped`) or copy mode (`call`).
    pub mapped: bool,
    /// The run's seed (mixed with the slot and generation).
    pub seed: u64,
    /// Where it writes its report (outside the cache root).
    pub reports: PathBuf,
    /// The orchestrator's log of in-place changes.
    pub injections: PathBuf,
    /// When to start (`now_ns`), so that workers start together.
    pub start_at: u64,
    /// A file whose appearance tells the worker to report and exit.
    pub stop: PathBuf,
}

/// How often the report file is rewritten.
const REPORT_EVERY: Duration = Duration::from_millis(250);

static CORRUPT_WARNINGS: AtomicU64 = AtomicU64::new(0);
static OTHER_WARNINGS: AtomicU64 = AtomicU64::new(0);
static PANICS: AtomicU64 = AtomicU64::new(0);
static PANIC_MESSAGES: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Counts the library's warnings: those about a corrupt entry are faults
/// it detected.
struct CountingLogger;

impl log::Log for CountingLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::Level::Warn
    }
    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let text = record.args().to_string().to_lowercase();
        if text.contains("corrupt") {
            CORRUPT_WARNINGS.fetch_add(1, Ordering::Relaxed);
        } else {
            OTHER_WARNINGS.fetch_add(1, Ordering::Relaxed);
        }
    }
    fn flush(&self) {}
}

static LOGGER: CountingLogger = CountingLogger;

fn install_hooks() {
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(log::LevelFilter::Warn);
    }
    std::panic::set_hook(Box::new(|info| {
        PANICS.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut messages) = PANIC_MESSAGES.lock() {
            if messages.len() < 5 {
                messages.push(info.to_string());
            }
        }
    }));
}

/// The functions a worker calls.
struct Functions {
    u64: Cached<fn(u64) -> u64>,
    vec: Cached<fn(u64) -> Vec<u32>>,
    string: Cached<fn(u64) -> String>,
    fallible: Cached<fn(u64) -> Result<u64, String>>,
    array: Cached<fn(u64) -> ndarray::Array2<u64>>,
}

impl Functions {
    fn new(memory: &Memory, mapped: bool) -> Functions {
        let (array_name, array): (&str, fn(u64) -> ndarray::Array2<u64>) = if mapped {
            (calls::ARRAY_MAPPED, calls::array_mapped)
        } else {
            (calls::ARRAY_COPY, calls::array_copy)
        };
        Functions {
            u64: memory.cache_named(calls::SMALL_U64, calls::small_u64),
            vec: memory.cache_named(calls::SMALL_VEC, calls::small_vec),
            string: memory.cache_named(calls::SMALL_STRING, calls::small_string),
            fallible: memory.cache_named(calls::FALLIBLE, calls::fallible),
            array: memory.cache_named(array_name, array),
        }
    }
}

/// A worker's whole life; returns its exit code.
pub fn run(args: &WorkerArgs) -> i32 {
    install_hooks();
    let mut worker = Worker::new(args);
    let wait = args.start_at.saturating_sub(now_ns());
    std::thread::sleep(Duration::from_nanos(wait));
    let Some(memory) = worker.build() else {
        worker.flush();
        return 0;
    };
    let functions = Functions::new(&memory, args.mapped);
    let mut last_flush = Instant::now();
    let mut last_stop_check = Instant::now();
    loop {
        worker.one_call(&functions);
        if last_flush.elapsed() >= REPORT_EVERY {
            worker.flush();
            last_flush = Instant::now();
        }
        if last_stop_check.elapsed() >= Duration::from_millis(100) {
            if args.stop.exists() {
                break;
            }
            last_stop_check = Instant::now();
        }
    }
    worker.flush();
    0
}

struct Worker<'a> {
    args: &'a WorkerArgs,
    rng: Rng,
    report: WorkerReport,
    computes: Vec<calls::Computation>,
}

impl<'a> Worker<'a> {
    fn new(args: &'a WorkerArgs) -> Worker<'a> {
        Worker {
            args,
            rng: Rng::new(
                args.seed
                    ^ crate::rng::mix(((args.slot as u64) << 32) | u64::from(args.generation)),
            ),
            report: WorkerReport {
                slot: args.slot,
                generation: args.generation,
                mapped: args.mapped,
                ..WorkerReport::default()
            },
            computes: Vec::new(),
        }
    }

    /// Builds the memory, retrying while it fails (each failure is
    /// reported); `None` if told to stop first.
    fn build(&mut self) -> Option<Memory> {
        loop {
            let start = now_ns();
            let built = catch_unwind(|| {
                Memory::builder(&self.args.root)
                    .verbose(0)
                    .mmap(self.args.mapped)
                    .build()
            });
            match built {
                Ok(Ok(memory)) => return Some(memory),
                Ok(Err(e)) => self.report.failures.push(Failure {
                    start,
                    end: now_ns(),
                    what: format!("worker {} Memory::build: {e}", self.args.slot),
                }),
                Err(_) => self
                    .report
                    .detail(format!("worker {} Memory::build panicked", self.args.slot)),
            }
            if self.args.stop.exists() || self.report.failures.len() > 1000 {
                return None;
            }
            self.flush();
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn one_call(&mut self, f: &Functions) {
        // Now and then, clear one function through the API, as a user would.
        if self.rng.below(3000) == 0 {
            let start = now_ns();
            if let Ok(Err(e)) = catch_unwind(AssertUnwindSafe(|| f.u64.clear())) {
                self.report.failures.push(Failure {
                    start,
                    end: now_ns(),
                    what: format!("worker {} Cached::clear: {e}", self.args.slot),
                });
            }
        }
        let op = Op::pick(&mut self.rng);
        let start = now_ns();
        let outcome = catch_unwind(AssertUnwindSafe(|| self.call(f, op, start)));
        let ran = calls::take_computations();
        self.report.calls += 1;
        if ran.is_empty() {
            self.report.hits += 1;
            *self
                .report
                .hit_seconds
                .entry(start / 1_000_000_000)
                .or_insert(0) += 1;
        } else {
            self.report.computations += ran.len() as u64;
        }
        self.computes.extend(ran);
        let mode = if self.args.mapped { "mapped" } else { "copy" };
        match outcome {
            Ok(Checked::Right) => {}
            Ok(Checked::ChangedAfter) => self.report.changed_after_verification += 1,
            Ok(Checked::Wrong(why)) => {
                self.report.wrong_values += 1;
                self.report
                    .detail(format!("worker {} ({mode}) {op:?}: {why}", self.args.slot));
            }
            Err(_) => {
                let message = PANIC_MESSAGES
                    .lock()
                    .ok()
                    .and_then(|m| m.last().cloned())
                    .unwrap_or_default();
                self.report.detail(format!(
                    "worker {} ({mode}) {op:?} panicked: {message}",
                    self.args.slot
                ));
            }
        }
    }

    /// Makes one call and checks its value.
    fn call(&self, f: &Functions, op: Op, start: u64) -> Checked {
        match op {
            Op::U64(id) => Checked::equal(f.u64.call(id), calls::expected_u64(id)),
            Op::Vec(id) => Checked::equal(f.vec.call(id), calls::expected_vec(id)),
            Op::Str(id) => Checked::equal(f.string.call(id), calls::expected_string(id)),
            Op::Fallible(id) => {
                Checked::equal(f.fallible.try_call(id), calls::expected_fallible(id))
            }
            Op::Array(id) if self.args.mapped => {
                let out = f.array.call_mapped(id);
                match calls::array_mismatch(id, out.view()) {
                    None => Checked::Right,
                    Some(_) if out.is_mapped() && self.changed_after(id, start) => {
                        Checked::ChangedAfter
                    }
                    Some(why) => {
                        let how = if out.is_mapped() {
                            "mapped view"
                        } else {
                            "owned"
                        };
                        Checked::Wrong(format!("{how}: {why}"))
                    }
                }
            }
            Op::Array(id) => match calls::array_mismatch(id, f.array.call(id).view()) {
                None => Checked::Right,
                Some(why) => Checked::Wrong(why),
            },
        }
    }

    /// Whether the orchestrator changed the payload of the mapped array
    /// `id` in place after a call that started at `start` began. Read twice,
    /// because the orchestrator logs a change just after making it.
    fn changed_after(&self, id: u64, start: u64) -> bool {
        let Some(key) = calls::key(calls::ARRAY_MAPPED, id) else {
            return false;
        };
        let payload = format!("ns/{}/{key}/payload", calls::ARRAY_MAPPED);
        for attempt in 0..2 {
            if attempt > 0 {
                std::thread::sleep(Duration::from_millis(300));
            }
            if faults::changed_in_place_since(&self.args.injections, &payload, start) {
                return true;
            }
        }
        false
    }

    /// Writes the report (whole, by rename) and appends the computations.
    fn flush(&mut self) {
        self.report.corrupt_warnings = CORRUPT_WARNINGS.load(Ordering::Relaxed);
        self.report.other_warnings = OTHER_WARNINGS.load(Ordering::Relaxed);
        self.report.panics = PANICS.load(Ordering::Relaxed);
        let stem = report_stem(&self.args.reports, self.args.slot, self.args.generation);
        if !self.computes.is_empty() {
            let lines: String = self
                .computes
                .iter()
                .map(|c| format!("{} {} {} {}\n", c.function, c.id, c.start, c.end))
                .collect();
            let appended = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(stem.with_extension("computes"))
                .and_then(|mut f| f.write_all(lines.as_bytes()));
            if appended.is_ok() {
                self.computes.clear();
            }
        }
        if let Ok(json) = serde_json::to_vec(&self.report) {
            let tmp = stem.with_extension("json.tmp");
            if std::fs::write(&tmp, json).is_ok() {
                let _ = std::fs::rename(&tmp, stem.with_extension("json"));
            }
        }
    }
}

/// `reports/w<slot>-g<generation>`: the stem of a worker's report files.
pub fn report_stem(reports: &Path, slot: usize, generation: u32) -> PathBuf {
    reports.join(format!("w{slot}-g{generation}"))
}

enum Checked {
    Right,
    ChangedAfter,
    Wrong(String),
}

impl Checked {
    fn equal<T: PartialEq + std::fmt::Debug>(got: T, expected: T) -> Checked {
        if got == expected {
            Checked::Right
        } else {
            let cut = |v: &T| format!("{v:?}").chars().take(80).collect::<String>();
            Checked::Wrong(format!("got {}, expected {}", cut(&got), cut(&expected)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The key the harness computes to find an entry is the key a worker's
    /// call stores under: otherwise an in-place change made after a mapped
    /// hit was verified would be counted as a wrong value.
    #[test]
    fn harness_keys_name_the_entries_workers_store() {
        let dir =
            std::env::temp_dir().join(format!("jobcache-torture-keys-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let memory = Memory::new(&dir).unwrap();
        let f = Functions::new(&memory, true);
        f.u64.call(7);
        f.array.call(0);
        for (function, id) in [(calls::SMALL_U64, 7), (calls::ARRAY_MAPPED, 0)] {
            let key = calls::key(function, id).unwrap();
            // A small result is a record of its key's pack, which holds the
            // key's bytes (store/LAYOUT.md, "Packs"); an array result has a
            // directory of its own.
            let (entry, stored) = if function == calls::SMALL_U64 {
                let pack = dir.join("packs").join(format!("{}.pack", &key[..2]));
                let raw: Vec<u8> = (0..32)
                    .map(|i| u8::from_str_radix(&key[2 * i..2 * i + 2], 16).unwrap())
                    .collect();
                let held = std::fs::read(&pack).is_ok_and(|b| b.windows(32).any(|w| w == raw));
                (pack, held)
            } else {
                let entry = dir.join("ns").join(function).join(&key);
                let stored = entry.is_dir();
                (entry, stored)
            };
            assert!(stored, "{function}({id}): no entry {}", entry.display());
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
