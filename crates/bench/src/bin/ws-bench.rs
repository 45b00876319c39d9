//! WebSocket load client for gyre's `/bench/ws/*` routes (idle memory per
//! connection, broadcast fan-out latency and rate) and for its chat (many
//! clients in a few rooms, a few of them sending: rates, delivery latency,
//! order and loss; a Rust counterpart of `scripts/chat-load.py`).
//!
//! ```text
//! ws-bench idle      --addr 127.0.0.1:PORT --conns 15000 --server-pid PID [--hold-secs 5]
//! ws-bench broadcast --addr 127.0.0.1:PORT --conns 15000 --rounds 20 [--burst 200]
//! ws-bench chat      --addr 127.0.0.1:PORT --clients 2000 --rooms 4 --senders 40 --rate 2 \
//!                    --seconds 20 --warmup 3 [--server-pid PID]
//! ```
//!
//! One thread, one mio `Poll`, every socket non-blocking. The RFC 6455 client
//! side is written out here: an HTTP/1.1 upgrade with a random
//! `Sec-WebSocket-Key` whose `Sec-WebSocket-Accept` is checked (SHA-1 and
//! base64 are below), masked client frames with a fresh mask per frame, and a
//! parser for the server's unmasked frames (7-, 16- and 64-bit lengths,
//! fragmented messages, ping, pong and close) that copes with any split of
//! the byte stream across reads.
//!
//! Connections are opened at a bounded rate (`--max-handshakes` in flight at
//! once) so the server's listen backlog is not overrun. Nothing is retried:
//! a connection that fails is counted, with its reason, and reported. Every
//! phase has a deadline; the program prints readable lines, then one line of
//! JSON, and exits non-zero if a connection failed or a message is missing.

use std::collections::{BTreeMap, VecDeque};
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand};
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

/// Command line.
#[derive(Debug, Parser)]
#[command(about = "WebSocket benchmark client for gyre's /bench/ws routes")]
struct Cli {
    /// What to measure.
    #[command(subcommand)]
    mode: Mode,
}

/// The measurements.
#[derive(Debug, Subcommand)]
enum Mode {
    /// Server memory per idle WebSocket connection (on /bench/ws/echo).
    Idle(IdleArgs),
    /// Fan-out latency and delivery rate on /bench/ws/broadcast.
    Broadcast(BroadcastArgs),
    /// Chat load: clients in rooms, senders at a steady rate, delivery
    /// latency, order and loss (the chat's `/api/rooms/ROOM/ws`).
    Chat(ChatArgs),
}

/// Options both modes share.
#[derive(Debug, Args)]
struct Common {
    /// Server address.
    #[arg(long)]
    addr: SocketAddr,
    /// WebSocket connections to open.
    #[arg(long, default_value_t = 15_000)]
    conns: usize,
    /// Most handshakes (TCP connect + upgrade) in flight at once.
    #[arg(long, default_value_t = 500)]
    max_handshakes: usize,
    /// A handshake not done after this many seconds fails.
    #[arg(long, default_value_t = 10)]
    handshake_timeout_secs: u64,
    /// Deadline for each phase (opening, echo or round, burst), seconds.
    #[arg(long, default_value_t = 120)]
    timeout_secs: u64,
    /// Request path instead of the mode's route (for testing the client).
    #[arg(long)]
    path: Option<String>,
}

/// `idle` options.
#[derive(Debug, Args)]
struct IdleArgs {
    /// Address, connection count, limits.
    #[command(flatten)]
    common: Common,
    /// The server's process id, for VmRSS in /proc/PID/status.
    #[arg(long)]
    server_pid: u32,
    /// How long the connections sit idle before memory is read again.
    #[arg(long, default_value_t = 5)]
    hold_secs: u64,
    /// Size of the one echo message per connection, bytes (at least 16).
    #[arg(long, default_value_t = 16)]
    echo_bytes: usize,
}

/// `broadcast` options.
#[derive(Debug, Args)]
struct BroadcastArgs {
    /// Address, connection count, limits.
    #[command(flatten)]
    common: Common,
    /// Latency rounds: one message each, timed until every connection has it.
    #[arg(long, default_value_t = 20)]
    rounds: usize,
    /// Messages sent back to back for the delivery-rate measurement.
    #[arg(long, default_value_t = 200)]
    burst: usize,
    /// Payload size of each burst message, bytes (at least 8).
    #[arg(long, default_value_t = 16)]
    msg_bytes: usize,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    raise_fd_limit();
    let result = match cli.mode {
        Mode::Idle(a) => run_idle(&a),
        Mode::Broadcast(a) => run_broadcast(&a),
        Mode::Chat(a) => run_chat(&a),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(msg) => {
            eprintln!("ws-bench: {msg}");
            ExitCode::from(2)
        }
    }
}

/// Raises the soft RLIMIT_NOFILE to the hard limit (never past it).
fn raise_fd_limit() {
    match rlimit::Resource::NOFILE.get() {
        Ok((soft, hard)) if soft < hard => {
            if let Err(e) = rlimit::Resource::NOFILE.set(hard, hard) {
                eprintln!("ws-bench: could not raise RLIMIT_NOFILE {soft} -> {hard}: {e}");
            }
        }
        Ok(_) => {}
        Err(e) => eprintln!("ws-bench: getrlimit(NOFILE): {e}"),
    }
}

/// Warns if the fd limit cannot hold `conns` sockets plus a few spare.
fn check_fd_limit(conns: usize) {
    if let Ok((soft, _)) = rlimit::Resource::NOFILE.get() {
        if (conns as u64) + 16 > soft {
            eprintln!(
                "ws-bench: warning: RLIMIT_NOFILE is {soft}, too low for {conns} connections; \
                 the excess will fail"
            );
        }
    }
}

// ---------------------------------------------------------------------------
// idle

