//! The engine sizes and checks entries through the risk crate's exact integer paths; a run
//! through its reference arithmetic (`Backtest::with_reference_arithmetic`: the `Decimal`
//! quotient and floor of the sizing, every check of the guard in `Decimal`) must give the same
//! outcome to the bit — every trade, every equity point, every refusal by reason, every learned
//! profile — on the repo's real candles, with the breaker at its loosest (every signal sized and
//! checked, a busy book), with the default limits, with limits that refuse for every reason
//! they can, and with sizing by risk per trade.

use std::path::PathBuf;

use qt_backtest::cli::load_data;
use qt_backtest::{
    Backtest, BacktestConfig, BacktestError, BacktestOutcome, PreparedSeries, SymbolSeries,
};
use qt_models::{Model, MomentumConfig, MomentumModel};
use qt_risk::Sizing;
use rust_decimal::Decimal;

fn repo_series() -> Vec<SymbolSeries> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/klines/5m");
    load_data(&[dir], "5m", &[]).unwrap_or_else(|e| panic!("data: {e:#}"))
}

fn run(bt: &Backtest, prepared: &[PreparedSeries]) -> BacktestOutcome {
    bt.run_prepared(
        prepared,
        &mut |_| {
            MomentumModel::new(MomentumConfig::default(), "m")
                .map(|m| Box::new(m) as Box<dyn Model>)
                .map_err(|e| BacktestError::Model(e.to_string()))
        },
        &mut |_, _| {},
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

/// The outcome as text: `Decimal`'s `Debug` writes its scale too, so equal text is equal bits.
fn bits<T: std::fmt::Debug>(v: &T) -> String {
    format!("{v:?}")
}

fn assert_same(name: &str, cfg: BacktestConfig, prepared: &[PreparedSeries]) -> BacktestOutcome {
    let exact = Backtest::new(cfg.clone()).unwrap_or_else(|e| panic!("{e}"));
    let reference = Backtest::new(cfg)
        .unwrap_or_else(|e| panic!("{e}"))
        .with_reference_arithmetic();
    let (a, b) = (run(&exact, prepared), run(&reference, prepared));
    assert_eq!(a.trades.len(), b.trades.len(), "{name}: trades");
    for (x, y) in a.trades.iter().zip(&b.trades) {
        assert_eq!(bits(x), bits(y), "{name}: trade");
    }
    assert_eq!(a.equity.len(), b.equity.len(), "{name}: equity points");
    for (x, y) in a.equity.iter().zip(&b.equity) {
        assert_eq!(bits(x), bits(y), "{name}: equity point");
    }
    assert_eq!(a.rejections, b.rejections, "{name}: refusals");
    assert_eq!(bits(&a.profiles), bits(&b.profiles), "{name}: profiles");
    assert_eq!(
        a.breaker_tripped_at, b.breaker_tripped_at,
        "{name}: breaker"
    );
    assert_eq!(a.candles, b.candles);
    a
}

#[test]
fn sizing_and_checks_by_exact_integers_trade_exactly_as_the_decimal_reference() {
    let series = repo_series();
    assert_eq!(series.len(), 6);
    let prepared = PreparedSeries::prepare_all(&series, 300_000);

    let mut loose = BacktestConfig::default();
    loose.limits.max_drawdown_pct = Decimal::ONE;
    let o = assert_same("no breaker", loose.clone(), &prepared);
    // A busy run: many trades, and entries refused for several reasons.
    assert!(o.trades.len() > 100, "{} trades", o.trades.len());
    assert!(o.rejections.len() >= 3, "{:?}", o.rejections);

    assert_same("default limits", BacktestConfig::default(), &prepared);

    // Tight limits: refusals for the per-trade, symbol, gross, side, count and daily-loss
    // limits and the cooldown, with the book near each of them.
    let mut tight = loose.clone();
    tight.limits.max_notional_per_trade = Decimal::from(2_400);
    tight.limits.max_symbol_notional = Decimal::from(2_450);
    tight.limits.max_gross_exposure = Decimal::from(9_000);
    tight.limits.max_concurrent_positions = 4;
    tight.limits.max_side_fraction = Decimal::new(55, 2);
    tight.limits.max_daily_loss = Decimal::from(60);
    tight.limits.cooldown_minutes = 45;
    tight.sizing = Sizing::FixedNotional {
        margin: Decimal::new(23_999, 2),
        leverage: 10,
    };
    let o = assert_same("tight limits", tight, &prepared);
    assert!(o.rejections.len() >= 3, "{:?}", o.rejections);

    // Sizing by the stop distance (the integer path does not take it: the same code both ways).
    let mut risk = loose;
    risk.sizing = Sizing::RiskPerTrade {
        risk: Decimal::from(25),
        max_notional: Decimal::from(2_500),
        leverage: 10,
    };
    assert_same("risk per trade", risk, &prepared);
}
