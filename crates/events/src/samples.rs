//! One fixed example of every event, for golden fixtures, schema checks and tests elsewhere.
//! Values are stable: the golden fixtures under `tests/fixtures` were written from them.

use std::collections::BTreeMap;
use std::str::FromStr;

use rust_decimal::Decimal;

use crate::payload::*;
use crate::{EVENT_TYPES, Event};

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap_or_default()
}

fn signal() -> SignalRef {
    SignalRef {
        signal_id: "0194f0a0-0000-7000-8000-000000000001".into(),
        model: "gbdt".into(),
        model_version: "gbdt-20260101-1".into(),
        confidence: 0.71,
        features: BTreeMap::from([("rsi_14".to_owned(), 61.5), ("atr_14".to_owned(), 12.25)]),
        exits: Some(ExitSettings {
            low_vol: 0.02,
            high_vol: 0.05,
            low_vol_targets_pct: vec![d("1.4625"), d("2.4375"), d("3.9")],
            high_vol_targets_pct: vec![d("2.25"), d("3.75"), d("6")],
            leg_fractions: vec![d("0.3"), d("0.3"), d("0.4")],
            stop_pct: d("1.5"),
            break_even_after_first_leg: true,
            break_even_offset_pct: Decimal::ZERO,
            trailing_activation_pct: None,
            trailing_callback_pct: d("0.75"),
            trailing_min_step: d("0.25"),
            time_stop_minutes: Some(720),
            chandelier_vol_mult: None,
            close_on_flip: false,
            learning_rate: d("0.1"),
            min_multiplier: d("0.5"),
            max_multiplier: d("2"),
        }),
    }
}

fn fill(kind: OrderKind, cumulative: &str) -> OrderFill {
    OrderFill {
        intent_id: "intent-1".into(),
        client_order_id: "qt-0123456789abcdef0123456789abcde".into(),
        exchange_order_id: Some("8886774".into()),
        symbol: "BTCUSDT".into(),
        side: Side::Buy,
        kind,
        last_qty: d("0.004"),
        last_price: d("29174.2"),
        cumulative_qty: d(cumulative),
        avg_price: d("29174.2"),
        order_qty: d("0.008"),
        fee: d("0.04668"),
        fee_asset: "USDT".into(),
        realized_pnl: Decimal::ZERO,
        trade_id: 123_456,
        reduce_only: false,
        trade_time: 1_691_068_800_000,
    }
}

fn ended(reason: &str) -> OrderEnded {
    OrderEnded {
        intent_id: "intent-1".into(),
        client_order_id: "qt-0123456789abcdef0123456789abcde".into(),
        exchange_order_id: Some("8886774".into()),
        symbol: "BTCUSDT".into(),
        filled_qty: d("0.004"),
        reason: reason.into(),
    }
}

fn artifact() -> ModelArtifactRef {
    ModelArtifactRef {
        model_version: "gbdt-20260101-1".into(),
        model: "gbdt".into(),
        artifact_uri: "/models/gbdt-20260101-1.json".into(),
        sha256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".into(),
    }
}

