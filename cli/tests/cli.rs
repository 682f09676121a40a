//! The `jobcache` binary driven as users drive it, on caches made through
//! jobcache-memo.

use jobcache_memo::Memory;
use jobcache_store::{FsStore, Location, Store};
use ndarray::{Array1, Array2};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_jobcache"));
    c.env_remove("JOBCACHE_DIR").env("NO_COLOR", "1");
    c
}

fn run(dir: &Path, args: &[&str]) -> Output {
    let mut c = bin();
    // `inspect` reads a file and refuses --dir (see `inspect_refuses_dir`).
    if args.first() != Some(&"inspect") {
        c.arg("--dir").arg(dir);
    }
    c.args(args).stdin(Stdio::null()).output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

#[track_caller]
fn code(o: &Output, expected: i32) {
    assert_eq!(
        o.status.code(),
        Some(expected),
        "stdout:\n{}\nstderr:\n{}",
        stdout(o),
        stderr(o)
    );
}

fn json(dir: &Path, args: &[&str]) -> Value {
    let o = run(dir, args);
    assert!(
        matches!(o.status.code(), Some(0 | 1)),
        "{args:?}: {}",
        stderr(&o)
    );
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{args:?}: {e}\n{}", stdout(&o)))
}

fn square(x: u64) -> u64 {
    x * x
}

fn ramp(n: usize) -> Array1<f64> {
    Array1::linspace(0.0, 1.0, n)
}

const SQUARE: &str = "cli::square";
const RAMP: &str = "cli::ramp";

/// A cache with `cli::square` (3 entries, inline payloads, one hit) and
/// `cli::ramp` (one 32 KiB array in a payload file).
fn cache(dir: &Path) {
    let mem = Memory::builder(dir).verbose(0).build().unwrap();
    let sq = mem.cache(square);
    for x in 1..=3 {
        sq.call(x);
    }
    sq.call(1);
    mem.cache(ramp).call(4096);
}

fn keys(dir: &Path, ns: &str) -> Vec<String> {
    FsStore::open(dir)
        .unwrap()
        .entries(ns)
        .unwrap()
        .into_iter()
        .map(|e| e.key)
        .collect()
}

/// The pack, offset and length of a packed entry's record.
fn packed(store: &FsStore, ns: &str, key: &str) -> (PathBuf, u64, u64) {
    match store.locate(ns, key).unwrap() {
        Some(Location::Packed { pack, offset, len }) => (pack, offset, len),
        other => panic!("{ns} {key} is not packed: {other:?}"),
    }
}

fn flip_byte_at(path: &Path, at: u64) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[at as usize] ^= 0x40;
    std::fs::write(path, bytes).unwrap();
}

fn flip_byte(path: &Path, from_end: u64) {
    let len = std::fs::metadata(path).unwrap().len();
    flip_byte_at(path, len - 1 - from_end);
}

#[test]
fn ls_lists_functions_then_entries() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cache");
    cache(&dir);

    let o = run(&dir, &["ls"]);
    code(&o, 0);
    let text = stdout(&o);
    assert!(text.contains(SQUARE) && text.contains(RAMP), "{text}");
    assert!(text.contains("2 functions, 4 entries"), "{text}");
    assert!(!text.contains('\x1b'), "colour when piped: {text:?}");

    let v = json(&dir, &["ls", "--json"]);
    assert_eq!(v["entries"], 4);
    let f = &v["functions"];
    assert_eq!(f.as_array().unwrap().len(), 2);
    let sq = f
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["function"] == SQUARE)
        .unwrap();
    assert_eq!(sq["entries"], 3);
    assert_eq!(sq["calls"], 4);
    assert_eq!(sq["hits"], 1);
    assert_eq!(sq["hit_rate"], 0.25);
    assert!(sq["bytes"].as_u64().unwrap() > 0);
    assert!(sq["last_access"].as_str().unwrap().ends_with('Z'));

    // A function's entries, by its short name.
    let v = json(&dir, &["ls", "square", "--json"]);
    assert_eq!(v["function"], SQUARE);
    let entries = v["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 3);
    let mut args: Vec<&str> = entries
        .iter()
        .map(|e| e["args"].as_str().unwrap())
        .collect();
    args.sort();
    assert_eq!(args, ["1", "2", "3"]);
    for e in entries {
        assert_eq!(e["key"].as_str().unwrap().len(), 64);
        assert!(e["error"].is_null());
        assert!(e["compute_seconds"].as_f64().unwrap() >= 0.0);
        assert!(e["created"].as_str().unwrap().ends_with('Z'));
    }
    let o = run(&dir, &["ls", "ramp"]);
    code(&o, 0);
    let text = stdout(&o);
    let key = &keys(&dir, RAMP)[0];
    assert!(text.contains(&key[..12]) && text.contains("4096"), "{text}");

    let o = run(&dir, &["ls", "nope"]);
    code(&o, 2);
    assert!(
        stderr(&o).contains("no function \"nope\""),
        "{}",
        stderr(&o)
    );
}

