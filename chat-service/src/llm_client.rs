//! llm-service, reached through its generated client over one lazily connected channel: the
//! first call connects, and a restarted llm-service is reconnected to without restarting us.

use parley_proto::llm::v1 as llm;
use parley_proto::llm::v1::llm_service_client::LlmServiceClient;
use parley_service_kit::trace_context::{self, TRACE_HEADERS};
use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::transport::{Channel, Endpoint};

use crate::Error;

/// W3C trace-context headers of the request that caused a call, passed on so one trace spans
/// gateway → chat-service → llm-service.
#[derive(Debug, Clone, Default)]
pub struct TraceHeaders(Vec<(&'static str, MetadataValue<tonic::metadata::Ascii>)>);

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
        trace_context::trace_id(value.to_str().ok()?)
    }

    fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        for (name, value) in &self.0 {
            request.metadata_mut().insert(*name, value.clone());
        }
        request
    }
}

#[derive(Clone)]
pub struct LlmClient {
    client: LlmServiceClient<Channel>,
}

impl LlmClient {
    /// A client for llm-service at `url` (e.g. `http://127.0.0.1:50053`); nothing is
    /// connected until the first call.
    pub fn connect_lazy(url: &str) -> Result<Self, Error> {
        let endpoint = Endpoint::from_shared(url.to_owned())
            .map_err(|e| Error::Config(format!("llm-service URL {url:?}: {e}")))?
            .connect_timeout(std::time::Duration::from_secs(5))
            .tcp_nodelay(true);
        Ok(Self {
            client: LlmServiceClient::new(endpoint.connect_lazy())
                // Answers can be long; a whole models list too.
                .max_decoding_message_size(16 * 1024 * 1024),
        })
    }

    pub async fn stream_chat(
        &self,
        request: llm::StreamChatRequest,
        trace: &TraceHeaders,
    ) -> Result<tonic::Streaming<llm::StreamChatResponse>, tonic::Status> {
        Ok(self
            .client
            .clone()
            .stream_chat(trace.request(request))
            .await?
            .into_inner())
    }

    pub async fn list_models(&self, provider: llm::Provider, trace: &TraceHeaders) -> Result<Vec<String>, Error> {
        let request = trace.request(llm::ListModelsRequest {
            provider: Some(provider),
        });
        let response = self.client.clone().list_models(request).await.map_err(Error::Llm)?;
        Ok(response.into_inner().model_ids)
    }

    pub async fn check_provider(
        &self,
        provider: llm::Provider,
        trace: &TraceHeaders,
    ) -> Result<llm::CheckProviderResponse, Error> {
        let request = trace.request(llm::CheckProviderRequest {
            provider: Some(provider),
        });
        let response = self.client.clone().check_provider(request).await.map_err(Error::Llm)?;
        Ok(response.into_inner())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn trace_headers_are_kept_and_read() {
        let mut metadata = MetadataMap::new();
        metadata.insert(
            "traceparent",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
                .parse()
                .unwrap(),
        );
        metadata.insert("authorization", "Bearer secret".parse().unwrap());
        let trace = TraceHeaders::from_metadata(&metadata);
        assert_eq!(trace.trace_id(), Some("0af7651916cd43dd8448eb211c80319c"));
        let request = trace.request(());
        assert!(request.metadata().get("traceparent").is_some());
        // Only trace context is passed on, never the caller's credentials.
        assert!(request.metadata().get("authorization").is_none());
        assert_eq!(TraceHeaders::default().trace_id(), None);
    }
}
