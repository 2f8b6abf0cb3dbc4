//! Alert rules, de-duplication and throttling ([`AlertEngine`], pure: observations and time come
//! in as arguments) and delivery to Telegram, Discord or a generic webhook ([`Notifier`]).
//!
//! Never logs a bot token or a webhook URL (both carry secrets).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Duration;

use qt_events::{AlertRaised, Severity};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

use crate::book::{Drift, ModelInfo};
use crate::metrics::ClosedTrade;
use crate::settings::{AlertSettings, Secret};

pub use qt_events::api::{GroupSample, ServiceHealth};

pub const SERVICE: &str = "portfolio-intelligence";

/// What the rules look at.
#[derive(Debug, Clone, Default)]
pub struct Observations<'a> {
    pub now: i64,
    pub open_positions: u32,
    pub max_positions: usize,
    /// Today's PnL (realized net + unrealized).
    pub daily_pnl: Decimal,
    pub max_daily_loss: Decimal,
    pub model: Option<&'a ModelInfo>,
    /// Closed trades, oldest first.
    pub trades: &'a [ClosedTrade],
    /// Times (ms) of exchange errors seen recently.
    pub exchange_errors: &'a [i64],
    /// 429/418 answers seen since the last evaluation: (time, detail).
    pub rate_limits: &'a [(i64, String)],
    pub groups: &'a [GroupSample],
    pub dead_letters: u64,
    pub services: &'a [ServiceHealth],
    /// Confirmed drifts.
    pub drift: &'a [Drift],
    /// The market-context sources as last read from trading-bot, and how long ago (ms).
    pub context: &'a [qt_events::api::ContextSourceHealth],
    pub context_read_ago_ms: i64,
}

/// The rules' state: the last firing of each (rule, key) and the recent samples of each group.
#[derive(Debug, Default)]
pub struct AlertEngine {
    settings: AlertSettings,
    last_fired: HashMap<(String, String), i64>,
    samples: HashMap<(String, String), VecDeque<u64>>,
    /// Alerts held back by the throttle since the start.
    pub suppressed: u64,
}

fn alert(rule: &str, key: &str, severity: Severity, message: String) -> AlertRaised {
    AlertRaised {
        rule: rule.into(),
        key: key.into(),
        severity,
        message,
        service: SERVICE.into(),
        details: BTreeMap::new(),
    }
}

fn with(mut a: AlertRaised, k: &str, v: impl ToString) -> AlertRaised {
    a.details.insert(k.into(), v.to_string());
    a
}

impl AlertEngine {
    pub fn new(settings: AlertSettings) -> Self {
        Self {
            settings,
            ..Self::default()
        }
    }

    pub fn settings(&self) -> &AlertSettings {
        &self.settings
    }

