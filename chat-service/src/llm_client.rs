//! llm-service, reached through its generated client over a balanced channel: each call goes
//! to the next replica the name resolves to, the first call connects, and a restarted
//! llm-service is reconnected to without restarting us.

use parley_proto::llm::v1 as llm;
use parley_proto::llm::v1::llm_service_client::LlmServiceClient;
use parley_service_kit::balanced_channel::{BalancedChannel, ChannelOptions};
use parley_service_kit::trace_context::TraceHeaders;

use crate::Error;

#[derive(Clone)]
pub struct LlmClient {
    client: LlmServiceClient<BalancedChannel>,
}

impl LlmClient {
    /// A client for llm-service at `url` (e.g. `http://127.0.0.1:50053`); nothing is
    /// connected until the first call.
    pub fn connect_lazy(url: &str) -> Result<Self, Error> {
        let channel = BalancedChannel::new(url, ChannelOptions::default())
            .map_err(|e| Error::Config(format!("llm-service URL: {e}")))?;
        Ok(Self {
            client: LlmServiceClient::new(channel)
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
