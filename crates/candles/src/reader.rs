use std::io::Read;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use qt_events::Decimal;

use crate::{Candle, CandleError, parse_interval};

/// Open times at or above this are microseconds, not milliseconds (Binance's spot files use
/// microseconds from 2025 on; as ms this would be the year 5138).
const MICROS_THRESHOLD: i64 = 100_000_000_000_000;

/// Reads a Binance kline file: CSV with or without a header line, 6 to 12 columns
/// (`open_time,open,high,low,close,volume[,close_time,quote_volume,trades,taker_base,
/// taker_quote,ignore]`), plain or gzip (detected by the magic bytes, whatever the name).
///
/// Candles come back in file order, which must be strictly increasing open time. Gaps and
/// zero-volume candles are kept as they are (see [`crate::gaps`], [`crate::fill_gaps`]).
/// Errors name the file and the 1-based line.
pub fn read_klines(path: impl AsRef<Path>) -> Result<Vec<Candle>, CandleError> {
    let path = path.as_ref();
    let io = |source| CandleError::Io {
        path: path.to_path_buf(),
        source,
    };
    let raw = std::fs::read(path).map_err(io)?;
    let bytes = if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::with_capacity(raw.len() * 4);
        flate2::read::MultiGzDecoder::new(raw.as_slice())
            .read_to_end(&mut out)
            .map_err(io)?;
        out
    } else {
        raw
    };
    parse_klines(&bytes, path)
}

/// Parses the text of a kline file already in memory (see [`read_klines`]); `path` is only
/// used in error messages.
pub fn parse_klines(bytes: &[u8], path: &Path) -> Result<Vec<Candle>, CandleError> {
    let err = |line: usize, message: String| CandleError::Parse {
        path: path.to_path_buf(),
        line,
        message,
    };
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let line = bytes[..e.valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1;
        err(line, "not UTF-8 text".to_string())
    })?;
    let mut out = Vec::with_capacity(text.len() / 60 + 1);
    let mut seen_data_or_header = false;
    for (idx, line) in text.split('\n').enumerate() {
        let line_no = idx + 1;
        let line = line.strip_suffix('\r').unwrap_or(line).trim();
        if line.is_empty() {
            continue;
        }
        let mut fields: [&str; 12] = [""; 12];
        let mut n = 0;
        for field in line.split(',') {
            if n == 12 {
                return Err(err(line_no, "more than 12 columns".to_string()));
            }
            fields[n] = field.trim();
            n += 1;
        }
        let first_line = !seen_data_or_header;
        seen_data_or_header = true;
        let open_time = match fields[0].parse::<i64>() {
            Ok(t) => t,
            Err(_) if first_line => continue, // header line
            Err(_) => {
                return Err(err(
                    line_no,
                    format!("open time {:?} is not an integer", fields[0]),
                ));
            }
        };
        if n < 6 {
            return Err(err(line_no, format!("{n} columns, need at least 6")));
        }
        let open_time = if open_time >= MICROS_THRESHOLD {
            open_time / 1000
        } else {
            open_time
        };
        let dec = |i: usize, name: &str| -> Result<Decimal, CandleError> {
            parse_decimal(fields[i])
                .ok_or_else(|| err(line_no, format!("{name} {:?} is not a number", fields[i])))
        };
        let candle = Candle {
            open_time,
            open: dec(1, "open")?,
            high: dec(2, "high")?,
            low: dec(3, "low")?,
            close: dec(4, "close")?,
            volume: dec(5, "volume")?,
            quote_volume: if n > 7 && !fields[7].is_empty() {
                dec(7, "quote volume")?
            } else {
                Decimal::ZERO
            },
            trades: if n > 8 && !fields[8].is_empty() {
                fields[8].parse::<u64>().map_err(|_| {
                    err(line_no, format!("trades {:?} is not an integer", fields[8]))
                })?
            } else {
                0
            },
        };
        check(&candle).map_err(|m| err(line_no, m))?;
        if let Some(prev) = out.last().map(|c: &Candle| c.open_time)
            && candle.open_time <= prev
        {
            return Err(err(
                line_no,
                format!(
                    "open time {} is not after the previous {prev}",
                    candle.open_time
                ),
            ));
        }
        out.push(candle);
    }
    Ok(out)
}

fn parse_decimal(s: &str) -> Option<Decimal> {
    Decimal::from_str(s)
        .ok()
        .or_else(|| Decimal::from_scientific(s).ok())
}

fn check(c: &Candle) -> Result<(), String> {
    if c.open.is_sign_negative()
        || c.close.is_sign_negative()
        || c.low.is_sign_negative()
        || c.volume.is_sign_negative()
    {
        return Err("negative price or volume".to_string());
    }
    if c.low > c.high || c.open > c.high || c.close > c.high || c.open < c.low || c.close < c.low {
        return Err(format!(
            "inconsistent OHLC: open {} high {} low {} close {}",
            c.open, c.high, c.low, c.close
        ));
    }
    Ok(())
}

/// A kline file found on disk, with the symbol and interval taken from its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KlineFile {
    pub symbol: String,
    /// The interval name from the file name, e.g. `5m`.
    pub interval: String,
    pub interval_ms: i64,
    pub path: PathBuf,
}

