//! The gRPC face of chat-service: read the caller and the request, call [`ChatService`], map
//! the reply. Every method needs an access token (the auth layer checked it).

use std::collections::HashSet;
use std::sync::Arc;

use futures::StreamExt;
use futures::stream::BoxStream;
use parley_proto::chat::v1 as pb;
use parley_proto::chat::v1::api_config_service_server::ApiConfigService;
use parley_proto::chat::v1::message_service_server::MessageService;
use parley_proto::chat::v1::persona_service_server::PersonaService;
use parley_proto::chat::v1::session_service_server::SessionService;
use parley_service_kit::access_token::AuthenticatedUser;
use tonic::{Request, Response, Status};

use crate::Error;
use crate::convert;
use crate::llm_client::TraceHeaders;
use crate::service::{ChatService, ConfigChange, NewSessionInput, PersonaChange, ProviderTarget, SessionChange};

/// All four services share one [`ChatService`].
#[derive(Clone)]
pub struct ChatApi {
    chat: Arc<ChatService>,
}

impl ChatApi {
    pub fn new(chat: Arc<ChatService>) -> Self {
        Self { chat }
    }
}

/// The caller's user id (the auth layer already recorded it on the request's span).
fn caller<T>(request: &Request<T>) -> Result<i64, Status> {
    Ok(AuthenticatedUser::from_request(request)?.user_id)
}

/// Which fields an update changes: the mask's paths, or (no mask) the fields that are set.
struct UpdateMask(Option<HashSet<String>>);

impl UpdateMask {
    fn new(mask: Option<prost_types::FieldMask>, allowed: &[&str]) -> Result<Self, Error> {
        let Some(mask) = mask.filter(|m| !m.paths.is_empty()) else {
            return Ok(Self(None));
        };
        let mut paths = HashSet::new();
        for path in mask.paths {
            if !allowed.contains(&path.as_str()) {
                return Err(Error::invalid(
                    "update_mask",
                    format!("unknown path {path:?}; allowed: {}", allowed.join(", ")),
                ));
            }
            paths.insert(path);
        }
        Ok(Self(Some(paths)))
    }

    /// The new value of `path`: under a mask, the field's value (its default when unset);
    /// without one, the field if it is set.
    fn pick<T: Default>(&self, path: &str, value: Option<T>) -> Option<T> {
        match &self.0 {
            Some(paths) => paths.contains(path).then(|| value.unwrap_or_default()),
            None => value,
        }
    }

    /// Like `pick` for a clearable optional field: masked and unset clears it.
    fn pick_optional<T>(&self, path: &str, value: Option<T>) -> Option<Option<T>> {
        match &self.0 {
            Some(paths) => paths.contains(path).then_some(value),
            None => value.map(Some),
        }
    }
}

type EventStream<R> = BoxStream<'static, Result<R, Status>>;

fn events<R: Send + 'static>(
    stream: BoxStream<'static, pb::chat_event::Event>,
    wrap: fn(pb::ChatEvent) -> R,
) -> EventStream<R> {
    stream
        .map(move |event| Ok(wrap(pb::ChatEvent { event: Some(event) })))
        .boxed()
}

fn target(id: Option<i64>, settings: Option<pb::ProviderSettings>) -> Result<ProviderTarget, Error> {
    match (id, settings) {
        (Some(id), _) => Ok(ProviderTarget::Stored(id)),
        (None, Some(s)) => Ok(ProviderTarget::Inline {
            base_url: s.base_url,
            api_key: s.api_key,
            model: s.model,
        }),
        (None, None) => Err(Error::invalid("target", "give a config id or provider settings")),
    }
}

#[tonic::async_trait]
impl ApiConfigService for ChatApi {
    async fn create_api_config(
        &self,
        request: Request<pb::CreateApiConfigRequest>,
    ) -> Result<Response<pb::CreateApiConfigResponse>, Status> {
        let user = caller(&request)?;
        let r = request.into_inner();
        let row = self
            .chat
            .create_api_config(user, &r.name, &r.base_url, &r.api_key, &r.model)
            .await?;
        Ok(Response::new(pb::CreateApiConfigResponse {
            api_config: Some(convert::api_config(&row)),
        }))
    }

    async fn list_api_configs(
        &self,
        request: Request<pb::ListApiConfigsRequest>,
    ) -> Result<Response<pb::ListApiConfigsResponse>, Status> {
        let user = caller(&request)?;
        let rows = self.chat.list_api_configs(user).await?;
        Ok(Response::new(pb::ListApiConfigsResponse {
            api_configs: rows.iter().map(convert::api_config).collect(),
        }))
    }

