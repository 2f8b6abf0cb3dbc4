//! Account requests: `leverage`, `marginType` (cross only), `positionSide/dual` and
//! `multiAssetsMargin` (both modes held and reported), `v2|v3/positionRisk`,
//! `v2|v3/balance`, `v2|v3/account`, `income`, `leverageBracket`, `commissionRate`.

use qt_events::Decimal;
use serde_json::{Value, json};

use super::{Args, Plain, Request, known_symbol, optional_symbol};
use crate::app::App;
use crate::error::ApiError;
use crate::exchange::Exchange;
use crate::exchange::book::{Account, Income as IncomeEntry};
use crate::exchange::sides::PosSide;
use crate::views;
use crate::views::account::PositionView;

/// Income answered when neither `startTime` nor `endTime` is sent: the last 7 days.
const INCOME_DEFAULT_WINDOW_MS: i64 = 7 * 86_400_000;

/// `POST /fapi/v1/leverage`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SetLeverage {
    symbol: String,
    leverage: u32,
}

impl Request for SetLeverage {
    fn parse(a: &Args<'_>) -> Result<Self, ApiError> {
        let p = a.params;
        let symbol = p.required("symbol")?;
        let spec = a.instruments.get(symbol)?;
        let lev = p
            .int("leverage")?
            .ok_or_else(|| ApiError::mandatory("leverage"))?;
        if !(1..=i64::from(spec.max_leverage)).contains(&lev) {
            return Err(ApiError::bad(-4028, format!("Leverage {lev} is not valid")));
        }
        Ok(Self {
            symbol: symbol.to_string(),
            leverage: u32::try_from(lev).unwrap_or(1),
        })
    }

    fn apply(self, app: &App, account: &str, _now: i64) -> Result<Value, ApiError> {
        let r = app.with_exchange(|ex| ex.set_leverage(account, &self.symbol, self.leverage));
        app.mark_dirty();
        r.map(|()| views::account::leverage(&self.symbol, self.leverage))
    }
}

/// `POST /fapi/v1/marginType`: the simulator is cross margin only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SetMarginType;

impl Request for SetMarginType {
    fn parse(a: &Args<'_>) -> Result<Self, ApiError> {
        match a.params.required("marginType")? {
            "CROSSED" => Err(ApiError::bad(-4046, "No need to change margin type.")),
            "ISOLATED" => Err(ApiError::bad(
                -4047,
                "Margin type cannot be changed if there exists position.",
            )),
            _ => Err(ApiError::invalid("marginType")),
        }
    }

    fn apply(self, _: &App, _: &str, _: i64) -> Result<Value, ApiError> {
        Ok(json!({}))
    }
}

/// `GET /fapi/v1/positionSide/dual`: the account's position mode.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct GetPositionMode;

impl Plain for GetPositionMode {
    fn answer(app: &App, account: &str, _: i64) -> Result<Value, ApiError> {
        let dual = app.read(|ex| ex.account(account).map(|a| a.dual_side_position))?;
        Ok(json!({"dualSidePosition": dual}))
    }
}

/// `dualSidePosition` or `multiAssetsMargin`: `true` or `false`.
fn bool_param(a: &Args<'_>, name: &str) -> Result<bool, ApiError> {
    match a.params.required(name)? {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(ApiError::invalid(name)),
    }
}

/// `POST /fapi/v1/positionSide/dual`: switches the account to hedge or one-way mode (refused
/// with an open order or a position, as on Binance; in hedge mode the simulator refuses every
/// order, see [`Account::dual_side_position`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SetPositionMode {
    dual: bool,
}

impl Request for SetPositionMode {
    fn parse(a: &Args<'_>) -> Result<Self, ApiError> {
        Ok(Self {
            dual: bool_param(a, "dualSidePosition")?,
        })
    }

    fn apply(self, app: &App, account: &str, _: i64) -> Result<Value, ApiError> {
        app.with_exchange(|ex| ex.set_position_mode(account, self.dual))?;
        app.mark_dirty();
        Ok(json!({"code": 200, "msg": "success"}))
    }
}

