//! Helpers shared by the server's integration tests: a server on a port of its
//! own, a raw HTTP/1.1 client over `std::net::TcpStream` that parses
//! responses (Content-Length, chunked or close-delimited bodies), and
//! condition waits with generous deadlines.
#![allow(dead_code)]

pub mod ws;

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use bytes::Bytes;
use gyre_server::{Config, Metrics, Request, Response, Running, Server};

/// Every socket read and write of a test client gives up after this, so a
/// hang fails the test instead of blocking it forever.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// Size of the body `/big-stream` and `/big-full` send: far more than any
/// socket buffers can hold.
pub const BIG: usize = 64 * 1024 * 1024;

/// A server on `127.0.0.1:<port 0>` with its own two-loop runtime.
/// Dropping it stops the server, then the runtime.
pub struct TestServer {
    running: Option<Running>,
    /// The address the server listens on.
    pub addr: SocketAddr,
    rt: Option<gyre_rt::Runtime>,
}

impl TestServer {
    /// Starts a server with `config` and the routes of [`app`].
    pub fn start(config: Config) -> TestServer {
        Self::start_with(config, app)
    }

    /// Starts a server with `config` and the routes `routes` adds.
    pub fn start_with(config: Config, routes: impl FnOnce(Server) -> Server) -> TestServer {
        let rt = gyre_rt::Builder::new()
            .workers(2)
            .build()
            .expect("cannot start the runtime");
        let listener = gyre_rt::net::bind_std("127.0.0.1:0".parse().unwrap(), 1024)
            .expect("cannot bind 127.0.0.1:0");
        let running = routes(Server::new().config(config))
            .start(rt.handle(), listener)
            .expect("cannot start the server");
        let addr = running.local_addr().expect("no local address");
        TestServer {
            running: Some(running),
            addr,
            rt: Some(rt),
        }
    }

    /// The running server.
    pub fn running(&self) -> &Running {
        self.running.as_ref().expect("the server was taken")
    }

    /// The server's counters.
    pub fn metrics(&self) -> &Metrics {
        self.running().metrics()
    }

    /// Connections the runtime has accepted so far, on every loop.
    pub fn accepted(&self) -> u64 {
        let rt = self.rt.as_ref().expect("no runtime");
        rt.handle().loop_stats().iter().map(|s| s.accepted).sum()
    }

    /// Takes the running server out (to shut it down from another thread);
    /// the runtime stays until this is dropped.
    pub fn take_running(&mut self) -> Running {
        self.running.take().expect("the server was taken")
    }

    /// A new raw client connected to the server.
    pub fn client(&self) -> Client {
        Client::connect(self.addr)
    }

    /// One request on a fresh connection; returns the response.
    pub fn request(&self, raw: &[u8]) -> Resp {
        let mut c = self.client();
        c.send(raw);
        c.read_response()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        drop(self.running.take());
        drop(self.rt.take());
    }
}

/// The routes most tests use.
///
/// - `GET /hello`: `hello\n`
/// - `GET /users/:id`: `user <id>\n`
/// - `POST /collect`: the whole request body, echoed (413/408/400 on body errors)
/// - `POST /ignore`: `ignored\n` without reading the body
/// - `GET /stream`: `chunk 0\n` … `chunk 9\n`, streamed with chunked coding
/// - `GET /slow`: sleeps 500 ms, then `slow\n`
/// - `GET /big-stream`: [`BIG`] bytes, streamed in 64 KiB chunks
/// - `GET /big-full`: [`BIG`] bytes as one full body
/// - `GET /kib/:n`: `n` KiB as one full body
/// - `GET /metrics`: the metrics
pub fn app(server: Server) -> Server {
    server
        .get("/hello", |_req: Request| async { "hello\n" })
        .get("/users/:id", |req: Request| async move {
            format!("user {}\n", req.param("id").unwrap_or("?"))
        })
        .post("/collect", |mut req: Request| async move {
            req.body.collect().await
        })
        .post("/ignore", |_req: Request| async { "ignored\n" })
        .get("/stream", |_req: Request| async {
            let (resp, tx) = Response::stream("text/plain", 2);
            gyre_rt::spawn(async move {
                for i in 0..10 {
                    if tx.send(format!("chunk {i}\n")).await.is_err() {
                        return;
                    }
                    gyre_rt::time::sleep(Duration::from_millis(5)).await;
                }
            })
            .detach();
            resp
        })
        .get("/slow", |_req: Request| async {
            gyre_rt::time::sleep(Duration::from_millis(500)).await;
            "slow\n"
        })
        .get("/big-stream", |_req: Request| async {
            let (resp, tx) = Response::stream("application/octet-stream", 2);
            gyre_rt::spawn(async move {
                let chunk = Bytes::from(vec![b'x'; 64 * 1024]);
                for _ in 0..BIG / chunk.len() {
                    if tx.send(chunk.clone()).await.is_err() {
                        return;
                    }
                }
            })
            .detach();
            resp
        })
        .get("/big-full", |_req: Request| async {
            Bytes::from(vec![b'x'; BIG])
        })
        .get("/kib/:n", |req: Request| async move {
            let n: usize = req.param("n").and_then(|n| n.parse().ok()).unwrap_or(1);
            Bytes::from(vec![b'k'; n * 1024])
        })
        .metrics_route("/metrics")
}

