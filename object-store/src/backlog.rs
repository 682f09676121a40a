//! The backlog: entries published to the local tier while the remote could
//! not be reached, listed in a file at the local tier's root and uploaded
//! at the next successful contact with the remote.
//!
//! `<local root>/.jobcache-remote-backlog` holds one JSON line per entry
//! (`{"ns": "...", "key": "..."}`), each appended with one `write` in
//! append mode, so processes sharing the local tier can add at once. A
//! drain first renames the file to `.jobcache-remote-backlog.draining-
//! <nonce>` (new lines then start a new file), uploads what it lists, adds
//! back what could not be sent, and only then removes the renamed file: a
//! drain cut short leaves its file, which a later drain takes over once it
//! is [`STALE_DRAIN`] old. The names start with a dot, which the file store
//! accepts at its root; no path is followed through a symlink.

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// The backlog file's name at the local tier's root.
pub(crate) const FILE: &str = ".jobcache-remote-backlog";
/// The prefix of a backlog file being drained.
const DRAINING: &str = ".jobcache-remote-backlog.draining-";
/// A draining file this old was left by a drain that stopped; it is taken
/// over.
pub(crate) const STALE_DRAIN: Duration = Duration::from_secs(10 * 60);
/// The backlog file stops growing at this size (about 100,000 entries):
/// entries past it stay in the local tier only (one warning).
pub(crate) const MAX_BYTES: u64 = 16 << 20;

#[derive(Debug, Serialize, Deserialize)]
struct Line {
    ns: String,
    key: String,
}

/// The backlog of one local tier.
#[derive(Debug)]
pub(crate) struct Backlog {
    root: PathBuf,
}

/// The entries of the files a drain claimed.
#[derive(Debug, Default)]
pub(crate) struct Taken {
    /// The claimed files, removed by [`Backlog::finish`].
    files: Vec<PathBuf>,
    /// `(namespace, key)`, each once, in order.
    pub(crate) entries: Vec<(String, String)>,
}

fn open_nofollow(options: &mut OpenOptions, path: &Path) -> io::Result<File> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW);
    }
    options.open(path)
}

impl Backlog {
    /// The backlog of the local tier at `root`.
    pub(crate) fn new(root: &Path) -> Backlog {
        Backlog {
            root: root.to_path_buf(),
        }
    }

    /// The backlog file.
    pub(crate) fn path(&self) -> PathBuf {
        self.root.join(FILE)
    }

    /// Adds an entry. `Ok(false)`: the file is full ([`MAX_BYTES`]).
    pub(crate) fn add(&self, namespace: &str, key: &str) -> io::Result<bool> {
        let mut line = serde_json::to_vec(&Line {
            ns: namespace.to_string(),
            key: key.to_string(),
        })
        .map_err(io::Error::other)?;
        line.push(b'\n');
        let mut file = open_nofollow(OpenOptions::new().append(true).create(true), &self.path())?;
        if file.metadata()?.len() + line.len() as u64 > MAX_BYTES {
            return Ok(false);
        }
        // One write of a whole line: lines of processes appending at once
        // do not interleave.
        file.write_all(&line)?;
        Ok(true)
    }

    /// Claims the backlog file and any draining file left by a drain that
    /// stopped, and reads their entries. Lines that do not parse (a write
    /// cut by a crash) are skipped.
    pub(crate) fn take(&self) -> io::Result<Taken> {
        let mut taken = Taken::default();
        let claimed = self
            .root
            .join(format!("{DRAINING}{}", crate::remote::nonce()));
        match fs::rename(self.path(), &claimed) {
            Ok(()) => taken.files.push(claimed),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        for dirent in fs::read_dir(&self.root)? {
            let dirent = dirent?;
            let name = dirent.file_name();
            let Some(name) = name.to_str() else { continue };
            let path = dirent.path();
            if !name.starts_with(DRAINING) || taken.files.contains(&path) {
                continue;
            }
            // Not followed: a symlink's own type and time.
            let meta = dirent.metadata()?;
            let old = meta
                .modified()
                .ok()
                .and_then(|m| SystemTime::now().duration_since(m).ok())
                .is_some_and(|age| age >= STALE_DRAIN);
            if meta.file_type().is_file() && old {
                // Renamed again, so that two drains cannot both take it.
                let mine = self
                    .root
                    .join(format!("{DRAINING}{}", crate::remote::nonce()));
                if fs::rename(&path, &mine).is_ok() {
                    taken.files.push(mine);
                }
            }
        }
        let mut seen = BTreeSet::new();
        for path in &taken.files {
            let mut text = Vec::new();
            let read = open_nofollow(OpenOptions::new().read(true), path)
                .and_then(|f| f.take(MAX_BYTES * 2).read_to_end(&mut text));
            if let Err(e) = read {
                // A symlink or another file put there: removed unread.
                log::warn!(
                    target: "jobcache",
                    "{}: backlog not read ({e}); it is removed",
                    path.display()
                );
                continue;
            }
            for line in text.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                match serde_json::from_slice::<Line>(line) {
                    Ok(l) => {
                        if seen.insert((l.ns.clone(), l.key.clone())) {
                            taken.entries.push((l.ns, l.key));
                        }
                    }
                    Err(e) => log::debug!(
                        target: "jobcache",
                        "{}: skipping a backlog line that does not parse: {e}",
                        path.display()
                    ),
                }
            }
        }
        Ok(taken)
    }

    /// Removes the files a drain claimed (once what it could not send is
    /// added back).
    pub(crate) fn finish(&self, taken: Taken) -> io::Result<()> {
        for path in taken.files {
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_take_finish() {
        let dir = tempfile::tempdir().unwrap();
        let b = Backlog::new(dir.path());
        assert!(b.take().unwrap().entries.is_empty());
        assert!(b.add("a\nb\"c", "k1").unwrap());
        assert!(b.add("ns", "k2").unwrap());
        assert!(b.add("ns", "k2").unwrap());
        // A torn line is skipped.
        let mut f = OpenOptions::new().append(true).open(b.path()).unwrap();
        f.write_all(b"{\"ns\":\"x").unwrap();
        let taken = b.take().unwrap();
        assert_eq!(
            taken.entries,
            vec![("a\nb\"c".into(), "k1".into()), ("ns".into(), "k2".into())]
        );
        // Lines added during a drain go to a new file.
        assert!(b.add("ns", "k3").unwrap());
        b.finish(taken).unwrap();
        let again = b.take().unwrap();
        assert_eq!(again.entries, vec![("ns".into(), "k3".into())]);
        b.finish(again).unwrap();
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert!(names.is_empty(), "{names:?}");
    }

    #[test]
    fn a_fresh_draining_file_is_left_to_its_drain() {
        let dir = tempfile::tempdir().unwrap();
        let b = Backlog::new(dir.path());
        fs::write(
            dir.path().join(format!("{DRAINING}other")),
            b"{\"ns\":\"n\",\"key\":\"k\"}\n",
        )
        .unwrap();
        assert!(b.take().unwrap().entries.is_empty());
    }

    #[cfg(unix)]
    #[test]
    fn a_symlinked_backlog_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        let target = elsewhere.path().join("victim");
        fs::write(&target, b"").unwrap();
        std::os::unix::fs::symlink(&target, dir.path().join(FILE)).unwrap();
        let b = Backlog::new(dir.path());
        assert!(b.add("ns", "k").is_err());
        assert_eq!(fs::read(&target).unwrap(), b"");
    }
}
