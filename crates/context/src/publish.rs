//! The context task: poll every source through the hub and publish what it says on `context`.

use std::sync::Arc;
use std::time::Duration;

use qt_bus::Bus;
use qt_events::Event;
use tokio_util::sync::CancellationToken;

use crate::ContextHub;

/// Polls `hub` every `every` and publishes one `ContextObserved` per request until `shutdown`.
/// A failed publish is logged and the next poll goes on (context is advisory: nothing waits on
/// it, and a missing value is never replaced by a made-up one).
pub async fn run_publisher(
    hub: Arc<ContextHub>,
    bus: Bus,
    every: Duration,
    shutdown: CancellationToken,
) {
    tracing::info!(
        every_ms = every.as_millis() as u64,
        sources = hub.queries().len(),
        "context task started"
    );
    loop {
        let events = tokio::select! {
            () = shutdown.cancelled() => break,
            e = hub.poll() => e,
        };
        let envs: Vec<_> = events
            .into_iter()
            .map(|e| bus.envelope(Event::ContextObserved(e)))
            .collect();
        if let Err(e) = bus.publish_all(&envs).await {
            tracing::warn!(error = %e, "context events not published");
        }
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(every) => {}
        }
    }
    tracing::info!("context task stopped");
}
