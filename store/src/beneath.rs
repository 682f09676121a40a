//! Directory handles, and every file operation the store makes, relative to
//! one, never following a symlink (`LAYOUT.md`, "Beneath the root").
//!
//! Paths are resolved with `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)`
//! where the kernel has it, else by a walk that opens one component at a
//! time with `O_NOFOLLOW | O_DIRECTORY`. Operations on a name (mkdir,
//! rename, unlink, stat) run on the handle of its parent, and the `*at`
//! calls never follow a last component that is a symlink: a symlink is
//! renamed, unlinked or stat'ed as a name. A path can neither climb out
//! (`..` and empty components are refused) nor be redirected.
//!
//! `rustix` gives safe wrappers for these calls, so this module needs no
//! `unsafe`.

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;
use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

/// Set once `openat2` turned out to be missing (old kernel, seccomp).
static NO_OPENAT2: AtomicBool = AtomicBool::new(false);

/// Deepest tree [`Dir::remove_tree`] descends (the layout is 4 deep; a
/// deeper tree was planted).
const MAX_DEPTH: usize = 64;

/// Rounds of "list, delete, rmdir" before a removal gives up on a directory
/// that others keep filling.
const REMOVE_ROUNDS: usize = 10_000;

/// What a name in a directory is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Dir,
    File,
    Symlink,
    Other,
}

impl Kind {
    fn of(t: FileType) -> Kind {
        match t {
            FileType::Directory => Kind::Dir,
            FileType::RegularFile => Kind::File,
            FileType::Symlink => Kind::Symlink,
            _ => Kind::Other,
        }
    }
}

/// The `stat` of a name or a handle, as far as the store needs it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Info {
    pub(crate) kind: Kind,
    pub(crate) dev: u64,
    pub(crate) ino: u64,
    pub(crate) len: u64,
    pub(crate) nlink: u64,
    pub(crate) mtime: SystemTime,
}

impl Info {
    #[allow(clippy::unnecessary_cast, clippy::useless_conversion)]
    fn of(st: &rfs::Stat) -> Info {
        let secs = u64::try_from(st.st_mtime).unwrap_or(0);
        let nanos = u32::try_from(st.st_mtime_nsec)
            .unwrap_or(0)
            .min(999_999_999);
        Info {
            kind: Kind::of(FileType::from_raw_mode(st.st_mode as _)),
            dev: st.st_dev as u64,
            ino: st.st_ino as u64,
            len: u64::try_from(st.st_size).unwrap_or(0),
            nlink: st.st_nlink as u64,
            mtime: SystemTime::UNIX_EPOCH + Duration::new(secs, nanos),
        }
    }

    /// Whether both name the same inode.
    pub(crate) fn same(&self, other: &Info) -> bool {
        (self.dev, self.ino) == (other.dev, other.ino)
    }
}

/// `fstat` of an open file.
pub(crate) fn info_of(file: &File) -> io::Result<Info> {
    rfs::fstat(file).map(|st| Info::of(&st)).map_err(errno)
}

/// One name listed in a directory.
#[derive(Debug)]
pub(crate) struct Listed {
    pub(crate) name: std::ffi::OsString,
    pub(crate) kind: Kind,
}

impl Listed {
    /// The name, if it is UTF-8 (every name the store writes is ASCII).
    pub(crate) fn name_str(&self) -> Option<&str> {
        self.name.to_str()
    }
}

/// An open directory, and the resolution policy for paths beneath it.
#[derive(Debug)]
pub(crate) struct Dir {
    file: File,
    /// Resolve by the component walk even where `openat2` exists.
    walk: bool,
}

fn errno(e: Errno) -> io::Error {
    io::Error::from(e)
}

fn err(code: Errno) -> io::Error {
    io::Error::from(code)
}

