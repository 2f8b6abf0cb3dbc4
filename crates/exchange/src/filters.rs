//! Symbol filters from `exchangeInfo`, and the rounding and checks applied before an order leaves.
//!
//! Quantities are floored to `LOT_SIZE.stepSize` (never rounded up: the caller never gets more
//! than asked for), prices rounded to `PRICE_FILTER.tickSize` on the grid that starts at
//! `minPrice`, and an order whose notional is under `MIN_NOTIONAL` is refused unless it is
//! reduce-only, exactly as Binance would answer -4164. All arithmetic is `Decimal`.

use rust_decimal::{Decimal, RoundingStrategy};
use serde::Deserialize;

use crate::error::Refusal;

/// The trading rules of one symbol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SymbolFilters {
    pub symbol: String,
    /// `TRADING` when orders are accepted.
    pub status: String,
    pub min_price: Decimal,
    pub max_price: Decimal,
    /// Price grid; zero disables the rule.
    pub tick_size: Decimal,
    pub min_qty: Decimal,
    pub max_qty: Decimal,
    /// Quantity grid; zero disables the rule.
    pub step_size: Decimal,
    /// `MARKET_LOT_SIZE` (falls back to `LOT_SIZE` when absent).
    pub market_min_qty: Decimal,
    pub market_max_qty: Decimal,
    pub market_step_size: Decimal,
    /// `MIN_NOTIONAL.notional`: price × quantity must reach it unless reduce-only.
    pub min_notional: Decimal,
}

/// How a price is brought onto the tick grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PriceRounding {
    Nearest,
    Down,
    Up,
}

/// Floors `value` to a multiple of `step` (unchanged when `step` is zero), without trailing zeros.
pub fn floor_to_step(value: Decimal, step: Decimal) -> Decimal {
    if step <= Decimal::ZERO {
        return value.normalize();
    }
    ((value / step).floor() * step).normalize()
}

impl SymbolFilters {
    /// Quantity floored to the step of a limit (`market == false`) or market order.
    pub fn round_qty(&self, qty: Decimal, market: bool) -> Decimal {
        let step = if market {
            self.market_step_size
        } else {
            self.step_size
        };
        floor_to_step(qty, step)
    }

    /// Price on the tick grid anchored at `minPrice`.
    pub fn round_price(&self, price: Decimal, how: PriceRounding) -> Decimal {
        if self.tick_size <= Decimal::ZERO {
            return price.normalize();
        }
        let steps = (price - self.min_price) / self.tick_size;
        let steps = match how {
            PriceRounding::Nearest => {
                steps.round_dp_with_strategy(0, RoundingStrategy::MidpointAwayFromZero)
            }
            PriceRounding::Down => steps.floor(),
            PriceRounding::Up => steps.ceil(),
        };
        (self.min_price + steps * self.tick_size).normalize()
    }

    /// Rounds `qty` and checks it against the lot filters and, unless `reduce_only`, the
    /// minimum notional at `notional_price`. Returns the quantity to send.
    pub fn check_qty(
        &self,
        qty: Decimal,
        notional_price: Decimal,
        market: bool,
        reduce_only: bool,
    ) -> Result<Decimal, Refusal> {
        let q = self.round_qty(qty, market);
        let (min, max) = if market {
            (self.market_min_qty, self.market_max_qty)
        } else {
            (self.min_qty, self.max_qty)
        };
        if q <= Decimal::ZERO || q < min {
            return Err(Refusal::QtyBelowMin {
                qty: qty.to_string(),
                min: min.to_string(),
            });
        }
        if max > Decimal::ZERO && q > max {
            return Err(Refusal::QtyAboveMax {
                qty: q.to_string(),
                max: max.to_string(),
            });
        }
        let notional = q * notional_price;
        if !reduce_only && notional < self.min_notional {
            return Err(Refusal::MinNotional {
                notional: notional.normalize().to_string(),
                min: self.min_notional.to_string(),
            });
        }
        Ok(q)
    }

