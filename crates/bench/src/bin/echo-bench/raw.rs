//! Two echo servers with no runtime at all, as ceilings for the runtimes:
//! what a loop written by hand for this one job costs the kernel.
//!
//! - `raw-epoll`: one mio poll, sockets in a `Vec`, no tasks, no timers,
//!   no wakers: the least any epoll runtime can do per round trip.
//! - `raw-uring`: one io_uring with deferred, single-issuer task running;
//!   each loop turn submits every send and receive that became due in one
//!   `io_uring_enter`, so a round trip costs no system call of its own.

use io_uring::{cqueue, opcode, squeue, types, IoUring};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd};

pub fn serve_raw_epoll(addr: SocketAddr) {
    const LISTENER: mio::Token = mio::Token(usize::MAX);
    let mut poll = mio::Poll::new().unwrap();
    let mut listener = mio::net::TcpListener::bind(addr).unwrap();
    poll.registry()
        .register(&mut listener, LISTENER, mio::Interest::READABLE)
        .unwrap();
    let mut conns: Vec<Option<mio::net::TcpStream>> = Vec::new();
    let mut events = mio::Events::with_capacity(1024);
    let mut buf = [0u8; 4096];
    println!("ready");
    loop {
        poll.poll(&mut events, None).unwrap();
        for ev in events.iter() {
            if ev.token() == LISTENER {
                while let Ok((mut stream, _)) = listener.accept() {
                    stream.set_nodelay(true).unwrap();
                    let token = mio::Token(conns.len());
                    poll.registry()
                        .register(&mut stream, token, mio::Interest::READABLE)
                        .unwrap();
                    conns.push(Some(stream));
                }
                continue;
            }
            let slot = &mut conns[ev.token().0];
            let Some(stream) = slot else { continue };
            let open = loop {
                match stream.read(&mut buf) {
                    Ok(0) => break false,
                    // Blocking-style write_all is fine here: echoes are small
                    // and the client reads everything it is sent.
                    Ok(n) if stream.write_all(&buf[..n]).is_err() => break false,
                    // Less than a full buffer: the socket is drained, and
                    // edge-triggered readiness reports the next bytes anew.
                    Ok(n) if n < buf.len() => break true,
                    Ok(_) => continue,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break true,
                    Err(_) => break false,
                }
            };
            if !open {
                *slot = None;
            }
        }
    }
}

const ACCEPT: u64 = 0;
const RECV: u64 = 1;
const SEND: u64 = 2;
const BUF: usize = 4096;

/// One connection: its socket and the buffer its one operation in flight
/// (a receive, or the send of what was received) points into.
struct Conn {
    stream: std::net::TcpStream,
    buf: Box<[u8; BUF]>,
    len: usize,
    sent: usize,
}

fn tag(conn: usize, op: u64) -> u64 {
    ((conn as u64) << 2) | op
}

fn recv(conns: &mut [Option<Conn>], i: usize) -> squeue::Entry {
    let c = conns[i].as_mut().unwrap();
    let fd = types::Fd(c.stream.as_raw_fd());
    opcode::Recv::new(fd, c.buf.as_mut_ptr(), BUF as u32)
        .build()
        .user_data(tag(i, RECV))
}

fn send(conns: &mut [Option<Conn>], i: usize) -> squeue::Entry {
    let c = conns[i].as_mut().unwrap();
    let fd = types::Fd(c.stream.as_raw_fd());
    let rest = &c.buf[c.sent..c.len];
    opcode::Send::new(fd, rest.as_ptr(), rest.len() as u32)
        .build()
        .user_data(tag(i, SEND))
}

pub fn serve_raw_uring(addr: SocketAddr) {
    let listener = TcpListener::bind(addr).unwrap();
    let mut ring: IoUring = IoUring::builder()
        .setup_single_issuer()
        .setup_defer_taskrun()
        .build(1024)
        .unwrap();
    let accept = opcode::AcceptMulti::new(types::Fd(listener.as_raw_fd()))
        .build()
        .user_data(ACCEPT);
    let mut due = vec![accept.clone()];
    // A connection's buffer lives in its own box, so it stays put while the
    // kernel writes to it, whatever happens to `conns`; and a connection
    // leaves `conns` only when its one operation in flight has completed.
    let mut conns: Vec<Option<Conn>> = Vec::new();
    println!("ready");
    loop {
        {
            let mut sq = ring.submission();
            for entry in due.drain(..) {
                // SAFETY: every entry points into a boxed buffer of a
                // connection that stays in `conns` until its completion.
                unsafe { sq.push(&entry).expect("submission queue room") };
            }
        }
        ring.submit_and_wait(1).unwrap();
        let done: Vec<(u64, i32, u32)> = ring
            .completion()
            .map(|c| (c.user_data(), c.result(), c.flags()))
            .collect();
        for (data, res, flags) in done {
            let (i, op) = ((data >> 2) as usize, data & 3);
            match op {
                ACCEPT => {
                    if !cqueue::more(flags) {
                        due.push(accept.clone());
                    }
                    if res < 0 {
                        continue;
                    }
                    // SAFETY: a successful accept hands us a new descriptor.
                    let stream = unsafe { std::net::TcpStream::from_raw_fd(res) };
                    stream.set_nodelay(true).unwrap();
                    let buf = Box::new([0; BUF]);
                    conns.push(Some(Conn {
                        stream,
                        buf,
                        len: 0,
                        sent: 0,
                    }));
                    let last = conns.len() - 1;
                    due.push(recv(&mut conns, last));
                }
                RECV if res > 0 => {
                    let c = conns[i].as_mut().unwrap();
                    (c.len, c.sent) = (res as usize, 0);
                    due.push(send(&mut conns, i));
                }
                SEND if res >= 0 => {
                    let c = conns[i].as_mut().unwrap();
                    c.sent += res as usize;
                    due.push(if c.sent < c.len {
                        send(&mut conns, i)
                    } else {
                        recv(&mut conns, i)
                    });
                }
                _ => conns[i] = None, // end of stream or an error: close
            }
        }
    }
    #[allow(unreachable_code)]
    let _ = listener.into_raw_fd();
}
