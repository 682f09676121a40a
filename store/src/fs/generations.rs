//! The shared generation page `packs/generations` (`LAYOUT.md`,
//! "Generations"): one little-endian `u64` counter per pack, bumped by every
//! writer of the pack under its `flock`, read by lookups through a shared
//! mapping. A lookup whose pack counter has not moved since its map of the
//! pack was caught up needs no read (and at most one `fstat` per clock
//! tick, below).
//!
//! The file may be written by anyone who can write the cache, so nothing
//! read from it is trusted for values: a counter only tells a reader when to
//! look at the pack again. A garbled counter costs at worst a look too many
//! or a removal seen late (a reader looks again at least every
//! [`REVALIDATE`] whatever the counter says). A file shorter than the page
//! is not mapped; one truncated after it was mapped would make a load fault
//! (`SIGBUS`): the fault is caught, an anonymous page replaces the mapping,
//! and the page counts as absent from then on.
//!
//! The lookups of one tick of the coarse clock (a few milliseconds) pay
//! one `fstat` of the page between them: a page unlinked (its root or
//! `packs/` deleted under a live handle) counts as absent, so that a lookup
//! looks at the pack, finds it gone, and is a miss. A lookup in the same
//! tick as the deletion may still serve a record checked before it (the
//! right value of an entry just deleted), never anything else.

use crate::beneath::{info_of, Dir, Kind};
use std::io;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Once};
use std::time::Duration;

/// The page's name beneath `packs/`.
pub(super) const GENERATIONS_FILE: &str = "generations";
/// Counters in the page: one per pack.
pub(super) const COUNTERS: usize = 256;
/// Bytes of the page.
pub(super) const PAGE_LEN: usize = COUNTERS * 8;
/// A reader looks at a pack again after this long even if its counter did
/// not move (bounds what a frozen or garbled counter can hide).
pub(super) const REVALIDATE: Duration = Duration::from_secs(1);

/// A clock read cheaply (a coarse clock: no time source read, a few
/// milliseconds of resolution).
fn coarse(clock: libc::clockid_t) -> Duration {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec we own; it does not fail
    // for the coarse clocks on Linux (2.6.32 and later).
    unsafe { libc::clock_gettime(clock, &mut t) };
    Duration::new(
        t.tv_sec.max(0) as u64,
        t.tv_nsec.clamp(0, 999_999_999) as u32,
    )
}

/// The monotonic coarse clock (`CLOCK_MONOTONIC_COARSE`), for the
/// revalidation bound of lookups.
pub(super) fn coarse_now() -> Duration {
    coarse(libc::CLOCK_MONOTONIC_COARSE)
}

/// The tick of the monotonic coarse clock now, in nanoseconds: two reads
/// in the same tick are equal.
pub(super) fn coarse_tick() -> u64 {
    u64::try_from(coarse_now().as_nanos()).unwrap_or(u64::MAX)
}

/// The wall clock read coarsely (`CLOCK_REALTIME_COARSE`), in nanoseconds
/// since the epoch, for access times, which are kept coarsely.
pub(super) fn coarse_wall_now() -> u64 {
    u64::try_from(coarse(libc::CLOCK_REALTIME_COARSE).as_nanos()).unwrap_or(u64::MAX)
}

/// A name remembered for the tick of the coarse clock it was noted in:
/// what a handle found a moment ago and need not look for again in the
/// same tick.
#[derive(Debug, Default)]
pub(super) struct NotedThisTick(std::sync::Mutex<Option<(String, u64)>>);

impl NotedThisTick {
    /// Notes `name` now.
    pub(super) fn note(&self, name: String) {
        *super::guard(&self.0) = Some((name, coarse_tick()));
    }

    /// Whether `name` was noted in the current tick.
    pub(super) fn is_noted(&self, name: &str) -> bool {
        let tick = coarse_tick();
        super::guard(&self.0)
            .as_ref()
            .is_some_and(|(n, at)| n == name && *at == tick)
    }
}

/// The mapped page of one store root.
#[derive(Debug)]
pub(super) struct Generations {
    base: NonNull<AtomicU64>,
    /// The page's file, kept open to tell whether it is still linked.
    file: std::fs::File,
    /// Index in the process-wide registry the `SIGBUS` handler reads.
    reg: usize,
    writable: bool,
    /// The root handle the page was opened beneath: a page belongs to the
    /// root it was found in, and is dropped when the root is replaced.
    root: Arc<Dir>,
    /// The coarse-clock tick (nanoseconds) of the last `fstat` that found
    /// the page linked; 0 for none.
    linked_at: AtomicU64,
}

// SAFETY: the mapping is only accessed through atomics; the pointer is
// owned by this value and unmapped once, on drop.
unsafe impl Send for Generations {}
// SAFETY: as above, every access is an atomic load or read-modify-write.
unsafe impl Sync for Generations {}

