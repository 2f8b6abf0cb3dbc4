//! Cross margin with one maintenance bracket: unrealized PnL, initial margin of positions and
//! open orders, maintenance margin, what is available for new orders, the liquidation price,
//! and the liquidation of an account whose margin balance fell to its maintenance margin.

use qt_events::{Decimal, Side};
use qt_matching::{Fill, Liquidity, Position, TimeInForce};

use super::Exchange;
use super::book::{Account, OrdType, Order, OrderStatus};

/// An account's margins at the current marks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Margins {
    pub upnl: Decimal,
    /// Initial margin of the positions.
    pub position_im: Decimal,
    /// Initial margin of the open (not reduce-only) orders.
    pub order_im: Decimal,
    pub maint: Decimal,
    /// Wallet + unrealized PnL − initial margins (may be negative).
    pub available: Decimal,
}

impl Exchange {
    /// The account's margins at the current marks.
    pub fn margins(&self, acc: &Account) -> Margins {
        let mut upnl = Decimal::ZERO;
        let mut pos_im = Decimal::ZERO;
        let mut maint = Decimal::ZERO;
        for (s, p) in &acc.positions {
            if p.is_flat() {
                continue;
            }
            let mark = self.mark(s);
            upnl += p.unrealized_pnl(mark);
            pos_im += p.notional(mark) / Decimal::from(self.leverage(acc, s));
            maint += p.notional(mark) * self.rules.maint_margin_rate;
        }
        let mut ord_im = Decimal::ZERO;
        for id in &acc.open_orders {
            if let Some(o) = acc.orders.get(id)
                && !o.reduce_only
            {
                let px = if o.price.is_zero() {
                    self.mark(&o.symbol)
                } else {
                    o.price
                };
                ord_im += o.remaining() * px / Decimal::from(self.leverage(acc, &o.symbol));
            }
        }
        Margins {
            upnl,
            position_im: pos_im,
            order_im: ord_im,
            maint,
            available: acc.wallet + upnl - pos_im - ord_im,
        }
    }

    /// Price at which the account would be liquidated if only `symbol` moved (0 when flat).
    pub fn liquidation_price(&self, acc: &Account, symbol: &str) -> Decimal {
        let Some(p) = acc.positions.get(symbol).filter(|p| !p.is_flat()) else {
            return Decimal::ZERO;
        };
        // wallet + other upnl + q (P - e) = |q| P mmr  →  P = (q e - W') / (q - |q| mmr)
        let upnl = self.margins(acc).upnl;
        let mark = self.mark(symbol);
        let other = upnl - p.unrealized_pnl(mark);
        let w = acc.wallet + other;
        let denom = p.qty - p.qty.abs() * self.rules.maint_margin_rate;
        if denom.is_zero() {
            return Decimal::ZERO;
        }
        ((p.qty * p.entry_price - w) / denom)
            .max(Decimal::ZERO)
            .round_dp(8)
    }

    /// Liquidate every account whose margin balance fell to its maintenance margin.
    pub(super) fn liquidations(&mut self, now: i64) {
        let doomed: Vec<String> = self
            .accounts
            .iter()
            .filter(|(_, acc)| {
                let m = self.margins(acc);
                m.maint > Decimal::ZERO && acc.wallet + m.upnl <= m.maint
            })
            .map(|(k, _)| k.clone())
            .collect();
        for key in doomed {
            tracing::info!(account = %key, "liquidating account");
            let open: Vec<u64> = self
                .accounts
                .get(&key)
                .map_or_else(Vec::new, |a| a.open_orders.iter().copied().collect());
            for id in open {
                self.finish_order(&key, id, OrderStatus::Canceled, now);
            }
            let positions: Vec<(String, Position)> =
                self.accounts.get(&key).map_or_else(Vec::new, |a| {
                    a.positions
                        .iter()
                        .filter(|(_, p)| !p.is_flat())
                        .map(|(s, p)| (s.clone(), *p))
                        .collect()
                });
            for (symbol, pos) in positions {
                let side = if pos.qty > Decimal::ZERO {
                    Side::Sell
                } else {
                    Side::Buy
                };
                let mark = self.mark(&symbol);
                let order_id = self.next_order_id;
                self.next_order_id += 1;
                let order = Order {
                    order_id,
                    symbol: symbol.clone(),
                    client_order_id: format!("autoclose-{now}"),
                    side,
                    typ: OrdType::Liquidation,
                    orig_type: OrdType::Liquidation,
                    tif: TimeInForce::Ioc,
                    price: mark,
                    orig_qty: pos.qty.abs(),
                    executed_qty: Decimal::ZERO,
                    cum_quote: Decimal::ZERO,
                    status: OrderStatus::New,
                    reduce_only: true,
                    close_position: false,
                    stop_price: Decimal::ZERO,
                    working_type: "MARK_PRICE".into(),
                    time: now,
                    update_time: now,
                    algo_id: None,
                };
                if let Some(acc) = self.accounts.get_mut(&key) {
                    acc.client_ids.insert(
                        format!("{}|{}", order.symbol, order.client_order_id),
                        order_id,
                    );
                    acc.open_orders.insert(order_id);
                    acc.orders.insert(order_id, order);
                }
                let fill = Fill {
                    side,
                    price: mark,
                    qty: pos.qty.abs(),
                    fee: Decimal::ZERO,
                    liquidity: Liquidity::Taker,
                };
                self.apply_fill(&key, order_id, fill, now, "CALCULATED");
            }
            if let Some(acc) = self.accounts.get_mut(&key)
                && acc.wallet < Decimal::ZERO
            {
                acc.wallet = Decimal::ZERO; // the insurance fund takes the rest
            }
        }
    }
}
