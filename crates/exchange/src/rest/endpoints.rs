//! The [`Exchange`] impl of [`BinanceClient`]: one method per Binance endpoint.

use super::{Auth, BinanceClient};
use std::sync::atomic::Ordering;
use std::time::Duration;

use reqwest::Method;

use crate::error::Refusal;
use crate::exchange::{ExResult, Exchange};
use crate::filters::{ExchangeInfo, SymbolFilters};
use crate::limiter::Orders;
use crate::sign::Params;
use crate::types::*;
use crate::vocab::ApiCode;

fn symbol_param(symbol: Option<&str>) -> Params {
    let mut p = Params::new();
    p.push_opt("symbol", symbol);
    p
}

impl Exchange for BinanceClient {
    fn server_now_ms(&self) -> i64 {
        self.inner
            .clock
            .now_ms()
            .saturating_add(self.inner.offset_ms.load(Ordering::Relaxed))
    }

    fn orders_wait(&self, class: Orders, in_flight: u32) -> Option<Duration> {
        let until = self.inner.limiter.held_until_with(class, in_flight)?;
        let wait = until.saturating_sub(self.inner.clock.now_ms()).max(1);
        Some(Duration::from_millis(u64::try_from(wait).unwrap_or(1)))
    }

    async fn sync_time(&self) -> ExResult<i64> {
        self.measure_offset().await
    }

    async fn server_time(&self) -> ExResult<i64> {
        let t: ServerTime = self
            .call(
                Method::GET,
                "/fapi/v1/time",
                &Params::new(),
                Auth::None,
                1,
                Orders::None,
            )
            .await?;
        Ok(t.server_time)
    }

    async fn exchange_info(&self) -> ExResult<ExchangeInfo> {
        let info: ExchangeInfo = self
            .call(
                Method::GET,
                "/fapi/v1/exchangeInfo",
                &Params::new(),
                Auth::None,
                1,
                Orders::None,
            )
            .await?;
        self.set_filters(&info);
        Ok(info)
    }

    async fn symbol_filters(&self, symbol: &str) -> ExResult<SymbolFilters> {
        Ok(self.symbol_info(symbol).await?.filters)
    }

    async fn klines(
        &self,
        symbol: &str,
        interval: &str,
        start_time: Option<i64>,
        end_time: Option<i64>,
        limit: Option<u16>,
    ) -> ExResult<Vec<Kline>> {
        let mut p = Params::new();
        p.push("symbol", symbol)
            .push("interval", interval)
            .push_opt("startTime", start_time)
            .push_opt("endTime", end_time)
            .push_opt("limit", limit);
        let weight = match limit.unwrap_or(500) {
            0..100 => 1,
            100..500 => 2,
            500..=1000 => 5,
            _ => 10,
        };
        self.call(
            Method::GET,
            "/fapi/v1/klines",
            &p,
            Auth::None,
            weight,
            Orders::None,
        )
        .await
    }

    async fn tickers_24h(&self) -> ExResult<Vec<Ticker24h>> {
        self.call(
            Method::GET,
            "/fapi/v1/ticker/24hr",
            &Params::new(),
            Auth::None,
            40,
            Orders::None,
        )
        .await
    }

    async fn mark_price(&self, symbol: &str) -> ExResult<MarkPrice> {
        let p = symbol_param(Some(symbol));
        self.call(
            Method::GET,
            "/fapi/v1/premiumIndex",
            &p,
            Auth::None,
            1,
            Orders::None,
        )
        .await
    }

    async fn mark_prices(&self) -> ExResult<Vec<MarkPrice>> {
        self.call(
            Method::GET,
            "/fapi/v1/premiumIndex",
            &Params::new(),
            Auth::None,
            10,
            Orders::None,
        )
        .await
    }

    async fn new_order(&self, order: &NewOrder) -> ExResult<Order> {
        let p = self.order_params(order).await?;
        let r = self
            .call(
                Method::POST,
                "/fapi/v1/order",
                &p,
                Auth::Signed,
                0,
                Orders::of_order(order),
            )
            .await;
        self.forget_filters_on_filter_error(&order.symbol, &r);
        r
    }

