//! HMAC-SHA256 request signing and the query strings it signs.
//!
//! The client puts every parameter of a request in the query string (Binance accepts that for
//! GET, POST, PUT and DELETE) and sends an empty body, so the signed bytes are exactly the bytes
//! of the query that leaves: `totalParams = query + body` with an empty body.

use hmac::{Hmac, KeyInit, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

/// Signs payloads with the API secret. `Debug` never shows the key.
#[derive(Clone)]
pub struct Signer {
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer([REDACTED])")
    }
}

impl Signer {
    /// A signer keyed with `secret`. HMAC accepts keys of any length, so this is `None` only
    /// if the HMAC implementation ever starts refusing a key.
    pub fn new(secret: &SecretString) -> Option<Self> {
        Hmac::<Sha256>::new_from_slice(secret.expose_secret().as_bytes())
            .ok()
            .map(|mac| Self { mac })
    }

    /// Lowercase hex of HMAC-SHA256(secret, `total_params`).
    pub fn sign(&self, total_params: &str) -> String {
        let mut mac = self.mac.clone();
        mac.update(total_params.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }
}

/// An ordered list of request parameters, encoded in insertion order.
#[derive(Debug, Clone, Default)]
pub struct Params {
    query: String,
}

impl Params {
    pub fn new() -> Self {
        Self {
            query: String::with_capacity(192),
        }
    }

    /// Appends `name=value`, percent-encoding the value.
    pub fn push(&mut self, name: &str, value: impl std::fmt::Display) -> &mut Self {
        use std::fmt::Write;
        if !self.query.is_empty() {
            self.query.push('&');
        }
        self.query.push_str(name);
        self.query.push('=');
        let mut buf = String::new();
        let _ = write!(buf, "{value}");
        encode_into(&mut self.query, &buf);
        self
    }

    /// Appends `name=value` when the value is present.
    pub fn push_opt<T: std::fmt::Display>(&mut self, name: &str, value: Option<T>) -> &mut Self {
        if let Some(v) = value {
            self.push(name, v);
        }
        self
    }

    /// The encoded query string, without `?`.
    pub fn as_str(&self) -> &str {
        &self.query
    }

    pub fn is_empty(&self) -> bool {
        self.query.is_empty()
    }

    /// Appends `signature=<hex>` over everything already in the query.
    pub fn sign_with(&mut self, signer: &Signer) {
        let sig = signer.sign(&self.query);
        self.push("signature", sig);
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn encode_into(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 0xf)] as char);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const SECRET: &str = "2b5eb11e18796d12d88f13dc27dbbd02c2cc51ff7059765ed9821957d82bb4d9";

    #[test]
    fn reproduces_binance_documented_example_signature() {
        let signer = Signer::new(&SecretString::from(SECRET.to_string())).unwrap();
        let msg = "symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=1&price=9000&timeInForce=GTC&recvWindow=5000&timestamp=1591702613943";
        assert_eq!(
            signer.sign(msg),
            "3c661234138461fcc7a7d8746c6558c9842d4e10870d2ecbedf7777cad694af9"
        );
    }

    #[test]
    fn mixed_query_and_body_signs_their_plain_concatenation() {
        let signer = Signer::new(&SecretString::from(SECRET.to_string())).unwrap();
        let total = "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC".to_string()
            + "quantity=1&price=9000&recvWindow=5000&timestamp=1591702613943";
        assert_eq!(
            signer.sign(&total),
            "30baaf0fab549bbeda7f5ef201898b34122da25fd23c646cac2c529aebe670a4"
        );
    }

    #[test]
    fn params_build_the_exact_documented_query_and_sign_it_last() {
        let signer = Signer::new(&SecretString::from(SECRET.to_string())).unwrap();
        let mut p = Params::new();
        p.push("symbol", "BTCUSDT")
            .push("side", "BUY")
            .push("type", "LIMIT")
            .push("quantity", 1)
            .push("price", 9000)
            .push("timeInForce", "GTC")
            .push("recvWindow", 5000)
            .push("timestamp", 1591702613943i64);
        p.sign_with(&signer);
        assert!(p.as_str().ends_with(
            "&timestamp=1591702613943&signature=3c661234138461fcc7a7d8746c6558c9842d4e10870d2ecbedf7777cad694af9"
        ));
    }

    #[test]
    fn values_are_percent_encoded_and_signer_debug_is_redacted() {
        let mut p = Params::new();
        p.push("newClientOrderId", "a:b/c d");
        assert_eq!(p.as_str(), "newClientOrderId=a%3Ab%2Fc%20d");
        let signer = Signer::new(&SecretString::from(SECRET.to_string())).unwrap();
        assert_eq!(format!("{signer:?}"), "Signer([REDACTED])");
    }
}
