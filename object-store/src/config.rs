//! Where the remote cache is and how patiently to talk to it.

use crate::Error;
use std::path::PathBuf;
use std::time::Duration;

/// The configuration of a [`RemoteStore`](crate::RemoteStore), built from an
/// `s3://bucket/prefix` URL; the rest has defaults.
///
/// Credentials, region and endpoint come from the standard AWS environment
/// variables (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
/// `AWS_SESSION_TOKEN`, `AWS_REGION` / `AWS_DEFAULT_REGION`,
/// `AWS_ENDPOINT_URL` / `AWS_ENDPOINT`, `AWS_ALLOW_HTTP`), as the AWS tools
/// read them; [`Config::endpoint`] and [`Config::allow_http`] override them.
#[derive(Debug, Clone)]
pub struct Config {
    pub(crate) url: String,
    pub(crate) bucket: String,
    pub(crate) prefix: String,
    pub(crate) endpoint: Option<String>,
    pub(crate) allow_http: Option<bool>,
    pub(crate) local: Option<PathBuf>,
    pub(crate) request_timeout: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) retries: usize,
    pub(crate) retry_after: Duration,
    pub(crate) claim_ttl: Duration,
    pub(crate) claim_poll: Duration,
    pub(crate) part_size: usize,
    pub(crate) parallel: usize,
    pub(crate) ranged_downloads: bool,
}

/// Whether `location` names a remote cache (`s3://…`).
pub fn is_remote(location: &str) -> bool {
    location.starts_with("s3://")
}

impl Config {
    /// A configuration for `url` (`s3://bucket` or `s3://bucket/some/prefix`).
    pub fn new(url: &str) -> Result<Config, Error> {
        let bad = |reason: &str| Error::Url {
            url: url.to_string(),
            reason: reason.to_string(),
        };
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| bad("it does not start with s3:// (write s3://bucket/prefix)"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(bad("the bucket name is empty (write s3://bucket/prefix)"));
        }
        let prefix = prefix.trim_matches('/').to_string();
        if prefix.split('/').any(|p| p == "." || p == "..") {
            return Err(bad("the prefix has a `.` or `..` component"));
        }
        Ok(Config {
            url: url.to_string(),
            bucket: bucket.to_string(),
            prefix,
            endpoint: None,
            allow_http: None,
            local: None,
            request_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(3),
            retries: 2,
            retry_after: Duration::from_secs(30),
            claim_ttl: Duration::from_secs(15 * 60),
            claim_poll: Duration::from_millis(250),
            part_size: 8 << 20,
            parallel: 8,
            ranged_downloads: false,
        })
    }

    /// The URL it was made from.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The server to talk to (`http://127.0.0.1:9000` for a local MinIO or
    /// moto), instead of AWS or `AWS_ENDPOINT_URL`.
    pub fn endpoint(mut self, endpoint: impl Into<String>) -> Config {
        self.endpoint = Some(endpoint.into());
        self
    }

    /// Allows plain `http://` endpoints (local servers), instead of
    /// `AWS_ALLOW_HTTP`.
    pub fn allow_http(mut self, allow: bool) -> Config {
        self.allow_http = Some(allow);
        self
    }

    /// A local file store in front of the remote: hits are read from it and
    /// fill it, publishes go to both. Without one, every hit downloads.
    pub fn local_tier(mut self, dir: impl Into<PathBuf>) -> Config {
        self.local = Some(dir.into());
        self
    }

    /// How long one request may take (default 30 s), and how long to wait
    /// for a connection (default 3 s).
    pub fn timeouts(mut self, request: Duration, connect: Duration) -> Config {
        self.request_timeout = request;
        self.connect_timeout = connect;
        self
    }

    /// How many times a failed request is retried (default 2).
    pub fn retries(mut self, retries: usize) -> Config {
        self.retries = retries;
        self
    }

    /// After a failure, how long the remote is left alone before it is
    /// tried again (default 30 s); meanwhile calls use the local tier only.
    pub fn retry_after(mut self, pause: Duration) -> Config {
        self.retry_after = pause;
        self
    }

    /// How long a claim (a machine computing an entry) holds before others
    /// take it over (default 15 min), and how often a waiting caller looks
    /// again (default 250 ms).
    pub fn claims(mut self, ttl: Duration, poll: Duration) -> Config {
        self.claim_ttl = ttl;
        self.claim_poll = poll;
        self
    }

    /// Part size of multipart uploads and ranged downloads (default 8 MiB,
    /// at least 5 MiB as S3 requires), and how many run at once (default 8).
    /// Downloads are one streaming GET unless
    /// [`ranged_downloads`](Config::ranged_downloads) is on.
    pub fn transfer(mut self, part_size: usize, parallel: usize) -> Config {
        self.part_size = part_size.max(5 << 20);
        self.parallel = parallel.max(1);
        self
    }

    /// Downloads large payloads in ranges of the part size, `parallel` at a
    /// time (default off: one streaming GET). Worth it where one connection
    /// is slower than the link (AWS S3 serves ~100 MB/s per connection);
    /// harmful where the server reads the whole object to serve a range
    /// (moto: 8 MiB of a 256 MiB object cost as much as the whole object).
    pub fn ranged_downloads(mut self, on: bool) -> Config {
        self.ranged_downloads = on;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bucket_and_prefix() {
        let c = Config::new("s3://b/some/prefix/").unwrap();
        assert_eq!((c.bucket.as_str(), c.prefix.as_str()), ("b", "some/prefix"));
        let c = Config::new("s3://b").unwrap();
        assert_eq!((c.bucket.as_str(), c.prefix.as_str()), ("b", ""));
        for bad in ["b/p", "s3://", "s3:///p", "s3://b/../x", "file:///tmp"] {
            let e = Config::new(bad).unwrap_err().to_string();
            assert!(e.contains(bad), "{e}");
        }
    }
}