/// Opens the connections, proves each live with one echo, holds them idle,
/// and reports the server's RSS growth per connection.
fn run_idle(a: &IdleArgs) -> Result<bool, String> {
    let c = &a.common;
    check_fd_limit(c.conns);
    let deadline_for = |secs: u64| Instant::now() + Duration::from_secs(secs);
    let rss_before = read_vm_rss(a.server_pid)?;
    println!(
        "server pid {}: VmRSS before = {rss_before} KiB",
        a.server_pid
    );

    let mut client = Client::new(c, c.path.as_deref().unwrap_or("/bench/ws/echo"))?;
    let opened = client.open_all(deadline_for(c.timeout_secs));
    client.print_open_summary(opened);
    if client.established == 0 {
        client.print_failures();
        return Err("no connection opened".into());
    }

    // One small text message on each connection, and wait for every echo.
    let open: Vec<usize> = client.open_indices();
    let mut echoed = vec![false; client.conns.len()];
    let mut echoes = 0usize;
    let mut wrong = 0usize;
    let t0 = Instant::now();
    let echo_msg = |i: usize| {
        let mut m = format!("idle {i:08} ").into_bytes();
        m.resize(a.echo_bytes.max(16), b'e');
        m
    };
    for &i in &open {
        client.send(i, OP_TEXT, &echo_msg(i));
    }
    let deadline = deadline_for(c.timeout_secs);
    while echoes + wrong < open.len() && Instant::now() < deadline && client.lost == 0 {
        client.turn(Some(Duration::from_millis(50)), &mut |i, data| {
            if !echoed[i] && data == echo_msg(i) {
                echoed[i] = true;
                echoes += 1;
            } else {
                wrong += 1;
            }
        });
    }
    let echo_secs = t0.elapsed().as_secs_f64();
    println!(
        "echo check: {echoes}/{} connections echoed in {echo_secs:.3} s ({wrong} unexpected)",
        open.len()
    );

    // Hold: connections idle, the loop only answers pings.
    let hold_until = deadline_for(a.hold_secs);
    while Instant::now() < hold_until {
        let left = hold_until.saturating_duration_since(Instant::now());
        client.turn(Some(left.min(Duration::from_millis(200))), &mut |_, _| {
            wrong += 1;
        });
    }
    let rss_after = read_vm_rss(a.server_pid)?;
    let still_open = client.open_count();
    println!(
        "server VmRSS after {} s idle with {still_open} connections = {rss_after} KiB",
        a.hold_secs
    );
    let per_conn = if still_open > 0 {
        (rss_after as f64 - rss_before as f64) / still_open as f64
    } else {
        0.0
    };
    println!("server memory per idle connection: {per_conn:.2} KiB");

    let lost = client.lost;
    let (clean, unclean) = client.close_all(Instant::now() + Duration::from_secs(10));
    println!("closed: {clean} cleanly, {unclean} without a close handshake");
    client.print_failures();

    let ok = client.failed == 0 && lost == 0 && echoes == open.len() && wrong == 0;
    println!(
        "{{\"mode\":\"idle\",\"conns\":{},\"established\":{},\"failed\":{},\"lost\":{},\
         \"echoed\":{},\"rss_before_kib\":{},\"rss_after_kib\":{},\"kib_per_conn\":{:.3},\
         \"hold_secs\":{},\"open_secs\":{:.3},\"ok\":{}}}",
        c.conns,
        client.established,
        client.failed,
        lost,
        echoes,
        rss_before,
        rss_after,
        per_conn,
        a.hold_secs,
        opened.as_secs_f64(),
        ok
    );
    if !ok {
        eprintln!(
            "ws-bench idle: NOT all connections worked: {} failed to open, {lost} lost, \
             {echoes}/{} echoed, {wrong} unexpected messages",
            client.failed,
            open.len()
        );
    }
    Ok(ok)
}

/// The `VmRSS` of process `pid`, KiB.
fn read_vm_rss(pid: u32) -> Result<u64, String> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    text.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("{path}: no VmRSS line"))
}

// ---------------------------------------------------------------------------
// broadcast