#[test]
fn show_prints_metadata_payload_and_captured_output() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cache");
    let mem = Memory::builder(&dir)
        .verbose(0)
        .capture_output(true)
        .build()
        .unwrap();
    let talk = mem.cache_named("talk", |n: u32| {
        // Straight to descriptor 1: the test harness intercepts `println!`.
        use std::io::Write;
        let mut out = std::io::stdout();
        writeln!(out, "hello from compute {n}").unwrap();
        out.flush().unwrap();
        n + 1
    });
    talk.call(41);
    mem.cache(ramp).call(4096);
    drop(mem);

    let key = &keys(&dir, "talk")[0];
    let v = json(&dir, &["show", "talk", &key[..8], "--json"]);
    assert_eq!(v["function"], "talk");
    assert_eq!(v["key"], key.as_str());
    assert_eq!(v["args"], "41");
    assert!(
        v["stdout"]
            .as_str()
            .unwrap()
            .contains("hello from compute 41"),
        "{v}"
    );
    assert_eq!(v["payload"]["inline"], true);
    assert_eq!(v["checksum"].as_str().unwrap().len(), 16);
    assert!(v["fields"].is_object());

    let o = run(&dir, &["show", "talk", key]);
    code(&o, 0);
    let text = stdout(&o);
    assert!(
        text.contains("--- captured stdout ---") && text.contains("hello from compute 41"),
        "{text}"
    );

    let key = &keys(&dir, RAMP)[0];
    let v = json(&dir, &["show", "ramp", key, "--json"]);
    assert_eq!(v["payload"]["inline"], false);
    let arrays = &v["payload"]["persisted"]["arrays"];
    assert_eq!(arrays[0]["dtype"], "f64");
    assert_eq!(arrays[0]["shape"], serde_json::json!([4096]));
    let o = run(&dir, &["show", "ramp", key]);
    assert!(stdout(&o).contains("f64  [4096]"), "{}", stdout(&o));

    let o = run(&dir, &["show", "ramp", "zzzz"]);
    code(&o, 2);
    assert!(
        stderr(&o).contains("no entry matches \"zzzz\""),
        "{}",
        stderr(&o)
    );
}

#[test]
fn corrupt_entries_are_reported_then_fixed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cache");
    cache(&dir);
    let store = FsStore::open(&dir).unwrap();
    let ramp_key = keys(&dir, RAMP)[0].clone();
    let sq_key = keys(&dir, SQUARE)[1].clone();
    // A payload file and an inline payload (inside the meta file, which is
    // a record of a pack: its last byte is before the record's checksum),
    // damaged.
    flip_byte(
        &store.entry_dir(RAMP, &ramp_key).unwrap().join("payload"),
        100,
    );
    let (pack, offset, len) = packed(&store, SQUARE, &sq_key);
    flip_byte_at(&pack, offset + len - 9);
    let at = format!("{} @ {offset}", pack.display());

    let o = run(&dir, &["verify"]);
    code(&o, 1);
    let text = stdout(&o);
    assert!(text.contains(&ramp_key) && text.contains(&sq_key), "{text}");
    assert!(text.contains(&at), "the damaged record's place: {text}");
    assert!(text.contains("2 ok, 2 corrupt"), "{text}");
    assert!(text.contains("jobcache verify --fix"), "{text}");

    // --quick reads no payload file: it finds the damaged pack record only.
    let v = json(&dir, &["verify", "--quick", "--json"]);
    assert_eq!(v["checked"], 4);
    assert_eq!(v["corrupt"], 1);
    assert_eq!(v["problems"][0]["key"], sq_key.as_str());
    assert_eq!(v["problems"][0]["function"], SQUARE);
    assert_eq!(v["problems"][0]["path"], at.as_str());
    assert_eq!(v["problems"][0]["pack"]["offset"], offset);
    assert_eq!(v["problems"][0]["pack"]["bytes"], len);

    // The record's header damaged too (it is unchecked, a hint): its
    // namespace id (bytes 12..28) names no function, its key still names
    // the entry.
    flip_byte_at(&pack, offset + 12);
    let v = json(&dir, &["verify", "--quick", "--json"]);
    assert_eq!(v["corrupt"], 1);
    assert!(v["problems"][0]["function"].is_null(), "{v}");
    assert_eq!(v["problems"][0]["key"], sq_key.as_str());
    assert_eq!(v["problems"][0]["path"], at.as_str());
    let o = run(&dir, &["verify", "--quick"]);
    code(&o, 1);
    let text = stdout(&o);
    assert!(
        text.contains(&format!("corrupt {sq_key} (function unknown): ")),
        "{text}"
    );
    // Its magic damaged as well: the header names nothing, the problem is
    // named by its place.
    flip_byte_at(&pack, offset);
    let v = json(&dir, &["verify", "--quick", "--json"]);
    assert_eq!(v["corrupt"], 1);
    assert!(v["problems"][0]["function"].is_null(), "{v}");
    assert!(v["problems"][0]["key"].is_null(), "{v}");
    assert_eq!(v["problems"][0]["path"], at.as_str());
    let o = run(&dir, &["verify", "--quick"]);
    code(&o, 1);
    let text = stdout(&o);
    assert!(text.contains(&format!("corrupt {at}: ")), "{text}");
    assert!(!text.contains(&sq_key), "{text}");
    // The header restored (the record's checksum still fails).
    flip_byte_at(&pack, offset);
    flip_byte_at(&pack, offset + 12);

    // Without --fix nothing was removed.
    let v = json(&dir, &["verify", "--json"]);
    assert_eq!(v["checked"], 4);
    assert_eq!(v["ok"], 2);
    assert_eq!(v["corrupt"], 2);
    assert_eq!(v["fixed"], false);
    let problems = v["problems"].as_array().unwrap();
    let ramp = problems
        .iter()
        .find(|p| p["key"] == ramp_key.as_str())
        .unwrap();
    assert_eq!(ramp["function"], RAMP);
    assert_eq!(
        ramp["path"],
        store
            .entry_dir(RAMP, &ramp_key)
            .unwrap()
            .display()
            .to_string()
    );
    assert!(
        ramp["reason"].as_str().unwrap().contains("checksum"),
        "{ramp}"
    );
    assert_eq!(ramp["removed"], false);

    // ls stays consistent with lookups: the entry whose payload file is
    // damaged is still listed; the damaged pack record is skipped by every
    // lookup (a miss: computed again), so it is listed by no function —
    // `verify` names it.
    let v = json(&dir, &["ls", "--json"]);
    assert_eq!(v["entries"], 3);
    let v = json(&dir, &["ls", SQUARE, "--json"]);
    assert!(v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["key"] != sq_key.as_str()));
    let v = json(&dir, &["ls", RAMP, "--json"]);
    assert_eq!(v["entries"][0]["key"], ramp_key.as_str());

    let v = json(&dir, &["verify", "--fix", "--json"]);
    assert_eq!(v["corrupt"], 2);
    assert!(v["problems"]
        .as_array()
        .unwrap()
        .iter()
        .all(|p| p["removed"] == true));
    assert!(!store.entry_dir(RAMP, &ramp_key).unwrap().exists());
    assert!(FsStore::open(&dir)
        .unwrap()
        .pack_damage()
        .unwrap()
        .is_empty());

    let o = run(&dir, &["verify"]);
    code(&o, 0);
    assert!(stdout(&o).contains("2 ok, 0 corrupt"), "{}", stdout(&o));
    let v = json(&dir, &["ls", "--json"]);
    assert_eq!(v["entries"], 2);
    let names: Vec<&str> = v["functions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["function"].as_str().unwrap())
        .collect();
    assert!(names.contains(&SQUARE), "{names:?}");
    // The removals are in the journal.
    let o = run(&dir, &["log", "--kind", "corrupt", "--json"]);
    assert_eq!(stdout(&o).lines().count(), 2, "{}", stdout(&o));
}

