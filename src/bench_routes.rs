//! Routes for benchmarks and demonstrations (`gyre serve --bench-routes`).

use std::sync::OnceLock;
use std::time::Duration;

use gyre_rt::broadcast::{RecvError, Topic, TopicConfig};
use gyre_server::ws::{self, Prepared, WsConfig};
use gyre_server::{sse, BodyError, Json, Request, Response, Server};

/// WebSocket and broadcast settings of the bench routes, from the server's.
static SETTINGS: OnceLock<(WsConfig, TopicConfig)> = OnceLock::new();

fn ws_config() -> WsConfig {
    SETTINGS.get().map(|s| s.0.clone()).unwrap_or_default()
}

fn topic_config() -> TopicConfig {
    SETTINGS.get().map(|s| s.1).unwrap_or_default()
}

/// Adds `/bench/*` to `server`.
pub fn add(server: Server, config: &gyre_server::Config) -> Server {
    let _ = SETTINGS.set((config.ws(), config.topic()));
    server
        .get("/bench/plaintext", plaintext)
        .get("/bench/json", json)
        .get("/bench/block", block)
        .get("/bench/offload", offload)
        .get("/bench/sleep", sleep)
        .post("/bench/echo", echo)
        .get("/bench/ws/echo", ws_echo)
        .get("/bench/ws/broadcast", ws_broadcast)
        .get("/bench/events", events)
        .get("/bench/poll", poll)
        .post("/bench/publish", publish)
}

async fn plaintext(_: Request) -> Response {
    Response::with_body("text/plain", "Hello, World!")
}

#[derive(serde::Serialize)]
struct Message {
    message: &'static str,
}

async fn json(_: Request) -> Json<Message> {
    Json(Message {
        message: "Hello, World!",
    })
}

/// `?ms=N`, capped at 60 s.
fn millis(req: &Request) -> Duration {
    let ms: u64 = req
        .query_param("ms")
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    Duration::from_millis(ms.min(60_000))
}

/// Blocks the loop's thread on purpose: what a blocking call in a handler does
/// (the watchdog reports it, and this loop takes no new connections meanwhile).
async fn block(req: Request) -> String {
    let d = millis(&req);
    std::thread::sleep(d);
    format!("blocked the loop for {} ms\n", d.as_millis())
}

/// The same wait, offloaded to the blocking pool: the loop stays free.
async fn offload(req: Request) -> String {
    let d = millis(&req);
    gyre_rt::blocking(move || std::thread::sleep(d)).await;
    format!("slept {} ms on the blocking pool\n", d.as_millis())
}

/// An async timer: no thread is held.
async fn sleep(req: Request) -> String {
    let d = millis(&req);
    gyre_rt::time::sleep(d).await;
    format!("slept {} ms on a timer\n", d.as_millis())
}

/// Streams the request body back as it arrives.
async fn echo(mut req: Request) -> Response {
    let (response, tx) = Response::stream("application/octet-stream", 4);
    gyre_rt::spawn(async move {
        loop {
            match req.body.chunk().await {
                Ok(Some(chunk)) => {
                    if tx.send(chunk).await.is_err() {
                        return;
                    }
                }
                Ok(None) => return,
                Err(e @ (BodyError::TooLarge | BodyError::TimedOut | BodyError::Malformed)) => {
                    tracing::debug!("echo: {e}");
                    return;
                }
                Err(BodyError::Closed) => return,
            }
        }
    })
    .detach();
    response
}

/// Every WebSocket message comes back unchanged, text as text, binary as binary.
async fn ws_echo(req: Request) -> Response {
    ws::upgrade(&req, ws_config(), |mut socket| async move {
        while let Some(message) = socket.recv().await {
            if let ws::Message::Text(_) | ws::Message::Binary(_) = message {
                if socket.send(message).await.is_err() {
                    break;
                }
            }
        }
    })
}

/// The topic of `/bench/ws/broadcast`: messages framed once for every socket.
fn ws_topic() -> &'static Topic<Prepared> {
    static TOPIC: OnceLock<Topic<Prepared>> = OnceLock::new();
    TOPIC.get_or_init(|| Topic::new(topic_config()))
}

/// Every message that one socket sends reaches every socket on this route.
async fn ws_broadcast(req: Request) -> Response {
    ws::upgrade(&req, ws_config(), |socket| ws::relay(socket, ws_topic()))
}

/// The topic of `/bench/publish`, `/bench/events` and `/bench/poll`: numbered messages.
fn text_topic() -> &'static Topic<(u64, String)> {
    static TOPIC: OnceLock<Topic<(u64, String)>> = OnceLock::new();
    TOPIC.get_or_init(|| Topic::new(topic_config()))
}

/// Publishes the request body (UTF-8) to the text topic; answers its number.
async fn publish(mut req: Request) -> Response {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let body = match req.body.collect().await {
        Ok(b) => b,
        Err(e) => {
            return Response::with_body("text/plain", format!("{e}\n"))
                .status(http::StatusCode::BAD_REQUEST)
        }
    };
    let Ok(text) = String::from_utf8(body.to_vec()) else {
        return Response::with_body("text/plain", "the body must be UTF-8\n")
            .status(http::StatusCode::BAD_REQUEST);
    };
    let id = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    text_topic().publish((id, text));
    Response::with_body("text/plain", format!("{id}\n"))
}

/// Server-Sent Events of the text topic, with a keep-alive comment every 15 s.
async fn events(_: Request) -> Response {
    let (response, sender) = sse::stream(Some(Duration::from_secs(15)));
    let mut subscription = text_topic().subscribe();
    gyre_rt::spawn(async move {
        let hello = sse::Event::data("subscribed").event("ready");
        if sender.send(&hello).await.is_err() {
            return;
        }
        loop {
            let event = match subscription.recv().await {
                Ok((id, text)) => sse::Event::data(text).id(id.to_string()),
                Err(RecvError::Lagged(n)) => sse::Event::data(n.to_string()).event("missed"),
                Err(RecvError::Closed) => return,
            };
            if sender.send(&event).await.is_err() {
                return;
            }
        }
    })
    .detach();
    response
}

/// Long polling: the next message of the text topic, or 204 after `?ms=N`
/// (default 100 ms) with none. No thread waits meanwhile.
async fn poll(req: Request) -> Response {
    let mut subscription = text_topic().subscribe();
    match gyre_rt::time::timeout(millis(&req), subscription.recv()).await {
        Ok(Ok((id, text))) => Response::with_body("text/plain; charset=utf-8", text).header(
            http::header::HeaderName::from_static("x-message-id"),
            &id.to_string(),
        ),
        Ok(Err(e)) => Response::with_body("text/plain", format!("{e}\n"))
            .status(http::StatusCode::SERVICE_UNAVAILABLE),
        Err(_) => Response::new(http::StatusCode::NO_CONTENT),
    }
}
