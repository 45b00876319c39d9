//! WebSocket over raw sockets: the handshake, every frame rule of RFC 6455
//! that the server enforces (with the close code it must send), control
//! frames between fragments, keep-alive pings and the idle timeout.

mod util;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use gyre_server::ws::{self, Message, WsConfig};
use gyre_server::{Request, Response, Server};
use util::ws::{expect_close, frame, handshake, open, read_frame, read_head, KEY};
use util::{config, TestServer, IO_TIMEOUT};

fn echo_with(
    cfg: WsConfig,
) -> impl Fn(Request) -> std::future::Ready<Response> + Clone + Send + Sync {
    move |req: Request| {
        std::future::ready(ws::upgrade(&req, cfg.clone(), |mut socket| async move {
            while let Some(m) = socket.recv().await {
                if let Message::Text(_) | Message::Binary(_) = m {
                    if socket.send(m).await.is_err() {
                        break;
                    }
                }
            }
        }))
    }
}

fn small() -> WsConfig {
    WsConfig {
        max_frame: 64 * 1024,
        max_message: 128 * 1024,
        ..WsConfig::default()
    }
}

fn server() -> TestServer {
    TestServer::start_with(config(), |s: Server| s.get("/echo", echo_with(small())))
}

fn refused_with(bytes: &[u8], code: u16) {
    let server = server();
    let mut s = open(&server);
    s.write_all(bytes).unwrap();
    expect_close(&mut s, code);
}

#[test]
fn handshake_answers_101_and_echoes() {
    let server = server();
    let mut s = open(&server);
    s.write_all(&frame(true, 0x1, b"hello")).unwrap();
    assert_eq!(read_frame(&mut s), (true, 0x1, b"hello".to_vec()));
    s.write_all(&frame(true, 0x2, &[0, 255, 7])).unwrap();
    assert_eq!(read_frame(&mut s), (true, 0x2, vec![0, 255, 7]));
    let big: Vec<u8> = (0..60_000u32).map(|i| i as u8).collect();
    s.write_all(&frame(true, 0x2, &big)).unwrap();
    assert_eq!(read_frame(&mut s).2, big);
    // Client close: the server answers with the same code.
    s.write_all(&frame(true, 0x8, &1000u16.to_be_bytes()))
        .unwrap();
    expect_close(&mut s, 1000);
}

#[test]
fn frames_sent_with_the_handshake_are_not_lost() {
    let server = server();
    let mut s = TcpStream::connect(server.addr).unwrap();
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let mut bytes = handshake("/echo").into_bytes();
    bytes.extend(frame(true, 0x1, b"early"));
    s.write_all(&bytes).unwrap();
    assert!(read_head(&mut s).starts_with("HTTP/1.1 101 "));
    assert_eq!(read_frame(&mut s), (true, 0x1, b"early".to_vec()));
}

#[test]
fn bad_handshakes_get_clear_errors() {
    let server = server();
    let no_key = "GET /echo HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
                  Sec-WebSocket-Version: 13\r\n\r\n";
    let r = server.request(no_key.as_bytes());
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("Sec-WebSocket-Key"), "{}", r.text());
    let old = handshake("/echo").replace("Version: 13", "Version: 8");
    let r = server.request(old.as_bytes());
    assert_eq!(r.status, 426);
    assert_eq!(r.header("sec-websocket-version"), Some("13"));
    let plain = server.request(b"GET /echo HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(plain.status, 400);
    assert!(
        plain.text().contains("Connection: upgrade"),
        "{}",
        plain.text()
    );
    let short_key = handshake("/echo").replace(KEY, "c2hvcnQ=");
    assert_eq!(server.request(short_key.as_bytes()).status, 400);
}

#[test]
fn fragments_with_control_frames_between_them() {
    let server = server();
    let mut s = open(&server);
    let mut bytes = frame(false, 0x1, "caf".as_bytes());
    bytes.extend(frame(true, 0x9, b"mid-ping"));
    // "é" cut between two fragments is valid once whole.
    bytes.extend(frame(false, 0x0, &[0xC3]));
    bytes.extend(frame(true, 0x0, &[0xA9, b'!']));
    s.write_all(&bytes).unwrap();
    assert_eq!(
        read_frame(&mut s),
        (true, 0xA, b"mid-ping".to_vec()),
        "the pong comes first"
    );
    assert_eq!(read_frame(&mut s), (true, 0x1, "café!".as_bytes().to_vec()));
}

