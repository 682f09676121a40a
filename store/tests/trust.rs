//! Trust on a shared cache folder, in one process: symlinks planted at
//! every path of the layout never lead the store outside its root, a
//! deleted root or layout heals, a damaged layout file is a clear error,
//! and the quarantine stays under its cap.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use jobcache_store::StoreExt;
use jobcache_store::{FsStore, Limits, Lookup, NewEntry, Store, StoreError, Wait, VERSION_FILE};
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

const NS: &str = "jobcache::tests::trust";

fn key(i: u64) -> String {
    format!("{i:064x}")
}

/// A namespace whose directory name is cut, so listing reads its `name`
/// file.
fn long_ns() -> String {
    format!("jobcache::tests::{}", "long".repeat(60))
}

fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + 3) as u8).collect()
}

/// A directory outside the store, with files and subdirectories older than
/// an hour: what a store that followed a symlink would damage.
fn sentinel(at: &Path) -> PathBuf {
    let s = at.join("sentinel");
    fs::create_dir_all(s.join("sub/deeper")).unwrap();
    fs::create_dir_all(s.join("0000000000000000000000000000000000000000000000000000000000000001"))
        .unwrap();
    fs::write(s.join("file"), b"keep me").unwrap();
    fs::write(s.join("sub/meta"), b"not a meta file").unwrap();
    fs::write(s.join("sub/deeper/payload"), payload(5000)).unwrap();
    fs::write(s.join("x.lock"), b"").unwrap();
    let old = SystemTime::now() - Duration::from_secs(7200);
    let mut paths = vec![];
    collect(&s, &mut paths);
    // Children first, so that setting a file's time leaves its directory's.
    for p in paths.iter().rev() {
        fs::File::open(p).unwrap().set_modified(old).unwrap();
    }
    s
}

fn collect(p: &Path, out: &mut Vec<PathBuf>) {
    out.push(p.to_path_buf());
    if fs::symlink_metadata(p).unwrap().is_dir() {
        let mut names: Vec<_> = fs::read_dir(p)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        names.sort();
        for n in names {
            collect(&n, out);
        }
    }
}

/// Every path under `p` with its type, contents and modification time.
fn snapshot(p: &Path) -> BTreeMap<PathBuf, (bool, Vec<u8>, SystemTime)> {
    let mut paths = vec![];
    collect(p, &mut paths);
    paths
        .into_iter()
        .map(|q| {
            let md = fs::symlink_metadata(&q).unwrap();
            let bytes = if md.is_file() {
                fs::read(&q).unwrap()
            } else {
                vec![]
            };
            (q, (md.is_dir(), bytes, md.modified().unwrap()))
        })
        .collect()
}

/// A store with an entry in `NS` (a file payload) and one in a namespace
/// with a cut name (inline), and a lock file.
fn populated(root: &Path, walk: bool) -> FsStore {
    let s = FsStore::create(root).unwrap().with_component_walk(walk);
    s.publish_bytes(NS, &key(1), &NewEntry::default(), &payload(40_000))
        .unwrap();
    s.publish_bytes(&long_ns(), &key(2), &NewEntry::default(), b"small")
        .unwrap();
    drop(s.lock(NS, &key(1), Wait::NoWait).unwrap());
    s
}

/// The paths `LAYOUT.md` names, relative to the root.
fn layout_paths(s: &FsStore) -> Vec<(String, PathBuf)> {
    let entry = s.entry_dir(NS, &key(1)).unwrap();
    let ns_dir = entry.parent().unwrap().to_path_buf();
    let long_dir = s.entry_dir(&long_ns(), &key(2)).unwrap();
    let long_dir = long_dir.parent().unwrap().to_path_buf();
    let r = s.root();
    vec![
        ("ns".into(), r.join("ns")),
        ("tmp".into(), r.join("tmp")),
        ("ns/<enc>".into(), ns_dir.clone()),
        ("entry".into(), entry.clone()),
        ("meta".into(), entry.join("meta")),
        ("payload".into(), entry.join("payload")),
        ("lock".into(), ns_dir.join(format!("{}.lock", key(1)))),
        ("name".into(), long_dir.join("name")),
        ("CACHEDIR.TAG".into(), r.join("CACHEDIR.TAG")),
        ("version".into(), r.join(VERSION_FILE)),
        ("index".into(), r.join("index")),
        ("index/ledger".into(), r.join("index/ledger")),
        ("index/lock".into(), r.join("index/lock")),
        ("index/locks".into(), r.join("index/locks")),
        ("packs".into(), r.join("packs")),
        ("packs/generations".into(), r.join("packs/generations")),
    ]
}