/// `GET /fapi/v1/multiAssetsMargin`: the account's margin asset mode.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct GetMultiAssetsMode;

impl Plain for GetMultiAssetsMode {
    fn answer(app: &App, account: &str, _: i64) -> Result<Value, ApiError> {
        let on = app.read(|ex| ex.account(account).map(|a| a.multi_assets_margin))?;
        Ok(json!({"multiAssetsMargin": on}))
    }
}

/// `POST /fapi/v1/multiAssetsMargin`: switches the margin asset mode (reported only; the
/// simulated wallet holds USDT alone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SetMultiAssetsMode {
    on: bool,
}

impl Request for SetMultiAssetsMode {
    fn parse(a: &Args<'_>) -> Result<Self, ApiError> {
        Ok(Self {
            on: bool_param(a, "multiAssetsMargin")?,
        })
    }

    fn apply(self, app: &App, account: &str, _: i64) -> Result<Value, ApiError> {
        app.with_exchange(|ex| ex.set_multi_assets_margin(account, self.on))?;
        app.mark_dirty();
        Ok(json!({"code": 200, "msg": "success"}))
    }
}

fn position_row(
    ex: &Exchange,
    acc: &Account,
    (symbol, side): (&str, PosSide),
    v2: bool,
    now: i64,
) -> Value {
    let view = PositionView {
        symbol,
        side,
        position: acc.position(symbol, side),
        mark: ex.mark(symbol),
        leverage: ex.leverage(acc, symbol),
        liquidation_price: ex.liquidation_price(acc, symbol, side),
        maint_margin_rate: ex.rules().maint_margin_rate,
    };
    views::account::position(&view, v2, now)
}

/// The position rows of `symbol`: one per side of the account's mode (`BOTH`, or `LONG` and
/// `SHORT` in hedge mode), every side with `all`, else those open (and, with `orders`, all
/// of them when the symbol has an open order).
fn position_rows(
    ex: &Exchange,
    acc: &Account,
    symbol: &str,
    (all, orders): (bool, bool),
    now: i64,
) -> Vec<Value> {
    let any_order = orders && acc.open_orders_of(symbol).next().is_some();
    acc.legs_of(symbol)
        .filter(|(_, p)| all || any_order || !p.is_flat())
        .map(|(side, _)| position_row(ex, acc, (symbol, side), all, now))
        .collect()
}

/// `GET /fapi/v2/positionRisk` (`V2`: every symbol, with leverage) or `v3` (symbols with a
/// position or an open order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PositionRisk<const V2: bool> {
    symbol: Option<String>,
}

impl<const V2: bool> Request for PositionRisk<V2> {
    fn parse(a: &Args<'_>) -> Result<Self, ApiError> {
        optional_symbol(a).map(|symbol| Self { symbol })
    }

    fn apply(self, app: &App, account: &str, now: i64) -> Result<Value, ApiError> {
        app.read(|ex| {
            let acc = ex.account(account)?;
            let mut out = Vec::new();
            for s in ex.market().symbols.keys() {
                if self.symbol.as_ref().is_some_and(|x| x != s) {
                    continue;
                }
                out.extend(position_rows(ex, acc, s, (V2, true), now));
            }
            Ok(Value::Array(out))
        })
    }
}

/// `GET /fapi/v2|v3/balance`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Balance;

impl Plain for Balance {
    fn answer(app: &App, account: &str, now: i64) -> Result<Value, ApiError> {
        app.read(|ex| {
            let acc = ex.account(account)?;
            Ok(views::account::balance(acc.wallet, &ex.margins(acc), now))
        })
    }
}

/// `GET /fapi/v2/account` (`V2`: every symbol's position) or `v3` (open positions only).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct AccountInfo<const V2: bool>;