/// Latency rounds, then one burst, on the broadcast route.
fn run_broadcast(a: &BroadcastArgs) -> Result<bool, String> {
    let c = &a.common;
    check_fd_limit(c.conns);
    let phase = Duration::from_secs(c.timeout_secs);
    let mut client = Client::new(c, c.path.as_deref().unwrap_or("/bench/ws/broadcast"))?;
    let opened = client.open_all(Instant::now() + phase);
    client.print_open_summary(opened);
    let open = client.open_indices();
    let Some(&sender) = open.first() else {
        client.print_failures();
        return Err("no connection opened".into());
    };
    let target = open.len();
    let slots = client.conns.len();
    // A short settle so every connection's subscription is in place (the
    // server has answered 101, but nothing says it registered the receiver
    // first); also lets the server finish the open burst.
    settle(&mut client, Duration::from_millis(200));

    // --- latency rounds
    let mut lat_ms: Vec<f64> = Vec::with_capacity(a.rounds);
    let mut seen = vec![u32::MAX; slots]; // last round each connection saw
    let mut unexpected = 0usize;
    let mut failure: Option<String> = None;
    for round in 0..a.rounds {
        let msg = format!("round {round}");
        let mut got = 0usize;
        let mut done_at: Option<Instant> = None;
        let t0 = Instant::now();
        client.send(sender, OP_TEXT, msg.as_bytes());
        let deadline = t0 + phase;
        while got < target && Instant::now() < deadline && client.lost == 0 {
            client.turn(Some(Duration::from_millis(20)), &mut |i, data| {
                if data == msg.as_bytes() && seen[i] != round as u32 {
                    seen[i] = round as u32;
                    got += 1;
                    if got == target {
                        done_at = Some(Instant::now());
                    }
                } else {
                    unexpected += 1;
                }
            });
        }
        match done_at {
            Some(t) => {
                let ms = (t - t0).as_secs_f64() * 1e3;
                lat_ms.push(ms);
                println!("round {round:>3}: all {target} connections had it after {ms:.3} ms");
            }
            None => {
                failure = Some(format!(
                    "round {round}: only {got}/{target} connections received the message \
                     ({} connections lost, deadline {} s)",
                    client.lost, c.timeout_secs
                ));
                break;
            }
        }
    }
    let lat = Summary::of(&lat_ms);
    if let Some(s) = &lat {
        println!(
            "broadcast latency to the last of {target} connections over {} rounds: \
             min {:.3} ms, median {:.3} ms, max {:.3} ms",
            lat_ms.len(),
            s.min,
            s.median,
            s.max
        );
    }

    // --- burst throughput
    let mut rate = 0.0;
    let mut burst_secs = 0.0;
    let mut delivered = 0usize;
    let mut out_of_order = 0usize;
    if failure.is_none() && a.burst > 0 {
        settle(&mut client, Duration::from_millis(200));
        let size = a.msg_bytes.max(8);
        let msgs: Vec<Vec<u8>> = (0..a.burst)
            .map(|k| {
                let mut m = format!("b{k:07}").into_bytes();
                m.resize(size, b'x');
                m
            })
            .collect();
        let mut next = vec![0usize; slots]; // next burst index each connection expects
        let want = a.burst * target;
        let mut done_at: Option<Instant> = None;
        let t0 = Instant::now();
        for m in &msgs {
            client.send(sender, OP_TEXT, m);
        }
        let deadline = t0 + phase;
        while delivered < want && Instant::now() < deadline && client.lost == 0 {
            client.turn(Some(Duration::from_millis(20)), &mut |i, data| {
                let k = next[i];
                if k < msgs.len() && data == msgs[k].as_slice() {
                    next[i] += 1;
                    delivered += 1;
                } else if data.first() == Some(&b'b') && k < msgs.len() {
                    // A burst message, but not the one due: count and skip ahead.
                    out_of_order += 1;
                    next[i] += 1;
                    delivered += 1;
                } else {
                    unexpected += 1;
                }
                if delivered == want && done_at.is_none() {
                    done_at = Some(Instant::now());
                }
            });
        }
        match done_at {
            Some(t) => {
                burst_secs = (t - t0).as_secs_f64();
                rate = want as f64 / burst_secs;
                println!(
                    "burst: {} messages x {target} connections = {want} deliveries \
                     in {burst_secs:.3} s = {rate:.0} messages/s",
                    a.burst
                );
            }
            None => {
                let short = next.iter().filter(|&&n| n > 0 && n < a.burst).count();
                failure = Some(format!(
                    "burst: only {delivered}/{want} deliveries in {:.1} s \
                     ({short} connections partway, {} lost)",
                    t0.elapsed().as_secs_f64(),
                    client.lost
                ));
            }
        }
    }

    let lost = client.lost;
    let (clean, unclean) = client.close_all(Instant::now() + Duration::from_secs(10));
    println!("closed: {clean} cleanly, {unclean} without a close handshake");
    client.print_failures();
    if unexpected > 0 || out_of_order > 0 {
        println!("unexpected messages: {unexpected}, out of order: {out_of_order}");
    }
    let ok = failure.is_none()
        && client.failed == 0
        && lost == 0
        && unexpected == 0
        && out_of_order == 0;
    let (mn, md, mx) = lat.map_or((0.0, 0.0, 0.0), |s| (s.min, s.median, s.max));
    println!(
        "{{\"mode\":\"broadcast\",\"conns\":{},\"established\":{},\"failed\":{},\"lost\":{},\
         \"rounds\":{},\"latency_ms\":{{\"min\":{mn:.3},\"median\":{md:.3},\"max\":{mx:.3}}},\
         \"burst\":{},\"deliveries\":{delivered},\"burst_secs\":{burst_secs:.3},\
         \"msgs_per_sec\":{rate:.0},\"unexpected\":{unexpected},\"out_of_order\":{out_of_order},\
         \"open_secs\":{:.3},\"ok\":{ok}}}",
        c.conns,
        client.established,
        client.failed,
        lost,
        lat_ms.len(),
        a.burst,
        opened.as_secs_f64(),
    );
    if let Some(f) = failure {
        eprintln!("ws-bench broadcast: NOT all messages arrived: {f}");
    } else if !ok {
        eprintln!(
            "ws-bench broadcast: {} connections failed to open, {lost} lost, \
             {unexpected} unexpected and {out_of_order} out-of-order messages",
            client.failed
        );
    }
    Ok(ok)
}

/// Runs the loop for `d`, discarding any message.
fn settle(client: &mut Client, d: Duration) {
    let until = Instant::now() + d;
    while Instant::now() < until {
        let left = until.saturating_duration_since(Instant::now());
        client.turn(Some(left), &mut |_, _| {});
    }
}

/// Min, median and max of a sample.
#[derive(Debug, Clone, Copy)]
struct Summary {
    min: f64,
    median: f64,
    max: f64,
}

impl Summary {
    /// `None` for an empty sample.
    fn of(xs: &[f64]) -> Option<Summary> {
        if xs.is_empty() {
            return None;
        }
        let mut v = xs.to_vec();
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Some(Summary {
            min: v[0],
            median,
            max: v[n - 1],
        })
    }
}

// ---------------------------------------------------------------------------
// The connection pool and its event loop

/// Where one connection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Not started yet.
    Idle,
    /// TCP connect in progress.
    Connecting,
    /// Upgrade request sent (or being sent), waiting for `101`.
    Handshaking,
    /// WebSocket open.
    Open,
    /// Our close frame sent, waiting for the server's.
    Closing,
    /// Closed (cleanly or not); the socket is gone.
    Closed,
    /// Failed to open; the socket is gone.
    Failed,
}

/// One client WebSocket connection.
#[derive(Debug)]
struct Conn {
    /// The socket, while it lives.
    stream: Option<TcpStream>,
    /// Progress.
    state: State,
    /// The `Sec-WebSocket-Accept` value the server must answer with.
    accept: String,
    /// Bytes queued for the socket, from `out_pos` on.
    out: Vec<u8>,
    /// How much of `out` is written.
    out_pos: usize,
    /// Bytes read but not yet parsed.
    inb: Vec<u8>,
    /// Opcode of the fragmented message being put together, if any.
    frag_op: Option<u8>,
    /// Payload of the fragmented message so far.
    frag: Vec<u8>,
}

/// Why a connection ended: `Err(reason)` from the per-connection code.
type ConnResult<T> = Result<T, String>;

impl Conn {
    /// A connection that has not started.
    fn new() -> Conn {
        Conn {
            stream: None,
            state: State::Idle,
            accept: String::new(),
            out: Vec::new(),
            out_pos: 0,
            inb: Vec::new(),
            frag_op: None,
            frag: Vec::new(),
        }
    }

