//! Funding fees: what the exchange charged or paid at each funding time becomes a
//! `FundingFeeCharged` fact on `qt:positions` and counts in the risk book's realized PnL of the
//! day (so the daily-loss limit sees it at once, before the portfolio's next snapshot).
//!
//! An `ACCOUNT_UPDATE` with reason `FUNDING_FEE` is only a signal: for a cross-margin
//! position Binance sends the new balance without the symbol. The record is the income history
//! (`GET /fapi/v1/income?incomeType=FUNDING_FEE`), read from the time of the last entry
//! recorded (the start of the UTC day on a first run) on that signal and at every
//! reconciliation, so a missed or late stream event only delays a fee. Each entry is recorded
//! once per (symbol, transaction id) in `exec_funding`, in one transaction with the risk book
//! and the outbox; the event id derives from the same pair, so a re-read, a restart or a replay
//! never counts a fee twice.

use qt_events::ids::derived_event_id;
use qt_events::{Envelope, Event, FundingFeeCharged};
use qt_exchange::{Exchange, Income, IncomeQuery, IncomeType};
use qt_risk::utc_day;
use qt_store::{StoreError, dec_text};

use crate::db::{Db, Tx};
use crate::error::ExecError;
use crate::service::Execution;

/// The most entries one income request returns (Binance's maximum).
const PAGE: u16 = 1000;
/// Pages read in one pass at most (a backlog beyond is read by the next pass).
const MAX_PAGES: usize = 20;

impl Db {
    /// Records a funding entry; false if it was recorded before.
    ///
    /// # Errors
    /// A query error.
    pub async fn insert_funding(
        tx: &mut Tx,
        f: &FundingFeeCharged,
        now: i64,
    ) -> Result<bool, StoreError> {
        let r = sqlx::query(
            "INSERT INTO exec_funding (symbol, tran_id, amount, asset, time, position_id, \
             recorded_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (symbol, tran_id) DO NOTHING",
        )
        .bind(&f.symbol)
        .bind(&f.tran_id)
        .bind(dec_text(f.amount))
        .bind(&f.asset)
        .bind(f.time)
        .bind(f.position_id.as_deref())
        .bind(now)
        .execute(&mut **tx)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// The exchange time of the latest funding entry recorded.
    ///
    /// # Errors
    /// A query error.
    pub async fn last_funding_time(&self) -> Result<Option<i64>, StoreError> {
        Ok(sqlx::query_scalar("SELECT MAX(time) FROM exec_funding")
            .fetch_one(self.store.pool())
            .await?)
    }
}

/// The fact of one income entry, or `None` for an entry that is not a funding fee or has no
/// transaction id to name it by.
fn fact_of(i: &Income) -> Option<FundingFeeCharged> {
    if i.income_type != IncomeType::FundingFee {
        return None;
    }
    Some(FundingFeeCharged {
        symbol: i.symbol.clone(),
        amount: i.income,
        asset: if i.asset.is_empty() {
            "USDT".into()
        } else {
            i.asset.clone()
        },
        time: i.time,
        tran_id: i.tran_id.clone()?,
        position_id: None,
    })
}

/// The id of the fact: one per (symbol, transaction id), whoever reads it and how often.
pub fn funding_event_id(symbol: &str, tran_id: &str) -> String {
    derived_event_id(&["funding", symbol, tran_id])
}

impl<E: Exchange + Clone + 'static> Execution<E> {
    /// Reads the funding entries the exchange booked since the last one recorded, records the
    /// new ones (with the position open on the symbol), adds today's to the risk book's
    /// realized PnL and publishes a `FundingFeeCharged` for each. Returns how many were new.
    ///
    /// # Errors
    /// The exchange, the database or Redis unreachable: nothing is half recorded, and the
    /// next pass reads the same entries again.
    pub async fn sync_funding(&self) -> Result<usize, ExecError> {
        let now = self.now();
        let mut since = match self.db.last_funding_time().await? {
            Some(t) => t,
            None => now - now.rem_euclid(86_400_000),
        };
        let mut new = 0;
        for _ in 0..MAX_PAGES {
            let page = self
                .exchange
                .income(&IncomeQuery {
                    income_type: Some(IncomeType::FundingFee),
                    start_time: Some(since),
                    limit: Some(PAGE),
                    ..IncomeQuery::default()
                })
                .await?;
            let full = page.len() >= usize::from(PAGE);
            let last = page.iter().map(|i| i.time).max();
            new += self.record_funding(&page).await?;
            match last {
                // Entries at the same ms as the last one are read again and dropped as known.
                Some(t) if full && t > since => since = t,
                _ => break,
            }
        }
        if new > 0 {
            self.flush_outbox().await?;
        }
        Ok(new)
    }

    /// Records one page of income entries in one transaction with the risk book and the
    /// outbox; returns how many were new.
    async fn record_funding(&self, page: &[Income]) -> Result<usize, ExecError> {
        let facts: Vec<FundingFeeCharged> = page.iter().filter_map(fact_of).collect();
        if facts.is_empty() {
            return Ok(0);
        }
        let now = self.now();
        let mut book = self.book.lock().await;
        let mut next = book.clone();
        next.roll_day(now);
        let mut tx = self.db.begin().await?;
        let mut events: Vec<Envelope> = Vec::new();
        for mut f in facts {
            f.position_id = Db::open_position(&mut tx, &f.symbol)
                .await?
                .map(|p| p.position_id);
            if !Db::insert_funding(&mut tx, &f, now).await? {
                continue;
            }
            if utc_day(f.time) == next.day {
                next.realized_today += f.amount;
            }
            tracing::info!(symbol = %f.symbol, amount = %f.amount, time = f.time,
                tran_id = %f.tran_id, "funding fee");
            let id = funding_event_id(&f.symbol, &f.tran_id);
            events.push(self.envelope(Event::FundingFeeCharged(f), id, None));
        }
        if events.is_empty() {
            return Ok(0);
        }
        self.guard.observe(&mut next, now);
        self.commit_book(tx, &mut book, next, &events, now).await?;
        Ok(events.len())
    }
}
