//! Workspace-level end-to-end tests (in `tests/`) and the probe processes they kill.
//!
//! `bus-probe` is a consumer whose effect is observable in Redis, run as a real child process so
//! that a test can SIGKILL it at any moment. The tests start a real `redis-server` and the real
//! service binaries; nothing here is a mock.

pub use qt_testkit::{free_port, http_get, http_post, http_post_json};

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
