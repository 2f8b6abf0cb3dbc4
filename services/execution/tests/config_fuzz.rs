//! Bounded fuzzing of configuration loading: execution's settings from arbitrary values of its
//! real variables and from an arbitrary config file. Loading and validation answer with a
//! value or an error naming the setting (the binary then exits 2); nothing panics.

use std::io::Write;

use proptest::prelude::*;
use qt_runtime::Config;

const KEYS: [&str; 14] = [
    "QT_EXECUTION__INTENT_LANES",
    "QT_EXECUTION__MAX_SENDS",
    "QT_EXECUTION__LIMITS__MAX_DAILY_LOSS",
    "QT_EXECUTION__LIMITS__MAX_DRAWDOWN_PCT",
    "QT_EXECUTION__LIMITS__MAX_CONCURRENT_POSITIONS",
    "QT_EXECUTION__LIMITS__COOLDOWN_MINUTES",
    "QT_EXECUTION__LIMITS__MAX_SIDE_FRACTION",
    "QT_EXECUTION__LIMITS",
    "QT_EXECUTION__NO_SUCH_SETTING",
    "QT_EXECUTION",
    "QT_HTTP_ADDR",
    "QT_LOG_FORMAT",
    "QT_INSTANCE",
    "QT_REDIS_URL",
];

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|v| v.to_string()),
        any::<f64>().prop_map(|v| v.to_string()),
        Just("1e400".to_owned()),
        Just("[1,2,3]".to_owned()),
        Just("{a=1}".to_owned()),
        Just("true".to_owned()),
        Just(String::new()),
        "\\PC{0,40}",
    ]
}

/// A fixed budget and a fixed seed, so every CI run tries the same cases (a fuzzer must not make
/// the suite flaky); `PROPTEST_RNG_SEED=<n>` (and a larger budget here) explores others.
fn budget(cases: u32) -> ProptestConfig {
    let mut c = ProptestConfig::with_cases(cases);
    if std::env::var_os("PROPTEST_RNG_SEED").is_none() {
        c.rng_seed = proptest::test_runner::RngSeed::Fixed(20_261_204);
    }
    c
}

fn load(env: Vec<(String, String)>) {
    if let Ok(c) = Config::<execution::Settings>::load_from("execution", env) {
        let _ = c.service.validate();
    }
}

proptest! {
    #![proptest_config(budget(256))]

    #[test]
    fn any_values_of_the_real_variables_load_or_are_refused_without_panicking(
        pairs in prop::collection::vec((0..KEYS.len(), value()), 0..8),
    ) {
        load(pairs.into_iter().map(|(k, v)| (KEYS[k].to_owned(), v)).collect());
    }

    #[test]
    fn any_config_file_loads_or_is_refused_without_panicking(text in "\\PC{0,300}", table: bool) {
        let mut f = tempfile::NamedTempFile::new().expect("temp file");
        let body = if table { format!("[execution]\n{text}") } else { text };
        f.write_all(body.as_bytes()).expect("write");
        load(vec![(
            "QT_CONFIG".to_owned(),
            f.path().display().to_string(),
        )]);
    }
}

#[test]
fn a_bad_value_is_an_error_naming_the_setting() {
    let e = Config::<execution::Settings>::load_from(
        "execution",
        [(
            "QT_EXECUTION__LIMITS__MAX_DAILY_LOSS".to_owned(),
            "lots".to_owned(),
        )],
    )
    .expect_err("not a number");
    assert!(e.to_string().contains("MAX_DAILY_LOSS"), "{e}");
}
