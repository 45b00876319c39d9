//! A WebSocket connection: messages in and out, control frames, the close
//! handshake, limits, keep-alive pings, and graceful shutdown.
//!
//! Memory: an idle socket holds no buffer. Bytes are read into the loop's
//! pooled read buffer only when the socket is readable and it goes back when
//! every byte is handled; a message being assembled owns exactly its bytes;
//! frames go straight to the socket and only what the socket refuses is kept.

use std::cell::{Cell, RefCell};
use std::future::{poll_fn, Future};
use std::pin::pin;
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};

use super::frame::{self, FrameError, Header, Opcode};
use super::{CloseFrame, Message, Prepared, WsConfig};
use crate::Upgraded;

/// Messages handled in a row before `recv` yields to the loop's other tasks.
const RECV_BUDGET: u32 = 64;
/// Most bytes reserved ahead for a message on the strength of its header.
const RESERVE_MAX: u64 = 64 * 1024;
/// How long a closing side waits for the peer's close frame.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// Close codes (RFC 6455 §7.4.1).
pub mod code {
    /// Normal closure.
    pub const NORMAL: u16 = 1000;
    /// The endpoint is going away (server shutdown, idle timeout).
    pub const GOING_AWAY: u16 = 1001;
    /// A protocol error.
    pub const PROTOCOL: u16 = 1002;
    /// Text that is not UTF-8.
    pub const INVALID_DATA: u16 = 1007;
    /// A policy violation (such as a subscriber too slow for its topic).
    pub const POLICY: u16 = 1008;
    /// A message or frame over the size limit.
    pub const TOO_BIG: u16 = 1009;
    /// The server failed.
    pub const INTERNAL: u16 = 1011;
}

/// Why a send failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendError {
    /// The close handshake began (or ended): no more messages may be sent.
    Closed,
    /// The socket failed or the peer stopped reading for longer than the write timeout.
    Io,
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SendError::Closed => "the WebSocket is closing or closed",
            SendError::Io => "the connection failed or stopped reading",
        })
    }
}

impl std::error::Error for SendError {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Open,
    /// We sent a close frame and wait for the peer's.
    CloseSent,
    /// The handshake is over, or the connection broke.
    Closed,
}

/// The state shared by the halves of one socket (all on one loop).
#[derive(Debug)]
struct Inner {
    up: Upgraded,
    config: WsConfig,
    state: Cell<State>,
    /// The close code this side sent or answered with, once closing.
    close_code: Cell<Option<u16>>,
    /// The frame being read: its header and payload bytes taken so far.
    frame: Cell<Option<(Header, u64)>>,
    /// The data message being assembled (text or binary) and how much of it
    /// is known to be valid UTF-8.
    message: RefCell<Option<Assembling>>,
    /// A control frame's payload being assembled.
    control: RefCell<Vec<u8>>,
    /// Bytes of frames the socket has not taken yet.
    out: RefCell<BytesMut>,
    /// A task is writing `out`; others wait in `flush_waiters`.
    flushing: Cell<bool>,
    flush_waiters: RefCell<Vec<Waker>>,
    /// When bytes last arrived (for pings and the idle timeout).
    last_heard: Cell<Instant>,
    /// A ping went out since bytes last arrived.
    pinged: Cell<bool>,
    /// Messages handled since `recv` last yielded.
    budget: Cell<u32>,
}

#[derive(Debug)]
struct Assembling {
    text: bool,
    data: Vec<u8>,
    utf8_ok: usize,
}

/// What one step of reading produced.
enum Event {
    Message(Message),
    /// The peer's close frame arrived (already answered).
    PeerClosed(Option<CloseFrame>),
}

