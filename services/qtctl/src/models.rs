//! `qtctl models list|show|rollback VERSION`: the model registry clm keeps. `list` and `show`
//! read `registry.json` in the shared artifacts directory (no Redis); `rollback` publishes
//! `ModelRolledBack` on `models` with the named version's artifact (path + SHA-256), which
//! trading-bot loads without a restart and clm records as the champion. It never edits the
//! registry itself and never trains.

use std::path::PathBuf;

use anyhow::Context;
use qt_events::clock::Clock;
use qt_events::{Event, ModelArtifactRef, ModelRolledBack};
use serde_json::{Value, json};

use crate::streams::Ctx;

/// The registry subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum ModelsCommand {
    /// Every kept version, newest first, with its status and out-of-sample figures.
    List(RegistryArg),
    /// One version's metadata (training range, samples, metrics, backtests, gate decision).
    Show(VersionArgs),
    /// Makes an earlier version the deployed model (publishes `ModelRolledBack`).
    Rollback(RollbackArgs),
}

#[derive(Debug, clap::Args)]
pub struct RegistryArg {
    /// clm's artifacts directory (its `artifacts_dir`). When omitted: `QT_CLM__ARTIFACTS_DIR`
    /// (what clm itself reads), else scripts/run.sh's `.data/models` when it holds a registry,
    /// else clm's default `data/models`.
    #[arg(long, env = "QT_MODELS_DIR")]
    pub registry: Option<PathBuf>,
}

impl RegistryArg {
    /// The directory to read, by the order above.
    pub fn dir(&self) -> PathBuf {
        if let Some(d) = &self.registry {
            return d.clone();
        }
        if let Some(d) = std::env::var_os("QT_CLM__ARTIFACTS_DIR").filter(|d| !d.is_empty()) {
            return PathBuf::from(d);
        }
        let run_sh = PathBuf::from(".data/models");
        if run_sh.join("registry.json").is_file() {
            return run_sh;
        }
        PathBuf::from("data/models")
    }
}

#[derive(Debug, clap::Args)]
pub struct VersionArgs {
    pub version: String,
    #[command(flatten)]
    pub dir: RegistryArg,
}

#[derive(Debug, clap::Args)]
pub struct RollbackArgs {
    pub version: String,
    #[command(flatten)]
    pub dir: RegistryArg,
    /// Why (kept in the event).
    #[arg(long, default_value = "operator rollback")]
    pub reason: String,
}

fn index(dir: &RegistryArg) -> anyhow::Result<Value> {
    let path = dir.dir().join("registry.json");
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "reading {} (is --registry clm's artifacts_dir?)",
            path.display()
        )
    })?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

fn models(index: &Value) -> Vec<Value> {
    index["models"].as_array().cloned().unwrap_or_default()
}

fn find(index: &Value, version: &str) -> anyhow::Result<Value> {
    models(index)
        .into_iter()
        .find(|m| m["version"] == version)
        .with_context(|| format!("version {version:?} is not in the registry"))
}

/// `models list` / `models show` (no Redis needed).
pub fn offline(cmd: &ModelsCommand, json_out: bool) -> anyhow::Result<()> {
    match cmd {
        ModelsCommand::List(dir) => {
            let idx = index(dir)?;
            if json_out {
                println!("{}", serde_json::to_string(&idx)?);
                return Ok(());
            }
            println!(
                "{:<28} {:<10} {:<10} {:>12} {:>8} {:>7}  decision",
                "version", "kind", "status", "oos_net_pnl", "max_dd%", "trades"
            );
            for m in models(&idx) {
                let meta = &m["metadata"];
                let c = &meta["challenger"];
                let why: Vec<String> = meta["decision"]["checks"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter(|c| c["passed"] == false)
                            .filter_map(|c| c["name"].as_str().map(String::from))
                            .collect()
                    })
                    .unwrap_or_default();
                let decision = if meta["decision"]["promote"] == true {
                    "promoted".to_string()
                } else {
                    format!("kept champion ({})", why.join(", "))
                };
                println!(
                    "{:<28} {:<10} {:<10} {:>12} {:>8.2} {:>7}  {}",
                    m["version"].as_str().unwrap_or("?"),
                    m["kind"].as_str().unwrap_or("?"),
                    m["status"].as_str().unwrap_or("?"),
                    c["net_pnl"].as_str().unwrap_or("?"),
                    c["max_drawdown_pct"].as_f64().unwrap_or(0.0) * 100.0,
                    c["trades"].as_u64().unwrap_or(0),
                    decision
                );
            }
            Ok(())
        }
        ModelsCommand::Show(a) => {
            let m = find(&index(&a.dir)?, &a.version)?;
            println!("{}", serde_json::to_string_pretty(&m)?);
            Ok(())
        }
        ModelsCommand::Rollback(_) => Ok(()),
    }
}

/// `models rollback VERSION`: publishes `ModelRolledBack` for a kept version that is not the
/// champion and whose artifact file exists.
pub async fn rollback(ctx: &Ctx, a: RollbackArgs) -> anyhow::Result<()> {
    let idx = index(&a.dir)?;
    let m = find(&idx, &a.version)?;
    let champion = idx["champion"].as_str().unwrap_or_default().to_string();
    anyhow::ensure!(
        champion != a.version,
        "{} is already the deployed model",
        a.version
    );
    let text = |k: &str| m[k].as_str().unwrap_or_default().to_string();
    let artifact = ModelArtifactRef {
        model_version: a.version.clone(),
        model: text("kind"),
        artifact_uri: text("artifact_uri"),
        sha256: text("sha256"),
    };
    anyhow::ensure!(
        std::path::Path::new(&artifact.artifact_uri).is_file(),
        "the artifact {} of {} is missing",
        artifact.artifact_uri,
        a.version
    );
    ctx.check_redis().await?;
    let event = Event::ModelRolledBack(ModelRolledBack {
        from_version: champion,
        artifact,
        reason: a.reason,
        rolled_back_at: qt_events::clock::SystemClock.now_ms(),
    });
    let env = ctx.bus.envelope(event);
    let entry = ctx
        .bus
        .publish(&env)
        .await
        .context("publishing to the models stream")?;
    if ctx.json {
        println!(
            "{}",
            json!({ "entry_id": entry, "event_id": env.id, "version": a.version })
        );
    } else {
        println!("rolled back to {} (event {})", a.version, env.id);
    }
    Ok(())
}
