use std::collections::BTreeMap;

use qt_candles::Candle;

use crate::context::CONTEXT_NAMES;
use crate::htf::{HTF_NAMES, HigherTimeframes};
use crate::indicators::{
    Atr, Bbands, Ema, Macd, Obv, Patterns, Ring, RollingExtreme, RollingStats, Rsi, Sma, Vpt,
};
use crate::market::MARKET_NAMES;

/// Index of the first higher-timeframe feature ([`crate::htf`]).
pub const HTF_OFFSET: usize = CANDLE_NAMES.len();
/// Index of the first market-factor feature ([`crate::market`]).
pub const MARKET_OFFSET: usize = HTF_OFFSET + HTF_NAMES.len();
/// Index of the first funding input ([`crate::context`]).
pub const CONTEXT_OFFSET: usize = MARKET_OFFSET + MARKET_NAMES.len();
/// Number of features in a [`FeatureVector`].
pub const N_FEATURES: usize = CONTEXT_OFFSET + CONTEXT_NAMES.len();

/// Feature names, in the order of [`FeatureVector::values`]: the symbol's own candles' features,
/// then the higher timeframes' ([`HTF_NAMES`]), then the market factor's ([`MARKET_NAMES`]),
/// then the funding inputs ([`CONTEXT_NAMES`]: 0, with `funding_known` 0, unless the caller
/// gives the symbol's funding history).
/// Every feature is scale-free (a ratio, a return, an oscillator or a flag), so one model can
/// serve every symbol. "Day" windows are 24 hours of candles at the configured interval (288 at
/// 5m).
pub const FEATURE_NAMES: [&str; N_FEATURES] = {
    let mut names = [""; N_FEATURES];
    let mut i = 0;
    while i < N_FEATURES {
        names[i] = if i < HTF_OFFSET {
            CANDLE_NAMES[i]
        } else if i < MARKET_OFFSET {
            HTF_NAMES[i - HTF_OFFSET]
        } else if i < CONTEXT_OFFSET {
            MARKET_NAMES[i - MARKET_OFFSET]
        } else {
            CONTEXT_NAMES[i - CONTEXT_OFFSET]
        };
        i += 1;
    }
    names
};

/// Index of `name` in [`FEATURE_NAMES`], at compile time (a name not there does not compile).
const fn index_of(name: &str) -> usize {
    let mut i = 0;
    while i < N_FEATURES {
        let n = FEATURE_NAMES[i].as_bytes();
        let b = name.as_bytes();
        if n.len() == b.len() {
            let mut k = 0;
            while k < n.len() && n[k] == b[k] {
                k += 1;
            }
            if k == n.len() {
                return i;
            }
        }
        i += 1;
    }
    panic!("no such feature")
}

/// Index of `ret_48` (the market factor reads it on every candle).
pub(crate) const RET_48: usize = index_of("ret_48");
/// Index of `change_24h`.
pub(crate) const CHANGE_24H: usize = index_of("change_24h");

