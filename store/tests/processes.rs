//! Multi-process behaviour of `FsStore`: real processes (this test binary
//! re-run with `JOBCACHE_STORE_CHILD` naming a role) hammering one store,
//! writers killed with SIGKILL mid-publish, a lock holder killed while
//! others wait, and a publish that runs out of file size (`RLIMIT_FSIZE`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use jobcache_store::StoreExt;
use jobcache_store::{FsStore, LockState, Lookup, NewEntry, Store, StoreError, Wait};
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const NS: &str = "jobcache::tests::processes";
const ROLE: &str = "JOBCACHE_STORE_CHILD";

fn key(i: u64) -> String {
    format!("{i:064x}")
}

/// The payload every process publishes under `key`: derived from the key
/// only, of a length from 0 to about 300 KB (inline and file payloads).
fn expected(key: &str) -> Vec<u8> {
    let n = u64::from_str_radix(&key[48..], 16).unwrap();
    let len = (n.wrapping_mul(7919) % 300_000) as usize;
    (0..len)
        .map(|i| (i as u64 ^ n.wrapping_mul(31)) as u8)
        .collect()
}

fn spawn(role: &str, root: &Path, extra: &[(&str, String)]) -> Child {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", "child", "--nocapture", "--test-threads=1"])
        .env(ROLE, role)
        .env("STORE_ROOT", root)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in extra {
        cmd.env(k, v);
    }
    cmd.spawn().unwrap()
}

fn wait_ok(child: Child, what: &str) {
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The entry point of child processes; a no-op in the parent's run.
#[test]
fn child() {
    let Ok(role) = std::env::var(ROLE) else {
        return;
    };
    let root = PathBuf::from(std::env::var("STORE_ROOT").unwrap());
    match role.as_str() {
        "hammer" => hammer(&root),
        "writer" => writer(&root),
        "holder" => holder(&root),
        "fsize" => fsize(&root),
        "nobody" => nobody(&root),
        "readonly" => readonly(&root),
        "creator" => creator(&root),
        "publisher" => publisher(&root),
        "stalled" => stalled(&root),
        other => panic!("unknown role {other}"),
    }
}

fn hammer(root: &Path) {
    let id: u64 = std::env::var("CHILD_ID").unwrap().parse().unwrap();
    let marks = PathBuf::from(std::env::var("MARKS").unwrap());
    let store = FsStore::create(root).unwrap();
    std::thread::scope(|scope| {
        for t in 0..3u64 {
            let store = &store;
            let marks = &marks;
            scope.spawn(move || {
                let own: Vec<String> = (0..4).map(|i| key(1000 + id * 100 + t * 10 + i)).collect();
                let shared: Vec<String> = (0..6).map(key).collect();
                for k in shared.iter().chain(&own) {
                    let got = store
                        .get_or_compute(NS, k, Wait::Forever, &mut || {
                            let mark = marks.join(format!("{k}.{id}.{t}"));
                            fs::File::create_new(mark)?;
                            std::thread::sleep(Duration::from_millis(30));
                            Ok((expected(k), NewEntry::new(Duration::from_millis(30))))
                        })
                        .unwrap();
                    assert_eq!(got.bytes, expected(k), "{k}");
                }
                for k in &shared {
                    let mut e = store.get(NS, k, true).unwrap().found().unwrap();
                    assert_eq!(e.read_to_vec().unwrap(), expected(k));
                }
            });
        }
    });
}

/// Publishes entries forever, writing each payload in small pieces so that
/// a kill lands anywhere in the publish protocol.
fn writer(root: &Path) {
    let seed: u64 = std::env::var("SEED").unwrap().parse().unwrap();
    let store = FsStore::open(root).unwrap();
    for i in 0.. {
        let k = key(seed * 10_000 + i);
        let data = expected(&k);
        store
            .publish(
                NS,
                &k,
                &NewEntry::new(Duration::ZERO).field("seed", seed.to_string()),
                &mut |w: &mut dyn Write| {
                    for piece in data.chunks(8192) {
                        w.write_all(piece)?;
                    }
                    Ok(())
                },
            )
            .unwrap();
    }
}

fn holder(root: &Path) {
    let store = FsStore::open(root).unwrap();
    let guard = store.lock(NS, &key(7), Wait::NoWait).unwrap();
    assert!(guard.is_acquired());
    println!("\nholder-locked");
    std::io::stdout().flush().unwrap();
    std::thread::sleep(Duration::from_secs(60));
}

fn fsize(root: &Path) {
    let store = FsStore::open(root).unwrap();
    let limit = libc::rlimit {
        rlim_cur: 64 * 1024,
        rlim_max: 64 * 1024,
    };
    // SAFETY: plain system calls with valid arguments; this child process
    // exists to run with a file size limit and SIGXFSZ ignored (so that
    // writes past the limit fail with EFBIG instead of killing it).
    unsafe {
        assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &limit), 0);
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
    let big = vec![7u8; 1 << 20];
    let err = store
        .publish_bytes(NS, &key(1), &NewEntry::default(), &big)
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, StoreError::Io { .. }), "{msg}");
    assert_eq!(
        err.io_kind(),
        Some(std::io::ErrorKind::FileTooLarge),
        "{msg}"
    );
    assert!(
        msg.contains(root.to_str().unwrap()),
        "the error names the path: {msg}"
    );
    assert!(msg.contains("payload"), "{msg}");
    assert!(matches!(
        store.get(NS, &key(1), true).unwrap(),
        Lookup::Missing
    ));
    let leftovers = fs::read_dir(root.join("tmp")).unwrap().count();
    assert_eq!(leftovers, 0, "a failed publish leaves nothing behind");
    // Small entries still fit.
    store
        .publish_bytes(NS, &key(2), &NewEntry::default(), b"small")
        .unwrap();
    assert_eq!(store.get_bytes(NS, &key(2)).unwrap().unwrap(), b"small");
    println!("fsize-ok: {msg}");
}

