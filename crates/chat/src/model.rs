//! Messages, events, and the rules for names and texts.

use std::sync::Arc;

use gyre_server::ws::Prepared;
use http::StatusCode;
use serde::Serialize;

/// A stored chat message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChatMessage {
    /// Increases by one within its room, from 1.
    pub id: u64,
    /// The room.
    pub room: String,
    /// Who sent it.
    pub nick: String,
    /// What it says.
    pub text: String,
    /// When the server stored it, in milliseconds since the Unix epoch.
    pub ts: u64,
}

/// Something that happened in a room, encoded once for every listener.
#[derive(Debug)]
pub struct Event {
    /// What happened.
    pub kind: EventKind,
    /// The WebSocket text frame: `{"type": ..., ...}`.
    pub frame: Prepared,
    /// The JSON of the event without its `type` (the SSE event's data).
    pub data: String,
}

/// What an [`Event`] is.
#[derive(Debug)]
pub enum EventKind {
    /// A new message.
    Message(Arc<ChatMessage>),
    /// Who is present changed.
    Presence,
}

#[derive(Serialize)]
struct Tagged<'a, T: Serialize> {
    #[serde(rename = "type")]
    kind: &'a str,
    #[serde(flatten)]
    body: &'a T,
}

/// `value` as JSON with a `"type": kind` field first.
pub fn tagged<T: Serialize>(kind: &str, value: &T) -> String {
    serde_json::to_string(&Tagged { kind, body: value }).expect("chat JSON serializes")
}

/// The presence change a [`EventKind::Presence`] event carries.
#[derive(Debug, Serialize)]
pub struct PresenceChange<'a> {
    /// Everyone present now, sorted.
    pub people: &'a [String],
    /// Who joined since the last presence event.
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    pub joined: &'a [String],
    /// Who left since the last presence event.
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    pub left: &'a [String],
}

impl Event {
    /// The event of a new message.
    pub fn message(m: Arc<ChatMessage>) -> Event {
        let data = serde_json::to_string(&*m).expect("chat JSON serializes");
        let frame = Prepared::text(&tagged("message", &*m));
        Event {
            kind: EventKind::Message(m),
            frame,
            data,
        }
    }

    /// The event of a presence change.
    pub fn presence(change: &PresenceChange<'_>) -> Event {
        Event {
            kind: EventKind::Presence,
            frame: Prepared::text(&tagged("presence", change)),
            data: serde_json::to_string(change).expect("chat JSON serializes"),
        }
    }
}

/// Why a chat request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatError {
    /// A stable code (`invalid_nick`, `rate_limited`, ...).
    pub code: &'static str,
    /// What was wrong, for people.
    pub message: String,
}

impl ChatError {
    /// A new error.
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        ChatError {
            code,
            message: message.into(),
        }
    }

    /// The HTTP status that goes with the code.
    pub fn status(&self) -> StatusCode {
        match self.code {
            "rate_limited" => StatusCode::TOO_MANY_REQUESTS,
            "too_many_rooms" => StatusCode::SERVICE_UNAVAILABLE,
            "unavailable" => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    /// `{"error": {"code": ..., "message": ...}}`.
    pub fn to_json(&self) -> String {
        serde_json::json!({"error": {"code": self.code, "message": self.message}}).to_string()
    }
}

impl std::fmt::Display for ChatError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for ChatError {}

/// Longest nickname, in characters.
pub const MAX_NICK: usize = 24;
/// Longest room name, in characters.
pub const MAX_ROOM: usize = 32;

/// Checks a nickname: 1 to 24 letters, digits, `_`, `-` or `.`.
pub fn check_nick(nick: &str) -> Result<(), ChatError> {
    let n = nick.chars().count();
    if (1..=MAX_NICK).contains(&n)
        && nick
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))
    {
        Ok(())
    } else {
        Err(ChatError::new(
            "invalid_nick",
            "a nickname is 1 to 24 letters, digits, _, - or .",
        ))
    }
}

/// Checks a room name: 1 to 32 lowercase ASCII letters, digits, `-` or `_`.
pub fn check_room(room: &str) -> Result<(), ChatError> {
    if (1..=MAX_ROOM).contains(&room.len())
        && room
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_'))
    {
        Ok(())
    } else {
        Err(ChatError::new(
            "invalid_room",
            "a room name is 1 to 32 lowercase letters, digits, - or _",
        ))
    }
}

/// Checks and trims a message text: 1 to `max` bytes, no control
/// characters but newline and tab.
pub fn check_text(text: &str, max: usize) -> Result<&str, ChatError> {
    let t = text.trim();
    if t.is_empty() {
        return Err(ChatError::new("invalid_text", "the message is empty"));
    }
    if t.len() > max {
        return Err(ChatError::new(
            "invalid_text",
            format!("the message is longer than {max} bytes"),
        ));
    }
    if t.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(ChatError::new(
            "invalid_text",
            "the message holds control characters",
        ));
    }
    Ok(t)
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_texts() {
        for ok in ["ann", "Zoë", "a.b-c_d", "x", "123456789012345678901234"] {
            assert!(check_nick(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "a b",
            "<b>",
            "1234567890123456789012345",
            "ann\n",
            "a/b",
        ] {
            assert_eq!(check_nick(bad).unwrap_err().code, "invalid_nick", "{bad:?}");
        }
        for ok in ["lobby", "room-1", "a_b", "x"] {
            assert!(check_room(ok).is_ok(), "{ok}");
        }
        for bad in ["", "Lobby", "a b", "ü", "../x", &"x".repeat(33)] {
            assert_eq!(check_room(bad).unwrap_err().code, "invalid_room", "{bad:?}");
        }
        assert_eq!(check_text("  hi \n", 10), Ok("hi"));
        assert_eq!(check_text("a\nb\tc", 10), Ok("a\nb\tc"));
        for bad in ["", "   ", "12345678901", "a\u{7}b", "a\rb"] {
            assert_eq!(
                check_text(bad, 10).unwrap_err().code,
                "invalid_text",
                "{bad:?}"
            );
        }
    }

    #[test]
    fn events_encode_once_with_and_without_type() {
        let m = Arc::new(ChatMessage {
            id: 3,
            room: "lobby".into(),
            nick: "ann".into(),
            text: "<b>hi</b>".into(),
            ts: 5,
        });
        let e = Event::message(m);
        assert_eq!(
            e.data,
            r#"{"id":3,"room":"lobby","nick":"ann","text":"<b>hi</b>","ts":5}"#
        );
        let people = vec!["ann".to_owned()];
        let p = Event::presence(&PresenceChange {
            people: &people,
            joined: &people,
            left: &[],
        });
        assert_eq!(p.data, r#"{"people":["ann"],"joined":["ann"]}"#);
    }
}