/// A `Config` with the defaults; tests change what they need.
pub fn config() -> Config {
    Config::default()
}

/// `GET <path>` with a Host, as bytes.
pub fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").into_bytes()
}

/// A parsed response.
#[derive(Debug, Clone)]
pub struct Resp {
    /// `HTTP/1.1`.
    pub version: String,
    /// The status code.
    pub status: u16,
    /// The reason phrase.
    pub reason: String,
    /// Header fields in order, names lowercased.
    pub headers: Vec<(String, String)>,
    /// The body, decoded from its framing.
    pub body: Vec<u8>,
    /// The body was chunked.
    pub chunked: bool,
}

impl Resp {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of header `name`.
    pub fn headers_named(&self, name: &str) -> Vec<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .filter(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The response says `connection: close`.
    pub fn says_close(&self) -> bool {
        self.headers_named("connection")
            .iter()
            .any(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("close")))
    }
}

/// How a read ended when it found no more bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// A clean close (FIN).
    Eof,
    /// A reset (RST): also a close, as far as the tests go.
    Reset,
}

/// A raw HTTP/1.1 client on one connection, with a buffer of bytes read and
/// not yet parsed (so pipelined responses can be read one by one).
pub struct Client {
    /// The socket.
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    /// Connects to `addr` with [`IO_TIMEOUT`] on reads and writes.
    pub fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)
            .unwrap_or_else(|e| panic!("cannot connect to {addr}: {e}"));
        Client::from_stream(stream)
    }

    /// Wraps a connected stream, setting [`IO_TIMEOUT`] on it.
    pub fn from_stream(stream: TcpStream) -> Client {
        stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        stream.set_nodelay(true).unwrap();
        Client {
            stream,
            buf: Vec::new(),
        }
    }

    /// Writes all of `bytes`.
    pub fn send(&mut self, bytes: &[u8]) {
        self.stream
            .write_all(bytes)
            .unwrap_or_else(|e| panic!("cannot send {} bytes: {e}", bytes.len()));
    }

    /// Writes all of `bytes`, reporting failure instead of panicking.
    pub fn try_send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Sends `raw` and reads one response.
    pub fn request(&mut self, raw: &[u8]) -> Resp {
        self.send(raw);
        self.read_response()
    }

    /// Reads more bytes into the buffer. `Ok(None)` at the end of the stream.
    fn fill(&mut self) -> io::Result<Option<End>> {
        let mut chunk = [0u8; 64 * 1024];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => return Ok(Some(End::Eof)),
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return Ok(None);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {
                    return Ok(Some(End::Reset))
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Fills until the buffer holds at least `n` bytes; panics on a close or a timeout.
    fn fill_to(&mut self, n: usize, what: &str) {
        while self.buf.len() < n {
            match self.fill() {
                Ok(None) => {}
                Ok(Some(end)) => panic!(
                    "connection closed ({end:?}) in {what}; have {} of {n} bytes: {}",
                    self.buf.len(),
                    preview(&self.buf)
                ),
                Err(e) => panic!(
                    "reading {what} failed ({e}); have {} bytes: {}",
                    self.buf.len(),
                    preview(&self.buf)
                ),
            }
        }
    }

    /// Reads one line ending in CRLF (returned without it).
    fn read_line(&mut self, what: &str) -> String {
        loop {
            if let Some(i) = find(&self.buf, b"\r\n") {
                let line = String::from_utf8_lossy(&self.buf[..i]).into_owned();
                self.buf.drain(..i + 2);
                return line;
            }
            let n = self.buf.len() + 1;
            self.fill_to(n, what);
        }
    }

    /// Reads one response; panics on a close before it or a timeout.
    pub fn read_response(&mut self) -> Resp {
        self.read_response_to(false)
    }

    /// Reads one response to a HEAD request (no body whatever the framing says).
    pub fn read_head_response(&mut self) -> Resp {
        self.read_response_to(true)
    }

    /// Reads one response, or `None` if the connection closes (or resets)
    /// before its first byte. Panics on a timeout or a close mid-response.
    pub fn try_read_response(&mut self) -> Option<Resp> {
        while self.buf.is_empty() {
            match self.fill() {
                Ok(None) => {}
                Ok(Some(_)) => return None,
                Err(e) => panic!("waiting for a response failed: {e}"),
            }
        }
        Some(self.read_response())
    }

    fn read_response_to(&mut self, head_request: bool) -> Resp {
        // The head.
        let head_end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i + 4;
            }
            let n = self.buf.len() + 1;
            self.fill_to(n, "a response head");
        };
        let head = String::from_utf8_lossy(&self.buf[..head_end - 4]).into_owned();
        self.buf.drain(..head_end);
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let mut parts = status_line.splitn(3, ' ');
        let version = parts.next().unwrap_or_default().to_owned();
        let status: u16 = parts
            .next()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
        let reason = parts.next().unwrap_or_default().to_owned();
        assert!(
            version.starts_with("HTTP/1."),
            "bad status line {status_line:?}"
        );
        let headers: Vec<(String, String)> = lines
            .map(|l| {
                let (n, v) = l
                    .split_once(':')
                    .unwrap_or_else(|| panic!("bad header line {l:?}"));
                (n.trim().to_ascii_lowercase(), v.trim().to_owned())
            })
            .collect();
        let mut resp = Resp {
            version,
            status,
            reason,
            headers,
            body: Vec::new(),
            chunked: false,
        };
        if head_request || status < 200 || status == 204 || status == 304 {
            return resp;
        }
        let chunked = resp
            .header("transfer-encoding")
            .is_some_and(|te| te.eq_ignore_ascii_case("chunked"));
        if chunked {
            resp.chunked = true;
            loop {
                let line = self.read_line("a chunk-size line");
                let size = line.split(';').next().unwrap_or_default().trim();
                let size = usize::from_str_radix(size, 16)
                    .unwrap_or_else(|_| panic!("bad chunk-size line {line:?}"));
                if size == 0 {
                    // Trailer fields, then the empty line.
                    while !self.read_line("the trailer section").is_empty() {}
                    break;
                }
                self.fill_to(size + 2, "chunk data");
                assert_eq!(
                    &self.buf[size..size + 2],
                    b"\r\n",
                    "chunk data not ended by CRLF"
                );
                resp.body.extend_from_slice(&self.buf[..size]);
                self.buf.drain(..size + 2);
            }
        } else if let Some(len) = resp.header("content-length") {
            let len: usize = len
                .parse()
                .unwrap_or_else(|_| panic!("bad content-length {len:?}"));
            self.fill_to(len, "a response body");
            resp.body = self.buf.drain(..len).collect();
        } else {
            // Close-delimited.
            resp.body = self.read_to_end();
        }
        resp
    }

    /// Reads until the server closes the connection (FIN or RST) and returns
    /// the bytes after the last parsed response. Panics if the connection is
    /// still open after [`IO_TIMEOUT`].
    pub fn read_to_end(&mut self) -> Vec<u8> {
        self.read_to_end_with(|_| {})
    }

    /// Like [`read_to_end`](Self::read_to_end), but throws away what it
    /// reads, keeping only a count, and stops (panicking) after `limit` bytes.
    pub fn drain_to_end(&mut self, limit: usize) -> (usize, End) {
        let mut total = self.buf.len();
        self.buf.clear();
        let mut chunk = vec![0u8; 256 * 1024];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => return (total, End::Eof),
                Ok(n) => {
                    total += n;
                    assert!(
                        total <= limit,
                        "read {total} bytes and the connection is still open"
                    );
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return (total, End::Reset),
                Err(e) => panic!("the connection did not close: {e} (after {total} bytes)"),
            }
        }
    }

    fn read_to_end_with(&mut self, mut on_end: impl FnMut(End)) -> Vec<u8> {
        loop {
            match self.fill() {
                Ok(None) => {}
                Ok(Some(end)) => {
                    on_end(end);
                    return std::mem::take(&mut self.buf);
                }
                Err(e) => panic!(
                    "the connection did not close: {e}; read so far {}",
                    preview(&self.buf)
                ),
            }
        }
    }

    /// Asserts the server closes the connection with nothing more to say.
    pub fn expect_closed(&mut self) {
        let rest = self.read_to_end();
        assert!(
            rest.is_empty(),
            "expected a close, got more bytes: {}",
            preview(&rest)
        );
    }
}

