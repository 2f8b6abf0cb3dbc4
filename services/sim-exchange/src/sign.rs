//! Binance request signing: hex HMAC-SHA256 of the query string followed by the body, as sent.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Hex HMAC-SHA256 of `payload` with `secret`.
pub fn sign(secret: &str, payload: &str) -> String {
    let mut mac = match HmacSha256::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(payload.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Constant-time check of a hex signature (case-insensitive, as Binance accepts).
pub fn verify(secret: &str, payload: &str, signature_hex: &str) -> bool {
    let Ok(sig) = hex::decode(signature_hex.to_ascii_lowercase()) else {
        return false;
    };
    let Ok(mut mac) = HmacSha256::new_from_slice(secret.as_bytes()) else {
        return false;
    };
    mac.update(payload.as_bytes());
    mac.verify_slice(&sig).is_ok()
}

/// Remove the `signature=` pair from a raw parameter string, keeping the rest byte for byte.
pub fn strip_signature(raw: &str) -> (String, Option<String>) {
    let mut sig = None;
    let kept: Vec<&str> = raw
        .split('&')
        .filter(|p| {
            if let Some(v) = p.strip_prefix("signature=") {
                sig = Some(v.to_string());
                false
            } else {
                true
            }
        })
        .collect();
    if sig.is_none() {
        return (raw.to_string(), None);
    }
    (kept.join("&"), sig)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "2b5eb11e18796d12d88f13dc27dbbd02c2cc51ff7059765ed9821957d82bb4d9";

    #[test]
    fn binance_documented_vector_signs_and_verifies() {
        let msg = "symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=1&price=9000&timeInForce=GTC&recvWindow=5000&timestamp=1591702613943";
        let sig = "3c661234138461fcc7a7d8746c6558c9842d4e10870d2ecbedf7777cad694af9";
        assert_eq!(sign(SECRET, msg), sig);
        assert!(verify(SECRET, msg, sig));
        assert!(verify(SECRET, msg, &sig.to_ascii_uppercase()));
        assert!(!verify(SECRET, &msg.replace("9000", "9001"), sig));
    }

    #[test]
    fn mixed_query_and_body_vector_concatenates_without_separator() {
        let msg = "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTCquantity=1&price=9000&recvWindow=5000&timestamp=1591702613943";
        assert_eq!(
            sign(SECRET, msg),
            "30baaf0fab549bbeda7f5ef201898b34122da25fd23c646cac2c529aebe670a4"
        );
    }

    proptest::proptest! {
        #![proptest_config({
            // A fixed seed, as the other fuzzers (crates/exchange/tests/fuzz_frames.rs).
            let mut c = proptest::prelude::ProptestConfig::with_cases(512);
            if std::env::var_os("PROPTEST_RNG_SEED").is_none() {
                c.rng_seed = proptest::test_runner::RngSeed::Fixed(20_261_204);
            }
            c
        })]

        #[test]
        fn any_query_and_signature_are_checked_without_panicking_and_only_the_right_one_passes(
            secret in "\\PC{0,80}",
            query in "\\PC{0,300}",
            noise in "\\PC{0,70}",
        ) {
            let (payload, sig) = strip_signature(&query);
            if let Some(sig) = sig {
                let _ = verify(&secret, &payload, &sig);
            }
            let good = sign(&secret, &payload);
            let altered = format!("{payload}x");
            proptest::prop_assert!(verify(&secret, &payload, &good));
            proptest::prop_assert!(!verify(&secret, &altered, &good));
            let _ = verify(&secret, &payload, &noise);
            if !noise.contains('&') && !payload.contains("signature=") {
                let (rest, got) = strip_signature(&format!("{payload}&signature={noise}"));
                proptest::prop_assert_eq!(got.as_deref(), Some(noise.as_str()));
                proptest::prop_assert_eq!(rest, payload);
            }
        }
    }

    #[test]
    fn signature_is_stripped_from_the_signed_payload() {
        let (rest, sig) = strip_signature("a=1&b=2&signature=abc");
        assert_eq!((rest.as_str(), sig.as_deref()), ("a=1&b=2", Some("abc")));
        let (rest, sig) = strip_signature("a=1");
        assert_eq!((rest.as_str(), sig), ("a=1", None));
    }
}
