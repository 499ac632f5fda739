//! The gRPC face of chat-service: read the caller and the request, call [`ChatService`], map
//! the reply. Every method needs an access token (the auth layer checked it) except
//! `SharedChatService/GetSharedChat`, whose credential is the link. One file per gRPC service
//! (`api_configs`, `personas`, `sessions`, `messages`, `shared_connections`, `usage`,
//! `models` (the model picker and chat defaults), `transfer`, `share_links`, `folders`,
//! `prompts`); this one holds
//! what they share.

mod account_data;
mod api_configs;
mod folders;
mod messages;
mod models;
mod notifications;
mod personas;
mod prompts;
mod quotas;
mod rooms;
mod sessions;
mod share_links;
mod shared_connections;
mod transfer;
mod usage;

use std::collections::HashSet;
use std::sync::Arc;

use futures::StreamExt;
use futures::stream::BoxStream;
use parley_proto::chat::v1 as pb;
use parley_service_kit::access_token::AuthenticatedUser;
use tonic::{Request, Status};

use crate::Error;
use crate::ids::OwnerId;
use crate::service::ChatService;
pub use rooms::RoomApi;

/// All four services share one [`ChatService`].
#[derive(Clone)]
pub struct ChatApi {
    chat: Arc<ChatService>,
}

impl ChatApi {
    pub fn new(chat: Arc<ChatService>) -> Self {
        Self { chat }
    }

    /// The owner id of the caller's account (the auth layer already recorded the user id on
    /// the request's span).
    async fn caller<T>(&self, request: &Request<T>) -> Result<OwnerId, Status> {
        Ok(self.chat.owner(&AuthenticatedUser::from_request(request)?).await?)
    }
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
