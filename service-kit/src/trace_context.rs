//! W3C trace context (`traceparent`, `tracestate`), carried in gRPC metadata from the gateway
//! through chat-service to llm-service, so one request's log lines share one trace id.

/// The headers that carry the trace from one service to the next.
pub const TRACE_HEADERS: [&str; 2] = ["traceparent", "tracestate"];

/// The trace id of a `traceparent` value (`00-<32 hex trace id>-<16 hex span id>-<2 hex
/// flags>`), if it is one.
pub fn trace_id(traceparent: &str) -> Option<&str> {
    let mut parts = traceparent.split('-');
    let hex = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit());
    let (version, trace, span, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    (parts.next().is_none() && hex(version, 2) && hex(trace, 32) && hex(span, 16) && hex(flags, 2)).then_some(trace)
}

/// The trace id of the request's `traceparent` header, if it has a valid one.
pub fn trace_id_of(headers: &http::HeaderMap) -> Option<&str> {
    trace_id(headers.get("traceparent")?.to_str().ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_trace_id_of_a_valid_traceparent_only() {
        let id = "0af7651916cd43dd8448eb211c80319c";
        assert_eq!(trace_id(&format!("00-{id}-b7ad6b7169203331-01")), Some(id));
        for bad in [
            "",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra",
            "00-0af7651916cd43dd8448eb211c8031-b7ad6b7169203331-01",
            "00-zzf7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        ] {
            assert_eq!(trace_id(bad), None, "{bad}");
        }
    }
}