    async fn get_api_config(
        &self,
        request: Request<pb::GetApiConfigRequest>,
    ) -> Result<Response<pb::GetApiConfigResponse>, Status> {
        let user = caller(&request)?;
        let row = self.chat.api_config(user, request.get_ref().id).await?;
        Ok(Response::new(pb::GetApiConfigResponse {
            api_config: Some(convert::api_config(&row)),
        }))
    }

    async fn get_api_config_by_name(
        &self,
        request: Request<pb::GetApiConfigByNameRequest>,
    ) -> Result<Response<pb::GetApiConfigByNameResponse>, Status> {
        let user = caller(&request)?;
        let row = self.chat.api_config_by_name(user, &request.get_ref().name).await?;
        Ok(Response::new(pb::GetApiConfigByNameResponse {
            api_config: Some(convert::api_config(&row)),
        }))
    }

    async fn get_default_api_config(
        &self,
        request: Request<pb::GetDefaultApiConfigRequest>,
    ) -> Result<Response<pb::GetDefaultApiConfigResponse>, Status> {
        let user = caller(&request)?;
        let row = self.chat.default_api_config(user).await?;
        Ok(Response::new(pb::GetDefaultApiConfigResponse {
            api_config: Some(convert::api_config(&row)),
        }))
    }

    async fn update_api_config(
        &self,
        request: Request<pb::UpdateApiConfigRequest>,
    ) -> Result<Response<pb::UpdateApiConfigResponse>, Status> {
        let user = caller(&request)?;
        let r = request.into_inner();
        let mask = UpdateMask::new(r.update_mask, &["name", "base_url", "api_key", "model"])?;
        let change = ConfigChange {
            name: mask.pick("name", r.name),
            base_url: mask.pick("base_url", r.base_url),
            api_key: mask.pick("api_key", r.api_key),
            model: mask.pick("model", r.model),
        };
        let row = self.chat.update_api_config(user, r.id, change).await?;
        Ok(Response::new(pb::UpdateApiConfigResponse {
            api_config: Some(convert::api_config(&row)),
        }))
    }

    async fn delete_api_config(
        &self,
        request: Request<pb::DeleteApiConfigRequest>,
    ) -> Result<Response<pb::DeleteApiConfigResponse>, Status> {
        let user = caller(&request)?;
        self.chat.delete_api_config(user, request.get_ref().id).await?;
        Ok(Response::new(pb::DeleteApiConfigResponse {}))
    }

    async fn test_api_config(
        &self,
        request: Request<pb::TestApiConfigRequest>,
    ) -> Result<Response<pb::TestApiConfigResponse>, Status> {
        let user = caller(&request)?;
        let trace = TraceHeaders::from_metadata(request.metadata());
        let (id, settings) = match request.into_inner().target {
            Some(pb::test_api_config_request::Target::Id(id)) => (Some(id), None),
            Some(pb::test_api_config_request::Target::Settings(s)) => (None, Some(s)),
            None => (None, None),
        };
        let checked = self.chat.test_api_config(user, target(id, settings)?, &trace).await?;
        Ok(Response::new(pb::TestApiConfigResponse {
            ok: checked.ok,
            latency_ms: checked.latency_ms,
            model_available: checked.model_available,
            message: checked.message,
        }))
    }

    async fn list_models(
        &self,
        request: Request<pb::ListModelsRequest>,
    ) -> Result<Response<pb::ListModelsResponse>, Status> {
        let user = caller(&request)?;
        let trace = TraceHeaders::from_metadata(request.metadata());
        let (id, settings) = match request.into_inner().target {
            Some(pb::list_models_request::Target::Id(id)) => (Some(id), None),
            Some(pb::list_models_request::Target::Settings(s)) => (None, Some(s)),
            None => (None, None),
        };
        let model_ids = self.chat.list_models(user, target(id, settings)?, &trace).await?;
        Ok(Response::new(pb::ListModelsResponse { model_ids }))
    }
}

#[tonic::async_trait]
impl PersonaService for ChatApi {
    async fn list_personas(
        &self,
        request: Request<pb::ListPersonasRequest>,
    ) -> Result<Response<pb::ListPersonasResponse>, Status> {
        let user = caller(&request)?;
        let rows = self.chat.list_personas(user).await?;
        Ok(Response::new(pb::ListPersonasResponse {
            personas: rows.iter().map(convert::persona).collect(),
        }))
    }

    async fn create_persona(
        &self,
        request: Request<pb::CreatePersonaRequest>,
    ) -> Result<Response<pb::CreatePersonaResponse>, Status> {
        let user = caller(&request)?;
        let r = request.into_inner();
        let row = self
            .chat
            .create_persona(user, &r.name, &r.description, &r.system_prompt)
            .await?;
        Ok(Response::new(pb::CreatePersonaResponse {
            persona: Some(convert::persona(&row)),
        }))
    }

