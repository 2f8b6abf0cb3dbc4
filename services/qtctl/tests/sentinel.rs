//! qtctl behind Redis Sentinel: the real binary, a real primary (TCP) and a real Sentinel
//! monitoring it. `--redis-url` points at a port where nothing listens, so qtctl reaches the
//! deployment only by asking the Sentinel for the master.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use qt_testkit::{Fsync, RedisServer, free_port};

/// A Sentinel process, killed when dropped.
struct Sentinel(Child);

impl Drop for Sentinel {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn sentinel(dir: &std::path::Path, port: u16, primary: u16) -> Sentinel {
    let conf = dir.join("sentinel.conf");
    std::fs::write(
        &conf,
        format!("port {port}\nbind 127.0.0.1\nsentinel monitor qt 127.0.0.1 {primary} 1\n"),
    )
    .unwrap();
    Sentinel(
        Command::new("redis-server")
            .args([conf.to_str().unwrap(), "--sentinel"])
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server on PATH (scripts/test.sh installs it)"),
    )
}

fn qtctl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_qtctl"))
        .args(args)
        .env("QT_REDIS_URL", "redis://127.0.0.1:1")
        .env("QT_STREAM_PREFIX", "t:")
        .env_remove("QT_REDIS_SENTINELS")
        .env_remove("QT_REDIS_MASTER_NAME")
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn qtctl_finds_the_master_through_a_sentinel_and_names_a_bad_node() {
    let primary_port = free_port();
    let primary = RedisServer::start_with(Fsync::EverySec, Some(primary_port));
    let dir = tempfile::tempdir().unwrap();
    let sentinel_port = free_port();
    let _sentinel = sentinel(dir.path(), sentinel_port, primary_port);
    let node = format!("127.0.0.1:{sentinel_port}");

    // Without the Sentinel, --redis-url is all qtctl has, and nothing listens there.
    let o = qtctl(&["streams"]);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("unreachable"), "{}", text(&o));

    // Through the Sentinel: the kill switch lands on the primary, and `tail` reads it back.
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        let o = qtctl(&[
            "--redis-sentinels",
            &node,
            "kill-switch",
            "on",
            "--reason",
            "sentinel test",
        ]);
        if o.status.success() {
            break;
        }
        assert!(Instant::now() < end, "{}", text(&o));
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(primary.raw(&["XLEN", "t:control"]).contains(":1"));
    let o = qtctl(&["--redis-sentinels", &node, "tail", "control", "-n", "1"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("sentinel test"), "{}", text(&o));

    // A master name the Sentinel does not monitor is an error that says so.
    let o = qtctl(&[
        "--redis-sentinels",
        &node,
        "--redis-master-name",
        "other",
        "streams",
    ]);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("no Sentinel named the master"),
        "{}",
        text(&o)
    );

    // A node that is not host:port is refused as a setting: exit 2, naming the option.
    let o = qtctl(&["--redis-sentinels", "nowhere", "streams"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("--redis-sentinels"), "{}", text(&o));
}
