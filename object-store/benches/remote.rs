//! The `remote` benchmark group: the S3-compatible backend against a local
//! moto server (`object-store/src/moto.rs`), each row beside its baseline
//! in the same run.
//!
//! - `remote/hit_small_local_tier`: µs for a verified hit of a 100-byte
//!   entry found in the local tier, its payload read; baseline the same
//!   hit through a plain `FsStore` (`store/get_small`'s subject).
//! - `remote/hit_small_remote`: ms for the same hit with no local tier (one
//!   GET of the metadata object, which holds the payload); reported.
//! - `remote/publish_64MiB`: ms to publish 64 MiB (local tier, then a
//!   multipart upload and the metadata object); reported.
//! - `remote/get_256MiB`: GB/s of a verified remote hit of 256 MiB with no
//!   local tier (the metadata GET, then one streaming GET of the payload
//!   written into memory while hashed, checksum checked); baseline a plain
//!   `object_store` get of the same payload object from the same server
//!   into memory (`GetResult::bytes`).

use jobcache_bench::{
    gb_per_s, micros, millis, pairs, samples, samples_of, scratch_dir, timed, Group, Row,
    DEFAULT_REPS,
};
use jobcache_object_store::moto::Server;
use jobcache_object_store::{Config, RemoteStore};
use jobcache_store::StoreExt;
use jobcache_store::{FsStore, NewEntry, Store};
use object_store::ObjectStore;
use std::cell::Cell;
use std::hint::black_box;
use std::time::Duration;

const NS: &str = "bench::remote";
const BUCKET: &str = "bench";
const REPS: usize = DEFAULT_REPS + 2;

fn key(i: u64) -> String {
    format!("{i:064x}")
}

fn config(server: &Server) -> Result<Config, Box<dyn std::error::Error>> {
    Ok(Config::new(&format!("s3://{BUCKET}/bench"))?
        .endpoint(server.endpoint())
        .allow_http(true)
        .timeouts(Duration::from_secs(120), Duration::from_secs(5)))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = Server::start()?;
    server.create_bucket(BUCKET)?;
    let dir = scratch_dir("remote")?;
    let tiered = RemoteStore::open(config(&server)?.local_tier(dir.join("tier")))?;
    let bare = RemoteStore::open(config(&server)?)?;
    let plain = FsStore::create(dir.join("plain"))?;
    let mut group = Group::new("remote");
    let meta = NewEntry::new(Duration::from_millis(5))
        .field("function", NS)
        .field("args", "x: f64 = 1.5");

    // Small hit from the local tier, against the same hit on a file store.
    let small = vec![42u8; 100];
    tiered.publish_bytes(NS, &key(0), &meta, &small)?;
    plain.publish_bytes(NS, &key(0), &meta, &small)?;
    let hit = |store: &dyn Store| {
        let mut e = store.get(NS, &key(0), true).ok().and_then(|l| l.found());
        let bytes = e.as_mut().and_then(|e| e.read_to_vec().ok());
        assert_eq!(bytes.as_deref(), Some(&small[..]));
    };
    const N: u32 = 2000;
    let p = pairs(
        REPS,
        || timed(|| (0..N).for_each(|_| hit(&tiered))),
        || Some(timed(|| (0..N).for_each(|_| hit(&plain)))),
    );
    group.push(Row::from_pairs(
        "remote/hit_small_local_tier",
        "us",
        &p,
        |d| micros(d / N),
    ));

    // Small hit from the remote (no local tier).
    const R: u32 = 50;
    let remote_hit = samples(REPS, || {
        (0..R).for_each(|_| hit(&bare));
    });
    group.push(Row::from_samples(
        "remote/hit_small_remote",
        "ms",
        &remote_hit,
        |d| millis(d / R),
    ));

    // Publishing 64 MiB: a new key each time (a present key is not sent).
    let mid: Vec<u8> = (0..64u32 << 20).map(|i| (i * 31) as u8).collect();
    let next = Cell::new(1_000u64);
    let publish = samples_of(REPS, || {
        next.set(next.get() + 1);
        let k = key(next.get());
        let t = timed(|| {
            let p = tiered.publish_bytes(NS, &k, &meta, &mid);
            assert!(p.is_ok());
        });
        let _ = tiered.remove(NS, &k);
        t
    });
    group.push(Row::from_samples(
        "remote/publish_64MiB",
        "ms",
        &publish,
        millis,
    ));
    drop(mid);

    // 256 MiB from the remote, against a plain get of the same object.
    let big: Vec<u8> = (0..256u32 << 20).map(|i| (i * 7) as u8).collect();
    let len = big.len() as u64;
    bare.publish_bytes(NS, &key(1), &meta, &big)?;
    drop(big);
    let client = bare.client();
    let listed = bare.block_on(async {
        futures::TryStreamExt::try_collect::<Vec<_>>(client.list(None)).await
    })?;
    let payload = listed
        .iter()
        .find(|o| o.size == len)
        .ok_or("the 256 MiB payload object is not listed")?
        .location
        .clone();
    let p = pairs(
        REPS,
        || {
            timed(|| {
                let e = bare.get(NS, &key(1), true).ok().and_then(|l| l.found());
                let n = e
                    .as_ref()
                    .and_then(|e| e.bytes_in_memory())
                    .map(<[u8]>::len);
                assert_eq!(n, Some(len as usize));
                black_box(e);
            })
        },
        || {
            Some(timed(|| {
                let got = bare.block_on(async { client.get(&payload).await?.bytes().await });
                assert_eq!(got.as_ref().map(|b| b.len()).ok(), Some(len as usize));
                black_box(got.ok());
            }))
        },
    );
    group.push(Row::from_pairs("remote/get_256MiB", "GB/s", &p, |d| {
        gb_per_s(len, d)
    }));
    group.finish()?;
    drop(server);
    Ok(())
}
