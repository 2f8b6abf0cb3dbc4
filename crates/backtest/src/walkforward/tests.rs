use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use qt_candles::Candle;
use qt_exits::ExitConfig;
use qt_features::FeatureVector;
use qt_models::{Model, Signal};
use rust_decimal::Decimal;

use super::fold::FoldModels;
use qt_features::N_FEATURES;

/// Holds, counting the vectors it sees; reads `memory` of them.
#[derive(Debug)]
struct Counting {
    seen: Arc<AtomicUsize>,
    memory: usize,
    exits: Option<ExitConfig>,
}

impl Model for Counting {
    fn name(&self) -> &str {
        "counting"
    }
    fn version(&self) -> &str {
        "1"
    }
    fn predict(&mut self, _: &FeatureVector, _: &Candle) -> Signal {
        self.seen.fetch_add(1, Ordering::Relaxed);
        Signal::hold(1.0)
    }
    fn exits(&self) -> Option<&ExitConfig> {
        self.exits.as_ref()
    }
    fn memory(&self) -> usize {
        self.memory
    }
}

#[test]
fn a_fold_model_takes_over_with_its_exits_and_the_symbols_latest_vectors() {
    let wide = ExitConfig::default().scaled(Decimal::TWO);
    let (first, second) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let models: Vec<Box<dyn Model>> = vec![
        Box::new(Counting {
            seen: first.clone(),
            memory: 0,
            exits: None,
        }),
        Box::new(Counting {
            seen: second.clone(),
            memory: 5,
            exits: Some(wide.clone()),
        }),
    ];
    let mut f = FoldModels::new(vec![0, 10 * 300_000], models);
    assert_eq!(f.memory(), 5);
    for k in 0..=10 {
        let one = Decimal::ONE;
        let c = Candle::new(k * 300_000, one, one, one, one, one);
        let fv = FeatureVector {
            open_time: c.open_time,
            values: [0.0; N_FEATURES],
        };
        f.predict_for("AAA", &fv, &c);
        if k < 10 {
            assert_eq!(
                f.exits(),
                None,
                "the first fold's model has no exits of its own"
            );
        }
    }
    assert_eq!(
        f.exits(),
        Some(&wide),
        "the second fold's model trades its own exits"
    );
    // The second model saw the 5 latest vectors before its first candle, then that one.
    assert_eq!(first.load(Ordering::Relaxed), 10);
    assert_eq!(second.load(Ordering::Relaxed), 6);
}
