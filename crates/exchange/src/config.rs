//! Where the client connects, with which credentials, and how patient it is.
//!
//! Every base URL lives here so that paper (the simulator), testnet and mainnet differ only in
//! configuration. Secrets are [`SecretString`]s: `Debug` prints whether they are set, never what
//! they are, and no error built here contains them.

use secrecy::SecretString;
use serde::Deserialize;

use crate::modes::AccountModes;

/// Which exchange the services talk to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// The built-in simulator (`sim-exchange`), Binance's protocol on localhost.
    #[default]
    Paper,
    /// Binance's futures testnet (demo trading).
    Testnet,
    /// Binance USDⓈ-M mainnet: real money.
    Live,
}

impl Mode {
    /// Parses `paper`, `testnet` or `live` (the values of `QT_EXCHANGE`).
    pub fn parse(s: &str) -> Option<Mode> {
        match s.trim() {
            "paper" => Some(Mode::Paper),
            "testnet" => Some(Mode::Testnet),
            "live" => Some(Mode::Live),
            _ => None,
        }
    }

    /// The value of `QT_EXCHANGE` that names this mode.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Paper => "paper",
            Mode::Testnet => "testnet",
            Mode::Live => "live",
        }
    }

    /// The Binance environment this mode trades on (`None` for paper: the simulator).
    pub fn binance(self) -> Option<&'static BinanceHosts> {
        let name = match self {
            Mode::Paper => return None,
            Mode::Testnet => "demo",
            Mode::Live => "mainnet",
        };
        BINANCE_HOSTS.iter().find(|h| h.environment == name)
    }

    /// The default REST base URL of this mode (no trailing slash).
    pub fn default_rest_url(self) -> &'static str {
        self.binance().map_or(SIM_URL, |h| h.rest)
    }

    /// The default WebSocket base URL of this mode; the client appends `/market`, `/public` or
    /// `/private` to it.
    pub fn default_ws_url(self) -> &'static str {
        self.binance().map_or(SIM_WS_URL, |h| h.ws)
    }
}

/// The simulator's default address (paper mode), REST and WebSocket.
const SIM_URL: &str = "http://127.0.0.1:8090";
const SIM_WS_URL: &str = "ws://127.0.0.1:8090";

/// One Binance USDⓈ-M environment: its REST host and the stream host that serves the same
/// accounts and markets. A REST host of one environment with the streams of another would
/// place orders on one account and listen for their fills on another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BinanceHosts {
    /// `mainnet`, `demo` or `testnet`.
    pub environment: &'static str,
    /// REST base URL (`/fapi/...` is appended).
    pub rest: &'static str,
    /// WebSocket base URL (`/market`, `/public`, `/private` are appended).
    pub ws: &'static str,
}

/// Binance's USDⓈ-M hosts, paired as Binance documents them: mainnet (General Info and
/// WebSocket Market Streams pages), Demo Trading, which the documentation now names the futures
/// testnet (`demo-fapi` with `demo-fstream`), and the older futures testnet that the official
/// connectors still name (`testnet.binancefuture.com` with `fstream.binancefuture.com`).
/// `QT_EXCHANGE=testnet` uses Demo Trading; overriding one URL with a host of this table takes
/// its pair for the other.
pub const BINANCE_HOSTS: &[BinanceHosts] = &[
    BinanceHosts {
        environment: "mainnet",
        rest: "https://fapi.binance.com",
        ws: "wss://fstream.binance.com",
    },
    BinanceHosts {
        environment: "demo",
        rest: "https://demo-fapi.binance.com",
        ws: "wss://demo-fstream.binance.com",
    },
    BinanceHosts {
        environment: "testnet",
        rest: "https://testnet.binancefuture.com",
        ws: "wss://fstream.binancefuture.com",
    },
];

/// The scheme and host of a URL (`https://fapi.binance.com` of `https://fapi.binance.com/x`).
fn origin(url: &str) -> &str {
    let after = url.find("://").map_or(0, |i| i + 3);
    url[after..].find('/').map_or(url, |i| &url[..after + i])
}

