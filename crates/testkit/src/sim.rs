//! The real `sim-exchange` binary as a test fixture: started on a free port with the data,
//! API keys, faults and settings a test asks for, waited on until it answers ready, and
//! SIGKILLed or restarted on the same port and state.

use std::path::{Path, PathBuf};

use tempfile::TempDir;

use crate::http::http_get;
use crate::process::{ChildService, bin_path};
use crate::wait_for;

/// The repository's klines of one symbol at 5m (`data/klines/5m/<SYMBOL>-5m.csv.gz`).
pub fn repo_klines(symbol: &str) -> PathBuf {
    repo_klines_dir().join(format!("{symbol}-5m.csv.gz"))
}

/// The repository's folder of 5m klines (`data/klines/5m`).
pub fn repo_klines_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/klines/5m")
}

/// How to start a simulator: [`SimExchange::builder`], then [`SimExchangeBuilder::start`].
#[derive(Debug, Clone)]
pub struct SimExchangeBuilder {
    data: Option<PathBuf>,
    symbols: Vec<String>,
    speed: String,
    warmup_candles: Option<usize>,
    keys: Vec<(String, String)>,
    settings: Vec<String>,
    args: Vec<String>,
    env: Vec<(String, String)>,
    state: bool,
}

impl SimExchangeBuilder {
    /// Replays this kline file or folder (default: the seeded random walk).
    pub fn data(mut self, path: impl Into<PathBuf>) -> Self {
        self.data = Some(path.into());
        self
    }

    /// Replays the repository's 5m klines of `symbols` (one file, or the folder for several)
    /// and serves only those.
    pub fn repo_data(self, symbols: &[&str]) -> Self {
        let data = match symbols {
            [one] => repo_klines(one),
            _ => repo_klines_dir(),
        };
        self.data(data).symbols(symbols)
    }

    /// Serves only these symbols.
    pub fn symbols(mut self, symbols: &[&str]) -> Self {
        self.symbols = symbols.iter().map(|s| (*s).to_owned()).collect();
        self
    }

    /// Replay speed (×N real time); the default 0 moves only when a test steps `/sim/step`.
    pub fn speed(mut self, speed: f64) -> Self {
        self.speed = speed.to_string();
        self
    }

    /// Candles already closed at start (default: the simulator's).
    pub fn warmup_candles(mut self, n: usize) -> Self {
        self.warmup_candles = Some(n);
        self
    }

    /// Accepts this API key and secret (more than one call: several accounts).
    pub fn key(mut self, key: &str, secret: &str) -> Self {
        self.keys.push((key.to_owned(), secret.to_owned()));
        self
    }

    /// A setting of the simulator's TOML config file, as `name = value` (TOML syntax):
    /// `initial_balance = "5000"`, `taker_fee = "0.0004"`, ….
    pub fn setting(mut self, line: &str) -> Self {
        self.settings.push(line.to_owned());
        self
    }

    /// A fault through its environment variable (`SIM_FAULT_ERROR_RATE`, `SIM_FAULT_LOSE_RATE`,
    /// `SIM_FAULT_LATENCY_MS`, `SIM_FAULT_LOST_MS`).
    pub fn fault(self, var: &str, value: &str) -> Self {
        self.env(var, value)
    }

    /// Any other environment variable of the process.
    pub fn env(mut self, var: &str, value: &str) -> Self {
        self.env.push((var.to_owned(), value.to_owned()));
        self
    }

