//! Serving the app: the HTTP server on the route table, the real-time replay loop, the
//! periodic snapshot, and the shutdown that closes WebSockets and writes the state once more.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::SimError;
use crate::app::App;

/// Serve `app` on `listener` until `shutdown` is cancelled.
pub(crate) async fn run(
    app: Arc<App>,
    listener: tokio::net::TcpListener,
    shutdown: CancellationToken,
) -> Result<(), SimError> {
    let tasks = tokio_util::task::TaskTracker::new();
    if app.speed > 0.0 {
        let (app2, stop) = (app.clone(), shutdown.clone());
        tasks.spawn(async move { replay_loop(app2, stop).await });
    }
    if app.state_dir.is_some() {
        let (app2, stop) = (app.clone(), shutdown.clone());
        tasks.spawn(async move { snapshot_loop(app2, stop).await });
    }
    let router = crate::routes::router(app.clone());
    let stop = shutdown.clone();
    let served = axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move { stop.cancelled().await })
    .await;
    // Close WebSockets (they hold the graceful shutdown open otherwise).
    app.drop_ws.send_modify(|g| *g += 1);
    tasks.close();
    tasks.wait().await;
    app.save_snapshot()?;
    served?;
    Ok(())
}

/// Every 500 ms, write the snapshot if something changed.
async fn snapshot_loop(app: Arc<App>, stop: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tick.tick() => {
                if app.is_dirty() {
                    let a = app.clone();
                    match tokio::task::spawn_blocking(move || a.save_snapshot()).await {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => tracing::warn!(error = %e, "snapshot failed"),
                        Err(e) => tracing::warn!(error = %e, "snapshot task failed"),
                    }
                }
            }
        }
    }
}

/// Close a candle every `interval / speed` of wall time.
async fn replay_loop(app: Arc<App>, stop: CancellationToken) {
    let interval_ms = app.read(|ex| {
        ex.market()
            .symbols
            .values()
            .map(|m| m.interval_ms)
            .min()
            .unwrap_or(60_000)
    });
    #[allow(
        clippy::cast_precision_loss,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss
    )]
    let period = Duration::from_millis(((interval_ms as f64 / app.speed).max(1.0)) as u64);
    let mut tick = tokio::time::interval(period);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tick.tick() => {
                let now = app.now();
                app.with_exchange(|e| e.step(now));
            }
        }
    }
}