/// Why reading stopped.
#[derive(Debug, Clone, Copy)]
enum Stop {
    /// Send this close code, then end.
    Fail(u16, &'static str),
    /// The connection is gone (peer vanished, socket error).
    Gone,
}

/// A WebSocket. `recv` and `send` read like blocking calls; [`split`](Self::split)
/// gives a receiver and a sender that two tasks (or two branches of a
/// `select`) can use at once.
#[derive(Debug)]
pub struct WebSocket {
    inner: Rc<Inner>,
}

/// The receiving half of a [`WebSocket`].
#[derive(Debug)]
pub struct WsReceiver {
    inner: Rc<Inner>,
}

/// The sending half of a [`WebSocket`]; clones send on the same socket.
#[derive(Debug, Clone)]
pub struct WsSender {
    inner: Rc<Inner>,
}

impl WebSocket {
    pub(crate) fn new(up: Upgraded, config: WsConfig) -> Self {
        WebSocket {
            inner: Rc::new(Inner {
                up,
                config,
                state: Cell::new(State::Open),
                close_code: Cell::new(None),
                frame: Cell::new(None),
                message: RefCell::new(None),
                control: RefCell::new(Vec::new()),
                out: RefCell::new(BytesMut::new()),
                flushing: Cell::new(false),
                flush_waiters: RefCell::new(Vec::new()),
                last_heard: Cell::new(Instant::now()),
                pinged: Cell::new(false),
                budget: Cell::new(0),
            }),
        }
    }

    /// The next message: text, binary, ping (already answered with a pong),
    /// pong, or the peer's close (already answered). `None` once the socket
    /// is closed, whatever the reason: the peer vanished, a protocol error or
    /// limit (this side sent the matching close code), the idle timeout, or
    /// the server's shutdown (close 1001).
    pub async fn recv(&mut self) -> Option<Message> {
        self.inner.recv().await
    }

    /// Sends a message, waiting while the peer reads slowly (bounded by the
    /// server's write timeout).
    pub async fn send(&self, message: impl Into<Message>) -> Result<(), SendError> {
        self.inner.send(message.into()).await
    }

    /// Sends a message encoded once for many sockets (see [`Prepared`]).
    pub async fn send_prepared(&self, message: &Prepared) -> Result<(), SendError> {
        self.inner.send_encoded(&message.0).await
    }

    /// Starts the close handshake with `code` and `reason` and waits (a
    /// short while) for the peer's close frame.
    pub async fn close(self, code: u16, reason: &str) {
        self.inner.start_close(code, reason).await;
        self.inner.finish_close().await;
    }

    /// Splits into a receiver and a sender.
    pub fn split(self) -> (WsSender, WsReceiver) {
        (
            WsSender {
                inner: self.inner.clone(),
            },
            WsReceiver { inner: self.inner },
        )
    }

    /// The close code this side sent or answered with, once closing.
    pub fn close_code(&self) -> Option<u16> {
        self.inner.close_code.get()
    }

    /// A handle that ends the close handshake after the application is done.
    pub(crate) fn closer(&self) -> Closer {
        Closer(self.inner.clone())
    }
}

/// Ends a socket politely once its handler returns.
#[derive(Debug)]
pub(crate) struct Closer(Rc<Inner>);

impl Closer {
    /// Sends close 1000 if no close was sent yet, then waits a little for the
    /// peer's close frame.
    pub(crate) async fn finish(&self) {
        self.0.start_close(code::NORMAL, "").await;
        self.0.finish_close().await;
    }
}

impl WsReceiver {
    /// The next message; see [`WebSocket::recv`].
    pub async fn recv(&mut self) -> Option<Message> {
        self.inner.recv().await
    }
}

impl WsSender {
    /// Sends a message; see [`WebSocket::send`].
    pub async fn send(&self, message: impl Into<Message>) -> Result<(), SendError> {
        self.inner.send(message.into()).await
    }

    /// Sends a message encoded once for many sockets.
    pub async fn send_prepared(&self, message: &Prepared) -> Result<(), SendError> {
        self.inner.send_encoded(&message.0).await
    }

    /// Sends several prepared messages with one write when the socket takes
    /// them: what a subscriber that fell a few messages behind should do.
    pub async fn send_prepared_all(&self, messages: &[Prepared]) -> Result<(), SendError> {
        match messages {
            [] => Ok(()),
            [one] => self.inner.send_encoded(&one.0).await,
            many => {
                let mut joined = BytesMut::with_capacity(many.iter().map(|m| m.0.len()).sum());
                for m in many {
                    joined.extend_from_slice(&m.0);
                }
                self.inner.send_encoded(&joined).await
            }
        }
    }

