//! `qtctl backtest` and `qtctl walkforward` each write one self-contained `report.html`: the
//! real binary on the repo's candles, the written page parsed — its tags balanced, every chart
//! an inline SVG, nothing in it that names a URL or loads anything (so it opens offline), and
//! the charts a reader expects (equity against the baselines, drawdown, monthly returns, the
//! trades' distribution, and for the walk-forward the random-entry distribution with the
//! strategy marked).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo_file(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../data/klines/5m")
        .join(name)
        .display()
        .to_string()
}

fn qtctl(args: &[&str]) {
    let out = Command::new(env!("CARGO_BIN_EXE_qtctl"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "qtctl {args:?}:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The start and end tags of `html` in order: `(name, closing)`; void and self-closed
/// elements are left out.
fn tags(html: &str) -> Vec<(String, bool)> {
    const VOID: [&str; 6] = ["meta", "br", "hr", "img", "input", "link"];
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(i) = rest.find('<') {
        rest = &rest[i + 1..];
        let end = rest.find('>').expect("every tag ends");
        let tag = &rest[..end];
        rest = &rest[end + 1..];
        if tag.starts_with('!') {
            continue;
        }
        let closing = tag.starts_with('/');
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        if tag.ends_with('/') || VOID.contains(&name.as_str()) {
            continue;
        }
        out.push((name, closing));
    }
    out
}

/// Checks the page opens offline and is well formed; returns its text.
fn self_contained(path: &Path) -> String {
    let html = std::fs::read_to_string(path).unwrap();
    let lower = html.to_ascii_lowercase();
    for external in [
        "http://", "https://", "src=", "href=", "url(", "@import", "<link", "<script", "<img",
        "<iframe", "//cdn",
    ] {
        assert!(
            !lower.contains(external),
            "{} names something outside itself: {external}",
            path.display()
        );
    }
    let mut open: Vec<String> = Vec::new();
    for (name, closing) in tags(&html) {
        if closing {
            let top = open.pop();
            assert_eq!(
                top.as_deref(),
                Some(name.as_str()),
                "{} is balanced",
                path.display()
            );
        } else {
            open.push(name);
        }
    }
    assert!(open.is_empty(), "unclosed: {open:?}");
    assert!(lower.starts_with("<!doctype html>"));
    html
}

/// The inline SVGs of a page.
fn svgs(html: &str) -> Vec<&str> {
    html.match_indices("<svg")
        .map(|(i, _)| &html[i..i + html[i..].find("</svg>").unwrap()])
        .collect()
}

#[test]
fn backtest_and_walkforward_write_self_contained_html_reports_with_their_charts() {
    let dir = tempfile::tempdir().unwrap();
    let bt = dir.path().join("bt");
    let eth = repo_file("ETHUSDT-5m.csv.gz");
    let bnb = repo_file("BNBUSDT-5m.csv.gz");
    qtctl(&[
        "backtest",
        &eth,
        &bnb,
        "--strategy",
        "momentum",
        "--from",
        "2023-08-10",
        "--to",
        "2023-09-20",
        "--out",
        bt.to_str().unwrap(),
        "--quiet",
    ]);
    let html = self_contained(&bt.join("report.html"));
    for part in [
        "<h2>Equity</h2>",
        "buy &amp; hold (equal weight)",
        "<h2>Drawdown</h2>",
        "<h2>Monthly returns</h2>",
        "2023-08",
        "2023-09",
        "<h2>Trades: net PnL after every cost</h2>",
    ] {
        assert!(html.contains(part), "the backtest report shows {part}");
    }
    let charts = svgs(&html);
    assert_eq!(charts.len(), 3, "equity, drawdown, trades");
    assert_eq!(
        charts[0].matches("<polyline").count(),
        2,
        "strategy and buy & hold"
    );
    assert!(charts[1].contains("<polygon"), "the drawdown drawn");
    assert!(
        charts[2].matches("<rect").count() >= 40,
        "the trades' histogram"
    );

    let wf = dir.path().join("wf");
    qtctl(&[
        "walkforward",
        &eth,
        &bnb,
        "--kind",
        "momentum",
        "--train-days",
        "14",
        "--test-days",
        "7",
        "--random-paths",
        "100",
        "--out",
        wf.to_str().unwrap(),
        "--quiet",
    ]);
    let html = self_contained(&wf.join("report.html"));
    for part in [
        "Verdict",
        "<h2>Out-of-sample equity against the baselines</h2>",
        "<h2>Drawdown of the strategy</h2>",
        "<h2>Monthly returns</h2>",
        "<h2>Trades: net PnL after every cost</h2>",
        "<h2>Random entries: net return of 100 paths",
    ] {
        assert!(html.contains(part), "the walk-forward report shows {part}");
    }
    let charts = svgs(&html);
    assert_eq!(
        charts[0].matches("<polyline").count(),
        4,
        "the strategy and 3 baselines"
    );
    for name in [
        "strategy",
        "momentum",
        "buy &amp; hold",
        "random entries (median path)",
    ] {
        assert!(charts[0].contains(name), "the equity legend names {name}");
    }
    let random = charts.last().unwrap();
    assert!(
        random.contains("stroke=\"#d62728\"") && random.contains("th percentile)"),
        "the strategy marked among the random paths"
    );
    // The standalone chart file keeps its namespace (it is an SVG document of its own).
    let svg = std::fs::read_to_string(wf.join("equity.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("xmlns="));
}
