//! Fills: prices after slippage, fees, partial fills capped by candle volume.

use qt_events::{Decimal, Side};
use serde::{Deserialize, Serialize};

use crate::MatchError;

/// One candle of the traded symbol: the market state a fill is computed against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bar {
    /// Open time, ms since the epoch.
    pub open_time: i64,
    pub open: Decimal,
    pub high: Decimal,
    pub low: Decimal,
    pub close: Decimal,
    /// Volume in the base asset.
    pub volume: Decimal,
}

impl From<&qt_candles::Candle> for Bar {
    fn from(c: &qt_candles::Candle) -> Self {
        Bar {
            open_time: c.open_time,
            open: c.open,
            high: c.high,
            low: c.low,
            close: c.close,
            volume: c.volume,
        }
    }
}

impl Bar {
    /// Whether the candle is well formed: `low ≤ open, close ≤ high`, positive prices, volume ≥ 0.
    pub fn is_valid(&self) -> bool {
        self.low > Decimal::ZERO
            && self.low <= self.high
            && self.open >= self.low
            && self.open <= self.high
            && self.close >= self.low
            && self.close <= self.high
            && self.volume >= Decimal::ZERO
    }

    /// Clamp a price into `[low, high]`.
    pub fn clamp(&self, price: Decimal) -> Decimal {
        price.max(self.low).min(self.high)
    }

    /// Whether the candle's range touches `price`.
    pub fn contains(&self, price: Decimal) -> bool {
        price >= self.low && price <= self.high
    }
}

/// Who provided liquidity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Liquidity {
    Maker,
    Taker,
}

/// Time in force of a limit order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TimeInForce {
    /// Good till cancelled.
    Gtc,
    /// Immediate or cancel: what cannot fill now expires.
    Ioc,
    /// Fill or kill: fills in full now or not at all.
    Fok,
    /// Good till crossing (post only): refused if it would take.
    Gtx,
}

/// One execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fill {
    pub side: Side,
    pub price: Decimal,
    pub qty: Decimal,
    /// Fee in the quote asset, always ≥ 0 and > 0 when both the fee rate and the notional are.
    pub fee: Decimal,
    pub liquidity: Liquidity,
}

impl Fill {
    pub fn notional(&self) -> Decimal {
        self.price * self.qty
    }
}

/// A market or limit order that is (still) working: what the model needs to fill it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestingOrder {
    pub side: Side,
    /// `None` for a market order.
    pub limit_price: Option<Decimal>,
    /// Quantity still to fill.
    pub remaining: Decimal,
}

/// Fees, slippage and the partial-fill rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FillModel {
    /// Fee rate for maker fills (Binance VIP 0: 0.0002).
    pub maker_fee: Decimal,
    /// Fee rate for taker fills (Binance VIP 0: 0.0005).
    pub taker_fee: Decimal,
    /// Adverse slippage of a taker fill as a fraction of the reference price (0.0002 = 2 bp);
    /// the slipped price never leaves the candle's range.
    pub slippage: Decimal,
    /// Largest share of one candle's volume an order may take in that candle (0.1 = 10 %);
    /// the rest stays working. Zero or less disables the cap.
    pub max_volume_share: Decimal,
    /// Decimal places fill prices are rounded to (adverse direction, then clamped to the candle).
    pub price_scale: u32,
}

impl Default for FillModel {
    fn default() -> Self {
        Self {
            maker_fee: Decimal::new(2, 4),
            taker_fee: Decimal::new(5, 4),
            slippage: Decimal::new(2, 4),
            max_volume_share: Decimal::new(1, 1),
            price_scale: 8,
        }
    }
}

impl FillModel {
    /// Fee charged on a fill of `notional` quote.
    pub fn fee(&self, notional: Decimal, liquidity: Liquidity) -> Decimal {
        let rate = match liquidity {
            Liquidity::Maker => self.maker_fee,
            Liquidity::Taker => self.taker_fee,
        };
        (notional.abs() * rate.max(Decimal::ZERO))
            .round_dp_with_strategy(8, rust_decimal::RoundingStrategy::AwayFromZero)
    }