/// The Binance environment a REST URL belongs to, if it is one of [`BINANCE_HOSTS`].
fn rest_environment(url: &str) -> Option<&'static BinanceHosts> {
    BINANCE_HOSTS.iter().find(|h| h.rest == origin(url))
}

/// The Binance environment a WebSocket URL belongs to, if it is one of [`BINANCE_HOSTS`].
fn ws_environment(url: &str) -> Option<&'static BinanceHosts> {
    BINANCE_HOSTS.iter().find(|h| h.ws == origin(url))
}

/// A setting that could not be read; names the setting, never a secret's value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A variable held a value outside its allowed set or range.
    #[error("{name}: expected {expected}, got {got:?}")]
    Invalid {
        name: &'static str,
        expected: &'static str,
        got: String,
    },
    /// The REST and WebSocket URLs (or the mode) name different Binance environments.
    #[error("{name}: {reason}")]
    Mismatch { name: &'static str, reason: String },
    /// A secrets file could not be read.
    #[error("{name}: cannot read {path:?}: {reason}")]
    SecretFile {
        name: &'static str,
        path: String,
        reason: String,
    },
}

/// Timing of the WebSocket connections; every duration is configurable so tests can shorten it.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct WsConfig {
    /// First reconnect delay after a connection drops or fails (ms); doubles per failed attempt.
    pub reconnect_backoff_min_ms: u64,
    /// Ceiling of the reconnect delay (ms).
    pub reconnect_backoff_max_ms: u64,
    /// A connection is closed and reopened after this long (ms), before Binance's 24 h cut.
    pub max_connection_age_ms: u64,
    /// How often the user stream's listenKey is kept alive (ms); Binance wants at most 60 min.
    pub listen_key_keepalive_ms: u64,
}

impl Default for WsConfig {
    fn default() -> Self {
        Self {
            reconnect_backoff_min_ms: 250,
            reconnect_backoff_max_ms: 30_000,
            max_connection_age_ms: 23 * 3_600_000 + 30 * 60_000,
            listen_key_keepalive_ms: 30 * 60_000,
        }
    }
}

/// Everything the Binance client needs. `Debug` hides the key and the secret.
#[derive(Clone, Deserialize)]
#[serde(default)]
pub struct ExchangeConfig {
    /// Which exchange: paper (default), testnet or live.
    pub mode: Mode,
    /// REST base URL without trailing slash, e.g. `https://fapi.binance.com`.
    pub rest_url: String,
    /// WebSocket base URL without trailing slash, e.g. `wss://fstream.binance.com`.
    pub ws_url: String,
    /// API key, sent as `X-MBX-APIKEY`. Needed for account, order and listenKey endpoints.
    pub api_key: Option<SecretString>,
    /// API secret, the HMAC-SHA256 key that signs TRADE and USER_DATA requests.
    pub api_secret: Option<SecretString>,
    /// `recvWindow` sent with every signed request (ms). Default 2000 (Binance recommends at
    /// most 5000): after a crash, an order whose answer was lost stays undecided until its
    /// window has passed (the fence), and an urgent close or stop caught that way must still
    /// land within the 5 s a position may go without protection. A request slower than the
    /// window is refused with -1021, which resyncs the clock and retries.
    pub recv_window_ms: u64,
    /// Whole-request timeout of a REST call (ms); a timeout on an order is an unknown outcome.
    pub request_timeout_ms: u64,
    /// IP request weight the client allows itself per minute (Binance: 2400).
    pub weight_limit_1m: u32,
    /// Orders the client allows itself per 10 s (Binance: 300).
    pub order_limit_10s: u32,
    /// Orders the client allows itself per minute (Binance: 1200).
    pub order_limit_1m: u32,
    /// Share of each order window (percent) that orders opening or adding to a position may
    /// use; the rest is kept for reducing orders. Default 40.
    pub opening_order_share_pct: u32,
    /// Share of each order window (percent) that take-profits and other non-protective
    /// reducing orders may use; the rest is kept for stops and closes at market. Default 60:
    /// every entry needs its stop, so the protective share (100 − 60) must hold the stops of
    /// as many entries as the opening share lets into one window (40), or a burst of entries
    /// leaves the last ones bare until the next window.
    pub reducing_order_share_pct: u32,
    /// Wait after a 429/418 that carries no `Retry-After` (ms); doubles on each repeat.
    pub ban_backoff_ms: u64,
    /// Extra margin past `timestamp + recvWindow` before an unknown outcome is queried (ms).
    pub resolve_margin_ms: u64,
    /// WebSocket timings.
    pub ws: WsConfig,
    /// The account's position mode and multi-assets mode, as the configuration says they are
    /// (`QT_POSITION_MODE`, `QT_MULTI_ASSETS_MARGIN`); a service that trades refuses to start
    /// when the account's differ ([`crate::check_account_modes`]).
    pub account_modes: AccountModes,
}

