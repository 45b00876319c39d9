//! WebSocket (RFC 6455): the upgrade handshake, messages, and sockets that
//! read like blocking code.
//!
//! ```no_run
//! use gyre_server::{ws, Request, Response, Server};
//!
//! async fn echo(req: Request) -> Response {
//!     ws::upgrade(&req, ws::WsConfig::default(), |mut socket| async move {
//!         while let Some(message) = socket.recv().await {
//!             if let ws::Message::Text(_) | ws::Message::Binary(_) = message {
//!                 if socket.send(message).await.is_err() {
//!                     break;
//!                 }
//!             }
//!         }
//!     })
//! }
//! let server = Server::new().get("/echo", echo);
//! ```
//!
//! The codec is this crate's own rather than tungstenite's: tungstenite's
//! `WebSocket` keeps a read buffer (and its frame codec an input chunk) per
//! connection for the connection's lifetime, while here an idle socket holds
//! none; the frame rules it checks are the same (see the tests). No
//! extension (such as permessage-deflate) is supported, so none is ever
//! negotiated, and frames with reserved bits set are refused.

mod frame;
mod handshake;
mod relay;
mod socket;

use std::time::Duration;

use bytes::{Bytes, BytesMut};

pub use frame::Opcode;
pub use handshake::{accept_key, upgrade};
pub use relay::relay;
pub use socket::{code, SendError, WebSocket, WsReceiver, WsSender};

/// A WebSocket message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// UTF-8 text.
    Text(String),
    /// Bytes.
    Binary(Bytes),
    /// A ping (received ones are answered by the socket; sent ones are cut
    /// to the 125 bytes a control frame may carry).
    Ping(Bytes),
    /// A pong (sent ones are cut to 125 bytes too).
    Pong(Bytes),
    /// The peer's close frame (received), or a close to start (sent).
    Close(Option<CloseFrame>),
}

impl From<String> for Message {
    fn from(s: String) -> Self {
        Message::Text(s)
    }
}

impl From<&str> for Message {
    fn from(s: &str) -> Self {
        Message::Text(s.to_owned())
    }
}

impl From<Vec<u8>> for Message {
    fn from(b: Vec<u8>) -> Self {
        Message::Binary(b.into())
    }
}

/// The code and reason of a close frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseFrame {
    /// The close code (see [`code`]).
    pub code: u16,
    /// Why, for people.
    pub reason: String,
}

/// A message framed once, to send unchanged on many sockets (a broadcast
/// encodes each message once, not once per subscriber).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared(pub(crate) Bytes);

impl Prepared {
    /// Frames a text message.
    pub fn text(text: &str) -> Self {
        Self::frame(Opcode::Text, text.as_bytes())
    }

    /// Frames a binary message.
    pub fn binary(data: &[u8]) -> Self {
        Self::frame(Opcode::Binary, data)
    }

    /// Frames a text or binary message (other kinds give `None`).
    pub fn message(message: &Message) -> Option<Self> {
        match message {
            Message::Text(t) => Some(Self::text(t)),
            Message::Binary(b) => Some(Self::binary(b)),
            _ => None,
        }
    }

    fn frame(opcode: Opcode, payload: &[u8]) -> Self {
        let mut out = BytesMut::with_capacity(payload.len() + 10);
        frame::encode(&mut out, true, opcode, payload);
        Prepared(out.freeze())
    }

    /// The framed bytes' length.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Never true: a frame has a header.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Limits and keep-alive of WebSocket connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsConfig {
    /// Largest frame payload accepted (close 1009 above it).
    pub max_frame: usize,
    /// Largest message accepted, all fragments together (close 1009 above it).
    pub max_message: usize,
    /// Send a ping after this long without hearing from the peer.
    pub ping_interval: Option<Duration>,
    /// Close (1001) after this long without hearing from the peer (pongs count).
    pub idle_timeout: Option<Duration>,
    /// Subprotocols this endpoint speaks, in order of preference; the first
    /// one the client offers is chosen.
    pub protocols: Vec<String>,
}

impl Default for WsConfig {
    /// 16 MiB frames and 64 MiB messages (tungstenite's defaults), a ping
    /// after 30 s of quiet, and a close after 75 s without an answer.
    fn default() -> Self {
        WsConfig {
            max_frame: 16 << 20,
            max_message: 64 << 20,
            ping_interval: Some(Duration::from_secs(30)),
            idle_timeout: Some(Duration::from_secs(75)),
            protocols: Vec::new(),
        }
    }
}
