//! Model cards: clm's registry (`registry.json` in its artifacts directory, the file
//! `qtctl models list|show` reads) turned into the gate's cards, and clm's schedule from its
//! `/health/clm` (the next retrain, the run in progress, the last result).
//!
//! Both are read leniently: a registry written by an older or newer clm shows what it holds;
//! a missing field is `None`, never a guess.

use std::path::{Path, PathBuf};

use qt_events::api::{
    CardBacktest, CardWalkForward, GateCheckView, ModelCard, ModelsView, RetrainResult,
    RetrainSchedule,
};
use rust_decimal::Decimal;
use serde_json::Value;

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_owned()
}

fn int(v: &Value) -> Option<i64> {
    v.as_i64()
}

fn uint(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

fn float(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

fn decimal(v: &Value) -> Option<Decimal> {
    match v {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.to_string().parse().ok(),
        _ => None,
    }
}

/// The card of one registry row.
pub fn card(row: &Value) -> ModelCard {
    let meta = &row["metadata"];
    let decision = &meta["decision"];
    let checks: Vec<GateCheckView> = decision["checks"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|c| GateCheckView {
                    name: text(&c["name"]),
                    passed: c["passed"].as_bool().unwrap_or(false),
                    detail: text(&c["detail"]),
                })
                .collect()
        })
        .unwrap_or_default();
    let reason = checks
        .iter()
        .filter(|c| !c.passed)
        .map(|c| format!("{}: {}", c.name, c.detail))
        .collect::<Vec<_>>()
        .join("; ");
    let c = &meta["challenger"];
    let backtest = decimal(&c["net_pnl"]).map(|net_pnl| CardBacktest {
        net_pnl,
        max_drawdown_pct: float(&c["max_drawdown_pct"]),
        trades: uint(&c["trades"]),
        win_rate: float(&c["win_rate"]),
    });
    // clm keeps the walk-forward as a Rust `Result`: `{"Ok": card}` or `{"Err": why}`.
    let wf = &meta["walkforward"];
    let walkforward = wf.get("Ok").map(|w| CardWalkForward {
        folds: uint(&w["folds"]),
        strategy_return: float(&w["strategy_return"]),
        strategy_trades: uint(&w["strategy_trades"]),
        strategy_max_drawdown_pct: float(&w["strategy_max_drawdown_pct"]),
        strategy_sharpe: w["strategy_sharpe"].as_f64(),
        momentum_return: float(&w["momentum_return"]),
        buy_and_hold_return: float(&w["buy_and_hold_return"]),
        random_median_return: float(&w["random_median_return"]),
        random_p95_return: float(&w["random_p95_return"]),
        dsr: w["dsr"].as_f64(),
        trials: uint(&w["trials"]),
        verdict: text(&w["verdict"]),
    });
    ModelCard {
        version: text(&row["version"]),
        kind: text(&row["kind"]),
        status: text(&row["status"]),
        created_at: int(&row["created_at"]).unwrap_or(0),
        deployed_at: int(&row["deployed_at"]),
        promoted: decision["promote"].as_bool(),
        reason,
        checks,
        backtest,
        walkforward,
        walkforward_error: wf.get("Err").map(text),
    }
}

/// Reads `registry.json` in `dir` into `view` (cards newest first, as clm writes them).
pub fn read_registry(dir: &Path, view: &mut ModelsView) {
    let path = dir.join("registry.json");
    view.registry = path.display().to_string();
    let parsed = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))
        .and_then(|t| {
            serde_json::from_str::<Value>(&t)
                .map_err(|e| format!("cannot parse {}: {e}", path.display()))
        });
    match parsed {
        Ok(idx) => {
            view.champion = idx["champion"].as_str().map(str::to_owned);
            view.cards = idx["models"]
                .as_array()
                .map(|a| a.iter().map(card).collect())
                .unwrap_or_default();
            view.registry_error = None;
        }
        Err(e) => {
            view.champion = None;
            view.cards.clear();
            view.registry_error = Some(e);
        }
    }
}

/// clm's schedule from its `/health/clm` body.
pub fn schedule(body: &Value) -> Option<RetrainSchedule> {
    let s = body.get("schedule")?;
    let last = &s["last_result"];
    Some(RetrainSchedule {
        next_run_at: int(&s["next_run_at"]).unwrap_or(0),
        in_progress: s["in_progress"]["version"].as_str().map(str::to_owned),
        requested: !s["requested"].is_null(),
        last_result: last.is_object().then(|| RetrainResult {
            version: text(&last["version"]),
            finished_at: int(&last["finished_at"]).unwrap_or(0),
            outcome: text(&last["outcome"]),
            detail: text(&last["detail"]),
        }),
        runs: uint(&s["runs"]),
    })
}

