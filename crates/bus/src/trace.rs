//! W3C trace context carried in the envelope's `traceparent`.
//!
//! When a service exports traces (OTLP on), an envelope published inside a span carries that
//! span's context, and the handler span of its consumer continues the trace. Without an OTel
//! layer the current span has no valid context and nothing is written.

use std::collections::HashMap;

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The `traceparent` of the current span, if it has a valid trace context.
pub fn current_traceparent() -> Option<String> {
    let cx = tracing::Span::current().context();
    let mut carrier: HashMap<String, String> = HashMap::new();
    TraceContextPropagator::new().inject_context(&cx, &mut carrier);
    carrier.remove("traceparent")
}

/// Makes `span` a child of the trace in `traceparent` (ignored when malformed).
pub fn set_parent(span: &tracing::Span, traceparent: Option<&str>) {
    let Some(tp) = traceparent else { return };
    let carrier: HashMap<String, String> =
        HashMap::from([("traceparent".to_owned(), tp.to_owned())]);
    let cx = TraceContextPropagator::new().extract(&carrier);
    let _ = span.set_parent(cx);
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::TracerProvider as _;
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    #[test]
    fn a_span_context_travels_through_traceparent_and_is_continued() {
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        tracing::subscriber::with_default(subscriber, || {
            assert_eq!(current_traceparent(), None, "no span, no context");
            let publisher = tracing::info_span!("publish");
            let tp = publisher
                .in_scope(current_traceparent)
                .expect("a traceparent inside a span");
            let parts: Vec<&str> = tp.split('-').collect();
            assert_eq!(
                (parts.len(), parts[0], parts[1].len(), parts[2].len()),
                (4, "00", 32, 16),
                "{tp}"
            );

            let handler = tracing::info_span!("handle");
            set_parent(&handler, Some(&tp));
            let continued = handler
                .in_scope(current_traceparent)
                .expect("a traceparent");
            assert_eq!(continued.split('-').nth(1), Some(parts[1]), "same trace id");
            assert_ne!(continued.split('-').nth(2), Some(parts[2]), "a new span id");

            let other = tracing::info_span!("other");
            set_parent(&other, Some("garbage"));
            let fresh = other.in_scope(current_traceparent).expect("a traceparent");
            assert_ne!(fresh.split('-').nth(1), Some(parts[1]));
        });
    }
}
