//! Parses a typical keep-alive request head N times (default 100,000), for
//! counting the parser's instructions with callgrind:
//! `valgrind --tool=callgrind target/release/examples/parse_loop 100000`.
use gyre_http::{parse_request, Limits, Status};

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(100_000);
    let head = b"GET /bench/plaintext HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n";
    let limits = Limits::default();
    let mut total = 0;
    for _ in 0..n {
        match parse_request(std::hint::black_box(head), &limits) {
            Ok(Status::Complete(h)) => total += h.head_len,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(total as u64, n * head.len() as u64);
}