#[test]
fn protocol_errors_close_with_1002() {
    // Unmasked.
    refused_with(&[0x81, 0x02, b'h', b'i'], 1002);
    // A reserved bit (no extension was negotiated).
    let mut rsv = frame(true, 0x1, b"x");
    rsv[0] |= 0x40;
    refused_with(&rsv, 1002);
    // Reserved opcodes, data and control.
    refused_with(&frame(true, 0x3, b"x"), 1002);
    refused_with(&frame(true, 0xB, b"x"), 1002);
    // A continuation with no message to continue.
    refused_with(&frame(true, 0x0, b"x"), 1002);
    // A new message while one is unfinished.
    let mut two = frame(false, 0x1, b"a");
    two.extend(frame(true, 0x1, b"b"));
    refused_with(&two, 1002);
    // A fragmented ping; a ping longer than 125 bytes.
    refused_with(&frame(false, 0x9, b"x"), 1002);
    refused_with(&frame(true, 0x9, &[0; 126]), 1002);
    // Close payloads: one byte; a code that must not be sent.
    refused_with(&frame(true, 0x8, &[0x03]), 1002);
    refused_with(&frame(true, 0x8, &1005u16.to_be_bytes()), 1002);
    // A 16-bit length that should have been 7-bit.
    let mut loose = vec![0x82, 0x80 | 126, 0, 5, 1, 2, 3, 4];
    loose.extend_from_slice(&[0; 5]);
    refused_with(&loose, 1002);
}

#[test]
fn invalid_utf8_closes_with_1007() {
    refused_with(&frame(true, 0x1, &[b'o', b'k', 0xFF]), 1007);
    // Invalid across fragments: found at the first bad byte, before the end.
    let mut split = frame(false, 0x1, &[0xC3]);
    split.extend(frame(false, 0x0, b"a"));
    refused_with(&split, 1007);
    // A character cut off by the message's end.
    refused_with(&frame(true, 0x1, &[b'a', 0xE2, 0x82]), 1007);
    // A close reason that is not UTF-8.
    let mut close = 1000u16.to_be_bytes().to_vec();
    close.push(0xFF);
    refused_with(&frame(true, 0x8, &close), 1007);
}

#[test]
fn oversize_frames_and_messages_close_with_1009() {
    // Refused from the header alone: the payload never needs to arrive.
    let mut header = vec![0x82, 0x80 | 127];
    header.extend_from_slice(&(1u64 << 30).to_be_bytes());
    header.extend_from_slice(&[1, 2, 3, 4]);
    refused_with(&header, 1009);
    // Fragments each under the frame limit, together over the message limit.
    let chunk = vec![b'a'; 60 * 1024];
    let mut frags = frame(false, 0x2, &chunk);
    frags.extend(frame(false, 0x0, &chunk));
    frags.extend(frame(false, 0x0, &chunk));
    let server = server();
    let mut s = open(&server);
    // The server may close before it has read everything: ignore write errors.
    let _ = s.write_all(&frags);
    expect_close(&mut s, 1009);
}

