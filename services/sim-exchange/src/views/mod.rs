//! The JSON the exchange answers, in Binance's shapes and field names: REST responses. Views only render what they are
//! given; they never change the exchange. (The stream events the exchange queues are rendered
//! by `exchange/events.rs`; both spell values with `wire`.)

pub(crate) mod account;
pub(crate) mod control;
pub(crate) mod futures_data;
pub(crate) mod market;
pub(crate) mod orders;
