//! `exchangeInfo` in the shape Binance documents it (`fixtures/exchange_info_binance.json`: the
//! documented example symbol and BTCUSDT's filters) read into the one `SymbolFilters` type, and
//! an unreadable filter value refused with the symbol and field named.
#![allow(clippy::unwrap_used)]

use qt_exchange::{ExchangeInfo, PriceRounding, SymbolFilters};
use rust_decimal_macros::dec;

const BINANCE: &str = include_str!("fixtures/exchange_info_binance.json");

fn info(json: &str) -> ExchangeInfo {
    serde_json::from_str(json).unwrap()
}

#[test]
fn binance_exchange_info_reads_every_rule_of_every_symbol() {
    let info = info(BINANCE);
    assert!(info.invalid.is_empty(), "{:?}", info.invalid);
    assert_eq!(info.server_time, 1_565_613_908_500);
    let blz = &info.symbols[0];
    assert_eq!(
        (blz.symbol.as_str(), blz.status.as_str()),
        ("BLZUSDT", "TRADING")
    );
    assert_eq!(
        blz.filters,
        SymbolFilters {
            tick_size: dec!(0.0001),
            step_size: dec!(1),
            min_qty: dec!(1),
            max_qty: dec!(10000000),
            min_notional: dec!(5.0),
            min_price: dec!(0.0001),
            max_price: dec!(300),
            market_step_size: dec!(1),
            market_min_qty: dec!(1),
            market_max_qty: dec!(590119),
        }
    );
    // Entries are market orders: the market lot's maximum applies to them.
    assert_eq!(blz.filters.for_market_orders().max_qty, dec!(590119));
    let btc = info.symbols[1].filters;
    assert_eq!(
        btc.round_price_on_grid(dec!(43000.06), PriceRounding::Nearest),
        dec!(43000.1)
    );
    assert_eq!(btc.round_qty(dec!(0.0129)), dec!(0.012));
}

#[test]
fn a_tick_size_that_is_not_a_number_refuses_the_symbol_by_name() {
    let broken = BINANCE.replacen(r#""tickSize": "0.0001""#, r#""tickSize": "abc""#, 1);
    let info = info(&broken);
    assert_eq!(info.symbols.len(), 1, "BTCUSDT still reads");
    assert_eq!(info.symbols[0].symbol, "BTCUSDT");
    let e = &info.invalid[0];
    assert_eq!(e.symbol, "BLZUSDT");
    assert_eq!(e.field, "tickSize");
    let message = e.to_string();
    assert!(
        message.contains("BLZUSDT") && message.contains("PRICE_FILTER.tickSize"),
        "{message}"
    );
    assert!(message.contains("abc"), "{message}");
}

#[test]
fn a_missing_min_qty_refuses_the_symbol_instead_of_disabling_the_rule() {
    let broken = BINANCE.replacen(r#""minQty": "0.001", "#, "", 1);
    let info = info(&broken);
    assert_eq!(info.symbols.len(), 1);
    let e = &info.invalid[0];
    assert_eq!(
        (e.symbol.as_str(), e.filter.as_str(), e.field.as_str()),
        ("BTCUSDT", "LOT_SIZE", "minQty")
    );
    assert!(e.to_string().contains("is missing"), "{e}");
}
