//! A raw WebSocket client for tests: masked client frames, server frames read
//! back, the handshake.

use std::io::{Read, Write};
use std::net::TcpStream;

use super::{TestServer, IO_TIMEOUT};

/// The key of RFC 6455's example handshake.
pub const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
/// Its answer.
pub const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/// A client frame: masked with a fixed key.
pub fn frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    let mut v = vec![if fin { 0x80 } else { 0 } | opcode];
    match payload.len() {
        n if n < 126 => v.push(0x80 | n as u8),
        n if n <= 0xFFFF => {
            v.push(0x80 | 126);
            v.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            v.push(0x80 | 127);
            v.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    v.extend_from_slice(&mask);
    v.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    v
}

/// Connects to `/echo` and completes the handshake.
pub fn open(server: &TestServer) -> TcpStream {
    open_at(server, "/echo")
}

/// Connects to `path` and completes the handshake.
pub fn open_at(server: &TestServer, path: &str) -> TcpStream {
    let mut s = TcpStream::connect(server.addr).unwrap();
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    s.write_all(handshake(path).as_bytes()).unwrap();
    let head = read_head(&mut s);
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    assert!(
        head.to_lowercase()
            .contains(&format!("sec-websocket-accept: {}", ACCEPT.to_lowercase())),
        "{head}"
    );
    s
}

pub fn handshake(path: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {KEY}\r\n\r\n"
    )
}

pub fn read_head(s: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(
            s.read(&mut b).unwrap(),
            1,
            "closed in the head: {:?}",
            String::from_utf8_lossy(&head)
        );
        head.push(b[0]);
    }
    String::from_utf8(head).unwrap()
}

/// Reads one server frame: (fin, opcode, payload). Server frames are never masked.
pub fn read_frame(s: &mut TcpStream) -> (bool, u8, Vec<u8>) {
    let mut h = [0u8; 2];
    s.read_exact(&mut h).expect("a frame header");
    assert_eq!(h[1] & 0x80, 0, "server frames are not masked");
    let len = match h[1] & 0x7F {
        126 => {
            let mut l = [0u8; 2];
            s.read_exact(&mut l).unwrap();
            u16::from_be_bytes(l) as usize
        }
        127 => {
            let mut l = [0u8; 8];
            s.read_exact(&mut l).unwrap();
            u64::from_be_bytes(l) as usize
        }
        n => n as usize,
    };
    let mut payload = vec![0u8; len];
    s.read_exact(&mut payload).unwrap();
    (h[0] & 0x80 != 0, h[0] & 0x0F, payload)
}

/// Expects a close frame with `code`, then the end of the stream.
pub fn expect_close(s: &mut TcpStream, code: u16) {
    let (fin, op, payload) = read_frame(s);
    assert!(fin);
    assert_eq!(
        op,
        0x8,
        "expected a close frame, got opcode {op} {:?}",
        String::from_utf8_lossy(&payload)
    );
    assert!(payload.len() >= 2, "close without a code");
    let got = u16::from_be_bytes([payload[0], payload[1]]);
    assert_eq!(
        got,
        code,
        "close reason: {:?}",
        String::from_utf8_lossy(&payload[2..])
    );
    // After its close, the server closes the TCP connection (RFC 6455 §7.1.1);
    // it may still read what we send meanwhile.
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
}
