//! [`RemoteStore`]: the [`Store`] trait over an S3-compatible bucket, with a
//! local [`FsStore`] in front.

use crate::backlog::Backlog;
use crate::meta::{self, Xxh3};
use crate::{Config, Error};
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use jobcache_store::{
    decode_namespace, encode_namespace, validate_key, DecodedNamespace, Entry, EntryInfo,
    EntryLock, EntryMeta, FsStore, Limits, LockState, Lookup, NewEntry, Payload, Published,
    Reduction, Store, StoreError, StoreExt, Verdict, Wait, WriteFn,
};
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjPath;
use object_store::{
    ClientOptions, ObjectStore, PutMode, PutOptions, PutPayload, Result as ObjResult, RetryConfig,
};
use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The folder under the prefix that holds this layout version.
const ROOT: &str = "jobcache-remote-v1";

/// A cache on an S3-compatible object store, with an optional local
/// [`FsStore`] tier in front. See the [crate docs](crate) for the layout and
/// the consistency model.
#[derive(Clone)]
pub struct RemoteStore {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    client: Arc<dyn ObjectStore>,
    root: ObjPath,
    local: Option<FsStore>,
    rt: tokio::runtime::Runtime,
    health: Health,
    /// `None`: not probed yet; `Some(false)`: the server ignores
    /// conditional puts, so claims are off.
    claims: Mutex<Option<bool>>,
    /// Entries published locally while the remote was unreachable (with a
    /// local tier only).
    backlog: Option<Backlog>,
    /// This store, for the thread that drains the backlog.
    me: Weak<Inner>,
    /// Whether the remote has answered once (the first answer drains the
    /// backlog a previous run left).
    contacted: AtomicBool,
    /// Whether the backlog should be looked at again.
    drain_pending: AtomicBool,
    /// Whether a drain is running.
    draining: AtomicBool,
    /// Whether the backlog was found full (one warning).
    backlog_full: AtomicBool,
}

impl fmt::Debug for RemoteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteStore")
            .field("url", &self.inner.config.url)
            .field("local", &self.inner.local)
            .finish_non_exhaustive()
    }
}

/// Whether the remote answers; one warning per outage.
struct Health {
    down_until: Mutex<Option<Instant>>,
    warned: AtomicBool,
}

/// How a remote operation went.
enum Remote<T> {
    Ok(T),
    /// The remote is down (now, or recently): the local tier answers.
    Down,
}

impl RemoteStore {
    /// Opens the remote cache `config` names (nothing is sent to the server
    /// yet), and its local tier if one is configured.
    pub fn open(config: Config) -> Result<RemoteStore, Error> {
        let mut builder = AmazonS3Builder::from_env().with_bucket_name(&config.bucket);
        if let Some(endpoint) = &config.endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        let mut options = ClientOptions::new()
            .with_timeout(config.request_timeout)
            .with_connect_timeout(config.connect_timeout);
        // The client options replace those `from_env` read: carry
        // AWS_ALLOW_HTTP over.
        let allow_http = config.allow_http.or_else(|| {
            std::env::var("AWS_ALLOW_HTTP")
                .ok()
                .map(|v| matches!(v.to_ascii_lowercase().as_str(), "true" | "1" | "yes"))
        });
        if let Some(allow) = allow_http {
            options = options.with_allow_http(allow);
        }
        let retry = RetryConfig {
            max_retries: config.retries,
            retry_timeout: config.request_timeout,
            ..RetryConfig::default()
        };
        let client = builder
            .with_client_options(options)
            .with_retry(retry)
            .build()
            .map_err(|source| Error::Client {
                url: config.url.clone(),
                source,
            })?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("jobcache-remote")
            .enable_all()
            .build()
            .map_err(Error::Runtime)?;
        let local = match &config.local {
            Some(dir) => Some(FsStore::create(dir).map_err(Error::Local)?),
            None => None,
        };
        let root = config
            .prefix
            .split('/')
            .filter(|p| !p.is_empty())
            .chain([ROOT])
            .collect();
        Ok(RemoteStore {
            inner: Arc::new_cyclic(|me| Inner {
                me: me.clone(),
                contacted: AtomicBool::new(false),
                config,
                client: Arc::new(client),
                root,
                rt,
                health: Health {
                    down_until: Mutex::new(None),
                    warned: AtomicBool::new(false),
                },
                claims: Mutex::new(None),
                backlog: local.as_ref().map(|l| Backlog::new(l.root())),
                drain_pending: AtomicBool::new(false),
                draining: AtomicBool::new(false),
                backlog_full: AtomicBool::new(false),
                local,
            }),
        })
    }

    /// The URL of the remote cache.
    pub fn url(&self) -> &str {
        &self.inner.config.url
    }

    /// The local tier, if any.
    pub fn local(&self) -> Option<&FsStore> {
        self.inner.local.as_ref()
    }

    /// The object store client (for tests and benchmarks that compare
    /// with plain object store calls).
    pub fn client(&self) -> Arc<dyn ObjectStore> {
        self.inner.client.clone()
    }

    /// The object holding an entry's metadata (`<prefix>/jobcache-remote-v1/
    /// entries/<namespace>/<key>.meta`).
    pub fn meta_path(&self, namespace: &str, key: &str) -> Result<ObjPath, StoreError> {
        self.inner.meta_path(namespace, key)
    }

    /// The URL of an entry's metadata object (`s3://<bucket>/<prefix>/
    /// jobcache-remote-v1/entries/<namespace>/<key>.meta`), as logs name it.
    pub fn meta_location(&self, namespace: &str, key: &str) -> Result<String, StoreError> {
        Ok(self.inner.location(&self.inner.meta_path(namespace, key)?))
    }

