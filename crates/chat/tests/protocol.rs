//! The chat protocol over real sockets, for each transport: ordering,
//! reconnecting with the last id, trimmed history, validation errors and the
//! rate limit. WebSocket clients are tungstenite's; HTTP is raw.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use gyre_chat::{Chat, ChatSettings};
use gyre_server::Server;
use serde_json::Value;
use tungstenite::Message;

const TIMEOUT: Duration = Duration::from_secs(20);

struct ChatServer {
    addr: SocketAddr,
    running: Option<gyre_server::Running>,
    _rt: gyre_rt::Runtime,
}

fn start(settings: ChatSettings) -> ChatServer {
    let rt = gyre_rt::Builder::new().workers(2).build().unwrap();
    let listener = gyre_rt::net::bind_std("127.0.0.1:0".parse().unwrap(), 1024).unwrap();
    let chat = Chat::in_process(settings);
    let running = chat
        .routes(Server::new())
        .start(rt.handle(), listener)
        .unwrap();
    ChatServer {
        addr: running.local_addr().unwrap(),
        running: Some(running),
        _rt: rt,
    }
}

fn relaxed() -> ChatSettings {
    ChatSettings {
        rate: 1000.0,
        burst: 1000,
        ..ChatSettings::default()
    }
}

/// One HTTP/1.1 request on a new connection: (status, headers, body).
fn http(addr: SocketAddr, method: &str, path: &str, body: &str) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").expect("a head");
    let status = head[9..12].parse().unwrap();
    (status, head.to_lowercase(), body.to_owned())
}

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

fn post(addr: SocketAddr, room: &str, nick: &str, text: &str) -> (u16, Value) {
    let body = serde_json::json!({"nick": nick, "text": text}).to_string();
    let (status, _, body) = http(addr, "POST", &format!("/api/rooms/{room}/messages"), &body);
    (status, json(&body))
}

fn ids(messages: &Value) -> Vec<u64> {
    messages
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_u64().unwrap())
        .collect()
}

type Ws = tungstenite::WebSocket<TcpStream>;

fn ws(addr: SocketAddr, path: &str) -> Ws {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    let (socket, response) = tungstenite::client(format!("ws://{addr}{path}"), stream).unwrap();
    assert_eq!(response.status(), 101);
    socket
}

/// The next JSON object of `kind` (skipping presence and other kinds).
fn next_of(socket: &mut Ws, kind: &str) -> Value {
    loop {
        match socket.read().expect("a message") {
            Message::Text(t) => {
                let v = json(&t);
                if v["type"] == kind {
                    return v;
                }
            }
            Message::Close(c) => panic!("closed while waiting for {kind}: {c:?}"),
            _ => {}
        }
    }
}

fn say(socket: &mut Ws, text: &str, reference: &str) {
    let m = serde_json::json!({"type": "say", "text": text, "ref": reference});
    socket.send(Message::Text(m.to_string())).unwrap();
}

