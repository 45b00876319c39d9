//! The `Upgrade` hand-off: after a 101 the handler's function owns the
//! connection, and bytes sent right after the head are not lost.

use std::io::{Read, Write};
use std::time::Duration;

use gyre_server::{Request, Response, Server, Upgraded};

async fn echo_protocol(u: Upgraded) {
    let mut buf = [0u8; 1024];
    loop {
        match u.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if u.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        }
    }
}

#[test]
fn upgrade_hands_the_connection_over_with_buffered_bytes() {
    let rt = gyre_rt::Builder::new().workers(1).build().unwrap();
    let listener = gyre_rt::net::bind_std("127.0.0.1:0".parse().unwrap(), 64).unwrap();
    let running = Server::new()
        .get("/upgrade", |req: Request| async move {
            assert!(req.headers().contains_key("upgrade"));
            Response::upgrade("echo", echo_protocol)
        })
        .start(rt.handle(), listener)
        .unwrap();
    let mut s = std::net::TcpStream::connect(running.local_addr().unwrap()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // The first bytes of the new protocol ride in the same packet as the head.
    s.write_all(
        b"GET /upgrade HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\nearly bytes;",
    )
    .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !got.ends_with(b"early bytes;") {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "closed early: {:?}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&got).to_lowercase();
    assert!(
        text.starts_with("http/1.1 101 switching protocols\r\n"),
        "{text}"
    );
    assert!(text.contains("upgrade: echo\r\n"), "{text}");
    assert!(!text.contains("content-length"), "{text}");
    s.write_all(b"later").unwrap();
    let mut later = [0u8; 5];
    s.read_exact(&mut later).unwrap();
    assert_eq!(&later, b"later");
}
