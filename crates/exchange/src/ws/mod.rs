//! WebSocket streams: market data and the user data stream, as typed events on a tokio channel.
//!
//! Each connection is one task. It answers pings, and when the connection drops (or fails to
//! open) it reconnects with a doubling backoff and subscribes again to the same streams. It also
//! closes and reopens the connection on its own after [`WsConfig::max_connection_age_ms`], before
//! Binance's 24 h cut. Every (re)connection is announced with a `Connected` event, so a consumer
//! knows that updates may have been missed and can reconcile over REST.
//!
//! URLs (Binance's 2026 layout, base from [`ExchangeConfig::ws_url`]):
//! - market streams: `{ws}/market/stream?streams=btcusdt@kline_5m/btcusdt@markPrice@1s/…`
//!   (kline, markPrice, aggTrade) and `{ws}/public/stream?streams=btcusdt@bookTicker` —
//!   subscription is part of the URL, so a reconnect resubscribes by construction; messages may
//!   come wrapped as `{"stream":…,"data":…}` or bare.
//! - user data: `{ws}/private/ws?listenKey=<key>&events=ORDER_TRADE_UPDATE/ACCOUNT_UPDATE/ALGO_UPDATE`.
//!   The key is created over REST before each connection, kept alive every
//!   [`WsConfig::listen_key_keepalive_ms`], and re-created when the keepalive answers `-1125` or
//!   the stream says `listenKeyExpired`.
//!
//! A stream task never logs a listenKey or a URL that carries one.

mod market;
mod user;

pub use market::*;
pub use user::*;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;