/// Asks clm at `base` for its schedule.
pub async fn fetch_schedule(http: &reqwest::Client, base: &str) -> Result<RetrainSchedule, String> {
    let url = format!("{}/health/clm", base.trim_end_matches('/'));
    let r = http
        .get(&url)
        .send()
        .await
        .map_err(|e| format!("clm unreachable: {}", e.without_url()))?;
    if !r.status().is_success() {
        return Err(format!("/health/clm answered {}", r.status().as_u16()));
    }
    let body: Value = r
        .json()
        .await
        .map_err(|e| format!("/health/clm: {}", e.without_url()))?;
    schedule(&body).ok_or_else(|| "/health/clm has no schedule".to_owned())
}

/// The newest walk-forward report clm wrote (`<dir>/reports/<version>/report.html`, by the
/// file's modification time): its version and path.
pub fn latest_report(dir: &Path) -> Option<(String, PathBuf)> {
    std::fs::read_dir(dir.join("reports"))
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let path = e.path().join("report.html");
            let modified = std::fs::metadata(&path).and_then(|m| m.modified()).ok()?;
            Some((modified, e.file_name().to_string_lossy().into_owned(), path))
        })
        .max_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(&b.1)))
        .map(|(_, v, p)| (v, p))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_refused_card_names_the_failed_checks_and_keeps_the_walk_forward() {
        let row = json!({
            "version": "gbdt-2", "kind": "gbdt", "status": "rejected", "created_at": 5,
            "deployed_at": null,
            "metadata": {
                "challenger": {"net_pnl": "-12.5", "max_drawdown_pct": 0.04, "trades": 31, "win_rate": 0.45},
                "walkforward": {"Ok": {"folds": 4, "strategy_return": -0.02, "strategy_trades": 80,
                    "strategy_max_drawdown_pct": 0.06, "strategy_sharpe": -0.4, "momentum_return": 0.01,
                    "buy_and_hold_return": 0.03, "random_median_return": -0.01, "random_p95_return": 0.02,
                    "dsr": 0.12, "trials": 19, "verdict": "loses to momentum"}},
                "decision": {"promote": false, "checks": [
                    {"name": "min_trades", "passed": true, "detail": "31 trades, need 5"},
                    {"name": "min_net_pnl", "passed": false, "detail": "net PnL -12.5 after fees, need 0"},
                    {"name": "walkforward_dsr", "passed": false, "detail": "0.12 < 0.95"}]}
            }
        });
        let c = card(&row);
        assert_eq!(c.promoted, Some(false));
        assert_eq!(
            c.reason,
            "min_net_pnl: net PnL -12.5 after fees, need 0; walkforward_dsr: 0.12 < 0.95"
        );
        assert_eq!(c.backtest.unwrap().net_pnl, Decimal::new(-125, 1));
        let w = c.walkforward.unwrap();
        assert_eq!((w.folds, w.trials, w.dsr), (4, 19, Some(0.12)));
        assert_eq!(w.buy_and_hold_return, 0.03);
        assert!(c.walkforward_error.is_none());
    }

    #[test]
    fn a_walk_forward_that_could_not_run_says_why() {
        let c =
            card(&json!({"version": "v", "metadata": {"walkforward": {"Err": "too few candles"}}}));
        assert!(c.walkforward.is_none());
        assert_eq!(c.walkforward_error.as_deref(), Some("too few candles"));
        assert_eq!(c.promoted, None);
    }

    #[test]
    fn the_schedule_reads_next_run_progress_and_last_result() {
        let s = schedule(&json!({"schedule": {"next_run_at": 99, "requested": "cmd-1",
            "in_progress": {"version": "gbdt-3", "run_id": "r", "started_at": 1, "trigger": "schedule"},
            "last_result": {"version": "gbdt-2", "finished_at": 50, "outcome": "rejected", "detail": "x"},
            "runs": 2}, "champion": null}))
        .unwrap();
        assert_eq!(s.next_run_at, 99);
        assert!(s.requested);
        assert_eq!(s.in_progress.as_deref(), Some("gbdt-3"));
        assert_eq!(s.last_result.unwrap().outcome, "rejected");
        assert!(schedule(&json!({"status": "ok"})).is_none());
    }
}
