//! Cross margin with one maintenance bracket: unrealized PnL, initial margin of positions and
//! open orders, maintenance margin, what is available for new orders, the liquidation price,
//! and the liquidation of an account whose margin balance fell to its maintenance margin.

use qt_events::{Decimal, Side};
use qt_matching::{Fill, Liquidity, Position, TimeInForce};

use super::Exchange;
use super::book::{Account, OrdType, Order, OrderStatus};
use super::sides::{PosSide, split_key};
use crate::error::ApiError;

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
        for (k, p) in &acc.positions {
            if p.is_flat() {
                continue;
            }
            let (s, _) = split_key(k);
            let mark = self.mark(s);
            upnl += p.unrealized_pnl(mark);
            pos_im += p.notional(mark) / Decimal::from(self.leverage(acc, s));
            maint += p.notional(mark) * self.rules.maint_margin_rate;
        }
        let mut ord_im = Decimal::ZERO;
        for id in &acc.open_orders {
            if let Some(o) = acc.orders.get(id)
                && !o.reduces()
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

    /// Price at which the account would be liquidated if only `symbol` moved, for its
    /// position on `side` (0 when flat). In hedge mode the other leg of the symbol moves with
    /// the price too: its exposure nets against this one's.
    pub fn liquidation_price(&self, acc: &Account, symbol: &str, side: PosSide) -> Decimal {
        let p = acc.position(symbol, side);
        if p.is_flat() {
            return Decimal::ZERO;
        }
        // wallet + other upnl + q (P - e) = |q| P mmr  →  P = (q e - W') / (q - |q| mmr),
        // with q, q e and |q| summed over the symbol's legs.
        let upnl = self.margins(acc).upnl;
        let mark = self.mark(symbol);
        let (mut q, mut qe, mut abs_q, mut here) =
            (Decimal::ZERO, Decimal::ZERO, Decimal::ZERO, Decimal::ZERO);
        for (_, leg) in acc.legs_of(symbol) {
            q += leg.qty;
            qe += leg.qty * leg.entry_price;
            abs_q += leg.qty.abs();
            here += leg.unrealized_pnl(mark);
        }
        let w = acc.wallet + upnl - here;
        let denom = q - abs_q * self.rules.maint_margin_rate;
        if denom.is_zero() {
            return Decimal::ZERO;
        }
        ((qe - w) / denom).max(Decimal::ZERO).round_dp(8)
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
            for (pkey, pos) in positions {
                let (symbol, side) = split_key(&pkey);
                self.exchange_close(
                    &key,
                    (symbol, side),
                    pos.qty.abs(),
                    &format!("autoclose-{now}"),
                    now,
                );
            }
            if let Some(acc) = self.accounts.get_mut(&key)
                && acc.wallet < Decimal::ZERO
            {
                acc.wallet = Decimal::ZERO; // the insurance fund takes the rest
            }
        }
    }

    /// Closes `qty` of the account's position on `symbol`'s `side` at the mark with an order the
    /// exchange places itself, as Binance does for a liquidation (`autoclose-…`), an
    /// auto-deleveraging (`adl_autoclose`) or a settlement (`settlement_autoclose-…`): type
    /// `LIQUIDATION`, reduce-only, filled at once, execution type `CALCULATED`, no fee.
    /// Other orders of the account are left as they are. Returns the order id (`None` when
    /// the account holds no position there).
    pub(super) fn exchange_close(
        &mut self,
        key: &str,
        (symbol, position_side): (&str, PosSide),
        qty: Decimal,
        client_order_id: &str,
        now: i64,
    ) -> Option<u64> {
        let pos = Some(self.accounts.get(key)?.position(symbol, position_side))
            .filter(|p| !p.is_flat())?;
        let qty = qty.min(pos.qty.abs());
        if qty <= Decimal::ZERO {
            return None;
        }
        let side = if pos.qty > Decimal::ZERO {
            Side::Sell
        } else {
            Side::Buy
        };
        let mark = self.mark(symbol);
        let order_id = self.next_order_id;
        self.next_order_id += 1;
        let order = Order {
            order_id,
            symbol: symbol.to_string(),
            client_order_id: client_order_id.to_string(),
            side,
            typ: OrdType::Liquidation,
            orig_type: OrdType::Liquidation,
            tif: TimeInForce::Ioc,
            price: mark,
            orig_qty: qty,
            executed_qty: Decimal::ZERO,
            cum_quote: Decimal::ZERO,
            status: OrderStatus::New,
            reduce_only: position_side == PosSide::Both,
            close_position: false,
            stop_price: Decimal::ZERO,
            working_type: "MARK_PRICE".into(),
            time: now,
            update_time: now,
            algo_id: None,
            position_side,
        };
        let acc = self.accounts.get_mut(key)?;
        acc.client_ids.insert(
            format!("{}|{}", order.symbol, order.client_order_id),
            order_id,
        );
        acc.open_orders.insert(order_id);
        acc.orders.insert(order_id, order);
        let fill = Fill {
            side,
            price: mark,
            qty,
            fee: Decimal::ZERO,
            liquidity: Liquidity::Taker,
        };
        self.apply_fill(key, order_id, fill, now, "CALCULATED");
        Some(order_id)
    }

    /// An auto-deleveraging (`adl_autoclose`) or settlement (`settlement_autoclose-…`) close of
    /// `qty` (all when `None`) of the account's position on `symbol`, as the control API asks:
    /// on `side` when named, else the symbol's first open position (one-way: its only one).
    ///
    /// # Errors
    /// `-2015` for an unknown account; `-2022` when it holds no position on `symbol`.
    pub fn auto_close(
        &mut self,
        key: &str,
        symbol: &str,
        side: Option<PosSide>,
        kind: AutoClose,
        qty: Option<Decimal>,
        now: i64,
    ) -> Result<u64, ApiError> {
        let acc = self.account(key)?;
        let side = side
            .or_else(|| {
                acc.legs_of(symbol)
                    .find(|(_, p)| !p.is_flat())
                    .map(|(s, _)| s)
            })
            .unwrap_or_default();
        let coid = match kind {
            AutoClose::Adl => "adl_autoclose".to_string(),
            AutoClose::Settlement => format!("settlement_autoclose-{now}"),
        };
        self.exchange_close(key, (symbol, side), qty.unwrap_or(Decimal::MAX), &coid, now)
            .ok_or_else(|| ApiError::bad(-2022, "ReduceOnly Order is rejected."))
    }
}

/// What closes a position on the exchange's own initiative, other than a liquidation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutoClose {
    /// Auto-deleveraging: the position is reduced against a liquidated counterparty.
    Adl,
    /// Settlement of a delisted or delivered contract.
    Settlement,
}
