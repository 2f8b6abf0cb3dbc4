//! A headless Chromium driven over the DevTools protocol (its WebSocket on loopback): open a
//! page, evaluate JavaScript in it, click, resize to a phone, and capture an element as a PNG.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Where a Chromium binary is on `PATH`.
pub fn chromium() -> Option<PathBuf> {
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|name| {
            std::env::var_os("PATH").and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|p| p.join(name))
                    .find(|p| p.is_file())
            })
        })
}

pub struct Browser {
    _child: tokio::process::Child,
    _profile: tempfile::TempDir,
    ws: Ws,
    next: u64,
    session: String,
}

impl Browser {
    /// Starts Chromium with one blank page of `width`×`height`.
    pub async fn launch(bin: &Path, width: u32, height: u32) -> Self {
        let profile = tempfile::tempdir().unwrap();
        let child = tokio::process::Command::new(bin)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--hide-scrollbars",
                "--remote-debugging-port=0",
                "--remote-debugging-address=127.0.0.1",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg(format!("--window-size={width},{height}"))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        // Chromium writes its port and the browser's path here once it listens.
        let port_file = profile.path().join("DevToolsActivePort");
        let mut text = String::new();
        for _ in 0..600 {
            if let Ok(t) = std::fs::read_to_string(&port_file)
                && t.lines().count() >= 2
            {
                text = t;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut lines = text.lines();
        let port = lines.next().expect("chromium wrote DevToolsActivePort");
        let path = lines.next().unwrap();
        let (ws, _) = tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}{path}"))
            .await
            .unwrap();
        let mut b = Browser {
            _child: child,
            _profile: profile,
            ws,
            next: 0,
            session: String::new(),
        };
        let t = b
            .call_browser("Target.createTarget", json!({"url": "about:blank"}))
            .await;
        let target = t["targetId"].as_str().unwrap().to_owned();
        let a = b
            .call_browser(
                "Target.attachToTarget",
                json!({"targetId": target, "flatten": true}),
            )
            .await;
        b.session = a["sessionId"].as_str().unwrap().to_owned();
        b.viewport(width, height, false).await;
        b
    }

    async fn send(&mut self, method: &str, params: Value, session: bool) -> Value {
        self.next += 1;
        let id = self.next;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if session {
            msg["sessionId"] = json!(self.session);
        }
        self.ws
            .send(Message::Text(msg.to_string().into()))
            .await
            .unwrap();
        loop {
            let m = tokio::time::timeout(Duration::from_secs(60), self.ws.next())
                .await
                .expect("chromium answered within 60 s")
                .expect("the DevTools socket is open")
                .unwrap();
            let Message::Text(t) = m else { continue };
            let v: Value = serde_json::from_str(t.as_str()).unwrap();
            if v["id"] == json!(id) {
                assert!(v.get("error").is_none(), "{method} failed: {v}");
                return v["result"].clone();
            }
        }
    }

    async fn call_browser(&mut self, method: &str, params: Value) -> Value {
        self.send(method, params, false).await
    }

    /// A DevTools command on the page.
    pub async fn call(&mut self, method: &str, params: Value) -> Value {
        self.send(method, params, true).await
    }

    pub async fn goto(&mut self, url: &str) {
        self.call("Page.navigate", json!({"url": url})).await;
    }

    /// The value of a JavaScript expression (promises awaited); panics on an exception.
    pub async fn eval(&mut self, expr: &str) -> Value {
        let r = self
            .call(
                "Runtime.evaluate",
                json!({"expression": expr, "returnByValue": true, "awaitPromise": true}),
            )
            .await;
        assert!(
            r.get("exceptionDetails").is_none(),
            "{expr} threw: {}",
            r["exceptionDetails"]
        );
        r["result"]["value"].clone()
    }

    /// Waits (at most 30 s) until `expr` is true.
    pub async fn wait_for(&mut self, expr: &str) {
        // The page may not be there yet: an exception is "not yet".
        let guarded =
            format!("(() => {{ try {{ return !!({expr}); }} catch (e) {{ return false; }} }})()");
        for _ in 0..300 {
            if self.eval(&guarded).await == json!(true) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let body = self.eval("document.body.innerText").await;
        panic!("never true: {expr}\npage:\n{}", body.as_str().unwrap_or(""));
    }

    /// The page's viewport; `mobile` as a phone's browser.
    pub async fn viewport(&mut self, width: u32, height: u32, mobile: bool) {
        self.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile}),
        )
        .await;
    }

    /// Writes a PNG of the element `selector` (the whole of it, scrolled or not) to `path`;
    /// returns its size in bytes.
    pub async fn screenshot(&mut self, selector: &str, path: &Path) -> usize {
        let rect = self
            .eval(&format!(
                "(() => {{ const r = document.querySelector({sel}).getBoundingClientRect(); \
                 return {{x: r.left + scrollX, y: r.top + scrollY, width: r.width, height: r.height}}; }})()",
                sel = json!(selector)
            ))
            .await;
        let mut clip = rect;
        clip["scale"] = json!(1);
        let r = self
            .call(
                "Page.captureScreenshot",
                json!({"format": "png", "clip": clip, "captureBeyondViewport": true}),
            )
            .await;
        let png = base64_decode(r["data"].as_str().unwrap());
        std::fs::write(path, &png).unwrap();
        png.len()
    }
}

fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for v in s.bytes().filter_map(val) {
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}
