//! Settling an order whose outcome is unknown (timeout, 5xx, -1007).
//!
//! Binance rejects a request once server time is past `timestamp + recvWindow` (the matching
//! engine enforces it too, -5028). So after that fence, plus a margin, a query by
//! `origClientOrderId` is final: the order exists (adopt it) or `-2013` proves it never executed
//! (resend with the *same* client order id and a fresh timestamp).
//!
//! Before the fence only "it exists" is final (the request may still be on its way, so
//! "does not exist" proves nothing yet). The order is therefore queried at once — most unknown
//! outcomes are orders that did reach the exchange, and they are adopted without waiting out
//! the window — and, if it is not found, again after the fence: [`check_unknown_order`] looks
//! once and says until when the answer is undecided (for a caller with other work to do
//! meanwhile); [`resolve_unknown_order`] waits.

use std::time::Duration;

use crate::error::{ExchangeError, Fence};
use crate::exchange::Exchange;
use crate::types::{AlgoOrder, Order};

/// What became of an order whose request had an unknown outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// It reached the exchange: adopt it.
    Found(Order),
    /// `-2013` after the fence: it never executed and can be resent with the same id.
    NeverExecuted,
}

/// What became of a conditional order whose request had an unknown outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlgoResolution {
    /// It reached the Algo Service: adopt it.
    Found(Box<AlgoOrder>),
    /// Not found after the fence: it never executed and can be resent with the same id.
    NeverExecuted,
}

fn deadline(fence: Fence, margin_ms: u64) -> i64 {
    fence
        .expires_at_ms()
        .saturating_add(i64::try_from(margin_ms).unwrap_or(i64::MAX))
}

async fn wait_past_fence<E: Exchange>(exchange: &E, fence: Fence, margin_ms: u64) {
    let deadline = deadline(fence, margin_ms);
    loop {
        let now = exchange.server_now_ms();
        if now > deadline {
            return;
        }
        let nap = (deadline - now + 1).clamp(1, 50);
        tokio::time::sleep(Duration::from_millis(u64::try_from(nap).unwrap_or(1))).await;
    }
}

/// What one look at an order with an unknown outcome found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settled<T> {
    /// It reached the exchange: adopt it.
    Found(T),
    /// Not found after the fence: it never executed and can be resent with the same id.
    NeverExecuted,
    /// Not found, but the request may still arrive until this exchange time (ms): look again
    /// after it.
    Undecided { until_ms: i64 },
}

impl<T> Settled<T> {
    /// The same answer with the found order turned into something else (its id, say).
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Settled<U> {
        match self {
            Self::Found(t) => Settled::Found(f(t)),
            Self::NeverExecuted => Settled::NeverExecuted,
            Self::Undecided { until_ms } => Settled::Undecided { until_ms },
        }
    }
}

/// One look with `query`, without waiting. See the module docs.
async fn look<E, T, F, Fut>(
    exchange: &E,
    fence: Fence,
    margin_ms: u64,
    query: F,
) -> Result<Settled<T>, ExchangeError>
where
    E: Exchange,
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<T, ExchangeError>>,
{
    let until_ms = deadline(fence, margin_ms);
    // Read before the query: "does not exist" is final only for a query made past the fence.
    let final_answer = exchange.server_now_ms() > until_ms;
    match query().await {
        Ok(found) => Ok(Settled::Found(found)),
        Err(e) if final_answer && e.is_no_such_order() => Ok(Settled::NeverExecuted),
        Err(e) if final_answer => Err(e),
        // Only a find is final this early; any other answer waits for the fence.
        Err(_) => Ok(Settled::Undecided { until_ms }),
    }
}

/// Looks once at a plain order whose request had an unknown outcome, by `origClientOrderId`;
/// never waits (for a caller with other work to do meanwhile).
pub async fn check_unknown_order<E: Exchange>(
    exchange: &E,
    symbol: &str,
    client_order_id: &str,
    fence: Fence,
    margin_ms: u64,
) -> Result<Settled<Order>, ExchangeError> {
    look(exchange, fence, margin_ms, || {
        exchange.query_order(symbol, client_order_id)
    })
    .await
}

/// The same for a conditional order (`POST /fapi/v1/algoOrder`), by `clientAlgoId`; "does not
/// exist" (`-2013`, as for plain orders; Binance's reference does not document a separate algo
/// code) after the fence means it never executed.
pub async fn check_unknown_algo_order<E: Exchange>(
    exchange: &E,
    client_algo_id: &str,
    fence: Fence,
    margin_ms: u64,
) -> Result<Settled<AlgoOrder>, ExchangeError> {
    look(exchange, fence, margin_ms, || {
        exchange.query_algo_order(client_algo_id)
    })
    .await
}

/// Settles a plain order: adopted at once if the exchange has it, else queried again once the
/// exchange's time (injected clock + measured offset) is past `fence.expires_at_ms() +
/// margin_ms`.
pub async fn resolve_unknown_order<E: Exchange>(
    exchange: &E,
    symbol: &str,
    client_order_id: &str,
    fence: Fence,
    margin_ms: u64,
) -> Result<Resolution, ExchangeError> {
    loop {
        match check_unknown_order(exchange, symbol, client_order_id, fence, margin_ms).await? {
            Settled::Found(o) => return Ok(Resolution::Found(o)),
            Settled::NeverExecuted => return Ok(Resolution::NeverExecuted),
            Settled::Undecided { .. } => wait_past_fence(exchange, fence, margin_ms).await,
        }
    }
}

/// The same for a conditional order, by `clientAlgoId`.
pub async fn resolve_unknown_algo_order<E: Exchange>(
    exchange: &E,
    client_algo_id: &str,
    fence: Fence,
    margin_ms: u64,
) -> Result<AlgoResolution, ExchangeError> {
    loop {
        match check_unknown_algo_order(exchange, client_algo_id, fence, margin_ms).await? {
            Settled::Found(a) => return Ok(AlgoResolution::Found(Box::new(a))),
            Settled::NeverExecuted => return Ok(AlgoResolution::NeverExecuted),
            Settled::Undecided { .. } => wait_past_fence(exchange, fence, margin_ms).await,
        }
    }
}
