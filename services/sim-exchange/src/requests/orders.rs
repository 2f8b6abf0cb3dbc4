//! Plain-order requests: `order` (POST/GET/DELETE), `batchOrders` (POST/DELETE),
//! `openOrder`, `openOrders`, `allOrders`, `allOpenOrders`, `userTrades`; and the symbol
//! filters (LOT_SIZE, PRICE_FILTER) that order parameters must pass.

use qt_events::Decimal;
use qt_matching::TimeInForce;
use serde_json::Value;

use super::{Args, Request, known_symbol, optional_symbol};
use crate::app::App;
use crate::error::ApiError;
use crate::exchange::book::OrdType;
use crate::exchange::sides::PosSide;
use crate::exchange::{MAX_PRICE, OrderRef, OrderTicket};
use crate::market::SymbolSpec;
use crate::params::{Params, check_client_id};
use crate::views;

fn step_ok(v: Decimal, step: Decimal) -> bool {
    step.is_zero() || (v % step).is_zero()
}

/// LOT_SIZE: positive, within the precision, a multiple of the step, within min and max.
pub(crate) fn check_qty(spec: &SymbolSpec, q: Decimal) -> Result<(), ApiError> {
    if q <= Decimal::ZERO {
        return Err(ApiError::bad(-4003, "Quantity less than or equal to zero."));
    }
    if q.normalize().scale() > spec.quantity_precision() {
        return Err(ApiError::bad(
            -1111,
            "Precision is over the maximum defined for this asset.",
        ));
    }
    if !step_ok(q, spec.step_size) {
        return Err(ApiError::bad(-4023, "Quantity not increased by step size."));
    }
    if q < spec.min_qty {
        return Err(ApiError::bad(-4003, "Quantity less than or equal to zero."));
    }
    if q > spec.max_qty {
        return Err(ApiError::bad(-4005, "Quantity greater than max quantity."));
    }
    Ok(())
}

/// PRICE_FILTER for the price called `name`: positive, at most the max price, within the
/// precision, a multiple of the tick.
pub(crate) fn check_price(spec: &SymbolSpec, name: &str, p: Decimal) -> Result<(), ApiError> {
    if p <= Decimal::ZERO {
        return Err(ApiError::bad(-4001, format!("{name} less than 0.")));
    }
    if p > MAX_PRICE {
        return Err(ApiError::bad(
            -4002,
            format!("{name} greater than max price."),
        ));
    }
    if p.normalize().scale() > spec.price_precision() {
        return Err(ApiError::bad(
            -1111,
            "Precision is over the maximum defined for this asset.",
        ));
    }
    if !step_ok(p, spec.tick_size) {
        return Err(ApiError::bad(-4014, "Price not increased by tick size."));
    }
    Ok(())
}

/// `positionSide` as sent (`BOTH`, `LONG`, `SHORT`); whether it fits the account's position
/// mode is the exchange's check when the order is placed.
pub(crate) fn position_side(p: &Params) -> Result<Option<PosSide>, ApiError> {
    p.get("positionSide")
        .map(|s| PosSide::parse(s).ok_or_else(|| ApiError::invalid("positionSide")))
        .transpose()
}

pub(crate) fn parse_tif(s: &str) -> Result<TimeInForce, ApiError> {
    match s {
        "GTC" => Ok(TimeInForce::Gtc),
        "IOC" => Ok(TimeInForce::Ioc),
        "FOK" => Ok(TimeInForce::Fok),
        "GTX" => Ok(TimeInForce::Gtx),
        _ => Err(ApiError::bad(-1115, "Invalid timeInForce.")),
    }
}

/// `limit` clamped to 1–1000, default 500 (`allOrders`, `userTrades`).
fn clamped_limit(p: &Params) -> Result<usize, ApiError> {
    Ok(usize::try_from(p.int("limit")?.unwrap_or(500).clamp(1, 1000)).unwrap_or(500))
}

