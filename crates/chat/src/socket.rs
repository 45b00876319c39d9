//! The WebSocket transport: history on joining, live events, messages in
//! with acknowledgements, and recovery when the connection lags behind.

use std::sync::Arc;
use std::time::Instant;

use gyre_rt::broadcast::RecvError;
use gyre_rt::{select, Either};
use gyre_server::ws::{self, Message, WebSocket, WsSender};
use gyre_server::{Request, Response};
use serde::Deserialize;
use serde_json::json;

use crate::model::{check_nick, check_room, tagged, ChatError, EventKind, PresenceChange};
use crate::rate::Bucket;
use crate::{after_of, Broker, Chat, History};

/// What a client sends.
#[derive(Deserialize)]
struct ClientMessage {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    text: String,
    #[serde(rename = "ref", default)]
    reference: Option<String>,
}

/// Most events sent in one write.
const BATCH: usize = 64;

/// Longest `ref` echoed back.
const MAX_REF: usize = 64;

impl<B: Broker> Chat<B> {
    /// `GET /api/rooms/ROOM/ws?nick=NICK&after=ID`.
    pub(crate) fn websocket(self: Arc<Self>, req: Request) -> Response {
        let room = req.param("room").unwrap_or_default().to_owned();
        let nick = req.query_param("nick").unwrap_or_default();
        let after = after_of(&req);
        let config = self.settings.ws.clone();
        ws::upgrade(&req, config, move |socket| async move {
            let checked = check_room(&room).and(check_nick(&nick)).and(after);
            match checked {
                Ok(after) => self.session(socket, &room, &nick, after).await,
                Err(e) => socket.close(ws::code::POLICY, &e.message).await,
            }
        })
    }

    async fn session(&self, socket: WebSocket, room: &str, nick: &str, after: Option<u64>) {
        let mut sub = match self.broker.subscribe(room) {
            Ok(s) => s,
            Err(e) => return socket.close(1013, &e.message).await, // try again later
        };
        let (tx, mut rx) = socket.split();
        let Some(mut last) = self.send_history(&tx, room, after).await else {
            return;
        };
        self.broker.join(room, nick);
        let people = self.broker.people(room);
        let present = PresenceChange {
            people: &people,
            joined: &[],
            left: &[],
        };
        if tx.send(tagged("presence", &present)).await.is_err() {
            self.broker.leave(room, nick);
            return;
        }
        let mut bucket = Bucket::new(self.settings.burst);
        loop {
            match select(rx.recv(), sub.recv()).await {
                Either::Left(Some(Message::Text(text))) => {
                    let reply = self.client_message(room, nick, &text, &mut bucket).await;
                    if tx.send(reply).await.is_err() {
                        break;
                    }
                }
                Either::Left(Some(Message::Binary(_))) => {
                    let e = ChatError::new("bad_request", "send JSON in text messages");
                    if tx.send(error_json(&e, None)).await.is_err() {
                        break;
                    }
                }
                Either::Left(Some(_)) => {} // ping, pong: handled by the socket
                Either::Left(None) => break,
                Either::Right(Ok(event)) => {
                    // This event and any others queued behind it go out in one write.
                    let mut batch = Vec::new();
                    let mut next = Some(event);
                    while let Some(event) = next {
                        match &event.kind {
                            // Already in the history sent.
                            EventKind::Message(m) if m.id <= last => {}
                            EventKind::Message(m) => {
                                last = m.id;
                                batch.push(event.frame.clone());
                            }
                            EventKind::Presence => batch.push(event.frame.clone()),
                        }
                        next = if batch.len() < BATCH {
                            sub.try_next()
                        } else {
                            None
                        };
                    }
                    if tx.send_prepared_all(&batch).await.is_err() {
                        break;
                    }
                }
                Either::Right(Err(RecvError::Lagged(_))) => {
                    // This client fell behind and missed live events: send
                    // what it missed from the log instead.
                    match self.send_history(&tx, room, Some(last)).await {
                        Some(l) => last = l,
                        None => break,
                    }
                }
                Either::Right(Err(RecvError::Closed)) => {
                    tx.close(ws::code::POLICY, "too slow to keep up with the room")
                        .await;
                    break;
                }
            }
        }
        self.broker.leave(room, nick);
    }

    /// Sends the history after `after`; returns the last id it covers.
    async fn send_history(&self, tx: &WsSender, room: &str, after: Option<u64>) -> Option<u64> {
        let history = match self.broker.history(room, after, self.settings.recent).await {
            Ok(h) => h,
            Err(e) => {
                tx.close(1011, &e.message).await;
                return None;
            }
        };
        let History {
            messages,
            trimmed,
            last_id,
        } = history;
        let text = json!({"type": "history", "messages": messages, "trimmed": trimmed}).to_string();
        tx.send(text).await.ok()?;
        Some(last_id)
    }

    /// Answers one client message: an ack or an error.
    async fn client_message(
        &self,
        room: &str,
        nick: &str,
        text: &str,
        bucket: &mut Bucket,
    ) -> String {
        let msg: ClientMessage = match serde_json::from_str(text) {
            Ok(m) => m,
            Err(e) => {
                return error_json(
                    &ChatError::new("bad_request", format!("not a chat message: {e}")),
                    None,
                )
            }
        };
        let reference = msg.reference.map(|mut r| {
            if r.len() > MAX_REF {
                let mut cut = MAX_REF;
                while !r.is_char_boundary(cut) {
                    cut -= 1;
                }
                r.truncate(cut);
            }
            r
        });
        if msg.kind != "say" {
            let e = ChatError::new(
                "bad_request",
                format!("unknown message type {:?}", msg.kind),
            );
            return error_json(&e, reference.as_deref());
        }
        let said = self
            .say(room, nick, &msg.text, |rate, burst| {
                bucket.take(rate, burst, Instant::now())
            })
            .await;
        match said {
            Ok(m) => json!({"type": "ack", "ref": reference, "id": m.id}).to_string(),
            Err(e) => error_json(&e, reference.as_deref()),
        }
    }
}

fn error_json(e: &ChatError, reference: Option<&str>) -> String {
    tagged(
        "error",
        &json!({"code": e.code, "message": e.message, "ref": reference}),
    )
}