/// Runs as an unprivileged user against a store it may read but not write.
fn nobody(root: &Path) {
    // SAFETY: plain system calls dropping privileges in this child process.
    unsafe {
        assert_eq!(libc::setgid(65534), 0);
        assert_eq!(libc::setuid(65534), 0);
    }
    let store = FsStore::open(root).unwrap();
    // Reading works (without O_NOATIME, which only the owner may use).
    assert_eq!(store.get_bytes(NS, &key(1)).unwrap().unwrap(), b"readable");
    let err = store
        .publish_bytes(NS, &key(2), &NewEntry::default(), b"v")
        .unwrap_err();
    assert_eq!(
        err.io_kind(),
        Some(std::io::ErrorKind::PermissionDenied),
        "{err}"
    );
    assert!(err.to_string().contains(root.to_str().unwrap()), "{err}");
    println!("nobody-ok: {err}");
}

/// Remounts the store read-only in a private mount namespace (needs
/// CAP_SYS_ADMIN; prints `readonly-skipped` where that is not allowed).
fn readonly(root: &Path) {
    use std::ffi::CString;
    let c = CString::new(root.to_str().unwrap()).unwrap();
    let slash = CString::new("/").unwrap();
    // SAFETY: plain system calls with valid NUL-terminated paths, changing
    // only this child's private mount namespace.
    let ok = unsafe {
        libc::unshare(libc::CLONE_NEWNS) == 0
            && libc::mount(
                std::ptr::null(),
                slash.as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            ) == 0
            && libc::mount(
                c.as_ptr(),
                c.as_ptr(),
                std::ptr::null(),
                libc::MS_BIND,
                std::ptr::null(),
            ) == 0
            && libc::mount(
                std::ptr::null(),
                c.as_ptr(),
                std::ptr::null(),
                libc::MS_REMOUNT | libc::MS_BIND | libc::MS_RDONLY,
                std::ptr::null(),
            ) == 0
    };
    if !ok {
        println!("readonly-skipped: {}", std::io::Error::last_os_error());
        return;
    }
    let store = FsStore::open(root).unwrap();
    assert_eq!(store.get_bytes(NS, &key(1)).unwrap().unwrap(), b"readable");
    let err = store
        .publish_bytes(NS, &key(2), &NewEntry::default(), b"v")
        .unwrap_err();
    assert_eq!(
        err.io_kind(),
        Some(std::io::ErrorKind::ReadOnlyFilesystem),
        "{err}"
    );
    assert!(err.to_string().contains(root.to_str().unwrap()), "{err}");
    println!("readonly-ok: {err}");
}