/// Small results are records of packs (store/LAYOUT.md, "Packs"): `show`
/// names the pack and the record's offset, `verify` names a torn pack by
/// place, `gc` and `clear` remove packed entries.
#[test]
fn a_packed_cache_is_shown_verified_trimmed_and_cleared() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cache");
    cache(&dir);
    let store = FsStore::open(&dir).unwrap();
    let sq = keys(&dir, SQUARE);
    let (pack, offset, len) = packed(&store, SQUARE, &sq[0]);
    assert!(pack.starts_with(dir.join("packs")), "{}", pack.display());

    let o = run(&dir, &["show", "square", &sq[0]]);
    code(&o, 0);
    let text = stdout(&o);
    let place = format!("{} @ {offset}, a record of {len} bytes", pack.display());
    assert!(text.contains(&place), "{text}");
    assert!(text.contains("inline in the metadata file"), "{text}");
    let v = json(&dir, &["show", "square", &sq[0], "--json"]);
    assert_eq!(v["path"], pack.display().to_string());
    assert_eq!(v["pack"]["offset"], offset);
    assert_eq!(v["pack"]["record_bytes"], len);
    assert_eq!(v["payload"]["inline"], true);
    // An entry of its own directory has no pack.
    let ramp_key = &keys(&dir, RAMP)[0];
    let v = json(&dir, &["show", "ramp", ramp_key, "--json"]);
    assert!(v["pack"].is_null(), "{v}");
    assert_eq!(
        v["path"],
        store
            .entry_dir(RAMP, ramp_key)
            .unwrap()
            .display()
            .to_string()
    );

    // An append cut short: the last record of a pack, torn in its middle.
    let (last, (last_pack, last_offset, last_len)) = sq
        .iter()
        .map(|k| (k.clone(), packed(&store, SQUARE, k)))
        .find(|(_, (p, o, l))| std::fs::metadata(p).unwrap().len() == o + l)
        .expect("a record that ends its pack");
    std::fs::OpenOptions::new()
        .write(true)
        .open(&last_pack)
        .unwrap()
        .set_len(last_offset + last_len / 2)
        .unwrap();
    let o = run(&dir, &["verify"]);
    code(&o, 1);
    let text = stdout(&o);
    let at = format!("{} @ {last_offset}", last_pack.display());
    assert!(
        text.contains(&at) && text.contains("torn pack tail"),
        "{text}"
    );
    assert!(text.contains(&last), "the record names its entry: {text}");
    let v = json(&dir, &["verify", "--fix", "--json"]);
    assert_eq!(v["corrupt"], 1);
    assert_eq!(v["problems"][0]["removed"], true);
    assert_eq!(
        std::fs::metadata(&last_pack).unwrap().len(),
        last_offset,
        "the torn tail is cut"
    );
    code(&run(&dir, &["verify"]), 0);
    assert_eq!(keys(&dir, SQUARE).len(), 2);

    // gc removes packed entries by their records.
    let v = json(&dir, &["gc", "--max-items", "1", "--json"]);
    assert_eq!(v["kept_entries"], 1);
    let removed: Vec<&str> = v["removed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["key"].as_str().unwrap())
        .collect();
    assert_eq!(removed.len(), 2);
    let fresh = FsStore::open(&dir).unwrap();
    for k in sq.iter().filter(|k| removed.contains(&k.as_str())) {
        assert_eq!(fresh.locate(SQUARE, k).unwrap(), None, "{k}");
    }
    assert_eq!(json(&dir, &["ls", "--json"])["entries"], 1);

    // clear empties the packs' entries too.
    cache(&dir);
    assert_eq!(json(&dir, &["ls", "--json"])["entries"], 4);
    let v = json(&dir, &["clear", "--yes", "--json"]);
    assert_eq!(v["entries"], 4);
    assert_eq!(json(&dir, &["ls", "--json"])["entries"], 0);
    let fresh = FsStore::open(&dir).unwrap();
    for k in &sq {
        assert_eq!(fresh.locate(SQUARE, k).unwrap(), None, "{k}");
    }
    code(&run(&dir, &["verify"]), 0);
}