    /// Writes as much of `out` as the socket takes.
    fn flush(&mut self) -> ConnResult<()> {
        let Some(s) = self.stream.as_mut() else {
            return Ok(());
        };
        while self.out_pos < self.out.len() {
            match s.write(&self.out[self.out_pos..]) {
                Ok(0) => return Err("write returned 0".into()),
                Ok(n) => self.out_pos += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("write: {}", e.kind())),
            }
        }
        self.out.clear();
        self.out_pos = 0;
        Ok(())
    }

    /// Queues one masked frame and tries to write it.
    fn send(&mut self, opcode: u8, payload: &[u8], rng: &mut Rng) -> ConnResult<()> {
        encode_frame(&mut self.out, opcode, payload, rng.mask());
        self.flush()
    }

    /// TCP connect finished? `Ok(true)` once it has.
    fn connect_done(&mut self) -> ConnResult<bool> {
        let s = self.stream.as_mut().expect("connecting without a socket");
        match s.take_error() {
            Ok(Some(e)) | Err(e) => return Err(format!("connect: {}", e.kind())),
            Ok(None) => {}
        }
        match s.peer_addr() {
            Ok(_) => {
                let _ = s.set_nodelay(true);
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(false),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
            Err(e) => Err(format!("connect: {}", e.kind())),
        }
    }

    /// Reads everything available and acts on it: the handshake response,
    /// then frames. Complete data messages go to `on_msg`.
    fn read_ready(
        &mut self,
        scratch: &mut [u8],
        rng: &mut Rng,
        on_msg: &mut dyn FnMut(&[u8]),
    ) -> ConnResult<()> {
        loop {
            let Some(s) = self.stream.as_mut() else {
                return Ok(());
            };
            match s.read(scratch) {
                Ok(0) => {
                    return match self.state {
                        State::Closing => {
                            self.state = State::Closed;
                            Ok(())
                        }
                        State::Handshaking => Err("eof during handshake".into()),
                        _ => Err("eof without close frame".into()),
                    };
                }
                Ok(n) => {
                    self.inb.extend_from_slice(&scratch[..n]);
                    self.process(rng, on_msg)?;
                    // A short read drained the socket's receive queue: more
                    // data later raises a new edge, so skip the read that
                    // would only say WouldBlock (one syscall per event).
                    if self.state == State::Closed || n < scratch.len() {
                        return Ok(());
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("read: {}", e.kind())),
            }
        }
    }

    /// Parses what `inb` holds.
    fn process(&mut self, rng: &mut Rng, on_msg: &mut dyn FnMut(&[u8])) -> ConnResult<()> {
        if self.state == State::Handshaking {
            match check_handshake(&self.inb, &self.accept)? {
                None => return Ok(()),
                Some(n) => {
                    self.inb.drain(..n);
                    self.state = State::Open;
                }
            }
        }
        let mut pos = 0;
        let result = loop {
            let h = match parse_frame_header(&self.inb[pos..]) {
                Ok(Some(h)) => h,
                Ok(None) => break Ok(()),
                Err(e) => break Err(e.to_string()),
            };
            if self.inb.len() - pos < h.header_len + h.payload_len {
                break Ok(());
            }
            let start = pos + h.header_len;
            let end = start + h.payload_len;
            pos = end;
            if let Err(e) = self.on_frame(h, start, end, rng, on_msg) {
                break Err(e);
            }
            if self.state == State::Closed {
                break Ok(());
            }
        };
        self.inb.drain(..pos);
        result
    }

    /// Handles one complete frame whose payload is `inb[start..end]`.
    fn on_frame(
        &mut self,
        h: FrameHeader,
        start: usize,
        end: usize,
        rng: &mut Rng,
        on_msg: &mut dyn FnMut(&[u8]),
    ) -> ConnResult<()> {
        match h.opcode {
            OP_CONT => {
                let Some(op) = self.frag_op else {
                    return Err("continuation frame with no message".into());
                };
                self.frag.extend_from_slice(&self.inb[start..end]);
                if self.frag.len() > MAX_MESSAGE {
                    return Err("message too large".into());
                }
                if h.fin {
                    if op == OP_TEXT && std::str::from_utf8(&self.frag).is_err() {
                        return Err("text message is not UTF-8".into());
                    }
                    if self.state == State::Open {
                        on_msg(&self.frag);
                    }
                    self.frag.clear();
                    self.frag_op = None;
                }
            }
            OP_TEXT | OP_BINARY => {
                if self.frag_op.is_some() {
                    return Err("new message inside a fragmented one".into());
                }
                if h.fin {
                    let data = &self.inb[start..end];
                    if h.opcode == OP_TEXT && std::str::from_utf8(data).is_err() {
                        return Err("text message is not UTF-8".into());
                    }
                    if self.state == State::Open {
                        on_msg(data);
                    }
                } else {
                    self.frag_op = Some(h.opcode);
                    self.frag.extend_from_slice(&self.inb[start..end]);
                }
            }
            OP_CLOSE => {
                if h.payload_len == 1 {
                    return Err("close frame with a 1-byte payload".into());
                }
                if self.state == State::Open {
                    // Server-initiated: echo the status code, then we are done.
                    let code: Vec<u8> = self.inb[start..end.min(start + 2)].to_vec();
                    let _ = self.send(OP_CLOSE, &code, rng);
                    return Err(format!("server closed (code {})", close_code(&code)));
                }
                self.state = State::Closed;
            }
            OP_PING => {
                let payload = self.inb[start..end].to_vec();
                if self.state == State::Open {
                    self.send(OP_PONG, &payload, rng)?;
                }
            }
            OP_PONG => {}
            op => return Err(format!("unknown opcode {op:#x}")),
        }
        Ok(())
    }
}

/// The status code in a close payload, or 1005 (none given).
fn close_code(payload: &[u8]) -> u16 {
    if payload.len() >= 2 {
        u16::from_be_bytes([payload[0], payload[1]])
    } else {
        1005
    }
}

/// All connections, the poll they share, and the counts.
#[derive(Debug)]
struct Client {
    /// The one epoll instance every socket is registered with.
    poll: Poll,
    /// Readiness events; taken out while a batch is handled.
    events: Option<Events>,
    /// Every connection, indexed by its mio token.
    conns: Vec<Conn>,
    /// Server address.
    addr: SocketAddr,
    /// Request path of the upgrade (for all connections, or as shown in
    /// the summary when `paths` is set).
    path: String,
    /// Per-connection request paths, if not empty (indexed like `conns`).
    paths: Vec<String>,
    /// Keys and masks.
    rng: Rng,
    /// Read buffer shared by all connections.
    scratch: Vec<u8>,
    /// Next connection to start.
    next: usize,
    /// Handshakes in flight, in start order, with their start times.
    inflight: VecDeque<(usize, Instant)>,
    /// Most handshakes in flight.
    max_inflight: usize,
    /// Age at which an unfinished handshake fails.
    handshake_timeout: Duration,
    /// Connections whose handshake completed.
    established: usize,
    /// Connections that never opened.
    failed: usize,
    /// Open connections that died before we closed them.
    lost: usize,
    /// Closing connections that ended in an error instead of a close.
    close_errors: usize,
    /// Why connections failed or were lost, with counts.
    reasons: BTreeMap<String, usize>,
}

impl Client {
    /// A pool of `c.conns` connections to `path`, none started.
    fn new(c: &Common, path: &str) -> Result<Client, String> {
        Ok(Client {
            poll: Poll::new().map_err(|e| format!("epoll: {e}"))?,
            events: Some(Events::with_capacity(4096)),
            conns: (0..c.conns).map(|_| Conn::new()).collect(),
            addr: c.addr,
            path: path.to_owned(),
            paths: Vec::new(),
            rng: Rng::from_os(),
            scratch: vec![0; 64 * 1024],
            next: 0,
            inflight: VecDeque::new(),
            max_inflight: c.max_handshakes.max(1),
            handshake_timeout: Duration::from_secs(c.handshake_timeout_secs),
            established: 0,
            failed: 0,
            lost: 0,
            close_errors: 0,
            reasons: BTreeMap::new(),
        })
    }

    /// Opens every connection (bounded handshakes in flight); returns how
    /// long it took. Stops at `deadline`, failing whatever is unfinished.
    fn open_all(&mut self, deadline: Instant) -> Duration {
        let t0 = Instant::now();
        let n = self.conns.len();
        while self.established + self.failed < n {
            if Instant::now() >= deadline {
                for i in 0..n {
                    if matches!(
                        self.conns[i].state,
                        State::Idle | State::Connecting | State::Handshaking
                    ) {
                        self.fail(i, "open deadline passed".into());
                    }
                }
                break;
            }
            self.turn(Some(Duration::from_millis(50)), &mut |_, _| {});
        }
        t0.elapsed()
    }

    /// Prints how the opening went.
    fn print_open_summary(&self, took: Duration) {
        let secs = took.as_secs_f64();
        println!(
            "opened {}/{} WebSocket connections to {}{} in {secs:.2} s ({:.0}/s), {} failed",
            self.established,
            self.conns.len(),
            self.addr,
            self.path,
            self.established as f64 / secs.max(1e-9),
            self.failed
        );
    }

    /// Prints the failure reasons, if any.
    fn print_failures(&self) {
        for (why, n) in &self.reasons {
            println!("  failure: {n} x {why}");
        }
    }

    /// Indices of the open connections.
    fn open_indices(&self) -> Vec<usize> {
        (0..self.conns.len())
            .filter(|&i| self.conns[i].state == State::Open)
            .collect()
    }

    /// How many connections are open.
    fn open_count(&self) -> usize {
        self.conns.iter().filter(|c| c.state == State::Open).count()
    }

    /// Starts connects until `max_inflight` handshakes are under way.
    fn start_connects(&mut self) {
        while self.inflight.len() < self.max_inflight && self.next < self.conns.len() {
            let i = self.next;
            self.next += 1;
            let mut key = [0u8; 16];
            self.rng.fill(&mut key);
            let key = base64_encode(&key);
            let path = self.paths.get(i).unwrap_or(&self.path);
            let conn = &mut self.conns[i];
            conn.accept = accept_for(&key);
            conn.out.extend_from_slice(
                format!(
                    "GET {path} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                     Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n",
                    self.addr
                )
                .as_bytes(),
            );
            conn.state = State::Connecting;
            self.inflight.push_back((i, Instant::now()));
            let registry = self.poll.registry();
            let stream = TcpStream::connect(self.addr)
                .map_err(|e| format!("connect: {}", e.kind()))
                .and_then(|mut s| {
                    registry
                        .register(&mut s, Token(i), Interest::READABLE | Interest::WRITABLE)
                        .map_err(|e| format!("epoll register: {e}"))?;
                    Ok(s)
                });
            match stream {
                Ok(s) => self.conns[i].stream = Some(s),
                Err(reason) => self.fail(i, reason),
            }
        }
    }

    /// Ends connection `i` with `reason`, counting it as failed (not yet
    /// open), lost (was open) or an unclean close (was closing).
    fn fail(&mut self, i: usize, reason: String) {
        let reason = match self.conns[i].state {
            State::Idle | State::Connecting | State::Handshaking => {
                self.failed += 1;
                self.drop_inflight(i);
                reason
            }
            State::Open => {
                self.lost += 1;
                reason
            }
            State::Closing => {
                self.close_errors += 1;
                format!("while closing: {reason}")
            }
            State::Closed | State::Failed => return,
        };
        let conn = &mut self.conns[i];
        conn.state = if conn.state == State::Closing {
            State::Closed
        } else {
            State::Failed
        };
        self.finish_closed(i);
        *self.reasons.entry(reason).or_insert(0) += 1;
    }

    /// Drops the socket of a connection that closed normally.
    fn finish_closed(&mut self, i: usize) {
        let conn = &mut self.conns[i];
        if let Some(mut s) = conn.stream.take() {
            let _ = self.poll.registry().deregister(&mut s);
        }
        conn.out = Vec::new();
        conn.inb = Vec::new();
    }

    /// Queues a frame on open connection `i`; a write error ends it.
    fn send(&mut self, i: usize, opcode: u8, payload: &[u8]) {
        if self.conns[i].state != State::Open {
            return;
        }
        if let Err(e) = self.conns[i].send(opcode, payload, &mut self.rng) {
            self.fail(i, e);
        }
    }

    /// One loop turn: start connects, wait up to `timeout` for readiness,
    /// handle it. Every data message received goes to `on_msg(conn, payload)`.
    fn turn(&mut self, timeout: Option<Duration>, on_msg: &mut dyn FnMut(usize, &[u8])) {
        self.start_connects();
        let mut events = self.events.take().expect("events in use");
        match self.poll.poll(&mut events, timeout) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => panic!("epoll_wait: {e}"),
        }
        for ev in events.iter() {
            self.on_event(ev.token().0, on_msg);
        }
        self.events = Some(events);
        self.expire_handshakes();
    }

    /// Handles readiness on connection `i`.
    fn on_event(&mut self, i: usize, on_msg: &mut dyn FnMut(usize, &[u8])) {
        if self.conns[i].state == State::Connecting {
            match self.conns[i].connect_done() {
                Ok(false) => return,
                Ok(true) => self.conns[i].state = State::Handshaking,
                Err(e) => return self.fail(i, e),
            }
        }
        let conn = &mut self.conns[i];
        let before = conn.state;
        if !matches!(before, State::Handshaking | State::Open | State::Closing) {
            return;
        }
        let res = conn.flush().and_then(|()| {
            conn.read_ready(&mut self.scratch, &mut self.rng, &mut |data| {
                on_msg(i, data)
            })
        });
        if before == State::Handshaking && self.conns[i].state != State::Handshaking {
            self.established += 1;
            self.drop_inflight(i);
        }
        match res {
            Err(e) => self.fail(i, e),
            Ok(()) if self.conns[i].state == State::Closed => self.finish_closed(i),
            Ok(()) => {}
        }
    }

    /// Forgets connection `i` from the in-flight handshakes.
    fn drop_inflight(&mut self, i: usize) {
        if let Some(p) = self.inflight.iter().position(|&(j, _)| j == i) {
            self.inflight.remove(p);
        }
    }

    /// Fails handshakes older than the timeout; drops finished ones from
    /// the front of the queue.
    fn expire_handshakes(&mut self) {
        let now = Instant::now();
        while let Some(&(i, t)) = self.inflight.front() {
            match self.conns[i].state {
                State::Connecting | State::Handshaking => {
                    if now.duration_since(t) < self.handshake_timeout {
                        break;
                    }
                    self.inflight.pop_front();
                    self.fail(i, "handshake timeout".into());
                }
                _ => {
                    self.inflight.pop_front();
                }
            }
        }
    }

    /// Sends a close frame on every open connection and waits (until
    /// `deadline`) for the server's; returns (clean, unclean) closes.
    fn close_all(&mut self, deadline: Instant) -> (usize, usize) {
        let mut closing = 0;
        for i in 0..self.conns.len() {
            if self.conns[i].state != State::Open {
                continue;
            }
            let code = 1000u16.to_be_bytes();
            match self.conns[i].send(OP_CLOSE, &code, &mut self.rng) {
                Ok(()) => {
                    self.conns[i].state = State::Closing;
                    closing += 1;
                }
                Err(e) => {
                    self.fail(i, e);
                }
            }
        }
        let errors_before = self.close_errors;
        let pending = |c: &Client| c.conns.iter().filter(|c| c.state == State::Closing).count();
        while pending(self) > 0 && Instant::now() < deadline {
            self.turn(Some(Duration::from_millis(50)), &mut |_, _| {});
        }
        let mut timed_out = 0;
        for i in 0..self.conns.len() {
            if self.conns[i].state == State::Closing {
                self.conns[i].state = State::Closed;
                self.finish_closed(i);
                timed_out += 1;
            }
        }
        if timed_out > 0 {
            *self
                .reasons
                .entry("while closing: no close frame before the deadline".into())
                .or_insert(0) += timed_out;
        }
        let unclean = timed_out + (self.close_errors - errors_before);
        (closing - unclean, unclean)
    }
}

