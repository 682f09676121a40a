//! The tree hash of a long byte run (ENCODING.md, version 3): BLAKE3 of each
//! [`CHUNK`]-byte piece, computed on several threads, then SHA-256 of the
//! piece digests in order followed by the run's length. BLAKE3 for the
//! pieces because they are nearly all of the work and it runs several times
//! faster than SHA-256 per core; the root stays SHA-256, like the rest of
//! the digest.
//!
//! A run arrives in two ways: as owned chunk buffers filled by the encoder
//! while it walks a value ([`Tree::push_owned`], hashed by a small pool of
//! worker threads while the encoder goes on), or as a borrowed slice already
//! in memory ([`Tree::push_slice`], hashed in place by scoped threads, no
//! copy). Either way each chunk's digest lands at its index, so the result
//! does not depend on the number of threads or on which thread hashed what.

use sha2::{Digest as _, Sha256};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;

use crate::Error;

/// The size of one chunk of a run, and the shortest run hashed as a tree.
pub(crate) const CHUNK: usize = 1 << 20;

/// Room past [`CHUNK`] in a chunk buffer, so that the element that crosses
/// the boundary does not make the buffer grow.
const SLACK: usize = 256;

/// Chunks handed to the pool per worker before the encoder waits for one.
const QUEUED_PER_WORKER: usize = 2;

type ChunkDigest = [u8; 32];

/// The threads a [`crate::Hasher`] uses unless told otherwise: the cores
/// this process may run on.
pub(crate) fn default_threads() -> usize {
    static THREADS: OnceLock<usize> = OnceLock::new();
    *THREADS.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// The digest of one chunk: BLAKE3-256 (version 3; SHA-256 in version 2).
fn digest(chunk: &[u8]) -> ChunkDigest {
    *blake3::hash(chunk).as_bytes()
}

/// The tree state of one run.
pub(crate) struct Tree {
    threads: usize,
    /// Chunk digests by index; those still being hashed by the pool are
    /// zero until their result comes back.
    digests: Vec<ChunkDigest>,
    /// Bytes of the run in the chunks pushed so far.
    len: u64,
    pool: Option<Pool>,
    /// Set when a worker went away with a chunk: the digest would be wrong.
    broken: bool,
    /// Emptied chunk buffers, reused so a long run allocates (and faults
    /// in) only a few.
    spare: Vec<Vec<u8>>,
}

impl Tree {
    pub(crate) fn new(threads: usize) -> Tree {
        Tree {
            threads: threads.max(1),
            digests: Vec::new(),
            len: 0,
            pool: None,
            broken: false,
            spare: Vec::new(),
        }
    }

    /// An empty buffer with room for a chunk.
    pub(crate) fn buffer(&mut self) -> Vec<u8> {
        if let Some(pool) = &mut self.pool {
            while let Ok(done) = pool.done.try_recv() {
                pool.in_flight -= 1;
                self.spare.push(store(&mut self.digests, done));
            }
        }
        match self.spare.pop() {
            Some(mut buf) => {
                buf.clear();
                buf
            }
            None => Vec::with_capacity(CHUNK + SLACK),
        }
    }

    /// Adds one full chunk, hashed by the pool (or here, with one thread).
    pub(crate) fn push_owned(&mut self, chunk: Vec<u8>) {
        let index = self.digests.len();
        self.digests.push([0; 32]);
        self.len += chunk.len() as u64;
        if self.threads > 1 && self.pool.is_none() {
            self.pool = Pool::start(self.threads);
        }
        let Some(pool) = &mut self.pool else {
            self.digests[index] = digest(&chunk);
            self.spare.push(chunk);
            return;
        };
        while pool.in_flight >= pool.capacity {
            match pool.done.recv() {
                Ok(done) => {
                    pool.in_flight -= 1;
                    self.spare.push(store(&mut self.digests, done));
                }
                Err(_) => {
                    self.broken = true;
                    break;
                }
            }
        }
        let Some(jobs) = &pool.jobs else { return };
        match jobs.send((index, chunk)) {
            Ok(()) => pool.in_flight += 1,
            // No worker left: hash it here.
            Err(mpsc::SendError((_, chunk))) => {
                self.digests[index] = digest(&chunk);
                self.spare.push(chunk);
            }
        }
    }

    /// Adds the chunks of `data` (whole chunks, but for the last piece of a
    /// run), hashed in place on up to `threads` threads. Each thread takes
    /// the next chunk not yet taken, so a thread slowed down by the machine
    /// does not hold the others up.
    pub(crate) fn push_slice(&mut self, data: &[u8]) {
        let first = self.digests.len();
        self.len += data.len() as u64;
        let chunks: Vec<&[u8]> = data.chunks(CHUNK).collect();
        self.digests.resize(first + chunks.len(), [0; 32]);
        let helpers = self.threads.min(chunks.len()).saturating_sub(1);
        if helpers == 0 {
            for (slot, chunk) in self.digests[first..].iter_mut().zip(&chunks) {
                *slot = digest(chunk);
            }
            return;
        }
        let next = AtomicUsize::new(0);
        let take = || {
            let mut done = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(chunk) = chunks.get(i) else {
                    return done;
                };
                done.push((i, digest(chunk)));
            }
        };
        let results: Vec<(usize, ChunkDigest)> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..helpers)
                .filter_map(|_| {
                    std::thread::Builder::new()
                        .name("jobcache-hash".into())
                        .spawn_scoped(scope, take)
                        .ok()
                })
                .collect();
            // This thread takes chunks too, until none is left; a helper
            // that could not start simply takes none.
            let mut results = take();
            for handle in handles {
                // A helper that panicked: the chunks it took are hashed
                // again below.
                if let Ok(done) = handle.join() {
                    results.extend(done);
                }
            }
            results
        });
        let mut hashed = vec![false; chunks.len()];
        for (i, d) in results {
            self.digests[first + i] = d;
            hashed[i] = true;
        }
        for (i, chunk) in chunks.iter().enumerate() {
            if !hashed[i] {
                self.digests[first + i] = digest(chunk);
            }
        }
    }

    /// Adds the last, possibly short, piece of the run (if any), waits for
    /// the pool and returns the root: SHA-256 of the chunk digests in order,
    /// then the run's length as a u64 little-endian.
    pub(crate) fn finish(mut self, last: &[u8]) -> Result<ChunkDigest, Error> {
        if !last.is_empty() {
            self.len += last.len() as u64;
            self.digests.push(digest(last));
        }
        if let Some(mut pool) = self.pool.take() {
            drop(pool.jobs.take());
            while pool.in_flight > 0 {
                match pool.done.recv() {
                    Ok(done) => {
                        pool.in_flight -= 1;
                        store(&mut self.digests, done);
                    }
                    Err(_) => {
                        self.broken = true;
                        break;
                    }
                }
            }
            for worker in pool.workers {
                self.broken |= worker.join().is_err();
            }
        }
        if self.broken {
            return Err(Error::Serialize(
                "a hashing thread stopped before the value was hashed".into(),
            ));
        }
        Ok(self.root())
    }

    fn root(&self) -> ChunkDigest {
        let mut root = Sha256::new();
        for d in &self.digests {
            root.update(d);
        }
        root.update(self.len.to_le_bytes());
        root.finalize().into()
    }
}

