//! qtctl against a Redis Cluster: the real binary, three real masters (Debian's redis-server in
//! cluster mode), given one seed node. `--redis-url` points where nothing listens, so qtctl
//! reaches the deployment only through the cluster's slot map.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Output};

use qt_testkit::RedisCluster;

fn qtctl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_qtctl"))
        .args(args)
        .env("QT_REDIS_URL", "redis://127.0.0.1:1")
        .env_remove("QT_STREAM_PREFIX")
        .env_remove("QT_REDIS_SENTINELS")
        .env_remove("QT_REDIS_CLUSTER")
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
fn qtctl_works_through_a_cluster_seed_and_refuses_a_prefix_without_a_hash_tag() {
    let c = RedisCluster::start(3);
    let seed = c.nodes()[0].clone();
    // A prefix whose slot is on another master than the seed: qtctl must follow the slot map.
    let prefix = (0..100)
        .map(|i| format!("q:{{c{i}}}:"))
        .find(|p| c.owner_of(&format!("{p}control")) != c.ports()[0])
        .unwrap();
    let on = |args: &[&str]| {
        let mut all = vec!["--redis-cluster", &seed, "--prefix", &prefix];
        all.extend_from_slice(args);
        qtctl(&all)
    };

    let o = on(&["kill-switch", "on", "--reason", "cluster test"]);
    assert!(o.status.success(), "{}", text(&o));
    let owner = c.owner_of(&format!("{prefix}control"));
    assert_eq!(
        c.cli(owner, &["XLEN", &format!("{prefix}control")]).trim(),
        "1"
    );
    let o = on(&["tail", "control", "-n", "1"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("cluster test"), "{}", text(&o));
    let o = on(&["streams"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("control"), "{}", text(&o));
    let o = on(&["dlq", "list"]);
    assert!(o.status.success(), "{}", text(&o));

    // Without a hash tag the deployment's keys would spread over slots: refused, naming why.
    let o = qtctl(&["--redis-cluster", &seed, "--prefix", "q:", "streams"]);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("QT_STREAM_PREFIX"), "{}", text(&o));
    // Sentinels and a cluster are one or the other; a bad node is a bad setting (exit 2).
    let o = qtctl(&[
        "--redis-cluster",
        &seed,
        "--redis-sentinels",
        &seed,
        "streams",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let o = qtctl(&["--redis-cluster", "nowhere", "streams"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("--redis-cluster"), "{}", text(&o));
}
