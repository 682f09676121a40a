//! What memo does beyond joblib's `Memory`, and joblib's remaining
//! behaviours (issue 15): refresh, name collisions, adopted directories,
//! the `Debug` form, clearing in the journal.

use jobcache_memo::Memory;
use jobcache_trace::{read_journal, EventKind, Filter};
use std::sync::atomic::{AtomicU32, Ordering};

fn temp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

fn quiet(dir: &tempfile::TempDir) -> Memory {
    Memory::builder(dir.path()).verbose(0).build().unwrap()
}

static FETCHES: AtomicU32 = AtomicU32::new(0);
fn fetch(id: u32) -> u32 {
    FETCHES.fetch_add(1, Ordering::SeqCst) * 1000 + id
}

#[test]
fn refresh_always_runs_and_republishes() {
    let dir = temp();
    let mem = quiet(&dir);
    let f = mem.cache(fetch);
    let first = f.call(7);
    assert_eq!(f.call(7), first);
    let refreshed = f.refresh(7);
    assert_ne!(refreshed, first, "refresh runs the function again");
    assert_eq!(
        f.call(7),
        refreshed,
        "the refreshed result replaced the old"
    );
    // Another memory on the same directory sees the new result too.
    assert_eq!(quiet(&dir).cache(fetch).call(7), refreshed);
    // Refreshing a call never made stores it.
    let fresh = f.refresh(8);
    assert_eq!(f.call(8), fresh);
}

#[test]
fn try_refresh_keeps_the_old_result_on_error() {
    let dir = temp();
    let mem = quiet(&dir);
    let fail = std::sync::atomic::AtomicBool::new(false);
    let runs = AtomicU32::new(0);
    let f = mem.cache_named("flaky", |x: u32| -> Result<u32, String> {
        if fail.load(Ordering::SeqCst) {
            return Err("down".into());
        }
        Ok(x + runs.fetch_add(1, Ordering::SeqCst))
    });
    assert_eq!(f.try_call(1), Ok(1));
    fail.store(true, Ordering::SeqCst);
    assert_eq!(f.try_refresh(1), Err("down".to_string()));
    assert_eq!(f.try_call(1), Ok(1), "the old result is still there");
    fail.store(false, Ordering::SeqCst);
    assert_eq!(f.try_refresh(1), Ok(2));
    assert_eq!(f.try_call(1), Ok(2));
}

#[test]
fn a_disabled_memory_refreshes_by_running() {
    let f = Memory::disabled().cache(fetch);
    let a = f.refresh(1);
    assert_ne!(f.refresh(1), a);
}

#[test]
fn cache_refuses_a_closure_before_any_call() {
    let dir = temp();
    let mem = quiet(&dir);
    let refused = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = mem.cache(|x: u8| x);
    }));
    let message = refused.unwrap_err();
    let text = message.downcast_ref::<String>().unwrap();
    assert!(
        text.contains("cache_named") && text.contains("closure"),
        "{text}"
    );
    // Function pointers too; a named closure is fine.
    let pointer: fn(u32) -> u32 = fetch;
    assert!(std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = mem.cache(pointer);
    }))
    .is_err());
    assert_eq!(mem.cache_named("id", |x: u8| x).call(3), 3);
}

#[test]
fn debug_names_the_function_and_the_location() {
    let dir = temp();
    let mem = quiet(&dir);
    let f = mem.cache(fetch);
    let text = format!("{f:?}");
    assert!(text.contains("beyond::fetch"), "{text}");
    assert!(
        text.contains(&format!("{:?}", dir.path())),
        "{text} names {:?}",
        dir.path()
    );
    let g = mem.cache_named("my step", |x: u8| x);
    assert!(format!("{g:?}").contains("\"my step\""));
    let off = Memory::disabled().cache(fetch);
    assert!(format!("{off:?}").contains("location: None"));
}

#[test]
fn clearing_is_journaled() {
    let dir = temp();
    let mem = quiet(&dir);
    let f = mem.cache(fetch);
    f.call(1);
    let g = mem.cache_named("other", |x: u8| x);
    g.call(2);
    assert!(f.clear().unwrap() > 0);
    assert!(mem.clear().unwrap() > 0);
    let cleared = read_journal(
        dir.path().join("journal.jsonl"),
        &Filter {
            kinds: vec![EventKind::Cleared],
            ..Filter::default()
        },
    )
    .unwrap();
    let functions: Vec<_> = cleared.iter().map(|e| e.function.as_str()).collect();
    assert_eq!(functions, ["beyond::fetch", "other"], "{cleared:?}");
    assert!(cleared.iter().all(|e| e.output_bytes > 0));
}

