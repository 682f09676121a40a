//! Captured output, exercised in child processes (redirecting descriptors
//! inside the test harness itself would be fragile).
// Test helpers outside #[test] functions panic on failure too.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![cfg(unix)]

use jobcache_trace::{capture, capture_with, replay, CaptureOptions, Captured};
use std::io::Write;
use std::process::Command;

const CHILD_ENV: &str = "JOBCACHE_TRACE_TEST_CAPTURE";

fn write_fd(fd: i32, s: &str) {
    // SAFETY: the pointer and length describe `s`.
    unsafe {
        libc::write(fd, s.as_ptr().cast(), s.len());
    }
}

fn report(label: &str, c: &Captured) {
    // Straight to descriptor 1, after the capture ended.
    let line = format!(
        "\n{label} {}\n",
        serde_json::json!({
            "stdout": String::from_utf8_lossy(&c.stdout),
            "stderr": String::from_utf8_lossy(&c.stderr),
            "stdout_total": c.stdout_total,
            "stderr_total": c.stderr_total,
            "truncated": c.truncated(),
        })
    );
    write_fd(1, &line);
}

/// Entry point of the child scenarios (does nothing in a normal run).
#[test]
fn child_scenario() {
    let Ok(scenario) = std::env::var(CHILD_ENV) else {
        return;
    };
    match scenario.as_str() {
        "basic" => {
            let (value, c) = capture(|| {
                println!("rust out");
                eprintln!("rust err");
                write_fd(1, "fd out\n");
                // SAFETY: a constant format string with one int argument.
                unsafe {
                    libc::printf(c"c stdio %d\n".as_ptr(), 7);
                }
                Command::new("sh")
                    .args(["-c", "echo child out; echo child err >&2"])
                    .status()
                    .unwrap();
                42
            });
            assert_eq!(value, 42);
            report("RESULT", &c);
        }
        "truncate" => {
            let opts = CaptureOptions {
                max_bytes: 10,
                tee: false,
            };
            let ((), c) = capture_with(&opts, || {
                print!("{}", "x".repeat(100));
            });
            report("RESULT", &c);
            replay(&c).unwrap();
        }
        "panic" => {
            let r = std::panic::catch_unwind(|| {
                capture(|| {
                    println!("before panic");
                    panic!("boom inside capture");
                })
            });
            assert!(r.is_err());
            println!("AFTER PANIC rust");
            std::io::stdout().flush().unwrap();
            write_fd(1, "AFTER PANIC fd\n");
            // The capture machinery still works afterwards.
            let ((), c) = capture(|| println!("second"));
            report("RESULT", &c);
        }
        "background" => {
            let start = std::time::Instant::now();
            let ((), c) = capture(|| {
                println!("started");
                // A process left running holds the pipe open for 3 s.
                Command::new("sh")
                    .args(["-c", "(sleep 3; echo late) &"])
                    .status()
                    .unwrap();
            });
            let waited = start.elapsed();
            assert!(
                waited < std::time::Duration::from_millis(2900),
                "waited {waited:?}"
            );
            report("RESULT", &c);
        }
        "nested" => {
            let ((), outer) = capture(|| {
                println!("outer");
                let ((), inner) = capture(|| println!("inner"));
                assert!(inner.is_empty());
            });
            report("RESULT", &outer);
        }
        "replay" => {
            let c = Captured {
                stdout: b"replayed out\n".to_vec(),
                stderr: b"replayed err\n".to_vec(),
                stdout_total: 13,
                stderr_total: 13,
            };
            replay(&c).unwrap();
        }
        other => panic!("unknown scenario {other}"),
    }
}

struct Output {
    stdout: String,
    stderr: String,
}

fn run(scenario: &str) -> Output {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "child_scenario",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, scenario)
        .output()
        .unwrap();
    let o = Output {
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert!(
        out.status.success(),
        "child {scenario} failed:\n{}\n{}",
        o.stdout,
        o.stderr
    );
    o
}

fn result(o: &Output) -> serde_json::Value {
    let line = o
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .expect("a RESULT line");
    serde_json::from_str(line).unwrap()
}

#[test]
fn captures_rust_c_and_child_output_and_passes_it_through() {
    let o = run("basic");
    let r = result(&o);
    assert_eq!(r["stdout"], "rust out\nfd out\nchild out\nc stdio 7\n");
    assert_eq!(r["stderr"], "rust err\nchild err\n");
    assert_eq!(r["truncated"], false);
    // Passed through to the real descriptors as well.
    for s in ["rust out", "fd out", "c stdio 7", "child out"] {
        assert!(o.stdout.contains(s), "{s} not passed through: {}", o.stdout);
    }
    for s in ["rust err", "child err"] {
        assert!(o.stderr.contains(s), "{s} not passed through: {}", o.stderr);
    }
}

#[test]
fn keeps_a_bounded_prefix_and_notes_the_rest() {
    let o = run("truncate");
    let r = result(&o);
    assert_eq!(r["stdout"], "xxxxxxxxxx");
    assert_eq!(r["stdout_total"], 100);
    assert_eq!(r["truncated"], true);
    // tee off: the 100 bytes did not reach the terminal; replay wrote 10.
    let passed: usize = o
        .stdout
        .lines()
        .filter(|l| !l.starts_with("RESULT"))
        .map(|l| l.matches('x').count())
        .sum();
    assert_eq!(passed, 10);
    assert!(o.stderr.contains("90 more bytes of output were not kept"));
}

#[test]
fn descriptors_are_restored_when_the_function_panics() {
    let o = run("panic");
    assert!(o.stdout.contains("AFTER PANIC rust"), "{}", o.stdout);
    assert!(o.stdout.contains("AFTER PANIC fd"));
    assert!(o.stderr.contains("boom inside capture"));
    assert_eq!(result(&o)["stdout"], "second\n");
}

#[test]
fn nested_capture_runs_uncaptured_inside_the_outer_one() {
    let r = result(&run("nested"));
    assert_eq!(r["stdout"], "outer\ninner\n");
}

#[test]
fn a_process_left_running_does_not_block_the_capture() {
    assert_eq!(result(&run("background"))["stdout"], "started\n");
}

#[test]
fn replay_writes_both_streams() {
    let o = run("replay");
    assert!(o.stdout.contains("replayed out"));
    assert!(o.stderr.contains("replayed err"));
}