/// The features of the symbol's own candles, before the context features.
const CANDLE_NAMES: [&str; 37] = [
    // log return of the close over 1, 3, 12, 48 candles
    "ret_1",
    "ret_3",
    "ret_12",
    "ret_48",
    // close / close 24h ago - 1 (the momentum model's input)
    "change_24h",
    // sample std of 1-candle log returns over 12, 48 candles and a day
    "rv_12",
    "rv_48",
    "rv_24h",
    // close / SMA10 - 1, close / SMA50 - 1, close / EMA10 - 1, SMA10 / SMA50 - 1
    "sma10_dist",
    "sma50_dist",
    "ema10_dist",
    "sma10_sma50",
    // Wilder RSI 14, 0..100
    "rsi_14",
    // MACD 12/26/9 line, signal, histogram, divided by the close
    "macd_line",
    "macd_signal",
    "macd_hist",
    // ATR 14 / close
    "atr_14",
    // Bollinger 20/2: (upper - lower) / middle, and %B = (close - lower) / (upper - lower)
    "bb_width",
    "bb_pctb",
    // (OBV_t - OBV_{t-20}) / volume over 20 candles, in -1..1
    "obv_flow_20",
    // (VPT_t - VPT_{t-20}) / volume over 20 candles: volume-weighted mean return
    "vpt_flow_20",
    // volume / mean volume over 20 candles
    "volume_ratio_20",
    // kand candlestick patterns: 1 when present (marubozu: +1 bullish, -1 bearish)
    "cdl_doji",
    "cdl_hammer",
    "cdl_inverted_hammer",
    "cdl_marubozu",
    // close / lowest low - 1 and highest high / close - 1 over 48 candles and a day
    "support_dist_48",
    "resistance_dist_48",
    "support_dist_24h",
    "resistance_dist_24h",
    // (high - low) / close of the candle
    "range",
    // time of the candle's close (UTC): hour of day and day of week on the unit circle
    "hour_sin",
    "hour_cos",
    "weekday_sin",
    "weekday_cos",
    // volatility regime: std of 1-candle returns over 12 candles / over a day
    "vol_regime",
    // volume profile: close / the day's volume-weighted mean typical price - 1
    "vwap_dist_24h",
];

/// Index of a feature name in [`FEATURE_NAMES`].
pub fn feature_index(name: &str) -> Option<usize> {
    FEATURE_NAMES.iter().position(|n| *n == name)
}

/// Settings of the feature engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeatureConfig {
    /// Candle interval in ms; sets how many candles make the 24h windows.
    pub interval_ms: i64,
}

impl Default for FeatureConfig {
    fn default() -> Self {
        FeatureConfig {
            interval_ms: 300_000,
        }
    }
}

impl FeatureConfig {
    /// Candles in 24 hours (288 at 5m, 24 at 1h; at least 1).
    pub fn day_candles(&self) -> usize {
        let day = 86_400_000 / self.interval_ms.max(1);
        usize::try_from(day).unwrap_or(0).max(1)
    }

    /// Candles the engine takes before its first vector (the first one is at this index): the
    /// longest window, one day or the 50-candle SMA.
    pub fn warmup(&self) -> usize {
        self.day_candles().max(50)
    }
}

/// The features of one closed candle.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FeatureVector {
    /// Open time of the candle the features were computed on (features use that candle and
    /// earlier ones only).
    pub open_time: i64,
    /// Values in the order of [`FEATURE_NAMES`].
    pub values: [f64; N_FEATURES],
}

impl FeatureVector {
    /// The value of a named feature.
    pub fn get(&self, name: &str) -> Option<f64> {
        feature_index(name).map(|i| self.values[i])
    }

    /// Name → value, as carried in `SignalGenerated.features`.
    pub fn to_map(&self) -> BTreeMap<String, f64> {
        FEATURE_NAMES
            .iter()
            .zip(self.values)
            .map(|(n, v)| (n.to_string(), v))
            .collect()
    }
}

/// Incremental feature engine: O(1) work per candle, fed closed candles of one symbol in
/// open-time order. The training batch path ([`batch`]) is this same engine run over a slice,
/// so live and training features are identical by construction.
///
/// Gaps (exchange halts) are not filled: the engine sees the candles it is given, so windows
/// straddling a halt span more wall time. A candle whose open time is not after the previous
/// one (a redelivery) is ignored and yields `None` without changing the state.
#[derive(Debug, Clone)]
pub struct FeatureEngine {
    config: FeatureConfig,
    count: usize,
    last_open_time: Option<i64>,
    closes: Ring,
    rv_12: RollingStats,
    rv_48: RollingStats,
    rv_day: RollingStats,
    sma10: Sma,
    sma50: Sma,
    ema10: Ema,
    rsi: Rsi,
    macd: Macd,
    atr: Atr,
    bb: Bbands,
    obv: Obv,
    obv_hist: Ring,
    vpt: Vpt,
    vpt_hist: Ring,
    volume_20: RollingStats,
    patterns: Patterns,
    low_48: RollingExtreme,
    high_48: RollingExtreme,
    low_day: RollingExtreme,
    high_day: RollingExtreme,
    pv_day: RollingStats,
    volume_day: RollingStats,
    htf: HigherTimeframes,
}