    /// The most an order may fill in a candle of `volume` (base asset).
    pub fn volume_cap(&self, volume: Decimal) -> Decimal {
        if self.max_volume_share <= Decimal::ZERO {
            Decimal::MAX
        } else {
            (volume.max(Decimal::ZERO) * self.max_volume_share).max(Decimal::ZERO)
        }
    }

    /// A taker price after adverse slippage from `reference`, never outside the candle.
    pub fn slipped_price(&self, side: Side, reference: Decimal, bar: &Bar) -> Decimal {
        let s = self.slippage.max(Decimal::ZERO);
        let raw = match side {
            Side::Buy => reference * (Decimal::ONE + s),
            Side::Sell => reference * (Decimal::ONE - s),
        };
        let strategy = match side {
            Side::Buy => rust_decimal::RoundingStrategy::ToPositiveInfinity,
            Side::Sell => rust_decimal::RoundingStrategy::ToNegativeInfinity,
        };
        bar.clamp(raw.round_dp_with_strategy(self.price_scale, strategy))
    }

    fn make_fill(&self, side: Side, price: Decimal, qty: Decimal, liquidity: Liquidity) -> Fill {
        Fill {
            side,
            price,
            qty,
            fee: self.fee(price * qty, liquidity),
            liquidity,
        }
    }

    fn cap_qty(&self, wanted: Decimal, bar: &Bar, qty_step: Decimal) -> Decimal {
        let cap = self.volume_cap(bar.volume);
        let q = wanted.min(cap);
        if qty_step > Decimal::ZERO && q < wanted {
            (q / qty_step).floor() * qty_step
        } else {
            q
        }
    }

    /// Execution of an order at the moment it arrives, against the last closed candle `bar`
    /// (its close is the last price). Market orders and marketable limit orders take liquidity
    /// at the last price plus slippage (never worse than the limit), capped by the candle's
    /// volume share; partial quantities are floored to `qty_step` (zero disables). A limit order
    /// that does not cross rests (no fill). Post-only orders that would cross and FOK orders
    /// that cannot fill in full are refused.
    pub fn on_arrival(
        &self,
        order: &RestingOrder,
        tif: TimeInForce,
        bar: &Bar,
        qty_step: Decimal,
    ) -> Result<Option<Fill>, MatchError> {
        check(order, bar)?;
        let last = bar.close;
        let crosses = match (order.side, order.limit_price) {
            (_, None) => true,
            (Side::Buy, Some(p)) => p >= last,
            (Side::Sell, Some(p)) => p <= last,
        };
        if !crosses {
            return match tif {
                TimeInForce::Fok => Err(MatchError::FillOrKillUnfillable),
                _ => Ok(None),
            };
        }
        if tif == TimeInForce::Gtx && order.limit_price.is_some() {
            return Err(MatchError::PostOnlyWouldTake);
        }
        let mut price = self.slipped_price(order.side, last, bar);
        if let Some(limit) = order.limit_price {
            price = match order.side {
                Side::Buy => price.min(limit),
                Side::Sell => price.max(limit),
            };
        }
        let qty = self.cap_qty(order.remaining, bar, qty_step);
        if tif == TimeInForce::Fok && qty < order.remaining {
            return Err(MatchError::FillOrKillUnfillable);
        }
        if qty <= Decimal::ZERO {
            return Ok(None);
        }
        Ok(Some(self.make_fill(
            order.side,
            price,
            qty,
            Liquidity::Taker,
        )))
    }

