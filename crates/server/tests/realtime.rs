//! Broadcast over WebSocket with a client that never reads, Server-Sent
//! Events (ids, `Last-Event-ID`, keep-alives, shutdown) and long polling.

mod util;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gyre_rt::broadcast::{Overflow, Topic, TopicConfig};
use gyre_server::ws::{self, Prepared, WsConfig};
use gyre_server::{sse, Request, Response, Server};
use util::ws::{frame, open_at, read_frame};
use util::{config, wait_until, Client, TestServer, IO_TIMEOUT};

/// A room: every message any socket sends reaches every socket.
fn room(
    topic: Topic<Prepared>,
) -> impl Fn(Request) -> std::future::Ready<Response> + Clone + Send + Sync {
    move |req: Request| {
        let topic = topic.clone();
        std::future::ready(ws::upgrade(
            &req,
            WsConfig::default(),
            move |socket| async move { ws::relay(socket, &topic).await },
        ))
    }
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn metric(server: &TestServer, name: &str) -> u64 {
    let text = server.running().render_metrics();
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
        .unwrap_or_else(|| panic!("no {name} in /metrics"))
}

/// Sends `count` numbered messages of `size` bytes, each only after every
/// reader saw the one before (readers never lag), while `idle` never reads.
fn chat_past_a_silent_client(server: &TestServer, count: u64, size: usize) -> TcpStream {
    let idle = open_at(server, "/room");
    let readers: Vec<Arc<AtomicU64>> = (0..3).map(|_| Arc::new(AtomicU64::new(0))).collect();
    let threads: Vec<_> = readers
        .iter()
        .map(|seen| {
            let mut s = open_at(server, "/room");
            let seen = seen.clone();
            std::thread::spawn(move || {
                for want in 1..=count {
                    let (_, op, payload) = read_frame(&mut s);
                    assert_eq!(op, 0x2);
                    let n = u64::from_be_bytes(payload[..8].try_into().unwrap());
                    assert_eq!(
                        n, want,
                        "a reader that keeps up gets every message in order"
                    );
                    seen.store(n, Ordering::SeqCst);
                }
            })
        })
        .collect();
    let mut sender = open_at(server, "/room");
    // Everyone is subscribed once a first message reaches everyone.
    let mut payload = vec![7u8; size];
    for n in 1..=count {
        payload[..8].copy_from_slice(&n.to_be_bytes());
        sender.write_all(&frame(true, 0x2, &payload)).unwrap();
        let (_, _, back) = read_frame(&mut sender);
        assert_eq!(&back[..8], &n.to_be_bytes());
        assert!(
            wait_until(Duration::from_secs(30), || readers
                .iter()
                .all(|r| r.load(Ordering::SeqCst) >= n)),
            "message {n} did not reach every reader"
        );
    }
    for t in threads {
        t.join().unwrap();
    }
    idle
}

#[test]
fn a_client_that_never_reads_costs_a_bounded_queue() {
    let topic = Topic::new(TopicConfig {
        capacity: 32,
        overflow: Overflow::DropOldest,
    });
    let server = TestServer::start_with(config(), |s: Server| s.get("/room", room(topic)));
    let before = rss_kib();
    let dropped = metric(&server, "gyre_broadcast_dropped_total");
    // 1,500 × 32 KiB = 48 MiB through the room, far more than the silent
    // client's socket buffers: an unbounded queue would hold most of it.
    let _idle = chat_past_a_silent_client(&server, 1_500, 32 * 1024);
    let grown = rss_kib().saturating_sub(before);
    assert!(
        metric(&server, "gyre_broadcast_dropped_total") > dropped,
        "the silent client's queue overflowed and dropped its oldest messages"
    );
    assert!(
        grown < 24 * 1024,
        "memory grew by {grown} KiB for a client that never reads"
    );
}

#[test]
fn a_slow_consumer_can_be_closed_instead() {
    let topic = Topic::new(TopicConfig {
        capacity: 8,
        overflow: Overflow::Close,
    });
    let server = TestServer::start_with(config(), |s: Server| s.get("/room", room(topic)));
    let closed = metric(&server, "gyre_broadcast_slow_closed_total");
    let mut idle = chat_past_a_silent_client(&server, 600, 32 * 1024);
    assert!(metric(&server, "gyre_broadcast_slow_closed_total") > closed);
    // Reading at last, the silent client finds what fitted in the buffers, then close 1008.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        assert!(Instant::now() < deadline, "no close frame");
        let (_, op, payload) = read_frame(&mut idle);
        if op == 0x8 {
            assert_eq!(&payload[..2], &1008u16.to_be_bytes());
            break;
        }
    }
}