impl Default for ExchangeConfig {
    fn default() -> Self {
        Self::for_mode(Mode::Paper)
    }
}

impl std::fmt::Debug for ExchangeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = |s: &Option<SecretString>| if s.is_some() { "<set>" } else { "<unset>" };
        f.debug_struct("ExchangeConfig")
            .field("mode", &self.mode)
            .field("rest_url", &self.rest_url)
            .field("ws_url", &self.ws_url)
            .field("api_key", &set(&self.api_key))
            .field("api_secret", &set(&self.api_secret))
            .field("recv_window_ms", &self.recv_window_ms)
            .field("request_timeout_ms", &self.request_timeout_ms)
            .field("weight_limit_1m", &self.weight_limit_1m)
            .field("order_limit_10s", &self.order_limit_10s)
            .field("order_limit_1m", &self.order_limit_1m)
            .field("opening_order_share_pct", &self.opening_order_share_pct)
            .field("reducing_order_share_pct", &self.reducing_order_share_pct)
            .field("ban_backoff_ms", &self.ban_backoff_ms)
            .field("resolve_margin_ms", &self.resolve_margin_ms)
            .field("ws", &self.ws)
            .field("account_modes", &self.account_modes)
            .finish()
    }
}

impl ExchangeConfig {
    /// Defaults for `mode`, with its default URLs and no credentials.
    pub fn for_mode(mode: Mode) -> Self {
        Self {
            mode,
            rest_url: mode.default_rest_url().to_string(),
            ws_url: mode.default_ws_url().to_string(),
            api_key: None,
            api_secret: None,
            recv_window_ms: 2_000,
            request_timeout_ms: 10_000,
            weight_limit_1m: 2_400,
            order_limit_10s: 300,
            order_limit_1m: 1_200,
            opening_order_share_pct: 40,
            reducing_order_share_pct: 60,
            ban_backoff_ms: 5_000,
            resolve_margin_ms: 1_000,
            ws: WsConfig::default(),
            account_modes: AccountModes::default(),
        }
    }

    /// Points the client at any server (the simulator in tests): both base URLs at once.
    pub fn with_urls(mut self, rest_url: impl Into<String>, ws_url: impl Into<String>) -> Self {
        self.rest_url = trim_slash(rest_url.into());
        self.ws_url = trim_slash(ws_url.into());
        self
    }

    /// Sets the API key and secret.
    pub fn with_credentials(mut self, key: impl Into<String>, secret: impl Into<String>) -> Self {
        self.api_key = Some(SecretString::from(key.into()));
        self.api_secret = Some(SecretString::from(secret.into()));
        self
    }