// ---------------------------------------------------------------------------
// RFC 6455 framing

/// Continuation frame.
const OP_CONT: u8 = 0x0;
/// Text frame.
const OP_TEXT: u8 = 0x1;
/// Binary frame.
const OP_BINARY: u8 = 0x2;
/// Close frame.
const OP_CLOSE: u8 = 0x8;
/// Ping frame.
const OP_PING: u8 = 0x9;
/// Pong frame.
const OP_PONG: u8 = 0xA;
/// Largest message (or frame) accepted from the server.
const MAX_MESSAGE: usize = 16 << 20;

/// Appends one final (FIN) frame, masked with `mask`, to `out`.
fn encode_frame(out: &mut Vec<u8>, opcode: u8, payload: &[u8], mask: [u8; 4]) {
    out.push(0x80 | (opcode & 0x0f));
    let len = payload.len();
    if len < 126 {
        out.push(0x80 | len as u8);
    } else if len <= 0xffff {
        out.push(0x80 | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(k, b)| b ^ mask[k & 3]));
}

/// A parsed frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FrameHeader {
    /// Final fragment.
    fin: bool,
    /// Opcode.
    opcode: u8,
    /// Header bytes (2 to 10; servers never mask).
    header_len: usize,
    /// Payload bytes.
    payload_len: usize,
}