#[test]
fn server_close_handshake_and_vanishing_clients() {
    let ended = Arc::new(AtomicUsize::new(0));
    let seen = ended.clone();
    let server = TestServer::start_with(config(), move |s: Server| {
        s.get("/bye", |req: Request| async move {
            ws::upgrade(&req, WsConfig::default(), |socket| async move {
                socket.send("bye soon").await.unwrap();
                socket.close(4001, "done").await;
            })
        })
        .get("/count", move |req: Request| {
            let seen = seen.clone();
            async move {
                ws::upgrade(&req, WsConfig::default(), move |mut socket| async move {
                    while socket.recv().await.is_some() {}
                    seen.fetch_add(1, Ordering::SeqCst);
                })
            }
        })
    });
    let mut s = TcpStream::connect(server.addr).unwrap();
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    s.write_all(handshake("/bye").as_bytes()).unwrap();
    read_head(&mut s);
    assert_eq!(read_frame(&mut s), (true, 0x1, b"bye soon".to_vec()));
    let (_, op, payload) = read_frame(&mut s);
    assert_eq!(op, 0x8);
    assert_eq!(&payload[..2], &4001u16.to_be_bytes());
    assert_eq!(&payload[2..], b"done");
    // Answer the close; then the server ends the connection.
    s.write_all(&frame(true, 0x8, &4001u16.to_be_bytes()))
        .unwrap();
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "nothing after the close: {rest:?}");

    // Clients that vanish: no close frame, mid-frame, and a reset.
    for cut in [0usize, 3, 100] {
        let mut s = TcpStream::connect(server.addr).unwrap();
        s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        s.write_all(handshake("/count").as_bytes()).unwrap();
        read_head(&mut s);
        let f = frame(true, 0x2, &[9; 200]);
        s.write_all(&f[..cut]).unwrap();
        if cut == 100 {
            socket2::SockRef::from(&s)
                .set_linger(Some(Duration::ZERO))
                .unwrap();
        }
        drop(s);
    }
    assert!(
        util::wait_until(Duration::from_secs(20), || ended.load(Ordering::SeqCst)
            == 3),
        "every vanished client ends its handler: {}",
        ended.load(Ordering::SeqCst)
    );
}

#[test]
fn pings_when_quiet_and_closes_when_the_peer_stays_silent() {
    let cfg = WsConfig {
        ping_interval: Some(Duration::from_millis(200)),
        idle_timeout: Some(Duration::from_millis(1500)),
        ..WsConfig::default()
    };
    let server = TestServer::start_with(config(), |s: Server| s.get("/echo", echo_with(cfg)));
    let mut s = open(&server);
    assert_eq!(read_frame(&mut s).1, 0x9, "a ping after quiet");
    // A pong counts as hearing from the peer: another ping follows.
    s.write_all(&frame(true, 0xA, b"")).unwrap();
    assert_eq!(read_frame(&mut s).1, 0x9, "a second ping after the pong");
    // Now stay silent: close 1001 after the idle timeout.
    expect_close(&mut s, 1001);
}

#[test]
fn shutdown_closes_sockets_with_1001() {
    let mut server = server();
    let mut a = open(&server);
    let mut b = open(&server);
    a.write_all(&frame(true, 0x1, b"x")).unwrap();
    assert_eq!(read_frame(&mut a).2, b"x");
    let running = server.take_running();
    let closer = std::thread::spawn(move || running.shutdown());
    for s in [&mut a, &mut b] {
        let (_, op, payload) = read_frame(s);
        assert_eq!(op, 0x8);
        assert_eq!(&payload[..2], &1001u16.to_be_bytes());
        s.write_all(&frame(true, 0x8, &1001u16.to_be_bytes()))
            .unwrap();
    }
    assert!(
        closer.join().unwrap(),
        "every connection closed within the deadline"
    );
}

#[test]
fn prepared_messages_go_out_together_and_intact() {
    let server = TestServer::start_with(config(), |s: Server| {
        s.get("/many", |req: Request| async move {
            ws::upgrade(&req, WsConfig::default(), |socket| async move {
                let (tx, _rx) = socket.split();
                let batch = [
                    ws::Prepared::text("one"),
                    ws::Prepared::binary(&[2; 300]),
                    ws::Prepared::text(&"3".repeat(70_000)),
                ];
                tx.send_prepared_all(&batch).await.unwrap();
                tx.send_prepared_all(&[]).await.unwrap();
                tx.send_prepared_all(&batch[..1]).await.unwrap();
            })
        })
    });
    let mut s = util::ws::open_at(&server, "/many");
    assert_eq!(read_frame(&mut s), (true, 0x1, b"one".to_vec()));
    assert_eq!(read_frame(&mut s), (true, 0x2, vec![2; 300]));
    assert_eq!(read_frame(&mut s), (true, 0x1, vec![b'3'; 70_000]));
    assert_eq!(read_frame(&mut s), (true, 0x1, b"one".to_vec()));
    expect_close(&mut s, 1000);
}
