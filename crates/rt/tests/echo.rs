//! An echo server over real sockets with 1,000 concurrent clients.

mod util;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use gyre_rt::net::{bind_std, TcpStream};
use gyre_rt::{spawn, Builder};

/// Serves an echo on every loop of `rt` and returns the address.
fn start_echo(rt: &gyre_rt::Runtime) -> (gyre_rt::net::Acceptor, SocketAddr) {
    let listener = bind_std("127.0.0.1:0".parse().unwrap(), 1024).unwrap();
    let acceptor = rt
        .handle()
        .serve(listener, |stream: TcpStream, _| async move {
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
    let addr = acceptor.local_addr();
    (acceptor, addr)
}

#[test]
fn echo_serves_a_thousand_concurrent_clients() {
    util::raise_fd_limit();
    let server = Builder::new().workers(2).build().unwrap();
    let (_acceptor, addr) = start_echo(&server);
    let clients = Builder::new().workers(2).build().unwrap();
    const CLIENTS: usize = 1000;
    const ROUNDS: usize = 20;
    let done = Arc::new(AtomicUsize::new(0));
    let done2 = done.clone();
    let result = clients.block_on(async move {
        let mut handles = Vec::new();
        for i in 0..CLIENTS {
            let done = done2.clone();
            handles.push(spawn(async move {
                let stream = TcpStream::connect(addr).await?;
                for round in 0..ROUNDS {
                    let msg = format!("client {i} round {round} {}", "x".repeat(i % 300));
                    stream.write_all(msg.as_bytes()).await?;
                    let mut got = vec![0u8; msg.len()];
                    let mut filled = 0;
                    while filled < got.len() {
                        let n = stream.read(&mut got[filled..]).await?;
                        if n == 0 {
                            return Err(std::io::Error::other("server closed early"));
                        }
                        filled += n;
                    }
                    assert_eq!(got, msg.as_bytes());
                }
                done.fetch_add(1, Ordering::SeqCst);
                Ok::<_, std::io::Error>(())
            }));
        }
        for h in handles {
            h.await.expect("client task failed")?;
        }
        Ok::<_, std::io::Error>(())
    });
    result.unwrap();
    assert_eq!(done.load(Ordering::SeqCst), CLIENTS);
    let accepted: u64 = server
        .handle()
        .loop_stats()
        .iter()
        .map(|s| s.accepted)
        .sum();
    assert_eq!(accepted, CLIENTS as u64);
}

#[test]
fn echo_handles_large_writes_and_half_close() {
    let server = Builder::new().workers(1).build().unwrap();
    let (_acceptor, addr) = start_echo(&server);
    // A blocking std client: 8 MiB out, read back concurrently on another thread.
    let mut out = std::net::TcpStream::connect(addr).unwrap();
    let mut back = out.try_clone().unwrap();
    let data: Vec<u8> = (0..8 << 20).map(|i: u32| (i % 251) as u8).collect();
    let expected = data.clone();
    let reader = std::thread::spawn(move || {
        use std::io::Read;
        let mut got = Vec::new();
        back.read_to_end(&mut got).unwrap();
        got
    });
    use std::io::Write;
    out.write_all(&data).unwrap();
    out.shutdown(std::net::Shutdown::Write).unwrap();
    let got = reader.join().unwrap();
    assert_eq!(got.len(), expected.len());
    assert!(got == expected, "echoed bytes differ");
}