/// The tree root of a run already in memory, its chunks hashed in place on
/// up to `threads` scoped threads (joined before this returns, so nothing
/// can be lost).
pub(crate) fn slice_root(data: &[u8], threads: usize) -> ChunkDigest {
    let mut tree = Tree::new(threads);
    tree.push_slice(data);
    tree.root()
}

/// Records a finished chunk's digest; gives its buffer back.
fn store(digests: &mut [ChunkDigest], (index, d, buf): Done) -> Vec<u8> {
    if let Some(slot) = digests.get_mut(index) {
        *slot = d;
    }
    buf
}

type Job = (usize, Vec<u8>);
type Done = (usize, ChunkDigest, Vec<u8>);

/// Worker threads hashing owned chunks; they share one queue of jobs.
struct Pool {
    jobs: Option<SyncSender<Job>>,
    done: Receiver<Done>,
    workers: Vec<JoinHandle<()>>,
    in_flight: usize,
    capacity: usize,
}

impl Pool {
    /// `None` when not even one thread could be started.
    fn start(threads: usize) -> Option<Pool> {
        let capacity = QUEUED_PER_WORKER * threads;
        let (jobs, queue) = mpsc::sync_channel::<Job>(capacity);
        let (finished, done) = mpsc::channel::<Done>();
        let queue = Arc::new(Mutex::new(queue));
        let workers: Vec<JoinHandle<()>> = (0..threads)
            .filter_map(|_| {
                let queue = Arc::clone(&queue);
                let finished = finished.clone();
                std::thread::Builder::new()
                    .name("jobcache-hash".into())
                    .spawn(move || work(&queue, &finished))
                    .ok()
            })
            .collect();
        if workers.is_empty() {
            return None;
        }
        Some(Pool {
            jobs: Some(jobs),
            done,
            workers,
            in_flight: 0,
            capacity,
        })
    }
}

fn work(queue: &Mutex<Receiver<Job>>, finished: &mpsc::Sender<Done>) {
    loop {
        // The lock is held only to take a job, not while hashing it.
        let job = match queue.lock() {
            Ok(queue) => queue.recv(),
            Err(_) => return,
        };
        let Ok((index, chunk)) = job else { return };
        let d = digest(&chunk);
        if finished.send((index, d, chunk)).is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(data: &[u8]) -> ChunkDigest {
        let mut root = Sha256::new();
        for c in data.chunks(CHUNK) {
            root.update(blake3::hash(c).as_bytes());
        }
        root.update((data.len() as u64).to_le_bytes());
        root.finalize().into()
    }

    #[test]
    fn owned_and_in_place_chunks_give_one_root_whatever_the_threads() {
        let data: Vec<u8> = (0..5 * CHUNK + 17).map(|i| (i * 31 % 251) as u8).collect();
        let expected = reference(&data);
        for threads in [1, 2, 3, 8] {
            let mut tree = Tree::new(threads);
            let (head, rest) = data.split_at(2 * CHUNK);
            for c in head.chunks(CHUNK) {
                let mut buf = tree.buffer();
                buf.extend_from_slice(c);
                tree.push_owned(buf);
            }
            let whole = rest.len() / CHUNK * CHUNK;
            tree.push_slice(&rest[..whole]);
            assert_eq!(tree.finish(&rest[whole..]).unwrap(), expected, "{threads}");

            assert_eq!(slice_root(&data, threads), expected, "{threads}");
        }
    }
}
