//! The process id an event records is read once per process, and again in
//! a child made by `fork`.
#![cfg(unix)]
// Test helpers outside #[test] functions panic on failure too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use jobcache_trace::{process_id, Event, EventKind};

#[test]
fn a_forked_child_records_its_own_pid() {
    let parent = Event::new(EventKind::Hit, "f").pid;
    assert_eq!(parent, std::process::id());
    // SAFETY: the child only reads its pid, compares and calls `_exit`;
    // it allocates nothing and touches no lock another thread may hold.
    let child = unsafe { libc::fork() };
    assert!(child >= 0, "fork failed");
    if child == 0 {
        // SAFETY: getpid is async-signal-safe and takes no arguments.
        let ok = i64::from(process_id()) == i64::from(unsafe { libc::getpid() });
        // SAFETY: _exit is async-signal-safe; the child ends here.
        unsafe { libc::_exit(if ok { 0 } else { 1 }) };
    }
    let mut status = 0;
    // SAFETY: `child` is our child; `status` is a valid out-pointer.
    let waited = unsafe { libc::waitpid(child, &mut status, 0) };
    assert_eq!(waited, child);
    assert!(libc::WIFEXITED(status), "the child did not exit: {status}");
    assert_eq!(
        libc::WEXITSTATUS(status),
        0,
        "the child recorded its parent's pid"
    );
    assert_eq!(process_id(), parent, "the parent keeps its own");
}
