//! The entry gate: what the bot knows of each symbol's position and intents, and whether a new
//! open intent may be sent. It learns from `positions` and `orders`; the risk guard in execution
//! stays the authority — this gate only keeps the bot from asking twice.

use std::collections::HashMap;

/// One symbol's state as the bot sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SymbolGate {
    /// Id of the open position, if any.
    pub position: Option<String>,
    /// An open intent sent and not yet answered: (intent id, sent at ms).
    pub pending: Option<(String, i64)>,
    /// No entry before this time (ms).
    pub cooldown_until: i64,
}

/// Why no intent is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blocked {
    Position,
    Pending,
    Cooldown,
}

/// Gates for every symbol.
#[derive(Debug, Clone)]
pub struct EntryGate {
    symbols: HashMap<String, SymbolGate>,
    cooldown_ms: i64,
    pending_timeout_ms: i64,
}

impl EntryGate {
    pub fn new(cooldown_ms: i64, pending_timeout_ms: i64) -> Self {
        Self {
            symbols: HashMap::new(),
            cooldown_ms,
            pending_timeout_ms,
        }
    }

    pub fn get(&self, symbol: &str) -> Option<&SymbolGate> {
        self.symbols.get(symbol)
    }

    fn entry(&mut self, symbol: &str) -> &mut SymbolGate {
        self.symbols.entry(symbol.to_owned()).or_default()
    }

    /// Whether an entry on `symbol` may be sent at `now_ms`. A pending intent older than the
    /// timeout is forgotten here.
    pub fn check(&mut self, symbol: &str, now_ms: i64) -> Result<(), Blocked> {
        let timeout = self.pending_timeout_ms;
        let g = self.entry(symbol);
        if g.position.is_some() {
            return Err(Blocked::Position);
        }
        if let Some((id, at)) = &g.pending {
            if now_ms.saturating_sub(*at) < timeout {
                return Err(Blocked::Pending);
            }
            tracing::warn!(symbol, intent_id = %id, "pending intent had no outcome in time: forgotten");
            g.pending = None;
        }
        if now_ms < g.cooldown_until {
            return Err(Blocked::Cooldown);
        }
        Ok(())
    }

    /// An open intent was sent.
    pub fn sent(&mut self, symbol: &str, intent_id: &str, now_ms: i64) {
        self.entry(symbol).pending = Some((intent_id.to_owned(), now_ms));
    }

    /// A position was opened (or is known to exist): it clears the pending intent.
    pub fn position_opened(&mut self, symbol: &str, position_id: &str) {
        let g = self.entry(symbol);
        g.position = Some(position_id.to_owned());
        g.pending = None;
    }

    /// The position closed at `closed_at`: the cooldown starts.
    pub fn position_closed(&mut self, symbol: &str, closed_at: i64) {
        let cooldown = self.cooldown_ms;
        let g = self.entry(symbol);
        g.position = None;
        g.cooldown_until = g.cooldown_until.max(closed_at.saturating_add(cooldown));
    }

    /// The intent ended without a position (rejected, cancelled or expired unfilled).
    pub fn intent_ended(&mut self, symbol: &str, intent_id: &str) {
        let g = self.entry(symbol);
        if g.pending.as_ref().is_some_and(|(id, _)| id == intent_id) {
            g.pending = None;
        }
    }

    /// The exchange's open positions (their symbols) win over what the gate believed; the
    /// pending intents and cooldowns stay.
    pub fn reconcile_positions(&mut self, open: &[String]) {
        for (symbol, g) in &mut self.symbols {
            if g.position.is_some() && !open.contains(symbol) {
                tracing::info!(symbol = %symbol, "position no longer open on the exchange");
                g.position = None;
            }
        }
        for symbol in open {
            let g = self.entry(symbol);
            if g.position.is_none() {
                g.position = Some("exchange".into());
                g.pending = None;
            }
        }
    }

    /// Whether `intent_id` is this symbol's pending intent.
    pub fn is_pending(&self, symbol: &str, intent_id: &str) -> bool {
        self.get(symbol)
            .and_then(|g| g.pending.as_ref())
            .is_some_and(|(id, _)| id == intent_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;

    #[test]
    fn a_pending_intent_then_a_position_then_the_cooldown_block_entries() {
        let mut g = EntryGate::new(15 * MIN, 2 * MIN);
        assert_eq!(g.check("BTCUSDT", 0), Ok(()));
        g.sent("BTCUSDT", "i1", 0);
        assert_eq!(g.check("BTCUSDT", MIN), Err(Blocked::Pending));
        assert_eq!(g.check("ETHUSDT", MIN), Ok(()));
        g.position_opened("BTCUSDT", "p1");
        assert_eq!(g.check("BTCUSDT", MIN), Err(Blocked::Position));
        g.position_closed("BTCUSDT", 10 * MIN);
        assert_eq!(g.check("BTCUSDT", 20 * MIN), Err(Blocked::Cooldown));
        assert_eq!(g.check("BTCUSDT", 25 * MIN), Ok(()));
    }

    #[test]
    fn a_rejected_or_timed_out_intent_frees_the_symbol() {
        let mut g = EntryGate::new(15 * MIN, 2 * MIN);
        g.sent("BTCUSDT", "i1", 0);
        g.intent_ended("BTCUSDT", "other");
        assert_eq!(g.check("BTCUSDT", 1), Err(Blocked::Pending));
        g.intent_ended("BTCUSDT", "i1");
        assert_eq!(g.check("BTCUSDT", 1), Ok(()));
        g.sent("BTCUSDT", "i2", 0);
        assert_eq!(g.check("BTCUSDT", 2 * MIN), Ok(()));
    }

    #[test]
    fn the_exchange_positions_win_over_what_the_gate_believed() {
        let mut g = EntryGate::new(15 * MIN, 2 * MIN);
        g.position_opened("BTCUSDT", "p1");
        g.sent("ETHUSDT", "i1", 0);
        g.reconcile_positions(&["ETHUSDT".to_string()]);
        assert_eq!(g.check("BTCUSDT", 1), Ok(()));
        assert_eq!(g.check("ETHUSDT", 1), Err(Blocked::Position));
    }
}
