//! Faults injected into the cache root, and their log.
//!
//! In-place changes (flips, zero-fills, truncations) are appended to the
//! injection log as `t_begin t_end kind path` (path relative to the root,
//! times from [`now_ns`](crate::now_ns), the end taken after the change),
//! which a mapped worker reads when a view it holds does not match.
//!
//! Rules: nothing here follows a symlink (files are opened `O_NOFOLLOW`,
//! walks do not descend into links, `remove_dir_all` unlinks links); the
//! `jobcache-store-layout` file is never damaged or deleted (a damaged
//! layout file is a store that must be refused, not a fault to survive);
//! payload files of the mapped workers' namespace are never truncated (a
//! live map of a file that shrinks faults with SIGBUS, which the library
//! documents: entries are never modified in place).

use crate::calls;
use crate::now_ns;
use crate::rng::Rng;
use crate::sentinel::Sentinel;
use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Paths `store/LAYOUT.md` and `trace/JOURNAL.md` name, where symlinks are
/// planted. The first five are directories.
pub const PLANT_KINDS: [&str; 15] = [
    "ns",
    "tmp",
    "namespace",
    "entry",
    "packs",
    "pack",
    "meta",
    "payload",
    "lock",
    "name",
    "CACHEDIR.TAG",
    "jobcache-store-layout",
    "journal.jsonl",
    "journal.jsonl.1",
    "journal.jsonl.lock",
];

/// Plants at these paths make the root not a usable store while they last:
/// refusals meanwhile are excused.
const ROOT_BREAKING: [&str; 3] = ["ns", "tmp", "jobcache-store-layout"];

/// The layout's version file, never damaged.
const LAYOUT_FILE: &str = "jobcache-store-layout";

/// Whether the log at `log` holds an in-place change (flip or zero-fill)
/// of `rel` that ended at or after `since`.
pub fn changed_in_place_since(log: &Path, rel: &str, since: u64) -> bool {
    let Ok(text) = std::fs::read_to_string(log) else {
        return false;
    };
    text.lines().any(|line| {
        let mut parts = line.splitn(4, ' ');
        let (_, end, kind, path) = (parts.next(), parts.next(), parts.next(), parts.next());
        let end: u64 = end.and_then(|e| e.parse().ok()).unwrap_or(0);
        matches!(kind, Some("flip" | "zero-fill")) && path == Some(rel) && end >= since
    })
}

/// A symlink in place.
#[derive(Debug)]
struct Plant {
    rel: String,
    target: PathBuf,
    planted: u64,
    until: u64,
    breaks_root: bool,
    /// Where a top-level file or directory the link replaced was moved.
    held: Option<PathBuf>,
}

/// The injector: picks faults, makes them, counts and logs them.
#[derive(Debug)]
pub struct Injector {
    root: PathBuf,
    /// Outside the root: where top-level paths wait while a link replaces them.
    hold: PathBuf,
    sentinel: Sentinel,
    log: std::fs::File,
    rng: Rng,
    /// Faults made, by the names of [`crate::report::FAULT_KINDS`].
    pub counts: BTreeMap<String, u64>,
    plants: Vec<Plant>,
    /// Closed intervals (`now_ns`) during which the root was broken on
    /// purpose.
    pub broken: Vec<(u64, u64)>,
    /// The first problems the injector itself met, in words.
    pub notes: Vec<String>,
}

impl Injector {
    /// An injector for `root`, logging to `log` (created), holding what
    /// top-level links replace in `hold` (created; on the root's file system).
    pub fn new(
        root: &Path,
        hold: &Path,
        sentinel: Sentinel,
        log: &Path,
        seed: u64,
    ) -> std::io::Result<Injector> {
        std::fs::create_dir_all(hold)?;
        Ok(Injector {
            root: root.to_path_buf(),
            hold: hold.to_path_buf(),
            sentinel,
            log: std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(log)?,
            rng: Rng::new(seed),
            counts: BTreeMap::new(),
            plants: Vec::new(),
            broken: Vec::new(),
            notes: Vec::new(),
        })
    }

    /// Counts one fault of `kind`.
    pub fn count(&mut self, kind: &str) {
        *self.counts.entry(kind.to_string()).or_insert(0) += 1;
    }

    /// Appends a line to the injection log.
    pub fn log(&mut self, begin: u64, kind: &str, rel: &str) {
        let line = format!("{begin} {} {kind} {rel}\n", now_ns());
        let _ = self.log.write_all(line.as_bytes());
    }