    async fn update_persona(
        &self,
        request: Request<pb::UpdatePersonaRequest>,
    ) -> Result<Response<pb::UpdatePersonaResponse>, Status> {
        let user = caller(&request)?;
        let r = request.into_inner();
        let mask = UpdateMask::new(r.update_mask, &["name", "description", "system_prompt"])?;
        let change = PersonaChange {
            name: mask.pick("name", r.name),
            description: mask.pick("description", r.description),
            system_prompt: mask.pick("system_prompt", r.system_prompt),
        };
        let row = self.chat.update_persona(user, r.id, change).await?;
        Ok(Response::new(pb::UpdatePersonaResponse {
            persona: Some(convert::persona(&row)),
        }))
    }

    async fn delete_persona(
        &self,
        request: Request<pb::DeletePersonaRequest>,
    ) -> Result<Response<pb::DeletePersonaResponse>, Status> {
        let user = caller(&request)?;
        self.chat.delete_persona(user, request.get_ref().id).await?;
        Ok(Response::new(pb::DeletePersonaResponse {}))
    }
}

#[tonic::async_trait]
impl SessionService for ChatApi {
    async fn create_session(
        &self,
        request: Request<pb::CreateSessionRequest>,
    ) -> Result<Response<pb::CreateSessionResponse>, Status> {
        let user = caller(&request)?;
        let r = request.into_inner();
        let row = self
            .chat
            .create_session(
                user,
                NewSessionInput {
                    title: r.title,
                    persona_id: r.persona_id,
                    system_prompt: r.system_prompt,
                    api_config_id: r.api_config_id,
                    model: r.model,
                    temperature: r.temperature,
                },
            )
            .await?;
        Ok(Response::new(pb::CreateSessionResponse {
            session: Some(convert::session(&row)),
        }))
    }

    async fn list_sessions(
        &self,
        request: Request<pb::ListSessionsRequest>,
    ) -> Result<Response<pb::ListSessionsResponse>, Status> {
        let user = caller(&request)?;
        let r = request.into_inner();
        let (rows, next_page_token) = self
            .chat
            .list_sessions(user, r.page_size, &r.page_token, r.include_archived)
            .await?;
        Ok(Response::new(pb::ListSessionsResponse {
            sessions: rows.iter().map(convert::session).collect(),
            next_page_token,
        }))
    }

    async fn get_session(
        &self,
        request: Request<pb::GetSessionRequest>,
    ) -> Result<Response<pb::GetSessionResponse>, Status> {
        let user = caller(&request)?;
        let row = self.chat.session(user, request.get_ref().id).await?;
        Ok(Response::new(pb::GetSessionResponse {
            session: Some(convert::session(&row)),
        }))
    }

    async fn update_session(
        &self,
        request: Request<pb::UpdateSessionRequest>,
    ) -> Result<Response<pb::UpdateSessionResponse>, Status> {
        let user = caller(&request)?;
        let r = request.into_inner();
        let mask = UpdateMask::new(
            r.update_mask,
            &[
                "title",
                "system_prompt",
                "api_config_id",
                "model",
                "temperature",
                "pinned",
                "archived",
                "ended",
            ],
        )?;
        let change = SessionChange {
            title: mask.pick("title", r.title),
            system_prompt: mask.pick("system_prompt", r.system_prompt),
            api_config_id: mask.pick("api_config_id", r.api_config_id),
            model: mask.pick("model", r.model),
            temperature: mask.pick_optional("temperature", r.temperature),
            pinned: mask.pick("pinned", r.pinned),
            archived: mask.pick("archived", r.archived),
            ended: mask.pick("ended", r.ended),
        };
        let row = self.chat.update_session(user, r.id, change).await?;
        Ok(Response::new(pb::UpdateSessionResponse {
            session: Some(convert::session(&row)),
        }))
    }

    async fn delete_session(
        &self,
        request: Request<pb::DeleteSessionRequest>,
    ) -> Result<Response<pb::DeleteSessionResponse>, Status> {
        let user = caller(&request)?;
        self.chat.delete_session(user, request.get_ref().id).await?;
        Ok(Response::new(pb::DeleteSessionResponse {}))
    }
}

#[tonic::async_trait]
impl MessageService for ChatApi {
    type SendMessageStream = EventStream<pb::SendMessageResponse>;
    type WatchGenerationStream = EventStream<pb::WatchGenerationResponse>;
    type RegenerateMessageStream = EventStream<pb::RegenerateMessageResponse>;

    async fn send_message(
        &self,
        request: Request<pb::SendMessageRequest>,
    ) -> Result<Response<Self::SendMessageStream>, Status> {
        let user = caller(&request)?;
        let trace = TraceHeaders::from_metadata(request.metadata());
        let r = request.into_inner();
        let (question, generation) = self
            .chat
            .send_message(user, r.session_id, &r.content, r.api_config_id, trace)
            .await?;
        let first = futures::stream::iter([pb::chat_event::Event::UserMessage(convert::message(&question))]);
        let stream = first.chain(generation.follow()).boxed();
        Ok(Response::new(events(stream, |event| pb::SendMessageResponse {
            event: Some(event),
        })))
    }