/// The paths of [`layout_paths`] and of the store's packs, relative to
/// the root.
fn layout_and_pack_paths(s: &FsStore) -> Vec<(String, PathBuf)> {
    let mut paths = layout_paths(s);
    for e in fs::read_dir(s.root().join("packs")).unwrap() {
        let name = e.unwrap().file_name().into_string().unwrap();
        if name.ends_with(".pack") {
            paths.push((format!("packs/{name}"), s.root().join("packs").join(name)));
        }
    }
    paths
        .into_iter()
        .map(|(what, p)| (what, p.strip_prefix(s.root()).unwrap().to_path_buf()))
        .collect()
}

fn replace_with_symlink(path: &Path, target: &Path) {
    match fs::symlink_metadata(path) {
        Ok(md) if md.is_dir() => fs::remove_dir_all(path).unwrap(),
        Ok(_) => fs::remove_file(path).unwrap(),
        Err(_) => {}
    }
    symlink(target, path).unwrap();
}

/// Runs every operation of the store; each must succeed (or, for a
/// lookup, say Found, Missing or Corrupt) without panicking.
fn exercise(root: &Path, walk: bool, what: &str) {
    let ctx = |op: &str| format!("{what}: {op}");
    let s = FsStore::create(root)
        .unwrap_or_else(|e| panic!("{}: {e}", ctx("create")))
        .with_component_walk(walk);
    FsStore::open(root).unwrap_or_else(|e| panic!("{}: {e}", ctx("open")));
    for ns in [NS.to_string(), long_ns()] {
        s.get(&ns, &key(1), true)
            .unwrap_or_else(|e| panic!("{}: {e}", ctx("get")));
        s.get(&ns, &key(2), true)
            .unwrap_or_else(|e| panic!("{}: {e}", ctx("get")));
    }
    s.entries(NS)
        .unwrap_or_else(|e| panic!("{}: {e}", ctx("entries")));
    s.namespaces()
        .unwrap_or_else(|e| panic!("{}: {e}", ctx("namespaces")));
    let guard = s
        .lock(NS, &key(3), Wait::NoWait)
        .unwrap_or_else(|e| panic!("{}: {e}", ctx("lock")));
    assert!(guard.is_acquired(), "{}", ctx("lock"));
    drop(guard);
    s.publish_bytes(NS, &key(3), &NewEntry::default(), &payload(30_000))
        .unwrap_or_else(|e| panic!("{}: {e}", ctx("publish")));
    assert_eq!(
        s.get_bytes(NS, &key(3))
            .unwrap_or_else(|e| panic!("{}: {e}", ctx("get")))
            .unwrap(),
        payload(30_000),
        "{}",
        ctx("read back")
    );
    s.pack_damage()
        .unwrap_or_else(|e| panic!("{}: {e}", ctx("pack_damage")));
    s.verify_all(&mut |_, _| {})
        .unwrap_or_else(|e| panic!("{}: {e}", ctx("verify_all")));
    s.reduce_size(&Limits::default(), false)
        .unwrap_or_else(|e| panic!("{}: {e}", ctx("reduce_size")));
    s.clean_temp(Duration::ZERO)
        .unwrap_or_else(|e| panic!("{}: {e}", ctx("clean_temp")));
    s.clean_locks()
        .unwrap_or_else(|e| panic!("{}: {e}", ctx("clean_locks")));
    s.remove(NS, &key(1))
        .unwrap_or_else(|e| panic!("{}: {e}", ctx("remove")));
    s.remove(NS, &key(3))
        .unwrap_or_else(|e| panic!("{}: {e}", ctx("remove")));
    s.remove_namespace(&long_ns())
        .unwrap_or_else(|e| panic!("{}: {e}", ctx("remove_namespace")));
    s.clear()
        .unwrap_or_else(|e| panic!("{}: {e}", ctx("clear")));
    s.publish_bytes(NS, &key(4), &NewEntry::default(), b"after")
        .unwrap_or_else(|e| panic!("{}: {e}", ctx("publish")));
    assert_eq!(s.get_bytes(NS, &key(4)).unwrap().unwrap(), b"after");
}