    /// Uploads the entries published to the local tier while the remote
    /// was unreachable (this happens by itself, in the background, at the
    /// first answer of the remote and after each outage); returns how many
    /// were uploaded.
    pub fn upload_backlog(&self) -> usize {
        self.inner.drain_backlog()
    }

    /// Whether the remote is currently taken as reachable.
    pub fn is_available(&self) -> bool {
        self.inner.available()
    }

    /// Runs a future on the store's runtime (from any thread, even one
    /// inside another runtime).
    pub fn block_on<F>(&self, f: F) -> F::Output
    where
        F: Future + Send,
        F::Output: Send,
    {
        self.inner.run(f)
    }
}

impl Inner {
    fn run<F>(&self, f: F) -> F::Output
    where
        F: Future + Send,
        F::Output: Send,
    {
        if tokio::runtime::Handle::try_current().is_ok() {
            // Inside another runtime a nested block_on would panic: block
            // a helper thread instead.
            std::thread::scope(|s| match s.spawn(|| self.rt.block_on(f)).join() {
                Ok(v) => v,
                Err(panic) => std::panic::resume_unwind(panic),
            })
        } else {
            self.rt.block_on(f)
        }
    }

    fn available(&self) -> bool {
        match *lock(&self.health.down_until) {
            Some(until) => Instant::now() >= until,
            None => true,
        }
    }

    fn failed(&self, what: &str, err: &dyn fmt::Display) {
        *lock(&self.health.down_until) = Some(Instant::now() + self.config.retry_after);
        if !self.health.warned.swap(true, Ordering::SeqCst) {
            log::warn!(
                target: "jobcache",
                "remote cache {} unreachable ({what}: {err}); calls go on with the local tier, \
                 the remote is tried again every {:?}",
                self.config.url,
                self.config.retry_after
            );
        } else {
            log::debug!(target: "jobcache", "remote cache {}: {what}: {err}", self.config.url);
        }
    }

    fn succeeded(&self) {
        let was_down = lock(&self.health.down_until).take().is_some();
        if was_down || !self.contacted.swap(true, Ordering::SeqCst) {
            self.spawn_drain();
        }
        if was_down && self.health.warned.swap(false, Ordering::SeqCst) {
            log::warn!(
                target: "jobcache",
                "remote cache {} is reachable again; publishing resumes",
                self.config.url
            );
        }
    }

    /// Runs a remote operation unless the remote is known down; a failure
    /// (other than what `ok` accepts) marks it down.
    fn remote<T, F>(&self, what: &str, f: F) -> Remote<T>
    where
        F: Future<Output = object_store::Result<T>> + Send,
        T: Send,
    {
        if !self.available() {
            return Remote::Down;
        }
        match self.run(f) {
            Ok(v) => {
                self.succeeded();
                Remote::Ok(v)
            }
            Err(e) => {
                self.failed(what, &e);
                Remote::Down
            }
        }
    }

    fn ns_dir(&self, namespace: &str) -> Result<ObjPath, StoreError> {
        let enc = encode_namespace(namespace)?;
        Ok(self.root.child("entries").child(enc))
    }

    fn meta_path(&self, namespace: &str, key: &str) -> Result<ObjPath, StoreError> {
        validate_key(key)?;
        Ok(self.ns_dir(namespace)?.child(format!("{key}.meta")))
    }

    fn payload_path(
        &self,
        namespace: &str,
        key: &str,
        checksum: u64,
    ) -> Result<ObjPath, StoreError> {
        Ok(self
            .ns_dir(namespace)?
            .child(format!("{key}.{checksum:016x}.payload")))
    }

    fn claim_path(&self, namespace: &str, key: &str) -> Result<ObjPath, StoreError> {
        validate_key(key)?;
        let enc = encode_namespace(namespace)?;
        Ok(self.root.child("claims").child(enc).child(key))
    }

    fn location(&self, path: &ObjPath) -> String {
        format!("s3://{}/{}", self.config.bucket, path)
    }

    /// Fetches and decodes the metadata object: `Ok(None)` when absent,
    /// `Err(reason)` when corrupt.
    fn fetch_meta(
        &self,
        path: &ObjPath,
    ) -> Remote<Option<std::result::Result<meta::Decoded, String>>> {
        let client = self.client.clone();
        let p = path.clone();
        self.remote("get metadata", async move {
            match client.get(&p).await {
                Ok(got) => {
                    if got.meta.size > meta::META_MAX {
                        return Ok(Some(Err(format!(
                            "metadata object of {} bytes is larger than {}",
                            got.meta.size,
                            meta::META_MAX
                        ))));
                    }
                    let bytes = got.bytes().await?;
                    Ok(Some(meta::decode(&bytes)))
                }
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(e),
            }
        })
    }

    /// Removes an entry's remote objects (metadata first, so readers stop
    /// seeing it before its payload goes).
    fn remove_remote(&self, namespace: &str, key: &str) -> Result<u64, StoreError> {
        let meta_path = self.meta_path(namespace, key)?;
        let dir = self.ns_dir(namespace)?;
        let client = self.client.clone();
        let key = key.to_string();
        let freed = self.remote("remove entry", async move {
            let listed: Vec<_> = client.list(Some(&dir)).try_collect().await?;
            let mine: Vec<_> = listed
                .into_iter()
                .filter(|o| {
                    o.location
                        .filename()
                        .is_some_and(|f| f.starts_with(&format!("{key}.")))
                })
                .collect();
            let mut freed = 0;
            if let Some(m) = mine.iter().find(|o| o.location == meta_path) {
                delete_quietly(&*client, &m.location).await?;
                freed += m.size;
            }
            for o in mine.iter().filter(|o| o.location != meta_path) {
                delete_quietly(&*client, &o.location).await?;
                freed += o.size;
            }
            Ok(freed)
        });
        match freed {
            Remote::Ok(n) => Ok(n),
            Remote::Down => Err(self.unreachable("remove entry")),
        }
    }

