//! `status`, `positions`, `trades`, `pnl`: what the system holds and earned (from
//! portfolio-intelligence's HTTP API) and whether every service is healthy (their
//! `/health/ready`) with the streams' length, pending entries, lag and dead letters (Redis).
//!
//! Read-only: these commands never publish anything. HTTP is plain `http://` (the services
//! listen inside the deployment's network); an unreachable service or Redis is a clear error and
//! a non-zero exit.

use std::io::Write;
use std::time::Duration;

use anyhow::{Context, bail};
use qt_events::Stream;
use qt_events::api::{MetricsResponse, PortfolioResponse, PositionsResponse, TradesResponse};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::streams::Ctx;

const DEFAULT_API: &str = "http://127.0.0.1:8084";
const DEFAULT_SERVICES: &str = "trading-bot=http://127.0.0.1:8081,execution=http://127.0.0.1:8082,exit-brain=http://127.0.0.1:8083,portfolio-intelligence=http://127.0.0.1:8084,clm=http://127.0.0.1:8085";

#[derive(Debug, clap::Args)]
pub struct ApiArgs {
    /// Base URL of portfolio-intelligence's HTTP API.
    #[arg(long, env = "QT_PORTFOLIO_URL", default_value = DEFAULT_API)]
    api: String,
}

#[derive(Debug, clap::Args)]
pub struct TradesArgs {
    #[command(flatten)]
    api: ApiArgs,
    /// How many of the latest closed trades.
    #[arg(short = 'n', long, default_value_t = 20)]
    count: usize,
}

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// The services to check, as `name=url` separated by commas.
    #[arg(long, env = "QT_SERVICES", default_value = DEFAULT_SERVICES)]
    services: String,
}

/// A plain HTTP/1.1 GET; returns the status code and the body.
pub async fn http_get(url: &str) -> anyhow::Result<(u16, String)> {
    let rest = url
        .strip_prefix("http://")
        .with_context(|| format!("{url:?}: only http:// URLs are supported"))?;
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let addr = if host.contains(':') {
        host.to_owned()
    } else {
        format!("{host}:80")
    };
    let exchange = async {
        let mut s = tokio::net::TcpStream::connect(&addr).await?;
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: application/json\r\nConnection: close\r\nUser-Agent: qtctl\r\n\r\n"
        );
        s.write_all(req.as_bytes()).await?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await?;
        Ok::<_, std::io::Error>(buf)
    };
    let buf = tokio::time::timeout(Duration::from_secs(3), exchange)
        .await
        .map_err(|_| anyhow::anyhow!("{host} did not answer within 3 s"))?
        .with_context(|| format!("{host} is unreachable"))?;
    let text = String::from_utf8_lossy(&buf);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .with_context(|| format!("{host} sent an incomplete HTTP answer"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse::<u16>().ok())
        .with_context(|| format!("{host} sent an unreadable status line"))?;
    let chunked = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_owned()
    };
    Ok((status, body))
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// `GET path` of portfolio-intelligence's API, read into its `qt_events::api` type.
async fn api_json<T: serde::de::DeserializeOwned>(base: &str, path: &str) -> anyhow::Result<T> {
    let url = format!("{}{path}", base.trim_end_matches('/'));
    let (status, body) = http_get(&url).await.with_context(|| {
        format!("portfolio-intelligence is unreachable at {base} (QT_PORTFOLIO_URL / --api)")
    })?;
    if status != 200 {
        bail!(
            "portfolio-intelligence answered {status} for {path}: {}",
            body.chars().take(200).collect::<String>()
        );
    }
    serde_json::from_str(&body).with_context(|| format!("unreadable JSON from {path}"))
}

fn pct(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |f| format!("{:.2}%", f * 100.0))
}

fn ratio(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |f| format!("{f:.2}"))
}

pub async fn positions(ctx: &Ctx, args: ApiArgs) -> anyhow::Result<()> {
    let v: PositionsResponse = api_json(&args.api, "/api/positions").await?;
    let mut out = std::io::stdout().lock();
    if ctx.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&v.positions)?)?;
        return Ok(());
    }
    if v.positions.is_empty() {
        writeln!(out, "no open position")?;
        return Ok(());
    }
    writeln!(
        out,
        "{:<12} {:<5} {:>12} {:>12} {:>12} {:>12} {:>12} {:>8}  MODEL",
        "SYMBOL", "SIDE", "QTY", "ENTRY", "MARK", "NOTIONAL", "PNL", "PNL%"
    )?;
    for p in &v.positions {
        let o = &p.position;
        writeln!(
            out,
            "{:<12} {:<5} {:>12} {:>12} {:>12} {:>12} {:>12} {:>8}  {}",
            o.symbol,
            o.side,
            o.quantity.to_string(),
            o.entry_price.to_string(),
            p.mark_price.to_string(),
            p.notional.to_string(),
            p.unrealized_pnl.to_string(),
            pct(Some(p.unrealized_pct)),
            o.model_version,
        )?;
    }
    Ok(())
}

