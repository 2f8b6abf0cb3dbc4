//! Decisions explained: per symbol, the latest signal and what became of it: traded, refused by
//! risk (the refusal's reason), no edge (HOLD), no validated model, kill switch, a pause of
//! every entry, a position already open, or no intent at all (trading-bot's own gate: cooldown
//! after a close, an intent in flight, confidence under its floor).
//!
//! The signal, the intent (`qt:intents`, carrying the signal's id), the refusal or the opened
//! position (`qt:orders`, `qt:positions`, carrying the intent's id) are read from different
//! streams, in any order: each is kept by id, and the outcome is worked out when the state is
//! read.

use std::collections::BTreeMap;

use qt_events::api::{DecisionView, KillSwitchView, PauseView};
use qt_events::{Envelope, Event, RejectReason, SignalAction};

/// Intents and refusals remembered per symbol before their signal is seen (a few candles).
const KEEP: usize = 8;

/// The latest signal of a symbol and the facts seen about its entry.
#[derive(Debug, Clone, Default)]
struct SymbolDecision {
    signal: Option<Signal>,
    /// Intent ids sent for a signal, by signal id.
    intents: Vec<(String, String)>,
    /// Refusals by intent id: reason code and message.
    refused: Vec<(String, String, String)>,
    /// Intent ids whose position opened.
    opened: Vec<String>,
}

#[derive(Debug, Clone)]
struct Signal {
    id: String,
    ts: i64,
    action: SignalAction,
    confidence: f64,
    expected_return: Option<f64>,
    model: String,
    model_version: String,
    candle_open_time: i64,
}

fn push_bounded<T>(v: &mut Vec<T>, x: T) {
    v.push(x);
    if v.len() > KEEP {
        v.remove(0);
    }
}

/// The code of a refusal reason as it is on the wire (`MAX_GROSS_EXPOSURE`).
pub fn reason_code(r: RejectReason) -> String {
    serde_json::to_value(r)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| format!("{r:?}"))
}

/// Every symbol's latest decision.
#[derive(Debug, Clone, Default)]
pub struct Decisions {
    by_symbol: BTreeMap<String, SymbolDecision>,
}

impl Decisions {
    /// Takes what an event says about a decision; `true` when it said something.
    pub fn on_event(&mut self, env: &Envelope) -> bool {
        match &env.event {
            Event::SignalGenerated(s) => {
                let d = self.by_symbol.entry(s.symbol.clone()).or_default();
                // Streams are read apart: an older signal read late does not replace a newer.
                if d.signal
                    .as_ref()
                    .is_some_and(|old| old.candle_open_time > s.candle_open_time)
                {
                    return false;
                }
                d.signal = Some(Signal {
                    id: env.id.clone(),
                    ts: env.ts,
                    action: s.action,
                    confidence: s.confidence,
                    expected_return: s.expected_return.filter(|e| e.is_finite()),
                    model: s.model.clone(),
                    model_version: s.model_version.clone(),
                    candle_open_time: s.candle_open_time,
                });
                true
            }
            Event::OpenPosition(o) => {
                let Some(sig) = &o.signal else { return false };
                let d = self.by_symbol.entry(o.symbol.clone()).or_default();
                push_bounded(&mut d.intents, (sig.signal_id.clone(), o.intent_id.clone()));
                true
            }
            Event::OrderRejected(r) => {
                let d = self.by_symbol.entry(r.symbol.clone()).or_default();
                push_bounded(
                    &mut d.refused,
                    (
                        r.intent_id.clone(),
                        reason_code(r.reason),
                        r.message.clone(),
                    ),
                );
                true
            }
            Event::PositionOpened(p) => {
                let d = self.by_symbol.entry(p.symbol.clone()).or_default();
                push_bounded(&mut d.opened, p.intent_id.clone());
                true
            }
            _ => false,
        }
    }

    /// The decisions at `now`, by symbol, with what became of each.
    pub fn view(
        &self,
        now: i64,
        kill: Option<&KillSwitchView>,
        pause: Option<&PauseView>,
        open: &dyn Fn(&str) -> bool,
    ) -> Vec<DecisionView> {
        self.by_symbol
            .iter()
            .filter_map(|(symbol, d)| {
                let s = d.signal.as_ref()?;
                let (outcome, why) = outcome(symbol, d, s, now, kill, pause, open);
                Some(DecisionView {
                    symbol: symbol.clone(),
                    action: match s.action {
                        SignalAction::Buy => "BUY",
                        SignalAction::Sell => "SELL",
                        SignalAction::Hold => "HOLD",
                    }
                    .into(),
                    confidence: s.confidence,
                    expected_return: s.expected_return,
                    model: s.model.clone(),
                    model_version: s.model_version.clone(),
                    candle_open_time: s.candle_open_time,
                    ts: s.ts,
                    outcome: outcome.into(),
                    why,
                })
            })
            .collect()
    }
}

fn outcome(
    symbol: &str,
    d: &SymbolDecision,
    s: &Signal,
    now: i64,
    kill: Option<&KillSwitchView>,
    pause: Option<&PauseView>,
    open: &dyn Fn(&str) -> bool,
) -> (&'static str, String) {
    if s.action == SignalAction::Hold {
        if s.model == "none" {
            return (
                "no_model",
                "no validated model: every signal is HOLD until clm deploys one".into(),
            );
        }
        return (
            "no_edge",
            format!("no edge: {} {} said HOLD", s.model, s.model_version),
        );
    }
    let intent = d
        .intents
        .iter()
        .rev()
        .find(|(sig, _)| *sig == s.id)
        .map(|(_, i)| i.as_str());
    if let Some(intent) = intent {
        if let Some((_, code, msg)) = d.refused.iter().rev().find(|(i, _, _)| i == intent) {
            return ("refused", format!("refused by risk: {code}: {msg}"));
        }
        if d.opened.iter().any(|i| i == intent) {
            return ("traded", format!("traded: position opened ({intent})"));
        }
        return ("pending", format!("intent {intent} sent, no answer yet"));
    }
    if kill.is_some_and(|k| k.enabled) {
        return ("kill_switch", "no entry: the kill switch is on".into());
    }
    if let Some(p) = pause.filter(|p| p.until.is_none_or(|u| now < u)) {
        let end = p.until.map_or_else(
            || "until an operator resumes".to_owned(),
            |u| format!("until {}", iso(u)),
        );
        return ("paused", format!("no entry: {} {end}", p.reason));
    }
    if open(symbol) {
        return (
            "position_open",
            "no entry: a position is already open".into(),
        );
    }
    (
        "no_intent",
        "no intent sent: trading-bot's gate held it (cooldown after a close, an intent in \
         flight, or confidence under its floor)"
            .into(),
    )
}

/// `2026-01-02 12:00:00 UTC` of a time in ms.
pub fn iso(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = if month <= 2 { y + 1 } else { y };
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::iso;

    #[test]
    fn iso_formats_a_known_instant() {
        // 2026-01-02 00:00:00 UTC.
        assert_eq!(iso(1_767_312_000_000), "2026-01-02 00:00:00 UTC");
        assert_eq!(iso(951_782_400_000 + 3_723_000), "2000-02-29 01:02:03 UTC");
    }
}
