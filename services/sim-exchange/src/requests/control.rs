//! The test control API (`/sim/…`): step the replay, read the state and the book, set a mark
//! price, read or set faults and rate limits, drop WebSockets, expire listenKeys, write the
//! snapshot. Parameters come from the query; faults and limits are a JSON body.

use serde_json::{Value, json};

use super::{Args, Plain, Request};
use crate::app::{App, lock};
use crate::config::{Faults, Limits};
use crate::error::ApiError;
use crate::exchange::AutoClose;
use crate::exchange::sides::PosSide;
use crate::views;

/// The JSON body of a settings request (`what`: its name in the error).
fn json_body<T: serde::de::DeserializeOwned>(a: &Args<'_>, what: &str) -> Result<T, ApiError> {
    serde_json::from_slice(a.body).map_err(|e| ApiError::bad(-1130, format!("invalid {what}: {e}")))
}

/// `POST /sim/step?candles=N[&symbols=A,B]`: close N more candles on every symbol (or only
/// on those named).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Step {
    candles: usize,
    only: Option<Vec<String>>,
}

impl Request for Step {
    fn parse(a: &Args<'_>) -> Result<Self, ApiError> {
        let p = a.params;
        let candles = p.count("candles", 1, 1_000_000)?;
        let only: Option<Vec<String>> = p
            .get("symbols")
            .map(|l| l.split(',').map(str::to_owned).collect());
        if let Some(only) = &only
            && let Some(unknown) = only.iter().find(|s| a.instruments.get(s).is_err())
        {
            return Err(ApiError::bad(-1121, format!("Invalid symbol {unknown}.")));
        }
        Ok(Self { candles, only })
    }

    fn apply(self, app: &App, _: &str, now: i64) -> Result<Value, ApiError> {
        let moved = app.with_exchange(|ex| {
            (0..self.candles)
                .map(|_| ex.step_symbols(now, self.only.as_deref()))
                .sum::<usize>()
        });
        let state = app.read(|ex| views::control::state(ex, &app.fault_counts, now));
        Ok(json!({"stepped": self.candles, "symbolSteps": moved, "state": state}))
    }
}

/// `GET /sim/state`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SimState;

impl Plain for SimState {
    fn answer(app: &App, _: &str, now: i64) -> Result<Value, ApiError> {
        Ok(app.read(|ex| views::control::state(ex, &app.fault_counts, now)))
    }
}

/// `GET /sim/book`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SimBook;

impl Plain for SimBook {
    fn answer(app: &App, _: &str, _: i64) -> Result<Value, ApiError> {
        Ok(app.read(views::control::book))
    }
}

/// `POST /sim/mark?symbol=S&price=P`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SetMark {
    symbol: String,
    price: qt_events::Decimal,
}

impl Request for SetMark {
    fn parse(a: &Args<'_>) -> Result<Self, ApiError> {
        Ok(Self {
            symbol: a.params.required("symbol")?.to_string(),
            price: a.params.required_decimal("price")?,
        })
    }

    fn apply(self, app: &App, _: &str, now: i64) -> Result<Value, ApiError> {
        app.with_exchange(|ex| ex.set_mark(&self.symbol, self.price, now))?;
        Ok(json!({"symbol": self.symbol, "markPrice": crate::wire::d(self.price)}))
    }
}

/// `GET /sim/faults`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct GetFaults;

impl Plain for GetFaults {
    fn answer(app: &App, _: &str, _: i64) -> Result<Value, ApiError> {
        Ok(serde_json::to_value(&*lock(&app.faults)).unwrap_or(Value::Null))
    }
}

/// `POST /sim/faults` with the settings as JSON (fields left out are 0).
#[derive(Debug, Clone)]
pub(crate) struct SetFaults(Faults);

impl Request for SetFaults {
    fn parse(a: &Args<'_>) -> Result<Self, ApiError> {
        json_body(a, "faults").map(Self)
    }

    fn apply(self, app: &App, _: &str, _: i64) -> Result<Value, ApiError> {
        *lock(&app.faults) = self.0.clone();
        Ok(serde_json::to_value(self.0).unwrap_or(Value::Null))
    }
}

