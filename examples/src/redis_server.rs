//! A real `redis-server` (the Debian package `redis-server`) on a free port
//! of 127.0.0.1, without persistence, for the tests and the `fleet`
//! example: started by [`RedisServer::start`], killed on drop.
//!
//! ```no_run
//! use examples::redis_server::RedisServer;
//!
//! let mut redis = RedisServer::start();
//! println!("{}", redis.url());
//! redis.kill(); // as if it crashed
//! redis.restart(); // same port, empty
//! ```

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// What to say when `redis-server` cannot be run.
pub const MISSING: &str = "redis-server was not found on PATH: the Redis tests and the fleet \
     example need a real Redis server. Install the Debian package `redis-server` \
     (`sudo apt-get install -y redis-server`), or run `./test`, which installs it when it can.";

/// A `redis-server` process of our own. Dropping it kills it.
#[derive(Debug)]
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
}

impl RedisServer {
    /// Starts `redis-server` on a free port of 127.0.0.1 and waits (up to
    /// 5 s) until it answers `PING`.
    ///
    /// # Panics
    ///
    /// When `redis-server` is not installed (the message names the Debian
    /// package), or does not answer in time. A test that needs Redis fails
    /// then; it is never skipped.
    pub fn start() -> RedisServer {
        let port = free_port();
        let mut server = RedisServer { child: None, port };
        server.restart();
        server
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:{port}/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Whether it is running (not [`kill`](Self::kill)ed).
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Kills it at once (SIGKILL, as a crash), and waits for it to exit.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port, empty (it saves nothing), and
    /// waits until it answers. Kills it first if it runs.
    ///
    /// # Panics
    ///
    /// As [`start`](Self::start).
    pub fn restart(&mut self) {
        self.kill();
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .args(["--dir", &std::env::temp_dir().to_string_lossy()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let child = match child {
            Ok(child) => child,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!("{MISSING}"),
            Err(e) => panic!("could not start redis-server: {e}"),
        };
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(5);
        while !self.ping() {
            if Instant::now() > deadline {
                panic!(
                    "redis-server on port {} did not answer PING within 5 s",
                    self.port
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Whether it answers `PING`.
    pub fn ping(&self) -> bool {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
        let mut reply = [0u8; 7];
        stream.write_all(b"PING\r\n").is_ok()
            && stream.read_exact(&mut reply).is_ok()
            && reply.starts_with(b"+PONG")
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .unwrap_or_else(|e| panic!("no free port on 127.0.0.1: {e}"))
}