    async fn query_order(&self, symbol: &str, client_order_id: &str) -> ExResult<Order> {
        let mut p = Params::new();
        p.push("symbol", symbol)
            .push("origClientOrderId", client_order_id);
        self.call(
            Method::GET,
            "/fapi/v1/order",
            &p,
            Auth::Signed,
            1,
            Orders::None,
        )
        .await
    }

    async fn cancel_order(&self, symbol: &str, client_order_id: &str) -> ExResult<Order> {
        let mut p = Params::new();
        p.push("symbol", symbol)
            .push("origClientOrderId", client_order_id);
        self.call(
            Method::DELETE,
            "/fapi/v1/order",
            &p,
            Auth::Signed,
            1,
            Orders::None,
        )
        .await
    }

    async fn open_orders(&self, symbol: Option<&str>) -> ExResult<Vec<Order>> {
        let w = if symbol.is_some() { 1 } else { 40 };
        let p = symbol_param(symbol);
        self.call(
            Method::GET,
            "/fapi/v1/openOrders",
            &p,
            Auth::Signed,
            w,
            Orders::None,
        )
        .await
    }

    async fn cancel_all_orders(&self, symbol: &str) -> ExResult<()> {
        let p = symbol_param(Some(symbol));
        let _: serde_json::Value = self
            .call(
                Method::DELETE,
                "/fapi/v1/allOpenOrders",
                &p,
                Auth::Signed,
                1,
                Orders::None,
            )
            .await?;
        Ok(())
    }

    async fn new_algo_order(&self, order: &NewAlgoOrder) -> ExResult<AlgoOrder> {
        let p = self.algo_order_params(order).await?;
        let r = self
            .call(
                Method::POST,
                "/fapi/v1/algoOrder",
                &p,
                Auth::Signed,
                0,
                Orders::of_algo(order),
            )
            .await;
        self.forget_filters_on_filter_error(&order.symbol, &r);
        r
    }

    async fn query_algo_order(&self, client_algo_id: &str) -> ExResult<AlgoOrder> {
        let mut p = Params::new();
        p.push("clientAlgoId", client_algo_id);
        self.call(
            Method::GET,
            "/fapi/v1/algoOrder",
            &p,
            Auth::Signed,
            1,
            Orders::None,
        )
        .await
    }

    async fn cancel_algo_order(&self, client_algo_id: &str) -> ExResult<()> {
        let mut p = Params::new();
        p.push("clientAlgoId", client_algo_id);
        let _: serde_json::Value = self
            .call(
                Method::DELETE,
                "/fapi/v1/algoOrder",
                &p,
                Auth::Signed,
                1,
                Orders::None,
            )
            .await?;
        Ok(())
    }

    async fn open_algo_orders(&self, symbol: Option<&str>) -> ExResult<Vec<AlgoOrder>> {
        let w = if symbol.is_some() { 1 } else { 40 };
        let p = symbol_param(symbol);
        self.call(
            Method::GET,
            "/fapi/v1/openAlgoOrders",
            &p,
            Auth::Signed,
            w,
            Orders::None,
        )
        .await
    }

    async fn cancel_all_algo_orders(&self, symbol: &str) -> ExResult<()> {
        let p = symbol_param(Some(symbol));
        let _: serde_json::Value = self
            .call(
                Method::DELETE,
                "/fapi/v1/algoOpenOrders",
                &p,
                Auth::Signed,
                1,
                Orders::None,
            )
            .await?;
        Ok(())
    }

    async fn positions(&self, symbol: Option<&str>) -> ExResult<Vec<Position>> {
        let p = symbol_param(symbol);
        self.call(
            Method::GET,
            "/fapi/v3/positionRisk",
            &p,
            Auth::Signed,
            5,
            Orders::None,
        )
        .await
    }

    async fn balances(&self) -> ExResult<Vec<Balance>> {
        self.call(
            Method::GET,
            "/fapi/v3/balance",
            &Params::new(),
            Auth::Signed,
            5,
            Orders::None,
        )
        .await
    }

    async fn account(&self) -> ExResult<Account> {
        self.call(
            Method::GET,
            "/fapi/v3/account",
            &Params::new(),
            Auth::Signed,
            5,
            Orders::None,
        )
        .await
    }