    /// Sends a close frame; the receiver then sees the peer's answer and ends.
    pub async fn close(&self, code: u16, reason: &str) {
        self.inner.start_close(code, reason).await;
    }

    /// Whether the socket is closing or closed.
    pub fn is_closed(&self) -> bool {
        self.inner.state.get() != State::Open
    }
}

impl Inner {
    async fn recv(&self) -> Option<Message> {
        if self.state.get() == State::Closed {
            return None;
        }
        let budget = self.budget.get() + 1;
        self.budget.set(budget);
        if budget >= RECV_BUDGET {
            self.budget.set(0);
            gyre_rt::yield_now().await;
        }
        match self.read_event().await {
            Ok(Event::Message(m)) => {
                if let Message::Ping(payload) = &m {
                    let mut out = BytesMut::new();
                    frame::encode(&mut out, true, Opcode::Pong, payload);
                    if self.state.get() != State::Closed && self.send_encoded(&out).await.is_err() {
                        self.state.set(State::Closed);
                    }
                }
                Some(m)
            }
            Ok(Event::PeerClosed(frame)) => {
                if self.state.get() == State::Open {
                    let code = frame.as_ref().map_or(code::NORMAL, |f| f.code);
                    self.close_code.set(Some(code));
                    let mut out = BytesMut::new();
                    frame::encode(&mut out, true, Opcode::Close, &code.to_be_bytes());
                    let _ = self.write_now(&out).await;
                }
                self.state.set(State::Closed);
                Some(Message::Close(frame))
            }
            Err(Stop::Fail(code, reason)) => {
                tracing::debug!(target: "gyre::ws", "closing with {code}: {reason}");
                // Boxed, as closing is rare: idle sockets' futures stay small.
                Box::pin(async {
                    self.start_close(code, reason).await;
                    if code == code::GOING_AWAY {
                        // Shutdown or idle: give the peer a moment to answer.
                        self.finish_close().await;
                    }
                })
                .await;
                self.state.set(State::Closed);
                None
            }
            Err(Stop::Gone) => {
                self.state.set(State::Closed);
                None
            }
        }
    }

