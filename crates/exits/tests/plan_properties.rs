//! Properties of every exit plan, over random entries, volatilities, profiles and price paths.

use proptest::prelude::*;
use qt_events::PositionSide;
use qt_exits::{EntrySpec, ExitAction, ExitConfig, ExitPlan, SymbolProfile};
use qt_risk::SymbolFilters;
use rust_decimal::Decimal;

fn filters(step_exp: u32) -> SymbolFilters {
    SymbolFilters {
        tick_size: Decimal::new(1, 2),
        step_size: Decimal::new(1, step_exp),
        min_qty: Decimal::ZERO,
        max_qty: Decimal::ZERO,
        min_notional: Decimal::ZERO,
        ..SymbolFilters::NONE
    }
}

proptest! {
    #[test]
    fn legs_add_up_targets_sit_beyond_the_entry_and_the_stop_only_moves_in_favour(
        long in any::<bool>(),
        price_cents in 100i64..10_000_000,
        qty_units in 1i64..100_000,
        step_exp in 0u32..4,
        vol in 0.0f64..0.1,
        tp_mult in 50i64..200,
        stop_mult in 50i64..200,
        path in prop::collection::vec(-300i64..300, 1..60),
        filled_pct in 1i64..=100,
    ) {
        let side = if long { PositionSide::Long } else { PositionSide::Short };
        let price = Decimal::new(price_cents, 2);
        let f = filters(step_exp);
        let qty = Decimal::new(qty_units, step_exp);
        let profile = SymbolProfile { tp_mult: Decimal::new(tp_mult, 2), stop_mult: Decimal::new(stop_mult, 2), trades: 0 };
        let entry = EntrySpec { side, price, qty, opened_ms: 0, filters: f };
        let mut plan = ExitPlan::new(entry, vol, &profile, &ExitConfig::default())
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let sum = |p: &ExitPlan| p.legs.iter().map(|l| l.qty).sum::<Decimal>();
        prop_assert_eq!(sum(&plan), qty);
        let filled = f.round_qty(qty * Decimal::new(filled_pct, 2));
        if filled > Decimal::ZERO {
            plan.on_entry_fill(filled);
            prop_assert_eq!(sum(&plan), filled);
            prop_assert!(plan.legs.iter().all(|l| l.qty >= Decimal::ZERO));
        }
        for l in &plan.legs {
            if long { prop_assert!(l.price >= price) } else { prop_assert!(l.price <= price) }
        }
        if long { prop_assert!(plan.stop_price < price) } else { prop_assert!(plan.stop_price > price) }
        let mut last = price;
        let mut stop = plan.stop_price;
        for (i, bp) in path.iter().enumerate() {
            last = (last * (Decimal::ONE + Decimal::new(*bp, 4))).max(Decimal::new(1, 2));
            for a in plan.on_mark(last, i as i64 * 60_000) {
                if let ExitAction::MoveStop { price: s, .. } = a {
                    if long { prop_assert!(s > stop) } else { prop_assert!(s < stop) }
                    stop = s;
                }
            }
            prop_assert_eq!(plan.stop_price, stop);
        }
    }
}
