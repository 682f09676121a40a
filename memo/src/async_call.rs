//! Cached `async` functions, on any executor.

use crate::cached::Protocol;
use crate::{codec, Cached, Callable};
use jobcache_store::{Entry, LockState, Wait};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// The first and the longest pause between two looks at an entry another
/// task or process is computing.
const FIRST_PAUSE: Duration = Duration::from_millis(5);
const LONGEST_PAUSE: Duration = Duration::from_millis(200);

impl<F> Cached<F> {
    /// [`Cached::call`] for an `async fn` (or any function returning a
    /// future): returns the stored result, or awaits the function's future
    /// and stores its output.
    ///
    /// - **Any executor**: the library depends on no runtime. It works on
    ///   tokio, async-std, smol or a plain `block_on`.
    /// - **Compute once**: tasks and processes asking for the same call at
    ///   once wait for one of them, without blocking their thread: a task
    ///   that finds the entry locked looks again after a pause (5 ms
    ///   doubling to 200 ms, woken by a short-lived timer thread), for at
    ///   most the memory's [`lock_wait`](crate::MemoryBuilder::lock_wait),
    ///   then computes anyway.
    /// - **Blocking disk work**: looking up, loading a hit and storing the
    ///   output are plain file reads and writes on the thread that polls
    ///   the future (a hit of a few MiB takes about a millisecond; a
    ///   GiB-sized array, far longer). On a multi-threaded runtime, run
    ///   calls with large results on its blocking pool instead —
    ///   `tokio::task::spawn_blocking(move || cached.call(args))` for a
    ///   synchronous function, or, for an async one,
    ///   `spawn_blocking(move || handle.block_on(cached.call_async(args)))`
    ///   with a `tokio::runtime::Handle`.
    /// - Output capture ([`capture_output`](crate::MemoryBuilder::capture_output))
    ///   does not apply: other tasks would write in the same window.
    ///
    /// ```
    /// use jobcache_memo::Memory;
    ///
    /// async fn fetch(id: u32) -> String {
    ///     format!("record {id}") // stands for a request
    /// }
    ///
    /// # fn main() -> Result<(), jobcache_memo::Error> {
    /// # let dir = tempfile::tempdir().map_err(|_| jobcache_memo::Error::Disabled)?;
    /// let mem = Memory::builder(dir.path()).verbose(0).build()?;
    /// let fetch = mem.cache(fetch);
    /// // Any executor drives it; pollster's block_on is the smallest.
    /// let first = pollster::block_on(fetch.call_async(7));   // awaited, stored
    /// let again = pollster::block_on(fetch.call_async(7));   // loaded
    /// assert_eq!(first, again);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn call_async<A, M, Fut>(&self, args: A) -> Fut::Output
    where
        F: Callable<A, M, Output = Fut>,
        A: Serialize,
        Fut: Future,
        Fut::Output: Serialize + DeserializeOwned + 'static,
    {
        let run = |f: &F, args: A| {
            let future = f.call_with(args);
            async move { Ok::<_, Infallible>(future.await) }
        };
        match self.call_async_inner(args, run).await {
            Ok(value) => value,
            Err(never) => match never {},
        }
    }

    /// [`Cached::call_async`] for a function whose future returns `Result`:
    /// only `Ok` values are stored; an `Err` is returned as it is and the
    /// next call tries again.
    pub async fn try_call_async<A, M, Fut, T, E>(&self, args: A) -> Result<T, E>
    where
        F: Callable<A, M, Output = Fut>,
        A: Serialize,
        Fut: Future<Output = Result<T, E>>,
        T: Serialize + DeserializeOwned + 'static,
    {
        self.call_async_inner(args, |f: &F, args: A| f.call_with(args))
            .await
    }

