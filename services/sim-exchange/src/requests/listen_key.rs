//! The user data stream's listenKey: `POST` (create, or return the live one), `PUT` (keep
//! alive), `DELETE` (close) `/fapi/v1/listenKey`.

use serde_json::{Value, json};

use super::{Args, Request};
use crate::app::App;
use crate::error::ApiError;

const START: u8 = 0;
const KEEP: u8 = 1;
const CLOSE: u8 = 2;

/// A listenKey request; `listenKey`, optional, names which of the account's keys is meant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ListenKeyRequest<const OP: u8>(Option<String>);

/// `POST /fapi/v1/listenKey`: the account's live key (its expiry extended), else a new one.
pub(crate) type StartListenKey = ListenKeyRequest<START>;
/// `PUT /fapi/v1/listenKey`: extend the live key; `-1125` when there is none.
pub(crate) type KeepListenKey = ListenKeyRequest<KEEP>;
/// `DELETE /fapi/v1/listenKey`: close the live key, if any.
pub(crate) type CloseListenKey = ListenKeyRequest<CLOSE>;

impl<const OP: u8> Request for ListenKeyRequest<OP> {
    fn parse(a: &Args<'_>) -> Result<Self, ApiError> {
        Ok(Self(a.params.get("listenKey").map(str::to_string)))
    }

    fn apply(self, app: &App, account: &str, now: i64) -> Result<Value, ApiError> {
        // Every listenKey request draws a fresh key (only a new POST uses it), so that the
        // seeded random sequence shared with fault injection depends only on the requests made.
        let fresh = app.new_listen_key();
        app.mark_dirty();
        let expires_at = now + app.listen_key_ttl_ms;
        app.with_exchange(|ex| {
            let live = ex.live_listen_key(account, self.0.as_deref(), now);
            match (OP, live) {
                (START, live) => {
                    let key = live.unwrap_or(fresh);
                    ex.put_listen_key(&key, account, expires_at, Some(now));
                    Ok(json!({"listenKey": key}))
                }
                (KEEP, Some(key)) => {
                    ex.put_listen_key(&key, account, expires_at, None);
                    Ok(json!({"listenKey": key}))
                }
                (KEEP, None) => Err(ApiError::bad(-1125, "This listenKey does not exist.")),
                (_, live) => {
                    if let Some(key) = live {
                        ex.remove_listen_key(&key);
                    }
                    Ok(json!({}))
                }
            }
        })
    }
}