/// Splits a kline file name such as `BTCUSDT-5m.csv.gz`, `BTCUSDT-5m.csv` or Binance's
/// `BTCUSDT-5m-2023-03.csv` into symbol and interval.
pub fn parse_kline_file_name(name: &str) -> Result<(String, String), CandleError> {
    let bad = || CandleError::FileName(name.to_string());
    let stem = name
        .strip_suffix(".gz")
        .unwrap_or(name)
        .strip_suffix(".csv")
        .ok_or_else(bad)?;
    let mut parts = stem.split('-');
    let symbol = parts.next().filter(|s| !s.is_empty()).ok_or_else(bad)?;
    let interval = parts.next().ok_or_else(bad)?;
    if !symbol.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(bad());
    }
    parse_interval(interval).map_err(|_| bad())?;
    Ok((symbol.to_ascii_uppercase(), interval.to_string()))
}

/// Lists the kline files of a folder (names as in [`parse_kline_file_name`]; other files are
/// ignored), sorted by symbol then interval.
pub fn list_kline_files(dir: impl AsRef<Path>) -> Result<Vec<KlineFile>, CandleError> {
    let dir = dir.as_ref();
    let io = |source| CandleError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            continue;
        };
        let Ok((symbol, interval)) = parse_kline_file_name(&name) else {
            continue;
        };
        let interval_ms = parse_interval(&interval)?;
        files.push(KlineFile {
            symbol,
            interval,
            interval_ms,
            path: entry.path(),
        });
    }
    files.sort_by(|a, b| {
        (a.symbol.as_str(), a.interval_ms, &a.path).cmp(&(
            b.symbol.as_str(),
            b.interval_ms,
            &b.path,
        ))
    });
    Ok(files)
}

/// Reads every kline file of a folder (see [`list_kline_files`]).
pub fn read_dir(dir: impl AsRef<Path>) -> Result<Vec<(KlineFile, Vec<Candle>)>, CandleError> {
    list_kline_files(dir)?
        .into_iter()
        .map(|f| {
            let candles = read_klines(&f.path)?;
            Ok((f, candles))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn parse(text: &str) -> Result<Vec<Candle>, CandleError> {
        parse_klines(text.as_bytes(), Path::new("test.csv"))
    }

    #[test]
    fn six_columns_with_header_parse() {
        let c = parse(
            "open_time,open,high,low,close,volume\n1000,1.5,2,1,1.75,10\n2000,1.75,1.8,1.7,1.7,0\n",
        )
        .expect("valid file");
        assert_eq!(c.len(), 2);
        assert_eq!(
            c[0],
            Candle::new(1000, dec!(1.5), dec!(2), dec!(1), dec!(1.75), dec!(10))
        );
        assert!(c[1].is_zero_volume());
    }

    #[test]
    fn twelve_binance_columns_without_header_parse() {
        let c = parse("1591258320000,9640.7,9642.4,9640.6,9642.0,206,1591258379999,1986203.2,120,100,963700.8,0\r\n")
            .expect("valid file");
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].open_time, 1_591_258_320_000);
        assert_eq!(c[0].quote_volume, dec!(1986203.2));
        assert_eq!(c[0].trades, 120);
    }

    #[test]
    fn microsecond_open_times_become_milliseconds() {
        let c = parse("1735689600000000,1,1,1,1,1\n").expect("valid file");
        assert_eq!(c[0].open_time, 1_735_689_600_000);
    }

    #[test]
    fn errors_name_the_line() {
        let e = parse("open_time,open,high,low,close,volume\n1000,1,2,1,1,1\n2000,1,x,1,1,1\n")
            .expect_err("bad high");
        assert!(matches!(e, CandleError::Parse { line: 3, .. }), "{e}");
        assert!(e.to_string().contains("test.csv:3"), "{e}");
        assert!(!e.is_retryable());
    }

    #[test]
    fn too_few_columns_unordered_times_and_bad_ohlc_are_refused() {
        assert!(matches!(
            parse("1000,1,2,1,1\n"),
            Err(CandleError::Parse { line: 1, .. })
        ));
        assert!(matches!(
            parse("2000,1,2,1,1,1\n1000,1,2,1,1,1\n"),
            Err(CandleError::Parse { line: 2, .. })
        ));
        assert!(matches!(
            parse("1000,1,2,1,1,1\n1000,1,2,1,1,1\n"),
            Err(CandleError::Parse { line: 2, .. })
        ));
        assert!(matches!(
            parse("1000,1,2,3,1,1\n"),
            Err(CandleError::Parse { .. })
        ));
        assert!(matches!(
            parse("1000,1,2,1,1,1,0,0,0,0,0,0,0\n"),
            Err(CandleError::Parse { .. })
        ));
        // A header is only accepted on the first line.
        assert!(matches!(
            parse("1000,1,2,1,1,1\nopen_time,open,high,low,close,volume\n"),
            Err(CandleError::Parse { line: 2, .. })
        ));
    }

    #[test]
    fn file_names_give_symbol_and_interval() {
        assert_eq!(
            parse_kline_file_name("BTCUSDT-5m.csv.gz").ok(),
            Some(("BTCUSDT".to_string(), "5m".to_string()))
        );
        assert_eq!(
            parse_kline_file_name("ETHUSDT-1h-2023-03.csv").ok(),
            Some(("ETHUSDT".to_string(), "1h".to_string()))
        );
        assert!(parse_kline_file_name("README.md").is_err());
        assert!(parse_kline_file_name("BTCUSDT-5x.csv").is_err());
    }
}
