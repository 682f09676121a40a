//! `ls`, `show`, `verify`, `gc` and `clear` on a remote cache
//! (`--dir s3://bucket/prefix`, `--remote`), against a moto server.
#![cfg(feature = "remote")]

use jobcache_object_store::moto::Server;
use jobcache_object_store::{Config, RemoteStore};
use jobcache_store::StoreExt;
use jobcache_store::{NewEntry, Store};
use std::process::{Command, Output};
use std::time::Duration;

fn jobcache(server: &Server, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_jobcache"))
        .args(args)
        .env("AWS_ENDPOINT_URL", server.endpoint())
        .env("AWS_ALLOW_HTTP", "true")
        .env("NO_COLOR", "1")
        .env_remove("JOBCACHE_DIR")
        .env_remove("JOBCACHE_REMOTE")
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn the_commands_work_on_a_remote_cache() {
    let Some(server) = Server::start_or_skip("the_commands_work_on_a_remote_cache") else {
        return;
    };
    server.create_bucket("cli").unwrap();
    let config = Config::new("s3://cli/team")
        .unwrap()
        .endpoint(server.endpoint())
        .allow_http(true);
    let store = RemoteStore::open(config).unwrap();
    let ns = "pipeline::smooth";
    for i in 0..3u64 {
        let entry = NewEntry::new(Duration::from_millis(3)).field("function", ns);
        store
            .publish_bytes(ns, &format!("{i:064x}"), &entry, &[i as u8; 100])
            .unwrap();
        std::thread::sleep(Duration::from_millis(20));
    }
    let url = "s3://cli/team";

    let ls = jobcache(&server, &["--dir", url, "ls"]);
    assert!(ls.status.success(), "{}", text(&ls));
    assert!(text(&ls).contains(ns), "{}", text(&ls));
    let ls = jobcache(&server, &["--remote", url, "ls", "smooth", "--json"]);
    assert!(ls.status.success(), "{}", text(&ls));
    assert_eq!(text(&ls).matches("\"key\"").count(), 3, "{}", text(&ls));

    let show = jobcache(&server, &["--dir", url, "show", "smooth", &"0".repeat(64)]);
    assert!(show.status.success(), "{}", text(&show));
    assert!(text(&show).contains(ns), "{}", text(&show));
    // The entry's object is named once with its prefix.
    assert!(
        text(&show).contains("s3://cli/team/jobcache-remote-v1/"),
        "{}",
        text(&show)
    );

    let verify = jobcache(&server, &["--dir", url, "verify"]);
    assert!(verify.status.success(), "{}", text(&verify));

    let gc = jobcache(&server, &["--dir", url, "gc", "--max-items", "2"]);
    assert!(gc.status.success(), "{}", text(&gc));
    assert_eq!(store.entries(ns).unwrap().len(), 2);

    let clear = jobcache(&server, &["--dir", url, "clear", "--yes"]);
    assert!(clear.status.success(), "{}", text(&clear));
    assert!(store.namespaces().unwrap().is_empty());
}