/// Waits (a generous while) until `nick` is among the room's people.
fn wait_present(addr: SocketAddr, room: &str, nick: &str) {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let (_, _, body) = http(
            addr,
            "GET",
            &format!("/api/rooms/{room}/messages?after=0"),
            "",
        );
        if json(&body)["people"]
            .as_array()
            .is_some_and(|p| p.contains(&Value::from(nick)))
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{nick} never showed up in {room}: {body}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn http_posts_get_increasing_ids_and_long_polls_wake() {
    let server = start(relaxed());
    let addr = server.addr;
    for i in 1..=3u64 {
        let (status, m) = post(addr, "lobby", "bot", &format!("m{i}"));
        assert_eq!(status, 200, "{m}");
        assert_eq!(m["id"], i);
        assert!(m["ts"].as_u64().unwrap() > 1_600_000_000_000);
    }
    let (_, _, body) = http(addr, "GET", "/api/rooms/lobby/messages?after=1", "");
    let v = json(&body);
    assert_eq!(ids(&v["messages"]), vec![2, 3]);
    assert_eq!(
        (v["trimmed"].as_bool(), v["last_id"].as_u64()),
        (Some(false), Some(3))
    );
    // A long poll waits for the 4th message and gets exactly it.
    let poller = std::thread::spawn(move || {
        http(
            addr,
            "GET",
            "/api/rooms/lobby/messages?after=3&wait=25&nick=pol",
            "",
        )
    });
    wait_present(addr, "lobby", "pol"); // present, so waiting
    post(addr, "lobby", "bot", "m4");
    let (status, _, body) = poller.join().unwrap();
    assert_eq!(status, 200);
    let v = json(&body);
    assert_eq!(ids(&v["messages"]), vec![4]);
    assert_eq!(v["people"], serde_json::json!(["pol"]));
    // Nothing new: an empty answer after the wait.
    let (_, _, body) = http(
        addr,
        "GET",
        "/api/rooms/lobby/messages?after=4&wait=0.2",
        "",
    );
    assert_eq!(ids(&json(&body)["messages"]), Vec::<u64>::new());
}

#[test]
fn trimmed_history_is_reported_on_every_transport() {
    let server = start(ChatSettings {
        history: 5,
        ..relaxed()
    });
    let addr = server.addr;
    for i in 1..=8 {
        post(addr, "small", "bot", &format!("m{i}"));
    }
    let (_, _, body) = http(addr, "GET", "/api/rooms/small/messages?after=1", "");
    let v = json(&body);
    assert_eq!(
        (v["trimmed"].as_bool(), ids(&v["messages"])),
        (Some(true), vec![4, 5, 6, 7, 8])
    );
    let (_, _, body) = http(addr, "GET", "/api/rooms/small/messages?after=3", "");
    let v = json(&body);
    assert_eq!(
        (v["trimmed"].as_bool(), ids(&v["messages"])),
        (Some(false), vec![4, 5, 6, 7, 8])
    );
    let mut socket = ws(addr, "/api/rooms/small/ws?nick=ann&after=2");
    let h = next_of(&mut socket, "history");
    assert_eq!(
        (h["trimmed"].as_bool(), ids(&h["messages"])),
        (Some(true), vec![4, 5, 6, 7, 8])
    );
    let sse = sse_until(
        addr,
        "/api/rooms/small/events?nick=sse&after=1",
        "",
        "event: ready",
    );
    assert!(sse.contains("event: trimmed"), "{sse}");
    assert!(sse.find("event: trimmed") < sse.find("id: 4\n"), "{sse}");
}

#[test]
fn websocket_reconnect_with_the_last_id_gets_the_rest_in_order() {
    let server = start(relaxed());
    let addr = server.addr;
    let mut a = ws(addr, "/api/rooms/r1/ws?nick=ann");
    let h = next_of(&mut a, "history");
    assert_eq!(ids(&h["messages"]), Vec::<u64>::new());
    say(&mut a, "first", "c1");
    let ack = next_of(&mut a, "ack");
    assert_eq!(
        (ack["ref"].as_str(), ack["id"].as_u64()),
        (Some("c1"), Some(1))
    );
    let m = next_of(&mut a, "message");
    assert_eq!(
        (m["id"].as_u64(), m["nick"].as_str(), m["text"].as_str()),
        (Some(1), Some("ann"), Some("first"))
    );
    // Ann goes away; meanwhile others write over HTTP and over a WebSocket.
    drop(a);
    post(addr, "r1", "bob", "two");
    let mut c = ws(addr, "/api/rooms/r1/ws?nick=carl");
    next_of(&mut c, "history");
    say(&mut c, "three", "x");
    next_of(&mut c, "ack");
    post(addr, "r1", "bob", "four");
    // Ann returns with the last id she saw: everything after it, once, in order.
    let mut a = ws(addr, "/api/rooms/r1/ws?nick=ann&after=1");
    let h = next_of(&mut a, "history");
    assert_eq!(h["trimmed"], false);
    let texts: Vec<&str> = h["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(
        (ids(&h["messages"]), texts),
        (vec![2, 3, 4], vec!["two", "three", "four"])
    );
    post(addr, "r1", "bob", "five");
    let live = next_of(&mut a, "message");
    assert_eq!(
        live["id"], 5,
        "live messages continue right after the history, no duplicate"
    );
}

#[test]
fn concurrent_senders_on_both_loops_give_one_gapless_order() {
    let server = start(relaxed());
    let addr = server.addr;
    let mut reader = ws(addr, "/api/rooms/busy/ws?nick=reader");
    next_of(&mut reader, "history");
    let senders: Vec<_> = (0..4)
        .map(|n| {
            std::thread::spawn(move || {
                let mut s = ws(addr, &format!("/api/rooms/busy/ws?nick=s{n}"));
                next_of(&mut s, "history");
                for i in 0..50 {
                    say(&mut s, &format!("{n}:{i}"), &i.to_string());
                    assert_eq!(next_of(&mut s, "ack")["ref"], i.to_string());
                }
            })
        })
        .collect();
    let mut last_by_sender = [-1i64; 4];
    for want in 1..=200u64 {
        let m = next_of(&mut reader, "message");
        assert_eq!(m["id"], want, "ids arrive without gaps or duplicates");
        let (n, i) = m["text"].as_str().unwrap().split_once(':').unwrap();
        let (n, i): (usize, i64) = (n.parse().unwrap(), i.parse().unwrap());
        assert_eq!(
            i,
            last_by_sender[n] + 1,
            "each sender's messages in its order"
        );
        last_by_sender[n] = i;
    }
    for s in senders {
        s.join().unwrap();
    }
}

/// Reads an SSE stream until `needle` appears.
fn sse_until(addr: SocketAddr, path: &str, extra: &str, needle: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n{extra}\r\n").unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains(needle) {
        let n = s.read(&mut buf).expect("the stream goes on");
        assert!(
            n > 0,
            "ended before {needle:?}: {}",
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&got).into_owned()
}

#[test]
fn server_sent_events_resume_from_last_event_id() {
    let server = start(relaxed());
    let addr = server.addr;
    for i in 1..=4 {
        post(addr, "news", "bot", &format!("n{i}"));
    }
    let got = sse_until(
        addr,
        "/api/rooms/news/events?nick=reader&after=1",
        "Last-Event-ID: 2\r\n",
        "event: ready",
    );
    assert!(
        got.to_lowercase()
            .contains("content-type: text/event-stream"),
        "{got}"
    );
    assert!(!got.contains("id: 2\n"), "nothing up to the last id: {got}");
    let three = got
        .find("event: message\nid: 3\ndata: {")
        .expect("message 3");
    let four = got
        .find("event: message\nid: 4\ndata: {")
        .expect("message 4");
    assert!(three < four, "{got}");
    assert!(got.contains(r#""text":"n3""#), "{got}");
    // Live: a message posted now arrives on an open stream.
    let streamer = std::thread::spawn(move || {
        sse_until(
            addr,
            "/api/rooms/news/events?nick=live&after=4",
            "",
            "id: 5\n",
        )
    });
    // Present means subscribed: the stream is made after its subscription.
    wait_present(addr, "news", "live");
    post(addr, "news", "bot", "live one");
    let got = streamer.join().unwrap();
    assert!(got.contains(r#""id":5"#), "{got}");
}

#[test]
fn bad_input_gets_clear_errors_everywhere() {
    let server = start(ChatSettings {
        max_text: 100,
        ..relaxed()
    });
    let addr = server.addr;
    let cases = [
        ("lobby", "bad nick", "hi", "invalid_nick"),
        ("lobby", "", "hi", "invalid_nick"),
        ("lobby", "ann", "", "invalid_text"),
        ("lobby", "ann", "   ", "invalid_text"),
        ("lobby", "ann", "bell\u{7}", "invalid_text"),
        ("lobby", "ann", &"x".repeat(101), "invalid_text"),
        ("Lobby", "ann", "hi", "invalid_room"),
    ];
    for (room, nick, text, code) in cases {
        let (status, v) = post(addr, room, nick, text);
        assert_eq!(
            (status, v["error"]["code"].as_str()),
            (400, Some(code)),
            "{room} {nick:?} {text:?}: {v}"
        );
        assert!(!v["error"]["message"].as_str().unwrap().is_empty());
    }
    let (status, _, body) = http(addr, "POST", "/api/rooms/lobby/messages", "{not json");
    assert_eq!(
        (status, json(&body)["error"]["code"].as_str()),
        (400, Some("bad_request"))
    );
    let (status, _, body) = http(addr, "GET", "/api/rooms/lobby/messages?after=abc", "");
    assert_eq!(
        (status, json(&body)["error"]["code"].as_str()),
        (400, Some("bad_request"))
    );
    let (status, _, _) = http(addr, "GET", "/api/rooms/lobby/events?nick=no%20way", "");
    assert_eq!(status, 400);
    // Nothing invalid was stored.
    let (_, _, body) = http(addr, "GET", "/api/rooms/lobby/messages?after=0", "");
    assert_eq!(json(&body)["last_id"], 0);

    // Over a WebSocket: errors carry the ref; the connection stays usable.
    let mut s = ws(addr, "/api/rooms/lobby/ws?nick=ann");
    next_of(&mut s, "history");
    say(&mut s, "", "e1");
    let e = next_of(&mut s, "error");
    assert_eq!(
        (e["code"].as_str(), e["ref"].as_str()),
        (Some("invalid_text"), Some("e1"))
    );
    s.send(Message::Text("{\"type\":\"shout\"}".into()))
        .unwrap();
    assert_eq!(next_of(&mut s, "error")["code"], "bad_request");
    s.send(Message::Text("not json".into())).unwrap();
    assert_eq!(next_of(&mut s, "error")["code"], "bad_request");
    say(&mut s, "<b>still</b> here", "ok");
    assert_eq!(next_of(&mut s, "ack")["ref"], "ok");
    assert_eq!(next_of(&mut s, "message")["text"], "<b>still</b> here");
    // A bad nickname: close 1008 with the reason.
    let mut bad = ws(addr, "/api/rooms/lobby/ws?nick=%3Cscript%3E");
    match bad.read().unwrap() {
        Message::Close(Some(c)) => {
            assert_eq!(u16::from(c.code), 1008);
            assert!(c.reason.contains("nickname"), "{}", c.reason);
        }
        other => panic!("expected a close, got {other:?}"),
    }
}

#[test]
fn the_rate_limit_refuses_bursts_with_a_clear_error() {
    let server = start(ChatSettings {
        rate: 0.01, // one more message per 100 s: none refills during the test
        burst: 3,
        ..ChatSettings::default()
    });
    let addr = server.addr;
    for i in 0..3 {
        assert_eq!(post(addr, "lobby", "fast", &format!("{i}")).0, 200);
    }
    let (status, _, body) = http(
        addr,
        "POST",
        "/api/rooms/lobby/messages",
        r#"{"nick":"fast","text":"one too many"}"#,
    );
    assert_eq!(status, 429);
    assert_eq!(json(&body)["error"]["code"], "rate_limited");
    // Another nickname has its own allowance.
    assert_eq!(post(addr, "lobby", "slow", "hello").0, 200);

    let mut s = ws(addr, "/api/rooms/lobby/ws?nick=ws");
    next_of(&mut s, "history");
    let mut acks = 0;
    let mut limited = 0;
    for i in 0..5 {
        say(&mut s, "spam", &i.to_string());
    }
    while acks + limited < 5 {
        match s.read().unwrap() {
            Message::Text(t) => match json(&t)["type"].as_str() {
                Some("ack") => acks += 1,
                Some("error") => {
                    assert_eq!(json(&t)["code"], "rate_limited");
                    limited += 1;
                }
                _ => {}
            },
            other => panic!("{other:?}"),
        }
    }
    assert_eq!((acks, limited), (3, 2), "a burst of 3, then refusals");
    let (_, _, body) = http(addr, "GET", "/api/rooms/lobby/messages?after=0", "");
    assert_eq!(
        json(&body)["last_id"],
        7,
        "3 + 1 over HTTP, 3 over the socket; nothing refused was stored"
    );
}

#[test]
fn rooms_list_people_and_the_page_is_served() {
    let server = start(relaxed());
    let addr = server.addr;
    let mut a = ws(addr, "/api/rooms/one/ws?nick=ann");
    next_of(&mut a, "history");
    let p = next_of(&mut a, "presence");
    assert!(
        p["people"]
            .as_array()
            .unwrap()
            .contains(&Value::from("ann")),
        "{p}"
    );
    let mut b = ws(addr, "/api/rooms/one/ws?nick=bob");
    next_of(&mut b, "history");
    let joined = loop {
        let p = next_of(&mut a, "presence");
        if p["joined"]
            .as_array()
            .is_some_and(|j| j.contains(&Value::from("bob")))
        {
            break p;
        }
    };
    assert_eq!(joined["people"], serde_json::json!(["ann", "bob"]));
    let (_, _, body) = http(addr, "GET", "/api/rooms", "");
    assert_eq!(
        json(&body)["rooms"],
        serde_json::json!([{"name": "one", "people": 2, "last_id": 0}])
    );
    drop(b);
    let left = loop {
        let p = next_of(&mut a, "presence");
        if p["left"]
            .as_array()
            .is_some_and(|l| l.contains(&Value::from("bob")))
        {
            break p;
        }
    };
    assert_eq!(left["people"], serde_json::json!(["ann"]));
    let (status, head, page) = http(addr, "GET", "/", "");
    assert_eq!(status, 200);
    assert!(head.contains("content-type: text/html"), "{head}");
    assert!(
        page.contains("/static/chat.js"),
        "the page loads its script"
    );
    let (status, _, _) = http(addr, "GET", "/static/chat.js", "");
    assert_eq!(status, 200);
}

#[test]
fn shutdown_ends_every_transport_promptly() {
    let mut server = start(relaxed());
    let addr = server.addr;
    post(addr, "bye", "bot", "one");
    let poller = std::thread::spawn(move || {
        http(
            addr,
            "GET",
            "/api/rooms/bye/messages?after=1&wait=25&nick=pol",
            "",
        )
    });
    let mut socket = ws(addr, "/api/rooms/bye/ws?nick=ann");
    next_of(&mut socket, "history");
    let mut events = TcpStream::connect(addr).unwrap();
    events.set_read_timeout(Some(TIMEOUT)).unwrap();
    write!(
        events,
        "GET /api/rooms/bye/events?nick=sse HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    .unwrap();
    // Wait until all three are in the room.
    for nick in ["pol", "ann", "sse"] {
        wait_present(addr, "bye", nick);
    }
    let running = server.running.take().unwrap();
    let done = std::thread::spawn(move || running.shutdown());
    // The WebSocket gets 1001; the long poll an empty answer; the event stream its end.
    let code = loop {
        match socket.read() {
            Ok(Message::Close(Some(c))) => break u16::from(c.code),
            Ok(_) => {}
            Err(e) => panic!("no close frame: {e}"),
        }
    };
    assert_eq!(code, 1001);
    let (status, _, body) = poller.join().unwrap();
    assert_eq!((status, ids(&json(&body)["messages"])), (200, vec![]));
    let mut rest = Vec::new();
    events.read_to_end(&mut rest).unwrap();
    assert!(
        String::from_utf8_lossy(&rest).ends_with("0\r\n\r\n"),
        "the stream ended cleanly"
    );
    // Within the 10 s deadline, though the long poll asked to wait 25 s.
    assert!(
        done.join().unwrap(),
        "every connection closed within the deadline"
    );
}