    /// Execution of a working order during a new candle `bar`. A market remainder takes at the
    /// candle's open plus slippage; a resting limit order fills as maker at its limit price when
    /// the candle's range reaches it (at the open, as taker, if the candle gaps through it).
    /// The quantity is capped by the candle's volume share.
    pub fn on_bar(
        &self,
        order: &RestingOrder,
        bar: &Bar,
        qty_step: Decimal,
    ) -> Result<Option<Fill>, MatchError> {
        check(order, bar)?;
        let (price, liquidity) = match (order.side, order.limit_price) {
            (side, None) => (self.slipped_price(side, bar.open, bar), Liquidity::Taker),
            (Side::Buy, Some(p)) => {
                if bar.open <= p {
                    (bar.open, Liquidity::Taker)
                } else if bar.low <= p {
                    (p, Liquidity::Maker)
                } else {
                    return Ok(None);
                }
            }
            (Side::Sell, Some(p)) => {
                if bar.open >= p {
                    (bar.open, Liquidity::Taker)
                } else if bar.high >= p {
                    (p, Liquidity::Maker)
                } else {
                    return Ok(None);
                }
            }
        };
        let qty = self.cap_qty(order.remaining, bar, qty_step);
        if qty <= Decimal::ZERO {
            return Ok(None);
        }
        Ok(Some(self.make_fill(order.side, price, qty, liquidity)))
    }

    /// A taker fill at a given reference price (a triggered stop, a liquidation, a fill at a
    /// mark price set by a test), slipped and bounded by `bar`, capped by volume share.
    pub fn taker_at(
        &self,
        order: &RestingOrder,
        reference: Decimal,
        bar: &Bar,
        qty_step: Decimal,
    ) -> Result<Option<Fill>, MatchError> {
        check(order, bar)?;
        let qty = self.cap_qty(order.remaining, bar, qty_step);
        if qty <= Decimal::ZERO {
            return Ok(None);
        }
        let price = self.slipped_price(order.side, bar.clamp(reference), bar);
        Ok(Some(self.make_fill(
            order.side,
            price,
            qty,
            Liquidity::Taker,
        )))
    }
}

