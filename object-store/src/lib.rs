//! A shared jobcache on S3-compatible object storage (AWS S3, MinIO, Ceph,
//! Garage, R2), through Apache Arrow's [`object_store`] crate.
//!
//! [`RemoteStore`] implements jobcache's [`Store`](jobcache_store::Store)
//! trait over a bucket and prefix, with a local
//! [`FsStore`](jobcache_store::FsStore) tier in front: a hit is read from
//! the local tier when it is there, else downloaded into it (so the next
//! hit costs what a local hit costs); a publish goes to both. [`Config`]
//! says where the cache is (`s3://bucket/prefix`) and how patiently to
//! talk to it; credentials come from the standard AWS environment
//! variables.
//!
//! ```no_run
//! use jobcache_object_store::{Config, RemoteStore};
//! use jobcache_store::{NewEntry, StoreExt};
//! use std::time::Duration;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = Config::new("s3://team-cache/project")?
//!     .endpoint("http://127.0.0.1:9000")
//!     .allow_http(true)
//!     .local_tier("/tmp/jobcache-local");
//! let store = RemoteStore::open(config)?;
//! let key = "5e".repeat(32);
//! store.publish_bytes("my_crate::square", &key, &NewEntry::new(Duration::ZERO), b"4")?;
//! assert_eq!(store.get_bytes("my_crate::square", &key)?, Some(b"4".to_vec()));
//! # Ok(()) }
//! ```
//!
//! # Layout and consistency
//!
//! Under `<prefix>/jobcache-remote-v1/`:
//!
//! - `entries/<namespace>/<key>.meta`: the entry's metadata (its format is
//!   in `meta.rs` and the README), holding the payload itself when it is at
//!   most 64 KiB. **Its presence is the commit point**: it is written last,
//!   so a reader that finds it finds a complete entry.
//! - `entries/<namespace>/<key>.<xxh3>.payload`: a larger payload, named
//!   by its checksum, so every put writes a whole object that is the same
//!   whoever writes it (uploaded in parts, in parallel; downloaded with one
//!   streaming GET, or in parallel ranges with
//!   [`Config::ranged_downloads`]).
//! - `claims/<namespace>/<key>`: a claim, created only if absent
//!   (`PutMode::Create`), with an expiry: the machine that holds it
//!   computes (refreshing the expiry while it runs), others wait and then
//!   read its result. Claims only avoid duplicate work; correctness never
//!   depends on them.
//!
//! Every object is checked (lengths, XXH3-64 checksums) before its bytes
//! are used: a corrupt or truncated remote entry is a miss, logged, and
//! removed, so the next publish replaces it.
//!
//! # Limitations
//!
//! - A remote that cannot be reached never fails a call: one warning is
//!   logged per outage, the local tier answers, and the remote is tried
//!   again after [`Config::retry_after`]; entries published during an
//!   outage are listed in a backlog at the local tier's root and uploaded
//!   in the background when the remote answers again
//!   ([`RemoteStore::upload_backlog`]).
//! - Listing is eventually consistent on some servers: `ls` may miss an
//!   entry just published.
//! - Claims expire after a fixed time ([`Config::claims`]) taken from the
//!   claimer's clock: clock skew between machines, or a process stalled
//!   longer than the claim time, can let two machines compute at once.
//!   Servers without conditional writes disable claims (one warning).
//! - Two machines publishing one key at once both succeed; the metadata of
//!   the last one stays. A payload object of the other may be left behind
//!   (found and removed with the entry).
//! - Access times are not tracked remotely: eviction by `gc` on a remote
//!   cache goes by publication time.
#![deny(missing_docs)]
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

mod backlog;
mod config;
mod meta;
pub mod moto;
mod remote;

pub use config::{is_remote, Config};
pub use remote::RemoteStore;

/// Why a remote cache could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The location is not a valid `s3://bucket/prefix` URL.
    #[error("{url} is not a remote cache location: {reason}")]
    Url {
        /// The location given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The object store client could not be configured.
    #[error("cannot configure the client for {url}: {source} (check the AWS_* environment variables, the endpoint and allow_http)")]
    Client {
        /// The location given.
        url: String,
        /// The client's error.
        #[source]
        source: object_store::Error,
    },
    /// The background runtime could not start.
    #[error("cannot start the remote cache's runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// The local tier could not be opened.
    #[error("cannot open the local tier: {0}")]
    Local(#[source] jobcache_store::StoreError),
}
