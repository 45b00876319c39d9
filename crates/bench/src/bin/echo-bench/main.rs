//! TCP echo ping-pong: the same client against a gyre or a tokio
//! (current_thread) echo server, one loop each.
//!
//! ```text
//! echo-bench server gyre|tokio|raw-epoll|raw-uring ADDR
//! echo-bench client ADDR CONNECTIONS SECONDS MESSAGE_BYTES
//! ```
//! The client is a single-threaded mio loop, so it costs every server the
//! same; it prints `roundtrips=N seconds=S cpu_ticks=T`, T being its own
//! CPU time (user and system, in clock ticks) for the whole run, so that a
//! script can tell whether the client's core was the bottleneck.
//!
//! `raw-epoll` and `raw-uring` are echo loops written by hand for this job,
//! with no runtime: the ceilings the runtimes are measured against.

mod raw;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("server") => {
            let addr: SocketAddr = args[3].parse().expect("address");
            match args[2].as_str() {
                "gyre" => serve_gyre(addr),
                "tokio" => serve_tokio(addr),
                "raw-epoll" => raw::serve_raw_epoll(addr),
                "raw-uring" => raw::serve_raw_uring(addr),
                other => panic!("unknown server {other}"),
            }
        }
        Some("client") => {
            let addr: SocketAddr = args[2].parse().expect("address");
            let conns: usize = args[3].parse().expect("connections");
            let secs: u64 = args[4].parse().expect("seconds");
            let size: usize = args[5].parse().expect("message bytes");
            client(addr, conns, Duration::from_secs(secs), size);
        }
        _ => eprintln!("usage: echo-bench server gyre|tokio|raw-epoll|raw-uring ADDR | client ADDR CONNS SECS BYTES"),
    }
}

fn serve_gyre(addr: SocketAddr) {
    let rt = gyre_rt::Builder::new().workers(1).build().unwrap();
    let listener = gyre_rt::net::bind_std(addr, 1024).unwrap();
    let _acceptor = rt
        .handle()
        .serve(listener, |stream, _| async move {
            let mut buf = [0u8; 4096];
            loop {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        if stream.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                }
            }
        })
        .unwrap();
    println!("ready");
    loop {
        std::thread::park();
    }
}

fn serve_tokio(addr: SocketAddr) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .unwrap();
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        println!("ready");
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            stream.set_nodelay(true).unwrap();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                loop {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if stream.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
}

/// One client connection's state: bytes of the current echo still expected.
struct Conn {
    stream: mio::net::TcpStream,
    pending: usize,
}

fn client(addr: SocketAddr, conns: usize, duration: Duration, size: usize) {
    let mut poll = mio::Poll::new().unwrap();
    let mut events = mio::Events::with_capacity(1024);
    let msg = vec![b'x'; size];
    let mut buf = vec![0u8; 65536];
    let mut all = Vec::with_capacity(conns);
    for i in 0..conns {
        let std = std::net::TcpStream::connect(addr).unwrap();
        std.set_nodelay(true).unwrap();
        std.set_nonblocking(true).unwrap();
        let mut stream = mio::net::TcpStream::from_std(std);
        poll.registry()
            .register(&mut stream, mio::Token(i), mio::Interest::READABLE)
            .unwrap();
        all.push(Conn { stream, pending: 0 });
    }
    let warmup = Duration::from_secs(1);
    let start = Instant::now();
    let mut measuring_since = None;
    let mut roundtrips = 0u64;
    for c in all.iter_mut() {
        c.stream.write_all(&msg).unwrap();
        c.pending = size;
    }
    loop {
        let elapsed = start.elapsed();
        if measuring_since.is_none() && elapsed >= warmup {
            measuring_since = Some(Instant::now());
            roundtrips = 0;
        }
        if let Some(since) = measuring_since {
            if since.elapsed() >= duration {
                let secs = since.elapsed().as_secs_f64();
                let ticks = own_cpu_ticks();
                println!("roundtrips={roundtrips} seconds={secs:.3} cpu_ticks={ticks}");
                return;
            }
        }
        poll.poll(&mut events, Some(Duration::from_millis(100)))
            .unwrap();
        for ev in events.iter() {
            let c = &mut all[ev.token().0];
            loop {
                match c.stream.read(&mut buf) {
                    Ok(0) => panic!("server closed a connection"),
                    Ok(n) => {
                        c.pending = c.pending.saturating_sub(n);
                        if c.pending == 0 {
                            roundtrips += 1;
                            c.stream.write_all(&msg).unwrap();
                            c.pending = size;
                            // The server sends nothing unasked, so the socket
                            // is empty now: the answer comes with a new edge.
                            // Reading on to WouldBlock would cost the client
                            // a third system call per round trip.
                            break;
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(e) => panic!("read: {e}"),
                }
            }
        }
    }
}

/// This process's user and system CPU time in clock ticks, from
/// `/proc/self/stat` (fields 14 and 15; the command name before them may
/// hold spaces, so count from its closing parenthesis).
fn own_cpu_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    let after_name = &stat[stat.rfind(')').expect("stat format") + 2..];
    let fields: Vec<&str> = after_name.split(' ').collect();
    // after_name starts at field 3 (state), so field N is at index N - 3.
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}