    /// Other command-line flags (`--no-rate-limits`, `--seed`, `7`, …).
    pub fn args<S: AsRef<str>>(mut self, args: &[S]) -> Self {
        self.args.extend(args.iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Keeps a state snapshot in the fixture's folder, so a restart resumes the accounts.
    pub fn with_state(mut self) -> Self {
        self.state = true;
        self
    }

    /// Starts the binary in a temp folder of its own, on a free port, and waits until it
    /// answers `/health/ready` (panics with its output after 30 s).
    pub fn start(self) -> SimExchange {
        self.start_in(tempfile::tempdir().unwrap())
    }

    /// [`SimExchangeBuilder::start`] with its log, config and state in `dir`.
    pub fn start_in(self, dir: TempDir) -> SimExchange {
        let addr = format!("127.0.0.1:{}", crate::free_port());
        let mut args: Vec<String> = vec!["--listen".into(), addr.clone()];
        if let Some(d) = &self.data {
            args.extend(["--data".into(), d.display().to_string()]);
        }
        if !self.symbols.is_empty() {
            args.extend(["--symbols".into(), self.symbols.join(",")]);
        }
        args.extend(["--speed".into(), self.speed.clone()]);
        if let Some(n) = self.warmup_candles {
            args.extend(["--warmup-candles".into(), n.to_string()]);
        }
        if self.state {
            args.extend([
                "--state-dir".into(),
                dir.path().join("state").display().to_string(),
            ]);
        }
        if !self.settings.is_empty() {
            let file = dir.path().join("sim-exchange.toml");
            std::fs::write(&file, self.settings.join("\n") + "\n").unwrap();
            args.extend(["--config".into(), file.display().to_string()]);
        }
        args.extend(self.args.iter().cloned());
        let mut env = self.env.clone();
        if !self.keys.is_empty() {
            let keys: Vec<String> = self.keys.iter().map(|(k, s)| format!("{k}:{s}")).collect();
            env.push(("SIM_API_KEYS".into(), keys.join(",")));
        }
        let args_ref: Vec<&str> = args.iter().map(String::as_str).collect();
        let env_ref: Vec<(&str, &str)> =
            env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let child = ChildService::spawn(
            bin_path("sim-exchange"),
            &args_ref,
            &env_ref,
            dir.path().join("sim-exchange.log"),
        );
        let mut sim = SimExchange { child, addr, dir };
        sim.wait_ready();
        sim
    }
}

/// A running `sim-exchange` process. Dropping it kills the process and removes its folder.
#[derive(Debug)]
pub struct SimExchange {
    child: ChildService,
    addr: String,
    dir: TempDir,
}

impl SimExchange {
    /// A builder with no keys, the random walk and speed 0.
    pub fn builder() -> SimExchangeBuilder {
        SimExchangeBuilder {
            data: None,
            symbols: Vec::new(),
            speed: "0".into(),
            warmup_candles: None,
            keys: Vec::new(),
            settings: Vec::new(),
            args: Vec::new(),
            env: Vec::new(),
            state: false,
        }
    }

    /// `host:port`.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// `http://host:port`, the REST base URL (`QT_EXCHANGE_REST_URL`).
    pub fn rest_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `ws://host:port`, the WebSocket base URL (`QT_EXCHANGE_WS_URL`).
    pub fn ws_url(&self) -> String {
        format!("ws://{}", self.addr)
    }

    /// The fixture's folder (log, config file, state).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Leaves the folder on disk when the fixture is dropped (for a post-mortem).
    pub fn keep_folder(&mut self) {
        self.dir.disable_cleanup(true);
    }

    /// Everything the process wrote so far.
    pub fn output(&self) -> String {
        self.child.output()
    }

    pub fn is_running(&mut self) -> bool {
        self.child.is_running()
    }

    /// SIGKILL and reap: connections drop, nothing is saved.
    pub fn kill9(&mut self) {
        self.child.kill9();
    }

    /// SIGTERM (the simulator saves its state), and the exit status.
    pub fn terminate(&mut self, secs: u64) -> std::process::ExitStatus {
        self.child.terminate(secs)
    }

    /// Starts the process again with the same flags, port and folder, and waits until ready.
    pub fn restart(&mut self) {
        self.child.start();
        self.wait_ready();
    }

    /// `POST path` (a `/sim/…` control call), panicking unless it answers 2xx; the body.
    pub fn control(&self, path_and_query: &str) -> String {
        let (status, body) = crate::http::http_post(&self.addr, path_and_query)
            .unwrap_or_else(|| panic!("{path_and_query}: no answer"));
        assert!(
            (200..300).contains(&status),
            "{path_and_query}: {status} {body}"
        );
        body
    }

    /// Closes `n` more candles of the replay (`POST /sim/step?candles=n`).
    pub fn step(&self, n: u32) {
        self.control(&format!("/sim/step?candles={n}"));
    }

    fn wait_ready(&mut self) {
        let (child, addr) = (&mut self.child, self.addr.as_str());
        wait_for(30, "sim-exchange to be ready", || {
            if !child.is_running() {
                panic!("sim-exchange exited: {}", child.output());
            }
            http_get(addr, "/health/ready")
                .filter(|(s, _)| *s == 200)
                .map(|_| ())
        });
    }
}
