//! Routes for benchmarks and demonstrations (`gyre serve --bench-routes`).

use std::time::Duration;

use gyre_server::{BodyError, Json, Request, Response, Server};

/// Adds `/bench/*` to `server`.
pub fn add(server: Server) -> Server {
    server
        .get("/bench/plaintext", plaintext)
        .get("/bench/json", json)
        .get("/bench/block", block)
        .get("/bench/offload", offload)
        .get("/bench/sleep", sleep)
        .post("/bench/echo", echo)
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
