//! The user data stream's listenKey: `POST` (create, or return the live one), `PUT` (keep
//! alive), `DELETE` (close) `/fapi/v1/listenKey`.

use serde_json::{Value, json};

use super::{Args, Request};
use crate::app::App;
use crate::error::ApiError;

/// `listenKey`, optional: which of the account's keys is meant.
fn named(a: &Args<'_>) -> Option<String> {
    a.params.get("listenKey").map(str::to_string)
}

/// A fresh key for `POST`. Every listenKey request draws one, so that the seeded random
/// sequence shared with fault injection depends only on the requests made.
fn draw(app: &App) -> String {
    let fresh = app.new_listen_key();
    app.mark_dirty();
    fresh
}

/// `POST /fapi/v1/listenKey`: the account's live key (its expiry extended), else a new one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StartListenKey(Option<String>);

impl Request for StartListenKey {
    fn parse(a: &Args<'_>) -> Result<Self, ApiError> {
        Ok(Self(named(a)))
    }

    fn apply(self, app: &App, account: &str, now: i64) -> Result<Value, ApiError> {
        let fresh = draw(app);
        let ttl = app.listen_key_ttl_ms;
        app.with_exchange(|ex| {
            let key = ex
                .live_listen_key(account, self.0.as_deref(), now)
                .unwrap_or(fresh);
            ex.put_listen_key(&key, account, now + ttl, Some(now));
            Ok(json!({"listenKey": key}))
        })
    }
}

/// `PUT /fapi/v1/listenKey`: extend the live key; `-1125` when there is none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KeepListenKey(Option<String>);

impl Request for KeepListenKey {
    fn parse(a: &Args<'_>) -> Result<Self, ApiError> {
        Ok(Self(named(a)))
    }

    fn apply(self, app: &App, account: &str, now: i64) -> Result<Value, ApiError> {
        draw(app);
        let ttl = app.listen_key_ttl_ms;
        app.with_exchange(
            |ex| match ex.live_listen_key(account, self.0.as_deref(), now) {
                Some(key) => {
                    ex.put_listen_key(&key, account, now + ttl, None);
                    Ok(json!({"listenKey": key}))
                }
                None => Err(ApiError::bad(-1125, "This listenKey does not exist.")),
            },
        )
    }
}

/// `DELETE /fapi/v1/listenKey`: close the live key, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CloseListenKey(Option<String>);

impl Request for CloseListenKey {
    fn parse(a: &Args<'_>) -> Result<Self, ApiError> {
        Ok(Self(named(a)))
    }

    fn apply(self, app: &App, account: &str, now: i64) -> Result<Value, ApiError> {
        draw(app);
        app.with_exchange(|ex| {
            if let Some(key) = ex.live_listen_key(account, self.0.as_deref(), now) {
                ex.remove_listen_key(&key);
            }
            Ok(json!({}))
        })
    }
}
