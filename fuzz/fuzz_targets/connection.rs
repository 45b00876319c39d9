//! Feeds arbitrary bytes as the whole input stream of one connection to a
//! real gyre server (on 127.0.0.1), then checks that no task panicked and
//! that whatever came back is HTTP.
#![no_main]

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::OnceLock;
use std::time::Duration;

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
        let mut config = gyre_server::Config::default();
        config.header_timeout = Duration::from_secs(2);
        config.body_timeout = Duration::from_secs(2);
        config.max_body = 64 * 1024;
        let server = gyre_server::Server::new()
            .config(config)
            .get("/", |_req: gyre_server::Request| async { "ok\n" })
            .get("/users/:id", |req: gyre_server::Request| async move {
                format!("{}\n", req.param("id").unwrap_or(""))
            })
            .post("/echo", |mut req: gyre_server::Request| async move {
                req.body.collect().await
            })
            // Any other path: the target read lazily (path, query) and as a
            // `Uri` built on demand, which must agree.
            .get("/t/*rest", |req: gyre_server::Request| async move {
                let (path, query) = (req.path().to_owned(), req.query().map(str::to_owned));
                let uri = req.uri();
                assert_eq!((path.as_str(), query.as_deref()), (uri.path(), uri.query()));
                format!("{uri}\n")
            })
            .start(rt.handle(), listener)
            .unwrap();
        let addr = server.local_addr().unwrap();
        Fixture { rt, addr, _server: server }
    })
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let mut s = TcpStream::connect(f.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = s.write_all(data);
    let _ = s.shutdown(Shutdown::Write);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let panics: u64 = f.rt.handle().loop_stats().iter().map(|l| l.panics).sum();
    assert_eq!(panics, 0, "a connection task panicked");
    assert!(out.is_empty() || out.starts_with(b"HTTP/1.1 "), "not HTTP: {:?}", String::from_utf8_lossy(&out[..out.len().min(200)]));
});
