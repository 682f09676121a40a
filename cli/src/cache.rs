//! Opening a cache directory and finding functions and entries in it.

use crate::error::{CliError, Result};
use jobcache_store::{
    EntryInfo, FsStore, Location, PackDamage, Store, StoreError, Verdict, VerifyReport,
};
use std::path::{Path, PathBuf};

// Names written by jobcache-memo (`jobcache_memo::JOURNAL_FILE` and
// `jobcache_memo::fields`), repeated here because the command line reads
// caches through the store and trace crates (of memo, only `why`, which
// `jobcache why` shares so that it says what a miss logs).
/// The run journal's file name in the cache directory.
pub const JOURNAL_FILE: &str = "journal.jsonl";
/// Metadata field: the function's version.
pub const FIELD_VERSION: &str = "version";
/// Metadata field: the argument summary.
pub const FIELD_ARGS: &str = "args";
/// Metadata field: captured standard output.
pub const FIELD_STDOUT: &str = "stdout";
/// Metadata field: captured standard error.
pub const FIELD_STDERR: &str = "stderr";
/// Metadata field: the function's name.
pub const FIELD_FUNCTION: &str = "function";

// From store/LAYOUT.md: an entry directory holds `meta` and, unless the
// payload is inline, `payload`.
/// The payload file in an entry directory.
pub const PAYLOAD_FILE: &str = "payload";

/// Characters of a digest shown in tables.
pub const SHORT: usize = 12;

/// The store of an open cache: a directory, or a remote cache
/// (`s3://bucket/prefix`). Derefs to the `Store` trait; the few operations
/// only a directory has are methods here.
#[derive(Debug)]
pub enum Backend {
    /// A cache directory.
    Fs(Box<FsStore>),
    /// A remote cache on S3-compatible object storage.
    #[cfg(feature = "remote")]
    Remote(jobcache_object_store::RemoteStore),
}

impl std::ops::Deref for Backend {
    type Target = dyn Store;
    fn deref(&self) -> &(dyn Store + 'static) {
        match self {
            Backend::Fs(s) => &**s,
            #[cfg(feature = "remote")]
            Backend::Remote(r) => r,
        }
    }
}

impl Backend {
    /// Where an entry is: its directory, or its metadata object's URL.
    pub fn entry_dir(&self, namespace: &str, key: &str) -> Result<PathBuf> {
        match self {
            Backend::Fs(s) => Ok(s.entry_dir(namespace, key)?),
            #[cfg(feature = "remote")]
            Backend::Remote(r) => Ok(PathBuf::from(r.meta_location(namespace, key)?)),
        }
    }

    /// Where an entry lives: its directory or its pack record (a cache
    /// directory), or its metadata object's URL (a remote cache). An entry
    /// that is neither packed nor a directory (removed meanwhile) is named
    /// by the directory it would have.
    pub fn locate(&self, namespace: &str, key: &str) -> Result<Location> {
        // (A match, not `if let`: without the `remote` feature `Fs` is the
        // only variant.)
        match self {
            Backend::Fs(s) => {
                if let Some(l) = s.locate(namespace, key)? {
                    return Ok(l);
                }
            }
            #[cfg(feature = "remote")]
            Backend::Remote(_) => {}
        }
        Ok(Location::Directory(self.entry_dir(namespace, key)?))
    }

    /// The damaged records and torn tails of a directory's packs (a remote
    /// cache has no packs).
    pub fn pack_damage(&self) -> Result<Vec<PackDamage>> {
        match self {
            Backend::Fs(s) => Ok(s.pack_damage()?),
            #[cfg(feature = "remote")]
            Backend::Remote(_) => Ok(Vec::new()),
        }
    }

    /// Rewrites a directory's damaged packs without their damage.
    pub fn repair_packs(&self) -> Result<()> {
        match self {
            Backend::Fs(s) => s.repair_packs().map(|_| ()).map_err(Into::into),
            #[cfg(feature = "remote")]
            Backend::Remote(_) => Ok(()),
        }
    }

    /// Checks one entry in full. On a remote cache a corrupt entry is
    /// removed as it is found.
    pub fn check(&self, namespace: &str, key: &str) -> Result<Verdict> {
        match self {
            Backend::Fs(s) => Ok(s.check(namespace, key)?),
            #[cfg(feature = "remote")]
            Backend::Remote(r) => match r.get(namespace, key, true)? {
                jobcache_store::Lookup::Found(mut e) => match e.verify() {
                    Ok(()) => Ok(Verdict::Ok),
                    Err(StoreError::Corrupt { reason, .. }) => Ok(Verdict::Corrupt(reason)),
                    Err(e) => Err(e.into()),
                },
                jobcache_store::Lookup::Missing => Ok(Verdict::Missing),
                jobcache_store::Lookup::Corrupt(c) => Ok(Verdict::Corrupt(c.reason)),
            },
        }
    }

    /// Rebuilds a directory's index (a remote cache has none).
    pub fn rebuild_index(&self) -> Result<()> {
        match self {
            Backend::Fs(s) => Ok(s.rebuild_index()?),
            #[cfg(feature = "remote")]
            Backend::Remote(_) => Ok(()),
        }
    }

