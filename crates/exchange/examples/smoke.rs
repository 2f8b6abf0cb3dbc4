//! Smoke run of the client against whatever `QT_EXCHANGE*` / `QT_API_*` point at (the simulator by
//! default): time sync, exchangeInfo, klines, tickers, mark price, account reads, then — only
//! with `--trade` — one small MARKET order, a protective STOP_MARKET on the algo endpoint, their
//! queries and cancels, while printing the user data stream. It never trades without `--trade`.
//!
//! `cargo run -p qt-exchange --example smoke -- [--trade] [SYMBOL]`

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use qt_events::Side;
use qt_events::clock::SystemClock;
use qt_events::ids::{client_order_id, new_event_id};
use qt_exchange::ws::{MarketStream, spawn_market_streams, spawn_user_stream};
use qt_exchange::{BinanceClient, Exchange, ExchangeConfig, NewAlgoOrder, NewOrder};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    qt_exchange::install_crypto_provider();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let trade = args.iter().any(|a| a == "--trade");
    let symbol = args
        .iter()
        .find(|a| !a.starts_with("--"))
        .cloned()
        .unwrap_or_else(|| "BTCUSDT".into());
    let cfg = ExchangeConfig::from_env().context("reading exchange config")?;
    println!("config: {cfg:?}");
    let client = BinanceClient::new(cfg.clone(), Arc::new(SystemClock))?;

    println!("offset ms: {}", client.sync_time().await?);
    let f = client.symbol_filters(&symbol).await?;
    println!("filters: {f:?}");
    let k = client.klines(&symbol, "5m", None, None, Some(3)).await?;
    println!(
        "klines: {} rows, last close {:?}",
        k.len(),
        k.last().map(|k| k.close)
    );
    let t = client.tickers_24h().await?;
    println!("24h tickers: {}", t.len());
    let mark = client.mark_price(&symbol).await?;
    println!("mark price: {}", mark.mark_price);

    let (mut market, market_handle) = spawn_market_streams(
        &cfg,
        &[
            MarketStream::Kline {
                symbol: symbol.clone(),
                interval: "1m".into(),
            },
            MarketStream::MarkPrice {
                symbol: symbol.clone(),
                every_second: true,
            },
            MarketStream::BookTicker {
                symbol: symbol.clone(),
            },
        ],
        64,
    );
    for _ in 0..4 {
        match tokio::time::timeout(Duration::from_secs(5), market.recv()).await {
            Ok(Some(ev)) => println!("market: {ev:?}"),
            _ => {
                println!("market: nothing within 5 s");
                break;
            }
        }
    }
    market_handle.shutdown().await;

    if cfg.api_key.is_none() {
        println!("no QT_API_KEY: skipping account endpoints");
        return Ok(());
    }
    println!("balances: {:?}", client.balances().await?);
    println!(
        "account: {:?}",
        client.account().await?.total_wallet_balance
    );
    println!("positions: {:?}", client.positions(None).await?);
    println!(
        "open orders: {}",
        client.open_orders(Some(&symbol)).await?.len()
    );
    println!(
        "open algo orders: {}",
        client.open_algo_orders(Some(&symbol)).await?.len()
    );
    if !trade {
        println!("read-only run done (pass --trade to place orders)");
        return Ok(());
    }
    println!("leverage: {:?}", client.set_leverage(&symbol, 5).await?);
    let (mut user, user_handle) = spawn_user_stream(client.clone(), &cfg, 64);
    let intent = new_event_id();
    let qty = (f.min_notional * rust_decimal::Decimal::TWO / mark.mark_price).max(f.min_qty);
    let cid = client_order_id(&intent, "entry");
    let o = client
        .new_order(
            &NewOrder::market(&symbol, Side::Buy, qty, &cid).with_reference_price(mark.mark_price),
        )
        .await?;
    println!("order: {o:?}");
    println!(
        "queried: {:?}",
        client.query_order(&symbol, &cid).await?.status
    );
    let stop_id = client_order_id(&intent, "stop");
    let stop = NewAlgoOrder::stop_close_position(
        &symbol,
        Side::Sell,
        mark.mark_price * rust_decimal::Decimal::new(95, 2),
        &stop_id,
    );
    println!("stop: {:?}", client.new_algo_order(&stop).await?);
    println!(
        "stop queried: {:?}",
        client.query_algo_order(&stop_id).await?.algo_status
    );
    client.cancel_algo_order(&stop_id).await?;
    let close = NewOrder::market(
        &symbol,
        Side::Sell,
        o.executed_qty.max(qty),
        client_order_id(&intent, "close"),
    )
    .reduce_only(true);
    println!("close: {:?}", client.new_order(&close).await?.status);
    for _ in 0..8 {
        match tokio::time::timeout(Duration::from_secs(3), user.recv()).await {
            Ok(Some(ev)) => println!("user: {ev:?}"),
            _ => break,
        }
    }
    user_handle.shutdown().await;
    Ok(())
}
