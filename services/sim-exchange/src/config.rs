//! Configuration of the simulator: keys, market source, fill model, limits, faults.

use std::collections::BTreeMap;
use std::path::PathBuf;

use qt_events::Decimal;
use qt_events::clock::SharedClock;
use qt_matching::FillModel;
use serde::{Deserialize, Serialize};

/// An API key and its secret. `Debug` never shows the secret.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ApiKey {
    pub key: String,
    pub secret: String,
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKey")
            .field("key", &self.key)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// Parse `key:secret[,key:secret…]` (the `SIM_API_KEYS` format).
pub fn parse_api_keys(s: &str) -> Result<Vec<ApiKey>, String> {
    s.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair
                .split_once(':')
                .ok_or_else(|| "expected key:secret pairs separated by commas".to_string())?;
            if k.is_empty() || v.is_empty() {
                return Err("empty key or secret".to_string());
            }
            Ok(ApiKey {
                key: k.to_string(),
                secret: v.to_string(),
            })
        })
        .collect()
}

/// Rate limits, Binance's defaults unless changed. Zero disables a limit.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, rename_all = "camelCase")]
pub struct Limits {
    /// Request weight per IP per minute (`X-MBX-USED-WEIGHT-1M`).
    pub weight_per_minute: u32,
    /// Orders per account per 10 s (`X-MBX-ORDER-COUNT-10S`).
    pub orders_per_10s: u32,
    /// Orders per account per minute (`X-MBX-ORDER-COUNT-1M`).
    pub orders_per_minute: u32,
    /// After this many 429s in one minute an IP gets 418 (banned) for `ban_seconds`.
    pub ban_after_429s: u32,
    pub ban_seconds: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            weight_per_minute: 2400,
            orders_per_10s: 300,
            orders_per_minute: 1200,
            ban_after_429s: 50,
            ban_seconds: 120,
        }
    }
}

impl Limits {
    /// No limits at all (benchmarks).
    pub fn unlimited() -> Self {
        Self {
            weight_per_minute: 0,
            orders_per_10s: 0,
            orders_per_minute: 0,
            ban_after_429s: 0,
            ban_seconds: 0,
        }
    }
}

/// Fault injection, for tests of the client's error handling.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(default, rename_all = "camelCase")]
pub struct Faults {
    /// Added latency before every `/fapi` request is handled, ms.
    pub latency_ms: u64,
    /// Added latency before the requests of one path are handled, ms by path, on top of
    /// `latency_ms` (`{"/fapi/v1/leverage": 3000}` holds every set-leverage request 3 s).
    pub path_latency_ms: BTreeMap<String, u64>,
    /// Share (0–1) of `/fapi` requests answered `503 Service Unavailable` without being handled.
    pub error_rate: f64,
    /// Share (0–1) of order placements that are executed but whose response is lost: the
    /// server holds the answer for `lost_response_ms` and then answers 503 / -1007
    /// ("execution status unknown").
    pub lose_response_rate: f64,
    /// The next N `/fapi` requests fail with 503 (deterministic variant of `error_rate`).
    pub fail_next: u32,
    /// The next N order placements are executed and their responses lost (deterministic).
    pub lose_next: u32,
    /// How long a lost response is held before the 503, ms.
    pub lost_response_ms: u64,
    /// Every WebSocket connection opened while this is set is dropped (no close frame) after
    /// this many ms; 0 = never.
    pub ws_drop_after_ms: u64,
}

/// Where the market comes from.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub enum MarketSource {
    /// Binance kline files: a file (`BTCUSDT-5m.csv.gz`) or a folder of them.
    Files(PathBuf),
    /// A seeded random walk.
    Synthetic,
}

/// How funding is charged at each funding time of the replay clock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct FundingSettings {
    /// Folder of Binance `SYMBOL-fundingRate.csv` files; `None` charges the default rate only.
    /// The binary looks for one beside the replayed kline files ([`funding_dir_beside`]).
    pub dir: Option<PathBuf>,
    /// Rate per interval where no history covers the time: 0.0001 (0.01 %), Binance's rate
    /// with a zero premium.
    pub default_rate: Decimal,
    /// Hours between funding times where no history covers the time, from 00:00 UTC. Default 8.
    pub interval_hours: u32,
}