pub async fn trades(ctx: &Ctx, args: TradesArgs) -> anyhow::Result<()> {
    let v: TradesResponse =
        api_json(&args.api.api, &format!("/api/trades?limit={}", args.count)).await?;
    let mut out = std::io::stdout().lock();
    if ctx.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&v.trades)?)?;
        return Ok(());
    }
    if v.trades.is_empty() {
        writeln!(out, "no closed trade")?;
        return Ok(());
    }
    writeln!(
        out,
        "{:<12} {:<5} {:>10} {:>12} {:>12} {:>10} {:>8} {:<12} MODEL",
        "SYMBOL", "SIDE", "QTY", "ENTRY", "EXIT", "NET PNL", "FEES", "REASON"
    )?;
    for t in &v.trades {
        writeln!(
            out,
            "{:<12} {:<5} {:>10} {:>12} {:>12} {:>10} {:>8} {:<12} {}",
            t.symbol,
            t.side,
            t.quantity.to_string(),
            t.entry_price.to_string(),
            t.exit_price.to_string(),
            t.net_pnl.to_string(),
            t.fees.to_string(),
            t.reason,
            t.model_version,
        )?;
    }
    Ok(())
}

pub async fn pnl(ctx: &Ctx, args: ApiArgs) -> anyhow::Result<()> {
    let p: PortfolioResponse = api_json(&args.api, "/api/portfolio").await?;
    let m: MetricsResponse = api_json(&args.api, "/api/metrics").await?;
    let mut out = std::io::stdout().lock();
    if ctx.json {
        let mut metrics = serde_json::to_value(&m)?;
        if let Some(o) = metrics.as_object_mut() {
            o.remove("equity_curve");
        }
        let v = json!({ "portfolio": p, "metrics": metrics });
        writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
        return Ok(());
    }
    let sn = &p.snapshot;
    let t = &m.totals;
    let rows = [
        ("Equity", sn.equity.to_string()),
        ("Wallet balance", sn.wallet_balance.to_string()),
        ("Unrealized PnL", sn.unrealized_pnl.to_string()),
        ("Realized today (net)", sn.realized_pnl_today.to_string()),
        ("Daily PnL", sn.daily_pnl.to_string()),
        ("Realized total (net)", m.realized_pnl_total.to_string()),
        ("Open positions", sn.open_positions.to_string()),
        ("Gross exposure", sn.gross_exposure.to_string()),
        ("Net exposure", sn.net_exposure.to_string()),
        ("Trades", t.trades.to_string()),
        ("Win rate", pct(t.win_rate)),
        ("Profit factor", ratio(t.profit_factor)),
        ("Max drawdown", m.max_drawdown.amount.to_string()),
        ("Sharpe (per snapshot)", ratio(m.sharpe)),
        ("Sortino (per snapshot)", ratio(m.sortino)),
        ("Diversification", ratio(Some(m.diversification))),
    ];
    for (k, v) in rows {
        writeln!(out, "{k:<24} {v}")?;
    }
    if !m.by_model_version.is_empty() {
        writeln!(out)?;
        writeln!(
            out,
            "{:<24} {:>7} {:>9} {:>9} {:>12}",
            "MODEL VERSION", "TRADES", "WIN RATE", "PF", "NET PNL"
        )?;
        for (k, v) in &m.by_model_version {
            writeln!(
                out,
                "{:<24} {:>7} {:>9} {:>9} {:>12}",
                k,
                v.trades,
                pct(v.win_rate),
                ratio(v.profit_factor),
                v.net_pnl.to_string(),
            )?;
        }
    }
    Ok(())
}

fn parse_services(list: &str) -> anyhow::Result<Vec<(String, String)>> {
    list.split(',')
        .filter(|x| !x.trim().is_empty())
        .map(|x| {
            let (name, url) = x
                .split_once('=')
                .with_context(|| format!("bad service {x:?}: expected name=url"))?;
            Ok((name.trim().to_owned(), url.trim().to_owned()))
        })
        .collect()
}

/// The model trading-bot trades with now: the model and version of the newest signal.
async fn trading_model(ctx: &Ctx) -> anyhow::Result<Option<(String, String)>> {
    let key = ctx.bus.key(Stream::Signals);
    let last = ctx
        .bus
        .last(&key, 1)
        .await
        .with_context(|| format!("reading {key}"))?;
    Ok(last.iter().find_map(|raw| {
        match qt_events::Envelope::from_fields(raw.field_pairs())
            .ok()?
            .event
        {
            qt_events::Event::SignalGenerated(s) => Some((s.model, s.model_version)),
            _ => None,
        }
    }))
}

