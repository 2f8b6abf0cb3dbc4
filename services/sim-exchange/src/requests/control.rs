//! The test control API (`/sim/…`): step the replay, read the state and the book, set a mark
//! price, read or set faults and rate limits, drop WebSockets, expire listenKeys, write the
//! snapshot. Parameters come from the query; faults and limits are a JSON body.

use serde_json::{Value, json};

use super::{Args, Request};
use crate::app::{App, lock};
use crate::config::{Faults, Limits};
use crate::error::ApiError;
use crate::views;

/// `POST /sim/step?candles=N[&symbols=A,B]`: close N more candles on every symbol (or only
/// on those named).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Step {
    candles: i64,
    only: Option<Vec<String>>,
}

impl Request for Step {
    fn parse(a: &Args<'_>) -> Result<Self, ApiError> {
        let p = a.params;
        let candles = p.int("candles")?.unwrap_or(1);
        if !(1..=1_000_000).contains(&candles) {
            return Err(ApiError::invalid("candles"));
        }
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SimState;

impl Request for SimState {
    fn parse(_: &Args<'_>) -> Result<Self, ApiError> {
        Ok(Self)
    }

    fn apply(self, app: &App, _: &str, now: i64) -> Result<Value, ApiError> {
        Ok(app.read(|ex| views::control::state(ex, &app.fault_counts, now)))
    }
}

/// `GET /sim/book`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SimBook;

impl Request for SimBook {
    fn parse(_: &Args<'_>) -> Result<Self, ApiError> {
        Ok(Self)
    }

    fn apply(self, app: &App, _: &str, _: i64) -> Result<Value, ApiError> {
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
        Ok(json!({"symbol": self.symbol, "markPrice": views::d(self.price)}))
    }
}

/// `GET /sim/faults`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GetFaults;

impl Request for GetFaults {
    fn parse(_: &Args<'_>) -> Result<Self, ApiError> {
        Ok(Self)
    }

    fn apply(self, app: &App, _: &str, _: i64) -> Result<Value, ApiError> {
        Ok(serde_json::to_value(&*lock(&app.faults)).unwrap_or(Value::Null))
    }
}

/// `POST /sim/faults` with the settings as JSON (fields left out are 0).
#[derive(Debug, Clone)]
pub(crate) struct SetFaults(Faults);

impl Request for SetFaults {
    fn parse(a: &Args<'_>) -> Result<Self, ApiError> {
        serde_json::from_slice(a.body)
            .map(Self)
            .map_err(|e| ApiError::bad(-1130, format!("invalid faults: {e}")))
    }

    fn apply(self, app: &App, _: &str, _: i64) -> Result<Value, ApiError> {
        *lock(&app.faults) = self.0.clone();
        Ok(serde_json::to_value(self.0).unwrap_or(Value::Null))
    }
}

/// `GET /sim/limits`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GetLimits;

impl Request for GetLimits {
    fn parse(_: &Args<'_>) -> Result<Self, ApiError> {
        Ok(Self)
    }

    fn apply(self, app: &App, _: &str, _: i64) -> Result<Value, ApiError> {
        Ok(serde_json::to_value(app.limits.get()).unwrap_or(Value::Null))
    }
}

/// `POST /sim/limits` with the limits as JSON; the counters start again.
#[derive(Debug, Clone)]
pub(crate) struct SetLimits(Limits);

impl Request for SetLimits {
    fn parse(a: &Args<'_>) -> Result<Self, ApiError> {
        serde_json::from_slice(a.body)
            .map(Self)
            .map_err(|e| ApiError::bad(-1130, format!("invalid limits: {e}")))
    }

    fn apply(self, app: &App, _: &str, _: i64) -> Result<Value, ApiError> {
        app.limits.set(self.0);
        Ok(serde_json::to_value(self.0).unwrap_or(Value::Null))
    }
}

/// `POST /sim/ws/drop`: drop every WebSocket without a close frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DropWebSockets;

impl Request for DropWebSockets {
    fn parse(_: &Args<'_>) -> Result<Self, ApiError> {
        Ok(Self)
    }

    fn apply(self, app: &App, _: &str, _: i64) -> Result<Value, ApiError> {
        app.drop_ws.send_modify(|g| *g += 1);
        Ok(json!({"dropped": true}))
    }
}

/// `POST /sim/listenKey/expire`: expire every listenKey.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExpireListenKeys;

impl Request for ExpireListenKeys {
    fn parse(_: &Args<'_>) -> Result<Self, ApiError> {
        Ok(Self)
    }

    fn apply(self, app: &App, _: &str, _: i64) -> Result<Value, ApiError> {
        let n = app.with_exchange(crate::exchange::Exchange::expire_listen_keys);
        app.mark_dirty();
        Ok(json!({"expired": n}))
    }
}

/// `POST /sim/snapshot`: write the state file now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SaveSnapshot;

impl Request for SaveSnapshot {
    fn parse(_: &Args<'_>) -> Result<Self, ApiError> {
        Ok(Self)
    }

    fn apply(self, app: &App, _: &str, _: i64) -> Result<Value, ApiError> {
        app.save_snapshot()
            .map(|()| json!({"saved": true}))
            .map_err(|e| ApiError::new(500, -1000, e.to_string()))
    }
}