/// Waits for the moment in `START` (nanoseconds since the epoch), creates
/// the store and appends to a journal beside it, as a cached program does.
fn creator(root: &Path) {
    let start: u128 = std::env::var("START").unwrap().parse().unwrap();
    while std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
        < start
    {
        std::hint::spin_loop();
    }
    let store = FsStore::create(root).unwrap_or_else(|e| panic!("create: {e}"));
    fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(root.join("journal.jsonl"))
        .unwrap()
        .write_all(b"{}\n")
        .unwrap();
    let id: u64 = std::env::var("CHILD_ID").unwrap().parse().unwrap();
    store
        .publish_bytes(NS, &key(id), &NewEntry::default(), &expected(&key(id)))
        .unwrap();
}

/// Publishes and reads for `MILLIS` milliseconds in three namespaces;
/// every call must succeed while another process clears the store.
fn publisher(root: &Path) {
    let seed: u64 = std::env::var("SEED").unwrap().parse().unwrap();
    let millis: u64 = std::env::var("MILLIS").unwrap().parse().unwrap();
    let store = FsStore::open(root).unwrap();
    let end = Instant::now() + Duration::from_millis(millis);
    let mut i = 0u64;
    while Instant::now() < end {
        let ns = format!("{NS}::{}", i % 3);
        let k = key(seed * 1_000_000 + i % 50);
        store
            .publish_bytes(&ns, &k, &NewEntry::default(), &expected(&k))
            .unwrap_or_else(|e| panic!("publish: {e}"));
        match store
            .get(&ns, &k, true)
            .unwrap_or_else(|e| panic!("get: {e}"))
        {
            Lookup::Found(mut e) => assert_eq!(e.read_to_vec().unwrap(), expected(&k)),
            Lookup::Missing => {}
            Lookup::Corrupt(c) => panic!("corrupt while clearing: {c}"),
        }
        i += 1;
    }
    println!("publisher-ok: {i} publishes");
}

/// Starts a large publish whose writer stalls halfway, and waits to be
/// killed.
fn stalled(root: &Path) {
    let store = FsStore::open(root).unwrap();
    let _ = store.publish(
        NS,
        &key(9),
        &NewEntry::default(),
        &mut |w: &mut dyn Write| {
            w.write_all(&vec![1u8; 4 << 20])?;
            println!("\nstalled-writing");
            std::io::stdout().flush()?;
            std::thread::sleep(Duration::from_secs(60));
            Ok(())
        },
    );
}

fn now_nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// Defect 3: many processes creating one store in a fresh directory at the
/// same moment all succeed, whatever order the layout files and the
/// journal appear in.
#[test]
fn concurrent_creation_on_a_fresh_directory_always_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    for round in 0..4 {
        let root = dir.path().join(format!("cache-{round}"));
        let start = now_nanos() + 400_000_000;
        let children: Vec<Child> = (0..32u64)
            .map(|id| {
                spawn(
                    "creator",
                    &root,
                    &[("START", start.to_string()), ("CHILD_ID", id.to_string())],
                )
            })
            .collect();
        for (id, c) in children.into_iter().enumerate() {
            wait_ok(c, &format!("round {round}, creator {id}"));
        }
        let store = FsStore::open(&root).unwrap();
        assert_eq!(store.entries(NS).unwrap().len(), 32);
    }
}

fn leftovers(root: &Path) -> Vec<String> {
    fs::read_dir(root.join("tmp"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect()
}

/// Defect 4: clearing, evicting and verifying while other processes publish
/// never fail, and leave nothing behind.
#[test]
fn clearing_while_others_publish_never_fails_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("cache");
    let store = FsStore::create(&root).unwrap();
    let millis = 3000u64;
    let children: Vec<Child> = (0..4u64)
        .map(|seed| {
            spawn(
                "publisher",
                &root,
                &[("SEED", seed.to_string()), ("MILLIS", millis.to_string())],
            )
        })
        .collect();
    let end = Instant::now() + Duration::from_millis(millis);
    let mut rounds = 0;
    std::thread::scope(|s| {
        let clearer = s.spawn(|| {
            let other = FsStore::open(&root).unwrap();
            let mut n = 0;
            while Instant::now() < end {
                other.clear().unwrap_or_else(|e| panic!("clear: {e}"));
                n += 1;
            }
            n
        });
        while Instant::now() < end {
            store.clear().unwrap_or_else(|e| panic!("clear: {e}"));
            store
                .reduce_size(
                    &jobcache_store::Limits {
                        max_items: Some(5),
                        ..Default::default()
                    },
                    false,
                )
                .unwrap_or_else(|e| panic!("reduce_size: {e}"));
            store
                .verify_all(&mut |_, _| {})
                .unwrap_or_else(|e| panic!("verify_all: {e}"));
            rounds += 1;
        }
        rounds += clearer.join().unwrap();
    });
    for (i, c) in children.into_iter().enumerate() {
        let out = c.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("publisher-ok"),
            "publisher {i}: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        eprintln!(
            "{}",
            stdout
                .lines()
                .find(|l| l.contains("publisher-ok"))
                .unwrap_or("")
        );
    }
    eprintln!("{rounds} rounds of clearing");
    store.clear().unwrap();
    assert_eq!(leftovers(&root), Vec::<String>::new());
}