/// At most the first 300 bytes of `bytes`, quoted, for messages.
pub fn preview(bytes: &[u8]) -> String {
    let shown = &bytes[..bytes.len().min(300)];
    let more = if bytes.len() > shown.len() { "…" } else { "" };
    format!("{:?}{more}", String::from_utf8_lossy(shown))
}

/// The position of `needle` in `hay`.
pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Polls `cond` every 10 ms until it holds or `deadline` passes; returns whether it held.
pub fn wait_until(deadline: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + deadline;
    while Instant::now() < end {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    cond()
}

/// Raises this process's soft open-file limit to its hard limit.
pub fn raise_fd_limit() {
    if let Ok((_, hard)) = rlimit::Resource::NOFILE.get() {
        let _ = rlimit::Resource::NOFILE.set(hard, hard);
    }
}

/// Sends `raw` on a fresh connection, and asserts the answer is `status`
/// with `connection: close`, and that the server then closes the
/// connection without another byte (so nothing smuggled after it is answered).
pub fn assert_refused(server: &TestServer, raw: &[u8], status: u16) -> Resp {
    let mut c = server.client();
    c.send(raw);
    let resp = c.read_response();
    assert_eq!(
        resp.status,
        status,
        "request {:?} got {} {} ({:?})",
        String::from_utf8_lossy(raw),
        resp.status,
        resp.reason,
        resp.text()
    );
    assert!(
        resp.says_close(),
        "a {status} must say connection: close: {resp:?}"
    );
    c.expect_closed();
    resp
}
