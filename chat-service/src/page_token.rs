//! Opaque page tokens: URL-safe base64 of the last row's sort key, so the next page starts
//! strictly after it (keyset pagination; stable while rows are added or removed).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::ids::{MessageId, NotificationId, OwnerId, RoomId, SessionId, ShareLinkId};

/// Position after the last session of a page, in ListSessions order
/// (pinned first, then last_active_at descending, then id descending).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionCursor {
    pub pinned: bool,
    pub last_active_at: i64,
    pub id: SessionId,
}

/// Position after the last message of a page, oldest first (created_at, id ascending).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageCursor {
    pub created_at: i64,
    pub id: MessageId,
}

/// Position after the last account of a ListAccountUsage page (owner ids ascending).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountCursor {
    pub owner: OwnerId,
}

fn encode(prefix: &str, parts: &[i64]) -> String {
    let text = std::iter::once(prefix.to_owned())
        .chain(parts.iter().map(i64::to_string))
        .collect::<Vec<_>>()
        .join(":");
    URL_SAFE_NO_PAD.encode(text)
}

fn decode<const N: usize>(prefix: &str, token: &str) -> Option<[i64; N]> {
    let bytes = URL_SAFE_NO_PAD.decode(token).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let mut parts = text.split(':');
    if parts.next()? != prefix {
        return None;
    }
    let mut out = [0i64; N];
    for slot in &mut out {
        *slot = parts.next()?.parse().ok()?;
    }
    parts.next().is_none().then_some(out)
}

/// Position after the last room of a SearchPublicRooms page (last_active_at, id descending).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoomCursor {
    pub last_active_at: i64,
    pub id: RoomId,
}

impl RoomCursor {
    pub fn encode(&self) -> String {
        encode("r", &[self.last_active_at, self.id.0])
    }

    /// None for anything this service did not issue.
    pub fn decode(token: &str) -> Option<Self> {
        let [last_active_at, id] = decode::<2>("r", token)?;
        Some(Self {
            last_active_at,
            id: RoomId(id),
        })
    }
}

impl SessionCursor {
    pub fn encode(&self) -> String {
        encode("s", &[i64::from(self.pinned), self.last_active_at, self.id.0])
    }

    /// None for anything this service did not issue (the caller answers INVALID_ARGUMENT).
    pub fn decode(token: &str) -> Option<Self> {
        let [pinned, last_active_at, id] = decode::<3>("s", token)?;
        Some(Self {
            pinned: pinned != 0,
            last_active_at,
            id: SessionId(id),
        })
    }
}

impl MessageCursor {
    pub fn encode(&self) -> String {
        encode("m", &[self.created_at, self.id.0])
    }

    pub fn decode(token: &str) -> Option<Self> {
        let [created_at, id] = decode::<2>("m", token)?;
        Some(Self {
            created_at,
            id: MessageId(id),
        })
    }
}

impl AccountCursor {
    pub fn encode(&self) -> String {
        encode("a", &[self.owner.0])
    }

    pub fn decode(token: &str) -> Option<Self> {
        let [owner] = decode::<1>("a", token)?;
        Some(Self { owner: OwnerId(owner) })
    }
}

/// Position after the last link of a ListShareLinks page (ids descending).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShareLinkCursor {
    pub id: ShareLinkId,
}

impl ShareLinkCursor {
    pub fn encode(&self) -> String {
        encode("l", &[self.id.0])
    }

    pub fn decode(token: &str) -> Option<Self> {
        let [id] = decode::<1>("l", token)?;
        Some(Self { id: ShareLinkId(id) })
    }
}

/// Position after the last notification of a ListNotifications page (ids descending).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotificationCursor {
    pub id: NotificationId,
}

impl NotificationCursor {
    pub fn encode(&self) -> String {
        encode("n", &[self.id.0])
    }

    pub fn decode(token: &str) -> Option<Self> {
        let [id] = decode::<1>("n", token)?;
        Some(Self { id: NotificationId(id) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let s = SessionCursor {
            pinned: true,
            last_active_at: 1_790_000_000_123,
            id: SessionId(42),
        };
        assert_eq!(SessionCursor::decode(&s.encode()), Some(s));
        let m = MessageCursor {
            created_at: 5,
            id: MessageId(7),
        };
        assert_eq!(MessageCursor::decode(&m.encode()), Some(m));
        let a = AccountCursor { owner: OwnerId(9) };
        assert_eq!(AccountCursor::decode(&a.encode()), Some(a));
        assert_eq!(AccountCursor::decode(&m.encode()), None);
    }

    #[test]
    fn refuses_foreign_tokens() {
        let m = MessageCursor {
            created_at: 5,
            id: MessageId(7),
        };
        assert_eq!(SessionCursor::decode(&m.encode()), None);
        assert_eq!(SessionCursor::decode("garbage!"), None);
        assert_eq!(MessageCursor::decode(""), None);
        assert_eq!(MessageCursor::decode(&URL_SAFE_NO_PAD.encode("m:1:2:3")), None);
    }
}
