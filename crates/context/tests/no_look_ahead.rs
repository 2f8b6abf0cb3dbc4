//! Context features read at a time never depend on anything published after it: the same
//! answer from the whole history as from the history cut at that time, for random series and
//! times; a value described before `t` but published after it is not used.

#![allow(clippy::unwrap_used)]

use qt_context::ContextHistory;
use qt_context::history::{FeatureSpec, HistoryRow, published_at};
use rust_decimal::Decimal;

struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

fn random_rows(rng: &mut Lcg, metric: &str, period: i64) -> Vec<HistoryRow> {
    let mut t = 1_700_000_000_000;
    let mut rows = Vec::new();
    for _ in 0..300 {
        // Gaps of one to five periods: missing history stays missing.
        t += period * (1 + i64::try_from(rng.next(5)).unwrap());
        rows.push(HistoryRow {
            published_at: published_at(metric, t, period),
            as_of: t,
            value: Decimal::from(i64::try_from(rng.next(1000)).unwrap()) / Decimal::from(100),
            label: None,
        });
    }
    rows
}

#[test]
fn features_at_a_time_equal_those_of_the_history_cut_at_that_time() {
    let mut rng = Lcg(7);
    let period = 300_000;
    let mut full = ContextHistory::default();
    full.insert(
        "funding_rate",
        Some("BTCUSDT"),
        random_rows(&mut rng, "funding_rate", 8 * 3_600_000),
    );
    full.insert(
        "open_interest",
        Some("BTCUSDT"),
        random_rows(&mut rng, "open_interest", period),
    );
    full.insert(
        "fear_greed",
        None,
        random_rows(&mut rng, "fear_greed", 86_400_000),
    );
    let specs = [
        FeatureSpec::new("funding_rate", true, 9 * 3_600_000),
        FeatureSpec::new("open_interest", true, 3 * period),
        FeatureSpec::new("fear_greed", false, 2 * 86_400_000),
    ];
    let mut seen_some = [0; 3];
    let mut seen_none = [0; 3];
    for _ in 0..2_000 {
        let t = 1_700_000_000_000 + i64::try_from(rng.next(300 * 5 * 86_400_000)).unwrap();
        let mut cut = ContextHistory::default();
        for (metric, sym) in full
            .series()
            .map(|(m, s)| (m.to_string(), s.map(str::to_string)))
            .collect::<Vec<_>>()
        {
            let rows: Vec<_> = full
                .rows(&metric, sym.as_deref())
                .iter()
                .filter(|r| r.published_at <= t)
                .cloned()
                .collect();
            cut.insert(&metric, sym.as_deref(), rows);
        }
        let a = full.features_at("BTCUSDT", t, &specs);
        let b = cut.features_at("BTCUSDT", t, &specs);
        assert_eq!(a, b, "at {t}: a later row changed a feature");
        for (i, v) in a.iter().enumerate() {
            if v.is_some() {
                seen_some[i] += 1;
            } else {
                seen_none[i] += 1;
            }
        }
    }
    // The test exercises both present and missing values of every series.
    assert!(
        seen_some.iter().all(|n| *n > 0) && seen_none.iter().all(|n| *n > 0),
        "{seen_some:?} {seen_none:?}"
    );
}

#[test]
fn a_value_describing_the_past_but_published_later_is_not_known_yet() {
    let mut h = ContextHistory::default();
    // Fear & greed of day D (stamped D 00:00) counts as published at D+1 00:00.
    let day = 1_700_006_400_000; // 2023-11-15 00:00 UTC
    h.insert(
        "fear_greed",
        None,
        vec![HistoryRow {
            published_at: published_at("fear_greed", day, 0),
            as_of: day,
            value: Decimal::from(70),
            label: Some("Greed".into()),
        }],
    );
    let spec = [FeatureSpec::new("fear_greed", false, 2 * 86_400_000)];
    assert_eq!(
        h.features_at("BTCUSDT", day + 12 * 3_600_000, &spec),
        vec![None]
    );
    assert_eq!(
        h.features_at("BTCUSDT", day + 86_400_000, &spec),
        vec![Some(70.0)]
    );
    // Binance's 5-minute statistics stamped T cover [T, T+5m): known a minute after T+5m.
    assert_eq!(published_at("taker_buy_sell_ratio", 0, 300_000), 360_000);
    assert_eq!(published_at("funding_rate", 0, 0), 60_000);
}
