//! The `jobcache` command line: inspect, verify, trim and report on a cache.

fn main() {
    eprintln!("jobcache: the command line is not built yet");
    std::process::exit(2);
}
