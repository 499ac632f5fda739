//! Share links as their owner sees them, and the snapshot as anyone with the link sees it:
//! the title, the persona's name and the messages' role, text, model and time — no ids, no
//! account, no config, no system prompt.

use parley_proto::chat::v1 as pb;
use parley_proto::timestamp::from_unix_millis;

use super::message_role;
use crate::store::{ShareLinkRow, SharedMessageRow};

pub fn share_link(row: &ShareLinkRow) -> pb::ShareLink {
    pb::ShareLink {
        id: row.id.0,
        share_token: row.share_token.clone(),
        session_id: row.session_id.0,
        title: row.title.clone(),
        message_count: i32::try_from(row.message_count).unwrap_or(i32::MAX),
        created_at: Some(from_unix_millis(row.created_at)),
    }
}

pub fn shared_chat(link: &ShareLinkRow, messages: &[SharedMessageRow]) -> pb::SharedChat {
    pb::SharedChat {
        title: link.title.clone(),
        persona_name: link.persona_name.clone(),
        messages: messages
            .iter()
            .map(|m| pb::SharedMessage {
                role: message_role(m.role) as i32,
                content: m.content.clone(),
                model: m.model.clone(),
                created_at: Some(from_unix_millis(m.created_at)),
            })
            .collect(),
        shared_at: Some(from_unix_millis(link.created_at)),
    }
}