/// Streams numbered events from `?from=` (or `Last-Event-ID`) on.
async fn numbers(req: Request) -> Response {
    let last: u64 = sse::last_event_id(&req)
        .or_else(|| req.query_param("from"))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let (response, events) = sse::stream(Some(Duration::from_millis(100)));
    gyre_rt::spawn(async move {
        for n in last + 1..=last + 3 {
            let e = sse::Event::data(format!("number {n}\nline two"))
                .id(n.to_string())
                .event("number")
                .retry(Duration::from_millis(500));
            if events.send(&e).await.is_err() {
                return;
            }
        }
        // Keep the stream open: keep-alive comments go out meanwhile.
        gyre_rt::time::sleep(Duration::from_secs(3600)).await;
        drop(events);
    })
    .detach();
    response
}

fn read_until(s: &mut TcpStream, needle: &str) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains(needle) {
        let n = s.read(&mut buf).unwrap_or(0);
        assert!(
            n > 0,
            "stream ended before {needle:?}: {}",
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&got).into_owned()
}

#[test]
fn server_sent_events_resume_keep_alive_and_end_at_shutdown() {
    let mut server = TestServer::start_with(config(), |s: Server| s.get("/events", numbers));
    let mut s = TcpStream::connect(server.addr).unwrap();
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    s.write_all(b"GET /events HTTP/1.1\r\nHost: x\r\nLast-Event-ID: 41\r\n\r\n")
        .unwrap();
    let got = read_until(&mut s, ": keep-alive");
    let head = got.to_lowercase();
    assert!(head.starts_with("http/1.1 200 "), "{got}");
    assert!(head.contains("content-type: text/event-stream"), "{got}");
    assert!(head.contains("cache-control: no-cache"), "{got}");
    assert!(
        got.contains("event: number\nid: 42\nretry: 500\ndata: number 42\ndata: line two\n\n"),
        "{got}"
    );
    assert!(got.contains("id: 44\n"), "{got}");
    // Shutdown ends the endless stream with its last chunk, within the deadline.
    let running = server.take_running();
    let closer = std::thread::spawn(move || running.shutdown());
    let rest = read_until(&mut s, "0\r\n\r\n");
    assert!(rest.ends_with("0\r\n\r\n"), "{rest}");
    assert!(
        closer.join().unwrap(),
        "shutdown finished within its deadline"
    );
}

/// Long polling: wait for the next message or 204 after `?ms=`.
fn poll(
    topic: Topic<String>,
) -> impl Fn(Request) -> std::pin::Pin<Box<dyn std::future::Future<Output = Response>>>
       + Clone
       + Send
       + Sync {
    move |req: Request| {
        let topic = topic.clone();
        Box::pin(async move {
            let ms = req
                .query_param("ms")
                .and_then(|v| v.parse().ok())
                .unwrap_or(100);
            let mut sub = topic.subscribe();
            match gyre_rt::time::timeout(Duration::from_millis(ms), sub.recv()).await {
                Ok(Ok(text)) => Response::with_body("text/plain", text),
                Ok(Err(_)) => Response::new(http::StatusCode::SERVICE_UNAVAILABLE),
                Err(_) => Response::new(http::StatusCode::NO_CONTENT),
            }
        })
    }
}

#[test]
fn long_polls_wait_without_threads_and_all_get_the_message() {
    util::raise_fd_limit();
    let topic: Topic<String> = Topic::new(TopicConfig::default());
    let publisher = topic.clone();
    let server = TestServer::start_with(config(), move |s: Server| {
        s.get("/poll", poll(topic.clone()))
            .post("/say", move |mut req: Request| {
                let topic = publisher.clone();
                async move {
                    let body = req.body.collect().await.unwrap();
                    topic.publish(String::from_utf8_lossy(&body).into_owned());
                    "ok"
                }
            })
    });
    // Nothing published: 204 after the timeout.
    assert_eq!(
        server
            .request(b"GET /poll?ms=200 HTTP/1.1\r\nHost: x\r\n\r\n")
            .status,
        204
    );
    // 500 waiting polls: far more than the blocking pool's threads.
    let mut waiting: Vec<Client> = (0..500)
        .map(|_| {
            let mut c = server.client();
            c.send(b"GET /poll?ms=60000 HTTP/1.1\r\nHost: x\r\n\r\n");
            c
        })
        .collect();
    assert!(
        wait_until(Duration::from_secs(30), || metric(
            &server,
            "gyre_broadcast_subscribers"
        ) >= 500),
        "every poll is waiting"
    );
    assert!(
        server
            .running()
            .render_metrics()
            .contains("gyre_blocking_busy 0"),
        "no thread waits for a poll"
    );
    let said = server.request(b"POST /say HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello");
    assert_eq!(said.status, 200);
    for c in &mut waiting {
        let r = c.read_response();
        assert_eq!((r.status, r.text()), (200, "hello".to_owned()));
    }
}
