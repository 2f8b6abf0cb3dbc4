//! Funding: the fees charged at each funding time of the replay clock, the next funding time
//! and rate, and the history of the rates charged.

use qt_events::Decimal;

use super::book::Income;
use super::{Exchange, MAX_INCOME};

impl Exchange {
    /// Charges every funding time of `symbol` after its funding cursor up to its market time
    /// (a candle's close is the market's "now"): each position open then pays (or earns)
    /// `quantity × mark × rate` — a long pays a positive rate, a short earns it — rounded to
    /// 8 decimals, from the wallet, with an income entry (`FUNDING_FEE`, at server time `now`)
    /// and an `ACCOUNT_UPDATE` with reason `FUNDING_FEE` carrying only the balance (`bc` is the
    /// fee), as Binance sends it for a cross-margin position.
    pub(super) fn settle_funding(&mut self, symbol: &str, now: i64) {
        let Some(market_now) = self
            .market
            .get(symbol)
            .map(crate::market::SymbolMarket::now_ms)
        else {
            return;
        };
        let from = self
            .funding_cursor
            .get(symbol)
            .copied()
            .unwrap_or(market_now);
        if market_now <= from {
            return;
        }
        self.funding_cursor.insert(symbol.to_string(), market_now);
        let due: Vec<(i64, Decimal)> = self
            .rules
            .funding
            .schedule(symbol)
            .between(from, market_now)
            .collect();
        if due.is_empty() {
            return;
        }
        let mark = self.mark(symbol);
        let keys: Vec<String> = self.accounts.keys().cloned().collect();
        for (_, rate) in due {
            for key in &keys {
                let Some(acc) = self.accounts.get_mut(key) else {
                    continue;
                };
                // Each leg pays on its own side; in hedge mode they sum to the net.
                let qty: Decimal = acc.legs_of(symbol).map(|(_, p)| p.qty).sum();
                let amount = -(qty * mark * rate).round_dp(8);
                if amount.is_zero() {
                    continue;
                }
                acc.wallet += amount;
                acc.update_time = now;
                acc.income.push(Income {
                    tran_id: self.next_tran_id,
                    symbol: symbol.to_string(),
                    income_type: "FUNDING_FEE".into(),
                    income: amount,
                    time: now,
                    trade_id: 0,
                });
                self.next_tran_id += 1;
                if acc.income.len() > MAX_INCOME {
                    let n = acc.income.len() - MAX_INCOME;
                    acc.income.drain(..n);
                }
                let ev = super::events::funding_update(acc.wallet, amount, now);
                self.push_user(key, "ACCOUNT_UPDATE", ev);
            }
        }
    }

    /// The next funding time of `symbol` after its market time, with the rate it will be
    /// charged at (`premiumIndex`'s `nextFundingTime` and `lastFundingRate`, the mark price
    /// stream's `T` and `r`).
    pub fn next_funding(&self, symbol: &str) -> Option<(i64, Decimal)> {
        let m = self.market.get(symbol)?;
        Some(self.rules.funding.schedule(symbol).next_after(m.now_ms()))
    }

    /// `GET /fapi/v1/fundingRate` for one symbol: the funding times from the first candle up
    /// to the market time, each with the rate charged and the mark (the last close at or
    /// before it); in `[start, end]`, the first `limit` from `start`, else the last `limit`.
    pub fn funding_rate_history(
        &self,
        symbol: &str,
        start: Option<i64>,
        end: Option<i64>,
        limit: usize,
    ) -> Option<Vec<(i64, Decimal, Decimal)>> {
        let m = self.market.get(symbol)?;
        let closed = m.closed();
        let first = closed.first()?.open_time;
        let until = end.map_or(m.now_ms(), |e| e.min(m.now_ms()));
        let after = start.map_or(first, |s| s.max(first)).saturating_sub(1);
        let schedule = self.rules.funding.schedule(symbol);
        let row = |(t, rate): (i64, Decimal)| {
            let i = closed.partition_point(|c| c.open_time + m.interval_ms <= t);
            let mark = i
                .checked_sub(1)
                .and_then(|i| closed.get(i))
                .map_or(closed[0].open, |c| c.close);
            (t, rate, mark)
        };
        let times = schedule.between(after, until);
        Some(if start.is_some() {
            times.take(limit).map(row).collect()
        } else {
            let mut last: std::collections::VecDeque<(i64, Decimal)> =
                std::collections::VecDeque::with_capacity(limit.min(1024));
            for r in times {
                if last.len() == limit {
                    last.pop_front();
                }
                last.push_back(r);
            }
            last.into_iter().map(row).collect()
        })
    }
}