    fn unreachable(&self, op: &'static str) -> StoreError {
        StoreError::Io {
            op,
            path: self.config.url.clone().into(),
            source: io::Error::new(
                io::ErrorKind::NotConnected,
                "the remote cache is unreachable (see the warning logged)",
            ),
        }
    }

    /// A corrupt remote entry: logged, removed (so the next publish
    /// replaces it), and reported as a miss.
    fn corrupt(&self, namespace: &str, key: &str, path: &ObjPath, reason: String) -> Lookup {
        log::warn!(
            target: "jobcache",
            "{}: corrupt remote entry treated as missing and removed: {reason}",
            self.location(path)
        );
        let _ = self.remove_remote(namespace, key);
        Lookup::Corrupt(jobcache_store::Corruption {
            location: self.location(path),
            reason,
        })
    }

    /// Downloads a payload object into `out`, hashing each chunk as it is
    /// written (one pass over the bytes, nothing held beyond a chunk or a
    /// range); checks length and checksum.
    ///
    /// By default one streaming GET: servers that serve a range by reading
    /// the whole object (moto, some gateways) make ranged downloads many
    /// times slower. With [`Config::ranged_downloads`] the object is fetched
    /// in ranges, `parallel` at a time, written in order.
    fn download(
        &self,
        path: &ObjPath,
        len: u64,
        checksum: u64,
        out: &mut dyn Write,
    ) -> std::result::Result<(), Fetch> {
        if !self.available() {
            return Err(Fetch::Down);
        }
        let mut h = Xxh3::new();
        let mut got = 0u64;
        let mut sink = |bytes: Bytes| {
            got += bytes.len() as u64;
            if got > len {
                return Err(Fetch::Corrupt(format!(
                    "the payload object is longer than the {len} bytes recorded"
                )));
            }
            h.update(&bytes);
            out.write_all(&bytes)
                .map_err(|e| Fetch::Local(e.to_string()))
        };
        let result = self
            .drain(self.payload_stream(path, len), &mut sink)
            .and_then(|()| {
                if got != len {
                    return Err(Fetch::Corrupt(format!(
                        "the payload object has {got} bytes, {len} recorded (truncated object)"
                    )));
                }
                if h.digest() != checksum {
                    return Err(Fetch::Corrupt(format!(
                        "payload checksum {:016x} does not match the recorded {checksum:016x}",
                        h.digest()
                    )));
                }
                Ok(())
            });
        match &result {
            Ok(()) => self.succeeded(),
            Err(Fetch::Failed(e)) => self.failed("download payload", e),
            Err(_) => {}
        }
        result
    }

