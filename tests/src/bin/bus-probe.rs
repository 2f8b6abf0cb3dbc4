//! `bus-probe`: a consumer of the alerts stream whose effect is an increment per event id,
//! applied at most once per id through `ProcessedStore`, for crash tests.
//!
//! Environment: `PROBE_REDIS_URL`, `PROBE_PREFIX`, `PROBE_CONSUMER` (stable consumer name),
//! `PROBE_DELAY_US` (work per entry), `PROBE_CLAIM_MS` (claim idle time). Effects go to the hash
//! `<prefix>effects` (event id → times applied); `<prefix>redelivered` counts deliveries > 1.

use std::process::ExitCode;
use std::time::Duration;

use qt_bus::{
    Bus, BusConfig, Consumer, ConsumerConfig, Delivery, Handler, HandlerError, Outcome,
    ProcessedStore,
};
use qt_events::{Stream, StreamNames};
use tokio_util::sync::CancellationToken;

struct Probe {
    store: ProcessedStore,
    effects: String,
    redelivered: String,
    delay: Duration,
}

impl Handler for Probe {
    async fn handle(&mut self, d: &Delivery) -> Result<Outcome, HandlerError> {
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        let mut cmds = vec![vec![
            "HINCRBY".to_owned(),
            self.effects.clone(),
            d.envelope.id.clone(),
            "1".to_owned(),
        ]];
        if d.deliveries > 1 {
            cmds.push(vec!["INCR".to_owned(), self.redelivered.clone()]);
        }
        self.store
            .apply_once(&d.envelope.id, &cmds)
            .await
            .map_err(|e| HandlerError::Transient(e.to_string()))?;
        Ok(Outcome::done())
    }
}

fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

#[tokio::main]
async fn main() -> ExitCode {
    let prefix = env("PROBE_PREFIX", "probe:");
    let names = StreamNames::new(prefix.clone());
    let bus = match Bus::connect(
        BusConfig::new(
            env("PROBE_REDIS_URL", "redis://127.0.0.1:6379"),
            names,
            "bus-probe",
        ),
        qt_events::clock::system(),
    ) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("bus-probe: {e}");
            return ExitCode::from(2);
        }
    };
    let delay = Duration::from_micros(env("PROBE_DELAY_US", "0").parse().unwrap_or(0));
    let claim = Duration::from_millis(env("PROBE_CLAIM_MS", "30000").parse().unwrap_or(30_000));
    let mut cfg = ConsumerConfig::new(Stream::Alerts, "probe", env("PROBE_CONSUMER", "probe-0"));
    cfg.claim_min_idle = claim;
    cfg.janitor_interval = Duration::from_millis(200);
    cfg.block = Duration::from_millis(500);
    cfg.batch_size = 64;
    let probe = Probe {
        store: ProcessedStore::new(&bus, "probe", Duration::from_secs(3600)),
        effects: format!("{prefix}effects"),
        redelivered: format!("{prefix}redelivered"),
        delay,
    };
    let stop = CancellationToken::new();
    let s = stop.clone();
    tokio::spawn(async move {
        if let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            term.recv().await;
        }
        s.cancel();
    });
    Consumer::new(bus, cfg, probe).run(stop).await;
    ExitCode::SUCCESS
}