/// Defect 1: symlinks planted at every path the layout names, pointing at
/// a directory (and a file) outside the root, are never followed.
#[test]
fn symlinks_planted_anywhere_never_lead_outside_the_root() {
    for walk in [false, true] {
        for target_is_file in [false, true] {
            let t = tempfile::tempdir().unwrap();
            let probe = populated(&t.path().join("probe"), walk);
            let count = layout_paths(&probe).len();
            for i in 0..count {
                let dir = t.path().join(format!("case-{i}-{target_is_file}"));
                let sentinel = sentinel(&dir);
                let target = if target_is_file {
                    sentinel.join("file")
                } else {
                    sentinel.clone()
                };
                let before = snapshot(&sentinel);
                let root = dir.join("cache");
                let s = populated(&root, walk);
                let (what, path) = layout_paths(&s).swap_remove(i);
                drop(s);
                replace_with_symlink(&path, &target);
                exercise(&root, walk, &format!("symlink at {what}"));
                assert_eq!(
                    snapshot(&sentinel),
                    before,
                    "symlink at {what} (walk: {walk}): the target outside the root changed"
                );
            }
        }
    }
}

/// [`exercise`] in a thread watched by a deadline: every operation must
/// finish (not block, not read a terabyte) within a minute.
fn exercise_within_a_minute(root: PathBuf, walk: bool, what: String) {
    let (tx, rx) = std::sync::mpsc::channel();
    let what_in = what.clone();
    std::thread::spawn(move || {
        let done = std::panic::catch_unwind(|| exercise(&root, walk, &what_in));
        let _ = tx.send(done.is_ok());
    });
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(ok) => assert!(ok, "{what}: an operation failed"),
        Err(_) => panic!("{what}: an operation did not finish within a minute"),
    }
}

/// A FIFO or a socket planted at any file path of the layout (or at a
/// pack) never makes an operation hang or fail: opening a FIFO for reading
/// would block until a writer came, opening a socket fails. Every
/// operation of [`exercise`] finishes, in a thread watched by a deadline.
#[test]
fn fifos_and_sockets_planted_anywhere_never_block_or_fail_an_operation() {
    for (walk, socket) in [(false, false), (true, false), (false, true)] {
        let kind = if socket { "socket" } else { "FIFO" };
        let t = tempfile::tempdir().unwrap();
        let probe = populated(&t.path().join("probe"), walk);
        for (i, (what, rel)) in layout_and_pack_paths(&probe).into_iter().enumerate() {
            let root = t.path().join(format!("case-{i}"));
            drop(populated(&root, walk));
            let at = root.join(&rel);
            if fs::symlink_metadata(&at).is_ok_and(|m| m.is_dir()) {
                continue;
            }
            let _ = fs::remove_file(&at);
            if socket {
                // Bound at a short path (a socket's path is limited to 108
                // bytes), then moved into place.
                let short = t.path().join("s");
                let listener = std::os::unix::net::UnixListener::bind(&short).unwrap();
                fs::rename(&short, &at).unwrap();
                std::mem::forget(listener);
            } else {
                rustix::fs::mknodat(
                    rustix::fs::CWD,
                    &at,
                    rustix::fs::FileType::Fifo,
                    rustix::fs::Mode::from_bits_truncate(0o666),
                    0,
                )
                .unwrap();
            }
            exercise_within_a_minute(root, walk, format!("{kind} at {what} (walk: {walk})"));
        }
    }
}

/// Defect 1: with `tmp` a symlink, the first publish, `reduce_size` and
/// `clean_temp` used to delete old files in the target.
#[test]
fn a_symlinked_tmp_is_replaced_not_swept() {
    let t = tempfile::tempdir().unwrap();
    let sentinel = sentinel(t.path());
    let before = snapshot(&sentinel);
    let root = t.path().join("cache");
    FsStore::create(&root).unwrap();
    fs::remove_dir(root.join("tmp")).unwrap();
    symlink(&sentinel, root.join("tmp")).unwrap();
    let s = FsStore::open(&root).unwrap();
    assert!(fs::symlink_metadata(root.join("tmp")).unwrap().is_dir());
    s.publish_bytes(NS, &key(1), &NewEntry::default(), b"v")
        .unwrap();
    fs::remove_dir(root.join("tmp")).unwrap();
    symlink(&sentinel, root.join("tmp")).unwrap();
    s.reduce_size(&Limits::default(), false).unwrap();
    fs::remove_dir(root.join("tmp")).unwrap();
    symlink(&sentinel, root.join("tmp")).unwrap();
    s.clean_temp(Duration::ZERO).unwrap();
    assert_eq!(snapshot(&sentinel), before);
}

