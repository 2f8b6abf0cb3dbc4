//! Conditional-order requests: `algoOrder` (POST/GET/DELETE), `openAlgoOrders`,
//! `allAlgoOrders`, `algoOpenOrders`.

use qt_events::Decimal;
use qt_matching::TimeInForce;
use serde_json::{Value, json};

use super::orders::{check_price, check_qty, parse_tif, position_side};
use super::{Args, Request, known_symbol};
use crate::app::App;
use crate::error::ApiError;
use crate::exchange::book::OrdType;
use crate::exchange::{AlgoRef, AlgoTicket, Trailing};
use crate::views;

/// `POST /fapi/v1/algoOrder` (`algoType=CONDITIONAL`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct NewAlgo(AlgoTicket);

impl Request for NewAlgo {
    fn parse(a: &Args<'_>) -> Result<Self, ApiError> {
        let p = a.params;
        match p.required("algoType")? {
            "CONDITIONAL" => {}
            _ => return Err(ApiError::invalid("algoType")),
        }
        let symbol = p.required("symbol")?;
        let spec = a.instruments.get(symbol)?;
        let side = p.side()?;
        let typ = OrdType::parse(p.required("type")?)
            .filter(|t| t.is_conditional())
            .ok_or_else(|| ApiError::bad(-1116, "Invalid orderType."))?;
        let position_side = position_side(p)?;
        let working_type = match p.get("workingType") {
            None | Some("CONTRACT_PRICE") => "CONTRACT_PRICE",
            Some("MARK_PRICE") => "MARK_PRICE",
            Some(_) => return Err(ApiError::invalid("workingType")),
        };
        let close_position = p.bool("closePosition")?;
        let reduce_only = p.bool("reduceOnly")?;
        let price_protect = p.bool("priceProtect")?;
        if close_position && p.has("quantity") {
            return Err(ApiError::not_required("quantity"));
        }
        if close_position && reduce_only {
            return Err(ApiError::not_required("reduceOnly"));
        }
        if close_position
            && matches!(
                typ,
                OrdType::Stop | OrdType::TakeProfit | OrdType::TrailingStopMarket
            )
        {
            return Err(ApiError::not_required("closePosition"));
        }
        let quantity = if close_position {
            Decimal::ZERO
        } else {
            let q = p.required_decimal("quantity")?;
            check_qty(spec, q)?;
            q
        };
        let price = if matches!(typ, OrdType::Stop | OrdType::TakeProfit) {
            let px = p.required_decimal("price")?;
            check_price(spec, "Price", px)?;
            px
        } else {
            Decimal::ZERO
        };
        let tif = match p.get("timeInForce") {
            Some(t) => parse_tif(t)?,
            None => TimeInForce::Gtc,
        };
        let (trigger_price, trailing) = if typ == OrdType::TrailingStopMarket {
            let rate = p.required_decimal("callbackRate")?;
            if rate < Decimal::new(1, 1) || rate > Decimal::TEN {
                return Err(ApiError::invalid("callbackRate"));
            }
            let act = p.decimal("activatePrice")?;
            if let Some(a) = act {
                check_price(spec, "Activate price", a)?;
            }
            let trailing = Trailing {
                callback_rate: rate,
                activate_price: act,
            };
            (None, Some(trailing))
        } else {
            let tp = p.required_decimal("triggerPrice")?;
            check_price(spec, "Stop price", tp)?;
            (Some(tp), None)
        };
        Ok(Self(AlgoTicket {
            symbol: symbol.to_string(),
            side,
            typ,
            working_type,
            close_position,
            reduce_only,
            price_protect,
            quantity,
            price,
            tif,
            trigger_price,
            trailing,
            position_side,
            client_id: p.get("clientAlgoId").map(str::to_string),
        }))
    }

    fn apply(self, app: &App, account: &str, now: i64) -> Result<Value, ApiError> {
        app.with_exchange(|ex| {
            let id = ex.place_algo(account, &self.0, now)?;
            ex.algo(account, id)
                .map(|(a, actual)| views::orders::algo(a, actual))
                .ok_or_else(ApiError::no_such_order)
        })
    }
}