    /// One random damage to the files under the root: a flip, a zero-fill,
    /// a truncation or a deletion.
    pub fn damage(&mut self) {
        let files = regular_files(&self.root);
        let candidates: Vec<&String> = files.iter().filter(|f| f.as_str() != LAYOUT_FILE).collect();
        if candidates.is_empty() {
            return;
        }
        // Mostly payloads, metas and packs, the files that hold values.
        let valued: Vec<&String> = candidates
            .iter()
            .copied()
            .filter(|f| f.ends_with("/payload") || f.ends_with("/meta") || is_pack(f))
            .collect();
        let pool = if !valued.is_empty() && self.rng.chance(0.8) {
            &valued
        } else {
            &candidates
        };
        let rel = pool[self.rng.below(pool.len() as u64) as usize].clone();
        if is_pack(&rel) {
            self.damage_pack(&rel);
            return;
        }
        let path = self.root.join(&rel);
        let begin = now_ns();
        let roll = self.rng.below(10);
        let mapped_payload =
            rel.starts_with(&format!("ns/{}/", calls::ARRAY_MAPPED)) && rel.ends_with("/payload");
        let (kind, done) = match roll {
            0..=3 => ("flip", self.flip(&path)),
            4..=5 => ("zero-fill", self.zero_fill(&path)),
            6..=7 if !mapped_payload => ("truncation", self.truncate(&path)),
            _ => ("deletion", self.delete(&rel)),
        };
        if done {
            self.log(begin, kind, &rel);
            self.count(match kind {
                "flip" => "flips",
                "zero-fill" => "zero-fills",
                "truncation" => "truncations",
                _ => "deletions",
            });
        }
    }

    /// One random damage to a pack (`store/LAYOUT.md`, "Packs"), aimed at
    /// its records: a bit flipped in a random record, a range zero-filled
    /// from inside one, the pack cut in the middle of one (its last, half
    /// the time: a torn append), or the pack deleted.
    fn damage_pack(&mut self, rel: &str) {
        let path = self.root.join(rel);
        let begin = now_ns();
        let roll = self.rng.below(10);
        let (kind, done) = if roll >= 8 {
            ("deletion", std::fs::remove_file(&path).is_ok())
        } else {
            let Some((file, len)) = Injector::open(&path) else {
                return;
            };
            // Read through the file just opened (not followed if a link):
            // its `len` bytes, so every record found lies below `len`.
            let mut bytes = vec![0u8; len as usize];
            if file.read_exact_at(&mut bytes, 0).is_err() {
                return;
            }
            let records = record_ranges(&bytes);
            let Some(&(start, end)) = (if roll >= 6 && self.rng.chance(0.5) {
                records.last()
            } else {
                records.get(self.rng.below(records.len().max(1) as u64) as usize)
            }) else {
                return;
            };
            let at = start + self.rng.below(end - start);
            match roll {
                0..=3 => {
                    let byte = [bytes[at as usize] ^ (1 << self.rng.below(8))];
                    ("flip", file.write_all_at(&byte, at).is_ok())
                }
                4..=5 => {
                    let n = (1 + self.rng.below(4096)).min(len - at);
                    let zeros = vec![0u8; n as usize];
                    ("zero-fill", file.write_all_at(&zeros, at).is_ok())
                }
                _ => ("truncation", file.set_len(at).is_ok()),
            }
        };
        if done {
            self.log(begin, kind, rel);
            self.count(match kind {
                "flip" => "pack flips",
                "zero-fill" => "pack zero-fills",
                "truncation" => "pack truncations",
                _ => "pack deletions",
            });
        }
    }

