//! The broker: where room logs live and how events reach listeners.
//!
//! The transports only speak to this trait. [`InProcess`](crate::InProcess)
//! keeps everything in this process and delivers events through broadcast
//! topics shared by every loop; a broker for several instances (Redis
//! Streams) implements the same trait.

use std::future::Future;
use std::sync::Arc;

use gyre_rt::broadcast::Subscription;

use crate::model::{ChatError, ChatMessage, Event};

/// Messages of a room after some id.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct History {
    /// The messages, oldest first.
    pub messages: Vec<Arc<ChatMessage>>,
    /// Messages after the id asked for were already dropped from the log.
    pub trimmed: bool,
    /// The room's latest id (0 when it has none).
    pub last_id: u64,
}

/// A room as the room list shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RoomInfo {
    /// Its name.
    pub name: String,
    /// How many people are present.
    pub people: usize,
    /// Its latest message id.
    pub last_id: u64,
}

/// Room logs, presence and event delivery.
///
/// Futures are not `Send`: they run on the loop of the connection that
/// awaits them. A broker that talks to another process must not block a
/// loop while it waits (run the client off the loops and await its answer).
pub trait Broker: Send + Sync + 'static {
    /// Appends a message (already checked) to the room's log, creating the
    /// room if needed, and publishes it. Resolves once it is stored.
    fn append(
        &self,
        room: &str,
        nick: &str,
        text: &str,
    ) -> impl Future<Output = Result<Arc<ChatMessage>, ChatError>>;

    /// The room's messages after `after`, or its last `recent` when `after`
    /// is `None`.
    fn history(
        &self,
        room: &str,
        after: Option<u64>,
        recent: usize,
    ) -> impl Future<Output = Result<History, ChatError>>;

    /// Listens to the room's events on the current loop (creating the room
    /// if needed). Subscribe before reading the history, then skip messages
    /// the history already held: nothing falls between the two.
    fn subscribe(&self, room: &str) -> Result<Subscription<Arc<Event>>, ChatError>;

    /// `nick` joins the room on one more connection; announced when it is
    /// their first.
    fn join(&self, room: &str, nick: &str);

    /// `nick` leaves on one connection; announced when it was their last.
    fn leave(&self, room: &str, nick: &str);

    /// `nick` is present without a connection (a long poller) until a while
    /// from now.
    fn touch(&self, room: &str, nick: &str);

    /// Who is present in the room, sorted.
    fn people(&self, room: &str) -> Vec<String>;

    /// Every room, by name.
    fn rooms(&self) -> impl Future<Output = Vec<RoomInfo>>;
}
