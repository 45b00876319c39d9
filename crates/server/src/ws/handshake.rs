//! The opening handshake (RFC 6455 §4.2): check the request, answer 101.

use std::future::Future;

use base64::Engine as _;
use http::header::{HeaderName, CONNECTION, SEC_WEBSOCKET_PROTOCOL, UPGRADE};
use http::{Method, StatusCode};

use super::{WebSocket, WsConfig};
use crate::{Request, Response};

/// The GUID of RFC 6455 §1.3.
const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key`.
pub fn accept_key(key: &[u8]) -> String {
    let mut sha = sha1_smol::Sha1::new();
    sha.update(key);
    sha.update(GUID.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(sha.digest().bytes())
}

/// Answers a WebSocket opening handshake: `101 Switching Protocols`, after
/// which `on_socket` runs with the socket; when it returns, the close
/// handshake is finished for it (close 1000 if it sent none). A request that
/// is not a valid handshake gets 400 (426 with the supported version for a
/// wrong `Sec-WebSocket-Version`), with the reason in the body.
pub fn upgrade<F, Fut>(req: &Request, config: WsConfig, on_socket: F) -> Response
where
    F: FnOnce(WebSocket) -> Fut + 'static,
    Fut: Future<Output = ()> + 'static,
{
    let key = match check(req) {
        Ok(key) => key,
        Err(refusal) => return *refusal,
    };
    let protocol = choose_protocol(req, &config.protocols);
    let mut response = Response::upgrade("websocket", move |up| async move {
        let socket = WebSocket::new(up, config);
        let closer = socket.closer();
        on_socket(socket).await;
        Box::pin(closer.finish()).await;
    })
    .header(
        HeaderName::from_static("sec-websocket-accept"),
        &accept_key(key.as_bytes()),
    );
    if let Some(p) = protocol {
        response = response.header(SEC_WEBSOCKET_PROTOCOL, &p);
    }
    response
}

/// The request's key, or the response refusing it.
fn check(req: &Request) -> Result<String, Box<Response>> {
    let bad = |why: &'static str| {
        Err(Box::new(
            Response::with_body("text/plain; charset=utf-8", why).status(StatusCode::BAD_REQUEST),
        ))
    };
    if req.method() != Method::GET {
        return bad("a WebSocket handshake is a GET request\n");
    }
    if !has_token(req, CONNECTION, "upgrade") {
        return bad("a WebSocket handshake needs `Connection: upgrade`\n");
    }
    if !has_token(req, UPGRADE, "websocket") {
        return bad("a WebSocket handshake needs `Upgrade: websocket`\n");
    }
    if req.header("sec-websocket-version") != Some(b"13") {
        return Err(Box::new(
            Response::with_body(
                "text/plain; charset=utf-8",
                "unsupported WebSocket version: this server speaks version 13\n",
            )
            .status(StatusCode::UPGRADE_REQUIRED)
            .header(HeaderName::from_static("sec-websocket-version"), "13"),
        ));
    }
    let key = req.header("sec-websocket-key").unwrap_or_default();
    let decoded = base64::engine::general_purpose::STANDARD.decode(key.trim_ascii());
    if !decoded.is_ok_and(|k| k.len() == 16) {
        return bad("Sec-WebSocket-Key must be 16 bytes in base64\n");
    }
    Ok(String::from_utf8_lossy(key.trim_ascii()).into_owned())
}

/// Whether a comma-separated field holds `token` (any case).
fn has_token(req: &Request, name: HeaderName, token: &str) -> bool {
    req.headers().get_all(name).iter().any(|v| {
        v.as_bytes()
            .split(|&b| b == b',')
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
    })
}

/// The first of `ours` that the client offers.
fn choose_protocol(req: &Request, ours: &[String]) -> Option<String> {
    let offered: Vec<String> = req
        .headers()
        .get_all(SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .flat_map(|v| v.to_str().unwrap_or("").split(','))
        .map(|t| t.trim().to_owned())
        .collect();
    ours.iter().find(|p| offered.contains(p)).cloned()
}

#[cfg(test)]
mod tests {
    #[test]
    fn accept_key_matches_the_rfc_example() {
        assert_eq!(
            super::accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }
}