/// Refuses `..`, `.`, empty components and absolute paths (`EXDEV`, as
/// `RESOLVE_BENEATH` would for an escape), in both resolution modes alike.
fn check(rel: &Path) -> io::Result<()> {
    let bytes = rel.as_os_str().as_bytes();
    let bad = |c: &[u8]| matches!(c, b"" | b"." | b"..");
    if bytes.is_empty() || bytes.split(|&b| b == b'/').any(bad) {
        return Err(err(Errno::XDEV));
    }
    Ok(())
}

/// The components of a checked relative path.
fn components(rel: &Path) -> io::Result<Vec<&OsStr>> {
    check(rel)?;
    Ok(rel
        .as_os_str()
        .as_bytes()
        .split(|&b| b == b'/')
        .map(OsStr::from_bytes)
        .collect())
}

impl Dir {
    /// Opens `path` by normal resolution (the root may be a symlink).
    pub(crate) fn open_path(path: &Path) -> io::Result<Dir> {
        let fd = rfs::open(
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(errno)?;
        Ok(Dir {
            file: File::from(fd),
            walk: false,
        })
    }

    /// Resolves by the component walk from now on, even where `openat2`
    /// exists (handles opened from this one inherit it).
    pub(crate) fn set_walk(&mut self, walk: bool) {
        self.walk = walk;
    }

    fn child(&self, fd: OwnedFd) -> Dir {
        Dir {
            file: File::from(fd),
            walk: self.walk,
        }
    }

    /// The open directory, for `flock` and `fsync`.
    pub(crate) fn file(&self) -> &File {
        &self.file
    }

    /// Another handle on the same directory.
    pub(crate) fn try_clone(&self) -> io::Result<Dir> {
        Ok(Dir {
            file: self.file.try_clone()?,
            walk: self.walk,
        })
    }

    /// The open directory, to hold a lock on it.
    pub(crate) fn into_file(self) -> File {
        self.file
    }

    /// Opens `rel` with `flags` (plus `O_NOFOLLOW | O_CLOEXEC`), no symlink
    /// anywhere on the way.
    fn open_at(&self, rel: &Path, flags: OFlags, mode: Mode) -> io::Result<OwnedFd> {
        // `O_NONBLOCK`: a FIFO planted at a name would otherwise block the
        // open until a writer (or reader) came; regular files and
        // directories ignore the flag.
        let flags = flags | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK;
        check(rel)?;
        if !self.walk && !NO_OPENAT2.load(Ordering::Relaxed) {
            let resolve = ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS;
            match rfs::openat2(&self.file, rel, flags, mode, resolve) {
                Err(Errno::NOSYS) => NO_OPENAT2.store(true, Ordering::Relaxed),
                // Seccomp filters answer EPERM for calls they do not know;
                // O_NOATIME's EPERM (not the owner) is the caller's to handle.
                Err(Errno::PERM) if !flags.contains(OFlags::NOATIME) => {
                    NO_OPENAT2.store(true, Ordering::Relaxed);
                }
                // The kernel saw a rename during the lookup and cannot vouch
                // that the result is still beneath the handle (a directory
                // moved away by a concurrent removal or publish). The walk
                // below makes the same no-symlink promise without that check.
                Err(Errno::XDEV | Errno::AGAIN) => {}
                r => return r.map_err(errno),
            }
        }
        let parts = components(rel)?;
        let Some((last, dirs)) = parts.split_last() else {
            return Err(err(Errno::XDEV));
        };
        let mut cur: Option<OwnedFd> = None;
        for part in dirs {
            let at = cur.as_ref().map_or(self.file.as_fd(), |f| f.as_fd());
            let next = rfs::openat(
                at,
                *part,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(errno)?;
            cur = Some(next);
        }
        let at = cur.as_ref().map_or(self.file.as_fd(), |f| f.as_fd());
        rfs::openat(at, *last, flags, mode).map_err(errno)
    }

    /// Runs `f` on the handle of `rel`'s parent and `rel`'s last component.
    fn at_parent<T>(
        &self,
        rel: &Path,
        f: impl FnOnce(&File, &OsStr) -> io::Result<T>,
    ) -> io::Result<T> {
        let parts = components(rel)?;
        let Some((last, dirs)) = parts.split_last() else {
            return Err(err(Errno::XDEV));
        };
        if dirs.is_empty() {
            return f(&self.file, last);
        }
        let parent = rel.parent().ok_or_else(|| err(Errno::XDEV))?.to_path_buf();
        let dir = self.open_dir(parent)?;
        f(&dir.file, last)
    }

    /// Opens the directory `rel`.
    pub(crate) fn open_dir(&self, rel: impl AsRef<Path>) -> io::Result<Dir> {
        let fd = self.open_at(
            rel.as_ref(),
            OFlags::RDONLY | OFlags::DIRECTORY,
            Mode::empty(),
        )?;
        Ok(self.child(fd))
    }

    /// Opens the file `rel` read-only, with `O_NOATIME` if asked (which
    /// fails with `EPERM` where the caller does not own the file).
    pub(crate) fn open_file(&self, rel: impl AsRef<Path>, noatime: bool) -> io::Result<File> {
        let flags = if noatime {
            OFlags::RDONLY | OFlags::NOATIME
        } else {
            OFlags::RDONLY
        };
        self.open_at(rel.as_ref(), flags, Mode::empty())
            .map(File::from)
    }

    /// Creates the file `rel` for writing; fails if any name is there.
    /// Permissions are 0o666 less the umask.
    pub(crate) fn create_file(&self, rel: impl AsRef<Path>) -> io::Result<File> {
        let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL;
        self.open_at(rel.as_ref(), flags, Mode::from_bits_truncate(0o666))
            .map(File::from)
    }

    /// Opens the file `rel` for reading and writing, creating it if needed
    /// (for lock files: 0o666 less the umask, so others can lock it too).
    pub(crate) fn open_or_create_file(&self, rel: impl AsRef<Path>) -> io::Result<File> {
        let flags = OFlags::RDWR | OFlags::CREATE;
        self.open_at(rel.as_ref(), flags, Mode::from_bits_truncate(0o666))
            .map(File::from)
    }

    /// Opens the existing file `rel` for reading and writing.
    pub(crate) fn open_rw(&self, rel: impl AsRef<Path>) -> io::Result<File> {
        self.open_at(rel.as_ref(), OFlags::RDWR, Mode::empty())
            .map(File::from)
    }

    /// Makes the directory `rel` (0o777 less the umask).
    pub(crate) fn mkdir(&self, rel: impl AsRef<Path>) -> io::Result<()> {
        self.at_parent(rel.as_ref(), |p, name| {
            rfs::mkdirat(p, name, Mode::from_bits_truncate(0o777)).map_err(errno)
        })
    }

    /// Renames `from` (beneath this handle) to `to` (beneath `to_dir`); a
    /// symlink is renamed as a name.
    pub(crate) fn rename(
        &self,
        from: impl AsRef<Path>,
        to_dir: &Dir,
        to: impl AsRef<Path>,
    ) -> io::Result<()> {
        let to = to.as_ref();
        self.at_parent(from.as_ref(), |p, from_name| {
            to_dir.at_parent(to, |q, to_name| {
                rfs::renameat(p, from_name, q, to_name).map_err(errno)
            })
        })
    }

    /// Unlinks the non-directory `rel` (a symlink is removed, not followed).
    pub(crate) fn unlink(&self, rel: impl AsRef<Path>) -> io::Result<()> {
        self.at_parent(rel.as_ref(), |p, name| {
            rfs::unlinkat(p, name, AtFlags::empty()).map_err(errno)
        })
    }

    /// Removes the empty directory `rel`.
    pub(crate) fn rmdir(&self, rel: impl AsRef<Path>) -> io::Result<()> {
        self.at_parent(rel.as_ref(), |p, name| {
            rfs::unlinkat(p, name, AtFlags::REMOVEDIR).map_err(errno)
        })
    }

    /// `fstatat(AT_SYMLINK_NOFOLLOW)` of `rel`.
    pub(crate) fn stat(&self, rel: impl AsRef<Path>) -> io::Result<Info> {
        self.at_parent(rel.as_ref(), |p, name| {
            rfs::statat(p, name, AtFlags::SYMLINK_NOFOLLOW)
                .map(|st| Info::of(&st))
                .map_err(errno)
        })
    }

    /// `fstat` of this handle.
    pub(crate) fn fstat(&self) -> io::Result<Info> {
        info_of(&self.file)
    }

    /// `fsync` of this directory.
    pub(crate) fn sync(&self) -> io::Result<()> {
        self.file.sync_all()
    }

    /// The names in this directory (without `.` and `..`).
    pub(crate) fn list(&self) -> io::Result<Vec<Listed>> {
        let mut out = Vec::new();
        for e in rfs::Dir::read_from(&self.file).map_err(errno)? {
            let e = e.map_err(errno)?;
            let name = e.file_name().to_bytes();
            if name == b"." || name == b".." {
                continue;
            }
            let name = OsStr::from_bytes(name).to_os_string();
            let kind = match e.file_type() {
                FileType::Unknown => match self.stat(&name) {
                    Ok(i) => i.kind,
                    Err(_) => continue,
                },
                t => Kind::of(t),
            };
            out.push(Listed { name, kind });
        }
        Ok(out)
    }

    /// Removes `rel` and everything under it. A symlink met anywhere is
    /// unlinked as a name, never descended. Names that vanish meanwhile are
    /// fine, and so are names that appear meanwhile: the directory is
    /// listed again until it can be removed.
    pub(crate) fn remove_tree(&self, rel: impl AsRef<Path>) -> io::Result<()> {
        self.remove_tree_at(rel.as_ref(), 0)
    }

    fn remove_tree_at(&self, rel: &Path, depth: usize) -> io::Result<()> {
        let gone = |r: io::Result<()>| match r {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            r => r,
        };
        match self.stat(rel) {
            Ok(i) if i.kind == Kind::Dir => {}
            Ok(_) => return gone(self.unlink(rel)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        }
        if depth >= MAX_DEPTH {
            return Err(io::Error::other(format!(
                "more than {MAX_DEPTH} directory levels; not a tree the store made"
            )));
        }
        for _ in 0..REMOVE_ROUNDS {
            let dir = match self.open_dir(rel) {
                Ok(d) => d,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
                // Replaced by a symlink or a file meanwhile: remove the name.
                Err(e) if matches!(e.raw_os_error(), Some(libc::ELOOP | libc::ENOTDIR)) => {
                    return gone(self.unlink(rel));
                }
                Err(e) => return Err(e),
            };
            for e in dir.list()? {
                if e.kind == Kind::Dir {
                    dir.remove_tree_at(Path::new(&e.name), depth + 1)?;
                } else {
                    gone(dir.unlink(&e.name))?;
                }
            }
            match self.rmdir(rel) {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
                // Filled up behind us: list again.
                Err(e) if matches!(e.raw_os_error(), Some(libc::ENOTEMPTY | libc::EEXIST)) => {
                    std::thread::yield_now();
                }
                Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => return gone(self.unlink(rel)),
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::other(format!(
            "still not empty after {REMOVE_ROUNDS} rounds of removal"
        )))
    }

    /// Bytes of the regular files in the tree at `rel` (symlinks count 0 and
    /// are not followed).
    pub(crate) fn tree_bytes(&self, rel: impl AsRef<Path>) -> u64 {
        self.tree_fold(
            rel.as_ref(),
            0,
            &mut |i, acc: u64| acc + if i.kind == Kind::File { i.len } else { 0 },
            0,
        )
    }

    /// The newest modification time in the tree at `rel`.
    pub(crate) fn newest_mtime(&self, rel: impl AsRef<Path>) -> Option<SystemTime> {
        let first = self.stat(rel.as_ref()).ok()?.mtime;
        Some(self.tree_fold(
            rel.as_ref(),
            first,
            &mut |i, acc: SystemTime| acc.max(i.mtime),
            0,
        ))
    }

    fn tree_fold<T: Copy>(
        &self,
        rel: &Path,
        init: T,
        f: &mut dyn FnMut(&Info, T) -> T,
        depth: usize,
    ) -> T {
        let Ok(info) = self.stat(rel) else {
            return init;
        };
        let mut acc = f(&info, init);
        if info.kind != Kind::Dir || depth >= MAX_DEPTH {
            return acc;
        }
        let Ok(dir) = self.open_dir(rel) else {
            return acc;
        };
        for e in dir.list().unwrap_or_default() {
            acc = dir.tree_fold(Path::new(&e.name), acc, f, depth + 1);
        }
        acc
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn both(test: impl Fn(&Dir, &Path)) {
        for walk in [false, true] {
            let tmp = tempfile::tempdir().unwrap();
            let root = tmp.path().join("root");
            std::fs::create_dir(&root).unwrap();
            let mut dir = Dir::open_path(&root).unwrap();
            dir.set_walk(walk);
            test(&dir, tmp.path());
        }
    }

    #[test]
    fn symlinks_are_never_followed() {
        both(|dir, outside| {
            let target = outside.join("target");
            std::fs::create_dir(&target).unwrap();
            std::fs::write(target.join("f"), b"keep").unwrap();
            std::fs::create_dir(target.join("sub")).unwrap();
            symlink(&target, outside.join("root/link")).unwrap();
            symlink(target.join("f"), outside.join("root/flink")).unwrap();
            let loops = |e: io::Error| {
                assert!(
                    matches!(e.raw_os_error(), Some(libc::ELOOP | libc::ENOTDIR)),
                    "{e}"
                )
            };
            loops(dir.open_dir("link").unwrap_err());
            loops(dir.open_file("link/f", false).unwrap_err());
            loops(dir.open_file("flink", false).unwrap_err());
            loops(dir.create_file("link/new").unwrap_err());
            loops(dir.open_or_create_file("flink").unwrap_err());
            assert!(dir.mkdir("link/new").is_err());
            assert!(dir.open_dir("..").is_err());
            assert!(dir.open_dir("a/../..").is_err());
            assert_eq!(dir.stat("link").unwrap().kind, Kind::Symlink);
            assert_eq!(dir.tree_bytes("link"), 0);
            dir.remove_tree("link").unwrap();
            dir.remove_tree("flink").unwrap();
            assert!(target.join("f").exists() && target.join("sub").exists());
            assert!(!outside.join("root/link").exists());
        });
    }

    #[test]
    fn a_tree_with_symlinks_inside_is_removed_without_following_them() {
        both(|dir, outside| {
            let target = outside.join("target");
            std::fs::create_dir_all(target.join("sub")).unwrap();
            std::fs::write(target.join("sub/f"), b"keep").unwrap();
            dir.mkdir("t").unwrap();
            dir.mkdir("t/a").unwrap();
            dir.create_file("t/a/file").unwrap();
            symlink(&target, outside.join("root/t/a/link")).unwrap();
            symlink(target.join("sub"), outside.join("root/t/sublink")).unwrap();
            assert_eq!(dir.tree_bytes("t"), 0);
            dir.remove_tree("t").unwrap();
            assert!(dir.stat("t").is_err());
            assert_eq!(std::fs::read(target.join("sub/f")).unwrap(), b"keep");
        });
    }

    #[test]
    fn operations_relative_to_the_handle() {
        both(|dir, _| {
            dir.mkdir("a").unwrap();
            dir.mkdir("a/b").unwrap();
            use std::io::Write;
            dir.create_file("a/b/f")
                .unwrap()
                .write_all(b"12345")
                .unwrap();
            assert!(dir.create_file("a/b/f").is_err());
            assert_eq!(dir.stat("a/b/f").unwrap().len, 5);
            assert_eq!(dir.tree_bytes("a"), 5);
            let a = dir.open_dir("a").unwrap();
            a.rename("b", dir, "c").unwrap();
            assert_eq!(dir.open_dir("c").unwrap().list().unwrap().len(), 1);
            dir.unlink("c/f").unwrap();
            dir.rmdir("c").unwrap();
            assert!(dir.newest_mtime("a").is_some());
            dir.remove_tree("a").unwrap();
            dir.remove_tree("a").unwrap();
            assert!(dir.list().unwrap().is_empty());
        });
    }

    /// One node of a random tree: a file of some bytes, a symlink to the
    /// outside, or a directory of further nodes.
    #[derive(Debug, Clone)]
    enum Node {
        File(usize),
        Link,
        Dir(Vec<Node>),
    }

    fn node() -> impl proptest::strategy::Strategy<Value = Node> {
        use proptest::prelude::*;
        let leaf = prop_oneof![(0usize..3000).prop_map(Node::File), Just(Node::Link)];
        leaf.prop_recursive(4, 24, 5, |inner| {
            proptest::collection::vec(inner, 0..5).prop_map(Node::Dir)
        })
    }

    /// Builds `node` at `rel` beneath `dir`; returns its files' bytes.
    fn build(dir: &Dir, real: &Path, rel: &str, node: &Node, outside: &Path) -> u64 {
        use std::io::Write;
        match node {
            Node::File(n) => {
                dir.create_file(rel)
                    .unwrap()
                    .write_all(&vec![7; *n])
                    .unwrap();
                *n as u64
            }
            Node::Link => {
                symlink(outside, real.join(rel)).unwrap();
                0
            }
            Node::Dir(children) => {
                dir.mkdir(rel).unwrap();
                children
                    .iter()
                    .enumerate()
                    .map(|(i, c)| build(dir, real, &format!("{rel}/{i}"), c, outside))
                    .sum()
            }
        }
    }

    proptest::proptest! {
        // A quarter of PROPTEST_CASES (default 256): each case builds a tree on disk.
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(
            proptest::prelude::ProptestConfig::default().cases / 4
        ))]

        /// Any tree counts exactly its regular files' bytes and is removed
        /// whole, and whatever its symlinks point at is untouched.
        #[test]
        fn prop_any_tree_is_measured_and_removed_without_leaving_the_root(
            tree in node(), walk in proptest::prelude::any::<bool>()
        ) {
            let tmp = tempfile::tempdir().unwrap();
            let outside = tmp.path().join("outside");
            std::fs::create_dir_all(outside.join("sub")).unwrap();
            std::fs::write(outside.join("sub/f"), b"keep").unwrap();
            let real = tmp.path().join("root");
            std::fs::create_dir(&real).unwrap();
            let mut dir = Dir::open_path(&real).unwrap();
            dir.set_walk(walk);
            let bytes = build(&dir, &real, "t", &tree, &outside);
            proptest::prop_assert_eq!(dir.tree_bytes("t"), bytes);
            dir.remove_tree("t").unwrap();
            proptest::prop_assert!(dir.list().unwrap().is_empty());
            proptest::prop_assert_eq!(std::fs::read(outside.join("sub/f")).unwrap(), b"keep");
        }

        /// No path climbs out of the handle or starts at `/`, in either mode.
        #[test]
        fn prop_escaping_paths_are_refused(
            parts in proptest::collection::vec("(\\.\\.|\\.|a|)", 1..5),
            absolute in proptest::prelude::any::<bool>(),
        ) {
            let rel = format!("{}{}", if absolute { "/" } else { "" }, parts.join("/"));
            let escapes = absolute || parts.iter().any(|p| p.is_empty() || p == "." || p == "..");
            // `.` and empty components do not escape, but are refused too,
            // so that both resolution modes accept exactly the same paths.
            let tmp = tempfile::tempdir().unwrap();
            let real = tmp.path().join("root");
            std::fs::create_dir_all(real.join("a/a/a/a")).unwrap();
            for walk in [false, true] {
                let mut dir = Dir::open_path(&real).unwrap();
                dir.set_walk(walk);
                proptest::prop_assert_eq!(dir.open_dir(&rel).is_ok(), !escapes, "{} walk {}", rel, walk);
            }
        }
    }
}