    /// Every rule whose condition holds now, before throttling.
    pub fn conditions(&mut self, o: &Observations<'_>) -> Vec<AlertRaised> {
        let s = &self.settings;
        let mut out = Vec::new();
        if o.open_positions as usize > o.max_positions {
            out.push(with(
                alert(
                    "position_count_over_max",
                    "",
                    Severity::Critical,
                    format!(
                        "{} open positions, the maximum is {}",
                        o.open_positions, o.max_positions
                    ),
                ),
                "open_positions",
                o.open_positions,
            ));
        }
        if o.max_daily_loss > Decimal::ZERO {
            let loss = -o.daily_pnl;
            let threshold = o.max_daily_loss * s.daily_loss_fraction;
            if loss >= threshold {
                let pct = (loss / o.max_daily_loss * Decimal::from(100)).round_dp(0);
                out.push(with(
                    alert(
                        "daily_loss_near_limit",
                        "",
                        Severity::Critical,
                        format!(
                            "daily loss {loss} is {pct}% of the {} limit",
                            o.max_daily_loss
                        ),
                    ),
                    "daily_pnl",
                    o.daily_pnl,
                ));
            }
        }
        if let Some(m) = o.model {
            let age_ms = o.now - m.since;
            let max_ms = i64::try_from(s.model_max_age.as_millis()).unwrap_or(i64::MAX);
            if age_ms > max_ms {
                out.push(with(
                    alert(
                        "model_stale",
                        &m.model_version,
                        Severity::Warning,
                        format!(
                            "model {} {} is {:.1} days old",
                            m.model,
                            m.model_version,
                            age_ms as f64 / 86_400_000.0
                        ),
                    ),
                    "since",
                    m.since,
                ));
            }
        }
        if s.win_rate_trades > 0 && o.trades.len() >= s.win_rate_trades {
            let last = &o.trades[o.trades.len() - s.win_rate_trades..];
            let wins = last.iter().filter(|t| t.net_pnl > Decimal::ZERO).count();
            let rate = wins as f64 / last.len() as f64;
            if rate < s.win_rate_min {
                out.push(with(
                    alert(
                        "win_rate_low",
                        "",
                        Severity::Warning,
                        format!(
                            "win rate {:.0}% over the last {} trades (minimum {:.0}%)",
                            rate * 100.0,
                            last.len(),
                            s.win_rate_min * 100.0
                        ),
                    ),
                    "win_rate",
                    format!("{rate:.4}"),
                ));
            }
        }
        let minute_ago = o.now - 60_000;
        let errors = o
            .exchange_errors
            .iter()
            .filter(|t| **t > minute_ago)
            .count();
        if errors > s.exchange_errors_per_minute as usize {
            out.push(alert(
                "exchange_errors",
                "",
                Severity::Critical,
                format!("{errors} exchange errors in the last minute"),
            ));
        }
        if let Some((_, detail)) = o.rate_limits.last() {
            out.push(with(
                alert(
                    "rate_limited",
                    "",
                    Severity::Critical,
                    format!("the exchange answered 429/418: {detail}"),
                ),
                "count",
                o.rate_limits.len(),
            ));
        }
        let window = s.lag_growth_samples.max(2);
        for g in o.groups {
            let k = (g.stream.clone(), g.group.clone());
            let q = self.samples.entry(k).or_default();
            q.push_back(g.pending + g.lag);
            while q.len() > window {
                q.pop_front();
            }
            let growing = q.len() == window && q.iter().zip(q.iter().skip(1)).all(|(a, b)| b > a);
            if growing {
                out.push(with(
                    alert(
                        "consumer_lag_growing",
                        &format!("{}/{}", g.stream, g.group),
                        Severity::Warning,
                        format!(
                            "group {} on {} keeps falling behind: {} pending, {} not delivered",
                            g.group, g.stream, g.pending, g.lag
                        ),
                    ),
                    "backlog",
                    g.pending + g.lag,
                ));
            }
        }
        if o.dead_letters > 0 {
            out.push(alert(
                "dead_letters",
                "",
                Severity::Warning,
                format!("{} entries in the dead-letter stream", o.dead_letters),
            ));
        }
        let down_after = i64::try_from(s.context_down_after.as_millis()).unwrap_or(i64::MAX);
        for c in o.context {
            let Some(for_ms) = c.unhealthy_for_ms.map(|f| f + o.context_read_ago_ms.max(0)) else {
                continue;
            };
            if for_ms >= down_after {
                let why = match c.state.as_str() {
                    "held" => format!(
                        "held off the provider until {} ({})",
                        crate::decisions::iso(c.held_until_ms.unwrap_or(o.now)),
                        c.last_error.as_deref().unwrap_or("backoff")
                    ),
                    "breaker_open" | "half_open" => format!(
                        "circuit breaker {} after {} failures ({})",
                        c.breaker,
                        c.consecutive_failures,
                        c.last_error.as_deref().unwrap_or("?")
                    ),
                    other => format!(
                        "{other}: oldest value {}",
                        c.oldest_value_age_ms.map_or_else(
                            || "never fetched".into(),
                            |a| format!("{} s old", a / 1000)
                        )
                    ),
                };
                out.push(with(
                    alert(
                        "context_source_down",
                        &c.source,
                        Severity::Warning,
                        format!(
                            "market-context source {} not fresh for {} min: {why}",
                            c.source,
                            for_ms / 60_000
                        ),
                    ),
                    "state",
                    &c.state,
                ));
            }
        }
        for h in o.services.iter().filter(|h| !h.ready) {
            out.push(alert(
                "service_not_ready",
                &h.name,
                Severity::Critical,
                format!("{} is not ready: {}", h.name, h.detail),
            ));
        }
        for d in o.drift {
            out.push(with(
                with(
                    alert(
                        "position_drift",
                        &d.symbol,
                        Severity::Critical,
                        format!(
                            "{}: the exchange holds {} but the services believe {}",
                            d.symbol, d.exchange, d.believed
                        ),
                    ),
                    "exchange",
                    d.exchange,
                ),
                "believed",
                d.believed,
            ));
        }
        out
    }

    /// The alerts to raise now: the conditions that hold, minus those of a (rule, key) already
    /// raised within the throttle window.
    pub fn evaluate(&mut self, o: &Observations<'_>) -> Vec<AlertRaised> {
        let throttle = i64::try_from(self.settings.throttle.as_millis()).unwrap_or(i64::MAX);
        let mut out = Vec::new();
        for a in self.conditions(o) {
            if self.admit(&a.rule, &a.key, o.now, throttle) {
                out.push(a);
            } else {
                self.suppressed += 1;
            }
        }
        out
    }

    fn admit(&mut self, rule: &str, key: &str, now: i64, throttle: i64) -> bool {
        let k = (rule.to_owned(), key.to_owned());
        match self.last_fired.get(&k) {
            Some(&t) if now - t < throttle => false,
            _ => {
                self.last_fired.insert(k, now);
                true
            }
        }
    }
}

