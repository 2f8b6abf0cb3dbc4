//! The exchange side and the periodic work: the sync of positions and balances with the
//! exchange (drift), the health of the other services, and the loop that snapshots, observes
//! and raises alerts.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use qt_exchange::Exchange;
use rust_decimal::Decimal;
use tokio_util::sync::CancellationToken;

use crate::alerts::ServiceHealth;
use crate::app::{AppError, Shared};
use crate::book::{Drift, ExchangePosition, ExchangeView};

pub(crate) fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap_or_default()
}

pub(crate) async fn poll_services(services: &BTreeMap<String, String>) -> Vec<ServiceHealth> {
    if services.is_empty() {
        return Vec::new();
    }
    let http = http_client();
    let mut out = Vec::with_capacity(services.len());
    for (name, base) in services {
        let url = format!("{}/health/ready", base.trim_end_matches('/'));
        let (ready, detail) = match http.get(&url).send().await {
            Ok(r) if r.status().is_success() => (true, "ready".to_owned()),
            Ok(r) => (
                false,
                format!("/health/ready answered {}", r.status().as_u16()),
            ),
            Err(e) => (false, format!("unreachable: {}", e.without_url())),
        };
        out.push(ServiceHealth {
            name: name.clone(),
            ready,
            detail,
        });
    }
    out
}

/// The service with its exchange.
#[derive(Debug)]
pub struct Intel<E> {
    pub shared: Arc<Shared>,
    pub exchange: E,
}

impl<E: Exchange> Intel<E> {
    pub fn new(shared: Arc<Shared>, exchange: E) -> Arc<Self> {
        Arc::new(Self { shared, exchange })
    }

    /// Reads positions and balances from the exchange, then updates the drift counts. Returns
    /// the drifts confirmed by this sync.
    pub async fn sync(&self) -> Result<Vec<Drift>, AppError> {
        let sh = &self.shared;
        let balances = match self.exchange.balances().await {
            Ok(b) => b,
            Err(e) => {
                sh.note_exchange_error(&e);
                return Err(e.into());
            }
        };
        let positions = match self.exchange.positions(None).await {
            Ok(p) => p,
            Err(e) => {
                sh.note_exchange_error(&e);
                return Err(e.into());
            }
        };
        let quote = balances.iter().find(|b| b.asset == sh.settings.quote_asset);
        // One entry per symbol (legs of a hedge-mode account are summed into a net amount).
        let mut by_symbol: BTreeMap<String, ExchangePosition> = BTreeMap::new();
        for p in positions.into_iter().filter(|p| !p.position_amt.is_zero()) {
            match by_symbol.get_mut(&p.symbol) {
                Some(e) => {
                    e.amount += p.position_amt;
                    e.unrealized_pnl += p.un_realized_profit;
                }
                None => {
                    by_symbol.insert(
                        p.symbol.clone(),
                        ExchangePosition {
                            symbol: p.symbol,
                            amount: p.position_amt,
                            entry_price: p.entry_price,
                            mark_price: p.mark_price,
                            unrealized_pnl: p.un_realized_profit,
                        },
                    );
                }
            }
        }
        let view = ExchangeView {
            synced_at: sh.now(),
            wallet_balance: quote.map_or(Decimal::ZERO, |b| b.balance),
            available_balance: quote.map_or(Decimal::ZERO, |b| b.available_balance),
            positions: by_symbol,
        };
        let need = sh.settings.drift_confirmations.max(1);
        let confirmed = {
            let mut st = sh.state();
            st.last_sync_error = None;
            st.book.on_sync(view);
            let drift = st.book.drift();
            let mut counts = BTreeMap::new();
            for d in &drift {
                let n = st.drift_counts.get(&d.symbol).copied().unwrap_or(0) + 1;
                counts.insert(d.symbol.clone(), n);
            }
            st.drift_counts = counts;
            let confirmed: Vec<Drift> = drift
                .into_iter()
                .filter(|d| st.drift_counts.get(&d.symbol).copied().unwrap_or(0) >= need)
                .collect();
            st.confirmed_drift.clone_from(&confirmed);
            confirmed
        };
        sh.changed();
        Ok(confirmed)
    }
}

impl<E: Exchange> Intel<E> {
    /// Fills each chart that holds fewer candles than it keeps (the stream's tail read at start
    /// holds only the last minutes of candles among the marks) with the exchange's closed
    /// klines of its interval. Returns the symbols filled.
    pub async fn backfill_charts(&self) -> Result<usize, AppError> {
        let sh = &self.shared;
        let (symbols, keep) = {
            let st = sh.state();
            (st.charts.symbols(), st.charts.keep())
        };
        let now = sh.now();
        let mut filled = 0;
        for (symbol, interval, have) in symbols {
            if have >= keep || interval.is_empty() {
                continue;
            }
            let limit = u16::try_from(keep + 1).unwrap_or(u16::MAX);
            let klines = match self
                .exchange
                .klines(&symbol, &interval, None, None, Some(limit))
                .await
            {
                Ok(k) => k,
                Err(e) => {
                    sh.note_exchange_error(&e);
                    return Err(e.into());
                }
            };
            let bars = klines
                .into_iter()
                .filter(|k| k.close_time < now)
                .map(|k| qt_events::api::CandleBar {
                    t: k.open_time,
                    o: k.open,
                    h: k.high,
                    l: k.low,
                    c: k.close,
                })
                .collect();
            sh.state().charts.backfill(&symbol, &interval, bars);
            filled += 1;
        }
        if filled > 0 {
            sh.changed();
        }
        Ok(filled)
    }
}

/// The periodic work: sync every `sync_interval`; snapshot, observe and alert every
/// `snapshot_interval`. Errors are logged and the loop goes on.
pub async fn run_periodic<E: Exchange + Send + Sync + 'static>(
    intel: Arc<Intel<E>>,
    shutdown: CancellationToken,
) {
    let s = &intel.shared.settings;
    let mut sync = tokio::time::interval(s.sync_interval.max(Duration::from_millis(100)));
    let mut snap = tokio::time::interval(s.snapshot_interval.max(Duration::from_millis(100)));
    sync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    snap.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The first snapshot carries the exchange's wallet: sync once before the loop.
    if let Err(e) = intel.sync().await {
        tracing::warn!(error = %e, "first exchange sync failed");
    }
    // The charts' history, once (what the stream's tail did not hold).
    match intel.backfill_charts().await {
        Ok(n) => tracing::info!(symbols = n, "chart candles read from the exchange"),
        Err(e) => tracing::warn!(error = %e, "chart candles not read from the exchange"),
    }
    sync.tick().await;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = sync.tick() => {
                match intel.sync().await {
                    Ok(d) if !d.is_empty() => tracing::warn!(drifts = d.len(), "positions differ from the exchange"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "exchange sync failed"),
                }
            }
            _ = snap.tick() => {
                let sh = &intel.shared;
                // The control stream could not be read at start (Redis not up yet): again,
                // until the kill switch is known.
                if sh.state().kill_switch_state.is_none()
                    && let Err(e) = sh.restore_control().await
                {
                    tracing::warn!(error = %e, "cannot read the kill switch from the control stream");
                }
                if let Err(e) = sh.snapshot().await {
                    tracing::warn!(error = %e, "snapshot failed");
                }
                sh.observe().await;
                match sh.evaluate_alerts().await {
                    Ok(a) if !a.is_empty() => tracing::info!(alerts = a.len(), "alerts raised"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "cannot publish alerts"),
                }
            }
        }
    }
}
