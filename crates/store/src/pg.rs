//! A throw-away PostgreSQL server for tests (feature `test-support`): `initdb` + `pg_ctl` in a
//! temporary folder on a free port. When this process runs as root it runs them as the
//! `postgres` user (PostgreSQL refuses root). Returns `None` with a printed reason when the
//! binaries are absent, so a test can skip.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A running PostgreSQL server; stopped (`pg_ctl stop -m immediate`) on drop.
#[derive(Debug)]
pub struct PgServer {
    dir: tempfile::TempDir,
    bin: PathBuf,
    as_postgres: bool,
    port: u16,
}

fn find_bin() -> Option<PathBuf> {
    let mut candidates = vec![PathBuf::from("/usr/local/bin")];
    if let Ok(entries) = std::fs::read_dir("/usr/lib/postgresql") {
        let mut versions: Vec<PathBuf> = entries.flatten().map(|e| e.path().join("bin")).collect();
        versions.sort();
        versions.reverse();
        candidates.extend(versions);
    }
    candidates
        .into_iter()
        .find(|d| d.join("initdb").exists() && d.join("pg_ctl").exists())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .ok()
        .is_some_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

impl PgServer {
    /// Starts a server, or returns `None` (printing why) when PostgreSQL is not installed or
    /// cannot start here; under `CI=true` that panics instead ([`qt_testkit::skip_unless_ci`]).
    #[must_use]
    pub fn start() -> Option<Self> {
        let Some(bin) = find_bin() else {
            qt_testkit::skip_unless_ci("PostgreSQL's binaries (initdb, pg_ctl) are not installed");
            return None;
        };
        let as_postgres = is_root();
        let dir = tempfile::Builder::new().prefix("qt-pg").tempdir().ok()?;
        if as_postgres {
            let ok = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                qt_testkit::skip_unless_ci("the data folder cannot be handed to the postgres user");
                return None;
            }
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .ok()?;
        let server = Self {
            dir,
            bin,
            as_postgres,
            port,
        };
        let data = server.data_dir();
        let init = server
            .command("initdb")
            .args(["-A", "trust", "-U", "qt", "--no-sync", "-D"])
            .arg(&data)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if !init.is_ok_and(|s| s.success()) {
            qt_testkit::skip_unless_ci("initdb failed");
            return None;
        }
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            server.port,
            server.dir.path().display()
        );
        let start = server
            .command("pg_ctl")
            .args(["-w", "-t", "30", "-D"])
            .arg(&data)
            .args(["-o", &opts, "-l"])
            .arg(server.dir.path().join("log"))
            .arg("start")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if !start.is_ok_and(|s| s.success()) {
            qt_testkit::skip_unless_ci("pg_ctl could not start the server");
            return None;
        }
        Some(server)
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn command(&self, tool: &str) -> Command {
        let exe = self.bin.join(tool);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        }
    }

    /// `postgres://qt@127.0.0.1:<port>/postgres`.
    #[must_use]
    pub fn url(&self) -> String {
        format!("postgres://qt@127.0.0.1:{}/postgres", self.port)
    }

    /// The server's folder.
    #[must_use]
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let data = self.data_dir();
        let _ = self
            .command("pg_ctl")
            .args(["-D"])
            .arg(&data)
            .args(["-m", "immediate", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}