/// Delivery throttle for alerts arriving on `qt:alerts` from any service: one delivery per
/// (service, rule, key) per window, and each event id once.
#[derive(Debug, Default)]
pub struct DeliveryGate {
    throttle_ms: i64,
    last: HashMap<(String, String, String), i64>,
    seen: VecDeque<String>,
}

impl DeliveryGate {
    pub fn new(throttle: Duration) -> Self {
        Self {
            throttle_ms: i64::try_from(throttle.as_millis()).unwrap_or(i64::MAX),
            ..Self::default()
        }
    }

    /// Whether this alert (event `id`) should be delivered now.
    pub fn admit(&mut self, id: &str, a: &AlertRaised, now: i64) -> bool {
        if self.seen.iter().any(|s| s == id) {
            return false;
        }
        self.seen.push_back(id.to_owned());
        if self.seen.len() > 1024 {
            self.seen.pop_front();
        }
        let k = (a.service.clone(), a.rule.clone(), a.key.clone());
        match self.last.get(&k) {
            Some(&t) if now - t < self.throttle_ms => false,
            _ => {
                self.last.insert(k, now);
                true
            }
        }
    }
}

/// Why a delivery failed (never carries the URL: it may hold a token).
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("{channel}: {reason}")]
    Failed {
        channel: &'static str,
        reason: String,
    },
}

/// Sends alerts to the configured channels.
#[derive(Debug, Clone)]
pub struct Notifier {
    http: reqwest::Client,
    webhook_url: Secret,
    discord_webhook_url: Secret,
    telegram_bot_token: Secret,
    telegram_chat_id: String,
    telegram_api_base: String,
}

/// The text of an alert for people.
pub fn text_of(a: &AlertRaised) -> String {
    let sev = match a.severity {
        Severity::Info => "INFO",
        Severity::Warning => "WARNING",
        Severity::Critical => "CRITICAL",
    };
    if a.key.is_empty() {
        format!("[{sev}] {} {}: {}", a.service, a.rule, a.message)
    } else {
        format!(
            "[{sev}] {} {} ({}): {}",
            a.service, a.rule, a.key, a.message
        )
    }
}

impl Notifier {
    pub fn new(s: &AlertSettings) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap_or_default();
        Self {
            http,
            webhook_url: s.webhook_url.clone(),
            discord_webhook_url: s.discord_webhook_url.clone(),
            telegram_bot_token: s.telegram_bot_token.clone(),
            telegram_chat_id: s.telegram_chat_id.clone(),
            telegram_api_base: s.telegram_api_base.trim_end_matches('/').to_owned(),
        }
    }

    /// Whether any channel is configured.
    pub fn configured(&self) -> bool {
        !self.webhook_url.is_empty()
            || !self.discord_webhook_url.is_empty()
            || (!self.telegram_bot_token.is_empty() && !self.telegram_chat_id.is_empty())
    }

    async fn post(
        &self,
        channel: &'static str,
        url: &str,
        body: serde_json::Value,
    ) -> Result<(), DeliveryError> {
        let r =
            self.http
                .post(url)
                .json(&body)
                .send()
                .await
                .map_err(|e| DeliveryError::Failed {
                    channel,
                    reason: e.without_url().to_string(),
                })?;
        if r.status().is_success() {
            Ok(())
        } else {
            Err(DeliveryError::Failed {
                channel,
                reason: format!("http {}", r.status().as_u16()),
            })
        }
    }

    /// Delivers to every configured channel; returns the failures.
    pub async fn deliver(&self, a: &AlertRaised, ts: i64) -> Vec<DeliveryError> {
        let text = text_of(a);
        let mut errors = Vec::new();
        if !self.webhook_url.is_empty() {
            let body = serde_json::json!({
                "rule": a.rule, "key": a.key, "severity": a.severity, "message": a.message,
                "service": a.service, "details": a.details, "ts": ts, "text": text,
            });
            if let Err(e) = self.post("webhook", self.webhook_url.expose(), body).await {
                errors.push(e);
            }
        }
        if !self.discord_webhook_url.is_empty() {
            let body = serde_json::json!({ "content": text });
            if let Err(e) = self
                .post("discord", self.discord_webhook_url.expose(), body)
                .await
            {
                errors.push(e);
            }
        }
        if !self.telegram_bot_token.is_empty() && !self.telegram_chat_id.is_empty() {
            let url = format!(
                "{}/bot{}/sendMessage",
                self.telegram_api_base,
                self.telegram_bot_token.expose()
            );
            let body = serde_json::json!({ "chat_id": self.telegram_chat_id, "text": text });
            if let Err(e) = self.post("telegram", &url, body).await {
                errors.push(e);
            }
        }
        errors
    }
}

/// Fraction helper for the dashboard's gauges.
pub fn ratio(a: Decimal, b: Decimal) -> f64 {
    if b > Decimal::ZERO {
        (a / b).to_f64().unwrap_or(0.0)
    } else {
        0.0
    }
}
