//! The requests of the exchange API and of the test control API, one type each (mini-redis'
//! commands): [`Request::parse`] reads it once from the parameters and the fixed list of
//! instruments, answering Binance's error for the first thing wrong, in Binance's order;
//! [`Request::apply`] runs it on the exchange (what depends on the state: balances, open
//! orders, prices) and renders the answer with `views`.

pub(crate) mod account;
pub(crate) mod algos;
pub(crate) mod control;
pub(crate) mod futures_data;
pub(crate) mod listen_key;
pub(crate) mod market_data;
pub(crate) mod orders;
#[cfg(test)]
mod tests;

use serde_json::Value;

use crate::app::App;
use crate::call::Call;
use crate::error::ApiError;
use crate::market::Instruments;
use crate::params::Params;

/// What a request is read from.
pub(crate) struct Args<'a> {
    pub params: &'a Params,
    /// The body as sent (the control API's JSON settings).
    pub body: &'a [u8],
    /// The served symbols and their filters (fixed at start).
    pub instruments: &'a Instruments,
}

/// One request.
pub(crate) trait Request: Sized {
    /// Read the request; the error is Binance's answer to the first parameter wrong.
    fn parse(args: &Args<'_>) -> Result<Self, ApiError>;
    /// Run it for `account` (empty for public requests) at server time `now`.
    fn apply(self, app: &App, account: &str, now: i64) -> Result<Value, ApiError>;
}

/// The route table's handler of request type `R`.
pub(crate) fn run<R: Request>(app: &App, call: &Call) -> Result<Value, ApiError> {
    let args = Args {
        params: &call.params,
        body: &call.body,
        instruments: &app.instruments,
    };
    R::parse(&args)?.apply(app, &call.account, call.now)
}

/// A request without parameters: only its answer.
pub(crate) trait Plain: Default {
    fn answer(app: &App, account: &str, now: i64) -> Result<Value, ApiError>;
}

impl<T: Plain> Request for T {
    fn parse(_: &Args<'_>) -> Result<Self, ApiError> {
        Ok(Self::default())
    }

    fn apply(self, app: &App, account: &str, now: i64) -> Result<Value, ApiError> {
        T::answer(app, account, now)
    }
}

/// `symbol`, required, of a served instrument.
pub(crate) fn known_symbol(a: &Args<'_>) -> Result<String, ApiError> {
    let symbol = a.params.required("symbol")?;
    a.instruments.get(symbol)?;
    Ok(symbol.to_string())
}

/// `symbol`, optional, of a served instrument when sent.
pub(crate) fn optional_symbol(a: &Args<'_>) -> Result<Option<String>, ApiError> {
    let symbol = a.params.get("symbol");
    if let Some(s) = symbol {
        a.instruments.get(s)?;
    }
    Ok(symbol.map(str::to_string))
}