#[test]
fn a_directory_of_dot_files_is_adopted() {
    let dir = temp();
    let root = dir.path().join("cache");
    std::fs::create_dir(&root).unwrap();
    std::fs::write(root.join(".keep"), "").unwrap();
    std::fs::write(root.join(".gitignore"), "mine\n").unwrap();
    let mem = Memory::builder(&root).verbose(0).build().unwrap();
    assert_eq!(mem.cache(fetch).call(5) % 1000, 5);
    // The user's .gitignore is kept; the cache is tagged.
    assert_eq!(
        std::fs::read_to_string(root.join(".gitignore")).unwrap(),
        "mine\n"
    );
    assert!(root.join("CACHEDIR.TAG").is_file());
    // User data is still refused, dot-directories (.git) included.
    for (name, dir_like) in [("notes.txt", false), (".git", true)] {
        let other = dir.path().join(format!("other-{name}"));
        std::fs::create_dir(&other).unwrap();
        if dir_like {
            std::fs::create_dir(other.join(name)).unwrap();
        } else {
            std::fs::write(other.join(name), "data").unwrap();
        }
        let refused = Memory::builder(&other).verbose(0).build().unwrap_err();
        assert!(refused.to_string().contains(name), "{refused}");
    }
}

#[test]
fn a_new_cache_is_ignored_by_git_and_tagged() {
    let dir = temp();
    let root = dir.path().join("new");
    Memory::builder(&root).verbose(0).build().unwrap();
    assert_eq!(
        std::fs::read_to_string(root.join(".gitignore")).unwrap(),
        "*\n"
    );
    let tag = std::fs::read_to_string(root.join("CACHEDIR.TAG")).unwrap();
    assert!(tag.starts_with("Signature: 8a477f597d28d172789f06886806bc55"));
}

#[test]
fn two_functions_under_one_name_never_share_results() {
    let dir = temp();
    let mem = quiet(&dir);
    let plus_one = mem.cache_named("f", |x: u32| x + 1);
    let plus_two = mem.cache_named("f", |x: u32| x + 2);
    assert_eq!(plus_one.call(1), 2);
    assert_eq!(plus_two.call(1), 3);
    assert_eq!(plus_one.call(1), 2);
    assert_eq!(plus_one.name(), "f");
    assert_eq!(plus_two.name(), "f#2");
    // The same function cached twice under its name shares its results.
    let again = mem.cache_named("f", |x: u32| x * 10);
    assert_eq!(again.name(), "f#3");
    let one_more = quiet(&dir).cache_named("g", fetch);
    let first = one_more.call(4);
    assert_eq!(quiet(&dir).cache_named("g", fetch).call(4), first);
    // Across memories, functions of different types under one name differ
    // by key even in one namespace.
    let other = quiet(&dir).cache_named("g", |x: u32| x + 100);
    assert_eq!(other.name(), "g");
    // `why` tells which function the other results are of.
    assert_eq!(
        other.why(&4).unwrap().to_string(),
        "another function (`beyond::fetch`) is cached under this name"
    );
    assert_eq!(other.call(4), 104);
}

jobcache_memo::memoize! {
    fn scaled(values: &[f64], scale: f64) -> f64 {
        values.iter().sum::<f64>() * scale
    }
}

jobcache_memo::memoize! {
    fn scaled_v2(values: &[f64], scale: f64) -> f64 {
        values.iter().map(|v| v * scale).sum::<f64>()
    }
}

#[test]
fn why_names_what_changed_since_the_nearest_call() {
    let dir = temp();
    let mem = quiet(&dir);
    let f = mem.cache(scaled);
    let values = [1.0, 2.0];
    assert_eq!(
        f.why(&(&values[..], 2.0)).unwrap().to_string(),
        "no earlier call"
    );
    f.call((&values[..], 2.0));
    assert_eq!(
        f.why(&(&values[..], 3.0)).unwrap().to_string(),
        "argument 2 (`scale`) changed; code unchanged"
    );
    assert_eq!(
        f.why(&(&[5.0][..], 3.0)).unwrap().to_string(),
        "arguments 1 (`values`) and 2 (`scale`) changed; code unchanged"
    );
    // The same name, another body (here of another function; an edit of
    // the same function says "code changed (memoize! source)" alone).
    let edited = quiet(&dir).cache_named(f.name(), scaled_v2);
    assert_eq!(
        edited.why(&(&values[..], 2.0)).unwrap().to_string(),
        "another function (`beyond::scaled`) is cached under this name; \
         code changed (memoize! source)"
    );
    // An explicit version.
    let v3 = mem.cache_named("versioned", fetch).version("3");
    v3.call(1);
    let v4 = quiet(&dir).cache_named("versioned", fetch).version("4");
    assert_eq!(v4.why(&1).unwrap().to_string(), "version 3 → 4");
}

#[test]
fn metadata_keeps_one_digest_per_argument() {
    let dir = temp();
    let mem = quiet(&dir);
    let f = mem.cache(scaled);
    f.call((&[1.0][..], 2.0));
    let store = mem.store().unwrap();
    let entries = store.entries(f.name()).unwrap();
    let meta = entries[0].meta.as_ref().unwrap();
    let record = jobcache_memo::why::CallRecord::from_meta(meta).unwrap();
    assert_eq!(record.args.len(), 2);
    assert!(record.args.iter().all(|d| d.len() == 16));
    assert_eq!(record.arg_names, ["values", "scale"]);
    assert_eq!(record.code.len(), 16);
    // Bounded: the fields jobcache adds for this are a few dozen bytes.
    let added: usize = [
        "arg_digests",
        "arg_names",
        "code",
        "user_version",
        "identity",
    ]
    .iter()
    .map(|k| k.len() + meta.fields.get(*k).map_or(0, String::len))
    .sum();
    assert!(added < 200, "{added} bytes: {:?}", meta.fields);
}
