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
//! `chat` puts client i in room `load-(i % rooms)` as nick `u<i>`; the first
//! `senders` clients also send `rate` messages a second each, paced by the
//! poll timeout, whose text carries the send time (`t=<ns> s=<i> n=<seq>`,
//! Unix nanoseconds read from the monotonic clock). Every frame is parsed
//! (serde_json, borrowing); each client checks that the ids of its room
//! increase by one (a catch-up `history` continues the check; a trimmed one
//! restarts it), and messages sent in the measured window give delivery
//! latencies. After the window, a drain waits until each of them reached
//! every client still connected in its room, so the delivery check is exact.
//!
//! Connections are opened at a bounded rate (`--max-handshakes` in flight at
//! once) so the server's listen backlog is not overrun. Nothing is retried:
//! a connection that fails is counted, with its reason, and reported. Every
//! phase has a deadline; the program prints readable lines, then one line of
//! JSON, and exits non-zero if a connection failed (for `chat`: more than 1%
//! failed or were lost) or a message is missing or out of order.

use std::borrow::Cow;
use std::collections::{BTreeMap, VecDeque};
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand};
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use serde::{Deserialize, Serialize};

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

/// `chat` options (named as in `scripts/chat-load.py` where they exist).
#[derive(Debug, Args)]
struct ChatArgs {
    /// Server address.
    #[arg(long)]
    addr: SocketAddr,
    /// WebSocket clients; client i joins room i % ROOMS as nick NICK_PREFIX + i.
    #[arg(long, default_value_t = 2000)]
    clients: usize,
    /// Rooms: ROOM_PREFIX + 0, ROOM_PREFIX + 1, ...
    #[arg(long, default_value_t = 4)]
    rooms: usize,
    /// Clients that also send: the first SENDERS, so spread over the rooms.
    #[arg(long, default_value_t = 40)]
    senders: usize,
    /// Messages per second each sender sends (evenly paced).
    #[arg(long, default_value_t = 2.0)]
    rate: f64,
    /// Measured seconds. Latencies, acks and the delivery check count the
    /// messages sent in this window; the rates count what arrived in it.
    #[arg(long, default_value_t = 20.0)]
    seconds: f64,
    /// Seconds of sending before the measured window.
    #[arg(long, default_value_t = 3.0)]
    warmup: f64,
    /// Most handshakes (TCP connect + upgrade) in flight at once.
    #[arg(long, default_value_t = 500, alias = "connect-concurrency")]
    max_handshakes: usize,
    /// A handshake not done after this many seconds fails.
    #[arg(long, default_value_t = 10)]
    handshake_timeout_secs: u64,
    /// Deadline for opening every connection and receiving its first
    /// history, seconds.
    #[arg(long, default_value_t = 60)]
    connect_timeout_secs: u64,
    /// After the window, how long to wait for every window message to reach
    /// every client of its room, and for every acknowledgement, seconds.
    #[arg(long, default_value_t = 10)]
    drain_secs: u64,
    /// The server's process id, for its CPU time in the measured window.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Room name prefix.
    #[arg(long, default_value = "load-")]
    room_prefix: String,
    /// Nickname prefix.
    #[arg(long, default_value = "u")]
    nick_prefix: String,
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
// chat

/// Frames that start like this are presence frames (the server writes
/// `type` first in them); they are counted without being parsed.
const PRESENCE_PREFIX: &[u8] = br#"{"type":"presence""#;

/// A send more than this late (behind its timer) is counted as late.
const LATE_SEND: Duration = Duration::from_millis(100);

/// Golden-ratio fraction: spreads the senders' first sends over one interval.
const PHI_FRAC: f64 = 0.618_033_988_749_895;

/// How often the loop checks the conditions that cost a pass over all clients.
const CHECK_EVERY: Duration = Duration::from_millis(10);

/// Most examples of gaps and ordering violations kept for the report.
const MAX_EXAMPLES: usize = 10;

/// Wall-clock nanoseconds read from the monotonic clock: the Unix time at the
/// start plus the `Instant` time since. Every stamp of one run is on one
/// monotonic scale that still agrees with other clients' `time.time_ns()`.
#[derive(Debug, Clone, Copy)]
struct Clock {
    /// When the run started.
    start: Instant,
    /// The Unix time then, nanoseconds.
    start_unix_ns: u64,
}

impl Clock {
    /// The clock, started now.
    fn new() -> Clock {
        let start_unix_ns = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Clock {
            start: Instant::now(),
            start_unix_ns,
        }
    }

    /// `t` in nanoseconds since the Unix epoch.
    fn at(&self, t: Instant) -> u64 {
        self.start_unix_ns + t.saturating_duration_since(self.start).as_nanos() as u64
    }

    /// Now, in nanoseconds since the Unix epoch.
    fn now(&self) -> u64 {
        self.at(Instant::now())
    }
}

/// A JSON string: borrowed from the frame, or owned if it had escapes.
#[derive(Debug)]
struct JsonStr<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for JsonStr<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        /// Takes the borrowed form when the deserializer offers it.
        #[derive(Debug)]
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for V<'a> {
            type Value = JsonStr<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<JsonStr<'a>, E> {
                Ok(JsonStr(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<JsonStr<'a>, E> {
                Ok(JsonStr(Cow::Owned(s.to_owned())))
            }
        }
        d.deserialize_str(V(std::marker::PhantomData))
    }
}

/// A message inside a `history` frame (its other fields are skipped).
#[derive(Debug, Deserialize)]
struct HistoryMessage<'a> {
    /// Its id in the room.
    id: u64,
    /// Its text.
    #[serde(borrow)]
    text: JsonStr<'a>,
}

