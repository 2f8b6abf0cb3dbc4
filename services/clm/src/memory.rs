//! Gives the memory of a training run back to the system after it.
//!
//! A training run peaks at about 210 MiB of live heap (heaptrack of the debug binary: the
//! features of every row, the exit plans' datasets, the walk-forward's 200 random-entry
//! paths), then frees nearly all of it. glibc's malloc kept ≈ 125 MiB of that after each run:
//! each time a block above its mmap threshold is freed, it raises the threshold to that block's
//! size and its trim threshold to twice that (up to 32 and 64 MiB), so later large vectors come
//! from the training threads' arenas, whose free tops are then never handed back
//! (`malloc_stats`: 127 MiB held in 10 arenas, 3 MiB in use). A fixed mmap threshold turns that
//! adjustment off: large blocks are mapped and unmapped, and free tops above 128 KiB are
//! trimmed. Measured on the debug binary (seeded from `data/klines/5m`, one run, see
//! docs/perf/soak.md): RSS 130 MiB after the run before, 34 MiB with the setting; peak 321 → 240
//! MiB.
//!
//! The setting is glibc's `glibc.malloc.mmap_threshold` tunable, read from `GLIBC_TUNABLES`
//! when a process starts, so clm starts itself again (`exec`, the same pid) with it added when
//! it is not there yet. No effect outside glibc.

/// The tunable added to `GLIBC_TUNABLES`.
pub const TUNABLE: &str = "glibc.malloc.mmap_threshold=131072";

/// `GLIBC_TUNABLES` with [`TUNABLE`] added, or `None` when an mmap threshold is already set
/// (by an earlier start, or by whoever started clm).
#[must_use]
pub fn tunables_with_threshold(current: Option<&str>) -> Option<String> {
    match current {
        Some(v) if v.contains("glibc.malloc.mmap_threshold=") => None,
        Some(v) if !v.is_empty() => Some(format!("{v}:{TUNABLE}")),
        _ => Some(TUNABLE.to_owned()),
    }
}

/// Starts this executable again, with the same arguments and pid, with the fixed mmap
/// threshold, unless it already runs with one. Returns only when it did not (the threshold is
/// set, or the `exec` failed: the error, and clm runs on with glibc's defaults).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn restart_with_fixed_mmap_threshold() -> std::io::Result<()> {
    use std::os::unix::process::CommandExt;
    let current = std::env::var("GLIBC_TUNABLES").ok();
    let Some(tunables) = tunables_with_threshold(current.as_deref()) else {
        return Ok(());
    };
    let exe = std::env::current_exe()?;
    let mut args = std::env::args_os();
    let mut cmd = std::process::Command::new(exe);
    if let Some(arg0) = args.next() {
        cmd.arg0(arg0);
    }
    Err(cmd.args(args).env("GLIBC_TUNABLES", tunables).exec())
}

/// Not glibc: nothing to do.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn restart_with_fixed_mmap_threshold() -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_threshold_is_added_once_and_other_tunables_are_kept() {
        assert_eq!(tunables_with_threshold(None).as_deref(), Some(TUNABLE));
        assert_eq!(tunables_with_threshold(Some("")).as_deref(), Some(TUNABLE));
        assert_eq!(
            tunables_with_threshold(Some("glibc.malloc.arena_max=2")).unwrap(),
            format!("glibc.malloc.arena_max=2:{TUNABLE}")
        );
        assert_eq!(tunables_with_threshold(Some(TUNABLE)), None);
        assert_eq!(
            tunables_with_threshold(Some("glibc.malloc.mmap_threshold=65536")),
            None,
            "a threshold chosen by whoever started clm is kept"
        );
    }
}