/// Defect 1: with `ns` a symlink, clearing deleted the target's
/// subdirectories and publishes wrote into it.
#[test]
fn a_symlinked_ns_is_neither_cleared_nor_written() {
    let t = tempfile::tempdir().unwrap();
    let sentinel = sentinel(t.path());
    let before = snapshot(&sentinel);
    let root = t.path().join("cache");
    let s = FsStore::create(&root).unwrap();
    fs::remove_dir(root.join("ns")).unwrap();
    symlink(&sentinel, root.join("ns")).unwrap();
    assert_eq!(s.clear().unwrap(), 0);
    assert_eq!(snapshot(&sentinel), before);
    fs::remove_dir(root.join("ns")).unwrap();
    symlink(&sentinel, root.join("ns")).unwrap();
    s.publish_bytes(NS, &key(1), &NewEntry::default(), b"v")
        .unwrap();
    assert_eq!(snapshot(&sentinel), before);
    assert_eq!(s.get_bytes(NS, &key(1)).unwrap().unwrap(), b"v");
}

/// A store at `<at>/cache` that published an entry, then had its whole
/// directory deleted.
fn used_then_deleted(at: &Path) -> (PathBuf, FsStore) {
    let root = at.join("cache");
    let s = FsStore::create(&root).unwrap();
    s.publish_bytes(NS, &key(1), &NewEntry::default(), b"one")
        .unwrap();
    fs::remove_dir_all(&root).unwrap();
    (root, s)
}

/// Defect 5: the root deleted under a live store is made again by the next
/// publish; a lookup meanwhile is a clean miss.
#[test]
fn a_deleted_root_heals_on_the_next_publish() {
    let t = tempfile::tempdir().unwrap();
    let (root, s) = used_then_deleted(t.path());
    assert!(matches!(s.get(NS, &key(1), true).unwrap(), Lookup::Missing));
    assert!(s.entries(NS).unwrap().is_empty());
    s.publish_bytes(NS, &key(2), &NewEntry::default(), &payload(50_000))
        .unwrap();
    assert_eq!(s.get_bytes(NS, &key(2)).unwrap().unwrap(), payload(50_000));
    assert!(root.join(VERSION_FILE).is_file() && root.join("CACHEDIR.TAG").is_file());
    // Written into the new root (not into a pack kept from the old one):
    // another handle finds it.
    s.publish_bytes(NS, &key(4), &NewEntry::default(), b"four")
        .unwrap();
    let fresh = FsStore::open(&root).unwrap();
    assert_eq!(
        fresh.get_bytes(NS, &key(2)).unwrap().unwrap(),
        payload(50_000)
    );
    assert_eq!(fresh.get_bytes(NS, &key(4)).unwrap().unwrap(), b"four");
    // Parts of the layout deleted one at a time heal as well.
    for part in ["ns", "tmp", VERSION_FILE] {
        let p = root.join(part);
        if p.is_dir() {
            fs::remove_dir_all(&p).unwrap();
        } else {
            fs::remove_file(&p).unwrap();
        }
        s.publish_bytes(NS, &key(3), &NewEntry::default(), b"three")
            .unwrap_or_else(|e| panic!("after deleting {part}: {e}"));
        assert_eq!(s.get_bytes(NS, &key(3)).unwrap().unwrap(), b"three");
        assert!(s.lock(NS, &key(3), Wait::NoWait).unwrap().is_acquired());
        FsStore::open(&root).unwrap();
    }
}

/// Defect 5: a root moved away under a live store (still linked, so its
/// link count says nothing) is made again at its path by the next publish,
/// and nothing more is written into the moved directory.
#[test]
fn a_root_moved_away_heals_at_its_path() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("cache");
    let moved = t.path().join("moved");
    let s = FsStore::create(&root).unwrap();
    s.publish_bytes(NS, &key(1), &NewEntry::default(), b"one")
        .unwrap();
    fs::rename(&root, &moved).unwrap();
    let before = snapshot(&moved);
    s.publish_bytes(NS, &key(2), &NewEntry::default(), b"two")
        .unwrap();
    assert_eq!(snapshot(&moved), before);
    assert_eq!(
        FsStore::open(&root)
            .unwrap()
            .get_bytes(NS, &key(2))
            .unwrap()
            .unwrap(),
        b"two"
    );
    assert!(matches!(s.get(NS, &key(1), true).unwrap(), Lookup::Missing));
}

