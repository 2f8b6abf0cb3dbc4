//! Accounts: balances, positions, the account summary, income history.

use qt_events::Decimal;
use qt_matching::Position;
use serde_json::{Value, json};

use crate::exchange::Margins;
use crate::exchange::book::Income;
use crate::exchange::sides::PosSide;
use crate::wire::{d, d8};

/// One position as `positionRisk` (and `account`) shows it.
pub(crate) struct PositionView<'a> {
    pub symbol: &'a str,
    pub side: PosSide,
    pub position: Position,
    pub mark: Decimal,
    pub leverage: u32,
    pub liquidation_price: Decimal,
    pub maint_margin_rate: Decimal,
}

/// `GET /fapi/v2|v3/positionRisk` row; v2 adds leverage and margin type.
pub(crate) fn position(v: &PositionView<'_>, v2: bool, now: i64) -> Value {
    let (p, mark) = (&v.position, v.mark);
    let notional = p.qty * mark;
    let im = p.notional(mark) / Decimal::from(v.leverage);
    let mut out = json!({"symbol": v.symbol, "positionSide": v.side.name(), "positionAmt": d(p.qty),
        "entryPrice": d(p.entry_price), "breakEvenPrice": d(p.entry_price), "markPrice": d(mark),
        "unRealizedProfit": d(p.unrealized_pnl(mark).round_dp(8)), "liquidationPrice": d(v.liquidation_price),
        "isolatedMargin": "0", "notional": d(notional.round_dp(8)), "marginAsset": "USDT",
        "isolatedWallet": "0", "initialMargin": d(im.round_dp(8)),
        "maintMargin": d((p.notional(mark) * v.maint_margin_rate).round_dp(8)),
        "positionInitialMargin": d(im.round_dp(8)), "openOrderInitialMargin": "0", "adl": 0,
        "bidNotional": "0", "askNotional": "0", "updateTime": now});
    if v2 && let Some(o) = out.as_object_mut() {
        o.insert("leverage".into(), json!(v.leverage.to_string()));
        o.insert("marginType".into(), json!("cross"));
        o.insert("isAutoAddMargin".into(), json!("false"));
        o.insert("maxNotionalValue".into(), json!("1000000000"));
    }
    out
}

/// `GET /fapi/v2|v3/balance`.
pub(crate) fn balance(wallet: Decimal, m: &Margins, now: i64) -> Value {
    let avail = m.available.max(Decimal::ZERO).round_dp(8);
    json!([{"accountAlias": "SimAccount", "asset": "USDT", "balance": d(wallet),
    "crossWalletBalance": d(wallet), "crossUnPnl": d(m.upnl.round_dp(8)),
    "availableBalance": d(avail), "maxWithdrawAmount": d(avail), "marginAvailable": true,
    "updateTime": now}])
}

/// `GET /fapi/v2|v3/account`, with its positions already rendered.
pub(crate) fn account_info(wallet: Decimal, m: &Margins, positions: Vec<Value>, now: i64) -> Value {
    let avail = m.available.max(Decimal::ZERO).round_dp(8);
    let r = |x: Decimal| d(x.round_dp(8));
    let (upnl, pos_im, ord_im, maint) = (m.upnl, m.position_im, m.order_im, m.maint);
    json!({
        "feeTier": 0, "canTrade": true, "canDeposit": true, "canWithdraw": true, "updateTime": 0,
        "multiAssetsMargin": false,
        "totalInitialMargin": r(pos_im + ord_im), "totalMaintMargin": r(maint),
        "totalWalletBalance": r(wallet), "totalUnrealizedProfit": r(upnl),
        "totalMarginBalance": r(wallet + upnl), "totalPositionInitialMargin": r(pos_im),
        "totalOpenOrderInitialMargin": r(ord_im), "totalCrossWalletBalance": r(wallet),
        "totalCrossUnPnl": r(upnl), "availableBalance": d(avail), "maxWithdrawAmount": d(avail),
        "assets": [{"asset": "USDT", "walletBalance": r(wallet), "unrealizedProfit": r(upnl),
            "marginBalance": r(wallet + upnl), "maintMargin": r(maint),
            "initialMargin": r(pos_im + ord_im), "positionInitialMargin": r(pos_im),
            "openOrderInitialMargin": r(ord_im), "crossWalletBalance": r(wallet),
            "crossUnPnl": r(upnl), "availableBalance": d(avail), "maxWithdrawAmount": d(avail),
            "marginAvailable": true, "updateTime": now}],
        "positions": positions,
    })
}

/// `GET /fapi/v1/income` row.
pub(crate) fn income(i: &Income) -> Value {
    json!({"symbol": i.symbol, "incomeType": i.income_type,
        "income": d8(i.income), "asset": "USDT",
        "info": i.income_type, "time": i.time, "tranId": i.tran_id,
        "tradeId": if i.trade_id == 0 { String::new() } else { i.trade_id.to_string() }})
}

/// `POST /fapi/v1/leverage`.
pub(crate) fn leverage(symbol: &str, leverage: u32) -> Value {
    json!({"leverage": leverage, "maxNotionalValue": "1000000000", "symbol": symbol})
}
