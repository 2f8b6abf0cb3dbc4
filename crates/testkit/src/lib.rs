//! Test fixtures shared by the workspace's tests and benches: a real `redis-server` per test,
//! a real Redis Cluster ([`RedisCluster`]), the real `sim-exchange` binary on a free port
//! ([`SimExchange`]), service binaries run as real child processes that can be SIGKILLed and
//! restarted, plain loopback HTTP, and builders for the events and books tests make again and
//! again ([`build`]).
//!
//! Only tests use this crate. It never fakes a part: it starts the real ones from PATH (Debian's
//! `redis-server`) or from the workspace's target directory, and fails loudly when one is missing.

#![allow(clippy::unwrap_used)] // test fixtures: a failure here is a broken test machine

pub mod build;
mod cluster;
mod http;
mod process;
mod redis;
mod sim;

pub use cluster::RedisCluster;
pub use http::{free_port, http_get, http_post, http_post_json};
pub use process::{ChildService, bin_path};
pub use redis::{Fsync, RedisServer};
pub use sim::{SimExchange, SimExchangeBuilder, repo_klines, repo_klines_dir};

/// A test cannot run because `what` is missing here: under `CI=true` that fails the test (CI
/// installs every tool, so a skip would hide a broken set-up); elsewhere it says it skipped.
pub fn skip_unless_ci(what: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
        panic!("{what}, and CI=true requires it (scripts/test.sh installs it)");
    }
    println!("skipped: {what}");
}

/// Polls `f` every 20 ms until it returns `Some`, or panics after `secs` seconds with `what`.
pub fn wait_for<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        if std::time::Instant::now() > deadline {
            panic!("timed out after {secs}s waiting for {what}");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
