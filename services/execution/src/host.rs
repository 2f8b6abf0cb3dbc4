//! Whether the host restarted since execution last started.
//!
//! The store commits without waiting for the disk (qt-store: SQLite `synchronous = NORMAL`). A
//! killed process loses nothing: its commits are in the operating system's hands. A crash of
//! the host can drop the last commits, among them the SENDING record of an order whose request
//! had already left; a redelivered intent would then find no record and send a second order.
//! So execution notes the host's boot id at every start, with a commit that waits for the disk.
//! When the boot id differs from the one noted before, every intent created before this start
//! is checked against the exchange by its client order id, after the receive window of any
//! request sent before the start, before its order is sent (see `Execution::unsure_since`).

/// The kernel's id of this boot (Linux; in a container, the host's). `None` when it cannot
/// be read: every start then counts as a restart of the host.
#[must_use]
pub fn boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

/// Whether the host restarted between the start that noted `before` and this one (`now`):
/// never on the first start (nothing was recorded before it), and always when either id is
/// unknown.
#[must_use]
pub fn restarted(before: Option<&str>, now: Option<&str>) -> bool {
    match (before, now) {
        (None, _) => false,
        (Some(b), Some(n)) => b != n,
        (Some(_), None) => true,
    }
}

/// What is noted when the boot id cannot be read.
pub const UNKNOWN: &str = "unknown";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_boot_id_means_a_restart_and_the_first_start_does_not() {
        assert!(!restarted(None, Some("a")));
        assert!(!restarted(Some("a"), Some("a")));
        assert!(restarted(Some("a"), Some("b")));
        assert!(restarted(Some("a"), None));
        assert!(restarted(Some(UNKNOWN), None));
        assert!(restarted(Some(UNKNOWN), Some("a")));
        assert!(
            boot_id().is_some_and(|id| id.len() >= 32),
            "Linux has a boot id"
        );
    }
}
