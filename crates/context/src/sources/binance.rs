//! Binance USDⓈ-M futures positioning through `qt-exchange` (its weighted limiter, its 429/418
//! hold): the latest funding rate, open interest now and per period, the top traders' and all
//! accounts' long/short ratios and the taker buy/sell volume, per symbol.
//!
//! Limits (Binance USDⓈ-M "Market Data" pages): `fundingRate` shares 500 requests / 5 min / IP
//! with `fundingInfo`; `openInterest` weighs 1 in the 2400/min pool (the client counts it);
//! every `/futures/data/*` endpoint has 1000 requests / 5 min / IP. We budget half of each.

use std::time::Duration;

use futures_util::future::BoxFuture;
use qt_events::ContextValue;
use qt_exchange::BinanceClient;
use qt_exchange::market_data::{DataPeriod, HistoryRange};

use crate::SourceError;
use crate::source::{Limit, Policy, Query, Source};

#[derive(Debug)]
pub struct BinanceFutures {
    client: BinanceClient,
    symbols: Vec<String>,
    period: DataPeriod,
    policy: Policy,
}

impl BinanceFutures {
    /// Positioning of `symbols`, statistics per `period` (e.g. 5m).
    pub fn new(client: BinanceClient, symbols: Vec<String>, period: DataPeriod) -> Self {
        Self {
            client,
            symbols,
            period,
            policy: default_policy(period),
        }
    }

    /// Replaces the default policy.
    pub fn with_policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    pub fn client(&self) -> &BinanceClient {
        &self.client
    }
}

fn v(metric: &str, symbol: &str, value: rust_decimal::Decimal, as_of: i64) -> ContextValue {
    ContextValue {
        metric: metric.into(),
        symbol: Some(symbol.into()),
        value: Some(value),
        label: None,
        as_of: Some(as_of),
    }
}

const LATEST: HistoryRange = HistoryRange {
    start_time: None,
    end_time: None,
    limit: Some(1),
};

/// The default policy: fresh for one period (at most 5 minutes), usable for three periods (at
/// least 15 minutes).
pub fn default_policy(period: DataPeriod) -> Policy {
    let period = Duration::from_millis(u64::try_from(period.millis()).unwrap_or(300_000));
    Policy {
        ttl: period.min(Duration::from_secs(300)),
        max_age: (period * 3).max(Duration::from_secs(900)),
        backoff: Duration::from_secs(10),
        max_backoff: Duration::from_secs(600),
        breaker_failures: 5,
        breaker_open_for: Duration::from_secs(120),
    }
}

impl Source for BinanceFutures {
    fn name(&self) -> &'static str {
        "binance_futures"
    }

    fn queries(&self) -> Vec<Query> {
        let mut q = Vec::new();
        for s in &self.symbols {
            q.push(Query::FundingRate(s.clone()));
            q.push(Query::OpenInterest(s.clone()));
            q.push(Query::OpenInterestHist(s.clone()));
            q.push(Query::TopLongShortPosition(s.clone()));
            q.push(Query::GlobalLongShortAccount(s.clone()));
            q.push(Query::TakerVolume(s.clone()));
        }
        q
    }

    fn policy(&self) -> Policy {
        self.policy
    }

    fn limit(&self, query: &Query) -> (&'static str, Limit) {
        let five_min = Duration::from_secs(300);
        match query {
            Query::FundingRate(_) => (
                "binance_funding_rate",
                Limit {
                    requests: 250,
                    per: five_min,
                },
            ),
            Query::OpenInterest(_) => (
                "binance_open_interest",
                Limit {
                    requests: 600,
                    per: Duration::from_secs(60),
                },
            ),
            _ => (
                "binance_futures_data",
                Limit {
                    requests: 500,
                    per: five_min,
                },
            ),
        }
    }

    fn fetch<'a>(
        &'a self,
        query: &'a Query,
    ) -> BoxFuture<'a, Result<Vec<ContextValue>, SourceError>> {
        Box::pin(async move {
            let c = &self.client;
            let p = self.period;
            Ok(match query {
                Query::FundingRate(s) => c
                    .funding_rate_history(
                        s,
                        HistoryRange {
                            start_time: None,
                            end_time: None,
                            limit: Some(1),
                        },
                    )
                    .await?
                    .into_iter()
                    .map(|r| v("funding_rate", s, r.funding_rate, r.funding_time))
                    .collect(),
                Query::OpenInterest(s) => {
                    let r = c.open_interest(s).await?;
                    vec![v("open_interest_now", s, r.open_interest, r.time)]
                }
                Query::OpenInterestHist(s) => c
                    .open_interest_history(s, p, LATEST)
                    .await?
                    .into_iter()
                    .flat_map(|r| {
                        [
                            v("open_interest", s, r.sum_open_interest, r.timestamp),
                            v(
                                "open_interest_value",
                                s,
                                r.sum_open_interest_value,
                                r.timestamp,
                            ),
                        ]
                    })
                    .collect(),
                Query::TopLongShortPosition(s) => c
                    .top_long_short_position_ratio(s, p, LATEST)
                    .await?
                    .into_iter()
                    .map(|r| {
                        v(
                            "top_long_short_position_ratio",
                            s,
                            r.long_short_ratio,
                            r.timestamp,
                        )
                    })
                    .collect(),
                Query::GlobalLongShortAccount(s) => c
                    .global_long_short_account_ratio(s, p, LATEST)
                    .await?
                    .into_iter()
                    .map(|r| {
                        v(
                            "global_long_short_account_ratio",
                            s,
                            r.long_short_ratio,
                            r.timestamp,
                        )
                    })
                    .collect(),
                Query::TakerVolume(s) => c
                    .taker_long_short_ratio(s, p, LATEST)
                    .await?
                    .into_iter()
                    .map(|r| v("taker_buy_sell_ratio", s, r.buy_sell_ratio, r.timestamp))
                    .collect(),
                other => return Err(SourceError::Unsupported(other.key())),
            })
        })
    }
}