impl Generations {
    /// Opens (with `create`, making it first if missing) the page beneath
    /// `root` without following symlinks and maps it. `Ok(None)` if it is
    /// absent, not a regular file, shorter than the page, or cannot be
    /// mapped: lookups then look at the pack itself each time.
    pub(super) fn open(root: &Arc<Dir>, packs: &str, create: bool) -> io::Result<Option<Self>> {
        let rel = format!("{packs}/{GENERATIONS_FILE}");
        let opened = if create {
            root.open_or_create_file(&rel).map(|f| (f, true))
        } else {
            match root.open_rw(&rel) {
                Ok(f) => Ok((f, true)),
                Err(e) if matches!(e.raw_os_error(), Some(libc::EACCES | libc::EROFS)) => {
                    root.open_file(&rel, false).map(|f| (f, false))
                }
                Err(e) => Err(e),
            }
        };
        let (file, writable) = match opened {
            Ok(x) => x,
            Err(e) if e.kind() == io::ErrorKind::NotFound || super::is_not_followed(&e) => {
                return Ok(None)
            }
            Err(e) if e.raw_os_error() == Some(libc::EISDIR) => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut info = info_of(&file)?;
        if info.kind != Kind::File {
            return Ok(None);
        }
        if info.nlink > 1 {
            // Written in place: a page with other names (a hard link
            // planted from outside the root) is not mapped, and a writer
            // unlinks the name so that the next open makes a page of its own.
            if create {
                drop(file);
                let _ = root.unlink(&rel);
            }
            return Ok(None);
        }
        if info.len == 0 && writable {
            // Made just now (or by a writer that has not sized it yet):
            // growing an empty file to the page is idempotent.
            file.set_len(PAGE_LEN as u64)?;
            info = info_of(&file)?;
        }
        if info.len < PAGE_LEN as u64 {
            log::debug!("{rel}: {} bytes, not a generation page", info.len);
            return Ok(None);
        }
        let Some(reg) = register() else {
            return Ok(None);
        };
        let prot = if writable {
            libc::PROT_READ | libc::PROT_WRITE
        } else {
            libc::PROT_READ
        };
        use std::os::fd::AsRawFd;
        // SAFETY: a fresh shared mapping of PAGE_LEN bytes of a file we
        // checked is at least that long; a later truncation is caught by the
        // SIGBUS handler registered for this range.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                PAGE_LEN,
                prot,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            unregister(reg);
            return Err(io::Error::last_os_error());
        }
        let Some(base) = NonNull::new(p.cast::<AtomicU64>()) else {
            unregister(reg);
            return Ok(None);
        };
        REGISTRY[reg].store(base.as_ptr().cast(), Ordering::Release);
        Ok(Some(Generations {
            base,
            file,
            reg,
            writable,
            root: Arc::clone(root),
            linked_at: AtomicU64::new(0),
        }))
    }

    /// Whether the page was opened beneath `root`.
    pub(super) fn belongs_to(&self, root: &Arc<Dir>) -> bool {
        Arc::ptr_eq(&self.root, root)
    }

    /// Whether the page is still usable (not truncated under the mapping).
    pub(super) fn is_sound(&self) -> bool {
        !BROKEN[self.reg].load(Ordering::Acquire)
    }

    fn counter(&self, b: u8) -> &AtomicU64 {
        // SAFETY: b < COUNTERS and the mapping holds COUNTERS aligned u64s
        // (mmap returns page-aligned memory) for as long as self lives.
        unsafe { &*self.base.as_ptr().add(usize::from(b)) }
    }

    /// The counter of pack `b`, if the page is sound.
    pub(super) fn load(&self, b: u8) -> Option<u64> {
        let v = self.counter(b).load(Ordering::Acquire);
        self.is_sound().then_some(v)
    }

    /// The counter of pack `b` for a lookup: `None` if the page is not
    /// sound or no longer linked (one `fstat` per tick of the coarse clock:
    /// `now`, read by the caller from [`coarse_now`]).
    pub(super) fn load_linked(&self, b: u8, now: Duration) -> Option<u64> {
        let tick = u64::try_from(now.as_nanos()).unwrap_or(u64::MAX);
        let linked = self.linked_at.load(Ordering::Relaxed) == tick
            || info_of(&self.file).is_ok_and(|i| i.nlink > 0) && {
                self.linked_at.store(tick, Ordering::Relaxed);
                true
            };
        if linked {
            self.load(b)
        } else {
            None
        }
    }

    /// Bumps the counter of pack `b`: called by a writer holding the
    /// pack's `flock`, after its change is in the file.
    pub(super) fn bump(&self, b: u8) {
        if self.writable && self.is_sound() {
            self.counter(b).fetch_add(1, Ordering::AcqRel);
        }
    }
}