/// Defect 5: a store made again by another handle is found by lookups of
/// this one.
#[test]
fn a_root_made_again_elsewhere_is_picked_up() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("cache");
    let s = FsStore::create(&root).unwrap();
    fs::remove_dir_all(&root).unwrap();
    let other = FsStore::create(&root).unwrap();
    other
        .publish_bytes(NS, &key(1), &NewEntry::default(), b"v")
        .unwrap();
    assert_eq!(s.get_bytes(NS, &key(1)).unwrap().unwrap(), b"v");
}

/// Defect 8: a damaged layout file is an error that names the file, what
/// was found and the fix.
#[test]
fn a_damaged_layout_file_is_a_clear_error() {
    for (contents, found) in [
        (&b"\xff\xfe\x00garbage"[..], "not text"),
        (b"", "empty"),
        (b"hello world\n", "hello world"),
    ] {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("cache");
        FsStore::create(&root).unwrap();
        fs::write(root.join(VERSION_FILE), contents).unwrap();
        for e in [
            FsStore::create(&root).unwrap_err(),
            FsStore::open(&root).unwrap_err(),
        ] {
            assert!(matches!(e, StoreError::BadLayoutFile { .. }), "{e}");
            let msg = e.to_string();
            assert!(
                msg.contains(root.join(VERSION_FILE).to_str().unwrap()),
                "{msg}"
            );
            assert!(msg.contains(found), "{msg}");
            assert!(msg.contains("delete that file"), "{msg}");
        }
        // The fix works.
        fs::remove_file(root.join(VERSION_FILE)).unwrap();
        FsStore::create(&root).unwrap();
    }
}

/// A new cache keeps itself out of version control, as joblib's does.
#[test]
fn a_new_cache_has_a_gitignore() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("cache");
    FsStore::create(&root).unwrap();
    assert_eq!(fs::read_to_string(root.join(".gitignore")).unwrap(), "*\n");
}

fn quarantined_bytes(root: &Path) -> (usize, u64) {
    let mut n = 0;
    let mut bytes = 0;
    for e in fs::read_dir(root.join("tmp")).unwrap() {
        let e = e.unwrap();
        assert!(
            e.file_name().to_str().unwrap().starts_with("corrupt-"),
            "{e:?}"
        );
        n += 1;
        for f in fs::read_dir(e.path()).unwrap() {
            bytes += f.unwrap().metadata().unwrap().len();
        }
    }
    (n, bytes)
}

/// Defect 6: quarantined entries are kept under a cap, oldest removed
/// first; one larger than the cap is removed at once.
#[test]
fn the_quarantine_stays_under_its_cap() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("cache");
    let cap = 200_000;
    let s = FsStore::create(&root).unwrap().with_quarantine_max(cap);
    for i in 0..30 {
        s.publish_bytes(NS, &key(i), &NewEntry::default(), &payload(40_000))
            .unwrap();
        let p = s.entry_dir(NS, &key(i)).unwrap().join("payload");
        let mut b = fs::read(&p).unwrap();
        b[100] ^= 1;
        fs::write(&p, b).unwrap();
        assert!(matches!(
            s.get(NS, &key(i), true).unwrap(),
            Lookup::Corrupt(_)
        ));
        let (n, bytes) = quarantined_bytes(&root);
        assert!(bytes <= cap, "{bytes} bytes in quarantine");
        assert!(n >= 1);
    }
    let big = key(100);
    s.publish_bytes(NS, &big, &NewEntry::default(), &payload(300_000))
        .unwrap();
    let p = s.entry_dir(NS, &big).unwrap().join("payload");
    let mut b = fs::read(&p).unwrap();
    b[100] ^= 1;
    fs::write(&p, b).unwrap();
    assert!(matches!(s.get(NS, &big, true).unwrap(), Lookup::Corrupt(_)));
    assert!(quarantined_bytes(&root).1 <= cap);
    // An explicit trim frees the quarantine entirely; a dry run keeps it.
    s.reduce_size(&Limits::default(), true).unwrap();
    assert!(quarantined_bytes(&root).0 >= 1);
    s.reduce_size(&Limits::default(), false).unwrap();
    assert_eq!(quarantined_bytes(&root), (0, 0));
    assert!(!s.entry_dir(NS, &big).unwrap().exists());
}

