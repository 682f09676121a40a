//! The remote backend against a real S3 server (moto): put/get/list/remove,
//! two processes racing on one call, claims, corruption, an outage, and
//! tiering.

use jobcache_object_store::moto::Server;
use jobcache_object_store::{Config, RemoteStore};
use jobcache_store::StoreExt;
use jobcache_store::{Lookup, NewEntry, Store, Wait};
use object_store::path::Path as ObjPath;
use object_store::{ObjectStore, PutPayload};
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const NS: &str = "tests::remote::step";

static LOG: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.level() <= log::Level::Info
    }
    fn log(&self, r: &log::Record<'_>) {
        if self.enabled(r.metadata()) {
            let line = format!("{} {}", r.level(), r.args());
            eprintln!("{line}");
            LOG.lock().unwrap().push(line);
        }
    }
    fn flush(&self) {}
}

fn capture_logs() {
    let _ = log::set_logger(&Capture);
    log::set_max_level(log::LevelFilter::Info);
}

fn logged(what: &str) -> usize {
    LOG.lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains(what))
        .count()
}

fn key(n: u32) -> String {
    format!("{n:064x}")
}

fn config(server: &Server, bucket: &str, local: Option<&Path>) -> Config {
    let mut c = Config::new(&format!("s3://{bucket}/team/project"))
        .unwrap()
        .endpoint(server.endpoint())
        .allow_http(true)
        .timeouts(Duration::from_secs(5), Duration::from_secs(1))
        .retries(0)
        .retry_after(Duration::from_millis(300))
        .claims(Duration::from_secs(60), Duration::from_millis(50))
        .transfer(5 << 20, 4);
    if let Some(dir) = local {
        c = c.local_tier(dir);
    }
    c
}

fn server(test: &str, bucket: &str) -> Option<Server> {
    capture_logs();
    let server = Server::start_or_skip(test)?;
    server.create_bucket(bucket).unwrap();
    Some(server)
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31) ^ seed)
        .collect()
}

#[test]
fn put_get_list_remove_small_and_large() {
    let Some(server) = server("put_get_list_remove_small_and_large", "basic") else {
        return;
    };
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let writer = RemoteStore::open(config(&server, "basic", Some(a.path()))).unwrap();
    let small = b"a small value".to_vec();
    let large = pattern(12 << 20, 7); // three parts
    let entry = NewEntry::new(Duration::from_millis(5)).field("function", NS);
    writer.publish_bytes(NS, &key(1), &entry, &small).unwrap();
    writer.publish_bytes(NS, &key(2), &entry, &large).unwrap();

    // Another machine: an empty local tier, so both come from the remote.
    let reader = RemoteStore::open(config(&server, "basic", Some(b.path()))).unwrap();
    assert_eq!(reader.get_bytes(NS, &key(1)).unwrap().unwrap(), small);
    assert_eq!(reader.get_bytes(NS, &key(2)).unwrap().unwrap(), large);
    // ... and they are now in its local tier.
    let local = reader.local().unwrap();
    assert_eq!(local.get_bytes(NS, &key(2)).unwrap().unwrap(), large);
    // Without a local tier too.
    let bare = RemoteStore::open(config(&server, "basic", None)).unwrap();
    assert_eq!(bare.get_bytes(NS, &key(2)).unwrap().unwrap(), large);
    let found = bare.get(NS, &key(1), true).unwrap().found().unwrap();
    assert_eq!(found.meta().fields["function"], NS);

    assert_eq!(bare.namespaces().unwrap(), vec![NS.to_string()]);
    let entries = bare.entries(NS).unwrap();
    assert_eq!(
        entries.iter().map(|e| e.key.clone()).collect::<Vec<_>>(),
        vec![key(1), key(2)]
    );
    assert!(entries[1].stored_bytes >= large.len() as u64);
    let report = bare.verify_all(&mut |_, _| {}).unwrap();
    assert_eq!((report.ok, report.corrupt), (2, 0));

    assert!(bare.remove(NS, &key(2)).unwrap() >= large.len() as u64);
    assert!(matches!(
        bare.get(NS, &key(2), true).unwrap(),
        Lookup::Missing
    ));
    assert_eq!(bare.entries(NS).unwrap().len(), 1);
    bare.remove_namespace(NS).unwrap();
    assert!(bare.namespaces().unwrap().is_empty());
}

