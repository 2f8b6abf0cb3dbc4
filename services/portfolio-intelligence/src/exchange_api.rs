//! The exchange API's health as the services that call it report it: each polled service's
//! `/metrics` (Prometheus text) read for `qt-exchange`'s series — `qt_exchange_used_weight_1m`
//! (the IP's request weight this minute, from the exchange's last answer),
//! `qt_exchange_rate_limited_total{status="429"|"418"}` and the latency summary
//! `qt_exchange_request_seconds`. A service without any of them (it does not call the
//! exchange's REST API) is left out.

use std::collections::BTreeMap;

use qt_events::api::ExchangeApiView;

/// One sample line: name, labels, value.
fn samples(text: &str) -> impl Iterator<Item = (&str, BTreeMap<&str, &str>, f64)> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (head, value) = l.rsplit_once(' ')?;
            let value: f64 = value.trim().parse().ok()?;
            let (name, labels) = match head.split_once('{') {
                Some((n, rest)) => (n, rest.trim_end_matches('}')),
                None => (head, ""),
            };
            let labels = labels
                .split(',')
                .filter_map(|kv| {
                    let (k, v) = kv.split_once('=')?;
                    Some((k.trim(), v.trim().trim_matches('"')))
                })
                .collect();
            Some((name.trim(), labels, value))
        })
}

/// The exchange API figures in one `/metrics` text; `None` when it has no `qt_exchange_*`
/// REST series.
pub fn parse(service: &str, text: &str, weight_limit_1m: u32) -> Option<ExchangeApiView> {
    let mut v = ExchangeApiView {
        service: service.into(),
        weight_used_1m: None,
        weight_limit_1m,
        rate_limited_429: 0,
        banned_418: 0,
        requests: 0,
        latency_p50_ms: None,
        latency_p99_ms: None,
        error: None,
    };
    let mut seen = false;
    for (name, labels, value) in samples(text) {
        match name {
            "qt_exchange_used_weight_1m" => v.weight_used_1m = Some(value),
            "qt_exchange_rate_limited_total" => match labels.get("status").copied() {
                Some("429") => v.rate_limited_429 += value as u64,
                Some("418") => v.banned_418 += value as u64,
                _ => {}
            },
            "qt_exchange_request_seconds_count" => v.requests = value as u64,
            "qt_exchange_request_seconds" => match labels.get("quantile").copied() {
                Some("0.5") => v.latency_p50_ms = Some(value * 1000.0),
                Some("0.99") => v.latency_p99_ms = Some(value * 1000.0),
                _ => continue,
            },
            _ => continue,
        }
        seen = true;
    }
    seen.then_some(v)
}

/// Reads every service's `/metrics`; a service that cannot be read is listed with why.
pub async fn poll(
    http: &reqwest::Client,
    services: &BTreeMap<String, String>,
    weight_limit_1m: u32,
) -> Vec<ExchangeApiView> {
    let mut out = Vec::new();
    for (name, base) in services {
        let url = format!("{}/metrics", base.trim_end_matches('/'));
        let text = match http.get(&url).send().await {
            Ok(r) if r.status().is_success() => {
                r.text().await.map_err(|e| e.without_url().to_string())
            }
            Ok(r) => Err(format!("/metrics answered {}", r.status().as_u16())),
            Err(e) => Err(format!("unreachable: {}", e.without_url())),
        };
        match text {
            Ok(t) => out.extend(parse(name, &t, weight_limit_1m)),
            // Unreachable services are already shown by the readiness poll; listed here only
            // so a reader knows their figures are unknown.
            Err(e) => out.push(ExchangeApiView {
                service: name.clone(),
                weight_used_1m: None,
                weight_limit_1m,
                rate_limited_429: 0,
                banned_418: 0,
                requests: 0,
                latency_p50_ms: None,
                latency_p99_ms: None,
                error: Some(e),
            }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_weight_rate_limits_and_latency_and_skips_services_without_them() {
        let text = "# TYPE qt_exchange_used_weight_1m gauge\nqt_exchange_used_weight_1m 37\n\
            qt_exchange_rate_limited_total{status=\"429\"} 4\nqt_exchange_rate_limited_total{status=\"418\"} 1\n\
            qt_exchange_request_seconds{quantile=\"0.5\"} 0.0042\nqt_exchange_request_seconds{quantile=\"0.99\"} 0.25\n\
            qt_exchange_request_seconds_sum 0.9\nqt_exchange_request_seconds_count 20\nqt_bus_lag 3\n";
        let v = parse("execution", text, 2400).unwrap();
        assert_eq!(v.weight_used_1m, Some(37.0));
        assert_eq!((v.rate_limited_429, v.banned_418, v.requests), (4, 1, 20));
        assert_eq!(v.latency_p50_ms, Some(4.2));
        assert_eq!(v.latency_p99_ms, Some(250.0));
        assert!(parse("clm", "qt_bus_lag 3\n", 2400).is_none());
    }
}