/// The fields of a server frame this client reads (`room`, `nick`, `ts`,
/// `people`, `message` ... are skipped without being stored).
#[derive(Debug, Deserialize)]
struct ChatFrame<'a> {
    /// history, message, presence, ack or error.
    #[serde(rename = "type", borrow)]
    kind: JsonStr<'a>,
    /// A message's id (or an ack's).
    #[serde(default)]
    id: Option<u64>,
    /// A message's text.
    #[serde(default, borrow)]
    text: Option<JsonStr<'a>>,
    /// The `ref` an ack or error echoes.
    #[serde(rename = "ref", default, borrow)]
    reference: Option<JsonStr<'a>>,
    /// An error's code.
    #[serde(default, borrow)]
    code: Option<JsonStr<'a>>,
    /// A history's messages.
    #[serde(default, borrow)]
    messages: Vec<HistoryMessage<'a>>,
    /// A history that starts after a loss.
    #[serde(default)]
    trimmed: bool,
}

/// The send time `t` in a text `t=<ns> s=<sender> n=<seq>`.
fn sent_at(text: &str) -> Option<u64> {
    let rest = text.strip_prefix("t=")?;
    let end = rest.find(' ').unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// One client's view of its room.
#[derive(Debug, Clone)]
struct Member {
    /// Its room's index.
    room: usize,
    /// It has had its first history (it is connected).
    joined: bool,
    /// The last id it has seen (none before the first one).
    last: Option<u64>,
    /// Messages sent in the window that it received.
    window_delivered: u64,
}

/// One sender's messages: send time and whether it was answered, by `seq - 1`.
#[derive(Debug, Default)]
struct Outbox {
    /// (send time ns, acked or refused)
    says: Vec<(u64, bool)>,
    /// Says not answered yet.
    unanswered: u64,
}

/// Raw counts (most of them for the measured window, as the names say).
#[derive(Debug, Default)]
struct ChatStats {
    /// Says sent in the window.
    sent: u64,
    /// Says sent in the whole run.
    sent_total: u64,
    /// Acks of says sent in the window.
    acks: u64,
    /// Acks, whole run.
    acks_total: u64,
    /// Acks of window says, by room.
    acked_by_room: Vec<u64>,
    /// Deliveries of messages sent in the window (each one has a latency).
    window_deliveries: u64,
    /// Message deliveries received in the window, whenever sent.
    received_in_window: u64,
    /// Delivery latencies of messages sent in the window, ns.
    latency_ns: Vec<u64>,
    /// Ack latencies of says sent in the window, ns.
    ack_latency_ns: Vec<u64>,
    /// Errors received in the window, by code.
    errors: BTreeMap<String, u64>,
    /// Errors in the whole run, by code.
    errors_total: BTreeMap<String, u64>,
    /// Presence frames received in the window.
    presence: u64,
    /// Presence frames, whole run.
    presence_total: u64,
    /// Catch-up histories received in the window.
    catchups: u64,
    /// Catch-up histories, whole run.
    catchups_total: u64,
    /// Messages in catch-up histories received in the window.
    catchup_messages: u64,
    /// Catch-up histories marked trimmed (whole run).
    trimmed: u64,
    /// Ids that did not increase (whole run).
    order_violations: u64,
    /// Ids that skipped ahead outside a trimmed history (whole run).
    gaps: u64,
    /// Ids skipped over by those gaps.
    missing: u64,
    /// Examples of gaps and violations.
    examples: Vec<String>,
    /// Frames that are not the JSON expected.
    bad_frames: u64,
    /// The first of them.
    bad_frame_example: Option<String>,
    /// Acks or errors whose ref is not one of ours, or answered twice.
    unexpected_replies: u64,
    /// Window says sent more than `LATE_SEND` behind their timer.
    sends_late: u64,
    /// The latest a window say was sent behind its timer.
    send_lag_max: Duration,
}

/// The chat load's state, fed by the event loop.
#[derive(Debug)]
struct ChatLoad {
    /// Time stamps.
    clock: Clock,
    /// The measured window (send times), ns since the Unix epoch.
    window: Option<(u64, u64)>,
    /// Every client, indexed like the connections.
    members: Vec<Member>,
    /// One per sender (the first clients).
    outboxes: Vec<Outbox>,
    /// Clients that had their first history.
    joined: usize,
    /// Connections to end (their first frame was not a history).
    to_fail: Vec<(usize, String)>,
    /// Counts.
    st: ChatStats,
}

impl ChatLoad {
    /// `clients` clients in `rooms` rooms, `senders` of them sending.
    fn new(clients: usize, rooms: usize, senders: usize) -> ChatLoad {
        ChatLoad {
            clock: Clock::new(),
            window: None,
            members: (0..clients)
                .map(|i| Member {
                    room: i % rooms,
                    joined: false,
                    last: None,
                    window_delivered: 0,
                })
                .collect(),
            outboxes: (0..senders).map(|_| Outbox::default()).collect(),
            joined: 0,
            to_fail: Vec::new(),
            st: ChatStats {
                acked_by_room: vec![0; rooms],
                ..ChatStats::default()
            },
        }
    }

    /// Whether time `t` (ns) is in the measured window.
    fn in_window(&self, t: u64) -> bool {
        self.window.is_some_and(|(from, to)| from <= t && t < to)
    }

    /// Handles one text frame from client `i`'s connection.
    fn on_frame(&mut self, i: usize, data: &[u8]) {
        let now = self.clock.now();
        let in_window = self.in_window(now);
        if self.members[i].joined && data.starts_with(PRESENCE_PREFIX) {
            self.st.presence_total += 1;
            self.st.presence += u64::from(in_window);
            return;
        }
        let frame: ChatFrame<'_> = match serde_json::from_slice(data) {
            Ok(f) => f,
            Err(e) => return self.bad_frame(i, &e.to_string(), data),
        };
        let kind: &str = &frame.kind.0;
        if !self.members[i].joined {
            if kind == "history" {
                let m = &mut self.members[i];
                m.joined = true;
                m.last = frame.messages.last().map(|h| h.id);
                self.joined += 1;
            } else {
                self.to_fail
                    .push((i, format!("first frame is {kind:?}, not history")));
            }
            return;
        }
        match kind {
            "message" => match (frame.id, &frame.text) {
                (Some(id), Some(text)) => self.message(i, id, &text.0, now, false),
                _ => self.bad_frame(i, "message without id or text", data),
            },
            "history" => {
                self.st.catchups_total += 1;
                self.st.catchups += u64::from(in_window);
                if frame.trimmed {
                    self.st.trimmed += 1;
                    if let Some(first) = frame.messages.first() {
                        // The server says it lost these: not a gap of ours.
                        self.members[i].last = Some(first.id.saturating_sub(1));
                    }
                }
                for h in &frame.messages {
                    self.message(i, h.id, &h.text.0, now, true);
                }
            }
            "ack" => {
                if let Some(sent) = self.answer(i, frame.reference.as_ref()) {
                    self.st.acks_total += 1;
                    if self.in_window(sent) {
                        self.st.acks += 1;
                        self.st.acked_by_room[self.members[i].room] += 1;
                        self.st.ack_latency_ns.push(now.saturating_sub(sent));
                    }
                }
            }
            "error" => {
                let code = frame.code.as_ref().map_or("?", |c| &c.0).to_owned();
                *self.st.errors_total.entry(code.clone()).or_insert(0) += 1;
                if in_window {
                    *self.st.errors.entry(code).or_insert(0) += 1;
                }
                if frame.reference.is_some() {
                    self.answer(i, frame.reference.as_ref());
                }
            }
            "presence" => {
                self.st.presence_total += 1;
                self.st.presence += u64::from(in_window);
            }
            _ => self.bad_frame(i, "unknown type", data),
        }
    }

    /// Marks client `i`'s say `reference` answered; its send time, or
    /// `None` (counted) for a ref that is not an unanswered say of `i`'s.
    fn answer(&mut self, i: usize, reference: Option<&JsonStr<'_>>) -> Option<u64> {
        let say = reference
            .and_then(|r| r.0.parse::<usize>().ok())
            .and_then(|seq| seq.checked_sub(1))
            .and_then(|k| self.outboxes.get_mut(i)?.says.get_mut(k));
        match say {
            Some((sent, answered)) if !*answered => {
                *answered = true;
                let sent = *sent;
                self.outboxes[i].unanswered -= 1;
                Some(sent)
            }
            _ => {
                self.st.unexpected_replies += 1;
                None
            }
        }
    }

    /// One message (live or from a catch-up history) reaching client `i`.
    fn message(&mut self, i: usize, id: u64, text: &str, now: u64, catchup: bool) {
        let in_window = self.in_window(now);
        let m = &mut self.members[i];
        if let Some(last) = m.last {
            if id <= last || id != last + 1 {
                let what = if id <= last {
                    self.st.order_violations += 1;
                    "not after"
                } else {
                    self.st.gaps += 1;
                    self.st.missing += id - last - 1;
                    "skips ahead of"
                };
                if self.st.examples.len() < MAX_EXAMPLES {
                    self.st.examples.push(format!(
                        "client {i} (room {}): id {id} {what} {last}{}",
                        m.room,
                        if catchup {
                            " (in a catch-up history)"
                        } else {
                            ""
                        }
                    ));
                }
                if id <= last {
                    return;
                }
            }
        }
        m.last = Some(id);
        if in_window {
            self.st.received_in_window += 1;
            self.st.catchup_messages += u64::from(catchup);
        }
        if let Some(t) = sent_at(text) {
            if self.in_window(t) {
                self.members[i].window_delivered += 1;
                self.st.window_deliveries += 1;
                self.st.latency_ns.push(now.saturating_sub(t));
            }
        }
    }

    /// Counts a frame that is not what the protocol says.
    fn bad_frame(&mut self, i: usize, why: &str, data: &[u8]) {
        self.st.bad_frames += 1;
        if self.st.bad_frame_example.is_none() {
            let head = String::from_utf8_lossy(&data[..data.len().min(200)]);
            self.st.bad_frame_example = Some(format!("client {i}: {why}: {head}"));
        }
    }

    /// Sends sender `i`'s next say, due at `due`.
    fn say(&mut self, client: &mut Client, i: usize, due: Instant) {
        if client.conns[i].state != State::Open {
            return;
        }
        let now = Instant::now();
        let t = self.clock.at(now);
        let in_window = self.in_window(t);
        if in_window {
            let lag = now.saturating_duration_since(due);
            self.st.sends_late += u64::from(lag > LATE_SEND);
            self.st.send_lag_max = self.st.send_lag_max.max(lag);
        }
        let outbox = &mut self.outboxes[i];
        let seq = outbox.says.len() + 1;
        let say = format!(r#"{{"type":"say","text":"t={t} s={i} n={seq}","ref":"{seq}"}}"#);
        client.send(i, OP_TEXT, say.as_bytes());
        outbox.says.push((t, false));
        outbox.unanswered += 1;
        self.st.sent_total += 1;
        self.st.sent += u64::from(in_window);
    }

    /// Ends the connections whose first frame was wrong.
    fn apply_failures(&mut self, client: &mut Client) {
        for (i, why) in self.to_fail.drain(..) {
            client.fail(i, why);
        }
    }

    /// Whether client `i` is connected (open, first history had).
    fn live(&self, client: &Client, i: usize) -> bool {
        self.members[i].joined && client.conns[i].state == State::Open
    }

    /// Says of live senders not answered yet.
    fn unanswered(&self, client: &Client) -> u64 {
        (0..self.outboxes.len())
            .filter(|&i| self.live(client, i))
            .map(|i| self.outboxes[i].unanswered)
            .sum()
    }

    /// Acked window messages that live clients have not received yet, and
    /// window messages received beyond the acked ones (stored, not acked).
    fn undelivered(&self, client: &Client) -> (u64, u64) {
        let (mut missing, mut extra) = (0, 0);
        for (i, m) in self.members.iter().enumerate() {
            if self.live(client, i) {
                let want = self.st.acked_by_room[m.room];
                missing += want.saturating_sub(m.window_delivered);
                extra += m.window_delivered.saturating_sub(want);
            }
        }
        (missing, extra)
    }
}

/// utime + stime of process `pid` ("self" for this one), seconds.
fn proc_cpu_seconds(pid: &str) -> Option<f64> {
    /// Linux reports these in USER_HZ ticks, 100 a second on every
    /// architecture this runs on (sysconf(_SC_CLK_TCK)).
    const USER_HZ: f64 = 100.0;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |k: usize| fields.get(k)?.parse::<u64>().ok();
    Some((ticks(11)? + ticks(12)?) as f64 / USER_HZ)
}

/// The nearest-rank percentile `p` of sorted `v`.
fn percentile(v: &[u64], p: f64) -> Option<u64> {
    if v.is_empty() {
        return None;
    }
    let k = ((p / 100.0 * v.len() as f64).ceil() as usize).clamp(1, v.len());
    Some(v[k - 1])
}

/// Nanoseconds as milliseconds, to the microsecond.
fn ns_ms(v: Option<u64>) -> Option<f64> {
    v.map(|ns| (ns as f64 / 1e3).round() / 1e3)
}

/// `x` rounded to `digits` decimals.
fn round_to(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

/// Delivery latency percentiles, ms.
#[derive(Debug, Serialize)]
struct LatencyMs {
    /// Samples.
    n: usize,
    /// Median.
    p50: Option<f64>,
    /// 90th percentile.
    p90: Option<f64>,
    /// 99th percentile.
    p99: Option<f64>,
    /// 99.9th percentile.
    p999: Option<f64>,
    /// Largest.
    max: Option<f64>,
}

impl LatencyMs {
    /// Of the sorted sample `v` (ns).
    fn of(v: &[u64]) -> LatencyMs {
        LatencyMs {
            n: v.len(),
            p50: ns_ms(percentile(v, 50.0)),
            p90: ns_ms(percentile(v, 90.0)),
            p99: ns_ms(percentile(v, 99.0)),
            p999: ns_ms(percentile(v, 99.9)),
            max: ns_ms(v.last().copied()),
        }
    }
}

/// The `chat` report's JSON line (the keys of `chat-load.py`'s, and more).
#[derive(Debug, Serialize)]
struct ChatReport {
    /// "chat".
    mode: &'static str,
    /// "ws-bench" (chat-load.py's JSON has no such key).
    client: &'static str,
    /// Clients asked for.
    clients: usize,
    /// Clients connected (open, first history received).
    connected: usize,
    /// Clients that did not connect.
    connect_failed: usize,
    /// Why, with counts.
    connect_failures: BTreeMap<String, usize>,
    /// How long connecting took.
    connect_seconds: f64,
    /// Rooms.
    rooms: usize,
    /// Senders.
    senders: usize,
    /// Says per second per sender.
    rate_per_sender: f64,
    /// Client processes (one thread of one).
    processes: usize,
    /// Measured window, seconds.
    seconds: f64,
    /// Warm-up, seconds.
    warmup: f64,
    /// Says sent in the window.
    sent: u64,
    /// Of them, acked.
    acked: u64,
    /// `acked / seconds`.
    messages_in_per_s: f64,
    /// Message deliveries received in the window (whenever sent).
    deliveries: u64,
    /// `deliveries / seconds`.
    deliveries_out_per_s: f64,
    /// Deliveries of the messages sent in the window (received before the
    /// drain ended).
    window_message_deliveries: u64,
    /// Acked window messages x clients connected in their room.
    expected_deliveries: u64,
    /// `window_message_deliveries / expected_deliveries`.
    delivery_ratio: Option<f64>,
    /// Acked window messages a still-connected client never received.
    undelivered: u64,
    /// Window messages received beyond the acked ones.
    extra_deliveries: u64,
    /// Says of still-connected senders never answered.
    unanswered_says: u64,
    /// Delivery latency of window messages.
    latency_ms: LatencyMs,
    /// Ack latency of window says.
    ack_latency_ms: LatencyMs,
    /// Errors received in the window, by code.
    errors: BTreeMap<String, u64>,
    /// Errors in the whole run.
    errors_whole_run: u64,
    /// Errors in the whole run, by code.
    errors_by_code_whole_run: BTreeMap<String, u64>,
    /// Ids that did not increase.
    order_violations: u64,
    /// Ids that skipped ahead outside a trimmed history.
    gaps: u64,
    /// Ids skipped.
    missing_ids: u64,
    /// Catch-up histories in the window.
    catchup_histories: u64,
    /// Their messages.
    catchup_messages: u64,
    /// Catch-up histories, whole run.
    catchup_histories_whole_run: u64,
    /// Trimmed catch-up histories.
    trimmed_histories: u64,
    /// Presence frames in the window.
    presence_frames: u64,
    /// Presence frames, whole run.
    presence_frames_whole_run: u64,
    /// Frames that were not the JSON expected.
    bad_frames: u64,
    /// Acks or errors with a ref that was not ours or answered twice.
    unexpected_replies: u64,
    /// Connections lost after connecting, by reason.
    disconnects: BTreeMap<String, usize>,
    /// How long the drain took.
    drain_seconds: f64,
    /// Closes that ended with the server's close frame.
    closed_cleanly: usize,
    /// Closes that did not.
    closed_uncleanly: usize,
    /// Window says sent > 100 ms behind their timer.
    sends_late: u64,
    /// This client's CPU seconds in the window.
    client_cpu_seconds: Option<f64>,
    /// `client_cpu_seconds / seconds` (CPUs busy; at most 1, one thread).
    client_cpu_util: Option<f64>,
    /// This client's CPU seconds in the whole run.
    client_cpu_seconds_whole_run: Option<f64>,
    /// The latest a window say went out behind its timer, ms.
    client_loop_lag_max_ms: f64,
    /// The server's CPU seconds in the window (null without --server-pid).
    server_cpu_seconds: Option<f64>,
    /// Per 1000 deliveries (null without deliveries).
    server_cpu_s_per_1000_deliveries: Option<f64>,
    /// The client fell behind: its figures measure it as much as the server.
    client_bound: bool,
    /// No loss, no disorder, no bad frame, at most 1% of the clients failed.
    ok: bool,
}

/// Many clients in a few rooms, a few of them sending at a steady rate:
/// rates in and out, delivery latency, order and loss checks.
fn run_chat(a: &ChatArgs) -> Result<bool, String> {
    if a.clients == 0
        || a.rooms == 0
        || !a.rate.is_finite()
        || a.rate <= 0.0
        || !a.seconds.is_finite()
        || a.seconds <= 0.0
        || !a.warmup.is_finite()
        || a.warmup < 0.0
    {
        return Err(
            "need --clients >= 1, --rooms >= 1, --rate > 0, --seconds > 0, --warmup >= 0".into(),
        );
    }
    let n = a.clients;
    let senders = a.senders.min(n);
    check_fd_limit(n);
    let common = Common {
        addr: a.addr,
        conns: n,
        max_handshakes: a.max_handshakes,
        handshake_timeout_secs: a.handshake_timeout_secs,
        timeout_secs: a.connect_timeout_secs,
        path: None,
    };
    let shown = format!("/api/rooms/{}K/ws?nick={}N", a.room_prefix, a.nick_prefix);
    let mut client = Client::new(&common, &shown)?;
    // Fewer events per poll than the other modes: the send timers are
    // checked between polls, and one poll's worth of catch-up histories
    // must not hold them up for long.
    client.events = Some(Events::with_capacity(256));
    client.paths = (0..n)
        .map(|i| {
            format!(
                "/api/rooms/{}{}/ws?nick={}{i}",
                a.room_prefix,
                i % a.rooms,
                a.nick_prefix
            )
        })
        .collect();
    let mut load = ChatLoad::new(n, a.rooms, senders);
    // Room for the expected latency samples up front (up to 32 M), so that
    // no reallocation of a large vector stalls the loop in the window.
    let expected_samples = senders as f64 * a.rate * a.seconds * n.div_ceil(a.rooms) as f64;
    load.st.latency_ns = Vec::with_capacity((expected_samples * 1.02).min(32e6) as usize);
    load.st.ack_latency_ns =
        Vec::with_capacity((senders as f64 * a.rate * a.seconds * 1.02).min(1e7) as usize);
    let cpu_start = proc_cpu_seconds("self");

    // 1. Connect: every connection open with its first history, or failed.
    let t0 = Instant::now();
    let deadline = t0 + Duration::from_secs(a.connect_timeout_secs);
    let waiting = |client: &Client, load: &ChatLoad, i: usize| match client.conns[i].state {
        State::Idle | State::Connecting | State::Handshaking => true,
        State::Open => !load.members[i].joined,
        _ => false,
    };
    let mut last_check = t0;
    loop {
        let now = Instant::now();
        if client.established + client.failed == n && now >= last_check + CHECK_EVERY {
            last_check = now;
            if !(0..n).any(|i| waiting(&client, &load, i)) {
                break;
            }
        }
        if now >= deadline {
            for i in 0..n {
                if waiting(&client, &load, i) {
                    let why = if client.conns[i].state == State::Open {
                        "no history before the connect deadline"
                    } else {
                        "connect deadline passed"
                    };
                    client.fail(i, why.into());
                }
            }
            break;
        }
        client.turn(Some(Duration::from_millis(50)), &mut |i, d| {
            load.on_frame(i, d);
        });
        load.apply_failures(&mut client);
    }
    let connect_secs = t0.elapsed().as_secs_f64();
    let connected_in_room = {
        let mut v = vec![0u64; a.rooms];
        for i in 0..n {
            if load.live(&client, i) {
                v[load.members[i].room] += 1;
            }
        }
        v
    };
    let connected = connected_in_room.iter().sum::<u64>() as usize;
    let connect_failed = n - connected;
    let connect_failures = std::mem::take(&mut client.reasons);
    let reasons = if connect_failures.is_empty() {
        String::new()
    } else {
        format!(": {connect_failures:?}")
    };
    println!(
        "ws-bench chat: {connected}/{n} clients connected to {} in {connect_secs:.1} s \
         ({connect_failed} failed{reasons}), {} rooms, 1 process",
        a.addr, a.rooms
    );
    if connected == 0 {
        return Err("no client connected".into());
    }
    if connect_failed as f64 > n as f64 / 100.0 {
        eprintln!("ws-bench chat: FAIL: {connect_failed} of {n} connections failed (> 1%)");
        client.close_all(Instant::now() + Duration::from_secs(10));
        return Ok(false);
    }

    // 2. Send: warm-up, then the measured window. Each sender's says are
    // paced by the poll timeout; they go in due order, and since every
    // sender has the same interval the queue stays sorted.
    let interval = Duration::from_secs_f64(1.0 / a.rate);
    let begin = Instant::now() + Duration::from_millis(300);
    let t_from = begin + Duration::from_secs_f64(a.warmup);
    let t_to = t_from + Duration::from_secs_f64(a.seconds);
    load.window = Some((load.clock.at(t_from), load.clock.at(t_to)));
    let mut schedule: Vec<(Instant, usize)> = (0..senders)
        .filter(|&i| load.live(&client, i))
        .map(|i| (begin + interval.mul_f64((i as f64 * PHI_FRAC) % 1.0), i))
        .collect();
    schedule.sort();
    let mut schedule = VecDeque::from(schedule);
    let mut window_open = false;
    let (mut cpu_from, mut server_from) = (None, None);
    loop {
        let now = Instant::now();
        if !window_open && now >= t_from {
            window_open = true;
            cpu_from = proc_cpu_seconds("self");
            server_from = a.server_pid.and_then(|p| proc_cpu_seconds(&p.to_string()));
        }
        if now >= t_to {
            break;
        }
        while let Some(&(due, i)) = schedule.front() {
            if due > now {
                break;
            }
            schedule.pop_front();
            load.say(&mut client, i, due);
            let next = due + interval;
            if next < t_to {
                schedule.push_back((next, i));
            }
        }
        let mut wake = t_to;
        if let Some(&(due, _)) = schedule.front() {
            wake = wake.min(due);
        }
        if !window_open {
            wake = wake.min(t_from);
        }
        client.turn(
            Some(wake.saturating_duration_since(Instant::now())),
            &mut |i, d| load.on_frame(i, d),
        );
        load.apply_failures(&mut client);
    }
    let cpu_to = proc_cpu_seconds("self");
    let server_to = a.server_pid.and_then(|p| proc_cpu_seconds(&p.to_string()));

    // 3. Drain: until every acked window message reached every client still
    // connected in its room, and every say was answered.
    let drain_t0 = Instant::now();
    let drain_deadline = drain_t0 + Duration::from_secs(a.drain_secs);
    let mut last_check = drain_t0 - CHECK_EVERY;
    loop {
        let now = Instant::now();
        if now >= last_check + CHECK_EVERY {
            last_check = now;
            if load.unanswered(&client) == 0 && load.undelivered(&client).0 == 0 {
                break;
            }
        }
        if now >= drain_deadline {
            break;
        }
        client.turn(Some(Duration::from_millis(10)), &mut |i, d| {
            load.on_frame(i, d);
        });
        load.apply_failures(&mut client);
    }
    let drain_secs = drain_t0.elapsed().as_secs_f64();
    let unanswered = load.unanswered(&client);
    let (undelivered, extra) = load.undelivered(&client);
    let still = (0..n).filter(|&i| load.live(&client, i)).count();
    let disconnects = std::mem::take(&mut client.reasons);

    // 4. Close.
    let (clean, unclean) = client.close_all(Instant::now() + Duration::from_secs(10));
    let cpu_end = proc_cpu_seconds("self");

    // Report.
    let st = &mut load.st;
    st.latency_ns.sort_unstable();
    st.ack_latency_ns.sort_unstable();
    let secs = a.seconds;
    let room_size: Vec<usize> = (0..a.rooms)
        .map(|r| (r..n).step_by(a.rooms).count())
        .collect();
    let expected: u64 = (0..a.rooms)
        .map(|r| st.acked_by_room[r] * connected_in_room[r])
        .sum();
    let client_cpu = cpu_from.zip(cpu_to).map(|(x, y)| y - x);
    let server_cpu = server_from.zip(server_to).map(|(x, y)| y - x);
    let errors_whole_run: u64 = st.errors_total.values().sum();
    let lag_ms = st.send_lag_max.as_secs_f64() * 1e3;
    let lost_conns = connected - still;
    let ok = st.order_violations == 0
        && st.missing == 0
        && undelivered == 0
        && unanswered == 0
        && st.bad_frames == 0
        && (connect_failed + lost_conns) as f64 <= n as f64 / 100.0;
    let client_bound =
        st.sends_late > 0 || lag_ms > 100.0 || client_cpu.is_some_and(|c| c / secs > 0.8);
    let report = ChatReport {
        mode: "chat",
        client: "ws-bench",
        clients: n,
        connected,
        connect_failed,
        connect_failures,
        connect_seconds: round_to(connect_secs, 2),
        rooms: a.rooms,
        senders,
        rate_per_sender: a.rate,
        processes: 1,
        seconds: secs,
        warmup: a.warmup,
        sent: st.sent,
        acked: st.acks,
        messages_in_per_s: round_to(st.acks as f64 / secs, 1),
        deliveries: st.received_in_window,
        deliveries_out_per_s: round_to(st.received_in_window as f64 / secs, 1),
        window_message_deliveries: st.window_deliveries,
        expected_deliveries: expected,
        delivery_ratio: (expected > 0)
            .then(|| round_to(st.window_deliveries as f64 / expected as f64, 5)),
        undelivered,
        extra_deliveries: extra,
        unanswered_says: unanswered,
        latency_ms: LatencyMs::of(&st.latency_ns),
        ack_latency_ms: LatencyMs::of(&st.ack_latency_ns),
        errors: st.errors.clone(),
        errors_whole_run,
        errors_by_code_whole_run: st.errors_total.clone(),
        order_violations: st.order_violations,
        gaps: st.gaps,
        missing_ids: st.missing,
        catchup_histories: st.catchups,
        catchup_messages: st.catchup_messages,
        catchup_histories_whole_run: st.catchups_total,
        trimmed_histories: st.trimmed,
        presence_frames: st.presence,
        presence_frames_whole_run: st.presence_total,
        bad_frames: st.bad_frames,
        unexpected_replies: st.unexpected_replies,
        disconnects,
        drain_seconds: round_to(drain_secs, 3),
        closed_cleanly: clean,
        closed_uncleanly: unclean,
        sends_late: st.sends_late,
        client_cpu_seconds: client_cpu.map(|c| round_to(c, 2)),
        client_cpu_util: client_cpu.map(|c| round_to(c / secs, 3)),
        client_cpu_seconds_whole_run: cpu_start.zip(cpu_end).map(|(x, y)| round_to(y - x, 2)),
        client_loop_lag_max_ms: round_to(lag_ms, 3),
        server_cpu_seconds: server_cpu.map(|c| round_to(c, 3)),
        server_cpu_s_per_1000_deliveries: server_cpu
            .filter(|_| st.received_in_window > 0)
            .map(|c| round_to(c / st.received_in_window as f64 * 1000.0, 5)),
        client_bound,
        ok,
    };

    let opt = |v: Option<f64>| v.map_or("-".to_owned(), |x| format!("{x:.3}"));
    let (l, k) = (&report.latency_ms, &report.ack_latency_ms);
    let sizes: Vec<String> = room_size.iter().map(usize::to_string).collect();
    println!(
        "clients connected:   {connected} of {n} in {} rooms ({}); {senders} senders x {}/s",
        a.rooms,
        sizes.join(", "),
        a.rate
    );
    println!("measured:            {secs} s after {} s warm-up", a.warmup);
    println!(
        "messages in:         {:.1}/s ({} acked of {} sent)",
        report.messages_in_per_s, st.acks, st.sent
    );
    println!(
        "deliveries out:      {:.1}/s ({} received in the window)",
        report.deliveries_out_per_s, st.received_in_window
    );
    println!(
        "delivery ratio:      {} ({} of {expected} = acked x connected room size; \
         {undelivered} undelivered, {extra} beyond the acked, after a {drain_secs:.2} s drain)",
        report
            .delivery_ratio
            .map_or("-".to_owned(), |r| format!("{r:.5}")),
        st.window_deliveries
    );
    println!(
        "delivery latency ms: p50 {}  p90 {}  p99 {}  p99.9 {}  max {}  (n={})",
        opt(l.p50),
        opt(l.p90),
        opt(l.p99),
        opt(l.p999),
        opt(l.max),
        l.n
    );
    println!(
        "ack latency ms:      p50 {}  p99 {}  max {}  (n={}; {unanswered} says unanswered)",
        opt(k.p50),
        opt(k.p99),
        opt(k.max),
        k.n
    );
    println!(
        "errors:              {} (whole run: {errors_whole_run}{})",
        if st.errors.is_empty() {
            "none".to_owned()
        } else {
            format!("{:?}", st.errors)
        },
        if st.errors_total.is_empty() {
            String::new()
        } else {
            format!(" {:?}", st.errors_total)
        }
    );
    println!(
        "ordering:            {} violations, {} gaps ({} ids missing), {} catch-up histories \
         ({} messages; whole run {}, {} trimmed)",
        st.order_violations,
        st.gaps,
        st.missing,
        st.catchups,
        st.catchup_messages,
        st.catchups_total,
        st.trimmed
    );
    for e in &st.examples {
        println!("  {e}");
    }
    if let Some(b) = &st.bad_frame_example {
        println!("bad frames:          {} (first: {b})", st.bad_frames);
    }
    if st.unexpected_replies > 0 {
        println!(
            "unexpected replies:  {} acks or errors not matching a say",
            st.unexpected_replies
        );
    }
    println!(
        "disconnects:         {}",
        if report.disconnects.is_empty() {
            "none".to_owned()
        } else {
            format!("{:?}", report.disconnects)
        }
    );
    println!(
        "presence frames:     {} in the window, {} in all",
        st.presence, st.presence_total
    );
    println!(
        "client CPU:          {} s in the window ({} CPUs busy, one thread; {} s whole run); \
         sends up to {lag_ms:.1} ms behind their timers, {} > 100 ms late",
        opt(report.client_cpu_seconds),
        opt(report.client_cpu_util),
        opt(report.client_cpu_seconds_whole_run),
        st.sends_late
    );
    if let Some(c) = server_cpu {
        println!(
            "server CPU:          {c:.2} s in the window ({} s per 1000 deliveries)",
            report
                .server_cpu_s_per_1000_deliveries
                .map_or("-".to_owned(), |x| format!("{x}"))
        );
    }
    println!("closed:              {clean} cleanly, {unclean} without a close handshake");
    if client_bound {
        eprintln!(
            "warning:             the client fell behind (sends up to {lag_ms:.1} ms late, {} \
             late sends, {} CPUs busy): the latencies measure the client as much as the server",
            st.sends_late,
            opt(report.client_cpu_util)
        );
    }
    println!(
        "{}",
        serde_json::to_string(&report).map_err(|e| format!("report JSON: {e}"))?
    );

    if !ok {
        let mut bad = Vec::new();
        let mut add = |n: u64, what: &str| {
            if n > 0 {
                bad.push(format!("{n} {what}"));
            }
        };
        add(st.order_violations, "ordering violations");
        add(st.missing, "lost messages (ids skipped)");
        add(undelivered, "deliveries missing after the drain");
        add(unanswered, "says never answered");
        add(st.bad_frames, "bad frames");
        if (connect_failed + lost_conns) as f64 > n as f64 / 100.0 {
            bad.push(format!(
                "{connect_failed} failed and {lost_conns} lost connections of {n} (> 1%)"
            ));
        }
        eprintln!("ws-bench chat: FAIL: {}", bad.join(", "));
    }
    Ok(ok)
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
                    let reason = String::from_utf8_lossy(&self.inb[end.min(start + 2)..end]);
                    let why = if reason.is_empty() {
                        format!("server closed (code {})", close_code(&code))
                    } else {
                        format!("server closed (code {}: {reason})", close_code(&code))
                    };
                    let _ = self.send(OP_CLOSE, &code, rng);
                    return Err(why);
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

    /// The send time in a chat text, and nearest-rank percentiles.
    #[test]
    fn chat_helpers() {
        assert_eq!(sent_at("t=123 s=4 n=5"), Some(123));
        assert_eq!(sent_at("t=77"), Some(77));
        assert_eq!(sent_at("hello"), None);
        assert_eq!(sent_at("t=x s=1"), None);
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), Some(50));
        assert_eq!(percentile(&v, 99.0), Some(99));
        assert_eq!(percentile(&v, 100.0), Some(100));
        assert_eq!(percentile(&[7], 1.0), Some(7));
        assert_eq!(percentile(&[], 50.0), None);
        assert_eq!(ns_ms(Some(1_234_567)), Some(1.235));
    }

    /// The chat client's checks: first history, order, gaps, trimmed and
    /// untrimmed catch-ups, acks, errors, and the window.
    #[test]
    fn chat_frames() {
        // Client 0 sends, in room 0 with client 2; client 1 is in room 1.
        let mut load = ChatLoad::new(3, 2, 1);
        let msg = |id: u64, text: &str| {
            format!(
                r#"{{"type":"message","id":{id},"room":"r","nick":"u0","text":"{text}","ts":1}}"#
            )
        };
        // Before the first history, anything else fails the connection.
        load.on_frame(1, br#"{"type":"presence","people":["u1"]}"#);
        assert_eq!(load.to_fail.len(), 1);
        assert!(!load.members[1].joined);
        // The history sets the last id (keys in any order).
        let hist = br#"{"messages":[{"id":4,"room":"r","nick":"x","text":"a\"b","ts":1},{"id":5,"room":"r","nick":"x","text":"c","ts":1}],"trimmed":false,"type":"history"}"#;
        load.on_frame(0, hist);
        load.on_frame(2, br#"{"messages":[],"trimmed":false,"type":"history"}"#);
        assert_eq!((load.joined, load.members[0].last), (2, Some(5)));
        assert_eq!(load.members[2].last, None);
        load.on_frame(0, br#"{"type":"presence","people":["u0","u2"]}"#);
        assert_eq!(load.st.presence_total, 1);

        // The window: [1000, 2000) ns; now is far later, so not "in" it.
        load.window = Some((1000, 2000));
        load.outboxes[0].says = vec![(1500, false), (500, false)];
        load.outboxes[0].unanswered = 2;
        load.on_frame(0, msg(6, "t=1500 s=0 n=1").as_bytes());
        load.on_frame(0, msg(6, "t=1500 s=0 n=1").as_bytes()); // duplicate
        load.on_frame(0, msg(9, "t=600 s=0 n=2").as_bytes()); // skips 7 and 8
        assert_eq!(load.st.order_violations, 1);
        assert_eq!((load.st.gaps, load.st.missing), (1, 2));
        assert_eq!(load.members[0].window_delivered, 1);
        assert_eq!(load.st.latency_ns.len(), 1);
        assert_eq!(load.st.examples.len(), 2);

        load.on_frame(0, br#"{"id":6,"ref":"1","type":"ack"}"#);
        load.on_frame(0, br#"{"id":6,"ref":"1","type":"ack"}"#); // twice
        load.on_frame(
            0,
            br#"{"type":"error","code":"rate_limited","message":"slow down","ref":"2"}"#,
        );
        assert_eq!((load.st.acks, load.st.acks_total), (1, 1));
        assert_eq!(load.st.acked_by_room, vec![1, 0]);
        assert_eq!(load.st.unexpected_replies, 1);
        assert_eq!(load.outboxes[0].unanswered, 0);
        assert_eq!(load.st.errors_total.get("rate_limited"), Some(&1));

        // A catch-up history continues the order check; a trimmed one
        // restarts it at its first message.
        load.on_frame(
            0,
            br#"{"messages":[{"id":10,"text":"t=1200"},{"id":11,"text":"x"}],"trimmed":false,"type":"history"}"#,
        );
        assert_eq!((load.st.gaps, load.members[0].last), (1, Some(11)));
        assert_eq!(load.members[0].window_delivered, 2);
        load.on_frame(
            0,
            br#"{"messages":[{"id":50,"text":"x"}],"trimmed":true,"type":"history"}"#,
        );
        assert_eq!((load.st.gaps, load.st.trimmed), (1, 1));
        assert_eq!(load.st.catchups_total, 2);
        assert_eq!(load.members[0].last, Some(50));
        load.on_frame(0, msg(52, "x").as_bytes());
        assert_eq!((load.st.gaps, load.st.missing), (2, 3));

        // An empty first history checks nothing until the first message.
        load.on_frame(2, msg(40, "x").as_bytes());
        assert_eq!(load.st.gaps, 2);
        load.on_frame(2, b"not json");
        assert_eq!(load.st.bad_frames, 1);
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
