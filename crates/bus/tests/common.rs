#![allow(dead_code, clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use qt_bus::{Bus, BusConfig, Delivery, Handler, HandlerError, Outcome};
use qt_events::clock::system;
use qt_events::{AlertRaised, Event, Severity, StreamNames};

pub fn bus(url: &str) -> Bus {
    Bus::connect(
        BusConfig::new(url, StreamNames::new("t:"), "test"),
        system(),
    )
    .unwrap()
}

pub fn alert(n: usize) -> Event {
    Event::AlertRaised(AlertRaised {
        rule: "test".into(),
        key: n.to_string(),
        severity: Severity::Info,
        message: format!("alert {n}"),
        service: "test".into(),
        details: Default::default(),
    })
}

/// Records what it handled; fails transiently for keys in `fail`, permanently for `reject`,
/// and asks to see a key in `later` again at its time (counting those answers in `deferrals`).
#[derive(Clone, Default, Debug)]
pub struct Recorder {
    pub seen: Arc<Mutex<Vec<(String, u64)>>>,
    pub fail: Arc<Mutex<Vec<String>>>,
    pub reject: Arc<Mutex<Vec<String>>>,
    pub later: Arc<Mutex<HashMap<String, Instant>>>,
    pub deferrals: Arc<Mutex<u32>>,
    pub delay: Option<Duration>,
}

impl Recorder {
    pub fn keys(&self) -> Vec<String> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .map(|(k, _)| k.clone())
            .collect()
    }
}

pub fn key_of(d: &Delivery) -> String {
    match &d.envelope.event {
        Event::AlertRaised(a) => a.key.clone(),
        other => other.type_name().to_owned(),
    }
}

impl Handler for Recorder {
    async fn handle(&mut self, d: &Delivery) -> Result<Outcome, HandlerError> {
        if let Some(t) = self.delay {
            tokio::time::sleep(t).await;
        }
        let k = key_of(d);
        if self.reject.lock().unwrap().contains(&k) {
            return Err(HandlerError::Permanent(format!("cannot take {k}")));
        }
        if self.fail.lock().unwrap().contains(&k) {
            return Err(HandlerError::Transient(format!("{k} not now")));
        }
        let until = self.later.lock().unwrap().get(&k).copied();
        if let Some(retry_in) = until.and_then(|t| t.checked_duration_since(Instant::now())) {
            *self.deferrals.lock().unwrap() += 1;
            return Err(HandlerError::Later {
                reason: format!("{k} not before its time"),
                retry_in,
            });
        }
        self.seen.lock().unwrap().push((k, d.deliveries));
        Ok(Outcome::done())
    }
}

pub async fn eventually<F, Fut>(secs: u64, what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !f().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
