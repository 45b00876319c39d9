//! Feeds arbitrary bytes as the whole input stream of one connection to a
//! real gyre server (on 127.0.0.1), then checks that no task panicked and
//! that whatever came back is HTTP.
#![no_main]

mod common;

use std::sync::OnceLock;
use std::time::Duration;

use common::Fixture;
use libfuzzer_sys::fuzz_target;

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
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
            });
        Fixture::start(server)
    })
}

fuzz_target!(|data: &[u8]| {
    let out = fixture().exchange(data);
    assert!(
        out.is_empty() || out.starts_with(b"HTTP/1.1 "),
        "not HTTP: {:?}",
        String::from_utf8_lossy(&out[..out.len().min(200)])
    );
});