/// Defect 6: a killed publisher's temporary directory is removed by the
/// next clean at once, whatever its age; a live one's is left alone.
#[test]
fn a_killed_publishers_leftovers_go_at_once_a_live_ones_stay() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("cache");
    let store = FsStore::create(&root).unwrap();
    let mut child = spawn("stalled", &root, &[]);
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    assert!(lines.any(|l| l.unwrap().contains("stalled-writing")));
    let live = leftovers(&root);
    assert_eq!(live.len(), 1, "{live:?}");
    assert_eq!(store.clean_temp(jobcache_store::TEMP_MAX_AGE).unwrap(), 0);
    store
        .reduce_size(&jobcache_store::Limits::default(), false)
        .unwrap();
    store.verify_all(&mut |_, _| {}).unwrap();
    assert_eq!(leftovers(&root), live, "a live publisher's directory stays");
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(store.clean_temp(jobcache_store::TEMP_MAX_AGE).unwrap(), 1);
    assert!(leftovers(&root).is_empty());
    // The first publish of a new handle sweeps as well.
    let mut child = spawn("stalled", &root, &[]);
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    assert!(lines.any(|l| l.unwrap().contains("stalled-writing")));
    child.kill().unwrap();
    child.wait().unwrap();
    FsStore::open(&root)
        .unwrap()
        .publish_bytes(NS, &key(1), &NewEntry::default(), b"v")
        .unwrap();
    assert!(leftovers(&root).is_empty());
}

#[test]
fn a_read_only_file_system_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("cache");
    let store = FsStore::create(&root).unwrap();
    store
        .publish_bytes(NS, &key(1), &NewEntry::default(), b"readable")
        .unwrap();
    let out = spawn("readonly", &root, &[]).wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success()
            && (stdout.contains("readonly-ok") || stdout.contains("readonly-skipped")),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!(
        "{}",
        stdout
            .lines()
            .find(|l| l.contains("readonly-"))
            .unwrap_or_default()
    );
}

#[test]
fn permission_denied_is_a_clear_error() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let root = dir.path().join("cache");
    let store = FsStore::create(&root).unwrap();
    store
        .publish_bytes(NS, &key(1), &NewEntry::default(), b"readable")
        .unwrap();
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        let out = spawn("nobody", &root, &[]).wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("nobody-ok"),
            "{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    } else {
        for d in ["ns", "tmp"] {
            fs::set_permissions(root.join(d), fs::Permissions::from_mode(0o555)).unwrap();
        }
        let err = store
            .publish_bytes(NS, &key(2), &NewEntry::default(), b"v")
            .unwrap_err();
        assert_eq!(
            err.io_kind(),
            Some(std::io::ErrorKind::PermissionDenied),
            "{err}"
        );
        for d in ["ns", "tmp"] {
            fs::set_permissions(root.join(d), fs::Permissions::from_mode(0o755)).unwrap();
        }
    }
}

#[test]
fn eight_processes_compute_each_key_once() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("cache");
    let marks = dir.path().join("marks");
    fs::create_dir(&marks).unwrap();
    let children: Vec<Child> = (0..8)
        .map(|id| {
            spawn(
                "hammer",
                &root,
                &[
                    ("CHILD_ID", id.to_string()),
                    ("MARKS", marks.display().to_string()),
                ],
            )
        })
        .collect();
    for (i, c) in children.into_iter().enumerate() {
        wait_ok(c, &format!("hammer {i}"));
    }
    let mut counts = std::collections::BTreeMap::new();
    for e in fs::read_dir(&marks).unwrap() {
        let name = e.unwrap().file_name().into_string().unwrap();
        let k = name.split('.').next().unwrap().to_string();
        *counts.entry(k).or_insert(0) += 1;
    }
    // 6 shared keys plus 4 own keys for each of 3 threads in 8 processes.
    assert_eq!(counts.len(), 6 + 8 * 3 * 4);
    assert!(counts.values().all(|&n| n == 1), "{counts:?}");
    let store = FsStore::open(&root).unwrap();
    assert_eq!(store.entries(NS).unwrap().len(), counts.len());
    // The index's running totals, kept by 8 processes at once, match.
    let all = store.entries(NS).unwrap();
    let bytes: u64 = all.iter().map(|e| e.stored_bytes).sum();
    assert_eq!(store.indexed_totals().unwrap(), (all.len(), bytes));
}

