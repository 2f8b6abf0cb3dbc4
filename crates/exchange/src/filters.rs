//! Symbol filters from `exchangeInfo`, and the checks applied before an order leaves.
//!
//! The filters are `qt_risk::SymbolFilters`, the one type every crate rounds with; this module
//! is the edge that reads them from the wire. A filter value that does not parse (a `tickSize`
//! of `"abc"`, a `LOT_SIZE` without `minQty`) makes the symbol's filters an error naming the
//! symbol, the filter and the field — never a zero that would silently disable the rule; the
//! other symbols of the answer are read as usual.
//!
//! Quantities are floored to `LOT_SIZE.stepSize` (never rounded up: the caller never gets more
//! than asked for), prices rounded to `PRICE_FILTER.tickSize` on the grid that starts at
//! `minPrice`, and an order whose notional is under `MIN_NOTIONAL` is refused unless it is
//! reduce-only, exactly as Binance would answer -4164. All arithmetic is `Decimal`.

use rust_decimal::Decimal;
use serde::Deserialize;

pub use qt_risk::{PriceRounding, SymbolFilters};

use crate::error::Refusal;

/// One symbol of `exchangeInfo`: its name, status and filters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SymbolInfo {
    pub symbol: String,
    /// `TRADING` when orders are accepted.
    pub status: String,
    pub filters: SymbolFilters,
}

/// A filter value of `exchangeInfo` that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("exchangeInfo of {symbol}: {filter}.{field} {problem}")]
pub struct FilterValueError {
    pub symbol: String,
    pub filter: String,
    pub field: String,
    /// `is missing`, or the value and why it is not a decimal.
    pub problem: String,
}

/// Floors `value` to a multiple of `step` (unchanged when `step` is zero), without trailing zeros.
pub fn floor_to_step(value: Decimal, step: Decimal) -> Decimal {
    if step <= Decimal::ZERO {
        return value.normalize();
    }
    ((value / step).floor() * step).normalize()
}

/// Rounds `qty` to the step of a limit (`market == false`) or market order and checks it against
/// the lot filters and, unless `reduce_only`, the minimum notional at `notional_price`. Returns
/// the quantity to send.
pub fn check_order_qty(
    f: &SymbolFilters,
    qty: Decimal,
    notional_price: Decimal,
    market: bool,
    reduce_only: bool,
) -> Result<Decimal, Refusal> {
    let (step, min, max) = f.lot(market);
    let q = floor_to_step(qty, step);
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
    if !reduce_only && notional < f.min_notional {
        return Err(Refusal::MinNotional {
            notional: notional.normalize().to_string(),
            min: f.min_notional.to_string(),
        });
    }
    Ok(q)
}

/// Rounds a price to the tick grid and checks it against `[minPrice, maxPrice]` (zero = no bound).
pub fn check_order_price(
    f: &SymbolFilters,
    price: Decimal,
    how: PriceRounding,
) -> Result<Decimal, Refusal> {
    let p = f.round_price_on_grid(price, how);
    let out = p <= Decimal::ZERO
        || (f.min_price > Decimal::ZERO && p < f.min_price)
        || (f.max_price > Decimal::ZERO && p > f.max_price);
    if out {
        return Err(Refusal::PriceOutOfRange {
            price: p.to_string(),
            min: f.min_price.to_string(),
            max: f.max_price.to_string(),
        });
    }
    Ok(p)
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
    /// The symbols whose filters were read.
    pub symbols: Vec<SymbolInfo>,
    /// The symbols whose filters were not: one error each, naming the value.
    pub invalid: Vec<FilterValueError>,
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
        let mut info = ExchangeInfo {
            server_time: raw.server_time,
            ..ExchangeInfo::default()
        };
        for s in raw.symbols {
            match SymbolInfo::from_raw(s) {
                Ok(s) => info.symbols.push(s),
                Err(e) => info.invalid.push(e),
            }
        }
        Ok(info)
    }
}

