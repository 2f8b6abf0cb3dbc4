//! `qtctl doctor --exchange paper|testnet|live`: checks that an exchange account can be traded
//! by this system, end to end, and prints a pass/fail table.
//!
//! The checks, in order: the server's clock against this machine's (`GET /fapi/v1/time`), the
//! keys (a signed `GET /fapi/v3/account`), the account's position mode and multi-assets mode
//! against the configuration (`QT_POSITION_MODE`, `QT_MULTI_ASSETS_MARGIN`), the symbol's
//! filters (`exchangeInfo`), then one round trip of real orders on the symbol: a market buy of
//! the smallest quantity its filters allow, its protective stop (`STOP_MARKET closePosition` on
//! the algo endpoint), then the stop cancelled and the position closed at market, and the
//! symbol checked flat with nothing open. The orders only run on a symbol with no position and
//! no open order, so a running system's are never touched; whatever the doctor opened is
//! cancelled and closed even when a step fails. `live` trades real money and needs
//! `--i-understand-live`.
//!
//! Exit codes: 0 every check passed, 1 a check failed, 2 bad usage or a bad setting.

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use qt_events::{Decimal, Side};
use qt_exchange::{
    AccountModes, BinanceClient, Exchange, ExchangeConfig, Mode, ModesError, NewAlgoOrder,
    NewOrder, OrderStatus, check_account_modes,
};

/// `qtctl doctor` arguments.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Which exchange: `paper` (the simulator at QT_SIM_URL), `testnet` or `live`; the keys
    /// come from QT_API_KEY / QT_API_SECRET (or their `_FILE`s) as for the services.
    #[arg(long, value_parser = ["paper", "testnet", "live"])]
    pub exchange: String,
    /// The symbol of the order round trip.
    #[arg(long, default_value = "BTCUSDT")]
    pub symbol: String,
    /// Required with `--exchange live`: the round trip buys and sells on a real account.
    #[arg(long)]
    pub i_understand_live: bool,
    /// Only the checks that place nothing (clock, keys, modes, filters).
    #[arg(long)]
    pub no_orders: bool,
}

/// One row of the table.
#[derive(Debug, Clone, serde::Serialize)]
struct Check {
    check: String,
    result: Outcome,
    detail: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "UPPERCASE")]
enum Outcome {
    Pass,
    Fail,
    Skip,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "PASS",
            Outcome::Fail => "FAIL",
            Outcome::Skip => "SKIP",
        }
    }
}

#[derive(Default)]
struct Report(Vec<Check>);

impl Report {
    fn push(&mut self, check: impl Into<String>, result: Outcome, detail: impl Into<String>) {
        self.0.push(Check {
            check: check.into(),
            result,
            detail: detail.into(),
        });
    }
    fn pass(&mut self, check: impl Into<String>, detail: impl Into<String>) {
        self.push(check, Outcome::Pass, detail);
    }
    fn fail(&mut self, check: impl Into<String>, detail: impl Into<String>) {
        self.push(check, Outcome::Fail, detail);
    }
    fn skip(&mut self, check: impl Into<String>, detail: impl Into<String>) {
        self.push(check, Outcome::Skip, detail);
    }
    fn failed(&self) -> bool {
        self.0.iter().any(|c| c.result == Outcome::Fail)
    }
}