    /// Reads until one event is complete.
    async fn read_event(&self) -> Result<Event, Stop> {
        loop {
            if let Some(event) = self.parse_buffered()? {
                return Ok(event);
            }
            self.wait_readable().await?;
            let io = &self.up.io;
            let mut rbuf = io.rbuf.borrow_mut();
            let spare = rbuf.spare(0);
            match io.stream.try_read(spare) {
                Ok(0) => return Err(Stop::Gone),
                Ok(n) => {
                    rbuf.filled(n);
                    self.last_heard.set(Instant::now());
                    self.pinged.set(false);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => rbuf.release(),
                Err(_) => return Err(Stop::Gone),
            }
        }
    }

    /// Takes what the buffered bytes hold: at most one event.
    fn parse_buffered(&self) -> Result<Option<Event>, Stop> {
        let mut rbuf = self.up.io.rbuf.borrow_mut();
        let result = self.parse_from(&mut rbuf);
        if rbuf.is_empty() {
            rbuf.release();
        }
        result
    }

    fn parse_from(&self, rbuf: &mut crate::io::ReadBuf) -> Result<Option<Event>, Stop> {
        loop {
            let (header, mut taken) = match self.frame.get() {
                Some(f) => f,
                None => {
                    let h = match frame::parse(rbuf.bytes(), self.config.max_frame as u64) {
                        Ok(Some(h)) => h,
                        Ok(None) => return Ok(None),
                        Err(FrameError::TooBig) => {
                            return Err(Stop::Fail(code::TOO_BIG, "frame too big"))
                        }
                        Err(FrameError::Protocol(why)) => {
                            return Err(Stop::Fail(code::PROTOCOL, why))
                        }
                    };
                    rbuf.consume(h.header_len);
                    self.start_frame(&h)?;
                    (h, 0)
                }
            };
            // Take what is buffered of the payload.
            let want = (header.len - taken) as usize;
            let n = want.min(rbuf.len());
            if n > 0 {
                let start = taken as usize;
                if header.opcode.is_control() {
                    let mut c = self.control.borrow_mut();
                    let at = c.len();
                    c.extend_from_slice(&rbuf.bytes()[..n]);
                    frame::unmask(&mut c[at..], header.mask, start);
                } else {
                    let mut m = self.message.borrow_mut();
                    let m = m.as_mut().expect("a data frame has a message");
                    let at = m.data.len();
                    m.data.extend_from_slice(&rbuf.bytes()[..n]);
                    frame::unmask(&mut m.data[at..], header.mask, start);
                    if m.text {
                        check_utf8(m, false)?;
                    }
                }
                rbuf.consume(n);
                taken += n as u64;
            }
            if taken < header.len {
                self.frame.set(Some((header, taken)));
                return Ok(None);
            }
            self.frame.set(None);
            if let Some(event) = self.end_frame(&header)? {
                return Ok(Some(event));
            }
        }
    }

    /// Checks a frame against the message in progress and makes room for it.
    fn start_frame(&self, h: &Header) -> Result<(), Stop> {
        let mut m = self.message.borrow_mut();
        match h.opcode {
            Opcode::Text | Opcode::Binary => {
                if m.is_some() {
                    return Err(Stop::Fail(
                        code::PROTOCOL,
                        "new message before the last one ended",
                    ));
                }
                if h.len > self.config.max_message as u64 {
                    return Err(Stop::Fail(code::TOO_BIG, "message too big"));
                }
                *m = Some(Assembling {
                    text: h.opcode == Opcode::Text,
                    // Room for what is announced, up to a bound: memory
                    // follows the bytes that arrive, not a header's promise.
                    data: Vec::with_capacity(h.len.min(RESERVE_MAX) as usize),
                    utf8_ok: 0,
                });
            }
            Opcode::Continuation => {
                let Some(m) = m.as_mut() else {
                    return Err(Stop::Fail(code::PROTOCOL, "continuation without a message"));
                };
                if (m.data.len() as u64).saturating_add(h.len) > self.config.max_message as u64 {
                    return Err(Stop::Fail(code::TOO_BIG, "message too big"));
                }
                m.data.reserve(h.len.min(RESERVE_MAX) as usize);
            }
            Opcode::Close | Opcode::Ping | Opcode::Pong => self.control.borrow_mut().clear(),
        }
        Ok(())
    }

    /// A frame is complete: what event, if any, it finishes.
    fn end_frame(&self, h: &Header) -> Result<Option<Event>, Stop> {
        if h.opcode.is_control() {
            let payload = std::mem::take(&mut *self.control.borrow_mut());
            return Ok(Some(match h.opcode {
                Opcode::Ping => Event::Message(Message::Ping(payload.into())),
                Opcode::Pong => Event::Message(Message::Pong(payload.into())),
                _ => Event::PeerClosed(parse_close(&payload)?),
            }));
        }
        if !h.fin {
            return Ok(None);
        }
        let mut m = self
            .message
            .borrow_mut()
            .take()
            .expect("a data frame has a message");
        if m.text {
            check_utf8(&mut m, true)?;
            let text = String::from_utf8(m.data)
                .map_err(|_| Stop::Fail(code::INVALID_DATA, "text is not UTF-8"))?;
            Ok(Some(Event::Message(Message::Text(text))))
        } else {
            Ok(Some(Event::Message(Message::Binary(m.data.into()))))
        }
    }

    /// Waits for bytes, sending pings, enforcing the idle timeout and
    /// noticing the server's shutdown meanwhile.
    async fn wait_readable(&self) -> Result<(), Stop> {
        let deadline = self.next_deadline();
        let readable = pin!(self.up.io.stream.readable());
        let shutdown = pin!(self.up.shutdown_signal());
        let mut timer = pin!(
            deadline.map(|d| gyre_rt::time::sleep(d.saturating_duration_since(Instant::now())))
        );
        let (mut readable, mut shutdown) = (readable, shutdown);
        let woke = poll_fn(|cx| {
            if readable.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Wake::Readable);
            }
            if self.state.get() == State::Open && shutdown.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Wake::Shutdown);
            }
            if let Some(t) = timer.as_mut().as_pin_mut() {
                if t.poll(cx).is_ready() {
                    return Poll::Ready(Wake::Timer);
                }
            }
            Poll::Pending
        })
        .await;
        match woke {
            Wake::Readable => Ok(()),
            Wake::Shutdown => Err(Stop::Fail(code::GOING_AWAY, "server shutting down")),
            Wake::Timer => {
                let quiet = self.last_heard.get().elapsed();
                if self.state.get() == State::CloseSent {
                    return Err(Stop::Gone); // the peer never answered our close
                }
                if self.config.idle_timeout.is_some_and(|t| quiet >= t) {
                    return Err(Stop::Fail(code::GOING_AWAY, "idle timeout"));
                }
                if self.config.ping_interval.is_some_and(|p| quiet >= p) && !self.pinged.get() {
                    self.pinged.set(true);
                    let mut out = BytesMut::new();
                    frame::encode(&mut out, true, Opcode::Ping, b"");
                    self.send_encoded(&out).await.map_err(|_| Stop::Gone)?;
                }
                Ok(())
            }
        }
    }

    /// When the next timer should fire, if any.
    fn next_deadline(&self) -> Option<Instant> {
        let heard = self.last_heard.get();
        if self.state.get() == State::CloseSent {
            return Some(Instant::now() + CLOSE_WAIT);
        }
        let idle = self.config.idle_timeout.map(|t| heard + t);
        let ping = match self.config.ping_interval {
            Some(p) if !self.pinged.get() => Some(heard + p),
            _ => None,
        };
        match (idle, ping) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    async fn send(&self, message: Message) -> Result<(), SendError> {
        let (opcode, payload): (Opcode, &[u8]) = match &message {
            Message::Text(t) => (Opcode::Text, t.as_bytes()),
            Message::Binary(b) => (Opcode::Binary, b),
            Message::Ping(b) => (Opcode::Ping, &b[..b.len().min(125)]),
            Message::Pong(b) => (Opcode::Pong, &b[..b.len().min(125)]),
            Message::Close(frame) => {
                let (code, reason) = frame
                    .as_ref()
                    .map_or((code::NORMAL, ""), |f| (f.code, f.reason.as_str()));
                self.start_close(code, reason).await;
                return Ok(());
            }
        };
        let mut out = BytesMut::with_capacity(payload.len() + 10);
        frame::encode(&mut out, true, opcode, payload);
        self.send_encoded(&out).await
    }

    async fn send_encoded(&self, frame: &[u8]) -> Result<(), SendError> {
        if self.state.get() != State::Open {
            return Err(SendError::Closed);
        }
        self.write_now(frame).await
    }

    /// Writes an encoded frame: straight to the socket when nothing is
    /// queued, the rest queued and flushed.
    async fn write_now(&self, frame: &[u8]) -> Result<(), SendError> {
        let mut rest = frame;
        if !self.flushing.get() && self.out.borrow().is_empty() {
            match self.up.io.stream.try_write(frame) {
                Ok(n) if n == frame.len() => return Ok(()),
                Ok(n) => rest = &frame[n..],
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => {
                    self.state.set(State::Closed);
                    return Err(SendError::Io);
                }
            }
        }
        self.out.borrow_mut().extend_from_slice(rest);
        // Boxed: the rare slow path does not grow every socket's future.
        Box::pin(self.flush()).await
    }

    /// Writes everything queued. One task writes at a time; the queue is the
    /// record of what is unwritten, so a cancelled flush loses nothing.
    async fn flush(&self) -> Result<(), SendError> {
        loop {
            if self.out.borrow().is_empty() {
                return Ok(());
            }
            if self.flushing.get() {
                poll_fn(|cx| {
                    if self.flushing.get() {
                        self.flush_waiters.borrow_mut().push(cx.waker().clone());
                        Poll::Pending
                    } else {
                        Poll::Ready(())
                    }
                })
                .await;
                continue;
            }
            let _writer = Writer::new(self);
            loop {
                {
                    let mut out = self.out.borrow_mut();
                    if out.is_empty() {
                        *out = BytesMut::new(); // give the memory back
                        return Ok(());
                    }
                    match self.up.io.stream.try_write(&out) {
                        Ok(n) => {
                            out.advance(n);
                            continue;
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                        Err(_) => {
                            self.state.set(State::Closed);
                            return Err(SendError::Io);
                        }
                    }
                }
                let wait = self.up.write_timeout();
                if gyre_rt::time::timeout(wait, self.up.io.stream.writable())
                    .await
                    .is_err()
                {
                    // The peer stopped reading: give up on it.
                    self.state.set(State::Closed);
                    return Err(SendError::Io);
                }
            }
        }
    }

    /// Sends a close frame unless one was sent already.
    async fn start_close(&self, code: u16, reason: &str) {
        if self.state.get() != State::Open {
            return;
        }
        self.close_code.set(Some(code));
        self.state.set(State::CloseSent);
        let mut payload = Vec::with_capacity(2 + reason.len());
        payload.extend_from_slice(&code.to_be_bytes());
        // A close payload is at most 125 bytes: cut the reason at a char boundary.
        let mut cut = reason.len().min(123);
        while !reason.is_char_boundary(cut) {
            cut -= 1;
        }
        payload.extend_from_slice(&reason.as_bytes()[..cut]);
        let mut out = BytesMut::new();
        frame::encode(&mut out, true, Opcode::Close, &payload);
        if self.write_now(&out).await.is_err() {
            self.state.set(State::Closed);
        }
    }

    /// After this side's close frame: reads (discarding data) until the
    /// peer's close frame arrives, for at most [`CLOSE_WAIT`].
    async fn finish_close(&self) {
        if self.state.get() != State::CloseSent {
            return;
        }
        let wait = async {
            while self.state.get() == State::CloseSent {
                match self.read_event().await {
                    Ok(Event::PeerClosed(_)) | Err(_) => break,
                    Ok(Event::Message(_)) => {}
                }
            }
        };
        let _ = gyre_rt::time::timeout(CLOSE_WAIT, wait).await;
        self.state.set(State::Closed);
    }
}

enum Wake {
    Readable,
    Shutdown,
    Timer,
}

/// The one task writing the queue; wakes the waiting ones when done.
struct Writer<'a>(&'a Inner);

