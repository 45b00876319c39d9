//! Arbitrary bytes as the frames of a WebSocket connection (after a valid
//! handshake) to a real gyre echo endpoint: no task may panic, and what comes
//! back is the 101 answer followed by well-formed server frames.
#![no_main]

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::OnceLock;
use std::time::Duration;

use gyre_server::ws::{self, WsConfig};
use libfuzzer_sys::fuzz_target;

struct Fixture {
    rt: gyre_rt::Runtime,
    addr: SocketAddr,
    _server: gyre_server::Running,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let rt = gyre_rt::Builder::new().workers(1).watchdog(false).build().unwrap();
        let listener = gyre_rt::net::bind_std("127.0.0.1:0".parse().unwrap(), 1024).unwrap();
        let server = gyre_server::Server::new()
            .get("/ws", |req: gyre_server::Request| async move {
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
            })
            .start(rt.handle(), listener)
            .unwrap();
        let addr = server.local_addr().unwrap();
        Fixture { rt, addr, _server: server }
    })
}

const HANDSHAKE: &[u8] = b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";

/// Checks that `out` is a sequence of complete, unmasked server frames.
fn well_formed(mut out: &[u8]) -> bool {
    while !out.is_empty() {
        if out.len() < 2 || out[0] & 0x70 != 0 || out[1] & 0x80 != 0 {
            return false;
        }
        let (len, at) = match out[1] & 0x7F {
            126 if out.len() >= 4 => (u16::from_be_bytes([out[2], out[3]]) as usize, 4),
            127 if out.len() >= 10 => (u64::from_be_bytes(out[2..10].try_into().unwrap()) as usize, 10),
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
    let f = fixture();
    let mut s = TcpStream::connect(f.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut input = HANDSHAKE.to_vec();
    input.extend_from_slice(data);
    let _ = s.write_all(&input);
    let _ = s.shutdown(Shutdown::Write);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let panics: u64 = f.rt.handle().loop_stats().iter().map(|l| l.panics).sum();
    assert_eq!(panics, 0, "a task panicked");
    let head_end = out.windows(4).position(|w| w == b"\r\n\r\n").expect("a 101 head") + 4;
    assert!(out.starts_with(b"HTTP/1.1 101 "), "not a 101");
    assert!(well_formed(&out[head_end..]), "malformed server frames");
});