impl Default for FundingSettings {
    fn default() -> Self {
        Self {
            dir: None,
            default_rate: Decimal::new(1, 4),
            interval_hours: 8,
        }
    }
}

/// A `funding` folder beside replayed kline files, when there is one: for the file or folder
/// `data`, the folder holding the kline files (`D`) is looked in for `D/funding`, then its
/// parent for `D/../funding` (`futures/5m/` beside `futures/funding/`).
pub fn funding_dir_beside(data: &std::path::Path) -> Option<PathBuf> {
    let klines = if data.is_dir() { data } else { data.parent()? };
    [
        Some(klines.join("funding")),
        klines.parent().map(|p| p.join("funding")),
    ]
    .into_iter()
    .flatten()
    .find(|d| d.is_dir())
}

/// The simulator's settings from configuration files and the environment: the `[sim_exchange]`
/// table of `QT_CONFIG` and `QT_SIM_EXCHANGE__*` variables (qt-runtime's layered loader, as for
/// every binary), then the file of `--config` (top-level keys). Unset fields keep the
/// simulator's defaults; the command-line flags come on top.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// API keys as `key:secret` (more accounts: more entries).
    pub keys: Vec<String>,
    pub initial_balance: Option<Decimal>,
    pub warmup_candles: Option<usize>,
    pub default_leverage: Option<u32>,
    pub maker_fee: Option<Decimal>,
    pub taker_fee: Option<Decimal>,
    pub slippage: Option<Decimal>,
    pub max_volume_share: Option<Decimal>,
    pub funding_rate: Option<Decimal>,
    pub funding_interval_hours: Option<u32>,
}

impl std::fmt::Debug for Settings {
    /// Shows how many keys there are, never a secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("keys", &self.keys.len())
            .field("initial_balance", &self.initial_balance)
            .field("warmup_candles", &self.warmup_candles)
            .field("default_leverage", &self.default_leverage)
            .field("maker_fee", &self.maker_fee)
            .field("taker_fee", &self.taker_fee)
            .field("slippage", &self.slippage)
            .field("max_volume_share", &self.max_volume_share)
            .field("funding_rate", &self.funding_rate)
            .field("funding_interval_hours", &self.funding_interval_hours)
            .finish()
    }
}

impl Settings {
    /// `self` with every field `over` sets replaced (keys are added).
    #[must_use]
    pub fn then(mut self, over: Settings) -> Settings {
        self.keys.extend(over.keys);
        macro_rules! take {
            ($($f:ident),*) => { $( if over.$f.is_some() { self.$f = over.$f; } )* };
        }
        take!(
            initial_balance,
            warmup_candles,
            default_leverage,
            maker_fee,
            taker_fee,
            slippage,
            max_volume_share,
            funding_rate,
            funding_interval_hours
        );
        self
    }

    /// Puts the settings into `cfg`. A key that is not `key:secret` is an error naming `keys`.
    pub fn apply(&self, cfg: &mut SimConfig) -> Result<(), String> {
        for pair in &self.keys {
            cfg.keys
                .extend(parse_api_keys(pair).map_err(|e| format!("bad setting keys: {e}"))?);
        }
        if let Some(w) = self.warmup_candles {
            cfg.warmup_candles = w;
        }
        if let Some(b) = self.initial_balance {
            cfg.initial_balance = b;
        }
        if let Some(l) = self.default_leverage {
            cfg.default_leverage = l;
        }
        if let Some(x) = self.maker_fee {
            cfg.fill_model.maker_fee = x;
        }
        if let Some(x) = self.taker_fee {
            cfg.fill_model.taker_fee = x;
        }
        if let Some(x) = self.slippage {
            cfg.fill_model.slippage = x;
        }
        if let Some(x) = self.max_volume_share {
            cfg.fill_model.max_volume_share = x;
        }
        if let Some(r) = self.funding_rate {
            cfg.funding.default_rate = r;
        }
        if let Some(h) = self.funding_interval_hours {
            cfg.funding.interval_hours = h.max(1);
        }
        Ok(())
    }
}