/// The example of the event type named `name`.
pub fn sample(name: &str) -> Option<Event> {
    Some(match name {
        "CandleClosed" => Event::CandleClosed(CandleClosed {
            symbol: "BTCUSDT".into(),
            interval: "5m".into(),
            open_time: 1_691_068_500_000,
            close_time: 1_691_068_799_999,
            open: d("29155.36"),
            high: d("29181.69"),
            low: d("29155.0"),
            close: d("29174.2"),
            volume: d("101.39418"),
            quote_volume: d("2957000.5"),
            trades: 2_114,
        }),
        "MarkPriceUpdated" => Event::MarkPriceUpdated(MarkPriceUpdated {
            symbol: "BTCUSDT".into(),
            mark_price: d("29174.85"),
            index_price: Some(d("29170.01")),
            funding_rate: Some(d("0.0001")),
            event_time: 1_691_068_801_000,
        }),
        "SignalGenerated" => Event::SignalGenerated(SignalGenerated {
            symbol: "BTCUSDT".into(),
            action: SignalAction::Buy,
            confidence: 0.71,
            model: "gbdt".into(),
            model_version: "gbdt-20260101-1".into(),
            candle_open_time: 1_691_068_500_000,
            features: BTreeMap::from([("rsi_14".to_owned(), 61.5)]),
            expected_return: Some(0.0012),
        }),
        "OpenPosition" => Event::OpenPosition(OpenPosition {
            intent_id: "intent-1".into(),
            symbol: "BTCUSDT".into(),
            side: PositionSide::Long,
            quantity: d("0.085"),
            order_type: OrderKind::Market,
            limit_price: None,
            leverage: 10,
            reference_price: d("29174.2"),
            signal: Some(signal()),
        }),
        "ReducePosition" => Event::ReducePosition(ReducePosition {
            intent_id: "intent-2".into(),
            symbol: "BTCUSDT".into(),
            quantity: d("0.025"),
            order_type: OrderKind::Market,
            limit_price: None,
            reason: "take_profit".into(),
            position_side: Some(PositionSide::Long),
        }),
        "ClosePosition" => Event::ClosePosition(ClosePosition {
            intent_id: "intent-3".into(),
            symbol: "BTCUSDT".into(),
            reason: "time_stop".into(),
            position_side: Some(PositionSide::Long),
        }),
        "ProtectPosition" => Event::ProtectPosition(ProtectPosition {
            intent_id: "intent-4".into(),
            symbol: "BTCUSDT".into(),
            position_side: PositionSide::Long,
            stop: Some(StopLeg {
                trigger_price: d("28590.7"),
                working_type: WorkingType::MarkPrice,
            }),
            take_profits: vec![
                TakeProfitLeg {
                    leg: "tp1".into(),
                    trigger_price: d("29743.1"),
                    quantity: d("0.025"),
                },
                TakeProfitLeg {
                    leg: "tp2".into(),
                    trigger_price: d("30122.4"),
                    quantity: d("0.025"),
                },
            ],
            trailing: Some(TrailingLeg {
                activation_price: d("30400"),
                callback_rate: d("0.8"),
                quantity: d("0.035"),
            }),
        }),
        "CancelOrder" => Event::CancelOrder(CancelOrder {
            intent_id: "intent-5".into(),
            symbol: "BTCUSDT".into(),
            client_order_id: "qt-0123456789abcdef0123456789abcde".into(),
            conditional: true,
        }),
        "OrderAccepted" => Event::OrderAccepted(OrderAccepted {
            intent_id: "intent-1".into(),
            client_order_id: "qt-0123456789abcdef0123456789abcde".into(),
            exchange_order_id: Some("8886774".into()),
            symbol: "BTCUSDT".into(),
            side: Side::Buy,
            kind: OrderKind::Market,
            quantity: d("0.085"),
            price: None,
            trigger_price: None,
            reduce_only: false,
        }),
        "OrderRejected" => Event::OrderRejected(OrderRejected {
            intent_id: "intent-6".into(),
            client_order_id: None,
            symbol: "ETHUSDT".into(),
            reason: RejectReason::MaxConcurrentPositions,
            message: "8 positions and orders in flight, limit 8".into(),
            exchange_code: None,
            until_ms: None,
        }),
        "OrderPartiallyFilled" => Event::OrderPartiallyFilled(fill(OrderKind::Market, "0.004")),
        "OrderFilled" => Event::OrderFilled(fill(OrderKind::Market, "0.008")),
        "OrderCancelled" => Event::OrderCancelled(ended("user")),
        "OrderExpired" => Event::OrderExpired(ended("ioc")),
        "PositionOpened" => Event::PositionOpened(PositionOpened {
            position_id: "BTCUSDT-1691068800000".into(),
            symbol: "BTCUSDT".into(),
            side: PositionSide::Long,
            quantity: d("0.085"),
            entry_price: d("29174.2"),
            leverage: 10,
            intent_id: "intent-1".into(),
            opened_at: 1_691_068_800_000,
            signal: Some(signal()),
        }),
        "PositionChanged" => Event::PositionChanged(PositionChanged {
            position_id: "BTCUSDT-1691068800000".into(),
            symbol: "BTCUSDT".into(),
            side: PositionSide::Long,
            quantity: d("0.06"),
            entry_price: d("29174.2"),
            realized_pnl: d("14.2225"),
            fees: d("1.5"),
            ts: 1_691_070_000_000,
        }),
        "PositionClosed" => Event::PositionClosed(PositionClosed {
            position_id: "BTCUSDT-1691068800000".into(),
            symbol: "BTCUSDT".into(),
            side: PositionSide::Long,
            max_quantity: d("0.085"),
            entry_price: d("29174.2"),
            exit_price: d("29900.1"),
            realized_pnl: d("61.7015"),
            fees: d("2.5"),
            net_pnl: d("59.2015"),
            opened_at: 1_691_068_800_000,
            closed_at: 1_691_080_000_000,
            reason: "take_profit".into(),
            signal: Some(signal()),
        }),
        "FundingFeeCharged" => Event::FundingFeeCharged(FundingFeeCharged {
            symbol: "BTCUSDT".into(),
            amount: d("-0.02927428"),
            asset: "USDT".into(),
            time: 1_691_164_800_123,
            tran_id: "42".into(),
            position_id: Some("BTCUSDT-1691068800000".into()),
        }),
        "PortfolioSnapshot" => Event::PortfolioSnapshot(PortfolioSnapshot {
            ts: 1_691_080_000_000,
            equity: d("10059.2"),
            wallet_balance: d("10000"),
            unrealized_pnl: d("59.2"),
            realized_pnl_today: d("12.5"),
            daily_pnl: d("71.7"),
            gross_exposure: d("2500"),
            net_exposure: d("500"),
            long_exposure: d("1500"),
            short_exposure: d("1000"),
            open_positions: 3,
        }),
        "ModelDeployed" => Event::ModelDeployed(ModelDeployed {
            artifact: artifact(),
            metrics: BTreeMap::from([
                ("net_pnl".to_owned(), 312.5),
                ("max_drawdown".to_owned(), 0.061),
            ]),
            deployed_at: 1_691_080_000_000,
        }),
        "ModelRolledBack" => Event::ModelRolledBack(ModelRolledBack {
            from_version: "gbdt-20260102-1".into(),
            artifact: artifact(),
            reason: "operator".into(),
            rolled_back_at: 1_691_090_000_000,
        }),
        "SetKillSwitch" => Event::SetKillSwitch(SetKillSwitch {
            command_id: "cmd-1".into(),
            enabled: true,
            reason: "news".into(),
            requested_by: "qtctl".into(),
        }),
        "CloseAll" => Event::CloseAll(CloseAll {
            command_id: "cmd-2".into(),
            reason: "end of test".into(),
            requested_by: "qtctl".into(),
        }),
        "RetrainNow" => Event::RetrainNow(RetrainNow {
            command_id: "cmd-3".into(),
            reason: "drift".into(),
            requested_by: "dashboard".into(),
        }),
        "ReloadConfig" => Event::ReloadConfig(ReloadConfig {
            command_id: "cmd-4".into(),
            service: Some("execution".into()),
            requested_by: "qtctl".into(),
        }),
        "ResumeTrading" => Event::ResumeTrading(ResumeTrading {
            command_id: "cmd-5".into(),
            reason: "drawdown reviewed".into(),
            requested_by: "qtctl".into(),
        }),
        "AlertRaised" => Event::AlertRaised(AlertRaised {
            rule: "daily_loss_near_limit".into(),
            key: String::new(),
            severity: Severity::Warning,
            message: "daily loss at 82% of its limit".into(),
            service: "portfolio-intelligence".into(),
            details: BTreeMap::from([("daily_pnl".to_owned(), "-41.0".to_owned())]),
        }),
        "ContextObserved" => Event::ContextObserved(ContextObserved {
            source: "fear_greed".into(),
            request: "fng".into(),
            published_at: 1_691_068_860_000,
            fetched_at: Some(1_691_068_800_000),
            age_ms: Some(60_000),
            freshness: Freshness::Fresh,
            reason: None,
            values: vec![ContextValue {
                metric: "fear_greed".into(),
                symbol: None,
                value: Some(d("40")),
                label: Some("Fear".into()),
                as_of: Some(1_691_020_800_000),
            }],
        }),
        "DeadLettered" => Event::DeadLettered(DeadLettered {
            stream: "qt:intents".into(),
            entry_id: "1691068800000-0".into(),
            group: "execution".into(),
            consumer: "execution-0".into(),
            reason: "undecodable: missing field \"type\"".into(),
            deliveries: 1,
            fields: vec![RawField {
                name: "junk".into(),
                value: vec![0xff, 0x00],
            }],
        }),
        _ => return None,
    })
}

/// Every type's example, in contract order.
pub fn all() -> Vec<Event> {
    EVENT_TYPES.iter().filter_map(|t| sample(t.name)).collect()
}