    async fn income(&self, query: &IncomeQuery) -> ExResult<Vec<Income>> {
        let mut p = Params::new();
        p.push_opt("symbol", query.symbol.as_deref())
            .push_opt(
                "incomeType",
                query.income_type.as_ref().map(IncomeType::as_str),
            )
            .push_opt("startTime", query.start_time)
            .push_opt("endTime", query.end_time)
            .push_opt("limit", query.limit);
        self.call(
            Method::GET,
            "/fapi/v1/income",
            &p,
            Auth::Signed,
            30,
            Orders::None,
        )
        .await
    }

    async fn set_leverage(&self, symbol: &str, leverage: u32) -> ExResult<LeverageChange> {
        if !(1..=125).contains(&leverage) {
            return Err(
                Refusal::InvalidOrder(format!("leverage {leverage} is outside 1..=125")).into(),
            );
        }
        let mut p = Params::new();
        p.push("symbol", symbol).push("leverage", leverage);
        self.call(
            Method::POST,
            "/fapi/v1/leverage",
            &p,
            Auth::Signed,
            1,
            Orders::None,
        )
        .await
    }

    async fn set_margin_type(&self, symbol: &str, margin_type: MarginType) -> ExResult<()> {
        let mut p = Params::new();
        p.push("symbol", symbol)
            .push("marginType", margin_type.as_str());
        let r: ExResult<serde_json::Value> = self
            .call(
                Method::POST,
                "/fapi/v1/marginType",
                &p,
                Auth::Signed,
                1,
                Orders::None,
            )
            .await;
        match r {
            Ok(_) => Ok(()),
            Err(e) if e.api_code() == Some(ApiCode::NoNeedToChangeMarginType) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn dual_side_position(&self) -> ExResult<bool> {
        let a: PositionModeAnswer = self
            .call(
                Method::GET,
                "/fapi/v1/positionSide/dual",
                &Params::new(),
                Auth::Signed,
                30,
                Orders::None,
            )
            .await?;
        Ok(a.dual_side_position)
    }

    async fn multi_assets_margin(&self) -> ExResult<bool> {
        let a: MultiAssetsAnswer = self
            .call(
                Method::GET,
                "/fapi/v1/multiAssetsMargin",
                &Params::new(),
                Auth::Signed,
                30,
                Orders::None,
            )
            .await?;
        Ok(a.multi_assets_margin)
    }

    async fn set_dual_side_position(&self, dual: bool) -> ExResult<()> {
        let mut p = Params::new();
        p.push("dualSidePosition", dual);
        let r: ExResult<serde_json::Value> = self
            .call(
                Method::POST,
                "/fapi/v1/positionSide/dual",
                &p,
                Auth::Signed,
                1,
                Orders::None,
            )
            .await;
        match r {
            Ok(_) => Ok(()),
            Err(e) if e.api_code() == Some(ApiCode::NoNeedToChangePositionSide) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn set_multi_assets_margin(&self, on: bool) -> ExResult<()> {
        let mut p = Params::new();
        p.push("multiAssetsMargin", on);
        let _: serde_json::Value = self
            .call(
                Method::POST,
                "/fapi/v1/multiAssetsMargin",
                &p,
                Auth::Signed,
                1,
                Orders::None,
            )
            .await?;
        Ok(())
    }

    async fn create_listen_key(&self) -> ExResult<String> {
        let a: ListenKeyAnswer = self
            .call(
                Method::POST,
                "/fapi/v1/listenKey",
                &Params::new(),
                Auth::Key,
                1,
                Orders::None,
            )
            .await?;
        Ok(a.listen_key)
    }

    async fn keepalive_listen_key(&self) -> ExResult<()> {
        let _: serde_json::Value = self
            .call(
                Method::PUT,
                "/fapi/v1/listenKey",
                &Params::new(),
                Auth::Key,
                1,
                Orders::None,
            )
            .await?;
        Ok(())
    }

    async fn close_listen_key(&self) -> ExResult<()> {
        let _: serde_json::Value = self
            .call(
                Method::DELETE,
                "/fapi/v1/listenKey",
                &Params::new(),
                Auth::Key,
                1,
                Orders::None,
            )
            .await?;
        Ok(())
    }
}