    /// Reads the configuration from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_env_with(|name| std::env::var(name).ok())
    }

    /// Reads `QT_EXCHANGE` (paper|testnet|live, default paper), `QT_SIM_URL` (the simulator's
    /// address in paper mode, default `http://127.0.0.1:8090`), `QT_EXCHANGE_REST_URL`,
    /// `QT_EXCHANGE_WS_URL` (default: the mode's hosts; one set to a Binance host brings its
    /// pair), `QT_API_KEY` or `QT_API_KEY_FILE`, `QT_API_SECRET` or `QT_API_SECRET_FILE`,
    /// `QT_EXCHANGE_RECV_WINDOW_MS`, and `QT_POSITION_MODE` and `QT_MULTI_ASSETS_MARGIN`
    /// ([`AccountModes`]), through `get` (so tests need not touch the environment).
    pub fn from_env_with(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let nonempty = |name: &str| get(name).filter(|v| !v.trim().is_empty());
        let mode = match nonempty("QT_EXCHANGE") {
            None => Mode::Paper,
            Some(v) => Mode::parse(&v).ok_or(ConfigError::Invalid {
                name: "QT_EXCHANGE",
                expected: "paper|testnet|live",
                got: v,
            })?,
        };
        let mut cfg = Self::for_mode(mode);
        if mode == Mode::Paper
            && let Some(url) = nonempty("QT_SIM_URL")
        {
            let url = check_url("QT_SIM_URL", url, &["http://", "https://"])?;
            cfg.ws_url = url.replacen("http", "ws", 1);
            cfg.rest_url = url;
        }
        let rest = nonempty("QT_EXCHANGE_REST_URL")
            .map(|url| check_url("QT_EXCHANGE_REST_URL", url, &["http://", "https://"]))
            .transpose()?;
        let ws = nonempty("QT_EXCHANGE_WS_URL")
            .map(|url| check_url("QT_EXCHANGE_WS_URL", url, &["ws://", "wss://"]))
            .transpose()?;
        // One URL set to a Binance host brings the other host of its environment.
        match (&rest, &ws) {
            (Some(r), None) => {
                if let Some(h) = rest_environment(r) {
                    cfg.ws_url = h.ws.to_string();
                }
            }
            (None, Some(w)) => {
                if let Some(h) = ws_environment(w) {
                    cfg.rest_url = h.rest.to_string();
                }
            }
            _ => {}
        }
        if let Some(r) = rest {
            cfg.rest_url = r;
        }
        if let Some(w) = ws {
            cfg.ws_url = w;
        }
        cfg.check_pairing()?;
        if let Some(v) = nonempty("QT_EXCHANGE_RECV_WINDOW_MS") {
            cfg.recv_window_ms = v
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|w| (1..=60_000).contains(w))
                .ok_or(ConfigError::Invalid {
                    name: "QT_EXCHANGE_RECV_WINDOW_MS",
                    expected: "an integer from 1 to 60000",
                    got: v,
                })?;
        }
        cfg.account_modes = AccountModes::from_env_with(&get)?;
        cfg.api_key = secret(&nonempty, "QT_API_KEY", "QT_API_KEY_FILE")?;
        cfg.api_secret = secret(&nonempty, "QT_API_SECRET", "QT_API_SECRET_FILE")?;
        Ok(cfg)
    }

    /// Refuses a REST host and a stream host of different Binance environments, and a Binance
    /// host of another environment than the mode's (a `testnet` run must not reach mainnet, a
    /// `live` run must not trade on a test account). Hosts outside [`BINANCE_HOSTS`] (the
    /// simulator, a proxy) are the operator's choice and pass.
    pub fn check_pairing(&self) -> Result<(), ConfigError> {
        let (rest, ws) = (
            rest_environment(&self.rest_url),
            ws_environment(&self.ws_url),
        );
        if let (Some(r), Some(w)) = (rest, ws)
            && r.environment != w.environment
        {
            return Err(ConfigError::Mismatch {
                name: "QT_EXCHANGE_WS_URL",
                reason: format!(
                    "{} is Binance {}'s stream host but the REST host {} is {}'s; its streams \
                     are {}",
                    self.ws_url, w.environment, self.rest_url, r.environment, r.ws
                ),
            });
        }
        let allowed: &[&str] = match self.mode {
            Mode::Paper => &[],
            Mode::Testnet => &["demo", "testnet"],
            Mode::Live => &["mainnet"],
        };
        for (name, url, env) in [
            ("QT_EXCHANGE_REST_URL", &self.rest_url, rest),
            ("QT_EXCHANGE_WS_URL", &self.ws_url, ws),
        ] {
            if let Some(h) = env.filter(|h| !allowed.contains(&h.environment)) {
                return Err(ConfigError::Mismatch {
                    name,
                    reason: format!(
                        "{url} is Binance {}, not an exchange of QT_EXCHANGE={}",
                        h.environment,
                        self.mode.name()
                    ),
                });
            }
        }
        Ok(())
    }
}

