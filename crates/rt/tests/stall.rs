//! A stalled loop: the watchdog names it, and the other loop takes every new
//! connection while it is stuck.

mod util;

use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use gyre_rt::net::{bind_std, TcpStream};
use gyre_rt::{set_label, Builder, Label};

#[test]
fn stalled_loop_accepts_nothing_and_the_watchdog_names_it() {
    let log = util::Captured::default();
    log.install();
    let rt = Builder::new()
        .workers(2)
        .stall_threshold(Duration::from_millis(100))
        .build()
        .unwrap();
    let listener = bind_std("127.0.0.1:0".parse().unwrap(), 1024).unwrap();
    let acceptor = rt
        .handle()
        .serve(listener, |stream: TcpStream, _| async move {
            let mut buf = [0u8; 64];
            while let Ok(n) = stream.read(&mut buf).await {
                if n == 0 || stream.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        })
        .unwrap();
    let addr = acceptor.local_addr();

    // Block loop 1's thread, as a handler calling blocking code would. It stays
    // blocked for 2 s, or until the clients below are done if that is sooner.
    let (release, released) = mpsc::channel::<()>();
    let stall_over = Arc::new(AtomicBool::new(false));
    let over = stall_over.clone();
    let (entered, is_entered) = mpsc::channel::<()>();
    rt.handle()
        .spawn_on(1, async move {
            set_label(Label::new("GET /report"));
            entered.send(()).unwrap();
            let _ = released.recv_timeout(Duration::from_secs(2));
            over.store(true, Ordering::SeqCst);
            set_label(Label::NONE);
        })
        .detach();
    is_entered.recv().unwrap();
    let before = rt.handle().loop_stats();

    let clients: Vec<_> = (0..50)
        .map(|i| {
            std::thread::spawn(move || {
                let mut s = std::net::TcpStream::connect(addr).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
                let msg = format!("hello {i}");
                s.write_all(msg.as_bytes()).unwrap();
                let mut got = vec![0u8; msg.len()];
                s.read_exact(&mut got).unwrap();
                assert_eq!(got, msg.as_bytes());
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    let answered_during_stall = !stall_over.load(Ordering::SeqCst);
    let during = rt.handle().loop_stats();
    // The watchdog must have seen the stall by now (threshold 100 ms), or soon.
    let h = rt.handle().clone();
    let seen = util::wait_until(Duration::from_secs(10), || h.loop_stats()[1].stalled);
    release.send(()).ok();
    assert!(
        answered_during_stall,
        "clients were answered only after the stall ended"
    );
    assert_eq!(
        during[1].accepted, before[1].accepted,
        "the stalled loop accepted"
    );
    assert_eq!(during[0].accepted - before[0].accepted, 50);
    assert!(seen, "the watchdog did not flag loop 1");

    // After the stall the loop reports its recovery and its stall time.
    assert!(util::wait_until(Duration::from_secs(10), || {
        let s = h.loop_stats()[1];
        !s.stalled && s.stalls == 1 && s.stall_ms >= 100
    }));
    assert_eq!(h.loop_stats()[0].stalls, 0);
    let text = log.text();
    assert!(
        text.contains("loop 1 stalled") && text.contains("GET /report"),
        "watchdog log: {text}"
    );
    assert!(
        text.contains("loop 1 recovered after a stall of"),
        "log: {text}"
    );
}
