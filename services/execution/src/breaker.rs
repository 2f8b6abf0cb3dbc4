//! The drawdown breaker as execution runs it: the risk guard (`qt-risk`) trips it from the
//! equity of portfolio snapshots and refuses entries `DRAWDOWN_BREAKER` from then on; this
//! module turns its threshold crossings (50% and 80% of `max_drawdown_pct`, and the trip) into
//! `AlertRaised` events, and carries out an operator's `ResumeTrading` (from `qtctl resume` or
//! the dashboard, both on `qt:control`, which is their audit trail). Exits are never refused.

use std::collections::BTreeMap;

use qt_events::{Envelope, Event, ResumeTrading, Severity};
use qt_exchange::Exchange;
use qt_risk::{DrawdownCrossing, DrawdownHalt, DrawdownLevel};
use rust_decimal::Decimal;

use crate::db::Db;
use crate::error::ExecError;
use crate::service::Execution;

/// Alert rule of the drawdown at 50% of its limit.
pub const RULE_HALF: &str = "drawdown_half_limit";
/// Alert rule of the drawdown at 80% of its limit.
pub const RULE_NEAR: &str = "drawdown_near_limit";
/// Alert rule of the breaker's trip (the dashboard shows the breaker from it).
pub const RULE_TRIPPED: &str = qt_events::alert_rules::DRAWDOWN_BREAKER_TRIPPED;
/// Alert rule of an operator's resume after a trip.
pub const RULE_RESUMED: &str = qt_events::alert_rules::DRAWDOWN_BREAKER_RESUMED;

/// A fraction as a percentage with two decimals.
fn pct(fraction: Decimal) -> Decimal {
    (fraction * Decimal::ONE_HUNDRED).round_dp(2)
}

impl<E: Exchange + Clone + 'static> Execution<E> {
    /// The alert for a drawdown crossing; its id is derived from `cause` (the snapshot that
    /// showed it), so a redelivery repeats the same alert.
    pub(crate) fn drawdown_alert(&self, c: &DrawdownCrossing, cause: &str) -> Envelope {
        let (rule, severity, message) = match c.level {
            DrawdownLevel::Tripped => (
                RULE_TRIPPED,
                Severity::Critical,
                format!(
                    "drawdown breaker tripped: equity {} is {}% below its peak {} (limit {}%); \
                     no new positions until an operator resumes (qtctl resume, or the \
                     dashboard); exits still run",
                    c.equity.round_dp(2),
                    pct(c.drawdown),
                    c.peak.round_dp(2),
                    pct(c.limit)
                ),
            ),
            level => {
                let (rule, share) = if level == DrawdownLevel::Near {
                    (RULE_NEAR, 80)
                } else {
                    (RULE_HALF, 50)
                };
                let message = format!(
                    "drawdown {}% from the equity peak {} (equity {}): {share}% of the {}% at \
                     which the breaker stops new positions",
                    pct(c.drawdown),
                    c.peak.round_dp(2),
                    c.equity.round_dp(2),
                    pct(c.limit)
                );
                (rule, Severity::Warning, message)
            }
        };
        let mut env = self.alert(rule, "", severity, message, cause);
        if let Event::AlertRaised(a) = &mut env.event {
            a.details = BTreeMap::from([
                ("drawdown".to_owned(), c.drawdown.round_dp(6).to_string()),
                ("limit".to_owned(), c.limit.to_string()),
                ("peak".to_owned(), c.peak.to_string()),
                ("equity".to_owned(), c.equity.to_string()),
            ]);
            if let Some(h) = c.halt {
                a.details
                    .insert("tripped_at".to_owned(), h.since_ms.to_string());
            }
        }
        env
    }

    /// Carries out `ResumeTrading` once per command: clears the breaker's halt, measures the
    /// drawdown again from the current equity, saves the book and queues an alert saying who
    /// resumed and why (published with the outbox). Without a trip it changes nothing. Returns
    /// the halt it cleared.
    ///
    /// # Errors
    /// Transient when the database is unreachable (the command stays pending).
    pub async fn resume_trading(
        &self,
        env: &Envelope,
        r: &ResumeTrading,
    ) -> Result<Option<DrawdownHalt>, ExecError> {
        let mut book = self.book.lock().await;
        let mut next = book.clone();
        let cleared = next.resume_after_drawdown();
        let now = self.now();
        let mut tx = self.db.begin().await?;
        // Once per command id: a redelivery must not reset a newer peak.
        if !Db::mark_processed(&mut tx, &env.id, now).await? {
            return Ok(None);
        }
        let Some(halt) = cleared else {
            tx.commit().await?;
            tracing::info!(command_id = %r.command_id, reason = %r.reason, by = %r.requested_by,
                "resume requested but the drawdown breaker has not tripped: nothing to do");
            return Ok(None);
        };
        Db::save_book(&mut tx, &next, now).await?;
        let mut alert = self.alert(
            RULE_RESUMED,
            "",
            Severity::Info,
            format!(
                "entries resumed by {} after the drawdown breaker tripped at equity {} \
                 (peak {}): {}",
                r.requested_by,
                halt.equity.round_dp(2),
                halt.peak.round_dp(2),
                r.reason
            ),
            &env.id,
        );
        if let Event::AlertRaised(a) = &mut alert.event {
            a.details = BTreeMap::from([
                ("command_id".to_owned(), r.command_id.clone()),
                ("requested_by".to_owned(), r.requested_by.clone()),
                ("tripped_at".to_owned(), halt.since_ms.to_string()),
                (
                    "new_peak".to_owned(),
                    next.equity_peak.map_or_else(String::new, |p| p.to_string()),
                ),
            ]);
        }
        let alert = alert.caused_by(env);
        Db::enqueue(&mut tx, &[alert], self.clock.as_ref()).await?;
        tx.commit().await?;
        tracing::warn!(command_id = %r.command_id, reason = %r.reason, by = %r.requested_by,
            tripped_at = halt.since_ms, peak = %halt.peak, equity = %halt.equity,
            new_peak = ?next.equity_peak, "drawdown breaker resumed: entries allowed again");
        *book = next;
        drop(book);
        if let Err(e) = self.flush_outbox().await {
            tracing::warn!(error = %e, "outbox flush failed; the periodic pass retries");
        }
        Ok(Some(halt))
    }
}
