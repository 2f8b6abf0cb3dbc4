//! `qt-candles` is the candle type of Quantum Trader's pure trading logic and the reader of
//! Binance kline files.
//!
//! It reads kline CSV files (with or without a header, 6 to 12 columns, plain or gzip, detected
//! by magic bytes), finds gaps, resamples to larger intervals aligned to UTC boundaries, parses
//! interval names and converts to and from the wire type [`qt_events::CandleClosed`]. The live
//! services, the backtester and the simulated exchange all read candles through it, and the
//! funding-rate history files and funding schedule ([`FundingSchedule`]) the backtester and the
//! simulated exchange both charge funding by.
//!
//! It must never know about Redis, HTTP, SQL, an async runtime or the clock: it is data and
//! files only. Prices and volumes stay [`Decimal`]; the `f64` accessors exist for model features.

mod candle;
mod error;
mod funding;
mod interval;
mod reader;
mod series;

pub use candle::Candle;
pub use error::CandleError;
pub use funding::{FundingSchedule, read_funding_dir, read_funding_file};
pub use interval::{interval_name, parse_interval};
pub use reader::{
    KlineFile, list_kline_files, parse_kline_file_name, parse_klines, read_dir, read_klines,
};
pub use series::{Gap, fill_gaps, gaps, resample};

pub use qt_events::Decimal;
