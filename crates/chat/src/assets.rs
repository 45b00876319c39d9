//! The web page, embedded in the binary: no build step, no files to deploy.

use gyre_server::{Response, Server};
use http::header::CACHE_CONTROL;

const INDEX: &str = include_str!("../assets/index.html");
const SCRIPT: &str = include_str!("../assets/chat.js");
const STYLE: &str = include_str!("../assets/chat.css");

fn asset(content_type: &'static str, body: &'static str) -> Response {
    Response::with_body(content_type, body).header(CACHE_CONTROL, "no-cache")
}

/// Adds `/`, `/static/chat.js` and `/static/chat.css`.
pub(crate) fn routes(server: Server) -> Server {
    server
        .get("/", |_req| async {
            asset("text/html; charset=utf-8", INDEX)
        })
        .get("/static/chat.js", |_req| async {
            asset("text/javascript; charset=utf-8", SCRIPT)
        })
        .get("/static/chat.css", |_req| async {
            asset("text/css; charset=utf-8", STYLE)
        })
}