/// Runs the doctor; prints the table (or JSON) and returns the exit code.
pub fn main(args: &DoctorArgs, json: bool) -> ExitCode {
    let Some(mode) = Mode::parse(&args.exchange) else {
        eprintln!("qtctl doctor: --exchange: expected paper|testnet|live");
        return ExitCode::from(2);
    };
    if mode == Mode::Live && !args.i_understand_live && !args.no_orders {
        eprintln!(
            "qtctl doctor: --exchange live places and closes a real order on a real account; \
             add --i-understand-live to go on (or --no-orders for the checks that place nothing)"
        );
        return ExitCode::from(2);
    }
    let config = match ExchangeConfig::from_env_with(|name| {
        if name == "QT_EXCHANGE" {
            Some(mode.name().to_string())
        } else {
            std::env::var(name).ok()
        }
    }) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("qtctl doctor: {e}");
            return ExitCode::from(2);
        }
    };
    qt_exchange::install_crypto_provider();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("qtctl doctor: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let report = rt.block_on(run(config, args));
    print(&report, json);
    if report.failed() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn print(report: &Report, json: bool) {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report.0).unwrap_or_default()
        );
        return;
    }
    let w = report
        .0
        .iter()
        .map(|c| c.check.len())
        .max()
        .unwrap_or(5)
        .max(5);
    println!("{:<w$}  RESULT  DETAIL", "CHECK");
    for c in &report.0 {
        println!("{:<w$}  {:<6}  {}", c.check, c.result.as_str(), c.detail);
    }
    let failed = report
        .0
        .iter()
        .filter(|c| c.result == Outcome::Fail)
        .count();
    println!(
        "{}",
        if failed == 0 {
            "doctor: every check passed".to_string()
        } else {
            format!("doctor: {failed} check(s) failed")
        }
    );
}

async fn run(config: ExchangeConfig, args: &DoctorArgs) -> Report {
    let mut r = Report::default();
    r.pass(
        "exchange",
        format!("{} at {}", config.mode.name(), config.rest_url),
    );
    let want = config.account_modes;
    let recv_window = config.recv_window_ms;
    let client = match BinanceClient::new(config, qt_events::clock::system()) {
        Ok(c) => c,
        Err(e) => {
            r.fail("client", e.to_string());
            return r;
        }
    };

    // Clock: the offset is what every signed request's timestamp is corrected by; half the
    // recvWindow is the most it may be before a slow request is refused with -1021.
    match client.sync_time().await {
        Ok(offset) => {
            let limit = i64::try_from(recv_window / 2).unwrap_or(i64::MAX);
            let detail = format!(
                "server clock {offset:+} ms from this machine's (recvWindow {recv_window} ms)"
            );
            if offset.abs() <= limit {
                r.pass("clock", detail);
            } else {
                r.fail("clock", format!("{detail}: fix this machine's time (NTP)"));
            }
        }
        Err(e) => {
            r.fail("clock", format!("GET /fapi/v1/time: {e}"));
            return r;
        }
    }

    // Keys: a signed USER_DATA call.
    match client.account().await {
        Ok(a) => r.pass(
            "keys",
            format!(
                "signed call accepted; wallet {} USDT, available {}",
                a.total_wallet_balance.round_dp(2),
                a.available_balance.round_dp(2)
            ),
        ),
        Err(e) => {
            r.fail("keys", format!("GET /fapi/v3/account: {e}"));
            return r;
        }
    }

    check_modes(&client, want, &mut r).await;

    // Filters of the symbol.
    let info = match client.symbol_info(&args.symbol).await {
        Ok(i) => i,
        Err(e) => {
            r.fail(format!("filters {}", args.symbol), e.to_string());
            return r;
        }
    };
    let f = info.filters;
    let filters = format!(
        "{}: tick {}, step {}, min qty {}, min notional {}",
        info.status,
        f.tick_size.normalize(),
        f.step_size.normalize(),
        f.min_qty.normalize(),
        f.min_notional.normalize()
    );
    if info.status == "TRADING" && f.tick_size > Decimal::ZERO && f.step_size > Decimal::ZERO {
        r.pass(format!("filters {}", args.symbol), filters);
    } else {
        r.fail(format!("filters {}", args.symbol), filters);
        return r;
    }

    if args.no_orders {
        r.skip("orders", "--no-orders");
        return r;
    }
    if r.failed() {
        r.skip("orders", "an earlier check failed");
        return r;
    }
    round_trip(&client, &args.symbol, &f, &mut r).await;
    r
}

async fn check_modes(client: &BinanceClient, want: AccountModes, r: &mut Report) {
    match check_account_modes(client, want).await {
        Ok(have) => r.pass(
            "account modes",
            format!("{}, as configured", have.describe()),
        ),
        Err(ModesError::Mismatch(m)) => r.fail("account modes", m),
        Err(e) => r.fail("account modes", e.to_string()),
    }
}

