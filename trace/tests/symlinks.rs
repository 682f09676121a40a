//! No journal file name is followed through a symlink, and a journal whose
//! file (or whole directory) was deleted under it is created again.
#![cfg(unix)]

use jobcache_trace::{
    journal_files, read_journal, Event, EventKind, Filter, Follower, Journal, JournalOptions,
    JournalReader, TraceError,
};
use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::time::{Duration, SystemTime};

const SENTINEL: &[u8] = b"outside the cache: must stay unchanged\n";

/// A sentinel file outside the cache folder, with its modification time.
fn sentinel(outside: &Path) -> (std::path::PathBuf, SystemTime) {
    let path = outside.join("sentinel");
    fs::write(&path, SENTINEL).unwrap();
    let mtime = fs::metadata(&path).unwrap().modified().unwrap();
    (path, mtime)
}

fn assert_untouched(path: &Path, mtime: SystemTime) {
    assert_eq!(fs::read(path).unwrap(), SENTINEL);
    assert_eq!(fs::metadata(path).unwrap().modified().unwrap(), mtime);
}

fn is_symlink(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
}

fn assert_symlink_error(result: Result<impl std::fmt::Debug, TraceError>, path: &Path) {
    match result {
        Err(e @ TraceError::Symlink { .. }) => {
            let text = e.to_string();
            assert!(text.contains(&*path.to_string_lossy()), "{text}");
            assert!(
                text.contains("is a symlink; jobcache does not follow symlinks inside a cache folder: remove it"),
                "{text}"
            );
        }
        other => panic!(
            "expected a symlink error for {}, got {other:?}",
            path.display()
        ),
    }
}

#[test]
fn appends_rotations_and_reads_never_follow_planted_symlinks() {
    let cache = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let (target, mtime) = sentinel(outside.path());
    let path = cache.path().join("journal.jsonl");
    let lock = cache.path().join("journal.jsonl.lock");
    let rotated = cache.path().join("journal.jsonl.1");
    for name in [&path, &lock, &rotated] {
        symlink(&target, name).unwrap();
    }

    // Readers refuse the planted names instead of reading the sentinel.
    assert_symlink_error(JournalReader::open(&path), &path);
    assert_symlink_error(JournalReader::open(&rotated), &rotated);
    assert_symlink_error(read_journal(&path, &Filter::new()), &rotated);
    assert_symlink_error(Follower::new(&path, true).poll(), &path);

    // Appends replace the journal's symlink by a file; rotations take the
    // lock without following its symlink and drop the planted `.1`.
    let opts = JournalOptions {
        max_bytes: Some(2_000),
        keep: 50,
    };
    let journal = Journal::open_with(&path, opts).unwrap();
    assert!(!is_symlink(&path));
    let count = 200;
    for i in 0..count {
        journal
            .append(&Event::new(EventKind::Hit, format!("f{i}")))
            .unwrap();
    }
    assert!(!is_symlink(&lock), "the rotation lock is a file of its own");
    assert!(journal_files(&path).len() > 5, "rotated several times");
    assert!(journal_files(&path).iter().all(|f| !is_symlink(f)));
    let events = read_journal(&path, &Filter::new()).unwrap();
    assert_eq!(
        events.len(),
        count,
        "every line is in the journal's own files"
    );
    assert_untouched(&target, mtime);

    // A symlink planted while a journal is open is not written through:
    // the next append finds its file unlinked and replaces the symlink.
    fs::remove_file(&path).unwrap();
    symlink(&target, &path).unwrap();
    for _ in 0..40 {
        journal.append(&Event::new(EventKind::Hit, "late")).unwrap();
    }
    assert!(!is_symlink(&path));
    assert_untouched(&target, mtime);

    // Readers and a follower refuse a symlink planted among rotated files.
    let planted = cache.path().join("journal.jsonl.999");
    symlink(&target, &planted).unwrap();
    assert_symlink_error(read_journal(&path, &Filter::new()), &planted);
    fs::remove_file(&planted).unwrap();
    let mut follower = Follower::new(&path, true);
    assert!(!follower.poll().unwrap().is_empty());
    fs::remove_file(&path).unwrap();
    symlink(&target, &path).unwrap();
    assert_symlink_error(follower.poll(), &path);
    assert_untouched(&target, mtime);
}

#[test]
fn a_deleted_journal_or_directory_is_created_again() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("cache");
    let path = dir.join("journal.jsonl");
    let journal = Journal::open_with(
        &path,
        JournalOptions {
            max_bytes: None,
            keep: 1,
        },
    )
    .unwrap();
    journal
        .append(&Event::new(EventKind::Hit, "before"))
        .unwrap();
    let functions = || -> Vec<String> {
        let events = read_journal(&path, &Filter::new()).unwrap();
        events.into_iter().map(|e| e.function).collect()
    };

    // The file alone: noticed within 32 appends (lines before that go to
    // the deleted file).
    fs::remove_file(&path).unwrap();
    let mut appended = 0;
    while !path.exists() {
        assert!(appended <= 32, "the deleted journal was not created again");
        journal.append(&Event::new(EventKind::Hit, "lost")).unwrap();
        appended += 1;
    }
    journal
        .append(&Event::new(EventKind::Hit, "after file"))
        .unwrap();
    assert_eq!(functions(), ["lost", "after file"]);

    // The whole directory (a user cleaning a temp folder): noticed by the
    // first append a second later, however few there were.
    fs::remove_dir_all(&dir).unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    journal
        .append(&Event::new(EventKind::Hit, "after dir"))
        .unwrap();
    journal
        .append(&Event::new(EventKind::Hit, "again"))
        .unwrap();
    assert_eq!(functions(), ["after dir", "again"]);
}
