//! A pipeline run on "machine A" (one local directory) and rerun on
//! "machine B" (another directory, the same bucket): every step hits.

use jobcache_memo::{Memory, Shelved};
use jobcache_object_store::moto::Server;
use jobcache_object_store::Config;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn run(server: &Server, local: &Path, counts: &Arc<AtomicUsize>) -> (f64, Vec<String>) {
    let config = Config::new("s3://pipeline/shared")
        .unwrap()
        .endpoint(server.endpoint())
        .allow_http(true)
        .timeouts(Duration::from_secs(5), Duration::from_secs(1));
    let mem = Memory::builder(local)
        .verbose(0)
        .remote_config(config)
        .build()
        .unwrap();
    let c = counts.clone();
    let load = mem.cache_named("load", move |n: usize| {
        c.fetch_add(1, Ordering::SeqCst);
        (0..n).map(|i| i as f64).collect::<Vec<f64>>()
    });
    let c = counts.clone();
    let scale = mem.cache_named("scale", move |(x, k): (&Shelved<Vec<f64>>, f64)| {
        c.fetch_add(1, Ordering::SeqCst);
        x.load()
            .map(|v| v.iter().map(|e| e * k).collect::<Vec<f64>>())
    });
    let c = counts.clone();
    let total = mem.cache_named("total", move |x: &Shelved<Vec<f64>>| {
        c.fetch_add(1, Ordering::SeqCst);
        x.load().map(|v| v.iter().sum::<f64>())
    });
    let raw = load.call_and_shelve(100_000);
    let scaled = scale.try_call_and_shelve((&raw, 2.0)).unwrap();
    let sum = total.try_call(&scaled).unwrap();
    let keys = vec![
        raw.key().unwrap().to_string(),
        scaled.key().unwrap().to_string(),
        total.key(&&scaled).unwrap().to_string(),
    ];
    (sum, keys)
}

#[test]
fn a_pipeline_computed_on_one_machine_hits_on_another() {
    let Some(server) = Server::start_or_skip("a_pipeline_computed_on_one_machine_hits_on_another")
    else {
        return;
    };
    server.create_bucket("pipeline").unwrap();
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let counts = Arc::new(AtomicUsize::new(0));
    let (sum_a, keys_a) = run(&server, &a.path().join("machine-a"), &counts);
    assert_eq!(
        counts.load(Ordering::SeqCst),
        3,
        "machine A computes every step"
    );
    let (sum_b, keys_b) = run(&server, &b.path().join("elsewhere/machine-b"), &counts);
    assert_eq!(
        counts.load(Ordering::SeqCst),
        3,
        "machine B hits every step"
    );
    assert_eq!(sum_a, sum_b);
    assert_eq!(keys_a, keys_b);
}