/// Reads `filter.field` as a decimal: a string or a number; absent or unreadable is an error.
fn dec(
    symbol: &str,
    filter: &str,
    v: &serde_json::Value,
    field: &str,
) -> Result<Decimal, FilterValueError> {
    let err = |problem: String| FilterValueError {
        symbol: symbol.to_string(),
        filter: filter.to_string(),
        field: field.to_string(),
        problem,
    };
    let text = match v.get(field) {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(serde_json::Value::Number(n)) => n.to_string(),
        Some(other) => return Err(err(format!("is {other}, not a decimal"))),
        None => return Err(err("is missing".to_string())),
    };
    text.parse::<Decimal>()
        .or_else(|_| Decimal::from_scientific(&text))
        .map_err(|e| err(format!("is {text:?}, not a decimal ({e})")))
}

impl SymbolInfo {
    fn from_raw(raw: RawSymbol) -> Result<Self, FilterValueError> {
        let mut f = SymbolFilters::NONE;
        let mut has_market_lot = false;
        let sym = raw.symbol.as_str();
        for flt in &raw.filters {
            let kind = flt.get("filterType").and_then(|t| t.as_str()).unwrap_or("");
            let get = |field: &str| dec(sym, kind, flt, field);
            match kind {
                "PRICE_FILTER" => {
                    f.min_price = get("minPrice")?;
                    f.max_price = get("maxPrice")?;
                    f.tick_size = get("tickSize")?;
                }
                "LOT_SIZE" => {
                    f.min_qty = get("minQty")?;
                    f.max_qty = get("maxQty")?;
                    f.step_size = get("stepSize")?;
                }
                "MARKET_LOT_SIZE" => {
                    has_market_lot = true;
                    f.market_min_qty = get("minQty")?;
                    f.market_max_qty = get("maxQty")?;
                    f.market_step_size = get("stepSize")?;
                }
                "MIN_NOTIONAL" => f.min_notional = get("notional")?,
                _ => {}
            }
        }
        if !has_market_lot {
            f.market_min_qty = f.min_qty;
            f.market_max_qty = f.max_qty;
            f.market_step_size = f.step_size;
        }
        Ok(SymbolInfo {
            symbol: raw.symbol,
            status: raw.status,
            filters: f,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rust_decimal_macros::dec;

    const BTC: &str = r#"{"serverTime":1,"symbols":[{"symbol":"BTCUSDT","status":"TRADING","filters":[
            {"filterType":"PRICE_FILTER","minPrice":"556.80","maxPrice":"4529764","tickSize":"0.10"},
            {"filterType":"LOT_SIZE","minQty":"0.001","maxQty":"1000","stepSize":"0.001"},
            {"filterType":"MARKET_LOT_SIZE","minQty":"0.001","maxQty":"120","stepSize":"0.001"},
            {"filterType":"MAX_NUM_ORDERS","limit":200},
            {"filterType":"MIN_NOTIONAL","notional":"100"}]}]}"#;

    pub(crate) fn btc() -> SymbolFilters {
        let info: ExchangeInfo = serde_json::from_str(BTC).unwrap();
        info.symbols[0].filters
    }

    #[test]
    fn exchange_info_filters_are_parsed() {
        let f = btc();
        assert_eq!(f.tick_size, dec!(0.10));
        assert_eq!(f.step_size, dec!(0.001));
        assert_eq!(f.market_max_qty, dec!(120));
        assert_eq!(f.min_notional, dec!(100));
    }

    /// Each filter value in turn made unreadable: the symbol's filters become an error naming
    /// the symbol, the filter and the field, and the other symbols still read.
    #[test]
    fn an_unreadable_filter_value_is_an_error_naming_symbol_and_field() {
        let cases = [
            (
                r#""tickSize":"0.10""#,
                r#""tickSize":"abc""#,
                "PRICE_FILTER",
                "tickSize",
            ),
            (
                r#""minQty":"0.001","maxQty":"1000""#,
                r#""maxQty":"1000""#,
                "LOT_SIZE",
                "minQty",
            ),
            (
                r#""stepSize":"0.001"},
            {"filterType":"MARKET"#,
                r#""stepSize":true},
            {"filterType":"MARKET"#,
                "LOT_SIZE",
                "stepSize",
            ),
            (
                r#""notional":"100""#,
                r#""notional":"""#,
                "MIN_NOTIONAL",
                "notional",
            ),
        ];
        for (good, bad, filter, field) in cases {
            assert!(BTC.contains(good), "{good}");
            let broken = BTC.replacen(good, bad, 1).replacen(
                "]}]}",
                r#"]},{"symbol":"ETHUSDT","status":"TRADING","filters":[]}]}"#,
                1,
            );
            let info: ExchangeInfo = serde_json::from_str(&broken).unwrap();
            assert_eq!(info.invalid.len(), 1, "{field}");
            let e = &info.invalid[0];
            assert_eq!(
                (e.symbol.as_str(), e.filter.as_str(), e.field.as_str()),
                ("BTCUSDT", filter, field)
            );
            let message = e.to_string();
            assert!(
                message.contains("BTCUSDT") && message.contains(field),
                "{message}"
            );
            assert_eq!(info.symbols.len(), 1);
            assert_eq!(info.symbols[0].symbol, "ETHUSDT");
        }
    }

    #[test]
    fn number_valued_filters_are_read_as_decimals() {
        let info: ExchangeInfo = serde_json::from_str(
            r#"{"symbols":[{"symbol":"X","filters":[{"filterType":"MIN_NOTIONAL","notional":5.5}]}]}"#,
        )
        .unwrap();
        assert_eq!(info.symbols[0].filters.min_notional, dec!(5.5));
    }

    #[test]
    fn quantity_is_floored_and_price_put_on_the_tick_grid() {
        let f = btc();
        assert_eq!(
            floor_to_step(dec!(0.0129), f.step_size).to_string(),
            "0.012"
        );
        assert_eq!(
            f.round_price_on_grid(dec!(43000.06), PriceRounding::Nearest)
                .to_string(),
            "43000.1"
        );
        assert_eq!(
            f.round_price_on_grid(dec!(43000.06), PriceRounding::Down)
                .to_string(),
            "43000"
        );
        assert_eq!(
            f.round_price_on_grid(dec!(43000.01), PriceRounding::Up)
                .to_string(),
            "43000.1"
        );
    }

    #[test]
    fn orders_under_min_notional_are_refused_unless_reduce_only() {
        let f = btc();
        let e = check_order_qty(&f, dec!(0.002), dec!(43000), false, false).unwrap_err();
        assert!(matches!(e, Refusal::MinNotional { .. }), "{e}");
        assert_eq!(
            check_order_qty(&f, dec!(0.002), dec!(43000), false, true).unwrap(),
            dec!(0.002)
        );
        assert_eq!(
            check_order_qty(&f, dec!(0.0031), dec!(43000), true, false).unwrap(),
            dec!(0.003)
        );
        assert!(matches!(
            check_order_qty(&f, dec!(0.0009), dec!(43000), false, true),
            Err(Refusal::QtyBelowMin { .. })
        ));
        assert!(matches!(
            check_order_qty(&f, dec!(121), dec!(43000), true, false),
            Err(Refusal::QtyAboveMax { .. })
        ));
        assert!(check_order_price(&f, dec!(100), PriceRounding::Nearest).is_err());
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
            let r = f.round_price_on_grid(p, PriceRounding::Nearest);
            prop_assert_eq!(((r - f.min_price) / f.tick_size).fract(), Decimal::ZERO);
            prop_assert!((r - p).abs() <= f.tick_size / Decimal::TWO);
        }
    }
}
