//! Project automation, run as `cargo xtask <task>`:
//!
//! - `schemas`: writes `proto-schemas/*.json` from the Rust event types (`--check` only compares);
//! - `fixtures`: writes the golden MessagePack fixture of every event type at its current version
//!   that does not have one yet. Existing fixtures are never rewritten: they are old payloads
//!   that must keep decoding.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

fn schemas(check: bool) -> anyhow::Result<()> {
    let dir = root().join("proto-schemas");
    std::fs::create_dir_all(&dir)?;
    let mut stale = Vec::new();
    for (name, text) in qt_events::schema::json_schemas() {
        let path = dir.join(&name);
        let current = std::fs::read_to_string(&path).unwrap_or_default();
        if current != text {
            stale.push(name.clone());
            if !check {
                std::fs::write(&path, text)
                    .with_context(|| format!("writing {}", path.display()))?;
            }
        }
    }
    if check && !stale.is_empty() {
        bail!(
            "stale schemas: {} (run `cargo xtask schemas`)",
            stale.join(", ")
        );
    }
    println!(
        "{} schema(s) {}",
        stale.len(),
        if check { "stale" } else { "written" }
    );
    Ok(())
}

fn fixtures() -> anyhow::Result<()> {
    let dir = root().join("crates/events/tests/fixtures");
    std::fs::create_dir_all(&dir)?;
    let mut written = 0;
    for t in qt_events::EVENT_TYPES {
        let path = dir.join(format!("{}.v{}.msgpack", t.name, t.version));
        if path.exists() {
            continue;
        }
        let event = qt_events::samples::sample(t.name)
            .with_context(|| format!("no sample for {}", t.name))?;
        std::fs::write(&path, event.encode_data())?;
        written += 1;
    }
    println!("{written} fixture(s) written");
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["schemas"] => schemas(false),
        ["schemas", "--check"] => schemas(true),
        ["fixtures"] => fixtures(),
        _ => bail!("usage: cargo xtask schemas [--check] | fixtures"),
    }
}