fn check(order: &RestingOrder, bar: &Bar) -> Result<(), MatchError> {
    if order.remaining <= Decimal::ZERO {
        return Err(MatchError::Invalid("quantity must be positive"));
    }
    if order.limit_price.is_some_and(|p| p <= Decimal::ZERO) {
        return Err(MatchError::Invalid("price must be positive"));
    }
    if !bar.is_valid() {
        return Err(MatchError::Invalid("malformed candle"));
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rust_decimal_macros::dec;

    fn bar() -> Bar {
        Bar {
            open_time: 0,
            open: dec!(100),
            high: dec!(110),
            low: dec!(90),
            close: dec!(105),
            volume: dec!(1000),
        }
    }

    fn market(side: Side, qty: Decimal) -> RestingOrder {
        RestingOrder {
            side,
            limit_price: None,
            remaining: qty,
        }
    }

    #[test]
    fn market_buy_pays_slippage_and_taker_fee() {
        let m = FillModel::default();
        let f = m
            .on_arrival(
                &market(Side::Buy, dec!(1)),
                TimeInForce::Gtc,
                &bar(),
                dec!(0.001),
            )
            .unwrap()
            .unwrap();
        assert_eq!(f.price, dec!(105.021));
        assert_eq!(f.liquidity, Liquidity::Taker);
        assert_eq!(f.fee, dec!(0.0525105));
    }

    #[test]
    fn large_market_order_fills_only_the_volume_share() {
        let m = FillModel::default();
        let f = m
            .on_arrival(
                &market(Side::Sell, dec!(250)),
                TimeInForce::Gtc,
                &bar(),
                dec!(0.001),
            )
            .unwrap()
            .unwrap();
        assert_eq!(f.qty, dec!(100));
    }

    #[test]
    fn limit_below_last_rests_and_fills_as_maker_when_range_reaches_it() {
        let m = FillModel::default();
        let o = RestingOrder {
            side: Side::Buy,
            limit_price: Some(dec!(95)),
            remaining: dec!(2),
        };
        assert_eq!(
            m.on_arrival(&o, TimeInForce::Gtc, &bar(), dec!(0.001)),
            Ok(None)
        );
        let f = m.on_bar(&o, &bar(), dec!(0.001)).unwrap().unwrap();
        assert_eq!((f.price, f.liquidity), (dec!(95), Liquidity::Maker));
        let high = Bar {
            low: dec!(96),
            ..bar()
        };
        assert_eq!(m.on_bar(&o, &high, dec!(0.001)), Ok(None));
    }

    #[test]
    fn post_only_that_would_cross_is_refused() {
        let m = FillModel::default();
        let o = RestingOrder {
            side: Side::Buy,
            limit_price: Some(dec!(106)),
            remaining: dec!(1),
        };
        assert_eq!(
            m.on_arrival(&o, TimeInForce::Gtx, &bar(), Decimal::ZERO),
            Err(MatchError::PostOnlyWouldTake)
        );
    }

    #[test]
    fn fok_larger_than_volume_share_is_refused() {
        let m = FillModel::default();
        assert_eq!(
            m.on_arrival(
                &market(Side::Buy, dec!(101)),
                TimeInForce::Fok,
                &bar(),
                dec!(1)
            ),
            Err(MatchError::FillOrKillUnfillable)
        );
    }

    #[test]
    fn limit_gapped_through_fills_at_open_as_taker() {
        let m = FillModel::default();
        let o = RestingOrder {
            side: Side::Sell,
            limit_price: Some(dec!(95)),
            remaining: dec!(1),
        };
        let f = m.on_bar(&o, &bar(), dec!(0.001)).unwrap().unwrap();
        assert_eq!((f.price, f.liquidity), (dec!(100), Liquidity::Taker));
    }

    fn arb_bar() -> impl Strategy<Value = Bar> {
        (
            1i64..1_000_000,
            0i64..100_000,
            0i64..100_000,
            0u32..=100,
            0u32..=100,
            0i64..1_000_000,
        )
            .prop_map(|(low, span, _x, o, c, vol)| {
                let low = Decimal::new(low, 2);
                let high = low + Decimal::new(span, 2);
                let at = |pct: u32| low + (high - low) * Decimal::from(pct) / dec!(100);
                Bar {
                    open_time: 0,
                    open: at(o),
                    high,
                    low,
                    close: at(c),
                    volume: Decimal::new(vol, 3),
                }
            })
    }

    fn arb_model() -> impl Strategy<Value = FillModel> {
        (1i64..20, 1i64..20, 0i64..100, 1i64..100).prop_map(|(mk, tk, sl, share)| FillModel {
            maker_fee: Decimal::new(mk, 4),
            taker_fee: Decimal::new(tk, 4),
            slippage: Decimal::new(sl, 4),
            max_volume_share: Decimal::new(share, 2),
            price_scale: 8,
        })
    }

    proptest! {
        #[test]
        fn every_fill_is_inside_the_candle_capped_and_charged(
            bar in arb_bar(),
            model in arb_model(),
            buy in any::<bool>(),
            qty in 1i64..1_000_000,
            limit in proptest::option::of(1i64..2_000_000),
        ) {
            let side = if buy { Side::Buy } else { Side::Sell };
            let o = RestingOrder { side, limit_price: limit.map(|l| Decimal::new(l, 2)), remaining: Decimal::new(qty, 3) };
            let mkt = RestingOrder { limit_price: None, ..o };
            let fills = [
                (o, model.on_arrival(&o, TimeInForce::Gtc, &bar, Decimal::ZERO).ok().flatten()),
                (o, model.on_bar(&o, &bar, Decimal::ZERO).ok().flatten()),
                (mkt, model.taker_at(&mkt, bar.close, &bar, Decimal::ZERO).ok().flatten()),
            ];
            for (order, fill) in fills {
                let Some(f) = fill else { continue };
                prop_assert!(bar.contains(f.price), "price {} outside [{}, {}]", f.price, bar.low, bar.high);
                prop_assert!(f.qty > Decimal::ZERO && f.qty <= order.remaining);
                prop_assert!(f.qty <= model.volume_cap(bar.volume));
                prop_assert!(f.fee > Decimal::ZERO, "fee not charged: {:?}", f);
                match (side, order.limit_price) {
                    (Side::Buy, Some(l)) => prop_assert!(f.price <= l),
                    (Side::Sell, Some(l)) => prop_assert!(f.price >= l),
                    _ => {}
                }
            }
        }
    }
}
