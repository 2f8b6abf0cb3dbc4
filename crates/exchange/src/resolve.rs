//! Settling an order whose outcome is unknown (timeout, 5xx, -1007).
//!
//! Binance rejects a request once server time is past `timestamp + recvWindow` (the matching
//! engine enforces it too, -5028). So after that fence, plus a margin, a query by
//! `origClientOrderId` is final: the order exists (adopt it) or `-2013` proves it never executed
//! (resend with the *same* client order id and a fresh timestamp).

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

async fn wait_past_fence<E: Exchange>(exchange: &E, fence: Fence, margin_ms: u64) {
    let deadline = fence
        .expires_at_ms()
        .saturating_add(i64::try_from(margin_ms).unwrap_or(i64::MAX));
    loop {
        let now = exchange.server_now_ms();
        if now > deadline {
            return;
        }
        let nap = (deadline - now + 1).clamp(1, 50);
        tokio::time::sleep(Duration::from_millis(u64::try_from(nap).unwrap_or(1))).await;
    }
}

/// Waits until the exchange's time (injected clock + measured offset) is past
/// `fence.expires_at_ms() + margin_ms`, then queries the order by `origClientOrderId`.
pub async fn resolve_unknown_order<E: Exchange>(
    exchange: &E,
    symbol: &str,
    client_order_id: &str,
    fence: Fence,
    margin_ms: u64,
) -> Result<Resolution, ExchangeError> {
    wait_past_fence(exchange, fence, margin_ms).await;
    match exchange.query_order(symbol, client_order_id).await {
        Ok(order) => Ok(Resolution::Found(order)),
        Err(e) if e.code() == Some(-2013) => Ok(Resolution::NeverExecuted),
        Err(e) => Err(e),
    }
}

/// The same for a conditional order (`POST /fapi/v1/algoOrder`): after the fence, query by
/// `clientAlgoId`; "does not exist" (`-2013`, as for plain orders; Binance's reference does not
/// document a separate algo code) means it never executed.
pub async fn resolve_unknown_algo_order<E: Exchange>(
    exchange: &E,
    client_algo_id: &str,
    fence: Fence,
    margin_ms: u64,
) -> Result<AlgoResolution, ExchangeError> {
    wait_past_fence(exchange, fence, margin_ms).await;
    match exchange.query_algo_order(client_algo_id).await {
        Ok(order) => Ok(AlgoResolution::Found(Box::new(order))),
        Err(e) if e.code() == Some(-2013) => Ok(AlgoResolution::NeverExecuted),
        Err(e) => Err(e),
    }
}