/// `GET /sim/limits`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct GetLimits;

impl Plain for GetLimits {
    fn answer(app: &App, _: &str, _: i64) -> Result<Value, ApiError> {
        Ok(serde_json::to_value(app.limits.get()).unwrap_or(Value::Null))
    }
}

/// `POST /sim/limits` with the limits as JSON; the counters start again.
#[derive(Debug, Clone)]
pub(crate) struct SetLimits(Limits);

impl Request for SetLimits {
    fn parse(a: &Args<'_>) -> Result<Self, ApiError> {
        json_body(a, "limits").map(Self)
    }

    fn apply(self, app: &App, _: &str, _: i64) -> Result<Value, ApiError> {
        app.limits.set(self.0);
        Ok(serde_json::to_value(self.0).unwrap_or(Value::Null))
    }
}

/// `POST /sim/ws/drop`: drop every WebSocket without a close frame.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct DropWebSockets;

impl Plain for DropWebSockets {
    fn answer(app: &App, _: &str, _: i64) -> Result<Value, ApiError> {
        app.drop_ws.send_modify(|g| *g += 1);
        Ok(json!({"dropped": true}))
    }
}

/// `POST /sim/listenKey/expire`: expire every listenKey.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ExpireListenKeys;

impl Plain for ExpireListenKeys {
    fn answer(app: &App, _: &str, _: i64) -> Result<Value, ApiError> {
        let n = app.with_exchange(crate::exchange::Exchange::expire_listen_keys);
        app.mark_dirty();
        Ok(json!({"expired": n}))
    }
}

/// `POST /sim/snapshot`: write the state file now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SaveSnapshot;

impl Plain for SaveSnapshot {
    fn answer(app: &App, _: &str, _: i64) -> Result<Value, ApiError> {
        app.save_snapshot()
            .map(|()| json!({"saved": true}))
            .map_err(|e| ApiError::new(500, -1000, e.to_string()))
    }
}

/// `POST /sim/autoclose?symbol=&kind=adl|settlement[&quantity=][&apiKey=]`: the exchange
/// closes (part of) a position on its own, as an auto-deleveraging (`adl_autoclose`) or a
/// settlement (`settlement_autoclose-…`) does on Binance; the whole position when no quantity
/// is sent. `apiKey` names the account (it may be left out when the simulator has one). A
/// liquidation comes from the margin check itself: move the mark with `/sim/mark`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AutoCloseRequest {
    symbol: String,
    kind: AutoClose,
    qty: Option<qt_events::Decimal>,
    /// `positionSide` (hedge mode): the leg to close; else the symbol's first open one.
    side: Option<PosSide>,
    api_key: Option<String>,
}

impl Request for AutoCloseRequest {
    fn parse(a: &Args<'_>) -> Result<Self, ApiError> {
        let symbol = a.params.required("symbol")?;
        a.instruments.get(symbol)?;
        let kind = match a.params.required("kind")? {
            "adl" => AutoClose::Adl,
            "settlement" => AutoClose::Settlement,
            _ => return Err(ApiError::invalid("kind")),
        };
        Ok(Self {
            symbol: symbol.to_string(),
            kind,
            qty: a.params.decimal("quantity")?,
            side: super::orders::position_side(a.params)?,
            api_key: a.params.get("apiKey").map(str::to_owned),
        })
    }

    fn apply(self, app: &App, _: &str, now: i64) -> Result<Value, ApiError> {
        let id = app.with_exchange(|ex| {
            let key = match self.api_key.clone() {
                Some(k) => k,
                None => {
                    let keys: Vec<&String> = ex.accounts().map(|(k, _)| k).collect();
                    match keys.as_slice() {
                        [only] => (*only).clone(),
                        _ => return Err(ApiError::mandatory("apiKey")),
                    }
                }
            };
            ex.auto_close(&key, &self.symbol, self.side, self.kind, self.qty, now)
        })?;
        app.mark_dirty();
        Ok(json!({"symbol": self.symbol, "orderId": id}))
    }
}