    async fn watch_generation(
        &self,
        request: Request<pb::WatchGenerationRequest>,
    ) -> Result<Response<Self::WatchGenerationStream>, Status> {
        let user = caller(&request)?;
        let stream = self.chat.watch(user, request.get_ref().message_id).await?;
        Ok(Response::new(events(stream, |event| pb::WatchGenerationResponse {
            event: Some(event),
        })))
    }

    async fn stop_generation(
        &self,
        request: Request<pb::StopGenerationRequest>,
    ) -> Result<Response<pb::StopGenerationResponse>, Status> {
        let user = caller(&request)?;
        let row = self.chat.stop(user, request.get_ref().message_id).await?;
        Ok(Response::new(pb::StopGenerationResponse {
            message: Some(convert::message(&row)),
        }))
    }

    async fn regenerate_message(
        &self,
        request: Request<pb::RegenerateMessageRequest>,
    ) -> Result<Response<Self::RegenerateMessageStream>, Status> {
        let user = caller(&request)?;
        let trace = TraceHeaders::from_metadata(request.metadata());
        let r = request.into_inner();
        let generation = self.chat.regenerate(user, r.message_id, r.api_config_id, trace).await?;
        Ok(Response::new(events(generation.follow(), |event| {
            pb::RegenerateMessageResponse { event: Some(event) }
        })))
    }

    async fn list_messages(
        &self,
        request: Request<pb::ListMessagesRequest>,
    ) -> Result<Response<pb::ListMessagesResponse>, Status> {
        let user = caller(&request)?;
        let r = request.into_inner();
        let (rows, next_page_token) = self
            .chat
            .list_messages(user, r.session_id, r.page_size, &r.page_token)
            .await?;
        Ok(Response::new(pb::ListMessagesResponse {
            messages: rows.iter().map(convert::message).collect(),
            next_page_token,
        }))
    }

    async fn get_message(
        &self,
        request: Request<pb::GetMessageRequest>,
    ) -> Result<Response<pb::GetMessageResponse>, Status> {
        let user = caller(&request)?;
        let row = self.chat.message(user, request.get_ref().id).await?;
        Ok(Response::new(pb::GetMessageResponse {
            message: Some(convert::message(&row)),
        }))
    }

    async fn update_message(
        &self,
        request: Request<pb::UpdateMessageRequest>,
    ) -> Result<Response<pb::UpdateMessageResponse>, Status> {
        let user = caller(&request)?;
        let r = request.into_inner();
        let row = self.chat.update_message(user, r.id, &r.content).await?;
        Ok(Response::new(pb::UpdateMessageResponse {
            message: Some(convert::message(&row)),
        }))
    }

    async fn delete_message(
        &self,
        request: Request<pb::DeleteMessageRequest>,
    ) -> Result<Response<pb::DeleteMessageResponse>, Status> {
        let user = caller(&request)?;
        self.chat.delete_message(user, request.get_ref().id).await?;
        Ok(Response::new(pb::DeleteMessageResponse {}))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn without_a_mask_set_fields_change() {
        let mask = UpdateMask::new(None, &["name", "model"]).unwrap();
        assert_eq!(mask.pick("name", Some("n".to_owned())), Some("n".to_owned()));
        assert_eq!(mask.pick::<String>("model", None), None);
        assert_eq!(mask.pick_optional::<f64>("temperature", None), None);
        assert_eq!(mask.pick_optional("temperature", Some(0.5)), Some(Some(0.5)));
    }

    #[test]
    fn a_mask_names_what_changes() {
        let mask = UpdateMask::new(
            Some(prost_types::FieldMask {
                paths: vec!["name".into(), "temperature".into()],
            }),
            &["name", "model", "temperature"],
        )
        .unwrap();
        // Set but not in the mask: unchanged.
        assert_eq!(mask.pick("model", Some("m".to_owned())), None);
        // In the mask but unset: its default (which validation then judges) or cleared.
        assert_eq!(mask.pick::<String>("name", None), Some(String::new()));
        assert_eq!(mask.pick_optional::<f64>("temperature", None), Some(None));
    }

    #[test]
    fn unknown_mask_paths_are_refused() {
        let result = UpdateMask::new(
            Some(prost_types::FieldMask {
                paths: vec!["api_key_hint".into()],
            }),
            &["name"],
        );
        assert!(matches!(
            result,
            Err(Error::InvalidField {
                field: "update_mask",
                ..
            })
        ));
    }
}
