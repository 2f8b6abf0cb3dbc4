//! Logs and traces.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::{CommonConfig, LogFormat};

/// Flushes and shuts down trace export when dropped.
#[derive(Debug)]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(p) = self.provider.take() {
            let _ = p.shutdown();
        }
    }
}

/// Makes `span` continue the trace of a W3C `traceparent` received from outside a stream
/// (an HTTP header); ignored when absent or malformed.
pub fn continue_trace(span: &tracing::Span, traceparent: Option<&str>) {
    qt_bus::trace::set_parent(span, traceparent);
}

/// Installs the global subscriber: logs to stdout in the configured format, filtered by
/// `log_level`; and, when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, spans exported over OTLP/HTTP.
pub fn init(service: &str, common: &CommonConfig) -> anyhow::Result<TelemetryGuard> {
    let filter = EnvFilter::builder().parse(&common.log_level)?;
    let fmt = match common.log_format() {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .with_target(true)
            .boxed(),
        LogFormat::Pretty => tracing_subscriber::fmt::layer().with_target(true).boxed(),
    };
    let endpoint = std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT")
        .ok()
        .filter(|s| !s.is_empty());
    let (otel, provider) = match endpoint {
        Some(_) => {
            // The exporter reads the endpoint and headers from the OTEL_* variables itself.
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .build()?;
            let provider = SdkTracerProvider::builder()
                .with_batch_exporter(exporter)
                .with_resource(
                    Resource::builder()
                        .with_service_name(service.to_owned())
                        .build(),
                )
                .build();
            let tracer = provider.tracer(service.to_owned());
            // The exporter's own HTTP stack must not trace itself.
            let quiet = Targets::new()
                .with_default(tracing::Level::TRACE)
                .with_target("opentelemetry", tracing::level_filters::LevelFilter::OFF)
                .with_target("reqwest", tracing::level_filters::LevelFilter::OFF)
                .with_target("hyper", tracing::level_filters::LevelFilter::OFF)
                .with_target("h2", tracing::level_filters::LevelFilter::OFF);
            (
                Some(
                    tracing_opentelemetry::layer()
                        .with_tracer(tracer)
                        .with_filter(quiet),
                ),
                Some(provider),
            )
        }
        None => (None, None),
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .with(otel)
        .try_init()?;
    Ok(TelemetryGuard { provider })
}
