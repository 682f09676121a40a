//! A local S3 server for tests and benchmarks: `moto_server` (Python's moto)
//! started on a free port of 127.0.0.1, killed when dropped.
//!
//! The server is found as `$JOBCACHE_MOTO_SERVER`, else in the virtual
//! environment `.ci/run` makes (`target/moto/venv/bin/moto_server` of the
//! workspace), else on `PATH`. [`Server::start_or_skip`] fails when the `CI`
//! variable is set and no server can be started, and otherwise prints a
//! notice and returns `None` (the test is skipped).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `moto_server`.
#[derive(Debug)]
pub struct Server {
    child: Option<Child>,
    port: u16,
    program: PathBuf,
}

fn program() -> PathBuf {
    if let Some(p) = std::env::var_os("JOBCACHE_MOTO_SERVER") {
        return p.into();
    }
    let venv =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/moto/venv/bin/moto_server");
    if venv.exists() {
        return venv;
    }
    "moto_server".into()
}

/// Sets the credentials and region the AWS client reads, to the dummy
/// values moto accepts (only where they are not set already).
pub fn set_test_credentials() {
    for (k, v) in [
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_REGION", "us-east-1"),
    ] {
        if std::env::var_os(k).is_none() {
            // SAFETY (edition 2021: a safe call): set before any client is
            // built, with the same values by every caller.
            std::env::set_var(k, v);
        }
    }
}

impl Server {
    /// Starts a server on a free port; an error says why it could not.
    pub fn start() -> std::io::Result<Server> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        Server::start_on(port, program())
    }

    fn start_on(port: u16, program: PathBuf) -> std::io::Result<Server> {
        set_test_credentials();
        let child = Command::new(&program)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", program.display())))?;
        let mut server = Server {
            child: Some(child),
            port,
            program,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "moto_server did not listen within 30 s",
                ));
            }
            if let Some(child) = server.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(std::io::Error::other(format!(
                        "moto_server exited at once ({status})"
                    )));
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(server)
    }

    /// A server, or `None` (after printing a notice) where none can be
    /// started and `CI` is not set.
    ///
    /// # Panics
    ///
    /// When `CI` is set and the server cannot be started.
    pub fn start_or_skip(test: &str) -> Option<Server> {
        match Server::start() {
            Ok(s) => Some(s),
            Err(e) if std::env::var_os("CI").is_some() => {
                panic!("{test}: cannot start moto_server in CI: {e}")
            }
            Err(e) => {
                eprintln!(
                    "notice: {test} skipped: cannot start moto_server ({e}); \
                     `.ci/run` installs it (pip install 'moto[server]')"
                );
                None
            }
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Creates a bucket (a plain `PUT /bucket`; moto does not check
    /// signatures).
    pub fn create_bucket(&self, bucket: &str) -> std::io::Result<()> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port))?;
        write!(
            s,
            "PUT /{bucket} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.port
        )?;
        let mut reply = String::new();
        s.read_to_string(&mut reply)?;
        if reply.starts_with("HTTP/1.1 200") || reply.starts_with("HTTP/1.0 200") {
            Ok(())
        } else {
            Err(std::io::Error::other(format!(
                "creating bucket {bucket}: {}",
                reply.lines().next().unwrap_or_default()
            )))
        }
    }

    /// Kills the server (its data is lost).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port (empty: create the bucket
    /// again).
    pub fn restart(&mut self) -> std::io::Result<()> {
        self.kill();
        let fresh = Server::start_on(self.port, self.program.clone())?;
        *self = fresh;
        Ok(())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}
