//! Reading provider JSON into `Decimal` and ms times, strictly: what does not parse is an error
//! (the value is then missing), never a zero.

use rust_decimal::Decimal;
use serde_json::Value;

use crate::SourceError;

/// A JSON number or numeric string as a `Decimal` (scientific notation accepted).
pub fn dec(v: &Value, what: &str) -> Result<Decimal, SourceError> {
    let s = match v {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        other => {
            return Err(SourceError::Malformed(format!(
                "{what}: expected a number, got {other}"
            )));
        }
    };
    s.parse::<Decimal>()
        .or_else(|_| Decimal::from_scientific(&s))
        .map_err(|_| SourceError::Malformed(format!("{what}: {s:?} is not a number")))
}

/// `v[key]` as a `Decimal`, or `None` when the key is absent or null.
pub fn opt_dec(v: &Value, key: &str) -> Result<Option<Decimal>, SourceError> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(x) => dec(x, key).map(Some),
    }
}

/// An integer (number or string of digits).
pub fn int(v: &Value, what: &str) -> Result<i64, SourceError> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .ok_or_else(|| SourceError::Malformed(format!("{what}: not an integer: {v}")))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// An RFC 3339 UTC time (`2024-04-07T15:24:51.021Z`, CoinGecko's `last_updated`) in ms.
pub fn rfc3339_ms(s: &str) -> Option<i64> {
    let s = s.strip_suffix('Z')?;
    let (date, time) = s.split_once('T')?;
    let mut d = date.split('-');
    let y: i64 = d.next()?.parse().ok()?;
    let mo: i64 = d.next()?.parse().ok()?;
    let da: i64 = d.next()?.parse().ok()?;
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let mut t = hms.split(':');
    let h: i64 = t.next()?.parse().ok()?;
    let mi: i64 = t.next()?.parse().ok()?;
    let se: i64 = t.next()?.parse().ok()?;
    let ms: i64 = format!("{:0<3}", &frac[..frac.len().min(3)]).parse().ok()?;
    if !(1..=12).contains(&mo) || !(1..=31).contains(&da) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    Some((days_from_civil(y, mo, da) * 86_400 + h * 3600 + mi * 60 + se) * 1000 + ms)
}

/// A `YYYY-MM-DD` date (UTC midnight) in ms.
pub fn date_ms(s: &str) -> Option<i64> {
    let mut d = s.trim().split('-');
    let y: i64 = d.next()?.parse().ok()?;
    let m: i64 = d.next()?.parse().ok()?;
    let da: i64 = d.next()?.parse().ok()?;
    if d.next().is_some() || !(1..=12).contains(&m) || !(1..=31).contains(&da) {
        return None;
    }
    Some(days_from_civil(y, m, da) * 86_400_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_to_epoch_ms() {
        assert_eq!(rfc3339_ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            rfc3339_ms("2024-04-07T15:24:51.021Z"),
            Some(1_712_503_491_021)
        );
        assert_eq!(date_ms("2023-08-03"), Some(1_691_020_800_000));
        assert_eq!(date_ms("2023-13-03"), None);
    }

    #[test]
    fn numbers_parse_strictly() {
        assert_eq!(
            dec(&serde_json::json!(52.31), "x").expect("n").to_string(),
            "52.31"
        );
        assert_eq!(
            dec(&serde_json::json!(1.5e3), "x").expect("n"),
            Decimal::from(1500)
        );
        assert!(dec(&serde_json::json!(""), "x").is_err());
        assert!(dec(&serde_json::json!(null), "x").is_err());
    }
}
