//! Order parameters: client id checks, the symbol filter cache, rounding and validation of
//! plain and conditional orders before anything leaves.

use super::BinanceClient;

use qt_events::ids::is_valid_client_order_id;
use qt_events::{Decimal, Side};

use crate::error::Refusal;
use crate::exchange::{ExResult, Exchange};
use crate::filters::{
    PriceRounding, SymbolFilters, SymbolInfo, check_order_price, check_order_qty,
};
use crate::modes::PositionMode;
use crate::sign::Params;
use crate::types::*;

/// What an order says about its position: `positionSide` and whether `reduceOnly` is sent.
/// One-way mode sends the caller's `position_side` (normally none) and `reduceOnly` as asked.
/// Hedge mode names a side on every order and never sends `reduceOnly` (Binance refuses it
/// there: a close is the opposite side on the position's side): an opening order trades the
/// side of its direction (BUY → LONG, SELL → SHORT), a reducing one (`reduce_only` or
/// `closePosition`) the side it closes (SELL → LONG, BUY → SHORT), unless the caller named one.
pub(crate) fn position_fields(
    mode: PositionMode,
    side: Side,
    reducing: bool,
    asked: Option<PositionSideWire>,
) -> (Option<PositionSideWire>, bool) {
    match mode {
        PositionMode::OneWay => (asked, reducing),
        PositionMode::Hedge => {
            let derived = match (side, reducing) {
                (Side::Buy, false) | (Side::Sell, true) => PositionSideWire::Long,
                (Side::Sell, false) | (Side::Buy, true) => PositionSideWire::Short,
            };
            (
                Some(
                    asked
                        .filter(|s| *s != PositionSideWire::Both)
                        .unwrap_or(derived),
                ),
                false,
            )
        }
    }
}

impl BinanceClient {
    fn check_client_id(id: &str) -> ExResult<()> {
        if is_valid_client_order_id(id) {
            Ok(())
        } else {
            Err(Refusal::InvalidClientOrderId(id.to_string()).into())
        }
    }

    /// One symbol of exchangeInfo, from the cache (loaded on first use).
    pub async fn symbol_info(&self, symbol: &str) -> ExResult<SymbolInfo> {
        let cached = match self.cached_filters(symbol) {
            Some(c) => c,
            None => {
                self.exchange_info().await?;
                self.cached_filters(symbol)
                    .ok_or_else(|| Refusal::UnknownSymbol(symbol.to_string()))?
            }
        };
        // A symbol whose rules could not be read refuses every order (nothing is sent), with
        // the error naming the symbol, filter and field.
        Ok(cached.map_err(|e| Refusal::InvalidOrder(e.to_string()))?)
    }

    async fn trading_filters(&self, symbol: &str) -> ExResult<SymbolFilters> {
        let s = self.symbol_info(symbol).await?;
        if !s.status.is_empty() && s.status != "TRADING" {
            return Err(Refusal::InvalidOrder(format!("{symbol} is {}", s.status)).into());
        }
        Ok(s.filters)
    }

    /// Builds the exact parameters of a new order (rounded and checked), without sending.
    pub async fn order_params(&self, order: &NewOrder) -> ExResult<Params> {
        Self::check_client_id(&order.client_order_id)?;
        let f = self.trading_filters(&order.symbol).await?;
        let mut p = Params::new();
        p.push("symbol", &order.symbol)
            .push("side", side_str(order.side));
        match order.order_type {
            PlainOrderType::Market => {
                let reference = match order.reference_price {
                    Some(px) => px,
                    None if order.reduce_only => Decimal::ZERO,
                    None => self.mark_price(&order.symbol).await?.mark_price,
                };
                let qty = check_order_qty(&f, order.quantity, reference, true, order.reduce_only)?;
                p.push("type", "MARKET").push("quantity", qty);
            }
            PlainOrderType::Limit => {
                let raw = order
                    .price
                    .ok_or_else(|| Refusal::InvalidOrder("a LIMIT order needs a price".into()))?;
                // Round towards the passive side: never pay more / sell cheaper than asked.
                let how = match order.side {
                    Side::Buy => PriceRounding::Down,
                    Side::Sell => PriceRounding::Up,
                };
                let price = check_order_price(&f, raw, how)?;
                let qty = check_order_qty(&f, order.quantity, price, false, order.reduce_only)?;
                p.push("type", "LIMIT")
                    .push("quantity", qty)
                    .push("price", price)
                    .push(
                        "timeInForce",
                        order.time_in_force.unwrap_or_default().as_str(),
                    );
            }
        }
        let (position_side, reduce_only) = position_fields(
            self.config().account_modes.position_mode,
            order.side,
            order.reduce_only,
            order.position_side,
        );
        if reduce_only {
            p.push("reduceOnly", "true");
        }
        p.push_opt("positionSide", position_side.map(|s| s.as_str()));
        p.push("newClientOrderId", &order.client_order_id)
            .push("newOrderRespType", "RESULT");
        Ok(p)
    }

