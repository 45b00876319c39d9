//! Server-Sent Events (the WHATWG `text/event-stream` format).
//!
//! ```no_run
//! use std::time::Duration;
//! use gyre_server::{sse, Request, Response};
//!
//! async fn ticks(req: Request) -> Response {
//!     let from: u64 = sse::last_event_id(&req).and_then(|id| id.parse().ok()).unwrap_or(0);
//!     let (response, events) = sse::stream(Some(Duration::from_secs(15)));
//!     gyre_rt::spawn(async move {
//!         for n in from + 1.. {
//!             let event = sse::Event::data(format!("tick {n}")).id(n.to_string());
//!             if events.send(&event).await.is_err() {
//!                 break; // the client went away
//!             }
//!             gyre_rt::time::sleep(Duration::from_secs(1)).await;
//!         }
//!     })
//!     .detach();
//!     response
//! }
//! ```
//!
//! The stream ends when the [`EventSender`] is dropped, when the client goes
//! away (`send` then fails), or when the server shuts down.

use std::fmt::Write as _;
use std::rc::{Rc, Weak};
use std::time::Duration;

use http::header::{HeaderName, CACHE_CONTROL};

use crate::{BodySender, ClientGone, Request, Response};

/// Events that may wait unsent for a slow client before `send` waits.
const QUEUE: usize = 16;

/// One event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Event {
    id: Option<String>,
    event: Option<String>,
    data: String,
    retry: Option<Duration>,
}

impl Event {
    /// An event carrying `data` (several lines are fine).
    pub fn data(data: impl Into<String>) -> Self {
        Event {
            data: data.into(),
            ..Event::default()
        }
    }

    /// Sets the id, which the browser sends back as `Last-Event-ID` when it
    /// reconnects. Line breaks and NUL cannot be in an id and are removed.
    pub fn id(mut self, id: impl Into<String>) -> Self {
        let mut id = id.into();
        id.retain(|c| !matches!(c, '\r' | '\n' | '\0'));
        self.id = Some(id);
        self
    }

    /// Sets the event name (`addEventListener(name, …)` in the browser).
    /// Line breaks are removed.
    pub fn event(mut self, name: impl Into<String>) -> Self {
        let mut name = name.into();
        name.retain(|c| !matches!(c, '\r' | '\n'));
        self.event = Some(name);
        self
    }

    /// Sets how long the browser waits before reconnecting.
    pub fn retry(mut self, after: Duration) -> Self {
        self.retry = Some(after);
        self
    }

    /// The event in the wire format, ending with its blank line.
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(self.data.len() + 32);
        if let Some(name) = &self.event {
            let _ = writeln!(out, "event: {name}");
        }
        if let Some(id) = &self.id {
            let _ = writeln!(out, "id: {id}");
        }
        if let Some(retry) = self.retry {
            let _ = writeln!(out, "retry: {}", retry.as_millis());
        }
        // Every line of the data is a field of its own; CR, LF and CRLF
        // all end a line in the format.
        let data = self.data.replace("\r\n", "\n").replace('\r', "\n");
        for line in data.split('\n') {
            let _ = writeln!(out, "data: {line}");
        }
        out.push('\n');
        out
    }
}

/// The `Last-Event-ID` a reconnecting browser sends.
pub fn last_event_id(req: &Request) -> Option<String> {
    req.header("last-event-id")
        .and_then(|v| std::str::from_utf8(v).ok())
        .map(str::to_owned)
}

/// Sends events on one stream. Dropping it ends the stream.
#[derive(Debug)]
pub struct EventSender {
    body: Rc<BodySender>,
}

impl EventSender {
    /// Sends an event, waiting while the client reads slowly.
    pub async fn send(&self, event: &Event) -> Result<(), ClientGone> {
        self.body.send(event.encode()).await
    }

    /// Sends a comment line, which clients ignore (a keep-alive).
    pub async fn comment(&self, text: &str) -> Result<(), ClientGone> {
        let text = text.replace(['\r', '\n'], " ");
        self.body.send(format!(": {text}\n\n")).await
    }
}

/// A `text/event-stream` response and its sender. With `keep_alive`, a
/// comment goes out at that interval so that proxies and browsers keep the
/// connection open; the stream ends at graceful shutdown.
pub fn stream(keep_alive: Option<Duration>) -> (Response, EventSender) {
    let (response, body) = Response::stream("text/event-stream", QUEUE);
    let response = response
        .header(CACHE_CONTROL, "no-cache")
        .header(HeaderName::from_static("x-accel-buffering"), "no")
        .end_on_shutdown();
    let body = Rc::new(body);
    if let Some(period) = keep_alive {
        let weak: Weak<BodySender> = Rc::downgrade(&body);
        gyre_rt::spawn(async move {
            let mut ticks = gyre_rt::time::interval(period);
            ticks.tick().await; // the first tick is immediate
            loop {
                ticks.tick().await;
                let Some(body) = weak.upgrade() else { break };
                if body.send(&b": keep-alive\n\n"[..]).await.is_err() {
                    break;
                }
            }
        })
        .detach();
    }
    (response, EventSender { body })
}

#[cfg(test)]
mod tests {
    use super::Event;
    use std::time::Duration;

    #[test]
    fn encodes_every_field() {
        let e = Event::data("one\ntwo\r\nthree")
            .id("7\n")
            .event("chat")
            .retry(Duration::from_millis(1500));
        assert_eq!(
            e.encode(),
            "event: chat\nid: 7\nretry: 1500\ndata: one\ndata: two\ndata: three\n\n"
        );
        assert_eq!(Event::data("").encode(), "data: \n\n");
    }
}
