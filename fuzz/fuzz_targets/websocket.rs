//! Arbitrary bytes as the frames of a WebSocket connection (after a valid
//! handshake) to a real gyre echo endpoint: no task may panic, and what comes
//! back is the 101 answer followed by well-formed server frames.
#![no_main]

mod common;

use std::sync::OnceLock;

use common::Fixture;
use gyre_server::ws::{self, WsConfig};
use libfuzzer_sys::fuzz_target;

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let server =
            gyre_server::Server::new().get("/ws", |req: gyre_server::Request| async move {
                let config = WsConfig {
                    max_frame: 4096,
                    max_message: 8192,
                    ..WsConfig::default()
                };
                ws::upgrade(&req, config, |mut socket| async move {
                    while let Some(m) = socket.recv().await {
                        if let ws::Message::Text(_) | ws::Message::Binary(_) = m {
                            if socket.send(m).await.is_err() {
                                break;
                            }
                        }
                    }
                })
            });
        Fixture::start(server)
    })
}

const HANDSHAKE: &[u8] =
    b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";

/// Checks that `out` is a sequence of complete, unmasked server frames.
fn well_formed(mut out: &[u8]) -> bool {
    while !out.is_empty() {
        if out.len() < 2 || out[0] & 0x70 != 0 || out[1] & 0x80 != 0 {
            return false;
        }
        let (len, at) = match out[1] & 0x7F {
            126 if out.len() >= 4 => (u16::from_be_bytes([out[2], out[3]]) as usize, 4),
            127 if out.len() >= 10 => (
                u64::from_be_bytes(out[2..10].try_into().unwrap()) as usize,
                10,
            ),
            126 | 127 => return false,
            n => (n as usize, 2),
        };
        if out.len() < at + len {
            return false;
        }
        out = &out[at + len..];
    }
    true
}

fuzz_target!(|data: &[u8]| {
    let mut input = HANDSHAKE.to_vec();
    input.extend_from_slice(data);
    let out = fixture().exchange(&input);
    let head_end = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a 101 head")
        + 4;
    assert!(out.starts_with(b"HTTP/1.1 101 "), "not a 101");
    assert!(well_formed(&out[head_end..]), "malformed server frames");
});