    fn open(path: &Path) -> Option<(std::fs::File, u64)> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
            .ok()?;
        let len = file.metadata().ok()?.len();
        (len > 0).then_some((file, len))
    }

    fn flip(&mut self, path: &Path) -> bool {
        let Some((file, len)) = Injector::open(path) else {
            return false;
        };
        let at = self.rng.below(len);
        let mut byte = [0u8];
        if file.read_exact_at(&mut byte, at).is_err() {
            return false;
        }
        byte[0] ^= 1 << self.rng.below(8);
        file.write_all_at(&byte, at).is_ok()
    }

    fn zero_fill(&mut self, path: &Path) -> bool {
        let Some((file, len)) = Injector::open(path) else {
            return false;
        };
        let at = self.rng.below(len);
        let n = (1 + self.rng.below(4096)).min(len - at);
        let zeros = vec![0u8; n as usize];
        file.write_all_at(&zeros, at).is_ok()
    }

    fn truncate(&mut self, path: &Path) -> bool {
        let Some((file, len)) = Injector::open(path) else {
            return false;
        };
        file.set_len(self.rng.below(len)).is_ok()
    }

    /// Deletes the file, or one time in four its whole entry directory.
    fn delete(&mut self, rel: &str) -> bool {
        let path = self.root.join(rel);
        if rel.starts_with("ns/") && rel.matches('/').count() == 3 && self.rng.chance(0.25) {
            if let Some(entry) = path.parent() {
                return std::fs::remove_dir_all(entry).is_ok();
            }
        }
        std::fs::remove_file(path).is_ok()
    }

    /// Plants a symlink into the sentinel at a random layout path (the
    /// path's current file or directory is removed first), for a random
    /// while.
    pub fn plant(&mut self) {
        let kind = PLANT_KINDS[self.rng.below(PLANT_KINDS.len() as u64) as usize];
        let function = calls::ALL[self.rng.below(calls::ALL.len() as u64) as usize];
        let ids = if function.starts_with("torture_array") {
            calls::ARRAY_IDS
        } else {
            calls::SMALL_IDS
        };
        let key = calls::key(function, self.rng.below(ids)).unwrap_or_default();
        let rel = match kind {
            "pack" => format!("packs/{}.pack", key.get(..2).unwrap_or("00")),
            "namespace" => format!("ns/{function}"),
            "entry" => format!("ns/{function}/{key}"),
            "meta" | "payload" => format!("ns/{function}/{key}/{kind}"),
            "lock" => format!("ns/{function}/{key}.lock"),
            "name" => format!("ns/{function}/name"),
            top => top.to_string(),
        };
        let path = self.root.join(&rel);
        // Only where the layout would put it: every directory above it must
        // be a real one (never through a link, ours included: that would
        // plant inside the sentinel), never a fresh tree of our own.
        if !real_dirs_above(&self.root, &rel) || self.plants.iter().any(|p| p.rel == rel) {
            return;
        }
        let target = self.sentinel.target(kind);
        let begin = now_ns();
        // A top-level path (the layout file, `ns`, the journal…) is moved
        // aside and put back afterwards: the link replaces it for a while,
        // it does not destroy the store. Deeper paths are simply removed.
        let top_level = !rel.contains('/');
        let mut held = None;
        let mut planted = false;
        for attempt in 0..3 {
            match std::fs::symlink_metadata(&path) {
                Ok(_) if top_level && held.is_none() => {
                    let aside = self.hold.join(format!("{kind}-{begin}-{attempt}"));
                    if std::fs::rename(&path, &aside).is_ok() {
                        held = Some(aside);
                    }
                }
                Ok(m) if m.file_type().is_dir() => {
                    let _ = std::fs::remove_dir_all(&path);
                }
                Ok(_) => {
                    let _ = std::fs::remove_file(&path);
                }
                Err(_) => {}
            }
            if std::os::unix::fs::symlink(&target, &path).is_ok() {
                planted = true;
                break;
            }
        }
        if !planted {
            if let Some(aside) = held {
                restore(&aside, &path);
            }
            return;
        }
        self.log(begin, "symlink", &rel);
        self.count(if kind == "pack" {
            "pack symlinks"
        } else {
            "symlinks"
        });
        let lasts = Duration::from_millis(300 + self.rng.below(1500));
        self.plants.push(Plant {
            rel,
            target,
            planted: begin,
            until: now_ns() + lasts.as_nanos() as u64,
            breaks_root: ROOT_BREAKING.contains(&kind),
            held,
        });
    }

    /// Removes the symlinks whose time is up (all of them with `all`),
    /// if they are still ours.
    pub fn unplant(&mut self, all: bool) {
        let now = now_ns();
        let (due, keep): (Vec<Plant>, Vec<Plant>) = std::mem::take(&mut self.plants)
            .into_iter()
            .partition(|p| all || p.until <= now);
        self.plants = keep;
        for plant in due {
            let path = self.root.join(&plant.rel);
            let ours = std::fs::read_link(&path).is_ok_and(|t| t == plant.target);
            if ours {
                if let Err(e) = std::fs::remove_file(&path) {
                    self.note(format!(
                        "could not remove the symlink {}: {e}",
                        path.display()
                    ));
                }
            }
            if let Some(aside) = &plant.held {
                restore(aside, &path);
            }
            if plant.breaks_root {
                // A margin for whoever met the link to finish failing.
                self.broken.push((plant.planted, now_ns() + 500_000_000));
            }
        }
    }

    /// Notes a problem of the injector itself (reported, first few kept).
    pub fn note(&mut self, what: String) {
        if self.notes.len() < 10 {
            self.notes.push(what);
        }
    }
}

/// Whether `rel` (relative to the root) is a pack file.
fn is_pack(rel: &str) -> bool {
    rel.starts_with("packs/") && rel.ends_with(".pack")
}