/// Parses a server frame's header from the start of `b`: `Ok(None)` if more
/// bytes are needed, `Err` for a frame a client must reject.
fn parse_frame_header(b: &[u8]) -> Result<Option<FrameHeader>, &'static str> {
    if b.len() < 2 {
        return Ok(None);
    }
    let fin = b[0] & 0x80 != 0;
    if b[0] & 0x70 != 0 {
        return Err("reserved bits set (no extension was negotiated)");
    }
    let opcode = b[0] & 0x0f;
    if b[1] & 0x80 != 0 {
        return Err("masked frame from the server");
    }
    let (header_len, payload_len) = match b[1] & 0x7f {
        126 => {
            if b.len() < 4 {
                return Ok(None);
            }
            (4, u16::from_be_bytes([b[2], b[3]]) as u64)
        }
        127 => {
            if b.len() < 10 {
                return Ok(None);
            }
            let n = u64::from_be_bytes(b[2..10].try_into().expect("8 bytes"));
            if n >> 63 != 0 {
                return Err("64-bit length with the top bit set");
            }
            (10, n)
        }
        n => (2, n as u64),
    };
    if opcode >= 0x8 && (payload_len > 125 || !fin) {
        return Err("control frame too long or fragmented");
    }
    if payload_len > MAX_MESSAGE as u64 {
        return Err("frame too large");
    }
    Ok(Some(FrameHeader {
        fin,
        opcode,
        header_len,
        payload_len: payload_len as usize,
    }))
}