/// A secret from `var`, else from the file named by `file_var` (trimmed; an unreadable file is
/// an error naming the setting and the path, never the content).
fn secret(
    nonempty: &impl Fn(&str) -> Option<String>,
    var: &'static str,
    file_var: &'static str,
) -> Result<Option<SecretString>, ConfigError> {
    if let Some(s) = nonempty(var) {
        return Ok(Some(SecretString::from(s.trim().to_string())));
    }
    let Some(path) = nonempty(file_var) else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(&path).map_err(|e| ConfigError::SecretFile {
        name: file_var,
        path: path.clone(),
        reason: e.kind().to_string(),
    })?;
    let text = text.trim();
    Ok((!text.is_empty()).then(|| SecretString::from(text.to_string())))
}

fn trim_slash(mut s: String) -> String {
    while s.ends_with('/') {
        s.pop();
    }
    s
}

fn check_url(
    name: &'static str,
    url: String,
    schemes: &[&'static str],
) -> Result<String, ConfigError> {
    let url = url.trim().to_string();
    if schemes.iter().any(|s| url.starts_with(s)) && url.len() > 8 {
        Ok(trim_slash(url))
    } else {
        Err(ConfigError::Invalid {
            name,
            expected: if schemes[0].starts_with("ws") {
                "a ws:// or wss:// URL"
            } else {
                "an http:// or https:// URL"
            },
            got: url,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn empty_environment_means_paper_on_the_simulator_address() {
        let c = ExchangeConfig::from_env_with(env(&[])).unwrap();
        assert_eq!(c.mode, Mode::Paper);
        assert_eq!(c.rest_url, "http://127.0.0.1:8090");
        assert_eq!(c.ws_url, "ws://127.0.0.1:8090");
        assert!(c.api_key.is_none() && c.api_secret.is_none());
    }

    #[test]
    fn each_mode_has_its_binance_hosts_and_overrides_win() {
        let t = ExchangeConfig::from_env_with(env(&[("QT_EXCHANGE", "testnet")])).unwrap();
        assert_eq!(t.rest_url, "https://demo-fapi.binance.com");
        assert_eq!(t.ws_url, "wss://demo-fstream.binance.com");
        let l = ExchangeConfig::from_env_with(env(&[("QT_EXCHANGE", "live")])).unwrap();
        assert_eq!(l.rest_url, "https://fapi.binance.com");
        assert_eq!(l.ws_url, "wss://fstream.binance.com");
        let l = ExchangeConfig::from_env_with(env(&[
            ("QT_EXCHANGE", "live"),
            ("QT_EXCHANGE_REST_URL", "http://10.0.0.1:9000/"),
        ]))
        .unwrap();
        assert_eq!(l.rest_url, "http://10.0.0.1:9000");
        assert_eq!(l.ws_url, "wss://fstream.binance.com");
    }

    #[test]
    fn binance_hosts_are_paired_by_environment_as_binance_documents_them() {
        // The table: every environment once, its REST and stream hosts on the same domain
        // family (mainnet on binance.com, demo on demo-*.binance.com, the old testnet on
        // binancefuture.com), TLS everywhere.
        let pairs: Vec<(&str, &str, &str)> = BINANCE_HOSTS
            .iter()
            .map(|h| (h.environment, h.rest, h.ws))
            .collect();
        assert_eq!(
            pairs,
            [
                (
                    "mainnet",
                    "https://fapi.binance.com",
                    "wss://fstream.binance.com"
                ),
                (
                    "demo",
                    "https://demo-fapi.binance.com",
                    "wss://demo-fstream.binance.com"
                ),
                (
                    "testnet",
                    "https://testnet.binancefuture.com",
                    "wss://fstream.binancefuture.com"
                ),
            ]
        );
        // Each mode's defaults are one row of the table.
        for (mode, environment) in [(Mode::Testnet, "demo"), (Mode::Live, "mainnet")] {
            let h = mode.binance().unwrap();
            assert_eq!(h.environment, environment);
            assert_eq!(
                (mode.default_rest_url(), mode.default_ws_url()),
                (h.rest, h.ws)
            );
            ExchangeConfig::for_mode(mode).check_pairing().unwrap();
        }
        // Overriding one URL with a Binance host takes its pair for the other.
        let c = ExchangeConfig::from_env_with(env(&[
            ("QT_EXCHANGE", "testnet"),
            ("QT_EXCHANGE_REST_URL", "https://testnet.binancefuture.com/"),
        ]))
        .unwrap();
        assert_eq!(c.ws_url, "wss://fstream.binancefuture.com");
        let c = ExchangeConfig::from_env_with(env(&[
            ("QT_EXCHANGE", "testnet"),
            ("QT_EXCHANGE_WS_URL", "wss://fstream.binancefuture.com"),
        ]))
        .unwrap();
        assert_eq!(c.rest_url, "https://testnet.binancefuture.com");
        // Two environments at once, or an environment the mode does not trade on, are refused.
        let e = ExchangeConfig::from_env_with(env(&[
            ("QT_EXCHANGE", "testnet"),
            ("QT_EXCHANGE_REST_URL", "https://demo-fapi.binance.com"),
            ("QT_EXCHANGE_WS_URL", "wss://fstream.binancefuture.com"),
        ]))
        .unwrap_err();
        assert!(
            e.to_string().starts_with("QT_EXCHANGE_WS_URL:")
                && e.to_string().contains("wss://demo-fstream.binance.com"),
            "{e}"
        );
        let e = ExchangeConfig::from_env_with(env(&[
            ("QT_EXCHANGE", "testnet"),
            ("QT_EXCHANGE_REST_URL", "https://fapi.binance.com"),
        ]))
        .unwrap_err();
        assert!(e.to_string().contains("mainnet"), "{e}");
        let e = ExchangeConfig::from_env_with(env(&[
            ("QT_EXCHANGE", "live"),
            ("QT_EXCHANGE_WS_URL", "wss://demo-fstream.binance.com"),
        ]))
        .unwrap_err();
        assert!(e.to_string().contains("demo"), "{e}");
        let e = ExchangeConfig::from_env_with(env(&[(
            "QT_EXCHANGE_REST_URL",
            "https://fapi.binance.com",
        )]))
        .unwrap_err();
        assert!(e.to_string().contains("QT_EXCHANGE=paper"), "{e}");
    }

    #[test]
    fn paper_mode_reaches_the_simulator_named_by_qt_sim_url_and_other_modes_ignore_it() {
        let sim = [("QT_SIM_URL", "http://sim-exchange:8090/")];
        let c = ExchangeConfig::from_env_with(env(&sim)).unwrap();
        assert_eq!(c.rest_url, "http://sim-exchange:8090");
        assert_eq!(c.ws_url, "ws://sim-exchange:8090");
        for (mode, rest) in [
            ("testnet", "https://demo-fapi.binance.com"),
            ("live", "https://fapi.binance.com"),
        ] {
            let c = ExchangeConfig::from_env_with(env(&[sim[0], ("QT_EXCHANGE", mode)])).unwrap();
            assert_eq!(c.rest_url, rest);
        }
        // Empty overrides (compose passes `${QT_EXCHANGE_REST_URL:-}`) mean unset.
        let c = ExchangeConfig::from_env_with(env(&[
            ("QT_EXCHANGE", "live"),
            ("QT_EXCHANGE_REST_URL", ""),
            ("QT_EXCHANGE_WS_URL", ""),
        ]))
        .unwrap();
        assert_eq!(c.ws_url, "wss://fstream.binance.com");
    }

    #[test]
    fn a_bad_mode_names_the_setting_and_the_value() {
        let e = ExchangeConfig::from_env_with(env(&[("QT_EXCHANGE", "foo")])).unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"QT_EXCHANGE: expected paper|testnet|live, got "foo""#
        );
        let e = ExchangeConfig::from_env_with(env(&[("QT_EXCHANGE_WS_URL", "http://x.y")]))
            .unwrap_err();
        assert!(e.to_string().starts_with("QT_EXCHANGE_WS_URL:"), "{e}");
    }

    #[test]
    fn secret_comes_from_a_file_and_never_shows_in_debug() {
        let dir = std::env::temp_dir().join(format!("qt-exchange-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("secret");
        std::fs::write(&path, "file-secret-value\n").unwrap();
        let key_path = dir.join("key");
        std::fs::write(&key_path, "file-key-value\n").unwrap();
        let c = ExchangeConfig::from_env_with(env(&[
            ("QT_API_KEY_FILE", key_path.to_str().unwrap()),
            ("QT_API_SECRET_FILE", path.to_str().unwrap()),
        ]))
        .unwrap();
        assert_eq!(
            c.api_key.as_ref().unwrap().expose_secret(),
            "file-key-value"
        );
        // The variable wins over the file (compose passes both).
        let c = ExchangeConfig::from_env_with(env(&[
            ("QT_API_KEY", "key-value-123"),
            ("QT_API_KEY_FILE", key_path.to_str().unwrap()),
            ("QT_API_SECRET_FILE", path.to_str().unwrap()),
        ]))
        .unwrap();
        assert_eq!(c.api_key.as_ref().unwrap().expose_secret(), "key-value-123");
        assert_eq!(
            c.api_secret.as_ref().unwrap().expose_secret(),
            "file-secret-value"
        );
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("file-secret-value") && !dbg.contains("key-value-123"));
        assert!(dbg.contains("<set>"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn config_deserializes_from_a_file_with_defaults_and_hides_secrets() {
        let c: ExchangeConfig = serde_json::from_str(
            r#"{"mode":"testnet","rest_url":"http://sim:8090","api_secret":"s3cr3t-in-file","ws":{"listen_key_keepalive_ms":1000}}"#,
        )
        .unwrap();
        assert_eq!(c.mode, Mode::Testnet);
        assert_eq!(c.rest_url, "http://sim:8090");
        assert_eq!(c.recv_window_ms, 2_000);
        assert_eq!(c.ws.listen_key_keepalive_ms, 1_000);
        assert_eq!(
            c.ws.reconnect_backoff_max_ms,
            WsConfig::default().reconnect_backoff_max_ms
        );
        assert!(!format!("{c:?}").contains("s3cr3t-in-file"));
    }

    #[test]
    fn an_unreadable_secret_file_names_the_setting_not_a_secret() {
        let e =
            ExchangeConfig::from_env_with(env(&[("QT_API_SECRET_FILE", "/nonexistent/qt/secret")]))
                .unwrap_err();
        assert!(e.to_string().starts_with("QT_API_SECRET_FILE:"), "{e}");
        let e = ExchangeConfig::from_env_with(env(&[("QT_API_KEY_FILE", "/nonexistent/qt/key")]))
            .unwrap_err();
        assert!(e.to_string().starts_with("QT_API_KEY_FILE:"), "{e}");
    }
}