/// `symbol` (required) and the order it names by `orderId` or `origClientOrderId`.
fn order_ref(a: &Args<'_>) -> Result<(String, OrderRef), ApiError> {
    let p = a.params;
    let symbol = p.required("symbol")?;
    a.instruments.get(symbol)?;
    let by = if let Some(id) = p.int("orderId")? {
        OrderRef::Id(id)
    } else if let Some(c) = p.get("origClientOrderId") {
        OrderRef::Client(c.to_string())
    } else {
        return Err(ApiError::bad(
            -1102,
            "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!",
        ));
    };
    Ok((symbol.to_string(), by))
}

// ------------------------------------------------------------------------------- requests

/// `POST /fapi/v1/order`: MARKET or LIMIT.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct NewOrder {
    pub ticket: OrderTicket,
    /// `newOrderRespType=RESULT`: answer the order after its first fill (else as accepted).
    pub result: bool,
}

impl Request for NewOrder {
    fn parse(a: &Args<'_>) -> Result<Self, ApiError> {
        let p = a.params;
        let symbol = p.required("symbol")?;
        let spec = a.instruments.get(symbol)?;
        let side = p.side()?;
        let typ = OrdType::parse(p.required("type")?)
            .ok_or_else(|| ApiError::bad(-1116, "Invalid orderType."))?;
        if typ.is_conditional() {
            return Err(ApiError::bad(
                -4120,
                "Order type not supported for this endpoint. Please use the Algo Order API endpoints instead.",
            ));
        }
        let position_side = position_side(p)?;
        if p.bool("closePosition")? {
            return Err(ApiError::not_required("closePosition"));
        }
        let reduce_only = p.bool("reduceOnly")?;
        let qty = p.required_decimal("quantity")?;
        check_qty(spec, qty)?;
        let (price, tif) = match typ {
            OrdType::Limit => {
                let price = p.required_decimal("price")?;
                check_price(spec, "Price", price)?;
                (Some(price), parse_tif(p.required("timeInForce")?)?)
            }
            _ => {
                if p.has("price") {
                    return Err(ApiError::not_required("price"));
                }
                (None, TimeInForce::Gtc)
            }
        };
        let result = match p.get("newOrderRespType") {
            None | Some("ACK") => false,
            Some("RESULT") => true,
            Some(_) => return Err(ApiError::invalid("newOrderRespType")),
        };
        let client_id = match p.get("newClientOrderId") {
            Some(c) => {
                check_client_id("newClientOrderId", c)?;
                Some(c.to_string())
            }
            None => None,
        };
        Ok(Self {
            ticket: OrderTicket {
                symbol: symbol.to_string(),
                side,
                typ,
                qty,
                price,
                tif,
                reduce_only,
                position_side,
                client_id,
            },
            result,
        })
    }

    fn apply(self, app: &App, account: &str, now: i64) -> Result<Value, ApiError> {
        app.with_exchange(|ex| {
            let (id, accepted) = ex.place_order(account, &self.ticket, now)?;
            let shown = if self.result {
                ex.order(account, id).unwrap_or(&accepted)
            } else {
                &accepted
            };
            Ok(views::orders::order(shown))
        })
    }
}

const QUERY: u8 = 0;
const QUERY_OPEN: u8 = 1;
const CANCEL: u8 = 2;

/// A request about one order of a symbol, named by `orderId` or `origClientOrderId`:
/// [`QueryOrder`], [`QueryOpenOrder`] or [`CancelOrder`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OneOrder<const OP: u8> {
    symbol: String,
    by: OrderRef,
}

/// `GET /fapi/v1/order`.
pub(crate) type QueryOrder = OneOrder<QUERY>;
/// `GET /fapi/v1/openOrder`: as `order`, but only while it is open.
pub(crate) type QueryOpenOrder = OneOrder<QUERY_OPEN>;
/// `DELETE /fapi/v1/order`.
pub(crate) type CancelOrder = OneOrder<CANCEL>;