    /// The chunks of a payload object: one streaming GET, or ranges fetched
    /// `parallel` at a time (in order) when ranged downloads are on.
    fn payload_stream(&self, path: &ObjPath, len: u64) -> BoxStream<'static, ObjResult<Bytes>> {
        let client = self.client.clone();
        let p = path.clone();
        let part = self.config.part_size as u64;
        if !self.config.ranged_downloads || len <= part {
            return futures::stream::once(async move { client.get(&p).await })
                .map_ok(|got| got.into_stream())
                .try_flatten()
                .boxed();
        }
        let ranges: Vec<_> = (0..len.div_ceil(part))
            .map(|i| i * part..((i + 1) * part).min(len))
            .collect();
        futures::stream::iter(ranges)
            .map(move |r| {
                let client = client.clone();
                let p = p.clone();
                async move { client.get_range(&p, r).await }
            })
            .buffered(self.config.parallel)
            .boxed()
    }

    /// Feeds every chunk of `stream` to `sink` on this thread, the stream
    /// driven by the store's runtime: here when this thread is outside any
    /// runtime, else from a helper thread through a bounded channel.
    fn drain(
        &self,
        stream: BoxStream<'static, ObjResult<Bytes>>,
        sink: &mut dyn FnMut(Bytes) -> std::result::Result<(), Fetch>,
    ) -> std::result::Result<(), Fetch> {
        let fetch_error = |e: object_store::Error| match e {
            object_store::Error::NotFound { .. } => {
                Fetch::Corrupt("the payload object is missing".into())
            }
            e => Fetch::Failed(e.to_string()),
        };
        let mut stream = stream;
        if tokio::runtime::Handle::try_current().is_err() {
            return self.rt.block_on(async {
                while let Some(chunk) = stream.next().await {
                    sink(chunk.map_err(fetch_error)?)?;
                }
                Ok(())
            });
        }
        // Inside another runtime a nested block_on would panic.
        let (tx, rx) = std::sync::mpsc::sync_channel::<ObjResult<Bytes>>(16);
        std::thread::scope(|s| {
            s.spawn(|| {
                self.rt.block_on(async move {
                    while let Some(chunk) = stream.next().await {
                        let failed = chunk.is_err();
                        // A blocking send: this helper thread drives the
                        // stream itself, no runtime worker waits on it.
                        if tx.send(chunk).is_err() || failed {
                            break;
                        }
                    }
                })
            });
            // `rx` is dropped on return, which stops the helper.
            for chunk in rx {
                sink(chunk.map_err(fetch_error)?)?;
            }
            Ok(())
        })
    }

    /// Uploads an entry unless the remote has it already (another machine
    /// published it: entries are immutable, nothing to upload).
    fn send(&self, namespace: &str, key: &str, meta: &EntryMeta, payload: &mut dyn Read) -> Sent {
        let Ok(meta_path) = self.meta_path(namespace, key) else {
            return Sent::Failed;
        };
        let client = self.client.clone();
        let p = meta_path.clone();
        let present = self.remote("head metadata", async move {
            match client.head(&p).await {
                Ok(_) => Ok(true),
                Err(object_store::Error::NotFound { .. }) => Ok(false),
                Err(e) => Err(e),
            }
        });
        match present {
            Remote::Down => Sent::Failed,
            Remote::Ok(true) => Sent::Present,
            Remote::Ok(false) => match self.upload(namespace, key, meta, payload) {
                Ok(()) => Sent::Uploaded,
                Err(e) => {
                    log::debug!(
                        target: "jobcache",
                        "{}: not published remotely: {e}",
                        self.location(&meta_path)
                    );
                    Sent::Failed
                }
            },
        }
    }

    /// Records an entry the remote did not get, for the next drain of the
    /// backlog (with a local tier: without one the bytes are gone).
    fn defer(&self, namespace: &str, key: &str, meta_path: &ObjPath) {
        let Some(backlog) = &self.backlog else {
            return;
        };
        match backlog.add(namespace, key) {
            Ok(true) => {}
            Ok(false) => {
                if !self.backlog_full.swap(true, Ordering::SeqCst) {
                    log::warn!(
                        target: "jobcache",
                        "{}: the backlog of entries to upload is full ({} bytes); entries \
                         published while the remote is unreachable now stay local only",
                        backlog.path().display(),
                        crate::backlog::MAX_BYTES
                    );
                }
            }
            Err(e) => log::warn!(
                target: "jobcache",
                "{}: cannot record {} for a later upload ({e}); it stays local only",
                backlog.path().display(),
                self.location(meta_path)
            ),
        }
    }

    /// Drains the backlog from a background thread (one at a time; a
    /// request made while one runs is served when it ends).
    fn spawn_drain(&self) {
        if self.backlog.is_none() {
            return;
        }
        self.drain_pending.store(true, Ordering::SeqCst);
        if self.draining.swap(true, Ordering::SeqCst) {
            return;
        }
        let Some(me) = self.me.upgrade() else {
            self.draining.store(false, Ordering::SeqCst);
            return;
        };
        let spawned = std::thread::Builder::new()
            .name("jobcache-remote-backlog".into())
            .spawn(move || loop {
                while me.drain_pending.swap(false, Ordering::SeqCst) && me.available() {
                    me.drain_backlog();
                }
                me.draining.store(false, Ordering::SeqCst);
                if !me.drain_pending.load(Ordering::SeqCst)
                    || !me.available()
                    || me.draining.swap(true, Ordering::SeqCst)
                {
                    break;
                }
            });
        if spawned.is_err() {
            self.draining.store(false, Ordering::SeqCst);
        }
    }

    /// Uploads the entries of the backlog that the remote lacks, from the
    /// local tier; returns how many were uploaded. What cannot be sent now
    /// stays in the backlog.
    fn drain_backlog(&self) -> usize {
        let (Some(backlog), Some(local)) = (&self.backlog, &self.local) else {
            return 0;
        };
        let taken = match backlog.take() {
            Ok(t) => t,
            Err(e) => {
                log::warn!(
                    target: "jobcache",
                    "{}: cannot read the backlog of entries to upload: {e}",
                    backlog.path().display()
                );
                return 0;
            }
        };
        let mut keep = Vec::new();
        let mut sent = 0;
        for (ns, key) in &taken.entries {
            if !self.available() {
                keep.push((ns, key));
                continue;
            }
            let mut entry = match local.get(ns, key, false) {
                Ok(Lookup::Found(e)) => e,
                // Gone from the local tier (evicted, removed): nothing to
                // send.
                Ok(_) => continue,
                Err(e) => {
                    log::warn!(
                        target: "jobcache",
                        "{}: a backlog entry ({ns}/{key}) cannot be read: {e}; dropped",
                        backlog.path().display()
                    );
                    continue;
                }
            };
            let meta = entry.meta().clone();
            match self.send(ns, key, &meta, &mut *entry) {
                Sent::Uploaded => sent += 1,
                Sent::Present => {}
                Sent::Failed => keep.push((ns, key)),
            }
        }
        let kept = keep
            .iter()
            .all(|(ns, key)| matches!(backlog.add(ns, key), Ok(true)));
        if kept {
            if let Err(e) = backlog.finish(taken) {
                log::debug!(target: "jobcache", "removing a drained backlog: {e}");
            }
        }
        if sent > 0 {
            log::info!(
                target: "jobcache",
                "remote cache {}: uploaded {sent} entries published while it was unreachable",
                self.config.url
            );
        }
        sent
    }

    /// Uploads an entry: the payload object (multipart when large) if not
    /// inline, then the metadata object, which makes it visible.
    fn upload(
        &self,
        namespace: &str,
        key: &str,
        meta: &EntryMeta,
        payload: &mut dyn Read,
    ) -> std::result::Result<(), String> {
        let meta_path = self.meta_path(namespace, key).map_err(|e| e.to_string())?;
        let inline = meta.payload_len <= meta::INLINE_MAX;
        let header = meta::header(namespace, key, meta, inline);
        let object = if inline {
            let mut bytes = Vec::with_capacity(meta.payload_len as usize);
            payload
                .take(meta.payload_len)
                .read_to_end(&mut bytes)
                .map_err(|e| e.to_string())?;
            meta::encode(&header, Some(&bytes))?
        } else {
            let path = self
                .payload_path(namespace, key, meta.checksum)
                .map_err(|e| e.to_string())?;
            self.upload_payload(&path, meta.payload_len, payload)?;
            meta::encode(&header, None)?
        };
        let client = self.client.clone();
        match self.remote("put metadata", async move {
            client.put(&meta_path, PutPayload::from(object)).await
        }) {
            Remote::Ok(_) => Ok(()),
            Remote::Down => Err("the remote is unreachable".into()),
        }
    }

    fn upload_payload(
        &self,
        path: &ObjPath,
        len: u64,
        payload: &mut dyn Read,
    ) -> std::result::Result<(), String> {
        let part = self.config.part_size;
        let parallel = self.config.parallel;
        let client = self.client.clone();
        let p = path.clone();
        if !self.available() {
            return Err("the remote is unreachable".into());
        }
        let io_error = |e: io::Error| object_store::Error::Generic {
            store: "local",
            source: Box::new(e),
        };
        let done = (|| {
            if len <= part as u64 {
                let mut bytes = Vec::with_capacity(len as usize);
                payload
                    .take(len)
                    .read_to_end(&mut bytes)
                    .map_err(io_error)?;
                return self
                    .run(client.put(&p, PutPayload::from(bytes)))
                    .map(|_| ());
            }
            let upload = self.run(client.put_multipart(&p))?;
            let mut writer = object_store::WriteMultipart::new_with_chunk_size(upload, part);
            let mut left = len;
            while left > 0 {
                let n = (left as usize).min(part);
                let mut chunk = vec![0u8; n];
                if let Err(e) = payload.read_exact(&mut chunk) {
                    let _ = self.run(writer.abort());
                    return Err(io_error(e));
                }
                let w = &mut writer;
                self.run(async move {
                    w.wait_for_capacity(parallel).await?;
                    w.put(Bytes::from(chunk));
                    Ok::<_, object_store::Error>(())
                })?;
                left -= n as u64;
            }
            self.run(writer.finish()).map(|_| ())
        })();
        let done = match done {
            Ok(()) => {
                self.succeeded();
                Remote::Ok(())
            }
            Err(e) => {
                self.failed("upload payload", &e);
                Remote::Down
            }
        };
        match done {
            Remote::Ok(()) => Ok(()),
            Remote::Down => Err("the remote is unreachable".into()),
        }
    }

    /// Whether the server honours conditional creates (probed once: create
    /// one object twice; the second must fail).
    fn claims_supported(&self) -> bool {
        let mut known = lock(&self.claims);
        if let Some(k) = *known {
            return k;
        }
        let probe = self.root.child(format!("probe-{}", nonce()));
        let client = self.client.clone();
        let p = probe.clone();
        let outcome = self.remote("probe conditional puts", async move {
            let create = || PutOptions {
                mode: PutMode::Create,
                ..PutOptions::default()
            };
            let first = client
                .put_opts(&p, Bytes::from_static(b"probe").into(), create())
                .await;
            let result = match first {
                Err(object_store::Error::NotImplemented) => Ok(false),
                Err(e) => Err(e),
                Ok(_) => match client
                    .put_opts(&p, Bytes::from_static(b"probe").into(), create())
                    .await
                {
                    Ok(_) => Ok(false),
                    Err(object_store::Error::AlreadyExists { .. })
                    | Err(object_store::Error::Precondition { .. }) => Ok(true),
                    Err(object_store::Error::NotImplemented) => Ok(false),
                    Err(e) => Err(e),
                },
            };
            let _ = client.delete(&p).await;
            result
        });
        match outcome {
            Remote::Ok(supported) => {
                if !supported {
                    log::warn!(
                        target: "jobcache",
                        "remote cache {}: the server ignores conditional puts; machines may \
                         compute the same call at once (the cache stays correct)",
                        self.config.url
                    );
                }
                *known = Some(supported);
                supported
            }
            Remote::Down => false,
        }
    }

    /// Tries to take the claim of an entry, waiting as `wait` says.
    fn claim(self: &Arc<Self>, namespace: &str, key: &str, wait: Wait) -> ClaimOutcome {
        let Ok(path) = self.claim_path(namespace, key) else {
            return ClaimOutcome::Skipped;
        };
        if !self.available() || !self.claims_supported() {
            return ClaimOutcome::Skipped;
        }
        let start = Instant::now();
        let limit = match wait {
            Wait::NoWait => Some(Duration::ZERO),
            Wait::Timeout(d) => Some(d),
            Wait::Forever => None,
        };
        let owner = nonce();
        loop {
            let body = claim_body(self.config.claim_ttl, &owner);
            let client = self.client.clone();
            let p = path.clone();
            let created = self.remote("put claim", async move {
                let opts = PutOptions {
                    mode: PutMode::Create,
                    ..PutOptions::default()
                };
                match client.put_opts(&p, Bytes::from(body).into(), opts).await {
                    Ok(_) => Ok(true),
                    Err(object_store::Error::AlreadyExists { .. })
                    | Err(object_store::Error::Precondition { .. }) => Ok(false),
                    Err(e) => Err(e),
                }
            });
            match created {
                Remote::Down => return ClaimOutcome::Skipped,
                Remote::Ok(true) => return ClaimOutcome::Held(Claim::held(self, path, owner)),
                Remote::Ok(false) => {}
            }
            // Someone holds it: stale (expired, or unreadable) ones are
            // taken over.
            let client = self.client.clone();
            let p = path.clone();
            let expiry = self.remote("get claim", async move {
                match client.get(&p).await {
                    Ok(got) => {
                        let bytes = got.bytes().await?;
                        Ok(Some(parse_expiry(&bytes)))
                    }
                    Err(object_store::Error::NotFound { .. }) => Ok(None),
                    Err(e) => Err(e),
                }
            });
            match expiry {
                Remote::Down => return ClaimOutcome::Skipped,
                Remote::Ok(None) => continue,
                Remote::Ok(Some(exp)) if exp.is_none_or(|e| e <= now_ms()) => {
                    log::info!(
                        target: "jobcache",
                        "{}: taking over a stale claim",
                        self.location(&path)
                    );
                    let client = self.client.clone();
                    let p = path.clone();
                    if let Remote::Down =
                        self.remote(
                            "remove claim",
                            async move { delete_quietly(&*client, &p).await },
                        )
                    {
                        return ClaimOutcome::Skipped;
                    }
                    continue;
                }
                Remote::Ok(Some(_)) => {}
            }
            if limit.is_some_and(|l| start.elapsed() >= l) {
                return ClaimOutcome::Busy;
            }
            let mut pause = self.config.claim_poll;
            if let Some(l) = limit {
                pause = pause.min(l.saturating_sub(start.elapsed()));
            }
            std::thread::sleep(pause);
        }
    }

    /// The remote lookup, filling the local tier.
    fn get_remote(&self, namespace: &str, key: &str, verify: bool) -> Result<Lookup, StoreError> {
        let path = self.meta_path(namespace, key)?;
        let decoded = match self.fetch_meta(&path) {
            Remote::Down | Remote::Ok(None) => return Ok(Lookup::Missing),
            Remote::Ok(Some(Err(reason))) => return Ok(self.corrupt(namespace, key, &path, reason)),
            Remote::Ok(Some(Ok(d))) => d,
        };
        if decoded.header.namespace != namespace || decoded.header.key != key {
            let reason = format!(
                "the metadata names {}/{}",
                decoded.header.namespace, decoded.header.key
            );
            return Ok(self.corrupt(namespace, key, &path, reason));
        }
        let new_entry = NewEntry {
            compute_duration: decoded.meta.compute_duration,
            fields: (*decoded.meta.fields).clone(),
        };
        let location = self.location(&path);
        if let Some(bytes) = decoded.inline {
            // Checked while decoding.
            if let Some(local) = &self.local {
                if let Ok(p) = local.publish_bytes(namespace, key, &new_entry, &bytes) {
                    return local_hit(local, namespace, key, &p, decoded.meta.checksum, verify);
                }
            }
            let range = 0..bytes.len();
            let entry = Entry::new(
                decoded.meta,
                Payload::Memory { buf: bytes, range },
                None,
                location,
                false,
            )
            .checked();
            return Ok(Lookup::Found(Box::new(entry)));
        }
        let payload = self.payload_path(namespace, key, decoded.meta.checksum)?;
        let (len, sum) = (decoded.meta.payload_len, decoded.meta.checksum);
        let mut failure = None;
        if let Some(local) = &self.local {
            let published = local.publish(namespace, key, &new_entry, &mut |w: &mut dyn Write| {
                self.download(&payload, len, sum, w).map_err(|e| {
                    let message = e.to_string();
                    failure = Some(e);
                    io::Error::other(message)
                })
            });
            return match (published, failure) {
                (Ok(p), _) => local_hit(local, namespace, key, &p, sum, verify),
                (Err(_), Some(Fetch::Corrupt(reason))) => {
                    Ok(self.corrupt(namespace, key, &payload, reason))
                }
                (Err(_), Some(Fetch::Down | Fetch::Failed(_))) => Ok(Lookup::Missing),
                (Err(e), _) => Err(e),
            };
        }
        let mut buf = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
        match self.download(&payload, len, sum, &mut buf) {
            Ok(()) => {
                let range = 0..buf.len();
                let entry = Entry::new(
                    decoded.meta,
                    Payload::Memory { buf, range },
                    None,
                    location,
                    false,
                )
                // Checked while downloading.
                .checked();
                Ok(Lookup::Found(Box::new(entry)))
            }
            Err(Fetch::Corrupt(reason)) => Ok(self.corrupt(namespace, key, &payload, reason)),
            Err(Fetch::Local(e)) => Err(StoreError::Io {
                op: "download payload",
                path: location.into(),
                source: io::Error::other(e),
            }),
            Err(Fetch::Down | Fetch::Failed(_)) => Ok(Lookup::Missing),
        }
    }

    /// Every entry of a namespace on the remote.
    fn remote_entries(&self, namespace: &str) -> Result<Vec<EntryInfo>, StoreError> {
        let dir = self.ns_dir(namespace)?;
        let client = self.client.clone();
        let listed = match self.remote("list entries", async move {
            client.list(Some(&dir)).try_collect::<Vec<_>>().await
        }) {
            Remote::Ok(l) => l,
            Remote::Down => return Err(self.unreachable("list entries")),
        };
        let mut sizes: BTreeMap<String, u64> = BTreeMap::new();
        let mut metas = Vec::new();
        for o in &listed {
            let Some(name) = o.location.filename() else {
                continue;
            };
            let Some((key, rest)) = name.split_once('.') else {
                continue;
            };
            *sizes.entry(key.to_string()).or_default() += o.size;
            if rest == "meta" {
                metas.push((key.to_string(), o.clone()));
            }
        }
        let mut out = Vec::new();
        for (key, o) in metas {
            let meta = match self.fetch_meta(&o.location) {
                Remote::Ok(Some(Ok(d))) => Ok(d.meta),
                Remote::Ok(Some(Err(reason))) => Err(reason),
                Remote::Ok(None) => continue,
                Remote::Down => return Err(self.unreachable("list entries")),
            };
            out.push(EntryInfo {
                namespace: namespace.to_string(),
                stored_bytes: sizes.get(&key).copied().unwrap_or(o.size),
                key,
                last_access: SystemTime::from(o.last_modified),
                meta,
            });
        }
        Ok(out)
    }
}