#[test]
fn an_empty_cache() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cache");
    FsStore::create(&dir).unwrap();

    let o = run(&dir, &["ls"]);
    code(&o, 0);
    assert!(stdout(&o).starts_with("no entries in"), "{}", stdout(&o));
    let v = json(&dir, &["ls", "--json"]);
    assert_eq!(v["functions"], serde_json::json!([]));
    assert_eq!(v["entries"], 0);
    let v = json(&dir, &["verify", "--json"]);
    assert_eq!(v["checked"], 0);
    code(&run(&dir, &["verify"]), 0);
    let o = run(&dir, &["log"]);
    code(&o, 0);
    assert!(stdout(&o).contains("no journal"), "{}", stdout(&o));
    let o = run(&dir, &["log", "--json"]);
    assert_eq!(stdout(&o), "");
    let o = run(&dir, &["report", "--text"]);
    code(&o, 0);
    assert!(stdout(&o).contains("TOTAL"), "{}", stdout(&o));
    let o = run(&dir, &["gc", "--max-items", "0"]);
    code(&o, 0);
    assert!(stdout(&o).contains("nothing to remove"), "{}", stdout(&o));
    code(&run(&dir, &["clear", "--yes"]), 0);
}

#[test]
fn a_missing_directory_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("nope");
    for args in [
        &["ls"][..],
        &["verify"],
        &["log"],
        &["gc", "--max-items", "1"],
        &["clear", "--yes"],
    ] {
        let o = run(&dir, args);
        code(&o, 2);
        let err = stderr(&o);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.contains(&dir.display().to_string()) && err.contains("--dir"),
            "{err}"
        );
    }
    assert!(!dir.exists(), "a command created the directory");
    // Through the environment, and the default ./.jobcache.
    let o = bin().arg("ls").env("JOBCACHE_DIR", &dir).output().unwrap();
    code(&o, 2);
    assert!(stderr(&o).contains("does not exist"));
    let o = bin().arg("ls").current_dir(tmp.path()).output().unwrap();
    code(&o, 2);
    assert!(stderr(&o).contains(".jobcache"), "{}", stderr(&o));
}

#[test]
fn a_directory_that_is_not_a_cache_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("notes.txt"), "mine").unwrap();
    let o = run(tmp.path(), &["ls"]);
    code(&o, 2);
    let err = stderr(&o);
    assert!(err.contains("is not a jobcache cache"), "{err}");
    assert!(err.contains(&tmp.path().display().to_string()));
    assert!(
        !tmp.path().join("ns").exists(),
        "the directory was written to"
    );
    let o = run(&tmp.path().join("notes.txt"), &["verify"]);
    code(&o, 2);
    assert!(stderr(&o).contains("not a directory"), "{}", stderr(&o));
}

