//! `qtctl backtest` and `qtctl walkforward` each write one self-contained `report.html`: the
//! real binary on the repo's candles, the written page parsed — its tags balanced, every chart
//! an inline SVG, nothing in it that names a URL or loads anything (so it opens offline) — and
//! each chart a reader expects checked against the run's own files (`trades.csv`,
//! `metrics.json`, `report.json`): equity beside its baselines with the drawdown underneath on
//! UTC date axes of the run's span; per symbol, the candles with one entry, exit and stop mark
//! per trade at the trades' prices; PnL by symbol, by hour of day and by weekday; the long/short
//! balance; monthly returns; the trades' distribution; and the random-entry distribution with
//! the strategy marked at its return.
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

/// The opening tag of an element: the text from `<` up to `>`.
fn open_tag(s: &str) -> &str {
    &s[..s.find('>').unwrap()]
}

/// The value of `attr` in a tag.
fn attr<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let key = format!(" {name}=\"");
    let i = tag.find(&key)? + key.len();
    Some(&tag[i..i + tag[i..].find('"')?])
}

/// The chart whose opening tag carries `data-chart="name"` (and `data-symbol`, if given).
fn chart<'a>(html: &'a str, name: &str, symbol: Option<&str>) -> &'a str {
    svgs(html)
        .into_iter()
        .find(|s| {
            let tag = open_tag(s);
            attr(tag, "data-chart") == Some(name)
                && symbol.is_none_or(|sym| attr(tag, "data-symbol") == Some(sym))
        })
        .unwrap_or_else(|| panic!("no {name} chart {symbol:?}"))
}

/// The opening tags inside `svg` that carry `key="value"`.
fn marks<'a>(svg: &'a str, key: &str, value: &str) -> Vec<&'a str> {
    let needle = format!(" {key}=\"{value}\"");
    svg.match_indices('<')
        .map(|(i, _)| open_tag(&svg[i..]))
        .filter(|t| t.contains(&needle))
        .collect()
}

fn num(tag: &str, name: &str) -> f64 {
    attr(tag, name)
        .unwrap_or_else(|| panic!("{name} in {tag}"))
        .parse()
        .unwrap()
}

/// `YYYY-MM-DD` of a UTC time, by the civil-from-days algorithm (written again here so the
/// test does not check the report's dates with the report's own code).
fn utc_date(ms: i64) -> String {
    let z = ms.div_euclid(86_400_000) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// One trade of `trades.csv`: symbol, side, entry time, exit time, entry price, exit price,
/// net PnL.
struct CsvTrade {
    symbol: String,
    long: bool,
    exit_time: i64,
    entry_price: String,
    exit_price: String,
    net: f64,
}

fn read_trades(path: &Path) -> Vec<CsvTrade> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| {
            let v: Vec<&str> = l.split(',').collect();
            CsvTrade {
                symbol: v[0].to_owned(),
                long: v[1] == "LONG",
                exit_time: v[3].parse().unwrap(),
                entry_price: v[4].to_owned(),
                exit_price: v[5].to_owned(),
                net: v[9].parse().unwrap(),
            }
        })
        .collect()
}

fn decimal(v: &serde_json::Value) -> f64 {
    match v {
        serde_json::Value::String(s) => s.parse().unwrap(),
        other => other.as_f64().unwrap(),
    }
}

