//! Bounded fuzzing of WebSocket frame decoding: real Binance frames mutated at random (a field
//! set to another JSON type or value, the text cut short or spliced with noise) and arbitrary
//! text. Nothing may panic; a frame that cannot be decoded is `None` (market) or an error
//! value (user data), never a crash. Runs in the default suite with a fixed case budget.

use proptest::prelude::*;
use qt_exchange::ws::{parse_market_message, parse_user_message};
use serde_json::{Value, json};

const FRAMES: [&str; 7] = [
    r#"{"e":"kline","E":1638747660000,"s":"BTCUSDT","k":{"t":1638747660000,"T":1638747719999,"s":"BTCUSDT","i":"1m","f":100,"L":200,"o":"0.0010","c":"0.0020","h":"0.0025","l":"0.0015","v":"1000","n":100,"x":true,"q":"1.0000","V":"500","Q":"0.500","B":"123456"}}"#,
    r#"{"stream":"btcusdt@markPrice@1s","data":{"e":"markPriceUpdate","E":1562305380000,"s":"BTCUSDT","p":"11794.15000000","ap":"11794.15000000","i":"11784.62659091","P":"11784.25641265","r":"0.00038167","T":1562306400000}}"#,
    r#"{"e":"aggTrade","E":123456789,"s":"BTCUSDT","a":5933014,"p":"0.001","q":"100","nq":"100","f":100,"l":105,"T":123456785,"m":true}"#,
    r#"{"e":"bookTicker","u":400900217,"E":1568014460893,"T":1568014460891,"s":"BNBUSDT","b":"25.35190000","B":"31.21000000","a":"25.36520000","A":"40.66000000"}"#,
    r#"{"e":"ORDER_TRADE_UPDATE","E":1568879465651,"T":1568879465650,"o":{"s":"BTCUSDT","c":"TEST","S":"SELL","o":"TRAILING_STOP_MARKET","f":"GTC","q":"0.001","p":"0","ap":"0","sp":"7103.04","x":"NEW","X":"NEW","i":8886774,"l":"0","z":"0","L":"0","N":"USDT","n":"0","T":1568879465650,"t":0,"b":"0","a":"9.91","m":false,"R":false,"wt":"CONTRACT_PRICE","ot":"TRAILING_STOP_MARKET","ps":"LONG","cp":false,"AP":"7476.89","cr":"5.0","pP":false,"si":0,"ss":0,"rp":"0","V":"EXPIRE_TAKER","pm":"OPPONENT","gtd":0,"er":"0"}}"#,
    r#"{"e":"ACCOUNT_UPDATE","E":1564745798939,"T":1564745798938,"a":{"m":"ORDER","B":[{"a":"USDT","wb":"122624.12345678","cw":"100.12345678","bc":"50.12345678"}],"P":[{"s":"BTCUSDT","pa":"0","ep":"0.00000","bep":"0","cr":"200","up":"0","mt":"isolated","iw":"0.00000000","ps":"BOTH"}]}}"#,
    r#"{"e":"ALGO_UPDATE","T":1750515742297,"E":1750515742303,"o":{"caid":"Q5xaq5EGKgXXa0fD7fs0Ip","aid":2148719,"at":"CONDITIONAL","o":"TAKE_PROFIT","s":"BNBUSDT","S":"SELL","ps":"BOTH","f":"GTC","q":"0.01","X":"CANCELED","ai":"","ap":"0.00000","aq":"0.00000","act":"0","tp":"750","p":"750","V":"EXPIRE_MAKER","wt":"CONTRACT_PRICE","pm":"NONE","cp":false,"pP":false,"R":false,"tt":0,"gtd":0,"rm":"Reduce Only reject"}}"#,
];

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        Just(json!(u64::MAX)),
        Just(json!("1e400")),
        Just(json!("-0")),
        Just(json!("NaN")),
        "\\PC{0,24}".prop_map(Value::from),
        Just(json!([])),
        Just(json!({})),
    ]
}

/// Sets the `n`-th key (in a walk of the object and its nested objects and arrays) to `v`.
fn set_nth(value: &mut Value, n: &mut usize, v: &Value) -> bool {
    match value {
        Value::Object(m) => {
            for (_, child) in m.iter_mut() {
                if *n == 0 {
                    *child = v.clone();
                    return true;
                }
                *n -= 1;
                if set_nth(child, n, v) {
                    return true;
                }
            }
            false
        }
        Value::Array(a) => a.iter_mut().any(|child| set_nth(child, n, v)),
        _ => false,
    }
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

fn decode(text: &str) {
    let _ = parse_market_message(text);
    let _ = parse_user_message(text);
}

proptest! {
    #![proptest_config(budget(512))]

    #[test]
    fn a_real_frame_with_any_field_replaced_decodes_or_is_refused_without_panicking(
        frame in 0..FRAMES.len(),
        field in 0usize..64,
        v in scalar(),
    ) {
        let mut value: Value = serde_json::from_str(FRAMES[frame]).expect("sample frames are JSON");
        let mut n = field;
        set_nth(&mut value, &mut n, &v);
        decode(&value.to_string());
    }

    #[test]
    fn a_real_frame_cut_short_or_spliced_with_noise_never_panics(
        frame in 0..FRAMES.len(),
        cut in 0usize..1200,
        noise in "\\PC{0,16}",
    ) {
        let text = FRAMES[frame];
        let mut at = cut.min(text.len());
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        decode(&text[..at]);
        decode(&format!("{}{noise}{}", &text[..at], &text[at..]));
    }

    #[test]
    fn arbitrary_text_never_panics_the_decoders(text in "\\PC{0,400}") {
        decode(&text);
    }
}

#[test]
fn the_unmutated_frames_decode() {
    for f in &FRAMES[..4] {
        assert!(parse_market_message(f).is_some(), "{f}");
    }
    for f in &FRAMES[4..] {
        assert!(parse_user_message(f).is_some(), "{f}");
    }
}