impl Drop for Generations {
    fn drop(&mut self) {
        REGISTRY[self.reg].store(std::ptr::null_mut(), Ordering::Release);
        // SAFETY: the mapping (or the anonymous page that replaced it) was
        // made by `open` with this length and is unmapped once.
        unsafe {
            libc::munmap(self.base.as_ptr().cast(), PAGE_LEN);
        }
        unregister(self.reg);
    }
}

/// Mapped pages a process can hold at once (more stores use no page).
const SLOTS: usize = 64;

#[allow(clippy::declare_interior_mutable_const)]
const NULL: AtomicPtr<u8> = AtomicPtr::new(std::ptr::null_mut());
#[allow(clippy::declare_interior_mutable_const)]
const FALSE: AtomicBool = AtomicBool::new(false);
/// Start of each mapped page, read by the `SIGBUS` handler.
static REGISTRY: [AtomicPtr<u8>; SLOTS] = [NULL; SLOTS];
/// Pages whose file was truncated under them.
static BROKEN: [AtomicBool; SLOTS] = [FALSE; SLOTS];
/// Which registry slots are taken (bit i: slot i).
static TAKEN: AtomicU64 = AtomicU64::new(0);
/// The `SIGBUS` disposition before ours, for faults that are not ours.
static PREVIOUS: AtomicUsize = AtomicUsize::new(0);
static INSTALL: Once = Once::new();
static INSTALLED: AtomicBool = AtomicBool::new(false);

fn register() -> Option<usize> {
    INSTALL.call_once(install);
    if !INSTALLED.load(Ordering::Acquire) {
        return None;
    }
    let mut taken = TAKEN.load(Ordering::Acquire);
    loop {
        let free = (!taken).trailing_zeros() as usize;
        if free >= SLOTS {
            return None;
        }
        match TAKEN.compare_exchange(
            taken,
            taken | (1 << free),
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => {
                BROKEN[free].store(false, Ordering::Release);
                return Some(free);
            }
            Err(now) => taken = now,
        }
    }
}

fn unregister(reg: usize) {
    TAKEN.fetch_and(!(1 << reg), Ordering::AcqRel);
}

fn install() {
    // SAFETY: sigaction with a zeroed, then filled, struct; the previous
    // disposition is kept so that faults that are not ours reach it.
    unsafe {
        let mut new: libc::sigaction = std::mem::zeroed();
        new.sa_sigaction = on_sigbus as *const () as usize;
        new.sa_flags = libc::SA_SIGINFO | libc::SA_NODEFER | libc::SA_ONSTACK;
        libc::sigemptyset(&mut new.sa_mask);
        let old = Box::into_raw(Box::new(std::mem::zeroed::<libc::sigaction>()));
        if libc::sigaction(libc::SIGBUS, &new, old) == 0 {
            PREVIOUS.store(old as usize, Ordering::Release);
            INSTALLED.store(true, Ordering::Release);
        } else {
            drop(Box::from_raw(old));
        }
    }
}

/// Replaces a truncated page with an anonymous one (the faulting load then
/// reads zero, and the page counts as broken); hands any other fault to the
/// previous disposition.
extern "C" fn on_sigbus(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for SA_SIGINFO handlers.
    let addr = unsafe { (*info).si_addr() } as usize;
    for (i, slot) in REGISTRY.iter().enumerate() {
        let start = slot.load(Ordering::Acquire) as usize;
        if start != 0 && (start..start + PAGE_LEN).contains(&addr) {
            BROKEN[i].store(true, Ordering::Release);
            // SAFETY: maps anonymous memory over our own mapping's range;
            // mmap is a plain system call, safe in a signal handler.
            let p = unsafe {
                libc::mmap(
                    start as *mut libc::c_void,
                    PAGE_LEN,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                    -1,
                    0,
                )
            };
            if p != libc::MAP_FAILED {
                return;
            }
        }
    }
    let prev = PREVIOUS.load(Ordering::Acquire) as *const libc::sigaction;
    // SAFETY: PREVIOUS points to the disposition saved by `install`, never
    // freed. A handler of it is called as the kernel would; a default or
    // ignored disposition is restored so that the faulting access, run
    // again on return, gets it.
    unsafe {
        if prev.is_null() {
            libc::signal(sig, libc::SIG_DFL);
            return;
        }
        let h = (*prev).sa_sigaction;
        if h == libc::SIG_DFL || h == libc::SIG_IGN {
            libc::sigaction(sig, prev, std::ptr::null_mut());
        } else if (*prev).sa_flags & libc::SA_SIGINFO != 0 {
            let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                std::mem::transmute(h);
            f(sig, info, ctx);
        } else {
            let f: extern "C" fn(libc::c_int) = std::mem::transmute(h);
            f(sig);
        }
    }
}