/// A request about one algo order, named by `algoId` or `clientAlgoId`: [`QueryAlgo`] or
/// [`CancelAlgo`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OneAlgo<const CANCEL: bool>(AlgoRef);

/// `GET /fapi/v1/algoOrder`.
pub(crate) type QueryAlgo = OneAlgo<false>;
/// `DELETE /fapi/v1/algoOrder`.
pub(crate) type CancelAlgo = OneAlgo<true>;

impl<const CANCEL: bool> Request for OneAlgo<CANCEL> {
    fn parse(a: &Args<'_>) -> Result<Self, ApiError> {
        let p = a.params;
        if let Some(id) = p.int("algoId")? {
            Ok(Self(AlgoRef::Id(id)))
        } else if let Some(c) = p.get("clientAlgoId") {
            Ok(Self(AlgoRef::Client(c.to_string())))
        } else {
            Err(ApiError::bad(
                -1102,
                "Param 'clientAlgoId' or 'algoId' must be sent, but both were empty/null!",
            ))
        }
    }

    fn apply(self, app: &App, account: &str, now: i64) -> Result<Value, ApiError> {
        if CANCEL {
            let (id, cid) = app.with_exchange(|ex| ex.cancel_algo(account, &self.0, now))?;
            return Ok(json!({"algoId": id, "clientAlgoId": cid, "code": "200", "msg": "success"}));
        }
        app.read(|ex| {
            let id = ex
                .find_algo(account, &self.0)?
                .ok_or_else(ApiError::no_such_order)?;
            ex.algo(account, id)
                .map(|(a, actual)| views::orders::algo(a, actual))
                .ok_or_else(ApiError::no_such_order)
        })
    }
}

/// A list of the account's algo orders: the open ones, of one symbol or all
/// ([`OpenAlgos`]), or every one of a symbol ([`AllAlgos`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AlgoList<const OPEN: bool> {
    symbol: Option<String>,
}

/// `GET /fapi/v1/openAlgoOrders`: `symbol` optional.
pub(crate) type OpenAlgos = AlgoList<true>;
/// `GET /fapi/v1/allAlgoOrders`: `symbol` required.
pub(crate) type AllAlgos = AlgoList<false>;

impl<const OPEN: bool> Request for AlgoList<OPEN> {
    fn parse(a: &Args<'_>) -> Result<Self, ApiError> {
        let symbol = if OPEN {
            a.params.get("symbol")
        } else {
            Some(a.params.required("symbol")?)
        };
        Ok(Self {
            symbol: symbol.map(str::to_string),
        })
    }

    fn apply(self, app: &App, account: &str, _now: i64) -> Result<Value, ApiError> {
        app.read(|ex| {
            let acc = ex.account(account)?;
            let listed: Box<dyn Iterator<Item = &u64>> = if OPEN {
                Box::new(acc.open_algos.iter())
            } else {
                Box::new(acc.algos.keys())
            };
            Ok(Value::Array(
                listed
                    .filter_map(|id| ex.algo(account, *id))
                    .filter(|(a, _)| self.symbol.as_ref().is_none_or(|s| *s == a.symbol))
                    .map(|(a, actual)| views::orders::algo(a, actual))
                    .collect(),
            ))
        })
    }
}

/// `DELETE /fapi/v1/algoOpenOrders`: every waiting algo order of a symbol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CancelAllAlgos {
    symbol: String,
}

impl Request for CancelAllAlgos {
    fn parse(a: &Args<'_>) -> Result<Self, ApiError> {
        known_symbol(a).map(|symbol| Self { symbol })
    }

    fn apply(self, app: &App, account: &str, now: i64) -> Result<Value, ApiError> {
        app.with_exchange(|ex| ex.cancel_all_algos(account, &self.symbol, now))?;
        Ok(views::orders::cancel_all_done())
    }
}
