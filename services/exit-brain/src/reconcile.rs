//! The start-up check of stored plans against the exchange (positions and open conditional
//! orders), and the symbols' filters, read through `qt-exchange`. Nothing is placed here: what
//! must be done becomes intents for execution.

use std::collections::BTreeSet;

use qt_events::{Decimal, PositionSide};
use qt_exchange::{Exchange, ExchangeError, OrderType, PositionSideWire};
use qt_risk::SymbolFilters;

use crate::brain::ExchangeView;

/// Reads what the exchange holds for `symbols`.
pub async fn exchange_view<E: Exchange>(
    ex: &E,
    symbols: &BTreeSet<String>,
) -> Result<ExchangeView, ExchangeError> {
    let mut view = ExchangeView::default();
    if symbols.is_empty() {
        return Ok(view);
    }
    for p in ex.positions(None).await? {
        if symbols.contains(&p.symbol) && !p.position_amt.is_zero() {
            *view
                .positions
                .entry((p.symbol.clone(), side_of(p.position_side)))
                .or_insert(Decimal::ZERO) += p.position_amt;
        }
    }
    for o in ex.open_algo_orders(None).await? {
        if !symbols.contains(&o.symbol) {
            continue;
        }
        // A stop closes its position: in hedge mode the side it names (a closePosition stop
        // of one side leaves the other's position alone), in one-way mode the symbol's one.
        if matches!(o.order_type, OrderType::StopMarket | OrderType::Stop)
            && (o.reduce_only || o.close_position)
        {
            view.slots_with_stop
                .push((o.symbol.clone(), side_of(o.position_side)));
        }
        view.open_algo_ids.push(o.client_algo_id);
    }
    Ok(view)
}

/// The side of a slot from Binance's `positionSide`: `BOTH` (one-way mode) names none.
fn side_of(wire: PositionSideWire) -> Option<PositionSide> {
    match wire {
        PositionSideWire::Both => None,
        PositionSideWire::Long => Some(PositionSide::Long),
        PositionSideWire::Short => Some(PositionSide::Short),
    }
}

/// The filters of `symbol` (the one `SymbolFilters` type `qt-exits` rounds with).
pub async fn filters<E: Exchange>(ex: &E, symbol: &str) -> Result<SymbolFilters, ExchangeError> {
    ex.symbol_filters(symbol).await
}