    /// The quick check of a directory's metadata.
    pub fn verify_quick(
        &self,
        progress: &mut dyn FnMut(&EntryInfo, &Verdict),
    ) -> Result<VerifyReport> {
        match self {
            Backend::Fs(s) => Ok(s.verify_quick(progress)?),
            #[cfg(feature = "remote")]
            Backend::Remote(_) => Err(CliError::Usage(
                "--quick checks a cache directory's metadata; on a remote cache run `jobcache verify` without it".into(),
            )),
        }
    }
}

/// An open cache: its store and where its journal is.
#[derive(Debug)]
pub struct Cache {
    /// The directory (or the remote cache's URL).
    pub dir: PathBuf,
    /// The store in it.
    pub store: Backend,
}

impl Cache {
    /// Whether this is a remote cache (no journal, no directory).
    pub fn is_remote(&self) -> bool {
        !matches!(self.store, Backend::Fs(_))
    }

    /// Opens the cache at `dir`, refusing a missing directory or one that
    /// is not a cache; `s3://bucket/prefix` opens a remote cache.
    pub fn open(dir: &Path) -> Result<Cache> {
        if let Some(url) = dir.to_str().filter(|d| d.starts_with("s3://")) {
            return Cache::open_remote(dir, url);
        }
        match std::fs::metadata(dir) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(CliError::NoCache {
                    path: dir.to_path_buf(),
                })
            }
            Err(e) => return Err(CliError::io("open the cache directory", dir, e)),
            Ok(md) if !md.is_dir() => {
                return Err(CliError::NotACache {
                    path: dir.to_path_buf(),
                    reason: "it is not a directory".into(),
                })
            }
            Ok(_) => {}
        }
        let store = FsStore::open(dir).map_err(|e| match e {
            StoreError::NotAStore { path, reason } => CliError::NotACache { path, reason },
            e => CliError::Store(e),
        })?;
        Ok(Cache {
            dir: dir.to_path_buf(),
            store: Backend::Fs(Box::new(store)),
        })
    }

    #[cfg(feature = "remote")]
    fn open_remote(dir: &Path, url: &str) -> Result<Cache> {
        // Endpoint, credentials and AWS_ALLOW_HTTP from the AWS variables.
        let store = jobcache_object_store::Config::new(url)
            .and_then(jobcache_object_store::RemoteStore::open)
            .map_err(|e| CliError::Usage(e.to_string()))?;
        Ok(Cache {
            dir: dir.to_path_buf(),
            store: Backend::Remote(store),
        })
    }

    #[cfg(not(feature = "remote"))]
    fn open_remote(_dir: &Path, url: &str) -> Result<Cache> {
        Err(CliError::Usage(format!(
            "{url}: this jobcache was built without the `remote` feature; rebuild with it"
        )))
    }

    /// The journal file.
    pub fn journal(&self) -> PathBuf {
        self.dir.join(JOURNAL_FILE)
    }

    /// The namespace a user means by `name`: itself if stored, else the
    /// one stored namespace ending in `::name`.
    pub fn resolve(&self, name: &str) -> Result<String> {
        let all = self.store.namespaces()?;
        if all.iter().any(|n| n == name) {
            return Ok(name.to_string());
        }
        let suffix = format!("::{name}");
        let matches: Vec<&String> = all.iter().filter(|n| n.ends_with(&suffix)).collect();
        match matches.as_slice() {
            [one] => Ok((*one).clone()),
            many => Err(CliError::UnknownFunction {
                name: name.to_string(),
                dir: self.dir.clone(),
                hint: if many.is_empty() {
                    String::new()
                } else {
                    let names: Vec<&str> = many.iter().map(|s| s.as_str()).collect();
                    format!(" (ambiguous: {})", names.join(", "))
                },
            }),
        }
    }

    /// The entry of `namespace` whose key starts with `digest`.
    pub fn find_entry(&self, namespace: &str, digest: &str) -> Result<EntryInfo> {
        let digest = digest.to_ascii_lowercase();
        let unknown = |what| CliError::UnknownEntry {
            what,
            digest: digest.clone(),
            function: namespace.to_string(),
            dir: self.dir.clone(),
        };
        if digest.is_empty() {
            return Err(unknown("no entry matches"));
        }
        let mut found: Vec<EntryInfo> = self
            .store
            .entries(namespace)?
            .into_iter()
            .filter(|e| e.key.starts_with(&digest))
            .collect();
        match found.len() {
            1 => Ok(found.remove(0)),
            0 => Err(unknown("no entry matches")),
            _ => Err(unknown("several entries match")),
        }
    }
}

/// Same function name matching as [`Cache::resolve`], for journal events
/// (whose functions may no longer be stored): exact, or ends in `::name`.
pub fn function_matches(wanted: &str, function: &str) -> bool {
    function == wanted
        || function
            .strip_suffix(wanted)
            .is_some_and(|head| head.ends_with("::"))
}

/// The first characters of a digest.
pub fn short(key: &str) -> &str {
    key.get(..SHORT).unwrap_or(key)
}
