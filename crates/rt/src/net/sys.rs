//! `recv` and `send` on a socket as plain system calls.
//!
//! glibc's `recv` and `send` (what `std` and mio call) are thread
//! cancellation points: each call switches asynchronous cancellation on and
//! off around the system call, two atomic compare-exchanges on the thread's
//! descriptor. Under a keep-alive load (`wrk -c16`, one loop) perf put 1.9%
//! of the server's CPU in `__pthread_{enable,disable}_asynccancel`, about a
//! sixth of its user-space time. gyre never cancels threads, so on Linux it
//! enters the kernel through `syscall(2)`, which has no such wrapping.
//! Elsewhere the `std` calls are used.

use std::io;
use std::os::fd::AsRawFd;

/// `recv(fd, buf, 0)`: reads what the socket holds, at most `buf.len()` bytes.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
pub(crate) fn recv(socket: &impl AsRawFd, buf: &mut [u8]) -> io::Result<usize> {
    retrying(|| {
        // SAFETY: `buf` is a live, writable slice for the whole call and the
        // kernel writes at most `buf.len()` bytes into it; the address
        // arguments are null, which `recvfrom` allows (it then fills in no
        // address). A closed or wrong descriptor is an error, not UB.
        unsafe {
            libc::syscall(
                libc::SYS_recvfrom,
                socket.as_raw_fd(),
                buf.as_mut_ptr(),
                buf.len(),
                0,
                std::ptr::null_mut::<libc::sockaddr>(),
                std::ptr::null_mut::<libc::socklen_t>(),
            )
        }
    })
}

/// `send(fd, buf, MSG_NOSIGNAL)`: writes what fits of `buf`; a peer that has
/// gone gives `EPIPE` rather than a `SIGPIPE` (as `std`'s `write` does).
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
pub(crate) fn send(socket: &impl AsRawFd, buf: &[u8]) -> io::Result<usize> {
    retrying(|| {
        // SAFETY: `buf` is a live slice for the whole call and the kernel
        // reads at most `buf.len()` bytes of it; a null destination address
        // of length 0 is what `send` itself passes to `sendto`.
        unsafe {
            libc::syscall(
                libc::SYS_sendto,
                socket.as_raw_fd(),
                buf.as_ptr(),
                buf.len(),
                libc::MSG_NOSIGNAL,
                std::ptr::null::<libc::sockaddr>(),
                0 as libc::socklen_t,
            )
        }
    })
}

/// Makes a system call until it is not interrupted by a signal (`EINTR`);
/// its return value as a byte count, or the thread's `errno`.
#[cfg(target_os = "linux")]
fn retrying(mut call: impl FnMut() -> libc::c_long) -> io::Result<usize> {
    loop {
        match check(call()) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            result => return result,
        }
    }
}

/// A system call's return value as a byte count, or the thread's `errno`.
#[cfg(target_os = "linux")]
fn check(n: libc::c_long) -> io::Result<usize> {
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        // Non-negative and at most the buffer's length, so it fits.
        Ok(n as usize)
    }
}

/// `recv` through `std` where no plain system call is set up.
#[cfg(not(target_os = "linux"))]
pub(crate) fn recv(socket: &mio::net::TcpStream, buf: &mut [u8]) -> io::Result<usize> {
    io::Read::read(&mut &*socket, buf)
}

/// `send` through `std` where no plain system call is set up.
#[cfg(not(target_os = "linux"))]
pub(crate) fn send(socket: &mio::net::TcpStream, buf: &[u8]) -> io::Result<usize> {
    io::Write::write(&mut &*socket, buf)
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    /// The plain calls move the same bytes as std's, report `WouldBlock` on
    /// an empty non-blocking socket, 0 at the peer's close, and `EPIPE`
    /// (not a signal that kills the test) once the peer is gone.
    #[test]
    fn recv_and_send_move_bytes_and_report_errors() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        server.set_nonblocking(true).unwrap();
        let mut buf = [0u8; 64];
        let err = recv(&server, &mut buf).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);

        client.write_all(b"ping").unwrap();
        let n = loop {
            match recv(&server, &mut buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::yield_now(),
                other => break other.unwrap(),
            }
        };
        assert_eq!(&buf[..n], b"ping");
        assert_eq!(send(&server, b"pong").unwrap(), 4);
        let mut got = [0u8; 4];
        client.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"pong");

        drop(client);
        let n = loop {
            match recv(&server, &mut buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::yield_now(),
                other => break other.unwrap(),
            }
        };
        assert_eq!(n, 0, "the peer's close reads as 0");
        // The first send after the close may still be taken (the peer then
        // answers with a reset); a later one fails with EPIPE or ECONNRESET.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let err = loop {
            match send(&server, b"late") {
                Ok(_) if std::time::Instant::now() < deadline => std::thread::yield_now(),
                Ok(_) => panic!("sends to a closed peer kept succeeding"),
                Err(e) => break e,
            }
        };
        assert!(
            matches!(
                err.kind(),
                io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
            ),
            "{err:?}"
        );
    }
}
