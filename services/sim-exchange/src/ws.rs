//! WebSocket streams: market streams (`/market`, `/public`, legacy `/ws` and `/stream`) with
//! SUBSCRIBE / UNSUBSCRIBE, and the user data stream (`/private/ws?listenKey=…&events=…`).
//! The handlers are named in the route table (`routes.rs`); they read the app's channels.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;

use crate::app::{App, lock};
use crate::error::ApiError;
use crate::params::Params;

type AppState = Arc<App>;

#[derive(Debug, Clone)]
struct UserSub {
    listen_key: String,
    account: String,
    events: Option<HashSet<String>>,
}

#[derive(Debug, Clone, Default)]
struct Session {
    streams: HashSet<String>,
    combined: bool,
    user: Option<UserSub>,
}

fn user_sub(app: &App, key: &str, events: Option<&str>) -> Option<UserSub> {
    let now = app.now();
    let account = app.read(|ex| ex.listen_key_account(key, now).map(str::to_string))?;
    Some(UserSub {
        listen_key: key.to_string(),
        account,
        events: events.map(|s| {
            s.split('/')
                .filter(|x| !x.is_empty())
                .map(str::to_string)
                .collect()
        }),
    })
}

fn split_streams(app: &App, list: &str, session: &mut Session) {
    for s in list.split('/').filter(|s| !s.is_empty()) {
        if session.user.is_none()
            && let Some(u) = user_sub(app, s, None)
        {
            session.user = Some(u);
            continue;
        }
        session.streams.insert(s.to_string());
    }
}

pub(crate) async fn raw_root(State(app): State<AppState>, ws: WebSocketUpgrade) -> Response {
    upgrade(app, ws, Session::default())
}

pub(crate) async fn raw_streams(
    State(app): State<AppState>,
    Path(streams): Path<String>,
    ws: WebSocketUpgrade,
) -> Response {
    let mut s = Session::default();
    split_streams(&app, &streams, &mut s);
    upgrade(app, ws, s)
}

pub(crate) async fn combined(
    State(app): State<AppState>,
    RawQuery(q): RawQuery,
    ws: WebSocketUpgrade,
) -> Response {
    let p = Params::new(q.as_deref().unwrap_or(""), "");
    let mut s = Session {
        combined: true,
        ..Session::default()
    };
    if let Some(list) = p.get("streams") {
        split_streams(&app, list, &mut s);
    }
    upgrade(app, ws, s)
}

fn private(
    app: AppState,
    ws: WebSocketUpgrade,
    key: Option<&str>,
    events: Option<&str>,
    combined: bool,
) -> Response {
    let Some(user) = key.and_then(|k| user_sub(&app, k, events)) else {
        return ApiError::bad(-1125, "This listenKey does not exist.").into_response();
    };
    upgrade(
        app,
        ws,
        Session {
            combined,
            user: Some(user),
            ..Session::default()
        },
    )
}

pub(crate) async fn private_raw(
    State(app): State<AppState>,
    RawQuery(q): RawQuery,
    ws: WebSocketUpgrade,
) -> Response {
    let p = Params::new(q.as_deref().unwrap_or(""), "");
    private(app, ws, p.get("listenKey"), p.get("events"), false)
}

pub(crate) async fn private_path(
    State(app): State<AppState>,
    Path(key): Path<String>,
    RawQuery(q): RawQuery,
    ws: WebSocketUpgrade,
) -> Response {
    let p = Params::new(q.as_deref().unwrap_or(""), "");
    private(app, ws, Some(&key), p.get("events"), false)
}

pub(crate) async fn private_combined(
    State(app): State<AppState>,
    RawQuery(q): RawQuery,
    ws: WebSocketUpgrade,
) -> Response {
    let p = Params::new(q.as_deref().unwrap_or(""), "");
    let key = p.get("listenKey").or_else(|| p.get("streams"));
    private(app, ws, key, p.get("events"), true)
}

fn upgrade(app: AppState, ws: WebSocketUpgrade, session: Session) -> Response {
    ws.on_upgrade(move |socket| async move { run(app, socket, session).await })
}

fn wrap(combined: bool, stream: &str, json: &str) -> String {
    if combined {
        format!("{{\"stream\":\"{stream}\",\"data\":{json}}}")
    } else {
        json.to_string()
    }
}

