//! `scripts/run.sh` itself, as a person starts it, on a Redis port, service ports and a data
//! folder of the test's own (and the binaries already built, so nothing is compiled): every
//! process it starts is SIGKILLed in turn, its supervisor starts it again and says so, and each
//! service resumes its consumer groups from where it stopped — the control command published
//! while it was dead is handled after the restart, under the same consumer name, and nothing
//! stays pending. SIGTERM to run.sh then leaves no process behind.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use qt_e2e::{http_get, repo_root, stream_entries};
use qt_events::Event;
use qt_testkit::{ChildService, bin_path, wait_for};

const SERVICES: [&str; 5] = [
    "trading-bot",
    "execution",
    "exit-brain",
    "portfolio-intelligence",
    "clm",
];

/// The low end of the kernel's ephemeral port range (`ip_local_port_range`; 32768 when it
/// cannot be read).
fn ephemeral_low() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(32_768)
}

/// A base port whose next eleven ports are free too (the services take base+1..+5, the sim +10,
/// Redis +11), so no two of the run's listeners can pick the same port. Below the ephemeral
/// range: run.sh's services bind their ports seconds after this check (and again at every
/// restart), and a port of that range can meanwhile become the local end of any outgoing
/// connection on the machine — under load one of the run's own Redis connections took
/// exit-brain's port and exit-brain could never listen again.
fn free_port_block() -> u16 {
    use rand::Rng;
    let high = ephemeral_low().saturating_sub(12).max(10_001);
    let mut rng = rand::rng();
    for _ in 0..200 {
        let base = rng.random_range(10_000..high);
        if (0..=11).all(|i| std::net::TcpListener::bind(("127.0.0.1", base + i)).is_ok()) {
            return base;
        }
    }
    panic!("no block of 12 free ports below the ephemeral range");
}

fn ready(addr: &str) -> Option<()> {
    http_get(addr, "/health/ready")
        .filter(|(s, _)| *s == 200)
        .map(|_| ())
}

fn read_pid(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn alive(pid: u32) -> bool {
    // A zombie has exited; only a live process counts.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(')').map(|(_, r)| r.trim_start().to_owned()))
        .is_some_and(|r| !r.starts_with('Z'))
}

fn signal(sig: &str, pid: u32) {
    let ok = std::process::Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig} {pid} failed");
}

/// Kills what run.sh started if the test ends early (run.sh's own Drop is a SIGKILL, which
/// leaves its supervisors running).
struct Leftovers {
    run_dir: PathBuf,
}

impl Drop for Leftovers {
    fn drop(&mut self) {
        let Ok(entries) = std::fs::read_dir(&self.run_dir) else {
            return;
        };
        let mut pids: Vec<(bool, u32)> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                read_pid(&e.path()).map(|p| (!name.ends_with(".supervisor.pid"), p))
            })
            .collect();
        // Supervisors first, so nothing is restarted.
        pids.sort();
        for (_, pid) in pids {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
    }
}

/// (last-delivered-id, pending, consumer names) of `group` on `key`.
fn group_state(url: &str, key: &str, group: &str) -> Option<(String, i64, Vec<String>)> {
    let client = redis::Client::open(url).ok()?;
    let mut con = client.get_connection().ok()?;
    let groups: Vec<HashMap<String, redis::Value>> = redis::cmd("XINFO")
        .arg("GROUPS")
        .arg(key)
        .query(&mut con)
        .ok()?;
    let text = |v: Option<&redis::Value>| match v {
        Some(redis::Value::BulkString(b)) => String::from_utf8_lossy(b).into_owned(),
        Some(redis::Value::SimpleString(s)) => s.clone(),
        _ => String::new(),
    };
    let g = groups.iter().find(|g| text(g.get("name")) == group)?;
    let pending = match g.get("pending") {
        Some(redis::Value::Int(n)) => *n,
        _ => -1,
    };
    let consumers: Vec<HashMap<String, redis::Value>> = redis::cmd("XINFO")
        .arg("CONSUMERS")
        .arg(key)
        .arg(group)
        .query(&mut con)
        .ok()?;
    let names = consumers.iter().map(|c| text(c.get("name"))).collect();
    Some((text(g.get("last-delivered-id")), pending, names))
}

/// Stream ids compare as (ms, seq).
fn id_key(id: &str) -> (u64, u64) {
    let (ms, seq) = id.split_once('-').unwrap_or((id, "0"));
    (ms.parse().unwrap_or(0), seq.parse().unwrap_or(0))
}

fn xlen(url: &str, key: &str) -> u64 {
    let client = redis::Client::open(url).unwrap();
    let mut con = client.get_connection().unwrap();
    redis::cmd("XLEN").arg(key).query(&mut con).unwrap_or(0)
}