#[test]
fn gc_dry_run_lists_what_gc_removes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cache");
    let mem = Memory::builder(&dir).verbose(0).build().unwrap();
    let sq = mem.cache(square);
    for x in 0..5 {
        sq.call(x);
    }
    let o = run(&dir, &["gc"]);
    code(&o, 2);
    assert!(stderr(&o).contains("--max-size"), "{}", stderr(&o));
    let o = run(&dir, &["gc", "--max-size", "10XB"]);
    code(&o, 2);
    assert!(stderr(&o).contains("10GiB"), "{}", stderr(&o));
    let o = run(&dir, &["gc", "--max-age", "30"]);
    code(&o, 2);
    // No entry is in use: none is protected, however young.
    sq.call(4); // the most recently used

    let v = json(&dir, &["gc", "--max-age", "1h", "--json"]);
    assert_eq!(v["removed"], serde_json::json!([]));

    let dry = json(&dir, &["gc", "--max-items", "2", "--dry-run", "--json"]);
    assert_eq!(dry["dry_run"], true);
    let would: Vec<&str> = dry["removed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["key"].as_str().unwrap())
        .collect();
    assert_eq!(would.len(), 3);
    assert_eq!(keys(&dir, SQUARE).len(), 5, "the dry run removed entries");
    let o = run(&dir, &["gc", "--max-items", "2", "--dry-run"]);
    code(&o, 0);
    assert!(
        stdout(&o).contains("would free") && stdout(&o).contains("nothing was removed"),
        "{}",
        stdout(&o)
    );

    let real = json(&dir, &["gc", "--max-items", "2", "--json"]);
    let removed: Vec<&str> = real["removed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["key"].as_str().unwrap())
        .collect();
    assert_eq!(removed, would);
    assert_eq!(real["kept_entries"], 2);
    assert_eq!(real["freed_bytes"], dry["freed_bytes"]);
    let left = keys(&dir, SQUARE);
    assert_eq!(left.len(), 2);
    assert!(removed.iter().all(|k| !left.iter().any(|l| l == k)));
    // The most recently used entry stayed.
    assert_eq!(sq.call(4), 16);
    let o = run(&dir, &["log", "--kind", "evicted", "--json"]);
    assert_eq!(stdout(&o).lines().count(), 3);
    let o = run(&dir, &["gc", "--max-size", "1GiB"]);
    code(&o, 0);
    assert!(stdout(&o).contains("nothing to remove"));
}

#[test]
fn clear_needs_yes_off_a_terminal() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cache");
    cache(&dir);
    let o = run(&dir, &["clear"]);
    code(&o, 2);
    assert!(stderr(&o).contains("--yes"), "{}", stderr(&o));
    assert_eq!(keys(&dir, SQUARE).len(), 3);

    let v = json(&dir, &["clear", "square", "--yes", "--json"]);
    assert_eq!(v["functions"], serde_json::json!([SQUARE]));
    assert_eq!(v["entries"], 3);
    assert!(v["freed_bytes"].as_u64().unwrap() > 0);
    let v = json(&dir, &["ls", "--json"]);
    assert_eq!(v["entries"], 1);

    let o = run(&dir, &["clear", "--yes"]);
    code(&o, 0);
    assert!(
        stdout(&o).contains("freed") && stdout(&o).contains("(1 entry)"),
        "{}",
        stdout(&o)
    );
    let v = json(&dir, &["ls", "--json"]);
    assert_eq!(v["entries"], 0);
    let o = run(&dir, &["log", "--kind", "cleared"]);
    assert!(
        stdout(&o).contains("jobcache clear removed 3 entries"),
        "{}",
        stdout(&o)
    );
}

fn events(dir: &Path, args: &[&str]) -> Vec<Value> {
    let mut all = vec!["log", "--json"];
    all.extend_from_slice(args);
    let o = run(dir, &all);
    code(&o, 0);
    stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn log_filters_by_function_time_and_kind() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cache");
    cache(&dir);

    let all = events(&dir, &[]);
    assert_eq!(all.len(), 5, "{all:?}"); // 4 computed + 1 hit
    for e in &all {
        assert!(e["time"].is_string() && e["function"].is_string() && e["kind"].is_string());
    }
    // memo journals one event per call: `calling` only goes to the log.
    assert_eq!(events(&dir, &["--kind", "calling"]).len(), 0);
    assert_eq!(events(&dir, &["--function", "square"]).len(), 4);
    assert_eq!(events(&dir, &["--function", RAMP]).len(), 1);
    assert_eq!(events(&dir, &["-F", "square"]).len(), 4);
    assert_eq!(events(&dir, &["--function", "are"]).len(), 0);
    let hits = events(&dir, &["--kind", "hit"]);
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0]["args_summary"], "1");
    assert_eq!(events(&dir, &["--since", "1h"]).len(), 5);
    assert_eq!(events(&dir, &["--since", "2999-01-01"]).len(), 0);
    assert_eq!(
        events(
            &dir,
            &["--since", "2000-01-01T00:00:00Z", "--kind", "computed"]
        )
        .len(),
        4
    );

    let o = run(&dir, &["log", "--function", "square"]);
    code(&o, 0);
    let text = stdout(&o);
    assert!(text.starts_with("TIME (UTC)"), "{text}");
    assert_eq!(text.lines().count(), 5);
    assert!(
        text.contains(" hit ") && text.contains(" computed "),
        "{text}"
    );

    for bad in [
        &["log", "--since", "yesterday"][..],
        &["log", "--kind", "party"],
    ] {
        let o = run(&dir, bad);
        code(&o, 2);
    }
}

