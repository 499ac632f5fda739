//! W3C trace context (`traceparent`, `tracestate`), carried in gRPC metadata from the gateway
//! through chat-service to llm-service, so one request's log lines share one trace id.

use tonic::metadata::{Ascii, MetadataMap, MetadataValue};

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

/// The trace-context headers of the request that caused a call, passed on to the calls it
/// makes so one trace spans gateway → chat-service → llm-service. Only these headers: never
/// the caller's credentials.
#[derive(Debug, Clone, Default)]
pub struct TraceHeaders(Vec<(&'static str, MetadataValue<Ascii>)>);

impl TraceHeaders {
    pub fn from_metadata(metadata: &MetadataMap) -> Self {
        Self(
            TRACE_HEADERS
                .iter()
                .filter_map(|name| metadata.get(*name).map(|value| (*name, value.clone())))
                .collect(),
        )
    }

    /// The trace id of the `traceparent`, for logs.
    pub fn trace_id(&self) -> Option<&str> {
        let (_, value) = self.0.iter().find(|(name, _)| *name == "traceparent")?;
        trace_id(value.to_str().ok()?)
    }

    /// A request for `message` carrying these headers.
    pub fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        for (name, value) in &self.0 {
            request.metadata_mut().insert(*name, value.clone());
        }
        request
    }
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

    #[test]
    fn trace_headers_are_kept_and_read() {
        let mut metadata = MetadataMap::new();
        metadata.insert(
            "traceparent",
            MetadataValue::from_static("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
        );
        metadata.insert("authorization", MetadataValue::from_static("Bearer secret"));
        let trace = TraceHeaders::from_metadata(&metadata);
        assert_eq!(trace.trace_id(), Some("0af7651916cd43dd8448eb211c80319c"));
        let request = trace.request(());
        assert!(request.metadata().get("traceparent").is_some());
        // Only trace context is passed on, never the caller's credentials.
        assert!(request.metadata().get("authorization").is_none());
        assert_eq!(TraceHeaders::default().trace_id(), None);
    }
}