/// Where the records of a pack's bytes lie, as `(start, end)` offsets: from
/// each record magic (`JCPK`) to the next one, or to the end (the
/// injector only aims; what the store accepts is the store's business).
fn record_ranges(bytes: &[u8]) -> Vec<(u64, u64)> {
    let starts: Vec<u64> = bytes
        .windows(4)
        .enumerate()
        .filter(|(_, w)| *w == b"JCPK")
        .map(|(i, _)| i as u64)
        .collect();
    let ends = starts.iter().skip(1).copied().chain([bytes.len() as u64]);
    starts.iter().copied().zip(ends).collect()
}

/// Whether the root and every directory between it and `rel` are real
/// directories, not links.
fn real_dirs_above(root: &Path, rel: &str) -> bool {
    let mut dir = root.to_path_buf();
    let is_dir = |p: &Path| std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_dir());
    if !is_dir(&dir) {
        return false;
    }
    let parts: Vec<&str> = rel.split('/').collect();
    for part in &parts[..parts.len() - 1] {
        dir.push(part);
        if !is_dir(&dir) {
            return false;
        }
    }
    true
}

/// Puts `aside` back at `path` if nothing took its place meanwhile, else
/// drops it.
fn restore(aside: &Path, path: &Path) {
    if std::fs::symlink_metadata(path).is_err() && std::fs::rename(aside, path).is_ok() {
        return;
    }
    if std::fs::symlink_metadata(aside).is_ok_and(|m| m.is_dir()) {
        let _ = std::fs::remove_dir_all(aside);
    } else {
        let _ = std::fs::remove_file(aside);
    }
}

/// Removes the directory `root` and everything in it, as `rm -rf` does:
/// the path disappears at once (renamed to `graveyard`, on the same file
/// system), then the tree is deleted, trying again for a while if
/// processes that still hold the directory open create files in it.
/// `Ok(false)` if there was no root to remove.
pub fn remove_tree(root: &Path, graveyard: &Path) -> std::io::Result<bool> {
    match std::fs::rename(root, graveyard) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    }
    let mut last = Ok(true);
    for _ in 0..300 {
        match std::fs::remove_dir_all(graveyard) {
            Ok(()) => return Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(true),
            Err(e) => last = Err(e),
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    last
}

/// Regular files under `root`, relative, found without following links.
pub fn regular_files(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    collect(root, "", &mut out, &mut |_, _| {});
    out
}

/// Bytes of the regular files under `dir` (links are not followed).
pub fn bytes_under(dir: &Path) -> u64 {
    let mut total = 0;
    collect(dir, "", &mut Vec::new(), &mut |_, len| total += len);
    total
}

fn collect(dir: &Path, rel: &str, out: &mut Vec<String>, sizes: &mut dyn FnMut(&str, u64)) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let child = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        let Ok(ft) = entry.file_type() else { continue };
        if ft.is_dir() {
            collect(&entry.path(), &child, out, sizes);
        } else if ft.is_file() {
            if let Ok(m) = entry.metadata() {
                sizes(&child, m.len());
            }
            out.push(child);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plants_never_go_through_a_link() -> std::io::Result<()> {
        let dir = std::env::temp_dir().join(format!("torture-above-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("root/ns/f"))?;
        std::fs::create_dir_all(dir.join("elsewhere/f"))?;
        let root = dir.join("root");
        assert!(real_dirs_above(&root, "ns"));
        assert!(real_dirs_above(&root, "ns/f/key"));
        assert!(!real_dirs_above(&root, "ns/g/key"));
        std::fs::rename(root.join("ns"), dir.join("ns-aside"))?;
        std::os::unix::fs::symlink(dir.join("elsewhere"), root.join("ns"))?;
        assert!(!real_dirs_above(&root, "ns/f/key"));
        std::fs::remove_dir_all(&dir)?;
        Ok(())
    }

    #[test]
    fn records_are_found_by_their_magic() {
        let bytes = b"JCPKaaaaJCPKbbJCPK";
        assert_eq!(record_ranges(bytes), [(0, 8), (8, 14), (14, 18)]);
        assert!(record_ranges(b"torn").is_empty());
        assert!(is_pack("packs/ab.pack") && !is_pack("ns/f/k/meta"));
    }

    #[test]
    fn the_log_tells_changes_after_a_start() -> std::io::Result<()> {
        let dir = std::env::temp_dir().join(format!("torture-log-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let log = dir.join("log");
        std::fs::write(
            &log,
            "10 20 flip ns/a/k/payload\n30 40 truncation ns/a/k/payload\n50 60 deletion ns/a/k/payload\n",
        )?;
        let seen = |since| changed_in_place_since(&log, "ns/a/k/payload", since);
        assert!(seen(20));
        assert!(
            !seen(21),
            "truncations and deletions do not change a live view"
        );
        assert!(!changed_in_place_since(&log, "ns/a/j/payload", 0));
        std::fs::remove_dir_all(&dir)?;
        Ok(())
    }
}