/// Checks the server's handshake response at the start of `b`: `Ok(None)`
/// if incomplete, `Ok(Some(head_len))` if it is a valid `101` upgrade.
fn check_handshake(b: &[u8], accept: &str) -> ConnResult<Option<usize>> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut resp = httparse::Response::new(&mut headers);
    let n = match resp.parse(b) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if b.len() > 16 * 1024 => {
            return Err("handshake response head too long".into())
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(format!("bad handshake response: {e}")),
    };
    if resp.code != Some(101) {
        return Err(format!("handshake status {}", resp.code.unwrap_or(0)));
    }
    let header = |name: &str| {
        resp.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).trim().to_owned())
    };
    if !header("upgrade").is_some_and(|v| v.eq_ignore_ascii_case("websocket")) {
        return Err("101 without Upgrade: websocket".into());
    }
    if !header("connection").is_some_and(|v| {
        v.split(',')
            .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
    }) {
        return Err("101 without Connection: upgrade".into());
    }
    if header("sec-websocket-accept").as_deref() != Some(accept) {
        return Err("wrong Sec-WebSocket-Accept".into());
    }
    if header("sec-websocket-extensions").is_some() || header("sec-websocket-protocol").is_some() {
        return Err("server chose an extension or subprotocol we did not offer".into());
    }
    Ok(Some(n))
}

/// The `Sec-WebSocket-Accept` a server must send for `key`.
fn accept_for(key: &str) -> String {
    const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    base64_encode(&sha1(format!("{key}{GUID}").as_bytes()))
}