    /// Builds the exact parameters of a conditional order (rounded and checked), without sending.
    pub async fn algo_order_params(&self, order: &NewAlgoOrder) -> ExResult<Params> {
        Self::check_client_id(&order.client_algo_id)?;
        let f = self.trading_filters(&order.symbol).await?;
        if order.close_position && (order.quantity.is_some() || order.reduce_only) {
            return Err(Refusal::InvalidOrder(
                "closePosition cannot be combined with quantity or reduceOnly".into(),
            )
            .into());
        }
        if !order.close_position && order.quantity.is_none() {
            return Err(
                Refusal::InvalidOrder("a quantity or closePosition is needed".into()).into(),
            );
        }
        let mut p = Params::new();
        p.push("algoType", "CONDITIONAL")
            .push("symbol", &order.symbol)
            .push("side", side_str(order.side));
        let (position_side, reduce_only) = position_fields(
            self.config().account_modes.position_mode,
            order.side,
            order.reduce_only || order.close_position,
            order.position_side,
        );
        p.push_opt("positionSide", position_side.map(|s| s.as_str()));
        p.push("type", order.order_type.as_str());
        let trigger = match order.order_type {
            AlgoOrderType::StopMarket | AlgoOrderType::TakeProfitMarket => {
                let t = order.trigger_price.ok_or_else(|| {
                    Refusal::InvalidOrder(format!(
                        "{} needs a triggerPrice",
                        order.order_type.as_str()
                    ))
                })?;
                let t = check_order_price(&f, t, PriceRounding::Nearest)?;
                p.push("triggerPrice", t);
                Some(t)
            }
            AlgoOrderType::TrailingStopMarket => {
                let rate = order.callback_rate.ok_or_else(|| {
                    Refusal::InvalidOrder("TRAILING_STOP_MARKET needs a callbackRate".into())
                })?;
                if rate < Decimal::new(1, 1) || rate > Decimal::TEN {
                    return Err(Refusal::InvalidOrder(format!(
                        "callbackRate {rate} is outside 0.1..=10"
                    ))
                    .into());
                }
                let act = match order.activate_price {
                    Some(a) => Some(check_order_price(&f, a, PriceRounding::Nearest)?),
                    None => None,
                };
                p.push_opt("activatePrice", act);
                p.push("callbackRate", rate.normalize());
                act
            }
        };
        if let Some(q) = order.quantity {
            let reference = match trigger {
                Some(t) => t,
                None if order.reduce_only => Decimal::ZERO,
                None => self.mark_price(&order.symbol).await?.mark_price,
            };
            let q = check_order_qty(&f, q, reference, true, order.reduce_only)?;
            p.push("quantity", q);
        }
        if order.close_position {
            p.push("closePosition", "true");
        } else if reduce_only {
            p.push("reduceOnly", "true");
        }
        p.push("workingType", working_type_str(order.working_type));
        if order.price_protect {
            p.push("priceProtect", "TRUE");
        }
        p.push("clientAlgoId", &order.client_algo_id);
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use PositionSideWire::{Both, Long, Short};

    #[test]
    fn hedge_mode_names_the_side_of_every_order_and_never_sends_reduce_only() {
        let hedge = PositionMode::Hedge;
        assert_eq!(
            position_fields(hedge, Side::Buy, false, None),
            (Some(Long), false)
        );
        assert_eq!(
            position_fields(hedge, Side::Sell, false, None),
            (Some(Short), false)
        );
        assert_eq!(
            position_fields(hedge, Side::Sell, true, None),
            (Some(Long), false)
        );
        assert_eq!(
            position_fields(hedge, Side::Buy, true, None),
            (Some(Short), false)
        );
        assert_eq!(
            position_fields(hedge, Side::Buy, true, Some(Both)),
            (Some(Short), false)
        );
        assert_eq!(
            position_fields(hedge, Side::Buy, false, Some(Short)),
            (Some(Short), false)
        );
    }

    #[test]
    fn one_way_mode_sends_what_the_caller_asked() {
        let one = PositionMode::OneWay;
        assert_eq!(position_fields(one, Side::Sell, true, None), (None, true));
        assert_eq!(position_fields(one, Side::Buy, false, None), (None, false));
        assert_eq!(
            position_fields(one, Side::Buy, false, Some(Both)),
            (Some(Both), false)
        );
    }
}
