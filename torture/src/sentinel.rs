//! The sentinel: a directory outside the cache root that planted symlinks
//! point into. Its full contents are snapshotted before the run and
//! compared after it; any difference is a change outside the root.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// Targets that are directories (the plant replaces a directory of the
/// layout); the others are files.
pub const DIR_KINDS: [&str; 5] = ["ns", "tmp", "namespace", "entry", "packs"];

/// The sentinel directory.
#[derive(Debug, Clone)]
pub struct Sentinel {
    dir: PathBuf,
}

/// What a snapshot records of each path: type, size, modification time
/// and a hash of the bytes (or the link target).
pub type Snapshot = BTreeMap<String, String>;

impl Sentinel {
    /// Fills `dir` (created, must not exist) with a directory per
    /// directory kind and a file per file kind, all dated two hours ago,
    /// so that a cleaner removing old leftovers would find them.
    pub fn create(dir: &Path, file_kinds: &[&str]) -> io::Result<Sentinel> {
        std::fs::create_dir(dir)?;
        let old = SystemTime::now() - Duration::from_secs(2 * 3600);
        for kind in DIR_KINDS {
            let d = dir.join(kind);
            std::fs::create_dir(&d)?;
            let nested = [
                "sub",
                "some.namespace",
                "del-1-2-3",
                "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            ];
            for (i, sub) in nested.iter().enumerate() {
                std::fs::create_dir(d.join(sub))?;
                write_old(&d.join(sub).join("meta"), i + 10, old)?;
                set_old(&d.join(sub), old)?;
            }
            write_old(&d.join("name"), 7, old)?;
            write_old(&d.join("old-data"), 3000, old)?;
            set_old(&d, old)?;
        }
        for kind in file_kinds {
            write_old(&dir.join(kind), 100 + kind.len() * 37, old)?;
        }
        set_old(dir, old)?;
        Ok(Sentinel {
            dir: dir.to_path_buf(),
        })
    }

    /// Where a symlink planted for `kind` points.
    pub fn target(&self, kind: &str) -> PathBuf {
        self.dir.join(kind)
    }

    /// Everything under the sentinel, the directory itself included.
    pub fn snapshot(&self) -> Snapshot {
        let mut out = Snapshot::new();
        walk(&self.dir, "", &mut out);
        out
    }
}

/// The paths that differ between two snapshots, described.
pub fn diff(before: &Snapshot, after: &Snapshot) -> Vec<String> {
    let mut out = Vec::new();
    for (path, was) in before {
        match after.get(path) {
            None => out.push(format!("{path} was removed (was {was})")),
            Some(now) if now != was => out.push(format!("{path} changed: {was} -> {now}")),
            Some(_) => {}
        }
    }
    for (path, now) in after {
        if !before.contains_key(path) {
            out.push(format!("{path} appeared ({now})"));
        }
    }
    out
}

fn write_old(path: &Path, len: usize, when: SystemTime) -> io::Result<()> {
    let bytes: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
    std::fs::write(path, bytes)?;
    set_old(path, when)
}

fn set_old(path: &Path, when: SystemTime) -> io::Result<()> {
    std::fs::File::open(path)?.set_modified(when)
}

fn walk(path: &Path, rel: &str, out: &mut Snapshot) {
    let name = if rel.is_empty() { "." } else { rel };
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        out.insert(name.to_string(), "unreadable".into());
        return;
    };
    let mtime = meta
        .modified()
        .ok()
        .and_then(|m| m.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    let ft = meta.file_type();
    let what = if ft.is_symlink() {
        let target = std::fs::read_link(path).unwrap_or_default();
        format!("symlink to {}", target.display())
    } else if ft.is_dir() {
        format!("directory, mtime {mtime}")
    } else if ft.is_file() {
        let hash = std::fs::read(path).map_or(0, |b| fnv1a(&b));
        format!(
            "file of {} bytes, mtime {mtime}, hash {hash:016x}",
            meta.len()
        )
    } else {
        format!("special file, mtime {mtime}")
    };
    out.insert(name.to_string(), what);
    if ft.is_dir() {
        let Ok(entries) = std::fs::read_dir(path) else {
            return;
        };
        for entry in entries.flatten() {
            let child = entry.file_name().to_string_lossy().into_owned();
            let child_rel = if rel.is_empty() {
                child
            } else {
                format!("{rel}/{child}")
            };
            walk(&entry.path(), &child_rel, out);
        }
    }
}

/// FNV-1a, 64 bits: enough to see that bytes changed.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_change_is_seen() -> io::Result<()> {
        let base = std::env::temp_dir().join(format!("torture-sentinel-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(&base)?;
        let s = Sentinel::create(&base.join("s"), &["meta", "payload"])?;
        let before = s.snapshot();
        assert!(diff(&before, &s.snapshot()).is_empty());
        std::fs::write(s.target("meta"), b"x")?;
        std::fs::remove_dir_all(s.target("tmp").join("sub"))?;
        std::fs::write(s.target("ns").join("new"), b"")?;
        let changes = diff(&before, &s.snapshot());
        std::fs::remove_dir_all(&base)?;
        // meta; tmp, tmp/sub, tmp/sub/meta; ns and ns/new.
        assert_eq!(changes.len(), 6, "{changes:#?}");
        Ok(())
    }
}