#[test]
fn run_sh_restarts_each_killed_service_which_resumes_from_its_consumer_offset() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let run_dir = data.join("run");
    let base = free_port_block();
    let redis_port = base + 11;
    let bin_dir = bin_path("execution").parent().unwrap().to_path_buf();
    let url = format!("redis://127.0.0.1:{redis_port}");
    let env = [
        ("REDIS_PORT", redis_port.to_string()),
        ("QT_PORT_BASE", base.to_string()),
        ("QT_DATA_DIR", data.to_string_lossy().into_owned()),
        ("QT_BIN_DIR", bin_dir.to_string_lossy().into_owned()),
        // Five times run.sh's replay speed, and a model that trades, so orders flow quickly.
        ("SIM_SPEED", "600".to_owned()),
        ("QT_TRADING_BOT__MODEL", "momentum".to_owned()),
        ("QT_LOG_FORMAT", "json".to_owned()),
    ];
    let env_ref: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let script = repo_root().join("scripts/run.sh");
    let mut run = ChildService::spawn(
        PathBuf::from("/bin/bash"),
        &[script.to_str().unwrap()],
        &env_ref,
        dir.path().join("run.log"),
    );
    let _leftovers = Leftovers {
        run_dir: run_dir.clone(),
    };
    let addr = |i: u16| format!("127.0.0.1:{}", base + i);
    let sim_addr = addr(10);
    let logs = || {
        let mut out = format!("--- run.sh\n{}\n", run.output());
        for name in SERVICES.iter().chain(&["sim-exchange"]) {
            let log =
                std::fs::read_to_string(data.join(format!("logs/{name}.log"))).unwrap_or_default();
            let start = log.len().saturating_sub(2000);
            let start = (start..log.len())
                .find(|i| log.is_char_boundary(*i))
                .unwrap_or(0);
            out += &format!("--- {name}\n{}\n", &log[start..]);
        }
        out
    };
    let ready_within = |secs: u64, name: &str, addr: &str| {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while ready(addr).is_none() {
            assert!(
                Instant::now() < deadline,
                "{name} not ready on {addr} after {secs} s\n{}",
                logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    ready_within(60, "sim-exchange", &sim_addr);
    for (i, name) in (1..).zip(SERVICES) {
        ready_within(90, name, &addr(i));
    }
    // An entry reaches execution before it is killed, so the check on orders below has one.
    let deadline = Instant::now() + Duration::from_secs(120);
    while stream_entries(&url, "qt:intents").is_empty() {
        assert!(
            Instant::now() < deadline,
            "no intent after 120 s\n{}",
            logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    let qtctl = bin_dir.join("qtctl");
    for (i, name) in (1..).zip(SERVICES) {
        let pid_file = run_dir.join(format!("{name}.pid"));
        let old = read_pid(&pid_file).unwrap();
        let before = group_state(&url, "qt:control", name)
            .unwrap_or_else(|| panic!("{name} has no group on qt:control\n{}", logs()));
        signal("-KILL", old);
        wait_for(10, &format!("{name} to die"), || {
            (!alive(old)).then_some(())
        });
        // A command published while it is dead (the supervisor waits 1 s before restarting).
        let out = std::process::Command::new(&qtctl)
            .args(["--json", "kill-switch", "off", "--reason", "run.sh test"])
            .env("QT_REDIS_URL", &url)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let sent: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let entry = sent["entry_id"].as_str().unwrap().to_owned();
        // (A read the dead process had blocked in may still take it into its pending list
        // before Redis notices the closed socket: the restarted one reads that list first.)

        let new = wait_for(30, &format!("{name} to be restarted"), || {
            read_pid(&pid_file).filter(|p| *p != old && alive(*p))
        });
        ready_within(60, name, &addr(i));
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (delivered, pending, consumers) = group_state(&url, "qt:control", name).unwrap();
            if id_key(&delivered) >= id_key(&entry) && pending == 0 {
                // The same consumer as before: it resumed its own pending list.
                assert_eq!(consumers, before.2, "{name}'s consumers changed");
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{name} (pid {new}) did not resume from its offset: last delivered {delivered} \
                 (command {entry}), pending {pending}\n{}",
                logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let said = format!("{name} exited (killed by signal 9 (KILL))");
        assert!(
            run.output().contains(&said),
            "run.sh did not say {said:?}\n{}",
            logs()
        );
    }

    // The simulator too: the services reconnect and the market stream grows again.
    let pid_file = run_dir.join("sim-exchange.pid");
    let old = read_pid(&pid_file).unwrap();
    signal("-KILL", old);
    wait_for(30, "sim-exchange to be restarted", || {
        read_pid(&pid_file).filter(|p| *p != old && alive(*p))
    });
    wait_for(30, "sim-exchange to be ready again", || ready(&sim_addr));
    let market = xlen(&url, "qt:market");
    let deadline = Instant::now() + Duration::from_secs(60);
    while xlen(&url, "qt:market") <= market {
        assert!(
            Instant::now() < deadline,
            "no candle after the simulator's restart\n{}",
            logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        run.output()
            .contains("sim-exchange exited (killed by signal 9 (KILL))"),
        "{}",
        logs()
    );

    // No intent produced two entry orders, through every kill.
    let mut entries: HashMap<String, Vec<String>> = HashMap::new();
    for e in stream_entries(&url, "qt:orders") {
        if let Event::OrderAccepted(o) = e.event
            && !o.reduce_only
        {
            let ids = entries.entry(o.intent_id).or_default();
            if !ids.contains(&o.client_order_id) {
                ids.push(o.client_order_id);
            }
        }
    }
    for (intent, ids) in &entries {
        assert!(ids.len() <= 1, "intent {intent} was sent as {ids:?}");
    }

    // SIGTERM stops everything: the supervisors, the services, Redis.
    let mut pids: Vec<u32> = std::fs::read_dir(&run_dir)
        .unwrap()
        .filter_map(|e| read_pid(&e.unwrap().path()))
        .collect();
    pids.sort_unstable();
    assert!(pids.len() >= 13, "{pids:?}"); // 6 processes, 6 supervisors, redis
    run.terminate(60);
    let out = run.output();
    let (_, stopping) = out.split_once("==> stopping").unwrap();
    assert!(!stopping.contains("restarting"), "{out}");
    for pid in &pids {
        wait_for(10, &format!("pid {pid} to be gone"), || {
            (!alive(*pid)).then_some(())
        });
    }
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", redis_port)).is_err(),
        "redis still runs"
    );
    assert!(run.output().contains("==> stopped"), "{}", run.output());
}
