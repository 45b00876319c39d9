//! The HTTP API: the room list, reading messages (with long polling) and
//! posting them.

use std::sync::Arc;
use std::time::Duration;

use gyre_rt::broadcast::RecvError;
use gyre_server::{Request, Response};
use http::header::{HeaderName, RETRY_AFTER};
use http::StatusCode;
use serde::Deserialize;

use crate::model::{check_nick, ChatError, EventKind};
use crate::{after_of, room_of, Broker, Chat};

/// A JSON response.
pub(crate) fn json(status: StatusCode, body: String) -> Response {
    Response::with_body("application/json", body)
        .status(status)
        .header(HeaderName::from_static("cache-control"), "no-store")
}

/// An error as JSON with its status (and `Retry-After` when rate limited).
pub(crate) fn error(e: &ChatError) -> Response {
    let r = json(e.status(), e.to_json());
    if e.code == "rate_limited" {
        r.header(RETRY_AFTER, "1")
    } else {
        r
    }
}

#[derive(Deserialize)]
struct Post {
    nick: String,
    text: String,
}

impl<B: Broker> Chat<B> {
    pub(crate) async fn list_rooms(&self) -> Response {
        let rooms = self.broker.rooms().await;
        json(
            StatusCode::OK,
            serde_json::json!({ "rooms": rooms }).to_string(),
        )
    }

    /// `GET /api/rooms/ROOM/messages?after=ID&wait=S&nick=NICK`.
    pub(crate) async fn get_messages(self: Arc<Self>, req: Request) -> Response {
        match self.read_messages(&req).await {
            Ok(r) => r,
            Err(e) => error(&e),
        }
    }

    async fn read_messages(&self, req: &Request) -> Result<Response, ChatError> {
        let room = room_of(req)?;
        let after = after_of(req)?;
        let wait = match req.query_param("wait") {
            None => Duration::ZERO,
            Some(v) => v
                .parse::<f64>()
                .ok()
                .filter(|s| s.is_finite() && *s >= 0.0)
                .map(|s| Duration::from_secs_f64(s).min(self.settings.max_wait))
                .ok_or_else(|| ChatError::new("bad_request", "wait must be a number of seconds"))?,
        };
        if let Some(nick) = req.query_param("nick") {
            check_nick(&nick)?;
            self.broker.touch(&room, &nick);
        }
        let waiting = after.filter(|_| !wait.is_zero());
        // Subscribe before reading the log, so nothing falls in between.
        let mut sub = match waiting {
            Some(_) => Some(self.broker.subscribe(&room)?),
            None => None,
        };
        let mut history = self
            .broker
            .history(&room, after, self.settings.recent)
            .await?;
        if let (Some(after), Some(sub)) = (waiting, sub.as_mut()) {
            if history.messages.is_empty() && !history.trimmed {
                let newer = async {
                    loop {
                        match sub.recv().await {
                            Ok(e) => {
                                if matches!(&e.kind, EventKind::Message(m) if m.id > after) {
                                    return;
                                }
                            }
                            Err(RecvError::Lagged(_)) => return,
                            Err(RecvError::Closed) => return,
                        }
                    }
                };
                // Shutdown answers at once (with nothing new) rather than hold it up.
                let waited =
                    gyre_rt::select(gyre_rt::time::timeout(wait, newer), req.shutdown_signal())
                        .await;
                if matches!(waited, gyre_rt::Either::Left(Ok(()))) {
                    history = self
                        .broker
                        .history(&room, Some(after), self.settings.recent)
                        .await?;
                }
            }
        }
        let body = serde_json::json!({
            "messages": history.messages,
            "trimmed": history.trimmed,
            "last_id": history.last_id,
            "people": self.broker.people(&room),
        });
        Ok(json(StatusCode::OK, body.to_string()))
    }

    /// `POST /api/rooms/ROOM/messages` with `{"nick": ..., "text": ...}`.
    pub(crate) async fn post_message(self: Arc<Self>, mut req: Request) -> Response {
        let room = match room_of(&req) {
            Ok(r) => r,
            Err(e) => return error(&e),
        };
        let body = match req.body.collect().await {
            Ok(b) => b,
            Err(e) => {
                return error(&ChatError::new(
                    "bad_request",
                    format!("cannot read the body: {e}"),
                ))
            }
        };
        let post: Post = match serde_json::from_slice(&body) {
            Ok(p) => p,
            Err(e) => {
                return error(&ChatError::new(
                    "bad_request",
                    format!("the body must be JSON {{\"nick\": ..., \"text\": ...}}: {e}"),
                ))
            }
        };
        let key = (req.peer_addr().map(|a| a.ip()), post.nick.clone());
        let said = self
            .say(&room, &post.nick, &post.text, |rate, burst| {
                self.charge_http(key, rate, burst)
            })
            .await;
        match said {
            Ok(m) => json(StatusCode::OK, serde_json::to_string(&*m).expect("JSON")),
            Err(e) => error(&e),
        }
    }
}
