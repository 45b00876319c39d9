//! What the fuzz targets share: a real gyre server on 127.0.0.1 on one
//! loop, and one connection's whole exchange with it.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::Duration;

/// A running server and its runtime.
pub struct Fixture {
    rt: gyre_rt::Runtime,
    addr: SocketAddr,
    _server: gyre_server::Running,
}

impl Fixture {
    /// Starts `server` on one loop (no watchdog) on a free port.
    pub fn start(server: gyre_server::Server) -> Fixture {
        let rt = gyre_rt::Builder::new()
            .workers(1)
            .watchdog(false)
            .build()
            .unwrap();
        let listener = gyre_rt::net::bind_std("127.0.0.1:0".parse().unwrap(), 1024).unwrap();
        let server = server.start(rt.handle(), listener).unwrap();
        let addr = server.local_addr().unwrap();
        Fixture {
            rt,
            addr,
            _server: server,
        }
    }

    /// Sends `input` as the whole input of one connection, half-closes it,
    /// and returns everything the server sent back, after checking that no
    /// task panicked.
    pub fn exchange(&self, input: &[u8]) -> Vec<u8> {
        let mut s = TcpStream::connect(self.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let _ = s.write_all(input);
        let _ = s.shutdown(Shutdown::Write);
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        let panics: u64 = self.rt.handle().loop_stats().iter().map(|l| l.panics).sum();
        assert_eq!(panics, 0, "a task panicked");
        out
    }
}