impl<const OP: u8> Request for OneOrder<OP> {
    fn parse(a: &Args<'_>) -> Result<Self, ApiError> {
        let (symbol, by) = order_ref(a)?;
        Ok(Self { symbol, by })
    }

    fn apply(self, app: &App, account: &str, now: i64) -> Result<Value, ApiError> {
        if OP == CANCEL {
            return app.with_exchange(|ex| {
                ex.cancel_order(account, &self.symbol, &self.by, now)
                    .map(views::orders::order)
            });
        }
        app.read(|ex| {
            let id = ex.find_order(account, &self.symbol, &self.by)?;
            if OP == QUERY_OPEN && !ex.account(account)?.open_orders.contains(&id) {
                return Err(ApiError::no_such_order());
            }
            ex.order(account, id)
                .map(views::orders::order)
                .ok_or_else(ApiError::no_such_order)
        })
    }
}

/// `GET /fapi/v1/openOrders`: of one symbol or all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OpenOrders {
    symbol: Option<String>,
}

impl Request for OpenOrders {
    fn parse(a: &Args<'_>) -> Result<Self, ApiError> {
        optional_symbol(a).map(|symbol| Self { symbol })
    }

    fn apply(self, app: &App, account: &str, _now: i64) -> Result<Value, ApiError> {
        app.read(|ex| {
            let acc = ex.account(account)?;
            Ok(Value::Array(
                acc.open_orders
                    .iter()
                    .filter_map(|id| acc.orders.get(id))
                    .filter(|o| self.symbol.as_ref().is_none_or(|s| *s == o.symbol))
                    .map(views::orders::order)
                    .collect(),
            ))
        })
    }
}

/// `GET /fapi/v1/allOrders`: the last `limit` of a symbol, or the first from `orderId`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AllOrders {
    symbol: String,
    limit: usize,
    from: Option<u64>,
}

impl Request for AllOrders {
    fn parse(a: &Args<'_>) -> Result<Self, ApiError> {
        let symbol = known_symbol(a)?;
        let limit = clamped_limit(a.params)?;
        let from = a.params.int("orderId")?.and_then(|i| u64::try_from(i).ok());
        Ok(Self {
            symbol,
            limit,
            from,
        })
    }

    fn apply(self, app: &App, account: &str, _now: i64) -> Result<Value, ApiError> {
        app.read(|ex| {
            let acc = ex.account(account)?;
            let mut v: Vec<Value> = acc
                .orders
                .values()
                .filter(|o| o.symbol == self.symbol && self.from.is_none_or(|f| o.order_id >= f))
                .map(views::orders::order)
                .collect();
            if v.len() > self.limit {
                if self.from.is_some() {
                    v.truncate(self.limit);
                } else {
                    v.drain(..v.len() - self.limit);
                }
            }
            Ok(Value::Array(v))
        })
    }
}

/// `DELETE /fapi/v1/allOpenOrders`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CancelAll {
    symbol: String,
}

impl Request for CancelAll {
    fn parse(a: &Args<'_>) -> Result<Self, ApiError> {
        known_symbol(a).map(|symbol| Self { symbol })
    }

    fn apply(self, app: &App, account: &str, now: i64) -> Result<Value, ApiError> {
        app.with_exchange(|ex| ex.cancel_all(account, &self.symbol, now))?;
        Ok(views::orders::cancel_all_done())
    }
}

/// `GET /fapi/v1/userTrades`: the last `limit` of a symbol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UserTrades {
    symbol: String,
    limit: usize,
}

impl Request for UserTrades {
    fn parse(a: &Args<'_>) -> Result<Self, ApiError> {
        let symbol = known_symbol(a)?;
        let limit = clamped_limit(a.params)?;
        Ok(Self { symbol, limit })
    }

