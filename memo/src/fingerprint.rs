//! An opt-in crate fingerprint: a version that changes whenever any source
//! file of the crate changes, so that editing a helper a cached function
//! calls invalidates its results (joblib's open issue #1621).
//!
//! [`memoize!`](crate::memoize) hashes a function's own source only: fine
//! grained (editing one function invalidates that function's results alone)
//! but blind to the functions it calls. The crate fingerprint is the other
//! trade-off: **any** edit of the crate's sources — a comment, a test, an
//! unrelated function — invalidates every function cached with it. Use it
//! for functions whose helpers change often; keep `memoize!` (the default)
//! where recomputing everything on every edit costs too much. Both can be
//! used at once: the fingerprint goes in [`Cached::version`](crate::Cached::version).
//!
//! In the crate's `build.rs` (with `jobcache-memo` under
//! `[build-dependencies]`):
//!
//! ```no_run
//! fn main() -> std::io::Result<()> {
//!     // Hashes every .rs file under src/; reruns when one changes.
//!     jobcache_memo::fingerprint::emit(&["src"])
//! }
//! ```
//!
//! and where the function is cached:
//!
//! ```ignore
//! let fit = mem.cache(fit).version(jobcache_memo::crate_fingerprint!());
//! ```
//!
//! A build script that should not depend on jobcache can print the same
//! variable itself (`cargo:rustc-env=JOBCACHE_CRATE_FINGERPRINT=…`, any text
//! that changes with the sources). The computation, runnable:
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use jobcache_memo::{fingerprint, Memory};
//! let krate = tempfile::tempdir()?;
//! std::fs::create_dir(krate.path().join("src"))?;
//! std::fs::write(krate.path().join("src/lib.rs"), "pub fn helper() -> u32 { 1 }")?;
//! let before = fingerprint::of_paths(krate.path(), &["src"])?;
//!
//! # let dir = tempfile::tempdir()?;
//! let mem = Memory::builder(dir.path()).verbose(0).build()?;
//! fn step(x: u32) -> u32 { x + 1 }
//! let cached = mem.cache(step).version(before.clone());
//! cached.call(1);
//!
//! // Editing any file of the crate gives another version: a miss.
//! std::fs::write(krate.path().join("src/lib.rs"), "pub fn helper() -> u32 { 2 }")?;
//! let after = fingerprint::of_paths(krate.path(), &["src"])?;
//! assert_ne!(before, after);
//! assert!(!mem.cache(step).version(after).check_call_in_cache(&1));
//! # Ok(())
//! # }
//! ```

use jobcache_hash::Hasher;
use std::io;
use std::path::{Path, PathBuf};

/// The environment variable [`emit`] sets for the crate being built, read
/// by [`crate_fingerprint!`](crate::crate_fingerprint).
pub const ENV: &str = "JOBCACHE_CRATE_FINGERPRINT";

/// Hex digits of the fingerprint.
const LEN: usize = 16;

/// The fingerprint of the `.rs` files under `paths` (files or directories,
/// relative to `root`): a digest of every file's path relative to `root`
/// and its bytes, in path order. Hidden entries (`.git`) and `target`
/// directories are skipped; symlinks are not followed.
pub fn of_paths(root: &Path, paths: &[&str]) -> io::Result<String> {
    let mut files = Vec::new();
    for p in paths {
        collect(&root.join(p), &mut files)?;
    }
    files.sort();
    files.dedup();
    let mut hasher = Hasher::new();
    for file in &files {
        let relative = file.strip_prefix(root).unwrap_or(file);
        let bytes = std::fs::read(file)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", file.display())))?;
        hasher.update_bytes(relative.to_string_lossy().as_bytes());
        hasher.update_bytes(&bytes);
    }
    let mut text = hasher.finalize().to_string();
    text.truncate(LEN);
    Ok(text)
}

fn collect(path: &Path, out: &mut Vec<PathBuf>) -> io::Result<()> {
    let meta = std::fs::symlink_metadata(path)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    if meta.is_file() {
        if path.extension().is_some_and(|e| e == "rs") {
            out.push(path.to_path_buf());
        }
        return Ok(());
    }
    if !meta.is_dir() {
        return Ok(());
    }
    for entry in std::fs::read_dir(path)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') || name == "target" {
            continue;
        }
        let child = entry.path();
        let kind = entry.file_type()?;
        if kind.is_dir() || kind.is_file() {
            collect(&child, out)?;
        }
    }
    Ok(())
}

/// For a `build.rs`: sets [`ENV`] to the fingerprint of the `.rs` files
/// under `paths` (relative to the crate's root, usually `&["src"]`), and
/// asks cargo to run the script again when any of them changes.
pub fn emit(paths: &[&str]) -> io::Result<()> {
    let root = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .ok_or_else(|| {
            io::Error::other(
                "CARGO_MANIFEST_DIR is not set: call fingerprint::emit from a build.rs",
            )
        })?;
    let print = of_paths(&root, paths)?;
    for p in paths {
        println!("cargo:rerun-if-changed={p}");
    }
    println!("cargo:rustc-env={ENV}={print}");
    Ok(())
}

/// The crate's fingerprint, set by
/// [`fingerprint::emit`](crate::fingerprint::emit) in its `build.rs`: a
/// `&'static str` to give to [`Cached::version`](crate::Cached::version).
/// A crate whose build script does not set it fails to compile, saying so.
#[macro_export]
macro_rules! crate_fingerprint {
    () => {
        env!(
            "JOBCACHE_CRATE_FINGERPRINT",
            "call jobcache_memo::fingerprint::emit(&[\"src\"]) in this crate's build.rs"
        )
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn any_edit_addition_or_rename_changes_it() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        fs::create_dir_all(src.join("nested")).unwrap();
        fs::write(src.join("lib.rs"), "fn a() {}").unwrap();
        fs::write(src.join("nested/b.rs"), "fn b() {}").unwrap();
        fs::write(src.join("notes.txt"), "not code").unwrap();
        let print = |d: &Path| of_paths(d, &["src"]).unwrap();
        let first = print(dir.path());
        assert_eq!(first.len(), LEN);
        assert_eq!(print(dir.path()), first, "deterministic");
        fs::write(src.join("notes.txt"), "still not code").unwrap();
        assert_eq!(print(dir.path()), first, "only .rs files count");
        fs::create_dir(src.join(".hidden")).unwrap();
        fs::write(src.join(".hidden/x.rs"), "").unwrap();
        assert_eq!(print(dir.path()), first, "hidden entries are skipped");
        fs::write(src.join("nested/b.rs"), "fn b() { }").unwrap();
        let edited = print(dir.path());
        assert_ne!(edited, first);
        fs::write(src.join("c.rs"), "").unwrap();
        let added = print(dir.path());
        assert_ne!(added, edited);
        fs::rename(src.join("c.rs"), src.join("d.rs")).unwrap();
        assert_ne!(print(dir.path()), added, "paths count");
        let missing = of_paths(dir.path(), &["nothing"]).unwrap_err();
        assert!(missing.to_string().contains("nothing"), "{missing}");
    }
}
