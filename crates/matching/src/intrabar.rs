//! The conservative intra-candle rule: when a position's stop and target both lie inside one
//! candle, the order of the ticks is unknown, so the stop counts first. The backtester and the
//! simulator both use this.

use qt_events::{Decimal, PositionSide};
use serde::{Deserialize, Serialize};

use crate::fill::Bar;

/// Which exit a candle hits first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExitHit {
    /// Neither exit is reached.
    None,
    /// The stop is reached, at this price (the open on a gap).
    Stop(Decimal),
    /// The target is reached and the stop is not, at this price (the open on a gap).
    Target(Decimal),
}

/// Which of a stop and a target `bar` reaches first for a position of `side`, counting the stop
/// first whenever both are inside the candle.
pub fn first_exit(
    side: PositionSide,
    stop: Option<Decimal>,
    target: Option<Decimal>,
    bar: &Bar,
) -> ExitHit {
    let (stop_hit, target_hit) = match side {
        PositionSide::Long => (
            stop.filter(|s| bar.low <= *s).map(|s| s.min(bar.open)),
            target.filter(|t| bar.high >= *t).map(|t| t.max(bar.open)),
        ),
        PositionSide::Short => (
            stop.filter(|s| bar.high >= *s).map(|s| s.max(bar.open)),
            target.filter(|t| bar.low <= *t).map(|t| t.min(bar.open)),
        ),
    };
    match (stop_hit, target_hit) {
        (Some(s), _) => ExitHit::Stop(s),
        (None, Some(t)) => ExitHit::Target(t),
        (None, None) => ExitHit::None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn bar(open: Decimal, high: Decimal, low: Decimal) -> Bar {
        Bar {
            open_time: 0,
            open,
            high,
            low,
            close: open,
            volume: dec!(1),
        }
    }

    #[test]
    fn stop_counts_first_when_both_are_inside_the_candle() {
        let b = bar(dec!(100), dec!(110), dec!(90));
        assert_eq!(
            first_exit(PositionSide::Long, Some(dec!(95)), Some(dec!(105)), &b),
            ExitHit::Stop(dec!(95))
        );
        assert_eq!(
            first_exit(PositionSide::Short, Some(dec!(105)), Some(dec!(95)), &b),
            ExitHit::Stop(dec!(105))
        );
    }

    #[test]
    fn target_counts_when_only_it_is_reached() {
        let b = bar(dec!(100), dec!(110), dec!(98));
        assert_eq!(
            first_exit(PositionSide::Long, Some(dec!(95)), Some(dec!(105)), &b),
            ExitHit::Target(dec!(105))
        );
        assert_eq!(
            first_exit(PositionSide::Long, Some(dec!(95)), None, &b),
            ExitHit::None
        );
    }

    #[test]
    fn a_gap_through_the_stop_exits_at_the_open() {
        let b = bar(dec!(90), dec!(92), dec!(88));
        assert_eq!(
            first_exit(PositionSide::Long, Some(dec!(95)), Some(dec!(105)), &b),
            ExitHit::Stop(dec!(90))
        );
    }
}
