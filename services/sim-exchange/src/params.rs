//! Request parameters: the query string and an `application/x-www-form-urlencoded` body, as
//! Binance reads them (query wins over body), plus typed accessors that answer Binance errors.
//! Never panics on any input.

use qt_events::{Decimal, Side};

use crate::error::ApiError;

/// Decode `%XX` and `+`; invalid escapes are kept as they are.
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Split `a=1&b=2` into decoded pairs.
pub fn parse_pairs(s: &str) -> Vec<(String, String)> {
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (percent_decode(k), percent_decode(v)),
            None => (percent_decode(p), String::new()),
        })
        .collect()
}

/// The parameters of one request.
#[derive(Debug, Clone, Default)]
pub struct Params {
    query: Vec<(String, String)>,
    body: Vec<(String, String)>,
}

impl Params {
    pub fn new(query: &str, body: &str) -> Self {
        Self {
            query: parse_pairs(query),
            body: parse_pairs(body),
        }
    }

    /// The raw value; query first, then body. Empty values count as absent.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .chain(self.body.iter())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    /// Parameters from already-decoded pairs (one order of a `batchOrders` list).
    pub fn from_pairs(pairs: Vec<(String, String)>) -> Self {
        Self {
            query: pairs,
            body: Vec::new(),
        }
    }

    /// An integer of the query string alone (`None` when absent or not a number): what the
    /// request weight depends on.
    pub fn query_int(&self, name: &str) -> Option<i64> {
        self.query_get(name).and_then(|v| v.parse().ok())
    }

    /// Whether the query string alone has `name` (not empty).
    pub fn query_has(&self, name: &str) -> bool {
        self.query_get(name).is_some()
    }

    fn query_get(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    pub fn required(&self, name: &str) -> Result<&str, ApiError> {
        self.get(name).ok_or_else(|| ApiError::mandatory(name))
    }

    pub fn decimal(&self, name: &str) -> Result<Option<Decimal>, ApiError> {
        self.get(name)
            .map(|v| parse_decimal(v).ok_or_else(|| ApiError::mandatory(name)))
            .transpose()
    }

    pub fn required_decimal(&self, name: &str) -> Result<Decimal, ApiError> {
        self.decimal(name)?.ok_or_else(|| ApiError::mandatory(name))
    }

    pub fn int(&self, name: &str) -> Result<Option<i64>, ApiError> {
        self.get(name)
            .map(|v| v.parse::<i64>().map_err(|_| ApiError::mandatory(name)))
            .transpose()
    }

    /// A count from 1 to `max` (`default` when absent); `-1130` outside.
    pub fn count(&self, name: &str, default: i64, max: i64) -> Result<usize, ApiError> {
        let n = self.int(name)?.unwrap_or(default);
        if !(1..=max).contains(&n) {
            return Err(ApiError::invalid(name));
        }
        Ok(usize::try_from(n).unwrap_or_default())
    }

    pub fn bool(&self, name: &str) -> Result<bool, ApiError> {
        match self.get(name) {
            None => Ok(false),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
            Some(_) => Err(ApiError::invalid(name)),
        }
    }

    pub fn side(&self) -> Result<Side, ApiError> {
        match self.required("side")? {
            "BUY" => Ok(Side::Buy),
            "SELL" => Ok(Side::Sell),
            _ => Err(ApiError::bad(-1117, "Invalid side.")),
        }
    }
}

/// A plain decimal number as Binance accepts it: digits with an optional point, no exponent,
/// no sign other than a leading minus.
pub fn parse_decimal(s: &str) -> Option<Decimal> {
    if s.is_empty()
        || s.len() > 40
        || !s
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'.' || b == b'-')
    {
        return None;
    }
    s.parse::<Decimal>().ok()
}

/// Binance's client order id rule: `^[\.A-Z\:/a-z0-9_-]{1,36}$`.
pub fn check_client_id(name: &str, id: &str) -> Result<(), ApiError> {
    if id.chars().count() > 36 {
        return Err(ApiError::bad(
            -4015,
            "Client order id length should not be more than 36 chars",
        ));
    }
    if !qt_events::ids::is_valid_client_order_id(id) {
        return Err(ApiError::bad(
            -1100,
            format!(
                "Illegal characters found in parameter '{name}'; legal range is '^[\\.A-Z\\:/a-z0-9_-]{{1,36}}$'."
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn query_wins_over_body_and_values_are_decoded() {
        let p = Params::new(
            "symbol=BTCUSDT&x=a%2Fb",
            "symbol=ETHUSDT&quantity=1.5&y=a+b",
        );
        assert_eq!(p.get("symbol"), Some("BTCUSDT"));
        assert_eq!(p.get("x"), Some("a/b"));
        assert_eq!(p.get("y"), Some("a b"));
        assert_eq!(p.decimal("quantity"), Ok(Some(Decimal::new(15, 1))));
    }

    #[test]
    fn malformed_numbers_are_refused_as_binance_does() {
        let p = Params::new("quantity=1e3&price=abc&ok=0.10", "");
        assert_eq!(p.decimal("quantity").map_err(|e| e.code), Err(-1102));
        assert_eq!(p.decimal("price").map_err(|e| e.code), Err(-1102));
        assert_eq!(p.decimal("ok"), Ok(Some(Decimal::new(10, 2))));
    }

    #[test]
    fn client_ids_follow_binance_rule() {
        assert!(check_client_id("c", "abc-1_2:3/4.5").is_ok());
        assert_eq!(
            check_client_id("c", &"a".repeat(37)).map_err(|e| e.code),
            Err(-4015)
        );
        assert_eq!(
            check_client_id("c", "bad id").map_err(|e| e.code),
            Err(-1100)
        );
    }

    proptest! {
        #[test]
        fn parsing_any_query_and_body_never_panics(q in ".{0,200}", b in "\\PC{0,200}") {
            let p = Params::new(&q, &b);
            for name in ["symbol", "side", "quantity", "price", "timestamp", "signature"] {
                let _ = p.get(name);
                let _ = p.decimal(name);
                let _ = p.int(name);
                let _ = p.bool(name);
            }
            let _ = p.side();
            let _ = percent_decode(&q);
        }

        #[test]
        fn percent_encoding_round_trips(s in "\\PC{0,64}") {
            let enc: String = s.bytes().map(|b| format!("%{b:02X}")).collect();
            prop_assert_eq!(percent_decode(&enc), s);
        }
    }
}
