//! Real clients against the server: curl (HTTP/1.0, HTTP/1.1, chunked
//! upload, 100-continue, connection reuse) and Python (`http.client`
//! keep-alive, raw-socket pipelining). A missing curl or python3 fails the
//! test with a clear message: CI installs both (scripts/test.sh).

mod util;

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use util::{config, TestServer};

/// Runs `program` with `args`, failing clearly if it is not installed.
fn run(program: &str, args: &[&str]) -> Output {
    let output = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output();
    match output {
        Ok(o) => o,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "`{program}` is not installed, and this test needs it \
             (CI installs it: see scripts/test.sh; locally: apt-get install {program})"
        ),
        Err(e) => panic!("cannot run {program}: {e}"),
    }
}

/// Runs curl with a time bound, silent but showing errors; asserts success.
fn curl(args: &[&str]) -> Output {
    let mut all = vec!["--silent", "--show-error", "--max-time", "30"];
    all.extend_from_slice(args);
    let out = run("curl", &all);
    assert!(
        out.status.success(),
        "curl {args:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs a Python script with the server's port as its argument; asserts
/// success and returns its stdout.
fn python(script: &str, server: &TestServer) -> String {
    let port = server.addr.port().to_string();
    let out = run("python3", &["-c", script, &port]);
    assert!(
        out.status.success(),
        "python3 failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A file of `len` bytes (every value, repeated) in the tests' temp dir.
fn payload_file(name: &str, len: usize) -> (PathBuf, Vec<u8>) {
    let data: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("gyre-clients-{}-{name}", std::process::id()));
    std::fs::write(&path, &data).unwrap();
    (path, data)
}

fn url(server: &TestServer, path: &str) -> String {
    format!("http://{}{path}", server.addr)
}

#[test]
fn clients_curl_http10_get() {
    let server = TestServer::start(config());
    let out = curl(&["--http1.0", "--include", &url(&server, "/hello")]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(text.contains("connection: close\r\n"), "{text}");
    assert!(text.ends_with("\r\n\r\nhello\n"), "{text}");
}

#[test]
fn clients_curl_http11_get() {
    let server = TestServer::start(config());
    let out = curl(&["--http1.1", "--include", &url(&server, "/users/42")]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(text.contains("content-length: 8\r\n"), "{text}");
    assert!(text.ends_with("\r\n\r\nuser 42\n"), "{text}");
}

#[test]
fn clients_curl_streaming_response() {
    let server = TestServer::start(config());
    let out = curl(&["--http1.1", &url(&server, "/stream")]);
    let expected: String = (0..10).map(|i| format!("chunk {i}\n")).collect();
    assert_eq!(String::from_utf8_lossy(&out.stdout), expected);
}

#[test]
fn clients_curl_chunked_upload() {
    let server = TestServer::start(config());
    let (path, data) = payload_file("chunked", 200 * 1024);
    let body = format!("@{}", path.display());
    let out = curl(&[
        "--http1.1",
        "-H",
        "Transfer-Encoding: chunked",
        "-H",
        "Expect:",
        "--data-binary",
        &body,
        &url(&server, "/collect"),
    ]);
    std::fs::remove_file(&path).ok();
    assert_eq!(out.stdout.len(), data.len());
    assert!(out.stdout == data, "the echoed body differs");
}

#[test]
fn clients_curl_expect_100_continue() {
    let server = TestServer::start(config());
    let (path, data) = payload_file("expect", 8 * 1024);
    let body = format!("@{}", path.display());
    let out = curl(&[
        "--http1.1",
        "--verbose",
        // Long enough that a missing 100 would show as a failure below,
        // not as curl giving up and sending the body anyway.
        "--expect100-timeout",
        "20",
        "-H",
        "Expect: 100-continue",
        "--data-binary",
        &body,
        &url(&server, "/collect"),
    ]);
    std::fs::remove_file(&path).ok();
    let verbose = String::from_utf8_lossy(&out.stderr);
    assert!(verbose.contains("> Expect: 100-continue"), "{verbose}");
    assert!(verbose.contains("< HTTP/1.1 100 Continue"), "{verbose}");
    assert!(verbose.contains("< HTTP/1.1 200 OK"), "{verbose}");
    assert!(out.stdout == data, "the echoed body differs");
}

#[test]
fn clients_curl_reuses_keep_alive_connection() {
    let server = TestServer::start(config());
    let out = curl(&[
        "--http1.1",
        "--verbose",
        &url(&server, "/hello"),
        &url(&server, "/users/5"),
    ]);
    let verbose = String::from_utf8_lossy(&out.stderr);
    assert!(
        verbose.contains("Re-using existing connection")
            || verbose.contains("Reusing existing connection"),
        "{verbose}"
    );
    assert!(verbose.contains("left intact"), "{verbose}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello\nuser 5\n");
    assert_eq!(server.accepted(), 1, "curl opened more than one connection");
}

#[test]
fn clients_python_http_client_keep_alive() {
    let server = TestServer::start(config());
    let script = r#"
import http.client, sys
port = int(sys.argv[1])
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
socks = set()
for i in range(5):
    conn.request("GET", "/users/%d" % i)
    r = conn.getresponse()
    body = r.read()
    assert r.status == 200, r.status
    assert body == ("user %d\n" % i).encode(), body
    socks.add(id(conn.sock))
conn.request("POST", "/collect", body=b"p" * 3000)
r = conn.getresponse()
assert r.status == 200 and r.read() == b"p" * 3000
socks.add(id(conn.sock))
conn.request("HEAD", "/hello")
r = conn.getresponse()
assert r.status == 200 and r.getheader("content-length") == "6" and r.read() == b""
conn.request("GET", "/stream")
r = conn.getresponse()
assert r.read() == b"".join(b"chunk %d\n" % i for i in range(10))
socks.add(id(conn.sock))
print("requests ok, sockets", len(socks))
"#;
    let out = python(script, &server);
    assert_eq!(out.trim(), "requests ok, sockets 1");
    assert_eq!(
        server.accepted(),
        1,
        "http.client opened more than one connection"
    );
}

#[test]
fn clients_python_raw_socket_pipelining() {
    let server = TestServer::start(config());
    let script = r#"
import socket, sys
port = int(sys.argv[1])
s = socket.create_connection(("127.0.0.1", port), timeout=10)
n = 25
s.sendall(b"".join(b"GET /users/%d HTTP/1.1\r\nHost: t\r\n\r\n" % i for i in range(n)))
buf = b""
bodies = []
while len(bodies) < n:
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        data = s.recv(65536)
        assert data, "connection closed after %d responses" % len(bodies)
        buf += data
        continue
    head = buf[:end].decode()
    lines = head.split("\r\n")
    assert lines[0] == "HTTP/1.1 200 OK", lines[0]
    fields = dict(l.split(": ", 1) for l in lines[1:])
    length = int(fields["content-length"])
    while len(buf) < end + 4 + length:
        data = s.recv(65536)
        assert data, "connection closed mid-body"
        buf += data
    bodies.append(buf[end + 4:end + 4 + length])
    buf = buf[end + 4 + length:]
for i, b in enumerate(bodies):
    assert b == b"user %d\n" % i, (i, b)
print("pipelined", len(bodies))
"#;
    let out = python(script, &server);
    assert_eq!(out.trim(), "pipelined 25");
}