#[test]
fn log_follow_prints_new_events() {
    use std::io::BufRead;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cache");
    cache(&dir);
    let mut child = bin()
        .arg("--dir")
        .arg(&dir)
        .args(["log", "-f", "--json", "--kind", "computed"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(out).lines() {
            if tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    let next = || rx.recv_timeout(Duration::from_secs(20)).unwrap();
    for _ in 0..4 {
        next(); // the events already there
    }
    let mem = Memory::builder(&dir).verbose(0).build().unwrap();
    mem.cache(square).call(99);
    mem.flush_journal();
    let line = next();
    child.kill().unwrap();
    let _ = child.wait();
    let e: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(e["function"], SQUARE);
    assert_eq!(e["args_summary"], "99");
}

#[test]
fn report_as_html_and_text() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cache");
    cache(&dir);
    let page = tmp.path().join("report.html");
    let o = run(&dir, &["report", "-o", page.to_str().unwrap()]);
    code(&o, 0);
    assert!(stderr(&o).contains("report.html"), "{}", stderr(&o));
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(
        html.contains("<html") && html.contains(SQUARE) && html.contains("<svg"),
        "{html}"
    );

    let o = run(&dir, &["report"]);
    code(&o, 0);
    assert!(stdout(&o).contains("<html"));

    let o = run(&dir, &["report", "--text"]);
    code(&o, 0);
    let text = stdout(&o);
    assert!(
        text.contains(SQUARE) && text.contains(RAMP) && text.contains("TOTAL"),
        "{text}"
    );
    let o = run(&dir, &["report", "--text", "--function", "ramp"]);
    assert!(!stdout(&o).contains(SQUARE), "{}", stdout(&o));
    code(&run(&dir, &["report", "--text", "-o", "x.html"]), 2);

    // Singulars, and an error's cause printed once.
    let one = tmp.path().join("one.html");
    let o = run(&dir, &["report", "-F", "ramp", "-o", one.to_str().unwrap()]);
    code(&o, 0);
    assert!(
        stderr(&o).contains("(1 event, 1 function)"),
        "{}",
        stderr(&o)
    );
    let nowhere = tmp.path().join("missing-dir").join("r.html");
    let o = run(&dir, &["report", "-o", nowhere.to_str().unwrap()]);
    code(&o, 2);
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
    assert!(
        err.starts_with("jobcache: error: cannot write the report to "),
        "{err}"
    );
}

#[test]
fn inspect_persisted_files_and_npy() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("fit.jcp");
    let coef = Array2::from_shape_fn((3, 4), |(i, j)| (i * 4 + j) as f64);
    let counts = Array1::from(vec![1i32, 2, 3]);
    jobcache_persist::save(&file, &(coef.clone(), counts.clone(), "label")).unwrap();
    let none = tmp.path().join("unused");

    let v = json(&none, &["inspect", file.to_str().unwrap(), "--json"]);
    assert_eq!(v["format"], "container");
    assert!(v["version"].is_u64(), "{v}");
    assert_eq!(v["valid"], true);
    assert_eq!(v["metadata_checksum"], "valid");
    let arrays = v["arrays"].as_array().unwrap();
    assert_eq!(arrays.len(), 2);
    assert_eq!(arrays[0]["dtype"], "f64");
    assert_eq!(arrays[0]["shape"], serde_json::json!([3, 4]));
    assert_eq!(arrays[0]["bytes"], 96);
    assert_eq!(arrays[0]["checksum"], "valid");
    assert_eq!(arrays[1]["dtype"], "i32");
    let v = json(
        &none,
        &["inspect", file.to_str().unwrap(), "--quick", "--json"],
    );
    assert_eq!(v["arrays"][0]["checksum"], "unchecked");

    let o = run(&none, &["inspect", file.to_str().unwrap()]);
    code(&o, 0);
    let text = stdout(&o);
    assert!(
        text.contains("container, version") && text.contains("f64  [3, 4]"),
        "{text}"
    );

    // Export to .npy, then inspect the .npy.
    let npy = tmp.path().join("counts.npy");
    let v = json(
        &none,
        &[
            "inspect",
            file.to_str().unwrap(),
            "--array",
            "1",
            "--npy",
            npy.to_str().unwrap(),
            "--json",
        ],
    );
    assert_eq!(v["exported"]["array"], 1);
    let back: Array1<i32> = jobcache_persist::npy::read(&npy).unwrap();
    assert_eq!(back, counts);
    let v = json(&none, &["inspect", npy.to_str().unwrap(), "--json"]);
    assert_eq!(v["format"], "npy");
    assert_eq!(
        (v["version"].as_u64(), v["minor_version"].as_u64()),
        (Some(1), Some(0))
    );
    assert_eq!(v["arrays"][0]["dtype"], "i32");
    assert_eq!(v["arrays"][0]["checksum"], "absent");
    let o = run(&none, &["inspect", npy.to_str().unwrap(), "--npy", "x.npy"]);
    code(&o, 2);
    assert!(stderr(&o).contains("already a .npy"), "{}", stderr(&o));
    let o = run(
        &none,
        &[
            "inspect",
            file.to_str().unwrap(),
            "--array",
            "7",
            "--npy",
            "x.npy",
        ],
    );
    code(&o, 2);
    // The flag is blamed, not the file.
    let err = stderr(&o);
    assert!(
        err.contains("--array 7") && err.contains("has 2 arrays (indexes 0 to 1)"),
        "{err}"
    );
    assert!(
        !err.contains("corrupt") && !err.contains("malformed"),
        "{err}"
    );
    assert!(!Path::new("x.npy").exists());

    // A damaged array: exit code 1, the array named.
    let offset = jobcache_persist::inspect(&file).unwrap().arrays[0].offset;
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[offset as usize + 5] ^= 1;
    std::fs::write(&file, bytes).unwrap();
    let o = run(&none, &["inspect", file.to_str().unwrap()]);
    code(&o, 1);
    assert!(stdout(&o).contains("INVALID"), "{}", stdout(&o));
    let v = json(&none, &["inspect", file.to_str().unwrap(), "--json"]);
    assert_eq!(v["valid"], false);
    assert_eq!(v["arrays"][0]["checksum"], "invalid");

    let o = run(
        &none,
        &["inspect", tmp.path().join("missing.jcp").to_str().unwrap()],
    );
    code(&o, 2);
    assert!(stderr(&o).contains("missing.jcp"));
}

#[test]
fn inspect_a_cache_payload() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cache");
    cache(&dir);
    let key = &keys(&dir, RAMP)[0];
    let payload: PathBuf = FsStore::open(&dir)
        .unwrap()
        .entry_dir(RAMP, key)
        .unwrap()
        .join("payload");
    let v = json(&dir, &["inspect", payload.to_str().unwrap(), "--json"]);
    assert_eq!(v["arrays"][0]["shape"], serde_json::json!([4096]));
}

