//! Plain HTTP/1.1 on loopback with the standard library only: enough for a fixture to ask a
//! child process whether it is ready, and for a test to read an endpoint.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// A plain HTTP/1.1 GET on loopback: (status, body), or `None` when nothing answers.
pub fn http_get(addr: &str, path: &str) -> Option<(u16, String)> {
    http(addr, "GET", path, None, Duration::from_secs(2))
}

/// A plain HTTP/1.1 POST with an empty body on loopback: (status, body), or `None`.
pub fn http_post(addr: &str, path: &str) -> Option<(u16, String)> {
    http(addr, "POST", path, None, Duration::from_secs(10))
}

/// A plain HTTP/1.1 POST of a JSON body on loopback: (status, body), or `None`.
pub fn http_post_json(addr: &str, path: &str, json: &str) -> Option<(u16, String)> {
    http(addr, "POST", path, Some(json), Duration::from_secs(10))
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
