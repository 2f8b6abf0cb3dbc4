//! Workspace-level end-to-end tests (in `tests/`) and the probe processes they kill.
//!
//! `bus-probe` is a consumer whose effect is observable in Redis, run as a real child process so
//! that a test can SIGKILL it at any moment. The tests start a real `redis-server` and the real
//! service binaries; nothing here is a mock.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// A plain HTTP/1.1 GET on loopback: (status, body), or `None` when nothing answers.
pub fn http_get(addr: &str, path: &str) -> Option<(u16, String)> {
    http(addr, "GET", path, None, Duration::from_secs(2))
}

/// One HTTP/1.1 request on loopback with `Connection: close`, and an optional JSON body.
fn http(
    addr: &str,
    method: &str,
    path: &str,
    json: Option<&str>,
    timeout: Duration,
) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(timeout)).ok()?;
    let body = match json {
        Some(j) => format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{j}",
            j.len()
        ),
        None if method == "GET" => "\r\n".to_owned(),
        None => "Content-Length: 0\r\n\r\n".to_owned(),
    };
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{body}"
    )
    .ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    let status = buf.split_whitespace().nth(1)?.parse().ok()?;
    let body = buf
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Some((status, body))
}

/// A free TCP port on 127.0.0.1 (bound and released; good enough for a test's child process).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

/// A plain HTTP/1.1 POST with an empty body on loopback: (status, body), or `None`.
pub fn http_post(addr: &str, path: &str) -> Option<(u16, String)> {
    http(addr, "POST", path, None, Duration::from_secs(10))
}

/// The repository's root (the parent of `tests/`).
pub fn repo_root() -> std::path::PathBuf {
    let here = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    here.parent().unwrap_or(here).to_path_buf()
}

/// The paper-mode defaults of `scripts/run.sh`: every `NAME=${NAME:-value}` line between its
/// `paper defaults: begin` and `end` markers, as (NAME, value). Tests run the stack with these,
/// so the default configuration a person starts is the one the tests prove.
pub fn paper_defaults(run_sh: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut inside = false;
    for line in run_sh.lines() {
        let line = line.trim();
        if line.contains("paper defaults: begin") {
            inside = true;
            continue;
        }
        if line.contains("paper defaults: end") {
            break;
        }
        if !inside || line.starts_with('#') || line.is_empty() {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((name, rest)) = line.split_once('=') else {
            continue;
        };
        let default = rest
            .strip_prefix(&format!("${{{name}:-"))
            .and_then(|r| r.strip_suffix('}'));
        if let Some(value) = default {
            out.push((name.to_owned(), value.to_owned()));
        }
    }
    out
}

/// The envelopes of a stream, oldest first (entries that do not decode are left out).
pub fn stream_entries(url: &str, key: &str) -> Vec<qt_events::Envelope> {
    let Ok(client) = redis::Client::open(url) else {
        return Vec::new();
    };
    let Ok(mut con) = client.get_connection() else {
        return Vec::new();
    };
    let reply: redis::streams::StreamRangeReply = match redis::cmd("XRANGE")
        .arg(key)
        .arg("-")
        .arg("+")
        .query(&mut con)
    {
        Ok(r) => r,
        Err(_) => return Vec::new(),
    };
    reply
        .ids
        .iter()
        .filter_map(|entry| {
            let pairs: Vec<(&[u8], &[u8])> = entry
                .map
                .iter()
                .filter_map(|(k, v)| match v {
                    redis::Value::BulkString(b) => Some((k.as_bytes(), b.as_slice())),
                    _ => None,
                })
                .collect();
            qt_events::Envelope::from_fields(pairs).ok()
        })
        .collect()
}

/// A plain HTTP/1.1 POST of a JSON body on loopback: (status, body), or `None`.
pub fn http_post_json(addr: &str, path: &str, json: &str) -> Option<(u16, String)> {
    http(addr, "POST", path, Some(json), Duration::from_secs(10))
}