#[test]
fn inspect_refuses_dir() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("x.jcp");
    jobcache_persist::save(&file, &Array1::from(vec![1.0f64])).unwrap();
    let o = bin()
        .args(["--dir", tmp.path().to_str().unwrap(), "inspect"])
        .arg(&file)
        .output()
        .unwrap();
    code(&o, 2);
    assert!(stderr(&o).contains("takes no --dir"), "{}", stderr(&o));
    // JOBCACHE_DIR, set for the other commands, does not get in the way.
    let o = bin()
        .env("JOBCACHE_DIR", tmp.path())
        .arg("inspect")
        .arg(&file)
        .output()
        .unwrap();
    code(&o, 0);
}

#[test]
fn every_subcommand_help_has_an_example() {
    for sub in [
        "ls", "show", "clear", "gc", "verify", "log", "report", "inspect",
    ] {
        let o = bin().args([sub, "--help"]).output().unwrap();
        code(&o, 0);
        assert!(stdout(&o).contains("Examples:"), "{sub}: {}", stdout(&o));
    }
    let o = bin().args(["ls", "--bogus"]).output().unwrap();
    code(&o, 2);
}

#[test]
fn inspect_npy_files_written_by_numpy() {
    // The fixtures of jobcache-persist, written by NumPy (make_fixtures.py there).
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../persist/tests/fixtures/npy");
    let none = fixtures.join("no-cache");
    for (name, version, fortran) in [
        ("f64_c_v1.npy", 1, false),
        ("f64_f_v2.npy", 2, true),
        ("i16_be.npy", 1, false),
    ] {
        let path = fixtures.join(name);
        let header = jobcache_persist::npy::read_header(&path).unwrap();
        let v = json(&none, &["inspect", path.to_str().unwrap(), "--json"]);
        assert_eq!(v["format"], "npy", "{name}");
        assert_eq!(v["version"], version, "{name}");
        assert_eq!(v["minor_version"], 0, "{name}");
        assert_eq!(v["valid"], true, "{name}");
        let a = &v["arrays"][0];
        assert_eq!(a["shape"], serde_json::json!(header.shape), "{name}");
        assert_eq!(a["dtype"], header.dtype.name(), "{name}");
        assert_eq!(a["fortran_order"], fortran, "{name}");
        assert_eq!(a["bytes"], header.data_len, "{name}");
        let o = run(&none, &["inspect", path.to_str().unwrap()]);
        code(&o, 0);
        assert!(
            stdout(&o).contains(&format!("NumPy .npy, version {version}.0")),
            "{}",
            stdout(&o)
        );
    }
}

/// The READMEs' command-line examples run as printed: no variable that is
/// often unset (`$TMPDIR`), and the flags as the binary spells them.
#[test]
fn readme_examples_use_paths_that_exist_and_current_flags() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for readme in [root.join("../README.md"), root.join("README.md")] {
        let text = std::fs::read_to_string(&readme).unwrap();
        assert!(!text.contains("$TMPDIR"), "{}", readme.display());
        assert!(!text.contains("log --function"), "{}", readme.display());
        assert!(!text.contains("Shelved {"), "{}", readme.display());
    }
    // The quick example logs only once a logger is set up: it shows how,
    // and the dependencies it needs.
    let top = std::fs::read_to_string(root.join("../README.md")).unwrap();
    for needed in [
        "jobcache::log_to_stderr();",
        "jobcache = \"",
        "ndarray = \"",
        "features = [\"derive\"]",
    ] {
        assert!(top.contains(needed), "README.md lacks {needed}");
    }
}

/// Completions and man pages come from the clap definition (`cargo xtask
/// dist` writes them); they name every command and flag.
#[test]
fn completions_and_man_pages() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let o = bin().args(["completions", shell]).output().unwrap();
        code(&o, 0);
        let script = stdout(&o);
        for word in ["report", "inspect", "follow", "function"] {
            assert!(script.contains(word), "{shell}: no {word}");
        }
    }
    code(&bin().args(["completions", "tcsh"]).output().unwrap(), 2);
    let tmp = tempfile::tempdir().unwrap();
    let man = tmp.path().join("man");
    let o = bin().arg("man").arg(&man).output().unwrap();
    code(&o, 0);
    let page = std::fs::read_to_string(man.join("jobcache-log.1")).unwrap();
    assert!(page.contains(".TH jobcache-log 1"), "{page}");
    assert!(page.contains("follow"), "{page}");
    for sub in ["ls", "show", "clear", "gc", "verify", "report", "inspect"] {
        assert!(man.join(format!("jobcache-{sub}.1")).is_file(), "{sub}");
    }
    assert!(man.join("jobcache.1").is_file());
}