pub async fn status(ctx: &Ctx, args: StatusArgs) -> anyhow::Result<()> {
    let services = parse_services(&args.services)?;
    let mut health = Vec::new();
    for (name, url) in &services {
        let probe = format!("{}/health/ready", url.trim_end_matches('/'));
        let (ready, detail) = match http_get(&probe).await {
            Ok((200, _)) => (true, "ready".to_owned()),
            Ok((code, body)) => {
                let why = serde_json::from_str::<Value>(&body)
                    .ok()
                    .and_then(|v| v.as_object().cloned())
                    .map(|o| {
                        o.iter()
                            .filter(|(k, v)| *k != "ready" && **v == Value::Bool(false))
                            .map(|(k, _)| k.clone())
                            .collect::<Vec<_>>()
                            .join(", ")
                    })
                    .filter(|s| !s.is_empty())
                    .map_or_else(String::new, |s| format!(": {s} not ready"));
                (false, format!("answered {code}{why}"))
            }
            Err(e) => (false, format!("unreachable: {e:#}")),
        };
        health.push((name.clone(), url.clone(), ready, detail));
    }
    let redis_ok = ctx.bus.reachable(Duration::from_secs(2)).await;
    let mut streams = Vec::new();
    if redis_ok {
        for st in Stream::ALL {
            let stats = ctx
                .bus
                .stats(st)
                .await
                .with_context(|| format!("reading {}", ctx.bus.key(st)))?;
            streams.push((st, stats));
        }
    }
    let dead = streams
        .iter()
        .find(|(s, _)| *s == Stream::Dlq)
        .map(|(_, st)| st.length);
    let model = if redis_ok {
        trading_model(ctx).await?
    } else {
        None
    };
    let mut out = std::io::stdout().lock();
    if ctx.json {
        let v = json!({
            "services": health.iter().map(|(n, u, r, d)| json!({"name": n, "url": u, "ready": r, "detail": d})).collect::<Vec<_>>(),
            "redis": redis_ok,
            "streams": streams.iter().map(|(s, st)| json!({
                "stream": s.suffix(), "length": st.length,
                "groups": st.groups.iter().map(|g| json!({"name": g.name, "pending": g.pending, "lag": g.lag})).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "dead_letters": dead,
            "model": model.as_ref().map(|(m, v)| json!({"model": m, "model_version": v})),
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
    } else {
        writeln!(out, "{:<24} {:<10} DETAIL", "SERVICE", "STATE")?;
        for (n, _, r, d) in &health {
            writeln!(
                out,
                "{:<24} {:<10} {}",
                n,
                if *r { "ready" } else { "NOT READY" },
                d
            )?;
        }
        writeln!(out)?;
        if redis_ok {
            writeln!(
                out,
                "{:<12} {:>9} {:>9} {:>9}  GROUPS (pending/lag)",
                "STREAM", "LENGTH", "PENDING", "LAG"
            )?;
            for (s, st) in &streams {
                let pending: u64 = st.groups.iter().map(|g| g.pending).sum();
                let lag: u64 = st.groups.iter().map(|g| g.lag.unwrap_or(0)).sum();
                let groups = st
                    .groups
                    .iter()
                    .map(|g| format!("{} {}/{}", g.name, g.pending, g.lag.unwrap_or(0)))
                    .collect::<Vec<_>>()
                    .join(", ");
                writeln!(
                    out,
                    "{:<12} {:>9} {:>9} {:>9}  {}",
                    s.suffix(),
                    st.length,
                    pending,
                    lag,
                    groups
                )?;
            }
            writeln!(out, "\ndead letters: {}", dead.unwrap_or(0))?;
            let line = match &model {
                None => "no signal yet".to_owned(),
                Some((m, _)) if m == qt_models::NoModel::NAME => {
                    "none: no validated model, trading nothing (every signal is HOLD until clm \
                     deploys a model its gate validated)"
                        .to_owned()
                }
                Some((m, v)) => format!("{m} {v}"),
            };
            writeln!(out, "model: {line}")?;
        }
    }
    drop(out);
    if !redis_ok {
        bail!("redis is unreachable (QT_REDIS_URL / --redis-url)");
    }
    let down: Vec<&str> = health
        .iter()
        .filter(|h| !h.2)
        .map(|h| h.0.as_str())
        .collect();
    if !down.is_empty() {
        bail!("not ready: {}", down.join(", "));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_bodies_are_joined() {
        assert_eq!(dechunk("4\r\nWiki\r\n5\r\npedia\r\n0\r\n\r\n"), "Wikipedia");
    }

    #[test]
    fn services_parse_as_name_equals_url() {
        let s = parse_services("a=http://x:1, b=http://y:2").unwrap();
        assert_eq!(s[1], ("b".to_owned(), "http://y:2".to_owned()));
        assert!(parse_services("nope").is_err());
    }
}
