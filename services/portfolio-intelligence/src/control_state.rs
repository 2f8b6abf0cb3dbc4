//! What portfolio-intelligence reads of the operator's state from the streams: the kill
//! switch, the daily-loss pause and the drawdown breaker, each kept as the newest seen (the
//! streams are read apart, so an older event may arrive after a newer one).

use qt_events::api::{BreakerView, KillSwitchView, PauseView};
use qt_events::{Envelope, Event, RejectReason, alert_rules};

use crate::app::PAUSE_RECHECK_MS;
use crate::decisions::reason_code;

/// The kill switch a `SetKillSwitch` event sets.
pub(crate) fn kill_switch_of(env: &Envelope) -> Option<KillSwitchView> {
    match &env.event {
        Event::SetKillSwitch(k) => Some(KillSwitchView {
            enabled: k.enabled,
            since: Some(env.ts),
            reason: k.reason.clone(),
            requested_by: k.requested_by.clone(),
        }),
        _ => None,
    }
}

/// The kill switch when `qt:control` holds no `SetKillSwitch`.
pub fn kill_switch_never_set() -> KillSwitchView {
    KillSwitchView {
        enabled: false,
        since: None,
        reason: "never set: no SetKillSwitch on the control stream (kept 7 days) nor in this \
                 service's records, and execution starts with it off"
            .into(),
        requested_by: String::new(),
    }
}

/// The daily-loss pause an `OrderRejected` announces.
pub(crate) fn pause_of(env: &Envelope) -> Option<PauseView> {
    match &env.event {
        Event::OrderRejected(r) if r.reason == RejectReason::DailyLossPause => Some(PauseView {
            reason: reason_code(r.reason),
            since: env.ts,
            until: r.until_ms,
            message: r.message.clone(),
        }),
        _ => None,
    }
}

/// Whether a pause still lasts at `now`.
pub fn pause_active(p: &PauseView, now: i64) -> bool {
    now < p.until.unwrap_or(p.since + PAUSE_RECHECK_MS)
}

/// What an event says about the breaker, if anything.
pub fn breaker_from_event(env: &Envelope) -> Option<BreakerView> {
    let (tripped, message) = match &env.event {
        Event::AlertRaised(a) if a.rule == alert_rules::DRAWDOWN_BREAKER_TRIPPED => {
            (true, a.message.clone())
        }
        Event::AlertRaised(a) if a.rule == alert_rules::DRAWDOWN_BREAKER_RESUMED => {
            (false, a.message.clone())
        }
        Event::ResumeTrading(r) => (
            false,
            format!("resume requested by {}: {}", r.requested_by, r.reason),
        ),
        Event::OrderRejected(r) if r.reason == RejectReason::DrawdownBreaker => (
            true,
            format!("entries refused by the drawdown breaker: {}", r.message),
        ),
        _ => return None,
    };
    Some(BreakerView {
        tripped,
        since: env.ts,
        message,
    })
}

/// Keeps the newer of `current` and `seen` (streams are read apart, so an older event may
/// come after a newer one).
pub(crate) fn merge_breaker(current: &mut Option<BreakerView>, seen: BreakerView) {
    if current.as_ref().is_none_or(|c| seen.since >= c.since) {
        *current = Some(seen);
    }
}

/// Keeps the newer of two daily-loss pauses.
pub(crate) fn merge_pause(current: &mut Option<PauseView>, seen: PauseView) {
    if current.as_ref().is_none_or(|c| seen.since >= c.since) {
        *current = Some(seen);
    }
}
