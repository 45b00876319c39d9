//! The Server-Sent Events transport: history and live events as `message`
//! events whose ids are the message ids, so that a browser resumes by itself.

use std::sync::Arc;

use gyre_rt::broadcast::RecvError;
use gyre_server::sse::{self, Event as SseEvent, EventSender};
use gyre_server::{Request, Response};

use crate::api::error;
use crate::model::{check_nick, ChatError, EventKind, PresenceChange};
use crate::{after_of, room_of, Broker, Chat};

impl<B: Broker> Chat<B> {
    /// `GET /api/rooms/ROOM/events?nick=NICK&after=ID` (`Last-Event-ID` wins over `after`).
    pub(crate) async fn events(self: Arc<Self>, req: Request) -> Response {
        let checked = (|| {
            let room = room_of(&req)?;
            let nick = req.query_param("nick").unwrap_or_default();
            check_nick(&nick)?;
            let after = match sse::last_event_id(&req) {
                Some(id) => Some(id.trim().parse().map_err(|_| {
                    ChatError::new("bad_request", "Last-Event-ID must be a message id")
                })?),
                None => after_of(&req)?,
            };
            Ok::<_, ChatError>((room, nick, after))
        })();
        let (room, nick, after) = match checked {
            Ok(c) => c,
            Err(e) => return error(&e),
        };
        let sub = match self.broker.subscribe(&room) {
            Ok(s) => s,
            Err(e) => return error(&e),
        };
        let (response, events) = sse::stream(Some(self.settings.keep_alive));
        gyre_rt::spawn(async move {
            self.broker.join(&room, &nick);
            self.stream(&events, sub, &room, after).await;
            self.broker.leave(&room, &nick);
        })
        .detach();
        response
    }

    /// Sends history, then live events, until the client goes or lags hopelessly.
    async fn stream(
        &self,
        events: &EventSender,
        mut sub: gyre_rt::broadcast::Subscription<Arc<crate::model::Event>>,
        room: &str,
        after: Option<u64>,
    ) {
        let Some(mut last) = self.send_sse_history(events, room, after).await else {
            return;
        };
        let people = self.broker.people(room);
        let present = PresenceChange {
            people: &people,
            joined: &[],
            left: &[],
        };
        let json = serde_json::to_string(&present).expect("JSON");
        for e in [
            SseEvent::data(json).event("presence"),
            SseEvent::data("{}").event("ready"),
        ] {
            if events.send(&e).await.is_err() {
                return;
            }
        }
        loop {
            let event = match sub.recv().await {
                Ok(e) => e,
                Err(RecvError::Lagged(_)) => {
                    match self.send_sse_history(events, room, Some(last)).await {
                        Some(l) => {
                            last = l;
                            continue;
                        }
                        None => return,
                    }
                }
                Err(RecvError::Closed) => return,
            };
            let sse_event = match &event.kind {
                EventKind::Message(m) => {
                    if m.id <= last {
                        continue;
                    }
                    last = m.id;
                    SseEvent::data(event.data.clone())
                        .event("message")
                        .id(m.id.to_string())
                }
                EventKind::Presence => SseEvent::data(event.data.clone()).event("presence"),
            };
            if events.send(&sse_event).await.is_err() {
                return;
            }
        }
    }

    /// Sends the messages after `after` as events; returns the last id.
    async fn send_sse_history(
        &self,
        events: &EventSender,
        room: &str,
        after: Option<u64>,
    ) -> Option<u64> {
        let history = self
            .broker
            .history(room, after, self.settings.recent)
            .await
            .ok()?;
        if history.trimmed {
            let e = SseEvent::data(r#"{"trimmed":true}"#).event("trimmed");
            events.send(&e).await.ok()?;
        }
        for m in &history.messages {
            let data = serde_json::to_string(&**m).expect("JSON");
            let e = SseEvent::data(data).event("message").id(m.id.to_string());
            events.send(&e).await.ok()?;
        }
        Some(history.last_id)
    }
}
