//! gyre: an event-driven HTTP and WebSocket server. One epoll event loop per
//! core runs coroutine handlers (`async fn`), so code reads like a
//! synchronous server while thousands of connections share each thread.
//!
//! This facade re-exports the layers:
//!
//! - [`rt`]: the runtime (loops, tasks, timers, sockets, blocking pool,
//!   watchdog, broadcast topics).
//! - [`http`]: the sans-IO HTTP/1.1 codec.
//! - [`server`]: the HTTP/1.1 server, router, static files, WebSocket and
//!   Server-Sent Events.
//! - [`chat`]: the chat application.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub use gyre_chat as chat;
pub use gyre_http as http;
pub use gyre_rt as rt;
pub use gyre_server as server;