/// Answer a SUBSCRIBE / UNSUBSCRIBE / LIST_SUBSCRIPTIONS request.
fn on_request(session: &mut Session, text: &str) -> String {
    let Ok(v) = serde_json::from_str::<Value>(text) else {
        return json!({"error": {"code": 3, "msg": "Invalid JSON: expected value at line 1 column 1"}}).to_string();
    };
    let id = v.get("id").cloned().unwrap_or(Value::Null);
    let params: Vec<String> = v
        .get("params")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    match v.get("method").and_then(Value::as_str) {
        Some("SUBSCRIBE") => {
            session.streams.extend(params);
            json!({"result": null, "id": id}).to_string()
        }
        Some("UNSUBSCRIBE") => {
            for p in &params {
                session.streams.remove(p);
            }
            json!({"result": null, "id": id}).to_string()
        }
        Some("LIST_SUBSCRIPTIONS") => {
            let mut s: Vec<&String> = session.streams.iter().collect();
            s.sort();
            json!({"result": s, "id": id}).to_string()
        }
        Some("SET_PROPERTY" | "GET_PROPERTY") => json!({"result": null, "id": id}).to_string(),
        _ => json!({"error": {"code": 2, "msg": "Invalid request: unknown method"}, "id": id})
            .to_string(),
    }
}

async fn run(app: AppState, mut socket: WebSocket, mut session: Session) {
    let mut market_rx = app.market_tx.subscribe();
    let mut user_rx = app.user_tx.subscribe();
    let mut drop_rx = app.drop_ws.subscribe();
    drop_rx.mark_unchanged();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut ticks: u64 = 0;
    let drop_after = lock(&app.faults).ws_drop_after_ms;
    let fault_drop = tokio::time::sleep(if drop_after > 0 {
        Duration::from_millis(drop_after)
    } else {
        Duration::from_secs(365 * 86_400)
    });
    tokio::pin!(fault_drop);
    loop {
        tokio::select! {
            // Dropped without a close frame.
            _ = drop_rx.changed() => {
                app.fault_counts.ws_drops.fetch_add(1, Ordering::Relaxed);
                return;
            }
            () = &mut fault_drop => {
                app.fault_counts.ws_drops.fetch_add(1, Ordering::Relaxed);
                return;
            }
            msg = socket.recv() => match msg {
                Some(Ok(Message::Text(t))) => {
                    let reply = on_request(&mut session, t.as_str());
                    if socket.send(Message::Text(reply.into())).await.is_err() {
                        return;
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            },
            m = market_rx.recv() => match m {
                Ok(m) => {
                    if session.streams.contains(&m.stream)
                        && socket.send(Message::Text(wrap(session.combined, &m.stream, &m.json).into())).await.is_err()
                    {
                        return;
                    }
                }
                Err(RecvError::Lagged(n)) => tracing::warn!(skipped = n, "market stream subscriber lagged"),
                Err(RecvError::Closed) => return,
            },
            u = user_rx.recv() => match u {
                Ok(u) => {
                    if let Some(sub) = &session.user
                        && sub.account == u.account
                        && sub.events.as_ref().is_none_or(|ev| ev.contains(u.kind))
                        && socket.send(Message::Text(wrap(session.combined, &sub.listen_key, &u.json).into())).await.is_err()
                    {
                        return;
                    }
                }
                Err(RecvError::Lagged(n)) => tracing::warn!(skipped = n, "user stream subscriber lagged"),
                Err(RecvError::Closed) => return,
            },
            _ = tick.tick() => {
                ticks += 1;
                if ticks.is_multiple_of(180) && socket.send(Message::Ping(Vec::new().into())).await.is_err() {
                    return;
                }
                if let Some(sub) = &session.user {
                    let now = app.now();
                    let alive = app.read(|ex| ex.listen_key_account(&sub.listen_key, now).is_some());
                    if !alive {
                        let ev = json!({"e": "listenKeyExpired", "E": now, "listenKey": sub.listen_key}).to_string();
                        let _ = socket.send(Message::Text(wrap(session.combined, &sub.listen_key, &ev).into())).await;
                        let _ = socket.send(Message::Close(None)).await;
                        return;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn subscribe_and_list_follow_binance_replies() {
        let mut s = Session::default();
        let r = on_request(
            &mut s,
            r#"{"method":"SUBSCRIBE","params":["btcusdt@kline_5m"],"id":7}"#,
        );
        assert_eq!(r, r#"{"id":7,"result":null}"#);
        let r = on_request(&mut s, r#"{"method":"LIST_SUBSCRIPTIONS","id":8}"#);
        assert!(r.contains("btcusdt@kline_5m"));
        on_request(
            &mut s,
            r#"{"method":"UNSUBSCRIBE","params":["btcusdt@kline_5m"],"id":9}"#,
        );
        assert!(s.streams.is_empty());
    }

    proptest! {
        #[test]
        fn any_websocket_text_gets_an_answer_without_panicking(t in "\\PC{0,300}") {
            let mut s = Session::default();
            let r = on_request(&mut s, &t);
            prop_assert!(!r.is_empty());
        }
    }
}