/// Collects warnings, to count them.
struct Capture;

static WARNINGS: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
static LOGGER: Capture = Capture;

impl log::Log for Capture {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.level() <= log::Level::Warn
    }
    fn log(&self, r: &log::Record<'_>) {
        if self.enabled(r.metadata()) {
            WARNINGS.lock().unwrap().push(r.args().to_string());
        }
    }
    fn flush(&self) {}
}

fn warnings_about(path: &Path) -> Vec<String> {
    let p = path.display().to_string();
    WARNINGS
        .lock()
        .unwrap()
        .iter()
        .filter(|w| w.contains(&p))
        .cloned()
        .collect()
}

/// Defect 5: healing a deleted root is logged once, not on every call.
#[test]
fn healing_is_logged_once() {
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(log::LevelFilter::Warn);
    }
    let t = tempfile::tempdir().unwrap();
    let (root, s) = used_then_deleted(t.path());
    for i in 2..6 {
        s.publish_bytes(NS, &key(i), &NewEntry::default(), b"v")
            .unwrap();
        s.get(NS, &key(i), true).unwrap().found().unwrap();
    }
    let w = warnings_about(&root);
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].contains("deleted while in use"), "{w:?}");
}

/// A file of the layout that another user extended to a terabyte of holes
/// (`truncate -s 1T`: no disk space needed) is not read through: every
/// operation finishes, in a thread watched by a deadline.
#[test]
fn a_terabyte_of_holes_at_a_file_of_the_layout_is_not_read_through() {
    let t = tempfile::tempdir().unwrap();
    let probe = populated(&t.path().join("probe"), false);
    let mut paths: Vec<PathBuf> = vec![
        probe.root().join("index/ledger"),
        probe.root().join("packs/generations"),
    ];
    for e in fs::read_dir(probe.root().join("packs")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "pack") {
            paths.push(p);
        }
    }
    paths.push(probe.entry_dir(NS, &key(1)).unwrap().join("meta"));
    paths.push(probe.entry_dir(NS, &key(1)).unwrap().join("payload"));
    for (i, path) in paths.into_iter().enumerate() {
        let rel = path.strip_prefix(probe.root()).unwrap().to_path_buf();
        let root = t.path().join(format!("case-{i}"));
        drop(populated(&root, false));
        let at = root.join(&rel);
        fs::OpenOptions::new()
            .write(true)
            .open(&at)
            .unwrap()
            .set_len(1 << 40)
            .unwrap();
        exercise_within_a_minute(root, false, format!("1 TiB of holes at {}", rel.display()));
    }
}

/// A hard link planted at a file of the layout (or at a pack) to a file
/// outside the root: whatever the store writes in place (a pack, the
/// ledger, the generation page) it never writes through the link, so the
/// outside file keeps its bytes.
#[test]
fn hard_links_planted_anywhere_never_lead_writes_outside_the_root() {
    let t = tempfile::tempdir().unwrap();
    let probe = populated(&t.path().join("probe"), false);
    for (i, (what, rel)) in layout_and_pack_paths(&probe).into_iter().enumerate() {
        let dir = t.path().join(format!("case-{i}"));
        let root = dir.join("cache");
        drop(populated(&root, false));
        let at = root.join(&rel);
        if !fs::symlink_metadata(&at).is_ok_and(|m| m.is_file()) {
            continue;
        }
        // The outside file starts as a copy of the one it replaces, so that
        // the store takes it for its own.
        let outside = dir.join("outside");
        fs::create_dir_all(&outside).unwrap();
        let victim = outside.join("victim");
        fs::copy(&at, &victim).unwrap();
        let before = snapshot(&outside);
        fs::remove_file(&at).unwrap();
        fs::hard_link(&victim, &at).unwrap();
        exercise_within_a_minute(root, false, format!("hard link at {what}"));
        assert_eq!(
            snapshot(&outside),
            before,
            "hard link at {what}: the file outside the root changed"
        );
    }
}