#[test]
fn large_payloads_download_streamed_ranged_and_from_inside_a_runtime() {
    let Some(server) = server("large_payloads_download_streamed_ranged", "download") else {
        return;
    };
    let large = pattern(11 << 20, 3); // not a whole number of parts
    let writer = RemoteStore::open(config(&server, "download", None)).unwrap();
    let entry = NewEntry::new(Duration::ZERO);
    writer.publish_bytes(NS, &key(1), &entry, &large).unwrap();
    for ranged in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let c = config(&server, "download", None).ranged_downloads(ranged);
        let bare = RemoteStore::open(c.clone()).unwrap();
        assert_eq!(bare.get_bytes(NS, &key(1)).unwrap().unwrap(), large);
        // Checked as it was downloaded: not read a second time.
        let found = bare.get(NS, &key(1), true).unwrap().found().unwrap();
        assert!(found.is_verified());
        let fill = tempfile::tempdir().unwrap();
        let filled = RemoteStore::open(c.clone().local_tier(fill.path())).unwrap();
        let found = filled.get(NS, &key(1), true).unwrap().found().unwrap();
        assert!(found.is_verified());
        assert!(found.local_path().is_some());
        let tiered = RemoteStore::open(c.local_tier(dir.path())).unwrap();
        // Called from a thread inside a runtime: the download is driven
        // from a helper thread.
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let got = rt.block_on(async { tiered.get_bytes(NS, &key(1)) });
        assert_eq!(got.unwrap().unwrap(), large, "ranged: {ranged}");
        let local = tiered.local().unwrap();
        assert_eq!(local.get_bytes(NS, &key(1)).unwrap().unwrap(), large);
    }
}

#[test]
fn a_stale_claim_is_taken_over_and_a_live_one_waited_for() {
    let Some(server) = server("a_stale_claim_is_taken_over", "claims") else {
        return;
    };
    let a = tempfile::tempdir().unwrap();
    let store = RemoteStore::open(config(&server, "claims", Some(a.path()))).unwrap();
    let client = store.client();
    let claim = ObjPath::from(format!(
        "team/project/jobcache-remote-v1/claims/tests.remote.step/{}",
        key(3)
    ));
    let put = |body: String| {
        store
            .block_on(client.put(&claim, PutPayload::from(body)))
            .unwrap();
    };
    // A live claim of another machine: not taken.
    let far = 4_000_000_000_000u64;
    put(format!("{{\"expires_ms\":{far},\"owner\":\"other\"}}"));
    let guard = store.lock(NS, &key(3), Wait::NoWait).unwrap();
    assert!(!guard.is_acquired(), "{guard:?}");
    drop(guard);
    let start = Instant::now();
    let guard = store
        .lock(NS, &key(3), Wait::Timeout(Duration::from_millis(300)))
        .unwrap();
    assert!(!guard.is_acquired());
    assert!(start.elapsed() >= Duration::from_millis(250));
    drop(guard);
    // Expired: taken over at once.
    put("{\"expires_ms\":1,\"owner\":\"dead\"}".into());
    let guard = store.lock(NS, &key(3), Wait::NoWait).unwrap();
    assert!(guard.is_acquired(), "{guard:?}");
    assert!(logged("taking over a stale claim") >= 1);
    // Held: a second caller (another machine, no local tier) cannot take it.
    let other = RemoteStore::open(config(&server, "claims", None)).unwrap();
    assert!(!other.lock(NS, &key(3), Wait::NoWait).unwrap().is_acquired());
    drop(guard);
    // Released on drop.
    assert!(other.lock(NS, &key(3), Wait::NoWait).unwrap().is_acquired());
}

