//! Replays every input in `fuzz/regressions/` (crashes the connection fuzzer
//! once found, plus hand-made seeds) against a real server, with the fuzz
//! target's checks: no task panics, and any answer is HTTP.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::Path;
use std::time::Duration;

#[test]
fn fuzz_regressions_replay_cleanly() {
    let rt = gyre_rt::Builder::new().workers(1).build().unwrap();
    let listener = gyre_rt::net::bind_std("127.0.0.1:0".parse().unwrap(), 1024).unwrap();
    let config = gyre_server::Config {
        header_timeout: Duration::from_secs(2),
        body_timeout: Duration::from_secs(2),
        max_body: 64 * 1024,
        ..gyre_server::Config::default()
    };
    let server = gyre_server::Server::new()
        .config(config)
        .get("/", |_req: gyre_server::Request| async { "ok\n" })
        .get("/users/:id", |req: gyre_server::Request| async move {
            format!("{}\n", req.param("id").unwrap_or(""))
        })
        .post("/echo", |mut req: gyre_server::Request| async move {
            req.body.collect().await
        })
        .start(rt.handle(), listener)
        .unwrap();
    let addr = server.local_addr().unwrap();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/regressions");
    let mut inputs: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    inputs.sort();
    assert!(!inputs.is_empty(), "no inputs in {}", dir.display());
    for path in inputs {
        let data = std::fs::read(&path).unwrap();
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let _ = s.write_all(&data);
        let _ = s.shutdown(Shutdown::Write);
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        assert!(
            out.is_empty() || out.starts_with(b"HTTP/1.1 "),
            "{}: not HTTP: {:?}",
            path.display(),
            String::from_utf8_lossy(&out[..out.len().min(200)])
        );
    }
    let panics: u64 = rt.handle().loop_stats().iter().map(|l| l.panics).sum();
    assert_eq!(panics, 0, "a connection task panicked");
}