use crate::config::WsConfig;

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Stops the stream tasks when dropped or shut down.
#[derive(Debug)]
pub struct StreamHandle {
    cancel: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl StreamHandle {
    /// Cancels the tasks and waits for them to close their connections.
    pub async fn shutdown(mut self) {
        self.cancel.cancel();
        for t in self.tasks.drain(..) {
            let _ = t.await;
        }
    }
}

impl Drop for StreamHandle {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// Hands `ev` to the receiver; false when the receiver is gone or the stream is cancelled
/// (a full channel whose reader has stopped must not hold a shutdown forever).
async fn deliver<T>(tx: &mpsc::Sender<T>, ev: T, cancel: &CancellationToken) -> bool {
    tokio::select! {
        () = cancel.cancelled() => false,
        r = tx.send(ev) => r.is_ok(),
    }
}

/// Unwraps `{"stream":…,"data":…}` if present.
fn payload(text: &str) -> Option<serde_json::Value> {
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    match v {
        serde_json::Value::Object(mut m) if m.contains_key("data") && m.contains_key("stream") => {
            m.remove("data")
        }
        other => Some(other),
    }
}

enum Frame {
    Text(String),
    Closed(String),
}

/// Reads the next text frame, answering pings on the way.
async fn read_frame(ws: &mut Ws) -> Frame {
    loop {
        match ws.next().await {
            None => return Frame::Closed("stream ended".into()),
            Some(Err(e)) => return Frame::Closed(e.to_string()),
            Some(Ok(Message::Text(t))) => return Frame::Text(t.as_str().to_owned()),
            Some(Ok(Message::Binary(b))) => {
                if let Ok(s) = std::str::from_utf8(&b) {
                    return Frame::Text(s.to_owned());
                }
            }
            Some(Ok(Message::Ping(_))) => {
                // tungstenite has queued the pong (same payload); flushing sends it now.
                if let Err(e) = ws.flush().await {
                    return Frame::Closed(format!("sending pong: {e}"));
                }
            }
            Some(Ok(Message::Close(f))) => {
                return Frame::Closed(format!(
                    "closed by server ({})",
                    f.map(|f| f.code.to_string()).unwrap_or_default()
                ));
            }
            Some(Ok(_)) => {}
        }
    }
}

fn backoff(cfg: &WsConfig, attempt: u32) -> Duration {
    let ms = cfg
        .reconnect_backoff_min_ms
        .saturating_mul(1u64 << attempt.min(16))
        .min(cfg.reconnect_backoff_max_ms);
    Duration::from_millis(ms)
}

/// Sleeps the backoff unless cancelled; false when cancelled.
async fn wait_backoff(cfg: &WsConfig, attempt: u32, cancel: &CancellationToken) -> bool {
    tokio::select! {
        _ = cancel.cancelled() => false,
        _ = tokio::time::sleep(backoff(cfg, attempt)) => true,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::types::PositionSideWire;
    use crate::vocab::AlgoStatus;
    use rust_decimal_macros::dec;

    #[test]
    fn documented_market_messages_decode_bare_and_wrapped() {
        let k = r#"{"e":"kline","E":1638747660000,"s":"BTCUSDT","k":{"t":1638747660000,"T":1638747719999,"s":"BTCUSDT","i":"1m","f":100,"L":200,"o":"0.0010","c":"0.0020","h":"0.0025","l":"0.0015","v":"1000","n":100,"x":true,"q":"1.0000","V":"500","Q":"0.500","B":"123456"}}"#;
        let wrapped = format!(r#"{{"stream":"btcusdt@kline_1m","data":{k}}}"#);
        for text in [k, wrapped.as_str()] {
            let Some(MarketEvent::Kline(ev)) = parse_market_message(text) else {
                panic!("not a kline: {text}")
            };
            let c = ev.to_candle_closed().unwrap();
            assert_eq!(c.close, dec!(0.0020));
            assert_eq!(c.interval, "1m");
            assert_eq!(c.trades, 100);
        }
        let m = parse_market_message(
            r#"{"e":"markPriceUpdate","E":1562305380000,"s":"BTCUSDT","p":"11794.15000000","ap":"11794.15000000","i":"11784.62659091","P":"11784.25641265","r":"0.00038167","T":1562306400000}"#,
        );
        assert!(matches!(m, Some(MarketEvent::MarkPrice(ref e)) if e.mark_price == dec!(11794.15)));
        let a = parse_market_message(
            r#"{"e":"aggTrade","E":123456789,"s":"BTCUSDT","a":5933014,"p":"0.001","q":"100","nq":"100","f":100,"l":105,"T":123456785,"m":true}"#,
        );
        assert!(
            matches!(a, Some(MarketEvent::AggTrade(ref e)) if e.qty == dec!(100) && e.buyer_is_maker)
        );
        let b = parse_market_message(
            r#"{"e":"bookTicker","u":400900217,"E":1568014460893,"T":1568014460891,"s":"BNBUSDT","b":"25.35190000","B":"31.21000000","a":"25.36520000","A":"40.66000000"}"#,
        );
        assert!(matches!(b, Some(MarketEvent::BookTicker(ref e)) if e.ask_price == dec!(25.3652)));
        assert_eq!(parse_market_message(r#"{"result":null,"id":1}"#), None);
    }

    #[test]
    fn documented_user_events_decode() {
        let o = parse_user_message(
            r#"{"e":"ORDER_TRADE_UPDATE","E":1568879465651,"T":1568879465650,"o":{"s":"BTCUSDT","c":"TEST","S":"SELL","o":"TRAILING_STOP_MARKET","f":"GTC","q":"0.001","p":"0","ap":"0","sp":"7103.04","x":"NEW","X":"NEW","i":8886774,"l":"0","z":"0","L":"0","N":"USDT","n":"0","T":1568879465650,"t":0,"b":"0","a":"9.91","m":false,"R":false,"wt":"CONTRACT_PRICE","ot":"TRAILING_STOP_MARKET","ps":"LONG","cp":false,"AP":"7476.89","cr":"5.0","pP":false,"si":0,"ss":0,"rp":"0","V":"EXPIRE_TAKER","pm":"OPPONENT","gtd":0,"er":"0"}}"#,
        );
        let Some(UserEvent::OrderTradeUpdate(u)) = o else {
            panic!("{o:?}")
        };
        assert_eq!(u.order.client_order_id, "TEST");
        assert_eq!(u.order.stop_price, dec!(7103.04));
        assert_eq!(u.order.position_side, PositionSideWire::Long);
        let a = parse_user_message(
            r#"{"e":"ACCOUNT_UPDATE","E":1564745798939,"T":1564745798938,"a":{"m":"ORDER","B":[{"a":"USDT","wb":"122624.12345678","cw":"100.12345678","bc":"50.12345678"}],"P":[{"s":"BTCUSDT","pa":"0","ep":"0.00000","bep":"0","cr":"200","up":"0","mt":"isolated","iw":"0.00000000","ps":"BOTH"}]}}"#,
        );
        let Some(UserEvent::AccountUpdate(a)) = a else {
            panic!("{a:?}")
        };
        assert_eq!(a.data.balances[0].wallet_balance, dec!(122624.12345678));
        assert_eq!(a.data.positions[0].accumulated_realized, dec!(200));
        assert_eq!(a.data.reason, AccountUpdateReason::Order);
        // Funding on a cross position: the balance only, its `bc` the fee.
        let f = parse_user_message(
            r#"{"e":"ACCOUNT_UPDATE","E":1681804800008,"T":1681804800001,"a":{"m":"FUNDING_FEE","B":[{"a":"USDT","wb":"9999.975","cw":"9999.975","bc":"-0.025"}],"P":[]}}"#,
        );
        let Some(UserEvent::AccountUpdate(f)) = f else {
            panic!("{f:?}")
        };
        assert_eq!(f.data.reason, AccountUpdateReason::FundingFee);
        assert_eq!(f.data.balances[0].balance_change, dec!(-0.025));
        assert!(f.data.positions.is_empty());
        let u = parse_user_message(
            r#"{"e":"ACCOUNT_UPDATE","E":1,"T":1,"a":{"m":"SOMETHING_NEW","B":[]}}"#,
        );
        let Some(UserEvent::AccountUpdate(u)) = u else {
            panic!("{u:?}")
        };
        assert_eq!(
            u.data.reason,
            AccountUpdateReason::Unknown("SOMETHING_NEW".into())
        );
        assert_eq!(u.data.reason.as_str(), "SOMETHING_NEW");
        let none = parse_user_message(r#"{"e":"ACCOUNT_UPDATE","E":1,"T":1,"a":{}}"#);
        let Some(UserEvent::AccountUpdate(none)) = none else {
            panic!("{none:?}")
        };
        assert_eq!(none.data.reason, AccountUpdateReason::default());
        let g = parse_user_message(
            r#"{"e":"ALGO_UPDATE","T":1,"E":2,"o":{"caid":"qt-abc","aid":2148719,"at":"CONDITIONAL","o":"TAKE_PROFIT","s":"BNBUSDT","S":"SELL","ps":"BOTH","f":"GTC","q":"0.01","X":"CANCELED","ai":"","ap":"0.00000","aq":"0.00000","act":"0","tp":"750","p":"750","V":"EXPIRE_MAKER","wt":"CONTRACT_PRICE","pm":"NONE","cp":false,"pP":false,"R":false,"tt":0,"gtd":0,"rm":"Reduce Only reject"}}"#,
        );
        let Some(UserEvent::AlgoUpdate(g)) = g else {
            panic!("{g:?}")
        };
        assert_eq!(g.order.client_algo_id, "qt-abc");
        assert_eq!(g.order.status, AlgoStatus::Canceled);
        assert_eq!(g.order.actual_order_id, None);
        assert_eq!(
            parse_user_message(r#"{"e":"listenKeyExpired","E":7}"#),
            Some(UserEvent::ListenKeyExpired { event_time: 7 })
        );
        assert_eq!(
            parse_user_message(r#"{"e":"MARGIN_CALL","E":7}"#),
            Some(UserEvent::Other {
                event_type: "MARGIN_CALL".into()
            })
        );
    }

    #[test]
    fn streams_are_named_like_binance_and_routed_to_their_path() {
        let k = MarketStream::Kline {
            symbol: "BTCUSDT".into(),
            interval: "5m".into(),
        };
        assert_eq!(k.name(), "btcusdt@kline_5m");
        assert_eq!(k.path(), "market");
        let m = MarketStream::MarkPrice {
            symbol: "ETHUSDT".into(),
            every_second: true,
        };
        assert_eq!(m.name(), "ethusdt@markPrice@1s");
        let b = MarketStream::BookTicker {
            symbol: "ETHUSDT".into(),
        };
        assert_eq!(
            (b.name().as_str(), b.path()),
            ("ethusdt@bookTicker", "public")
        );
    }
}
