//! A slowloris attack (hundreds of connections trickling a request head one
//! byte at a time) must not starve normal clients: the head timeout cuts
//! the slow connections off while the loops keep serving everyone else.

mod util;

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use gyre_server::Reason;
use util::{config, get, raise_fd_limit, wait_until, TestServer};

/// Slow connections kept open at once.
const SLOW: usize = 300;
/// Threads sharing them.
const THREADS: usize = 3;
/// How long the attack lasts.
const ATTACK: Duration = Duration::from_secs(10);
/// A head that never ends: the request line, then one header value forever.
const HEAD: &[u8] = b"GET /hello HTTP/1.1\r\nHost: t\r\nX-Slow: ";

/// One slow connection and how far into its endless head it is.
struct Slow {
    stream: TcpStream,
    sent: usize,
}

impl Slow {
    fn open(addr: SocketAddr) -> Option<Slow> {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).ok()?;
        stream.set_nonblocking(true).ok()?;
        Some(Slow { stream, sent: 0 })
    }

    /// Sends the next byte; false once the server has closed the connection.
    fn trickle(&mut self) -> bool {
        let byte = HEAD.get(self.sent).copied().unwrap_or(b'a');
        match self.stream.write(&[byte]) {
            Ok(1) => {
                self.sent += 1;
                true
            }
            Ok(_) => false,
            Err(e) => e.kind() == std::io::ErrorKind::WouldBlock,
        }
    }
}

/// Keeps `count` slow connections open until `stop` (or `ATTACK` passes):
/// one byte on each every 500 ms, reconnecting those the server closed.
fn attacker(addr: SocketAddr, count: usize, stop: Arc<AtomicBool>, opened: Arc<AtomicU64>) {
    let end = Instant::now() + ATTACK;
    let mut conns: Vec<Option<Slow>> = (0..count).map(|_| Slow::open(addr)).collect();
    opened.fetch_add(conns.iter().flatten().count() as u64, Ordering::Relaxed);
    while Instant::now() < end && !stop.load(Ordering::Relaxed) {
        for slot in conns.iter_mut() {
            let alive = slot.as_mut().is_some_and(Slow::trickle);
            if !alive {
                *slot = Slow::open(addr);
                if slot.is_some() {
                    opened.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn slowloris_does_not_starve_normal_clients() {
    raise_fd_limit();
    let mut cfg = config();
    cfg.header_timeout = Duration::from_secs(2);
    let server = TestServer::start(cfg);
    let addr = server.addr;
    let stop = Arc::new(AtomicBool::new(false));
    let opened = Arc::new(AtomicU64::new(0));
    let attackers: Vec<JoinHandle<()>> = (0..THREADS)
        .map(|_| {
            let (stop, opened) = (stop.clone(), opened.clone());
            std::thread::spawn(move || attacker(addr, SLOW / THREADS, stop, opened))
        })
        .collect();
    // Let the attack build up before the normal clients come.
    assert!(
        wait_until(Duration::from_secs(10), || server
            .metrics()
            .open_connections()
            >= SLOW as i64 / 2),
        "the attack did not get going: {} open",
        server.metrics().open_connections()
    );

    let mut failures = Vec::new();
    for i in 0..50 {
        let mut c = server.client();
        c.send(&get(&format!("/users/{i}")));
        match c.try_read_response() {
            Some(r) if r.status == 200 && r.text() == format!("user {i}\n") => {}
            other => failures.push((i, other.map(|r| (r.status, r.text())))),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    stop.store(true, Ordering::Relaxed);
    for a in attackers {
        a.join().unwrap();
    }
    assert!(failures.is_empty(), "normal requests failed: {failures:?}");
    assert_eq!(server.metrics().responses(200), 50);
    // Every slow connection of the first wave sent its first byte at once,
    // so each was cut off by the head timeout long before the attack ended.
    assert!(
        wait_until(Duration::from_secs(10), || server
            .metrics()
            .reason(Reason::HeaderTimeout)
            >= SLOW as u64),
        "only {} head timeouts for {} slow connections",
        server.metrics().reason(Reason::HeaderTimeout),
        opened.load(Ordering::Relaxed)
    );
}
