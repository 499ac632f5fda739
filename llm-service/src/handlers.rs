//! The gRPC face of llm-service: hand the request to [`LlmService`], map the reply. The
//! request's provider (with its key) is never logged.

use std::sync::Arc;

use parley_proto::llm::v1 as pb;
use parley_proto::llm::v1::llm_service_server::LlmService as LlmServiceApi;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};
use tracing::Instrument;

use crate::service::LlmService;

/// How many chunks may wait for a slow caller before reading from the provider pauses.
const STREAM_BUFFER: usize = 32;

pub struct LlmApi {
    service: Arc<LlmService>,
}

impl LlmApi {
    pub fn new(service: Arc<LlmService>) -> Self {
        Self { service }
    }
}

#[tonic::async_trait]
impl LlmServiceApi for LlmApi {
    type StreamChatStream = ReceiverStream<Result<pb::StreamChatResponse, Status>>;

    async fn stream_chat(
        &self,
        request: Request<pb::StreamChatRequest>,
    ) -> Result<Response<Self::StreamChatStream>, Status> {
        let request = self.service.chat_request(request.into_inner())?;
        let (tx, rx) = tokio::sync::mpsc::channel(STREAM_BUFFER);
        let service = Arc::clone(&self.service);
        // Runs until the generation ends or the caller drops the stream (which closes `tx`);
        // inside the request's span, so its log lines carry the caller's trace id.
        tokio::spawn(async move { service.stream_chat(request, tx).await }.in_current_span());
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn list_models(
        &self,
        request: Request<pb::ListModelsRequest>,
    ) -> Result<Response<pb::ListModelsResponse>, Status> {
        let provider = self.service.provider_settings(request.into_inner().provider, false)?;
        let model_ids = self.service.list_models(&provider).await?;
        Ok(Response::new(pb::ListModelsResponse { model_ids }))
    }

    async fn check_provider(
        &self,
        request: Request<pb::CheckProviderRequest>,
    ) -> Result<Response<pb::CheckProviderResponse>, Status> {
        let provider = self.service.provider_settings(request.into_inner().provider, true)?;
        Ok(Response::new(self.service.check_provider(&provider).await?))
    }
}