#[test]
fn a_long_computation_keeps_its_claim() {
    let Some(server) = server("a_long_computation_keeps_its_claim", "refresh") else {
        return;
    };
    let ttl = Duration::from_millis(600);
    let short = |local: Option<&Path>| {
        config(&server, "refresh", local).claims(ttl, Duration::from_millis(50))
    };
    let a = tempfile::tempdir().unwrap();
    let store = RemoteStore::open(short(Some(a.path()))).unwrap();
    let other = RemoteStore::open(short(None)).unwrap();
    let guard = store.lock(NS, &key(12), Wait::NoWait).unwrap();
    assert!(guard.is_acquired(), "{guard:?}");
    // Four times the claim time: the holder's refreshes keep the other
    // machine out all along.
    let start = Instant::now();
    while start.elapsed() < ttl * 4 {
        let theirs = other.lock(NS, &key(12), Wait::NoWait).unwrap();
        assert!(
            !theirs.is_acquired(),
            "taken over after {:?} of a claim of {ttl:?}",
            start.elapsed()
        );
        drop(theirs);
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(guard);
    // Released (and no longer refreshed): the other machine takes it.
    assert!(other
        .lock(NS, &key(12), Wait::NoWait)
        .unwrap()
        .is_acquired());
}

#[test]
fn a_corrupt_remote_object_is_a_miss_and_is_replaced() {
    let Some(server) = server("a_corrupt_remote_object_is_a_miss", "corrupt") else {
        return;
    };
    let entry = NewEntry::new(Duration::ZERO);
    let large = pattern(6 << 20, 3);
    let writer = RemoteStore::open(config(&server, "corrupt", None)).unwrap();
    writer.publish_bytes(NS, &key(4), &entry, &large).unwrap();
    writer.publish_bytes(NS, &key(5), &entry, b"small").unwrap();
    let client = writer.client();
    let listed: Vec<_> = writer
        .block_on(futures::TryStreamExt::try_collect::<Vec<_>>(
            client.list(None),
        ))
        .unwrap();
    let payload = listed
        .iter()
        .find(|o| o.location.as_ref().ends_with(".payload"))
        .unwrap()
        .location
        .clone();
    // Flip a byte in the payload, truncate the small entry's metadata.
    let mut bytes = large.clone();
    bytes[1000] ^= 1;
    writer
        .block_on(client.put(&payload, PutPayload::from(bytes)))
        .unwrap();
    let meta5 = writer.meta_path(NS, &key(5)).unwrap();
    let whole = writer
        .block_on(async { client.get(&meta5).await.unwrap().bytes().await })
        .unwrap();
    writer
        .block_on(client.put(&meta5, PutPayload::from(whole.slice(..whole.len() - 3))))
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let reader = RemoteStore::open(config(&server, "corrupt", Some(dir.path()))).unwrap();
    assert!(matches!(
        reader.get(NS, &key(4), true).unwrap(),
        Lookup::Corrupt(_)
    ));
    assert!(matches!(
        reader.get(NS, &key(5), true).unwrap(),
        Lookup::Corrupt(_)
    ));
    assert!(logged("corrupt remote entry") >= 2);
    // Removed: a miss, nothing left in the local tier; then replaced.
    assert!(matches!(
        reader.get(NS, &key(4), true).unwrap(),
        Lookup::Missing
    ));
    assert!(reader
        .local()
        .unwrap()
        .get_bytes(NS, &key(4))
        .unwrap()
        .is_none());
    reader.publish_bytes(NS, &key(4), &entry, &large).unwrap();
    reader.publish_bytes(NS, &key(5), &entry, b"small").unwrap();
    let fresh = RemoteStore::open(config(&server, "corrupt", None)).unwrap();
    assert_eq!(fresh.get_bytes(NS, &key(4)).unwrap().unwrap(), large);
    assert_eq!(fresh.get_bytes(NS, &key(5)).unwrap().unwrap(), b"small");
}

#[test]
fn a_server_down_never_fails_a_call_and_publishing_resumes() {
    let Some(mut server) = server("a_server_down_never_fails_a_call", "outage") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let store = RemoteStore::open(config(&server, "outage", Some(dir.path()))).unwrap();
    let entry = NewEntry::new(Duration::ZERO);
    store.publish_bytes(NS, &key(6), &entry, b"before").unwrap();

    server.kill();
    let start = Instant::now();
    // A miss, not an error; the local tier still answers; publishing works.
    assert!(matches!(
        store.get(NS, &key(7), true).unwrap(),
        Lookup::Missing
    ));
    assert_eq!(store.get_bytes(NS, &key(6)).unwrap().unwrap(), b"before");
    store.publish_bytes(NS, &key(7), &entry, b"during").unwrap();
    for n in 100..110 {
        assert!(store.get_bytes(NS, &key(n)).unwrap().is_none());
        let guard = store.lock(NS, &key(n), Wait::NoWait).unwrap();
        drop(guard);
    }
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(logged("unreachable"), 1, "one warning per outage");

    server.restart().unwrap();
    server.create_bucket("outage").unwrap();
    std::thread::sleep(Duration::from_millis(400));
    store.publish_bytes(NS, &key(8), &entry, b"after").unwrap();
    assert!(logged("reachable again") >= 1);
    let other = RemoteStore::open(config(&server, "outage", None)).unwrap();
    assert_eq!(other.get_bytes(NS, &key(8)).unwrap().unwrap(), b"after");
    // What was published during the outage reaches the bucket by itself
    // (from the backlog), with no new call computing or publishing it.
    let arrived = |k: u32, other: &RemoteStore| {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Some(v) = other.get_bytes(NS, &key(k)).unwrap() {
                return Some(v);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        None
    };
    assert_eq!(arrived(7, &other).unwrap(), b"during");
    assert!(logged("uploaded 1 entries published while it was unreachable") >= 1);

    // The backlog is durable: published during an outage by one process
    // (a large entry too), uploaded by the next one to use the local tier.
    server.kill();
    let large = pattern(6 << 20, 9);
    store
        .publish_bytes(NS, &key(9), &entry, b"offline")
        .unwrap();
    store.publish_bytes(NS, &key(10), &entry, &large).unwrap();
    drop(store);
    server.restart().unwrap();
    server.create_bucket("outage").unwrap();
    let next = RemoteStore::open(config(&server, "outage", Some(dir.path()))).unwrap();
    assert_eq!(next.get_bytes(NS, &key(6)).unwrap().unwrap(), b"before");
    // The local tier answered; the first contact with the remote drains.
    assert!(next.get_bytes(NS, &key(11)).unwrap().is_none());
    let other = RemoteStore::open(config(&server, "outage", None)).unwrap();
    assert_eq!(arrived(9, &other).unwrap(), b"offline");
    assert_eq!(arrived(10, &other).unwrap(), large);
    let backlog = dir.path().join(".jobcache-remote-backlog");
    assert!(!backlog.exists());
}

/// The child side of the race: computes (slowly) unless the store has it.
fn race_child(endpoint: &str, local: &str, counter: &str) {
    let c = Config::new("s3://race/p")
        .unwrap()
        .endpoint(endpoint)
        .allow_http(true)
        .local_tier(local)
        .claims(Duration::from_secs(60), Duration::from_millis(50));
    jobcache_object_store::moto::set_test_credentials();
    let store = RemoteStore::open(c).unwrap();
    let got = store
        .get_or_compute(
            NS,
            &key(9),
            Wait::Timeout(Duration::from_secs(60)),
            &mut || {
                use std::io::Write;
                let mut f = std::fs::OpenOptions::new()
                    .append(true)
                    .create(true)
                    .open(counter)?;
                writeln!(f, "computed by {}", std::process::id())?;
                std::thread::sleep(Duration::from_millis(1500));
                Ok((b"the value".to_vec(), NewEntry::new(Duration::ZERO)))
            },
        )
        .unwrap();
    assert_eq!(got.bytes, b"the value");
    println!("RESULT computed={}", got.computed);
}

#[test]
fn two_processes_racing_compute_once() {
    if let Ok(args) = std::env::var("JOBCACHE_RACE_CHILD") {
        let parts: Vec<&str> = args.split('|').collect();
        race_child(parts[0], parts[1], parts[2]);
        return;
    }
    let Some(server) = server("two_processes_racing_compute_once", "race") else {
        return;
    };
    let shared = tempfile::tempdir().unwrap();
    let counter = shared.path().join("computed");
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..2)
        .map(|i| {
            let local = shared.path().join(format!("machine-{i}"));
            std::process::Command::new(&exe)
                .args([
                    "--exact",
                    "two_processes_racing_compute_once",
                    "--nocapture",
                ])
                .env(
                    "JOBCACHE_RACE_CHILD",
                    format!(
                        "{}|{}|{}",
                        server.endpoint(),
                        local.display(),
                        counter.display()
                    ),
                )
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outputs: Vec<String> = children
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().unwrap();
            assert!(out.status.success());
            String::from_utf8_lossy(&out.stdout).into_owned()
        })
        .collect();
    let computed = std::fs::read_to_string(&counter).unwrap();
    assert_eq!(computed.lines().count(), 1, "computed once: {computed}");
    let results = outputs
        .iter()
        .filter(|o| o.contains("RESULT computed="))
        .count();
    assert_eq!(results, 2, "both got the value: {outputs:?}");
}