/// Checks every common chart of a report against the run: `curves` the equity lines' names,
/// `symbols` the symbols traded, `span` the window (ms), `strategy_return` and `paths` the
/// random-entry distribution's mark and size. Returns the equity chart's axis labels.
fn check_charts(
    html: &str,
    trades: &[CsvTrade],
    curves: &[&str],
    symbols: &[&str],
    span: (i64, i64),
    strategy_return: f64,
    paths: usize,
) -> Vec<String> {
    assert!(!trades.is_empty(), "the run traded");
    // Equity beside its baselines, drawdown underneath, UTC dates of the run's span.
    let equity = chart(html, "equity", None);
    let lines = marks(equity, "fill", "none")
        .into_iter()
        .filter(|t| t.starts_with("<polyline"))
        .map(|t| attr(t, "data-curve").unwrap().to_owned())
        .collect::<Vec<_>>();
    assert_eq!(lines, curves, "the equity lines");
    assert_eq!(
        marks(equity, "data-curve", "drawdown").len(),
        1,
        "the drawdown underneath"
    );
    let labels: Vec<(i64, String)> = marks(equity, "data-axis", "t")
        .into_iter()
        .map(|t| {
            let ms: i64 = attr(t, "data-t").unwrap().parse().unwrap();
            let end = equity.find(t).unwrap() + t.len() + 1;
            let text = &equity[end..end + equity[end..].find('<').unwrap()];
            (ms, text.to_owned())
        })
        .collect();
    assert!(labels.len() >= 3, "a time axis: {labels:?}");
    for (ms, text) in &labels {
        assert!(
            *ms >= span.0 && *ms <= span.1,
            "{text} outside the run's span"
        );
        assert_eq!(text, &utc_date(*ms), "a UTC date label");
        assert_eq!(ms % 86_400_000, 0, "at midnight UTC");
    }
    // Per symbol: candles, and one entry, exit and stop per trade, at the trades' prices.
    for sym in symbols {
        let svg = chart(html, "candles", Some(sym));
        let mine: Vec<&CsvTrade> = trades.iter().filter(|t| t.symbol == *sym).collect();
        assert!(svg.matches("<rect").count() > 50, "{sym}'s candles drawn");
        let prices = |kind: &str| {
            let mut v: Vec<String> = marks(svg, "data-mark", kind)
                .iter()
                .map(|t| attr(t, "data-price").unwrap().to_owned())
                .collect();
            v.sort();
            v
        };
        let mut want: Vec<String> = mine.iter().map(|t| t.entry_price.clone()).collect();
        want.sort();
        assert_eq!(prices("entry"), want, "{sym}: an entry mark per trade");
        let mut want: Vec<String> = mine.iter().map(|t| t.exit_price.clone()).collect();
        want.sort();
        assert_eq!(prices("exit"), want, "{sym}: an exit mark per trade");
        assert_eq!(
            marks(svg, "data-level", "stop").len(),
            mine.len(),
            "{sym}: stops"
        );
        assert!(
            marks(svg, "data-level", "target").len() >= mine.len(),
            "{sym}: targets"
        );
    }
    // PnL by symbol, hour of the close and weekday of the close, as the trades add up.
    let by = |svg: &str, key: &dyn Fn(&CsvTrade) -> String| {
        let bars: Vec<&str> = svg
            .match_indices("<rect data-bar=")
            .map(|(i, _)| open_tag(&svg[i..]))
            .collect();
        for bar in &bars {
            let label = attr(bar, "data-bar").unwrap();
            let mine: Vec<&CsvTrade> = trades.iter().filter(|t| key(t) == label).collect();
            assert_eq!(
                num(bar, "data-trades") as usize,
                mine.len(),
                "trades of {label}"
            );
            let net: f64 = mine.iter().map(|t| t.net).sum();
            assert!(
                (num(bar, "data-value") - net).abs() < 0.011,
                "net of {label}: {net}"
            );
        }
        bars.len()
    };
    let n = by(chart(html, "pnl-by-symbol", None), &|t| t.symbol.clone());
    assert_eq!(n, symbols.len());
    let hour = |t: &CsvTrade| format!("{:02}", t.exit_time.rem_euclid(86_400_000) / 3_600_000);
    assert_eq!(by(chart(html, "pnl-by-hour", None), &hour), 24);
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    let day = |t: &CsvTrade| {
        DAYS[(t.exit_time.div_euclid(86_400_000) + 3).rem_euclid(7) as usize].to_owned()
    };
    assert_eq!(by(chart(html, "pnl-by-weekday", None), &day), 7);
    // Long/short balance.
    let longs = trades.iter().filter(|t| t.long).count();
    assert!(
        html.contains(&format!("data-side=\"long\" data-trades=\"{longs}\""))
            && html.contains(&format!(
                "data-side=\"short\" data-trades=\"{}\"",
                trades.len() - longs
            )),
        "the long/short table"
    );
    let balance = chart(html, "balance", None);
    assert_eq!(marks(balance, "data-curve", "long").len(), 1);
    assert_eq!(marks(balance, "data-curve", "short").len(), 1);
    // Monthly returns: every month of the span.
    for ms in [span.0, span.1 - 1] {
        let month = &utc_date(ms)[..7];
        assert!(
            html.contains(&format!("data-month=\"{month}\"")),
            "{month}'s return"
        );
    }
    // The trades' distribution holds every trade; the random paths' every path, the
    // strategy marked at its return.
    let count = |svg: &str| -> usize {
        svg.match_indices("data-count=\"")
            .map(|(i, _)| {
                let v = &svg[i + 12..];
                v[..v.find('"').unwrap()].parse::<usize>().unwrap()
            })
            .sum::<usize>()
    };
    assert_eq!(count(chart(html, "trades", None)), trades.len());
    let random = chart(html, "random", None);
    assert!(paths >= 100);
    assert_eq!(count(random), paths, "every random path");
    let mark = marks(random, "data-mark", "value");
    assert_eq!(mark.len(), 1);
    assert!(
        (num(mark[0], "data-value") - strategy_return).abs() < 1e-6,
        "the strategy marked at its return {strategy_return}"
    );
    labels.into_iter().map(|l| l.1).collect()
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
        "--random-paths",
        "120",
        "--out",
        bt.to_str().unwrap(),
        "--quiet",
    ]);
    let html = self_contained(&bt.join("report.html"));
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(bt.join("metrics.json")).unwrap()).unwrap();
    let ret = decimal(&m["final_equity"]) / decimal(&m["initial_equity"]) - 1.0;
    let labels = check_charts(
        &html,
        &read_trades(&bt.join("trades.csv")),
        &["strategy", "buy &amp; hold (equal weight)"],
        &["BNBUSDT", "ETHUSDT"],
        (1_691_625_600_000, 1_695_168_000_000),
        ret,
        120,
    );
    // Mondays of the span, 2023-08-10 → 2023-09-20.
    assert_eq!(
        labels,
        [
            "2023-08-14",
            "2023-08-21",
            "2023-08-28",
            "2023-09-04",
            "2023-09-11",
            "2023-09-18"
        ]
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
    assert!(html.contains("Verdict") && html.contains("<h2>Folds</h2>"));
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(wf.join("report.json")).unwrap()).unwrap();
    let folds = r["folds"].as_array().unwrap();
    let span = (
        folds[0]["fold"]["test_start"].as_i64().unwrap(),
        folds[folds.len() - 1]["fold"]["test_end"].as_i64().unwrap(),
    );
    check_charts(
        &html,
        &read_trades(&wf.join("trades.csv")),
        &[
            "strategy",
            "momentum",
            "buy &amp; hold (equal weight)",
            "random entries (median path)",
        ],
        &["BNBUSDT", "ETHUSDT"],
        span,
        r["strategy"]["total_return"].as_f64().unwrap(),
        r["random"]["paths"].as_u64().unwrap() as usize,
    );
    // The standalone chart file keeps its namespace (it is an SVG document of its own).
    let svg = std::fs::read_to_string(wf.join("equity.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("xmlns="));
}