impl<const V2: bool> Plain for AccountInfo<V2> {
    fn answer(app: &App, account: &str, now: i64) -> Result<Value, ApiError> {
        app.read(|ex| {
            let acc = ex.account(account)?;
            let positions: Vec<Value> = ex
                .market()
                .symbols
                .keys()
                .flat_map(|s| position_rows(ex, acc, s, (V2, false), now))
                .collect();
            let mut info =
                views::account::account_info(acc.wallet, &ex.margins(acc), positions, now);
            info["multiAssetsMargin"] = json!(acc.multi_assets_margin);
            Ok(info)
        })
    }
}

/// `GET /fapi/v1/income`: the account's wallet changes, oldest first, filtered by `symbol`,
/// `incomeType`, `startTime`, `endTime` (the last 7 days when neither time is sent); the
/// first `limit` (default 100, at most 1000) from `startTime`, else the last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Income {
    symbol: Option<String>,
    kind: Option<String>,
    limit: usize,
    start: Option<i64>,
    end: Option<i64>,
}

impl Request for Income {
    fn parse(a: &Args<'_>) -> Result<Self, ApiError> {
        let p = a.params;
        let symbol = optional_symbol(a)?;
        let kind = p.get("incomeType").map(str::to_string);
        Ok(Self {
            symbol,
            kind,
            limit: p.count("limit", 100, 1000)?,
            start: p.int("startTime")?,
            end: p.int("endTime")?,
        })
    }

    fn apply(self, app: &App, account: &str, now: i64) -> Result<Value, ApiError> {
        let (lo, hi) = match (self.start, self.end) {
            (None, None) => (now.saturating_sub(INCOME_DEFAULT_WINDOW_MS), i64::MAX),
            (s, e) => (s.unwrap_or(i64::MIN), e.unwrap_or(i64::MAX)),
        };
        app.read(|ex| {
            let acc = ex.account(account)?;
            let mut rows: Vec<&IncomeEntry> = acc
                .income
                .iter()
                .filter(|i| {
                    self.symbol.as_ref().is_none_or(|s| i.symbol == *s)
                        && self.kind.as_ref().is_none_or(|k| i.income_type == *k)
                        && i.time >= lo
                        && i.time <= hi
                })
                .collect();
            if self.start.is_some() {
                rows.truncate(self.limit);
            } else if rows.len() > self.limit {
                rows.drain(..rows.len() - self.limit);
            }
            Ok(Value::Array(
                rows.into_iter().map(views::account::income).collect(),
            ))
        })
    }
}

/// `GET /fapi/v1/leverageBracket`: of one symbol, or of all when it is absent or unknown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LeverageBrackets {
    symbol: Option<String>,
}

impl Request for LeverageBrackets {
    fn parse(a: &Args<'_>) -> Result<Self, ApiError> {
        Ok(Self {
            symbol: a.params.get("symbol").map(str::to_string),
        })
    }

    fn apply(self, app: &App, _: &str, _: i64) -> Result<Value, ApiError> {
        let mmr = app.read(|ex| ex.rules().maint_margin_rate);
        let one = |s| views::market::leverage_bracket(s, mmr);
        Ok(
            match self
                .symbol
                .as_deref()
                .and_then(|s| app.instruments.get(s).ok())
            {
                Some(spec) => json!([one(spec)]),
                None => Value::Array(app.instruments.iter().map(one).collect()),
            },
        )
    }
}

/// `GET /fapi/v1/commissionRate`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CommissionRate {
    symbol: String,
}

impl Request for CommissionRate {
    fn parse(a: &Args<'_>) -> Result<Self, ApiError> {
        known_symbol(a).map(|symbol| Self { symbol })
    }

    fn apply(self, app: &App, _: &str, _: i64) -> Result<Value, ApiError> {
        let (maker, taker): (Decimal, Decimal) =
            app.read(|ex| (ex.rules().fill.maker_fee, ex.rules().fill.taker_fee));
        Ok(views::market::commission_rate(&self.symbol, maker, taker))
    }
}