/// Whether an entry reached the remote.
enum Sent {
    Uploaded,
    /// The remote had it already.
    Present,
    /// Not sent (the remote is unreachable, or the upload failed).
    Failed,
}

/// Why a download did not complete.
#[derive(Debug)]
enum Fetch {
    Down,
    Failed(String),
    Corrupt(String),
    Local(String),
}

impl fmt::Display for Fetch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fetch::Down => f.write_str("the remote is unreachable"),
            Fetch::Failed(e) => write!(f, "download failed: {e}"),
            Fetch::Corrupt(e) => write!(f, "corrupt remote payload: {e}"),
            Fetch::Local(e) => write!(f, "writing the local copy failed: {e}"),
        }
    }
}

enum ClaimOutcome {
    Held(Claim),
    Busy,
    Skipped,
}

/// A held claim object, deleted when dropped. While it is held, a task
/// on the store's runtime pushes its expiry forward every third of the
/// claim time, so a long computation keeps it.
struct Claim {
    inner: Arc<Inner>,
    path: ObjPath,
    refresh: tokio::task::JoinHandle<()>,
}

impl Claim {
    fn held(inner: &Arc<Inner>, path: ObjPath, owner: String) -> Claim {
        let client = inner.client.clone();
        let ttl = inner.config.claim_ttl;
        let p = path.clone();
        let location = inner.location(&path);
        let refresh = inner.rt.spawn(async move {
            let every = (ttl / 3).max(Duration::from_millis(10));
            loop {
                tokio::time::sleep(every).await;
                // Still ours? A claim taken over (this process stalled past
                // its expiry) is left to its new owner.
                let current = match client.get(&p).await {
                    Ok(got) => got.bytes().await.ok(),
                    Err(object_store::Error::NotFound { .. }) => return,
                    Err(_) => None,
                };
                let Some(current) = current else {
                    // Unreachable now: tried again at the next tick.
                    continue;
                };
                if parse_owner(&current).as_deref() != Some(owner.as_str()) {
                    log::info!(
                        target: "jobcache",
                        "{location}: the claim was taken over by another machine"
                    );
                    return;
                }
                let body = claim_body(ttl, &owner);
                if let Err(e) = client.put(&p, Bytes::from(body).into()).await {
                    log::debug!(target: "jobcache", "{location}: refreshing the claim: {e}");
                }
            }
        });
        Claim {
            inner: inner.clone(),
            path,
            refresh,
        }
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        // Stopped before the claim is removed, so no refresh recreates it.
        self.refresh.abort();
        let refresh = &mut self.refresh;
        self.inner.run(async move {
            let _ = refresh.await;
        });
        let client = self.inner.client.clone();
        let p = self.path.clone();
        let _ = self.inner.remote(
            "remove claim",
            async move { delete_quietly(&*client, &p).await },
        );
    }
}

