//! Downloading context history into files ([`crate::history`]'s format), within each
//! provider's budget: Binance's funding rates (pages of 1000), open interest, long/short and
//! taker statistics (pages of 500; Binance keeps only the last 30 days of these), and the whole
//! fear & greed history (one request).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use qt_events::clock::SharedClock;
use qt_exchange::BinanceClient;
use qt_exchange::market_data::{DataPeriod, HistoryRange};

use crate::SourceError;
use crate::history::{HistoryError, HistoryRow, published_at, write_series};
use crate::pace::Pacer;
use crate::source::Limit;
use crate::sources::fear_greed::FearGreed;

/// What went wrong fetching history.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{what}: {source}")]
    Source {
        what: String,
        #[source]
        source: SourceError,
    },
    #[error(transparent)]
    Files(#[from] HistoryError),
}

/// What to fetch.
#[derive(Debug, Clone)]
pub struct FetchPlan {
    pub from_ms: i64,
    pub to_ms: i64,
    pub symbols: Vec<String>,
    pub period: DataPeriod,
    pub out: PathBuf,
}

/// What was written: file and row count.
pub type Written = Vec<(PathBuf, usize)>;

/// Binance keeps `/futures/data/*` statistics for 30 days.
const STATS_DAYS_MS: i64 = 30 * 86_400_000;

async fn take(p: &Pacer, clock: &SharedClock) {
    while let Err(wait) = p.try_take(clock.now_ms()) {
        tokio::time::sleep(wait).await;
    }
}

/// Calls `f` until it succeeds, waiting out a 429's `Retry-After` (at most 5 times) or backing
/// off after a transient failure (at most 3 times).
async fn retrying<T, F, Fut>(what: &str, mut f: F) -> Result<T, FetchError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, SourceError>>,
{
    let (mut limited, mut failed) = (0u32, 0u32);
    loop {
        match f().await {
            Ok(v) => return Ok(v),
            Err(SourceError::RateLimited { retry_after }) if limited < 5 => {
                limited += 1;
                let d = retry_after.unwrap_or(Duration::from_secs(60));
                tracing::warn!(what, wait_s = d.as_secs(), "rate limited: waiting");
                tokio::time::sleep(d).await;
            }
            Err(e) if e.is_retryable() && failed < 3 => {
                failed += 1;
                tokio::time::sleep(Duration::from_secs(1u64 << failed)).await;
            }
            Err(source) => {
                return Err(FetchError::Source {
                    what: what.to_string(),
                    source,
                });
            }
        }
    }
}

type Series = BTreeMap<(String, String), Vec<HistoryRow>>;

fn push(
    series: &mut Series,
    metric: &str,
    symbol: &str,
    period_ms: i64,
    as_of: i64,
    value: rust_decimal::Decimal,
) {
    series
        .entry((metric.to_string(), symbol.to_string()))
        .or_default()
        .push(HistoryRow {
            published_at: published_at(metric, as_of, period_ms),
            as_of,
            value,
            label: None,
        });
}

