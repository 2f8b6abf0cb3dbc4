use crate::CandleError;

const SECOND: i64 = 1_000;
const MINUTE: i64 = 60 * SECOND;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;
const WEEK: i64 = 7 * DAY;

/// Parses a Binance interval name (`1s`, `1m`, `5m`, `1h`, `4h`, `1d`, `1w`, …) into
/// milliseconds. Months (`1M`) have no fixed length and are refused.
pub fn parse_interval(name: &str) -> Result<i64, CandleError> {
    let bad = || CandleError::Interval(name.to_string());
    let split = name.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (digits, unit) = name.split_at(split);
    let n: i64 = digits.parse().map_err(|_| bad())?;
    if n <= 0 {
        return Err(bad());
    }
    let unit_ms = match unit {
        "s" => SECOND,
        "m" => MINUTE,
        "h" => HOUR,
        "d" => DAY,
        "w" => WEEK,
        _ => return Err(bad()),
    };
    n.checked_mul(unit_ms).ok_or_else(bad)
}

/// The shortest Binance-style name of an interval in milliseconds (`300000` → `5m`).
pub fn interval_name(ms: i64) -> Result<String, CandleError> {
    if ms <= 0 {
        return Err(CandleError::Invalid(format!(
            "interval {ms} ms is not positive"
        )));
    }
    for (unit, len) in [
        ("w", WEEK),
        ("d", DAY),
        ("h", HOUR),
        ("m", MINUTE),
        ("s", SECOND),
    ] {
        if ms % len == 0 {
            return Ok(format!("{}{unit}", ms / len));
        }
    }
    Err(CandleError::Invalid(format!(
        "interval {ms} ms is not a whole number of seconds"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binance_interval_names_parse_to_milliseconds() {
        assert_eq!(parse_interval("1m").ok(), Some(60_000));
        assert_eq!(parse_interval("5m").ok(), Some(300_000));
        assert_eq!(parse_interval("15m").ok(), Some(900_000));
        assert_eq!(parse_interval("4h").ok(), Some(14_400_000));
        assert_eq!(parse_interval("1d").ok(), Some(86_400_000));
        assert_eq!(parse_interval("1w").ok(), Some(604_800_000));
    }

    #[test]
    fn months_and_garbage_intervals_are_refused() {
        for bad in ["1M", "", "m", "0m", "5x", "-5m", "5m5"] {
            assert!(parse_interval(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn interval_names_round_trip() {
        for name in ["1s", "1m", "5m", "30m", "1h", "4h", "1d", "1w"] {
            let ms = parse_interval(name).unwrap_or_default();
            assert_eq!(interval_name(ms).ok().as_deref(), Some(name));
        }
    }
}
