//! `qtctl models` against a registry directory laid out as clm writes it and a real
//! redis-server: list and show read `registry.json`; rollback publishes `ModelRolledBack`.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output};

use qt_events::{Envelope, Event};
use qt_testkit::RedisServer;

fn qtctl(redis: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_qtctl"))
        .args(args)
        .env("QT_REDIS_URL", redis)
        .env("QT_STREAM_PREFIX", "t:")
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn model(dir: &Path, version: &str, status: &str, promote: bool) -> serde_json::Value {
    let path = dir.join(format!("{version}.json"));
    std::fs::write(&path, format!("{{\"version\":\"{version}\"}}")).unwrap();
    serde_json::json!({
        "version": version,
        "kind": "gbdt",
        "created_at": 1_700_000_000_000_i64,
        "artifact_uri": path.display().to_string(),
        "sha256": format!("sha-of-{version}"),
        "status": status,
        "deployed_at": null,
        "metadata": {
            "challenger": {"net_pnl": "12.5", "max_drawdown_pct": 0.031, "trades": 17},
            "decision": {"promote": promote, "checks": [
                {"name": "beats_champion_net_pnl", "passed": promote, "detail": ""}
            ]}
        }
    })
}

struct Dir(std::path::PathBuf);

impl Dir {
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn without_a_registry_flag_models_list_finds_the_one_of_scripts_run_sh() {
    let base = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("run-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let models = base.join(".data/models");
    std::fs::create_dir_all(&models).unwrap();
    let dir = Dir(base);
    let index = serde_json::json!({
        "champion": null,
        "models": [model(&models, "gbdt-7", "rejected", false)]
    });
    std::fs::write(models.join("registry.json"), index.to_string()).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_qtctl"))
        .args(["models", "list"])
        .current_dir(dir.path())
        .env_remove("QT_MODELS_DIR")
        .env_remove("QT_CLM__ARTIFACTS_DIR")
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
    assert!(stdout(&o).contains("gbdt-7"), "{}", stdout(&o));
    // clm's own variable names the directory too.
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_qtctl"))
        .args(["models", "list"])
        .current_dir(dir.path())
        .env_remove("QT_MODELS_DIR")
        .env("QT_CLM__ARTIFACTS_DIR", &elsewhere)
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("elsewhere/registry.json"),
        "{o:?}"
    );
}

#[test]
fn models_list_show_and_rollback_publish_the_previous_version() {
    let redis = RedisServer::start();
    // Cargo's per-target scratch directory (qtctl has no tempfile dependency).
    let base =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("models-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(&base).unwrap();
    let dir = Dir(base);
    let reg = dir.path().to_str().unwrap();
    let index = serde_json::json!({
        "champion": "gbdt-2",
        "models": [
            model(dir.path(), "gbdt-3", "rejected", false),
            model(dir.path(), "gbdt-2", "champion", true),
            model(dir.path(), "gbdt-1", "retired", true),
        ]
    });
    std::fs::write(dir.path().join("registry.json"), index.to_string()).unwrap();

    let o = qtctl(&redis.url(), &["models", "list", "--registry", reg]);
    assert!(o.status.success(), "{o:?}");
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "{out}");
    assert!(
        lines[1].starts_with("gbdt-3")
            && lines[1].contains("kept champion (beats_champion_net_pnl)")
    );
    assert!(lines[2].contains("champion") && lines[2].contains("12.5"));

    let o = qtctl(
        &redis.url(),
        &["models", "show", "gbdt-1", "--registry", reg],
    );
    assert!(o.status.success(), "{o:?}");
    let shown: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(shown["status"], "retired");
    let o = qtctl(&redis.url(), &["models", "show", "nope", "--registry", reg]);
    assert!(!o.status.success());

    // The deployed version cannot be "rolled back" to; an unknown one neither.
    let o = qtctl(
        &redis.url(),
        &["models", "rollback", "gbdt-2", "--registry", reg],
    );
    assert!(!o.status.success(), "{o:?}");
    let o = qtctl(
        &redis.url(),
        &["models", "rollback", "gbdt-9", "--registry", reg],
    );
    assert!(!o.status.success(), "{o:?}");
    assert_eq!(redis.raw(&["XLEN", "t:models"]).trim(), ":0");

    let o = qtctl(
        &redis.url(),
        &[
            "models",
            "rollback",
            "gbdt-1",
            "--registry",
            reg,
            "--reason",
            "drift",
        ],
    );
    assert!(o.status.success(), "{o:?}");
    assert_eq!(redis.raw(&["XLEN", "t:models"]).trim(), ":1");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let entries = rt
        .block_on(async {
            let bus = qt_bus::Bus::connect(
                qt_bus::BusConfig::new(redis.url(), qt_events::StreamNames::new("t:"), "test"),
                qt_events::clock::system(),
            )?;
            bus.range("t:models", "-", "+", 10).await
        })
        .unwrap();
    let env = Envelope::from_fields(entries[0].field_pairs()).unwrap();
    match env.event {
        Event::ModelRolledBack(r) => {
            assert_eq!(r.from_version, "gbdt-2");
            assert_eq!(r.artifact.model_version, "gbdt-1");
            assert_eq!(r.artifact.sha256, "sha-of-gbdt-1");
            assert!(r.artifact.artifact_uri.ends_with("gbdt-1.json"));
            assert_eq!(r.reason, "drift");
        }
        other => panic!("{other:?}"),
    }
}
