//! The provider clients: [`coingecko`], [`fear_greed`] (alternative.me) and [`binance`]
//! (USDⓈ-M futures data through `qt-exchange`).

pub mod binance;
pub mod coingecko;
pub mod fear_greed;