/// The smallest quantity the filters let a market order have at `mark`, with a fifth over the
/// minimum notional so a small move does not make it too small.
fn tiny_quantity(f: &qt_exchange::SymbolFilters, mark: Decimal) -> Decimal {
    let step = if f.market_step_size > Decimal::ZERO {
        f.market_step_size
    } else {
        f.step_size
    };
    let min_qty = f.market_min_qty.max(f.min_qty);
    let wanted = if mark > Decimal::ZERO {
        f.min_notional * Decimal::new(12, 1) / mark
    } else {
        min_qty
    };
    let steps = (wanted / step).ceil();
    (steps * step).max(min_qty).normalize()
}

/// Whether the symbol has no position, no open order and no open conditional order; a
/// description of what it has otherwise.
async fn symbol_is_idle(client: &BinanceClient, symbol: &str) -> Result<(), String> {
    let positions = client
        .positions(Some(symbol))
        .await
        .map_err(|e| format!("positions: {e}"))?;
    let held: Decimal = positions
        .iter()
        .filter(|p| p.symbol == symbol)
        .map(|p| p.position_amt)
        .sum();
    let orders = client
        .open_orders(Some(symbol))
        .await
        .map_err(|e| format!("open orders: {e}"))?;
    let algos = client
        .open_algo_orders(Some(symbol))
        .await
        .map_err(|e| format!("open conditional orders: {e}"))?;
    if held.is_zero() && orders.is_empty() && algos.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "position {held}, {} open order(s), {} open conditional order(s)",
            orders.len(),
            algos.len()
        ))
    }
}

async fn round_trip(
    client: &BinanceClient,
    symbol: &str,
    f: &qt_exchange::SymbolFilters,
    r: &mut Report,
) {
    if let Err(what) = symbol_is_idle(client, symbol).await {
        r.fail(
            "orders",
            format!(
                "{symbol} is in use ({what}); the doctor trades only an idle symbol — pick \
                 another with --symbol or stop the system first"
            ),
        );
        return;
    }
    let mark = match client.mark_price(symbol).await {
        Ok(m) => m.mark_price,
        Err(e) => {
            r.fail("orders", format!("mark price: {e}"));
            return;
        }
    };
    let qty = tiny_quantity(f, mark);
    let stamp = client.server_now_ms();
    let entry_id = format!("qtdoctor-{stamp}-entry");
    let stop_id = format!("qtdoctor-{stamp}-stop");
    let close_id = format!("qtdoctor-{stamp}-close");

    // The order.
    let entry = NewOrder::market(symbol, Side::Buy, qty, &entry_id).with_reference_price(mark);
    let filled = match client.new_order(&entry).await {
        Ok(_) => settled_fill(client, symbol, &entry_id).await,
        // An unknown outcome: the order may exist; its query says.
        Err(e) if e.is_unknown_outcome() => settled_fill(client, symbol, &entry_id).await,
        Err(e) => Err(e.to_string()),
    };
    let held = match filled {
        Ok(q) if q > Decimal::ZERO => {
            r.pass(
                "order",
                format!("market buy {q} {symbol} at about {mark} filled ({entry_id})"),
            );
            q
        }
        Ok(_) => {
            r.fail("order", format!("market buy {qty} {symbol}: not filled"));
            Decimal::ZERO
        }
        Err(e) => {
            r.fail("order", format!("market buy {qty} {symbol}: {e}"));
            Decimal::ZERO
        }
    };

    // Its stop, 10 % under the mark (the client rounds it to the tick).
    if held > Decimal::ZERO {
        let trigger = mark * Decimal::new(9, 1);
        let stop = NewAlgoOrder::stop_close_position(symbol, Side::Sell, trigger, &stop_id);
        match client.new_algo_order(&stop).await {
            Ok(a) => match client.query_algo_order(&stop_id).await {
                Ok(q) => r.pass(
                    "stop",
                    format!(
                        "STOP_MARKET closePosition at {} placed: {} (algo {})",
                        q.trigger_price.normalize(),
                        q.algo_status.as_str(),
                        a.algo_id
                    ),
                ),
                Err(e) => r.fail("stop", format!("placed, but its query failed: {e}")),
            },
            Err(e) => r.fail("stop", format!("STOP_MARKET closePosition: {e}")),
        }
    } else {
        r.skip("stop", "no position to protect");
    }

    // Cleanup, whatever happened above: the stop, then the position.
    let mut cleanup = Vec::new();
    match client.cancel_algo_order(&stop_id).await {
        Ok(()) => cleanup.push("stop cancelled".to_string()),
        Err(e) if e.is_no_such_order() || held.is_zero() => {}
        Err(e) => cleanup.push(format!("stop not cancelled: {e}")),
    }
    let left = position(client, symbol).await;
    match left {
        Ok(amt) if amt > Decimal::ZERO => {
            let close = NewOrder::market(symbol, Side::Sell, amt, &close_id)
                .reduce_only(true)
                .with_reference_price(mark);
            match client.new_order(&close).await {
                Ok(_) => cleanup.push(format!("position {amt} closed at market")),
                Err(e) => cleanup.push(format!("position {amt} not closed: {e}")),
            }
        }
        Ok(_) => {}
        Err(e) => cleanup.push(format!("position unknown: {e}")),
    }
    // The close's fill and the cancel settle at once on Binance; poll a few times.
    let mut idle = symbol_is_idle(client, symbol).await;
    for _ in 0..10 {
        if idle.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        idle = symbol_is_idle(client, symbol).await;
    }
    match idle {
        Ok(()) => r.pass(
            "cleanup",
            format!(
                "{}{symbol} flat, nothing open",
                if cleanup.is_empty() {
                    String::new()
                } else {
                    format!("{}; ", cleanup.join("; "))
                }
            ),
        ),
        Err(what) => r.fail(
            "cleanup",
            format!(
                "{}; {symbol} still has {what}: close it by hand",
                cleanup.join("; ")
            ),
        ),
    }
}