    /// Rounds a price to the tick and checks it against `[minPrice, maxPrice]` (zero = no bound).
    pub fn check_price(&self, price: Decimal, how: PriceRounding) -> Result<Decimal, Refusal> {
        let p = self.round_price(price, how);
        let out = p <= Decimal::ZERO
            || (self.min_price > Decimal::ZERO && p < self.min_price)
            || (self.max_price > Decimal::ZERO && p > self.max_price);
        if out {
            return Err(Refusal::PriceOutOfRange {
                price: p.to_string(),
                min: self.min_price.to_string(),
                max: self.max_price.to_string(),
            });
        }
        Ok(p)
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawSymbol {
    symbol: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    filters: Vec<serde_json::Value>,
}

/// The part of `GET /fapi/v1/exchangeInfo` the client uses.
#[derive(Debug, Clone, Default)]
pub struct ExchangeInfo {
    pub server_time: i64,
    pub symbols: Vec<SymbolFilters>,
}

impl<'de> Deserialize<'de> for ExchangeInfo {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Raw {
            #[serde(default)]
            server_time: i64,
            #[serde(default)]
            symbols: Vec<RawSymbol>,
        }
        let raw = Raw::deserialize(d)?;
        Ok(ExchangeInfo {
            server_time: raw.server_time,
            symbols: raw
                .symbols
                .into_iter()
                .map(SymbolFilters::from_raw)
                .collect(),
        })
    }
}

fn dec(v: &serde_json::Value, key: &str) -> Decimal {
    match v.get(key) {
        Some(serde_json::Value::String(s)) => s.parse().unwrap_or_default(),
        Some(serde_json::Value::Number(n)) => n.to_string().parse().unwrap_or_default(),
        _ => Decimal::ZERO,
    }
}

impl SymbolFilters {
    fn from_raw(raw: RawSymbol) -> Self {
        let mut f = SymbolFilters {
            symbol: raw.symbol,
            status: raw.status,
            min_price: Decimal::ZERO,
            max_price: Decimal::ZERO,
            tick_size: Decimal::ZERO,
            min_qty: Decimal::ZERO,
            max_qty: Decimal::ZERO,
            step_size: Decimal::ZERO,
            market_min_qty: Decimal::ZERO,
            market_max_qty: Decimal::ZERO,
            market_step_size: Decimal::ZERO,
            min_notional: Decimal::ZERO,
        };
        let mut has_market_lot = false;
        for flt in &raw.filters {
            match flt.get("filterType").and_then(|t| t.as_str()) {
                Some("PRICE_FILTER") => {
                    f.min_price = dec(flt, "minPrice");
                    f.max_price = dec(flt, "maxPrice");
                    f.tick_size = dec(flt, "tickSize");
                }
                Some("LOT_SIZE") => {
                    f.min_qty = dec(flt, "minQty");
                    f.max_qty = dec(flt, "maxQty");
                    f.step_size = dec(flt, "stepSize");
                }
                Some("MARKET_LOT_SIZE") => {
                    has_market_lot = true;
                    f.market_min_qty = dec(flt, "minQty");
                    f.market_max_qty = dec(flt, "maxQty");
                    f.market_step_size = dec(flt, "stepSize");
                }
                Some("MIN_NOTIONAL") => f.min_notional = dec(flt, "notional"),
                _ => {}
            }
        }
        if !has_market_lot {
            f.market_min_qty = f.min_qty;
            f.market_max_qty = f.max_qty;
            f.market_step_size = f.step_size;
        }
        f
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rust_decimal_macros::dec;

    pub(crate) fn btc() -> SymbolFilters {
        let info: ExchangeInfo = serde_json::from_str(
            r#"{"serverTime":1,"symbols":[{"symbol":"BTCUSDT","status":"TRADING","filters":[
            {"filterType":"PRICE_FILTER","minPrice":"556.80","maxPrice":"4529764","tickSize":"0.10"},
            {"filterType":"LOT_SIZE","minQty":"0.001","maxQty":"1000","stepSize":"0.001"},
            {"filterType":"MARKET_LOT_SIZE","minQty":"0.001","maxQty":"120","stepSize":"0.001"},
            {"filterType":"MAX_NUM_ORDERS","limit":200},
            {"filterType":"MIN_NOTIONAL","notional":"100"}]}]}"#,
        )
        .unwrap();
        info.symbols[0].clone()
    }

    #[test]
    fn exchange_info_filters_are_parsed() {
        let f = btc();
        assert_eq!(f.tick_size, dec!(0.10));
        assert_eq!(f.step_size, dec!(0.001));
        assert_eq!(f.market_max_qty, dec!(120));
        assert_eq!(f.min_notional, dec!(100));
    }

    #[test]
    fn quantity_is_floored_and_price_put_on_the_tick_grid() {
        let f = btc();
        assert_eq!(f.round_qty(dec!(0.0129), false).to_string(), "0.012");
        assert_eq!(
            f.round_price(dec!(43000.06), PriceRounding::Nearest)
                .to_string(),
            "43000.1"
        );
        assert_eq!(
            f.round_price(dec!(43000.06), PriceRounding::Down)
                .to_string(),
            "43000"
        );
        assert_eq!(
            f.round_price(dec!(43000.01), PriceRounding::Up).to_string(),
            "43000.1"
        );
    }

    #[test]
    fn orders_under_min_notional_are_refused_unless_reduce_only() {
        let f = btc();
        let e = f
            .check_qty(dec!(0.002), dec!(43000), false, false)
            .unwrap_err();
        assert!(matches!(e, Refusal::MinNotional { .. }), "{e}");
        assert_eq!(
            f.check_qty(dec!(0.002), dec!(43000), false, true).unwrap(),
            dec!(0.002)
        );
        assert_eq!(
            f.check_qty(dec!(0.0031), dec!(43000), true, false).unwrap(),
            dec!(0.003)
        );
        assert!(matches!(
            f.check_qty(dec!(0.0009), dec!(43000), false, true),
            Err(Refusal::QtyBelowMin { .. })
        ));
        assert!(matches!(
            f.check_qty(dec!(121), dec!(43000), true, false),
            Err(Refusal::QtyAboveMax { .. })
        ));
        assert!(f.check_price(dec!(100), PriceRounding::Nearest).is_err());
    }

    proptest! {
        #[test]
        fn rounded_quantity_is_a_multiple_of_step_and_never_above_input(
            units in 0u64..10_000_000_000u64,
            scale in 0u32..9,
            step_exp in 0u32..6,
            step_mult in 1u64..10,
        ) {
            let qty = Decimal::from_i128_with_scale(i128::from(units), scale);
            let step = Decimal::from_i128_with_scale(i128::from(step_mult), step_exp);
            let r = floor_to_step(qty, step);
            prop_assert!(r <= qty);
            prop_assert!(qty - r < step);
            prop_assert_eq!((r / step).fract(), Decimal::ZERO);
            prop_assert!(!r.to_string().contains('e'));
        }

        #[test]
        fn rounded_price_is_on_the_grid_within_half_a_tick(
            units in 5568u64..1_000_000_000u64,
        ) {
            let f = btc();
            let p = Decimal::from_i128_with_scale(i128::from(units), 2);
            let r = f.round_price(p, PriceRounding::Nearest);
            prop_assert_eq!(((r - f.min_price) / f.tick_size).fract(), Decimal::ZERO);
            prop_assert!((r - p).abs() <= f.tick_size / Decimal::TWO);
        }
    }
}
