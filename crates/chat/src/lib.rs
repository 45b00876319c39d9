//! gyre's chat: rooms with a log of numbered messages, presence, and three
//! transports with one protocol (WebSocket; Server-Sent Events with POST;
//! long polling), plus the web page that uses them.
//!
//! The protocol is written down in `docs/chat.md`. The layout:
//!
//! - [`model`]: messages, events, names and the rules for them.
//! - [`Broker`]: where logs live and how events travel; [`InProcess`] is
//!   the default, shared by every loop through broadcast topics.
//! - `api`: the HTTP API (room list, messages with long polling, posting).
//! - `socket`: the WebSocket transport; `events`: the SSE transport.
//! - `assets`: the page, embedded in the binary.
//!
//! ```no_run
//! let chat = gyre_chat::Chat::in_process(gyre_chat::ChatSettings::default());
//! let server = chat.routes(gyre_server::Server::new());
//! ```

#![deny(missing_docs)]

mod api;
mod assets;
mod broker;
mod events;
mod memory;
pub mod model;
mod rate;
mod socket;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gyre_rt::broadcast::TopicConfig;
use gyre_server::ws::WsConfig;
use gyre_server::{Request, Server};

pub use broker::{Broker, History, RoomInfo};
pub use memory::InProcess;
use model::{check_nick, check_room, check_text, ChatError, ChatMessage};
use rate::Bucket;

/// The chat's settings.
#[derive(Debug, Clone)]
pub struct ChatSettings {
    /// Messages kept per room (older ones are trimmed). Default 1000.
    pub history: usize,
    /// Most rooms. Default 1000.
    pub max_rooms: usize,
    /// Messages per second one connection may send on average. Default 5.
    pub rate: f64,
    /// Messages one connection may send at once. Default 10.
    pub burst: u32,
    /// Longest message text in bytes. Default 2000.
    pub max_text: usize,
    /// Messages a client gets on joining without a last id. Default 50.
    pub recent: usize,
    /// Longest long poll. Default 30 s.
    pub max_wait: Duration,
    /// SSE keep-alive comment interval. Default 15 s.
    pub keep_alive: Duration,
    /// WebSocket limits.
    pub ws: WsConfig,
    /// Per-subscriber queue and slow-consumer policy of every room.
    pub topic: TopicConfig,
}

impl Default for ChatSettings {
    fn default() -> Self {
        ChatSettings {
            history: 1000,
            max_rooms: 1000,
            rate: 5.0,
            burst: 10,
            max_text: 2000,
            recent: 50,
            max_wait: Duration::from_secs(30),
            keep_alive: Duration::from_secs(15),
            ws: WsConfig {
                max_frame: 64 * 1024,
                max_message: 64 * 1024,
                ..WsConfig::default()
            },
            topic: TopicConfig::default(),
        }
    }
}

/// Senders remembered for HTTP rate limits before full buckets are forgotten.
const HTTP_BUCKETS: usize = 10_000;

/// The chat application over a broker.
#[derive(Debug)]
pub struct Chat<B: Broker = InProcess> {
    broker: B,
    settings: ChatSettings,
    /// Rate limits of HTTP senders, by client address and nickname.
    http_buckets: Mutex<HashMap<(Option<IpAddr>, String), Bucket>>,
}

impl Chat<InProcess> {
    /// A chat whose rooms live in this process.
    pub fn in_process(settings: ChatSettings) -> Arc<Self> {
        let broker = InProcess::new(settings.history, settings.max_rooms, settings.topic);
        Chat::with_broker(broker, settings)
    }
}

impl<B: Broker> Chat<B> {
    /// A chat over `broker`.
    pub fn with_broker(broker: B, settings: ChatSettings) -> Arc<Self> {
        Arc::new(Chat {
            broker,
            settings,
            http_buckets: Mutex::new(HashMap::new()),
        })
    }

    /// The broker.
    pub fn broker(&self) -> &B {
        &self.broker
    }

    /// The settings.
    pub fn settings(&self) -> &ChatSettings {
        &self.settings
    }

    /// Adds the page (`/`, `/static/*`) and the API (`/api/*`) to `server`.
    pub fn routes(self: &Arc<Self>, server: Server) -> Server {
        assets::routes(server)
            .get(
                "/api/rooms",
                handler(self, |chat, _| async move { chat.list_rooms().await }),
            )
            .get(
                "/api/rooms/:room/messages",
                handler(self, Self::get_messages),
            )
            .post(
                "/api/rooms/:room/messages",
                handler(self, Self::post_message),
            )
            .get(
                "/api/rooms/:room/ws",
                handler(self, |chat, req| async move { chat.websocket(req) }),
            )
            .get("/api/rooms/:room/events", handler(self, Self::events))
    }

    /// Checks and stores a message from `nick`; `charge` takes one message
    /// from the sender's allowance (or says how long to wait).
    async fn say(
        &self,
        room: &str,
        nick: &str,
        text: &str,
        charge: impl FnOnce(f64, u32) -> Result<(), f64>,
    ) -> Result<Arc<ChatMessage>, ChatError> {
        check_room(room)?;
        check_nick(nick)?;
        let text = check_text(text, self.settings.max_text)?;
        if let Err(wait) = charge(self.settings.rate, self.settings.burst) {
            return Err(ChatError::new(
                "rate_limited",
                format!("too many messages: wait {:.1} s", wait.max(0.1)),
            ));
        }
        self.broker.append(room, nick, text).await
    }

    /// Takes one message from an HTTP sender's allowance.
    fn charge_http(&self, key: (Option<IpAddr>, String), rate: f64, burst: u32) -> Result<(), f64> {
        let now = Instant::now();
        let mut buckets = self.http_buckets.lock().expect("buckets lock");
        if buckets.len() >= HTTP_BUCKETS {
            buckets.retain(|_, b| !b.is_full(rate, burst, now));
        }
        buckets
            .entry(key)
            .or_insert_with(|| Bucket::new(burst))
            .take(rate, burst, now)
    }
}

/// A route handler that calls `f` with its own handle on the chat.
fn handler<B, F, Fut>(chat: &Arc<Chat<B>>, f: F) -> impl Fn(Request) -> Fut + Send + Sync + 'static
where
    B: Broker,
    F: Fn(Arc<Chat<B>>, Request) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = gyre_server::Response> + 'static,
{
    let chat = chat.clone();
    move |req| f(chat.clone(), req)
}

/// A room's name from the path, checked.
fn room_of(req: &Request) -> Result<String, ChatError> {
    let room = req.param("room").unwrap_or_default();
    check_room(room)?;
    Ok(room.to_owned())
}

/// An optional `after` id from the query string.
fn after_of(req: &Request) -> Result<Option<u64>, ChatError> {
    match req.query_param("after") {
        None => Ok(None),
        Some(v) => v.parse().map(Some).map_err(|_| {
            ChatError::new("bad_request", "after must be a message id (a whole number)")
        }),
    }
}