/// What a [`RemoteStore`] lock guard holds.
struct Held {
    _local: Option<EntryLock>,
    _claim: Option<Claim>,
}

async fn delete_quietly(client: &dyn ObjectStore, path: &ObjPath) -> object_store::Result<()> {
    match client.delete(path).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

/// The body of a claim object: its expiry (now plus `ttl`) and owner.
fn claim_body(ttl: Duration, owner: &str) -> String {
    let expires = now_ms() + ttl.as_millis() as u64;
    serde_json::json!({ "expires_ms": expires, "owner": owner }).to_string()
}

fn parse_owner(bytes: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    Some(v.get("owner")?.as_str()?.to_string())
}

fn parse_expiry(bytes: &[u8]) -> Option<u64> {
    let v: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    v.get("expires_ms")?.as_u64()
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A name no other caller picks at the same time.
pub(crate) fn nonce() -> String {
    use std::sync::atomic::AtomicU64;
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{:x}-{}-{n}", t, std::process::id())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Store for RemoteStore {
    fn get(&self, namespace: &str, key: &str, verify_payload: bool) -> Result<Lookup, StoreError> {
        if let Some(local) = &self.inner.local {
            if let Lookup::Found(e) = local.get(namespace, key, verify_payload)? {
                return Ok(Lookup::Found(e));
            }
        }
        self.inner.get_remote(namespace, key, verify_payload)
    }

    fn publish(
        &self,
        namespace: &str,
        key: &str,
        entry: &NewEntry,
        write: WriteFn<'_>,
    ) -> Result<Published, StoreError> {
        let inner = &self.inner;
        let meta_path = inner.meta_path(namespace, key)?;
        let (published, mut payload): (Published, Box<dyn Read>) = match &inner.local {
            Some(local) => {
                let published = local.publish(namespace, key, entry, write)?;
                let found = local.get(namespace, key, false)?.found();
                let Some(found) = found else {
                    return Ok(published);
                };
                (published, Box::new(found))
            }
            None => {
                let (bytes, meta) = entry.buffer(namespace, key, write)?;
                let published = Published {
                    meta,
                    already_present: false,
                };
                (published, Box::new(io::Cursor::new(bytes)))
            }
        };
        if let Sent::Failed = inner.send(namespace, key, &published.meta, &mut payload) {
            inner.defer(namespace, key, &meta_path);
        }
        Ok(published)
    }

    fn lock(&self, namespace: &str, key: &str, wait: Wait) -> Result<EntryLock, StoreError> {
        let start = Instant::now();
        let local = match &self.inner.local {
            Some(local) => {
                let guard = local.lock(namespace, key, wait)?;
                if guard.state() == LockState::TimedOut {
                    return Ok(guard);
                }
                Some(guard)
            }
            None => None,
        };
        let left = match wait {
            Wait::Timeout(d) => Wait::Timeout(d.saturating_sub(start.elapsed())),
            w => w,
        };
        match self.inner.claim(namespace, key, left) {
            ClaimOutcome::Held(claim) => Ok(EntryLock::new(
                LockState::Acquired,
                start.elapsed(),
                Some(Box::new(Held {
                    _local: local,
                    _claim: Some(claim),
                })),
            )),
            ClaimOutcome::Busy => Ok(EntryLock::new(LockState::TimedOut, start.elapsed(), None)),
            ClaimOutcome::Skipped => {
                let state = local.as_ref().map_or(LockState::Unavailable, |l| l.state());
                Ok(EntryLock::new(
                    state,
                    start.elapsed(),
                    Some(Box::new(Held {
                        _local: local,
                        _claim: None,
                    })),
                ))
            }
        }
    }

    fn remove(&self, namespace: &str, key: &str) -> Result<u64, StoreError> {
        let mut freed = 0;
        if let Some(local) = &self.inner.local {
            freed += local.remove(namespace, key)?;
        }
        Ok(freed.max(self.inner.remove_remote(namespace, key)?))
    }

    fn remove_namespace(&self, namespace: &str) -> Result<u64, StoreError> {
        if let Some(local) = &self.inner.local {
            local.remove_namespace(namespace)?;
        }
        let dir = self.inner.ns_dir(namespace)?;
        let client = self.inner.client.clone();
        match self.inner.remote("remove namespace", async move {
            let listed: Vec<_> = client.list(Some(&dir)).try_collect().await?;
            // Metadata first: readers stop seeing entries before payloads go.
            let (metas, rest): (Vec<_>, Vec<_>) = listed
                .into_iter()
                .partition(|o| o.location.filename().is_some_and(|f| f.ends_with(".meta")));
            let mut freed = 0;
            for o in metas.iter().chain(&rest) {
                delete_quietly(&*client, &o.location).await?;
                freed += o.size;
            }
            Ok(freed)
        }) {
            Remote::Ok(n) => Ok(n),
            Remote::Down => Err(self.inner.unreachable("remove namespace")),
        }
    }

    fn namespaces(&self) -> Result<Vec<String>, StoreError> {
        let inner = &self.inner;
        let dir = inner.root.child("entries");
        let client = inner.client.clone();
        let listed = match inner.remote("list namespaces", async move {
            client.list_with_delimiter(Some(&dir)).await
        }) {
            Remote::Ok(l) => l,
            Remote::Down => return Err(inner.unreachable("list namespaces")),
        };
        let mut out = Vec::new();
        for prefix in listed.common_prefixes {
            let Some(name) = prefix.parts().last() else {
                continue;
            };
            match decode_namespace(name.as_ref()) {
                Some(DecodedNamespace::Full(ns)) => out.push(ns),
                Some(DecodedNamespace::Cut) => {
                    // The full name is in any of its metadata objects.
                    let client = inner.client.clone();
                    let first = match inner.remote("list namespace", async move {
                        let l: Vec<_> = client.list(Some(&prefix)).try_collect().await?;
                        Ok(l.into_iter()
                            .find(|o| o.location.filename().is_some_and(|f| f.ends_with(".meta"))))
                    }) {
                        Remote::Ok(f) => f,
                        Remote::Down => return Err(inner.unreachable("list namespaces")),
                    };
                    if let Some(o) = first {
                        if let Remote::Ok(Some(Ok(d))) = inner.fetch_meta(&o.location) {
                            out.push(d.header.namespace);
                        }
                    }
                }
                None => {}
            }
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    fn entries(&self, namespace: &str) -> Result<Vec<EntryInfo>, StoreError> {
        self.inner.remote_entries(namespace)
    }

    /// Checks a remote entry from the metadata its listing read: its payload
    /// object is downloaded in full (bypassing the local tier); a corrupt
    /// entry is removed.
    fn check_entry(&self, info: &EntryInfo) -> Result<Verdict, StoreError> {
        let meta = match &info.meta {
            Err(reason) => {
                let path = self.inner.meta_path(&info.namespace, &info.key)?;
                let _ = self
                    .inner
                    .corrupt(&info.namespace, &info.key, &path, reason.clone());
                return Ok(Verdict::Corrupt(reason.clone()));
            }
            Ok(meta) if meta.payload_len <= meta::INLINE_MAX => return Ok(Verdict::Ok),
            Ok(meta) => meta,
        };
        let path = self
            .inner
            .payload_path(&info.namespace, &info.key, meta.checksum)?;
        match self
            .inner
            .download(&path, meta.payload_len, meta.checksum, &mut io::sink())
        {
            Ok(()) => Ok(Verdict::Ok),
            Err(Fetch::Corrupt(reason)) => {
                let _ = self
                    .inner
                    .corrupt(&info.namespace, &info.key, &path, reason.clone());
                Ok(Verdict::Corrupt(reason))
            }
            Err(e) => Err(StoreError::Io {
                op: "verify",
                path: self.inner.location(&path).into(),
                source: io::Error::other(e.to_string()),
            }),
        }
    }

    /// Applies size limits to the local tier only: the remote is shared,
    /// and pruned on purpose (`jobcache gc`, [`StoreExt::reduce_size`]).
    fn apply_limits(&self, limits: &Limits) -> Result<Reduction, StoreError> {
        match &self.inner.local {
            Some(local) => local.apply_limits(limits),
            None => Ok(Reduction::default()),
        }
    }
}

/// The local tier's entry just filled from the remote: one whose bytes this
/// process wrote after checking them (`sum`) is returned checked, not read a
/// second time; one another writer published first is looked up as usual.
fn local_hit(
    local: &FsStore,
    namespace: &str,
    key: &str,
    published: &Published,
    sum: u64,
    verify: bool,
) -> Result<Lookup, StoreError> {
    if published.already_present || published.meta.checksum != sum {
        return local.get(namespace, key, verify);
    }
    Ok(match local.get(namespace, key, false)? {
        Lookup::Found(e) => Lookup::Found(Box::new(e.checked())),
        other => other,
    })
}
