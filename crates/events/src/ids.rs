//! Event ids and client order ids.
//!
//! Fresh events get a UUIDv7 (time-ordered). Facts that a redelivery could produce twice get an
//! id derived from what caused them (a UUIDv5 over the parts), so consumers can drop duplicates.

use uuid::Uuid;

const NAMESPACE: Uuid = Uuid::from_u128(0x7174_2d65_7665_6e74_732d_6e61_6d65_7370);

/// A new, time-ordered event id.
pub fn new_event_id() -> String {
    Uuid::now_v7().to_string()
}

/// A deterministic event id: the same parts always give the same id.
pub fn derived_event_id(parts: &[&str]) -> String {
    let joined = parts.join("\u{1f}");
    Uuid::new_v5(&NAMESPACE, joined.as_bytes()).to_string()
}

/// Binance's rule for `newClientOrderId` and `clientAlgoId`: `^[.A-Z:/a-z0-9_-]{1,36}$`.
pub fn is_valid_client_order_id(id: &str) -> bool {
    (1..=36).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b':' | b'/' | b'_' | b'-'))
}

/// The client order id for leg `leg` of intent `intent_id`: `qt-` and 32 hex chars of a hash of
/// both, so it is deterministic, at most 36 characters and valid for Binance.
pub fn client_order_id(intent_id: &str, leg: &str) -> String {
    let u = Uuid::new_v5(&NAMESPACE, format!("{intent_id}\u{1f}{leg}").as_bytes());
    format!("qt-{}", u.simple())[..35].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_ids_are_stable_and_distinct() {
        assert_eq!(derived_event_id(&["a", "b"]), derived_event_id(&["a", "b"]));
        assert_ne!(derived_event_id(&["a", "b"]), derived_event_id(&["ab"]));
    }

    #[test]
    fn client_order_ids_are_valid_deterministic_and_distinct_per_leg() {
        let a = client_order_id("intent-1", "entry");
        assert!(is_valid_client_order_id(&a), "{a}");
        assert_eq!(a, client_order_id("intent-1", "entry"));
        assert_ne!(a, client_order_id("intent-1", "stop"));
        assert!(!is_valid_client_order_id(""));
        assert!(!is_valid_client_order_id("has space"));
        assert!(!is_valid_client_order_id(&"x".repeat(37)));
    }
}