/// Standard base64 with padding.
fn base64_encode(input: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b1 = chunk.get(1).copied().unwrap_or(0);
        let b2 = chunk.get(2).copied().unwrap_or(0);
        let n = (u32::from(chunk[0]) << 16) | (u32::from(b1) << 8) | u32::from(b2);
        s.push(T[(n >> 18) as usize & 63] as char);
        s.push(T[(n >> 12) as usize & 63] as char);
        s.push(if chunk.len() > 1 {
            T[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        s.push(if chunk.len() > 2 {
            T[n as usize & 63] as char
        } else {
            '='
        });
    }
    s
}

/// SHA-1 (FIPS 180-4), for the handshake's accept value only.
fn sha1(data: &[u8]) -> [u8; 20] {
    let mut h: [u32; 5] = [
        0x6745_2301,
        0xEFCD_AB89,
        0x98BA_DCFE,
        0x1032_5476,
        0xC3D2_E1F0,
    ];
    let mut msg = data.to_vec();
    let bits = (data.len() as u64).wrapping_mul(8);
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&bits.to_be_bytes());
    for block in msg.chunks_exact(64) {
        let mut w = [0u32; 80];
        for (wi, word) in w.iter_mut().zip(block.chunks_exact(4)) {
            *wi = u32::from_be_bytes(word.try_into().expect("4 bytes"));
        }
        for t in 16..80 {
            w[t] = (w[t - 3] ^ w[t - 8] ^ w[t - 14] ^ w[t - 16]).rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = h;
        for (t, &wt) in w.iter().enumerate() {
            let (f, k) = match t {
                0..=19 => ((b & c) | (!b & d), 0x5A82_7999),
                20..=39 => (b ^ c ^ d, 0x6ED9_EBA1),
                40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1B_BCDC),
                _ => (b ^ c ^ d, 0xCA62_C1D6),
            };
            let tmp = a
                .rotate_left(5)
                .wrapping_add(f)
                .wrapping_add(e)
                .wrapping_add(k)
                .wrapping_add(wt);
            e = d;
            d = c;
            c = b.rotate_left(30);
            b = a;
            a = tmp;
        }
        for (hi, v) in h.iter_mut().zip([a, b, c, d, e]) {
            *hi = hi.wrapping_add(v);
        }
    }
    let mut out = [0u8; 20];
    for (o, v) in out.chunks_exact_mut(4).zip(h) {
        o.copy_from_slice(&v.to_be_bytes());
    }
    out
}

/// A small PRNG (splitmix64) seeded from the OS, for handshake keys and
/// frame masks. Masks only need to be unpredictable to the network path,
/// not cryptographically strong, for a loopback benchmark.
#[derive(Debug)]
struct Rng(u64);

impl Rng {
    /// Seeded from `/dev/urandom`, mixed with the clock.
    fn from_os() -> Rng {
        let mut seed = [0u8; 8];
        let _ = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut seed));
        let clock = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Rng(u64::from_le_bytes(seed) ^ clock ^ u64::from(std::process::id()) << 32)
    }

    /// Next 64 random bits.
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Fills `buf` with random bytes.
    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let r = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&r[..chunk.len()]);
        }
    }

    /// A fresh frame mask.
    fn mask(&mut self) -> [u8; 4] {
        (self.next_u64() as u32).to_le_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SHA-1 against the FIPS 180 examples.
    #[test]
    fn sha1_vectors() {
        let hex = |b: [u8; 20]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        assert_eq!(hex(sha1(b"")), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
        assert_eq!(
            hex(sha1(b"abc")),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(
            hex(sha1(
                b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"
            )),
            "84983e441c3bd26ebaae4aa1f95129e5e54670f1"
        );
    }

    /// base64 against RFC 4648 section 10.
    #[test]
    fn base64_vectors() {
        assert_eq!(base64_encode(b""), "");
        assert_eq!(base64_encode(b"f"), "Zg==");
        assert_eq!(base64_encode(b"fo"), "Zm8=");
        assert_eq!(base64_encode(b"foo"), "Zm9v");
        assert_eq!(base64_encode(b"foobar"), "Zm9vYmFy");
    }

    /// The accept value of RFC 6455 section 1.3.
    #[test]
    fn rfc6455_accept_example() {
        assert_eq!(
            accept_for("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    /// Unmasks a client frame (as a server would) for the tests.
    fn unmask(frame: &[u8]) -> (u8, Vec<u8>) {
        assert!(frame[1] & 0x80 != 0, "client frames are masked");
        let (hl, len) = match frame[1] & 0x7f {
            126 => (4, u16::from_be_bytes([frame[2], frame[3]]) as usize),
            127 => (
                10,
                u64::from_be_bytes(frame[2..10].try_into().unwrap()) as usize,
            ),
            n => (2, n as usize),
        };
        let mask = &frame[hl..hl + 4];
        let p = &frame[hl + 4..];
        assert_eq!(p.len(), len);
        (
            frame[0] & 0x0f,
            p.iter().enumerate().map(|(k, b)| b ^ mask[k & 3]).collect(),
        )
    }

    /// Client frames in all three length forms unmask to the payload.
    #[test]
    fn encode_all_length_forms() {
        let mut rng = Rng::from_os();
        for len in [0usize, 5, 125, 126, 200, 65535, 65536, 70000] {
            let payload: Vec<u8> = (0..len).map(|k| k as u8).collect();
            let mut out = Vec::new();
            encode_frame(&mut out, OP_BINARY, &payload, rng.mask());
            assert_eq!(out[0], 0x82);
            let (op, p) = unmask(&out);
            assert_eq!(op, OP_BINARY);
            assert_eq!(p, payload, "len {len}");
        }
    }

    /// A server (unmasked) frame.
    fn server_frame(fin: bool, op: u8, payload: &[u8]) -> Vec<u8> {
        let mut v = vec![(if fin { 0x80 } else { 0 }) | op];
        let n = payload.len();
        if n < 126 {
            v.push(n as u8);
        } else if n <= 0xffff {
            v.push(126);
            v.extend_from_slice(&(n as u16).to_be_bytes());
        } else {
            v.push(127);
            v.extend_from_slice(&(n as u64).to_be_bytes());
        }
        v.extend_from_slice(payload);
        v
    }

    /// Feeds `bytes` to an open connection `step` bytes at a time.
    fn feed(bytes: &[u8], step: usize) -> (Vec<Vec<u8>>, Conn) {
        let mut c = Conn::new();
        c.state = State::Open;
        let mut rng = Rng::from_os();
        let mut got = Vec::new();
        for piece in bytes.chunks(step) {
            c.inb.extend_from_slice(piece);
            c.process(&mut rng, &mut |d| got.push(d.to_vec())).unwrap();
        }
        (got, c)
    }

    /// Server frames split at every size, fragmented, with a ping inside.
    #[test]
    fn parse_split_and_fragmented() {
        let big: Vec<u8> = (0..70_000).map(|k| b'a' + (k % 26) as u8).collect();
        let mut stream = Vec::new();
        stream.extend(server_frame(true, OP_TEXT, b"hello"));
        stream.extend(server_frame(true, OP_BINARY, &[7u8; 300]));
        stream.extend(server_frame(true, OP_TEXT, &big));
        stream.extend(server_frame(false, OP_TEXT, b"frag"));
        stream.extend(server_frame(true, OP_PING, b"p")); // control in between
        stream.extend(server_frame(true, OP_CONT, b"mented"));
        for step in [1, 2, 3, 7, 64, 1000, 1 << 20] {
            let (got, c) = feed(&stream, step);
            assert_eq!(got.len(), 4, "step {step}");
            assert_eq!(got[0], b"hello");
            assert_eq!(got[1], vec![7u8; 300]);
            assert_eq!(got[2], big);
            assert_eq!(got[3], b"fragmented");
            assert!(c.inb.is_empty());
            // The ping was answered with a masked pong carrying its payload.
            let (op, p) = unmask(&c.out);
            assert_eq!((op, p.as_slice()), (OP_PONG, &b"p"[..]));
        }
    }

    /// Frames a client must refuse, and incomplete headers.
    #[test]
    fn rejects_bad_frames() {
        assert!(parse_frame_header(&[0x81, 0x85]).is_err()); // masked
        assert!(parse_frame_header(&[0xC1, 0x01]).is_err()); // RSV1
        assert!(parse_frame_header(&[0x09, 0x00]).is_err()); // fragmented ping
        assert!(parse_frame_header(&[0x89, 126, 0, 200]).is_err()); // long ping
        assert_eq!(parse_frame_header(&[0x81]), Ok(None));
        assert_eq!(parse_frame_header(&[0x81, 126, 1]), Ok(None));
        assert_eq!(parse_frame_header(&[0x82, 127, 0, 0, 0]), Ok(None));
    }

    /// The 101 response is checked and its length returned.
    #[test]
    fn handshake_checks() {
        let accept = accept_for("dGhlIHNhbXBsZSBub25jZQ==");
        let good = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
        );
        let mut with_frame = good.clone().into_bytes();
        with_frame.extend(server_frame(true, OP_TEXT, b"x"));
        assert_eq!(check_handshake(&with_frame, &accept), Ok(Some(good.len())));
        assert_eq!(check_handshake(&good.as_bytes()[..20], &accept), Ok(None));
        assert!(check_handshake(good.as_bytes(), "nope").is_err());
        assert!(check_handshake(b"HTTP/1.1 404 Not Found\r\n\r\n", &accept).is_err());
    }

    /// A server close is answered with a masked close carrying its code,
    /// and ends the connection; in `Closing` it is the clean end.
    #[test]
    fn close_frames() {
        let mut rng = Rng::from_os();
        let mut c = Conn::new();
        c.state = State::Open;
        c.inb = server_frame(true, OP_CLOSE, &1001u16.to_be_bytes());
        let err = c.process(&mut rng, &mut |_| {}).unwrap_err();
        assert!(err.contains("1001"), "{err}");
        let (op, p) = unmask(&c.out);
        assert_eq!((op, p.as_slice()), (OP_CLOSE, &1001u16.to_be_bytes()[..]));

        let mut c = Conn::new();
        c.state = State::Closing;
        c.inb = server_frame(true, OP_TEXT, b"late");
        c.inb
            .extend(server_frame(true, OP_CLOSE, &1000u16.to_be_bytes()));
        let mut got = 0;
        c.process(&mut rng, &mut |_| got += 1).unwrap();
        assert_eq!((c.state, got), (State::Closed, 0));
    }
}