/// (sin, cos) of `x` turns of a circle.
fn circle(x: f64) -> (f64, f64) {
    let a = x * std::f64::consts::TAU;
    (a.sin(), a.cos())
}

fn ratio(a: f64, b: f64) -> f64 {
    if b == 0.0 || !b.is_finite() {
        0.0
    } else {
        a / b
    }
}

impl FeatureEngine {
    pub fn new(config: FeatureConfig) -> Self {
        let day = config.day_candles();
        FeatureEngine {
            config,
            count: 0,
            last_open_time: None,
            closes: Ring::new(day.max(48) + 1),
            rv_12: RollingStats::new(12),
            rv_48: RollingStats::new(48),
            rv_day: RollingStats::new(day),
            sma10: Sma::new(10),
            sma50: Sma::new(50),
            ema10: Ema::new(10),
            rsi: Rsi::new(14),
            macd: Macd::new(12, 26, 9),
            atr: Atr::new(14),
            bb: Bbands::new(20, 2.0),
            obv: Obv::default(),
            obv_hist: Ring::new(21),
            vpt: Vpt::default(),
            vpt_hist: Ring::new(21),
            volume_20: RollingStats::new(20),
            patterns: Patterns::default(),
            low_48: RollingExtreme::min(48),
            high_48: RollingExtreme::max(48),
            low_day: RollingExtreme::min(day),
            high_day: RollingExtreme::max(day),
            pv_day: RollingStats::new(day),
            volume_day: RollingStats::new(day),
            htf: HigherTimeframes::new(),
        }
    }

    pub fn config(&self) -> &FeatureConfig {
        &self.config
    }

    /// Candles taken so far.
    pub fn candles_seen(&self) -> usize {
        self.count
    }

    /// Open time of the last candle taken.
    pub fn last_open_time(&self) -> Option<i64> {
        self.last_open_time
    }