/// Downloads Binance's positioning history of `plan.symbols` into `plan.out`.
pub async fn fetch_binance(
    client: &BinanceClient,
    plan: &FetchPlan,
    clock: &SharedClock,
) -> Result<Written, FetchError> {
    let funding = Pacer::new(Limit {
        requests: 250,
        per: Duration::from_secs(300),
    });
    let stats = Pacer::new(Limit {
        requests: 500,
        per: Duration::from_secs(300),
    });
    let period_ms = plan.period.millis();
    let mut series = Series::new();
    for sym in &plan.symbols {
        let mut cursor = plan.from_ms;
        while cursor <= plan.to_ms {
            take(&funding, clock).await;
            let rows = retrying(&format!("fundingRate {sym}"), || async {
                client
                    .funding_rate_history(
                        sym,
                        HistoryRange {
                            start_time: Some(cursor),
                            end_time: Some(plan.to_ms),
                            limit: Some(1000),
                        },
                    )
                    .await
                    .map_err(SourceError::from)
            })
            .await?;
            let Some(last) = rows.last().map(|r| r.funding_time) else {
                break;
            };
            for r in &rows {
                push(
                    &mut series,
                    "funding_rate",
                    sym,
                    0,
                    r.funding_time,
                    r.funding_rate,
                );
            }
            if rows.len() < 1000 || last < cursor {
                break;
            }
            cursor = last + 1;
        }
        // Binance answers the statistics only for the last 30 days, and nothing after now.
        let now = clock.now_ms();
        let stats_from = plan.from_ms.max(now - STATS_DAYS_MS + period_ms);
        let stats_to = plan.to_ms.min(now);
        let mut cursor = stats_from;
        while cursor <= stats_to {
            let end = (cursor + period_ms * 500 - 1).min(stats_to);
            let range = HistoryRange {
                start_time: Some(cursor),
                end_time: Some(end),
                limit: Some(500),
            };
            take(&stats, clock).await;
            let oi = retrying(&format!("openInterestHist {sym}"), || async {
                client
                    .open_interest_history(sym, plan.period, range)
                    .await
                    .map_err(SourceError::from)
            })
            .await?;
            for r in &oi {
                push(
                    &mut series,
                    "open_interest",
                    sym,
                    period_ms,
                    r.timestamp,
                    r.sum_open_interest,
                );
                push(
                    &mut series,
                    "open_interest_value",
                    sym,
                    period_ms,
                    r.timestamp,
                    r.sum_open_interest_value,
                );
            }
            take(&stats, clock).await;
            let top = retrying(&format!("topLongShortPositionRatio {sym}"), || async {
                client
                    .top_long_short_position_ratio(sym, plan.period, range)
                    .await
                    .map_err(SourceError::from)
            })
            .await?;
            for r in &top {
                push(
                    &mut series,
                    "top_long_short_position_ratio",
                    sym,
                    period_ms,
                    r.timestamp,
                    r.long_short_ratio,
                );
            }
            take(&stats, clock).await;
            let global = retrying(&format!("globalLongShortAccountRatio {sym}"), || async {
                client
                    .global_long_short_account_ratio(sym, plan.period, range)
                    .await
                    .map_err(SourceError::from)
            })
            .await?;
            for r in &global {
                push(
                    &mut series,
                    "global_long_short_account_ratio",
                    sym,
                    period_ms,
                    r.timestamp,
                    r.long_short_ratio,
                );
            }
            take(&stats, clock).await;
            let taker = retrying(&format!("takerlongshortRatio {sym}"), || async {
                client
                    .taker_long_short_ratio(sym, plan.period, range)
                    .await
                    .map_err(SourceError::from)
            })
            .await?;
            for r in &taker {
                push(
                    &mut series,
                    "taker_buy_sell_ratio",
                    sym,
                    period_ms,
                    r.timestamp,
                    r.buy_sell_ratio,
                );
            }
            cursor = end + 1;
        }
    }
    let mut written = Vec::new();
    for ((metric, sym), rows) in &series {
        let rows: Vec<_> = rows
            .iter()
            .filter(|r| r.as_of >= plan.from_ms && r.as_of <= plan.to_ms)
            .cloned()
            .collect();
        let p = write_series(&plan.out, metric, Some(sym), &rows)?;
        written.push((p, rows.len()));
    }
    Ok(written)
}

/// Downloads the fear & greed history between `from_ms` and `to_ms` into `out/fear_greed.csv`.
pub async fn fetch_fear_greed(
    fg: &FearGreed,
    from_ms: i64,
    to_ms: i64,
    out: &Path,
) -> Result<Written, FetchError> {
    let all = retrying("fng history", || fg.history(0)).await?;
    let rows: Vec<HistoryRow> = all
        .into_iter()
        .filter_map(|v| {
            let as_of = v.as_of?;
            let value = v.value?;
            (as_of >= from_ms && as_of <= to_ms).then(|| HistoryRow {
                published_at: published_at("fear_greed", as_of, 0),
                as_of,
                value,
                label: v.label,
            })
        })
        .collect();
    let p = write_series(out, "fear_greed", None, &rows)?;
    Ok(vec![(p, rows.len())])
}
