//! Reads the real Binance files: the committed halt fixture and the repo's 60-day data.

use std::path::PathBuf;

use qt_candles::{
    Decimal, fill_gaps, gaps, list_kline_files, parse_interval, read_dir, read_klines, resample,
};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn repo_klines() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/klines/5m")
}

#[test]
fn halt_of_2023_03_24_is_found_as_one_gap_of_16_candles() {
    let candles = read_klines(fixture("BTCUSDT-5m-halt-2023-03-24.csv.gz")).expect("fixture reads");
    assert_eq!(candles.len(), 56);
    let g = gaps(&candles, 300_000);
    assert_eq!(g.len(), 1, "{g:?}");
    // Last candle 12:35 UTC, next 14:00 UTC: 85 minutes, 16 candles missing.
    assert_eq!(g[0].before, 1_679_661_300_000);
    assert_eq!(g[0].after, 1_679_666_400_000);
    assert_eq!(g[0].missing, 16);
    assert_eq!(g[0].duration_ms(), 85 * 60_000);
    // The halt is preceded by real zero-volume candles, which are kept.
    assert!(candles.iter().filter(|c| c.is_zero_volume()).count() >= 8);
    let filled = fill_gaps(&candles, 300_000);
    assert_eq!(filled.len(), 56 + 16);
    assert!(gaps(&filled, 300_000).is_empty());
}

#[test]
fn gzip_and_plain_copies_of_a_file_read_the_same() {
    let gz = read_klines(fixture("BTCUSDT-5m-halt-2023-03-24.csv.gz")).expect("gzip reads");
    let plain = read_klines(fixture("BTCUSDT-5m-halt-2023-03-24.csv")).expect("plain reads");
    assert_eq!(gz, plain);
}

#[test]
fn resampling_across_the_halt_keeps_the_short_hour() {
    let candles = read_klines(fixture("BTCUSDT-5m-halt-2023-03-24.csv.gz")).expect("fixture reads");
    let hours = resample(&candles, 300_000, 3_600_000).expect("1h is a multiple of 5m");
    // 12:00..17:55 in the file: hour 12 has 12:00-12:35 then the halt (kept, short), hour 13
    // is missing entirely, hours 14 to 17 are full.
    let h = 3_600_000;
    let opens: Vec<i64> = hours.iter().map(|c| c.open_time).collect();
    let noon = 1_679_659_200_000;
    assert_eq!(
        opens,
        vec![noon, noon + 2 * h, noon + 3 * h, noon + 4 * h, noon + 5 * h]
    );
    let short_hour = &candles[..8];
    assert_eq!(candles[8].open_time, noon + 2 * h);
    assert_eq!(hours[0].open, short_hour[0].open);
    assert_eq!(hours[0].close, short_hour[7].close);
    assert_eq!(
        hours[0].volume,
        short_hour.iter().map(|c| c.volume).sum::<Decimal>()
    );
    let full_hour = &candles[8..20];
    assert_eq!(
        hours[1].high,
        full_hour.iter().map(|c| c.high).max().expect("12 candles")
    );
    assert_eq!(
        hours[1].low,
        full_hour.iter().map(|c| c.low).min().expect("12 candles")
    );
    // Starting mid-hour drops the first, incomplete hour.
    let from_mid = resample(&candles[1..], 300_000, h).expect("valid");
    assert_eq!(from_mid[0].open_time, noon + 2 * h);
}

#[test]
fn repo_data_folder_reads_six_symbols_without_big_gaps() {
    let files = list_kline_files(repo_klines()).expect("data folder lists");
    let symbols: Vec<&str> = files.iter().map(|f| f.symbol.as_str()).collect();
    assert_eq!(
        symbols,
        [
            "ADAUSDT", "BNBUSDT", "BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT"
        ]
    );
    let all = read_dir(repo_klines()).expect("every file reads");
    for (file, candles) in &all {
        assert_eq!(file.interval_ms, parse_interval("5m").expect("5m"));
        // 60 days of 5m candles.
        assert!(
            candles.len() > 17_000,
            "{} has {}",
            file.symbol,
            candles.len()
        );
        let longest = gaps(candles, file.interval_ms)
            .iter()
            .map(|g| g.missing)
            .max()
            .unwrap_or(0);
        assert!(
            longest < 12,
            "{} has a gap of {longest} candles",
            file.symbol
        );
    }
}
