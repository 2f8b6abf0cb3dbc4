//! `soak-watch SIM_ADDR STOP_FILE`: the watcher of `scripts/soak.sh`. Reads the simulator's
//! book (`GET /sim/book`, which costs no request weight) every 200 ms until `STOP_FILE`
//! exists, then prints one JSON line: the samples taken, the most symbols holding a position at
//! once, and every stretch in which a symbol held a position with neither its stop resting on
//! the exchange nor a market close working (`bare`, longest first, with when it began).
//! Samples while the simulator does not answer are counted as `unreachable` and skipped.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use qt_e2e::http_get;
use serde_json::{Value, json};

/// The symbols of a book whose position has no protection working.
fn unprotected(book: &Value) -> (usize, Vec<String>) {
    let list = |a: &Value, k: &str| a[k].as_array().cloned().unwrap_or_default();
    let mut held = 0;
    let mut bare = Vec::new();
    for a in book["accounts"].as_array().into_iter().flatten() {
        let (algos, orders) = (list(a, "openAlgoOrders"), list(a, "openOrders"));
        for p in list(a, "positions") {
            let Some(amt) = p["positionAmt"].as_str() else {
                continue;
            };
            let Some(symbol) = p["symbol"].as_str() else {
                continue;
            };
            held += 1;
            let close = if amt.starts_with('-') { "BUY" } else { "SELL" };
            let stop = algos.iter().any(|o| {
                o["symbol"] == symbol
                    && (o["orderType"] == "STOP_MARKET" || o["orderType"] == "TRAILING_STOP_MARKET")
                    && o["side"] == close
            });
            let closing = orders
                .iter()
                .any(|o| o["symbol"] == symbol && o["reduceOnly"] == true && o["side"] == close);
            if !stop && !closing {
                bare.push(symbol.to_owned());
            }
        }
    }
    (held, bare)
}

fn epoch_ms(t: SystemTime) -> u128 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis()
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let (Some(sim), Some(stop)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: soak-watch SIM_ADDR STOP_FILE");
        return ExitCode::from(2);
    };
    let stop = std::path::Path::new(stop);
    let mut open: BTreeMap<String, (Instant, SystemTime)> = BTreeMap::new();
    let mut stretches: Vec<Value> = Vec::new();
    let (mut samples, mut unreachable, mut max_held) = (0u64, 0u64, 0usize);
    let end = |symbol: String, since: (Instant, SystemTime), at: Instant| {
        json!({"symbol": symbol, "from_ms": epoch_ms(since.1),
            "secs": (at - since.0).as_secs_f64()})
    };
    while !stop.exists() {
        let at = (Instant::now(), SystemTime::now());
        let book = http_get(sim, "/sim/book")
            .filter(|(s, _)| *s == 200)
            .and_then(|(_, body)| serde_json::from_str::<Value>(&body).ok());
        match book {
            None => unreachable += 1,
            Some(book) => {
                samples += 1;
                let (held, bare) = unprotected(&book);
                max_held = max_held.max(held);
                for s in &bare {
                    open.entry(s.clone()).or_insert(at);
                }
                for s in open.keys().cloned().collect::<Vec<_>>() {
                    if !bare.contains(&s)
                        && let Some(since) = open.remove(&s)
                    {
                        stretches.push(end(s, since, at.0));
                    }
                }
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let now = Instant::now();
    for (s, since) in std::mem::take(&mut open) {
        stretches.push(end(s, since, now));
    }
    stretches.sort_by(|a, b| {
        b["secs"]
            .as_f64()
            .partial_cmp(&a["secs"].as_f64())
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    println!(
        "{}",
        json!({"samples": samples, "unreachable": unreachable, "max_positions": max_held,
            "bare": stretches})
    );
    ExitCode::SUCCESS
}