/// Checks every entry: complete and correct, or absent.
fn check_all(store: &FsStore) -> usize {
    let mut n = 0;
    for info in store.entries(NS).unwrap() {
        match store.get(NS, &info.key, true).unwrap() {
            Lookup::Found(mut e) => {
                assert_eq!(
                    e.read_to_vec().unwrap(),
                    expected(&info.key),
                    "{}",
                    info.key
                );
                n += 1;
            }
            Lookup::Missing => {}
            Lookup::Corrupt(c) => panic!("a killed writer left a corrupt entry: {c}"),
        }
    }
    n
}

#[test]
fn writers_killed_mid_publish_leave_complete_entries_or_none() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("cache");
    let store = FsStore::create(&root).unwrap();
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let start = Instant::now();
    for trial in 0..100u64 {
        let mut child = spawn("writer", &root, &[("SEED", trial.to_string())]);
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        std::thread::sleep(Duration::from_micros(2_000 + rng % 25_000));
        child.kill().unwrap();
        let status = child.wait().unwrap();
        assert!(!status.success(), "trial {trial}: the writer was killed");
        if trial % 10 == 9 {
            check_all(&store);
        }
    }
    let complete = check_all(&store);
    eprintln!(
        "100 kills in {:?}; {complete} complete entries",
        start.elapsed()
    );
    // The store keeps working, and leftovers are cleaned.
    store
        .publish_bytes(NS, &key(5), &NewEntry::default(), &expected(&key(5)))
        .unwrap();
    assert_eq!(
        store.get_bytes(NS, &key(5)).unwrap().unwrap(),
        expected(&key(5))
    );
    store.clean_temp(Duration::ZERO).unwrap();
    assert_eq!(fs::read_dir(root.join("tmp")).unwrap().count(), 0);
    assert!(complete + 1 == check_all(&store) || complete == check_all(&store));
    // A kill between the rename and the index append can leave an entry
    // uncounted (never a torn ledger); verify rebuilds the index exactly.
    let (items, _) = store.indexed_totals().unwrap();
    let listed = store.entries(NS).unwrap();
    assert!(items <= listed.len() && listed.len() - items <= 100);
    store.verify_all(&mut |_, _| {}).unwrap();
    let bytes: u64 = listed.iter().map(|e| e.stored_bytes).sum();
    assert_eq!(store.indexed_totals().unwrap(), (listed.len(), bytes));
}

#[test]
fn a_killed_lock_holder_releases_its_lock() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("cache");
    let store = FsStore::create(&root).unwrap();
    let mut child = spawn("holder", &root, &[]);
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    assert!(
        lines.any(|l| l.unwrap().contains("holder-locked")),
        "the holder took the lock"
    );
    assert_eq!(
        store.lock(NS, &key(7), Wait::NoWait).unwrap().state(),
        LockState::TimedOut
    );
    let timed = store
        .lock(NS, &key(7), Wait::Timeout(Duration::from_millis(100)))
        .unwrap();
    assert_eq!(timed.state(), LockState::TimedOut);
    std::thread::scope(|s| {
        let waiter = s.spawn(|| store.lock(NS, &key(7), Wait::Forever).unwrap());
        std::thread::sleep(Duration::from_millis(200));
        assert!(
            !waiter.is_finished(),
            "the waiter waits while the holder lives"
        );
        child.kill().unwrap();
        child.wait().unwrap();
        let guard = waiter.join().unwrap();
        assert!(guard.is_acquired());
        assert!(guard.waited() > Duration::ZERO);
    });
}

#[test]
fn a_file_size_limit_fails_publish_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("cache");
    FsStore::create(&root).unwrap();
    let child = spawn("fsize", &root, &[]);
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("fsize-ok"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let store = FsStore::open(&root).unwrap();
    assert!(matches!(
        store.get(NS, &key(1), true).unwrap(),
        Lookup::Missing
    ));
}