/// Everything `serve` needs.
#[derive(Clone)]
pub struct SimConfig {
    pub keys: Vec<ApiKey>,
    pub source: MarketSource,
    /// Symbols to serve; empty means every symbol found in the files (synthetic: BTCUSDT,
    /// ETHUSDT).
    pub symbols: Vec<String>,
    /// Replay speed: one candle every `interval / speed` of wall time; 0 = only stepped by
    /// the control API.
    pub speed: f64,
    /// Candles already closed when the simulation starts (klines history).
    pub warmup_candles: usize,
    /// Synthetic walk: interval and seed.
    pub synthetic_interval_ms: i64,
    pub seed: u64,
    /// Snapshot folder; `None` keeps state in memory only.
    pub state_dir: Option<PathBuf>,
    /// Starting USDT wallet of each account.
    pub initial_balance: Decimal,
    pub default_leverage: u32,
    /// Maintenance margin rate (one simple bracket).
    pub maint_margin_rate: Decimal,
    pub fill_model: FillModel,
    /// Funding rates and schedule.
    pub funding: FundingSettings,
    pub limits: Limits,
    pub faults: Faults,
    /// Lifetime of a listenKey without keepalive, ms (Binance: 60 min).
    pub listen_key_ttl_ms: i64,
    /// Serve the test-only control API under `/sim`.
    pub control_api: bool,
    /// Server clock (signatures, event times, rate-limit windows, listenKey expiry).
    pub clock: SharedClock,
}

impl std::fmt::Debug for SimConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimConfig")
            .field("keys", &self.keys)
            .field("source", &self.source)
            .field("symbols", &self.symbols)
            .field("speed", &self.speed)
            .field("state_dir", &self.state_dir)
            .field("funding", &self.funding)
            .field("limits", &self.limits)
            .field("faults", &self.faults)
            .finish_non_exhaustive()
    }
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            keys: Vec::new(),
            source: MarketSource::Synthetic,
            symbols: Vec::new(),
            speed: 0.0,
            warmup_candles: 500,
            synthetic_interval_ms: 300_000,
            seed: 42,
            state_dir: None,
            initial_balance: Decimal::new(10_000, 0),
            default_leverage: 20,
            maint_margin_rate: Decimal::new(4, 3),
            fill_model: FillModel::default(),
            funding: FundingSettings::default(),
            limits: Limits::default(),
            faults: Faults::default(),
            listen_key_ttl_ms: 3_600_000,
            control_api: true,
            clock: qt_events::clock::system(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_keys_parse_and_debug_hides_the_secret() {
        let keys = parse_api_keys("k1:s1, k2:s2").unwrap_or_default();
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[1].secret, "s2");
        let dbg = format!("{keys:?}");
        assert!(dbg.contains("k1") && !dbg.contains("s1"));
        assert!(parse_api_keys("nocolon").is_err());
        let cfg = SimConfig {
            keys,
            ..SimConfig::default()
        };
        let dbg = format!("{cfg:?}");
        assert!(dbg.contains("k2") && !dbg.contains("s2"), "{dbg}");
    }

    #[test]
    #[allow(clippy::unwrap_used)]
    fn a_funding_folder_is_found_beside_the_kline_files() {
        let dir = tempfile::tempdir().unwrap();
        let klines = dir.path().join("futures/5m");
        std::fs::create_dir_all(&klines).unwrap();
        let file = klines.join("BTCUSDT-5m.csv");
        std::fs::write(&file, "").unwrap();
        assert_eq!(funding_dir_beside(&file), None);
        let sibling = dir.path().join("futures/funding");
        std::fs::create_dir_all(&sibling).unwrap();
        assert_eq!(funding_dir_beside(&file), Some(sibling.clone()));
        assert_eq!(funding_dir_beside(&klines), Some(sibling));
        let inner = klines.join("funding");
        std::fs::create_dir_all(&inner).unwrap();
        assert_eq!(funding_dir_beside(&klines), Some(inner));
    }
}
