//! `save` publishes by rename: a process killed mid-save leaves the old
//! file or the new one, never a torn one.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers

use std::path::PathBuf;
use std::time::Duration;

use ndarray::Array1;

fn value(k: u64) -> Array1<f64> {
    Array1::from_elem(1 << 20, k as f64)
}

/// The child: saves new versions of the file until it is killed.
#[test]
fn child_saver() {
    let Some(path) = std::env::var_os("JOBCACHE_PERSIST_CHILD_PATH") else {
        return;
    };
    let path = PathBuf::from(path);
    for k in 1.. {
        jobcache_persist::save(&path, &value(k)).unwrap();
    }
}

#[test]
fn killed_saver_leaves_a_complete_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.jcp");
    jobcache_persist::save(&path, &value(0)).unwrap();
    for round in 0..3 {
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "child_saver", "--nocapture", "--test-threads=1"])
            .env("JOBCACHE_PERSIST_CHILD_PATH", &path)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(150 + 70 * round));
        child.kill().unwrap();
        child.wait().unwrap();
        let loaded: Array1<f64> = jobcache_persist::load(&path).unwrap();
        let k = loaded[0];
        assert_eq!(loaded, value(k as u64), "a complete version, round {round}");
        assert!(jobcache_persist::verify(&path).unwrap().is_valid());
    }
}