/// The executed quantity of order `client_order_id` once it is no longer new (a market order
/// fills at once; a few queries cover the exchange's processing).
async fn settled_fill(
    client: &BinanceClient,
    symbol: &str,
    client_order_id: &str,
) -> Result<Decimal, String> {
    let mut last = String::new();
    for _ in 0..10 {
        match client.query_order(symbol, client_order_id).await {
            Ok(o) if o.status == OrderStatus::Filled || o.status.ended_unfilled() => {
                return Ok(o.executed_qty);
            }
            Ok(o) => last = format!("status {}", o.status.as_str()),
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    Err(format!("order {client_order_id} not settled: {last}"))
}

/// The symbol's signed position amount.
async fn position(client: &BinanceClient, symbol: &str) -> Result<Decimal, String> {
    client
        .positions(Some(symbol))
        .await
        .map(|ps| {
            ps.iter()
                .filter(|p| p.symbol == symbol)
                .map(|p| p.position_amt)
                .sum()
        })
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tiny_quantity_is_on_the_step_and_above_the_minimum_notional() {
        let f = qt_exchange::SymbolFilters {
            tick_size: Decimal::new(1, 1),
            step_size: Decimal::new(1, 3),
            min_qty: Decimal::new(1, 3),
            max_qty: Decimal::ZERO,
            min_notional: Decimal::from(100),
            min_price: Decimal::ZERO,
            max_price: Decimal::ZERO,
            market_step_size: Decimal::new(1, 3),
            market_min_qty: Decimal::new(1, 3),
            market_max_qty: Decimal::ZERO,
        };
        let q = tiny_quantity(&f, Decimal::from(60_000));
        assert_eq!(q, Decimal::new(2, 3));
        assert!(q * Decimal::from(60_000) >= f.min_notional);
        // A price so high that one step is worth more than the minimum: the minimum quantity.
        assert_eq!(tiny_quantity(&f, Decimal::from(10_000_000)), f.min_qty);
    }
}
