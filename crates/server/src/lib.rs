//! gyre's HTTP/1.1 server: connections with keep-alive and pipelining, a
//! router, limits and timeouts on everything a client controls, metrics and
//! graceful shutdown, on the gyre runtime.
//!
//! # Layout
//!
//! - [`Server`] (`server.rs`): the builder, connection limit, graceful shutdown.
//! - `conn/`: one connection's read → parse → route → handler → write cycle
//!   (`mod.rs`), and the sending of a response (`send.rs`).
//! - `io.rs`: a connection's socket and pooled buffers.
//! - [`Request`] and [`Body`] (`request.rs`), [`Response`] and
//!   [`IntoResponse`] (`response.rs`), [`Handler`] (`handler.rs`).
//! - [`router`]: methods, `:params`, `*wildcards`, 404 and 405.
//! - [`files`]: static files from a directory (`ServeDir`), off the loops.
//! - [`Config`] (`config.rs`): every limit and timeout, with defaults.
//! - [`Metrics`] (`metrics.rs`): counters in the Prometheus text format.
//!
//! # Examples
//!
//! ```no_run
//! use gyre_server::{Request, Server};
//! async fn hello(req: Request) -> String {
//!     format!("hello, {}\n", req.param("name").unwrap_or("world"))
//! }
//! let rt = gyre_rt::Runtime::new().unwrap();
//! let listener = gyre_rt::net::bind_std("127.0.0.1:8080".parse().unwrap(), 1024).unwrap();
//! let running = Server::new()
//!     .get("/hello/:name", hello)
//!     .start(rt.handle(), listener)
//!     .unwrap();
//! # running.shutdown();
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod config;
mod conn;
pub mod files;
mod handler;
mod io;
mod metrics;
mod request;
mod response;
mod response_headers;
pub mod router;
mod server;
pub mod sse;
mod upgrade;
pub mod ws;

pub use config::{Config, SlowConsumer};
pub use handler::{BoxFuture, Handler};
pub use metrics::{Metrics, Reason, SendfileCalls};
pub use request::{Body, BodyError, Request};
pub use response::{
    BodySender, ClientGone, Headers, IntoResponse, Json, OnUpgrade, Response, ResponseBody,
};
pub use server::{Running, Server};
pub use upgrade::Upgraded;