    fn apply(self, app: &App, account: &str, _now: i64) -> Result<Value, ApiError> {
        app.read(|ex| {
            let acc = ex.account(account)?;
            let mut v: Vec<Value> = acc
                .trades
                .iter()
                .filter(|t| t.symbol == self.symbol)
                .map(views::orders::trade)
                .collect();
            if v.len() > self.limit {
                v.drain(..v.len() - self.limit);
            }
            Ok(Value::Array(v))
        })
    }
}

/// An item of a batch: its request, or Binance's error for it (answered in its place).
type Item<R> = Result<R, ApiError>;

/// One item of a batch, read from its own parameters.
fn parse_item<R: Request>(a: &Args<'_>, pairs: Vec<(String, String)>) -> Item<R> {
    let params = Params::from_pairs(pairs);
    R::parse(&Args {
        params: &params,
        ..*a
    })
}

/// Apply each item in order: its answer, or its error in Binance's shape.
fn answer_each<R: Request>(items: Vec<Item<R>>, app: &App, account: &str, now: i64) -> Value {
    Value::Array(
        items
            .into_iter()
            .map(|item| {
                item.and_then(|r| r.apply(app, account, now))
                    .unwrap_or_else(|e| serde_json::json!({"code": e.code, "msg": e.msg}))
            })
            .collect(),
    )
}

/// `POST /fapi/v1/batchOrders`: up to 5 orders as a JSON list; each answer is the order or its
/// error, in input order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct BatchNew {
    orders: Vec<Item<NewOrder>>,
}

impl Request for BatchNew {
    fn parse(a: &Args<'_>) -> Result<Self, ApiError> {
        let raw = a.params.required("batchOrders")?;
        let list: Vec<serde_json::Map<String, Value>> =
            serde_json::from_str(raw).map_err(|_| ApiError::invalid("batchOrders"))?;
        if list.is_empty() || list.len() > 5 {
            return Err(ApiError::invalid("batchOrders"));
        }
        let orders = list
            .into_iter()
            .map(|obj| {
                let pairs = obj
                    .into_iter()
                    .map(|(k, v)| {
                        let v = match v {
                            Value::String(s) => s,
                            other => other.to_string(),
                        };
                        (k, v)
                    })
                    .collect();
                parse_item(a, pairs)
            })
            .collect();
        Ok(Self { orders })
    }

    fn apply(self, app: &App, account: &str, now: i64) -> Result<Value, ApiError> {
        Ok(answer_each(self.orders, app, account, now))
    }
}

/// `DELETE /fapi/v1/batchOrders`: `symbol` plus `orderIdList` or `origClientOrderIdList`
/// (JSON lists, at most 10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BatchCancel {
    cancels: Vec<Item<CancelOrder>>,
}

impl Request for BatchCancel {
    fn parse(a: &Args<'_>) -> Result<Self, ApiError> {
        let p = a.params;
        let symbol = p.required("symbol")?.to_string();
        let ids: Vec<(String, String)> = if let Some(raw) = p.get("orderIdList") {
            let v: Vec<i64> =
                serde_json::from_str(raw).map_err(|_| ApiError::invalid("orderIdList"))?;
            v.into_iter()
                .map(|i| ("orderId".to_string(), i.to_string()))
                .collect()
        } else if let Some(raw) = p.get("origClientOrderIdList") {
            let v: Vec<String> = serde_json::from_str(raw)
                .map_err(|_| ApiError::invalid("origClientOrderIdList"))?;
            v.into_iter()
                .map(|c| ("origClientOrderId".to_string(), c))
                .collect()
        } else {
            return Err(ApiError::mandatory("orderIdList"));
        };
        if ids.is_empty() || ids.len() > 10 {
            return Err(ApiError::invalid("orderIdList"));
        }
        let cancels = ids
            .into_iter()
            .map(|(k, v)| parse_item(a, vec![("symbol".into(), symbol.clone()), (k, v)]))
            .collect();
        Ok(Self { cancels })
    }

    fn apply(self, app: &App, account: &str, now: i64) -> Result<Value, ApiError> {
        Ok(answer_each(self.cancels, app, account, now))
    }
}