impl<'a> Writer<'a> {
    fn new(inner: &'a Inner) -> Self {
        inner.flushing.set(true);
        Writer(inner)
    }
}

impl Drop for Writer<'_> {
    fn drop(&mut self) {
        self.0.flushing.set(false);
        for w in self.0.flush_waiters.borrow_mut().drain(..) {
            w.wake();
        }
    }
}

/// Checks the text assembled so far; an incomplete character at the end is
/// fine until the message's last frame.
fn check_utf8(m: &mut Assembling, last: bool) -> Result<(), Stop> {
    match std::str::from_utf8(&m.data[m.utf8_ok..]) {
        Ok(_) => {
            m.utf8_ok = m.data.len();
            Ok(())
        }
        Err(e) if e.error_len().is_none() && !last => {
            m.utf8_ok += e.valid_up_to();
            Ok(())
        }
        Err(_) => Err(Stop::Fail(code::INVALID_DATA, "text is not UTF-8")),
    }
}

/// A close frame's payload: empty, or a valid code and a UTF-8 reason.
fn parse_close(payload: &[u8]) -> Result<Option<CloseFrame>, Stop> {
    match payload.len() {
        0 => Ok(None),
        1 => Err(Stop::Fail(code::PROTOCOL, "close payload of one byte")),
        _ => {
            let code = u16::from_be_bytes([payload[0], payload[1]]);
            if !frame::valid_close_code(code) {
                return Err(Stop::Fail(code::PROTOCOL, "invalid close code"));
            }
            let reason = std::str::from_utf8(&payload[2..])
                .map_err(|_| Stop::Fail(code::INVALID_DATA, "close reason is not UTF-8"))?;
            Ok(Some(CloseFrame {
                code,
                reason: reason.to_owned(),
            }))
        }
    }
}

impl From<Bytes> for Message {
    fn from(b: Bytes) -> Self {
        Message::Binary(b)
    }
}
