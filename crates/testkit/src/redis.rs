use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// `appendfsync` policy of the test server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fsync {
    /// Every write is on disk before its reply: nothing acknowledged is lost on a SIGKILL.
    Always,
    /// Redis's default: up to one second of writes may be lost on a crash.
    EverySec,
}

/// A `redis-server` of its own, on a unix socket in its own data dir, with `appendonly yes`.
/// It can be SIGKILLed and restarted on the same data. Dropping it kills it.
#[derive(Debug)]
pub struct RedisServer {
    dir: tempfile::TempDir,
    fsync: Fsync,
    port: Option<u16>,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts a server with `appendfsync always` on a unix socket.
    pub fn start() -> Self {
        Self::start_with(Fsync::Always, None)
    }

    /// Starts a server with the given fsync policy; `port` also opens TCP on 127.0.0.1 (for
    /// `redis-benchmark`).
    pub fn start_with(fsync: Fsync, port: Option<u16>) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("qt-redis-")
            .tempdir()
            .unwrap();
        let mut s = Self {
            dir,
            fsync,
            port,
            child: None,
        };
        s.spawn();
        s
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("redis.sock")
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// The URL for `QT_REDIS_URL` and `redis::Client::open`.
    pub fn url(&self) -> String {
        format!("unix://{}", self.socket().display())
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGKILL: no shutdown save, only what the AOF already holds survives.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same data dir and socket.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Sends one command and returns the raw RESP reply (for fixtures that must not depend on
    /// the code under test).
    pub fn raw(&self, args: &[&str]) -> String {
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        self.raw_bytes(&args)
    }

    /// [`RedisServer::raw`] with binary-safe arguments.
    pub fn raw_bytes(&self, args: &[&[u8]]) -> String {
        let mut s = UnixStream::connect(self.socket()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(&resp(args)).unwrap();
        let mut buf = vec![0u8; 1 << 16];
        let n = s.read(&mut buf).unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    fn spawn(&mut self) {
        let bin = which("redis-server").unwrap_or_else(|| {
            panic!(
                "redis-server is not on PATH: install Debian's redis-server (scripts/test.sh does)"
            )
        });
        let sock = self.socket();
        let _ = std::fs::remove_file(&sock);
        let fsync = match self.fsync {
            Fsync::Always => "always",
            Fsync::EverySec => "everysec",
        };
        let port = self.port.unwrap_or(0).to_string();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("redis.log"))
            .unwrap();
        let child = Command::new(bin)
            .args(["--port", &port, "--bind", "127.0.0.1"])
            .args([
                "--unixsocket",
                sock.to_str().unwrap(),
                "--unixsocketperm",
                "700",
            ])
            .args(["--dir", self.dir.path().to_str().unwrap()])
            .args(["--appendonly", "yes", "--appendfsync", fsync])
            .args(["--save", "", "--daemonize", "no", "--protected-mode", "no"])
            .args(["--loglevel", "warning"])
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap();
        self.child = Some(child);
        crate::wait_for(20, "redis-server to answer PING", || {
            let mut s = UnixStream::connect(&sock).ok()?;
            s.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
            s.write_all(b"*1\r\n$4\r\nPING\r\n").ok()?;
            let mut buf = [0u8; 64];
            let n = s.read(&mut buf).ok()?;
            buf[..n].starts_with(b"+PONG").then_some(())
        });
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn resp(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

pub(crate) fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/local/bin")])
        .map(|p| p.join(name))
        .find(|p| p.is_file())
}
