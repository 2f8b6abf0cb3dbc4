//! The W3C `traceparent` header of a REST request: the current span's trace context, so the
//! exchange side of a request (the simulator exports its spans too) joins the caller's trace.

use opentelemetry::trace::TraceContextExt as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// `00-<trace id>-<span id>-<flags>` of the current span, when it has a valid trace context
/// (only when traces are exported: without an OpenTelemetry layer there is none).
pub(crate) fn current_traceparent() -> Option<String> {
    let cx = tracing::Span::current().context();
    let span = cx.span();
    let sc = span.span_context();
    sc.is_valid().then(|| {
        format!(
            "00-{}-{}-{:02x}",
            sc.trace_id(),
            sc.span_id(),
            sc.trace_flags().to_u8()
        )
    })
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::TracerProvider as _;
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    #[test]
    fn the_header_names_the_current_spans_trace_and_span_and_is_absent_without_a_trace() {
        assert_eq!(current_traceparent(), None, "no subscriber, no header");
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("t")));
        tracing::subscriber::with_default(subscriber, || {
            assert_eq!(current_traceparent(), None, "no span, no header");
            let span = tracing::info_span!("request");
            let tp = span
                .in_scope(current_traceparent)
                .expect("a header in a span");
            let cx = span.context();
            let sc = cx.span().span_context().clone();
            assert_eq!(
                tp,
                format!("00-{}-{}-01", sc.trace_id(), sc.span_id()),
                "version 00, the span's ids, sampled"
            );
            assert_eq!(tp.len(), 55);
        });
    }
}