    /// Takes the next closed candle; returns its features once warmed up
    /// ([`FeatureConfig::warmup`] candles), `None` before, and `None` for a candle that is not
    /// after the previous one (ignored).
    pub fn update(&mut self, candle: &Candle) -> Option<FeatureVector> {
        if self.last_open_time.is_some_and(|t| candle.open_time <= t) {
            return None;
        }
        self.last_open_time = Some(candle.open_time);
        self.count += 1;
        let (o, h, l, c, v) = (
            candle.open_f64(),
            candle.high_f64(),
            candle.low_f64(),
            candle.close_f64(),
            candle.volume_f64(),
        );

        let prev_close = self.closes.back(0);
        self.closes.push(c);
        let r1 = match prev_close {
            Some(p) if p > 0.0 && c > 0.0 => (c / p).ln(),
            _ => 0.0,
        };
        let rv = if prev_close.is_some() {
            (
                self.rv_12.update(r1),
                self.rv_48.update(r1),
                self.rv_day.update(r1),
            )
        } else {
            (None, None, None)
        };

        let sma10 = self.sma10.update(c);
        let sma50 = self.sma50.update(c);
        let ema10 = self.ema10.update(c);
        let rsi = self.rsi.update(c);
        let macd = self.macd.update(c);
        let atr = self.atr.update(h, l, c);
        let bb = self.bb.update(c);
        self.obv_hist.push(self.obv.update(c, v));
        self.vpt_hist.push(self.vpt.update(c, v));
        let vol20 = self.volume_20.update(v);
        let pat = self.patterns.update(o, h, l, c);
        let low48 = self.low_48.update(l);
        let high48 = self.high_48.update(h);
        let low_day = self.low_day.update(l);
        let high_day = self.high_day.update(h);
        let pv_day = self.pv_day.update((h + l + c) / 3.0 * v);
        let volume_day = self.volume_day.update(v);
        // The candle is decided on at its close: the time features are of the close.
        let close_ms = candle.open_time + self.config.interval_ms;
        self.htf.update(candle.open_time, close_ms, h, l, c);

        if self.count <= self.config.warmup() {
            return None;
        }
        let day = self.config.day_candles();
        let log_ret = |k: usize| -> Option<f64> {
            let past = self.closes.back(k)?;
            Some(if past > 0.0 && c > 0.0 {
                (c / past).ln()
            } else {
                0.0
            })
        };
        let (sma10, sma50, ema10) = (sma10?, sma50?, ema10?);
        let (macd_line, macd_signal, macd_hist) = macd?;
        let (upper, middle, lower) = bb?;
        let (vol_sum, _) = vol20?;
        let pat = pat?;
        let flow =
            |hist: &Ring| -> Option<f64> { Some(ratio(hist.back(0)? - hist.back(20)?, vol_sum)) };
        let (hour_sin, hour_cos) = circle(close_ms.rem_euclid(86_400_000) as f64 / 86_400_000.0);
        // 1970-01-01 was a Thursday: day 0 of the week is Monday here.
        let week_ms = 7 * 86_400_000;
        let (weekday_sin, weekday_cos) =
            circle((close_ms + 3 * 86_400_000).rem_euclid(week_ms) as f64 / week_ms as f64);
        let vwap = ratio(pv_day?.0, volume_day?.0);
        let values = [
            r1,
            log_ret(3)?,
            log_ret(12)?,
            log_ret(48)?,
            ratio(c, self.closes.back(day)?) - 1.0,
            rv.0?.1,
            rv.1?.1,
            rv.2?.1,
            ratio(c, sma10) - 1.0,
            ratio(c, sma50) - 1.0,
            ratio(c, ema10) - 1.0,
            ratio(sma10, sma50) - 1.0,
            rsi?,
            ratio(macd_line, c),
            ratio(macd_signal, c),
            ratio(macd_hist, c),
            ratio(atr?, c),
            ratio(upper - lower, middle),
            if upper > lower {
                (c - lower) / (upper - lower)
            } else {
                0.5
            },
            flow(&self.obv_hist)?,
            flow(&self.vpt_hist)?,
            ratio(v * 20.0, vol_sum),
            pat.doji,
            pat.hammer,
            pat.inverted_hammer,
            pat.marubozu,
            ratio(c, low48?) - 1.0,
            ratio(high48?, c) - 1.0,
            ratio(c, low_day?) - 1.0,
            ratio(high_day?, c) - 1.0,
            ratio(h - l, c),
            hour_sin,
            hour_cos,
            weekday_sin,
            weekday_cos,
            ratio(rv.0?.1, rv.2?.1),
            if vwap > 0.0 {
                ratio(c, vwap) - 1.0
            } else {
                0.0
            },
        ];
        let mut all = [0.0; N_FEATURES];
        all[..HTF_OFFSET].copy_from_slice(&values);
        all[HTF_OFFSET..MARKET_OFFSET].copy_from_slice(&self.htf.values(c));
        // The market factor and the funding inputs are filled in by the caller that sees every
        // symbol and the context (`UniverseFeatures`, `batch_universe`); alone, they are
        // unknown (0, with their `known` flags 0).
        Some(FeatureVector {
            open_time: candle.open_time,
            values: all,
        })
    }
}

/// The training path: features of every candle of one symbol's series, `None` during warm-up.
/// Runs a fresh [`FeatureEngine`] over the slice, so the values equal the live engine's.
pub fn batch(config: FeatureConfig, candles: &[Candle]) -> Vec<Option<FeatureVector>> {
    let mut engine = FeatureEngine::new(config);
    candles.iter().map(|c| engine.update(c)).collect()
}

impl FeatureEngine {
    /// Same as the free function [`batch`].
    pub fn batch(config: FeatureConfig, candles: &[Candle]) -> Vec<Option<FeatureVector>> {
        batch(config, candles)
    }
}