/// `cargo doc --workspace` would write the binary's page over the facade
/// crate's (both are `jobcache`): the binary is not documented.
#[test]
fn the_binary_does_not_overwrite_the_facade_docs() {
    let manifest =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml")).unwrap();
    let bin = manifest.split("[[bin]]").nth(1).unwrap();
    assert!(bin.contains("doc = false"), "{bin}");
}

fn halve(x: u64) -> Result<u64, String> {
    if x.is_multiple_of(2) {
        Ok(x / 2)
    } else {
        Err(format!("{x} is odd"))
    }
}

/// One definition of calls (hits + computed + failed): `ls`, `report
/// --text` and `report --json` give the same figures, failures included.
#[test]
fn ls_and_report_count_calls_alike() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cache");
    cache(&dir);
    let mem = Memory::builder(&dir).verbose(0).build().unwrap();
    let h = mem.cache(halve);
    for x in [2, 4, 2, 3, 5] {
        let _ = h.try_call(x);
    }
    let ls = json(&dir, &["ls", "--json"]);
    let report = json(&dir, &["report", "--json"]);
    let functions = report["functions"].as_array().unwrap();
    for f in ls["functions"].as_array().unwrap() {
        let name = f["function"].as_str().unwrap();
        let r = functions.iter().find(|r| r["function"] == name).unwrap();
        for field in ["calls", "hits", "computed", "failed", "hit_rate"] {
            assert_eq!(f[field], r[field], "{name} {field}");
        }
        assert_eq!(f["bytes"], r["stored_bytes"], "{name}");
        assert_eq!(f["entries"], r["stored_entries"], "{name}");
    }
    let halve = functions
        .iter()
        .find(|r| r["function"] == "cli::halve")
        .unwrap();
    assert_eq!(
        (
            &halve["calls"],
            &halve["hits"],
            &halve["computed"],
            &halve["failed"]
        ),
        (
            &Value::from(5),
            &Value::from(1),
            &Value::from(2),
            &Value::from(2)
        )
    );
    // The text table says the same, under the same upper-case headers.
    let text = stdout(&run(&dir, &["report", "--text"]));
    assert!(text.starts_with("FUNCTION  "), "{text}");
    let row: Vec<&str> = text
        .lines()
        .find(|l| l.starts_with("cli::halve"))
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(row[1..5], ["5", "1", "2", "2"]);
    // Runs, problems grouped by kind and function.
    assert_eq!(report["runs"].as_array().unwrap().len(), 1);
    assert_eq!(report["runs"][0]["calls"], 10);
    let problems = report["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0]["count"], 2);
    assert_eq!(problems[0]["kind"], "failed");
}

/// Compresses well, but not into an inline payload: 16 distinct values.
fn zeros_then_ramp(n: usize) -> Array1<f64> {
    Array1::from_shape_fn(n, |i| {
        ((i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 60) as f64
    })
}

#[test]
fn ls_shows_stored_and_logical_sizes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cache");
    let mem = Memory::builder(&dir).verbose(0).build().unwrap();
    // One function compressed, one raw, one inline.
    mem.cache(zeros_then_ramp).compress(3).call(500_000);
    mem.cache(ramp).call(4096);
    mem.cache(square).call(2);

    let v = json(&dir, &["ls", "--json"]);
    let f = v["functions"].as_array().unwrap();
    let row = |name: &str| f.iter().find(|r| r["function"] == name).unwrap().clone();
    let packed = row("cli::zeros_then_ramp");
    let stored = packed["bytes"].as_u64().unwrap();
    let logical = packed["logical_bytes"].as_u64().unwrap();
    assert!(stored < 2_000_000 && logical >= 4_000_000, "{packed}");
    for plain in [row(RAMP), row(SQUARE)] {
        assert_eq!(plain["bytes"], plain["logical_bytes"], "{plain}");
    }
    let total = v["logical_bytes"].as_u64().unwrap();
    assert!(total > v["bytes"].as_u64().unwrap());

    let v = json(&dir, &["ls", "zeros_then_ramp", "--json"]);
    let e = &v["entries"][0];
    assert_eq!(e["bytes"].as_u64().unwrap(), stored);
    assert_eq!(e["logical_bytes"].as_u64().unwrap(), logical);

    let o = run(&dir, &["ls"]);
    code(&o, 0);
    let text = stdout(&o);
    assert!(
        text.contains("STORED") && text.contains("LOGICAL"),
        "{text}"
    );
    assert!(text.contains("logical) in"), "{text}");
    let o = run(&dir, &["ls", "zeros_then_ramp"]);
    assert!(stdout(&o).contains("3.8 MiB"), "{}", stdout(&o));
}