    /// The one call protocol of [`Cached::call_keyed`], with the lock
    /// awaited instead of blocked on: look up, else lock (or wait for the
    /// holder, looking again), look up again, compute and store.
    async fn call_async_inner<A, M, T, E, Fut>(
        &self,
        args: A,
        compute: impl FnOnce(&F, A) -> Fut,
    ) -> Result<T, E>
    where
        F: Callable<A, M>,
        A: Serialize,
        Fut: Future<Output = Result<T, E>>,
        T: Serialize + DeserializeOwned + 'static,
    {
        let Some(keyed) = self.keyed_or_warn(&args) else {
            return compute(self.func(), args).await;
        };
        let name = self.name::<A, M>();
        let key = keyed.text.as_str();
        let load = |entry: Entry| codec::decode::<T>(entry).map_err(|e| e.to_string());
        let started = Instant::now();
        if let Some(value) = self.hit(name, key, &args, started, &load) {
            return Ok(value);
        }
        let mut pause = FIRST_PAUSE;
        let _lock = loop {
            let lock = match self.store_lock(name, key) {
                Some(lock) => lock,
                None => break None,
            };
            if lock.state() != LockState::TimedOut {
                break Some(lock);
            }
            drop(lock);
            let waited = started.elapsed();
            if self.waited_enough(waited) {
                log::info!(
                    target: "jobcache",
                    "{name}: still computed elsewhere after {:.1}s; computing without the lock",
                    waited.as_secs_f64()
                );
                break None;
            }
            Sleep::new(pause).await;
            pause = (pause * 2).min(LONGEST_PAUSE);
            // The holder may have published meanwhile.
            if let Some(value) = self.hit(name, key, &args, started, &load) {
                return Ok(value);
            }
        };
        if let Some(value) = self.hit(name, key, &args, started, &load) {
            return Ok(value);
        }
        self.log_miss(name, &keyed);
        let summary = jobcache_trace::summarize(&args);
        let failure = self.start_computing(name, &keyed, &summary);
        let computing = Instant::now();
        let value = compute(self.func(), args).await?;
        let duration = computing.elapsed();
        failure.disarm();
        let (value, _) =
            self.store_value(name, &keyed, summary, Protocol::Use, value, duration, None);
        Ok(value)
    }

    /// Tries the entry's lock once; `None` when the store cannot lock (the
    /// error is logged) and the call goes on without it.
    fn store_lock(&self, name: &str, key: &str) -> Option<jobcache_store::EntryLock> {
        let store = self.memory().store()?;
        match store.lock(name, key, Wait::NoWait) {
            Ok(lock) => Some(lock),
            Err(e) => {
                self.warn_entry(
                    jobcache_trace::EventKind::StorageError,
                    name,
                    key,
                    e.to_string(),
                );
                None
            }
        }
    }

    /// Whether a task has waited for another holder as long as the memory's
    /// lock policy allows.
    fn waited_enough(&self, waited: Duration) -> bool {
        match self.memory().inner.lock_wait {
            Wait::NoWait => true,
            Wait::Timeout(limit) => waited >= limit,
            Wait::Forever => false,
        }
    }
}

/// A pause that needs no runtime: a short-lived thread wakes the task.
struct Sleep {
    duration: Duration,
    state: Option<Arc<Mutex<Timer>>>,
}

#[derive(Default)]
struct Timer {
    done: bool,
    waker: Option<Waker>,
}

impl Sleep {
    fn new(duration: Duration) -> Sleep {
        Sleep {
            duration,
            state: None,
        }
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let duration = self.duration;
        let state = self.state.get_or_insert_with(|| {
            let state = Arc::new(Mutex::new(Timer::default()));
            let timer = Arc::clone(&state);
            let spawned = std::thread::Builder::new()
                .name("jobcache-wait".into())
                .spawn(move || {
                    std::thread::sleep(duration);
                    let mut timer = match timer.lock() {
                        Ok(t) => t,
                        Err(poisoned) => poisoned.into_inner(),
                    };
                    timer.done = true;
                    if let Some(waker) = timer.waker.take() {
                        waker.wake();
                    }
                });
            if spawned.is_err() {
                // No thread to wait with: look again at once.
                if let Ok(mut timer) = state.lock() {
                    timer.done = true;
                }
            }
            state
        });
        let mut timer = match state.lock() {
            Ok(t) => t,
            Err(poisoned) => poisoned.into_inner(),
        };
        if timer.done {
            return Poll::Ready(());
        }
        timer.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sleep_wakes_on_a_plain_executor() {
        let started = Instant::now();
        pollster::block_on(Sleep::new(Duration::from_millis(30)));
        assert!(started.elapsed() >= Duration::from_millis(30));
    }
}
