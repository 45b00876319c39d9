//! Readiness slots: what epoll said about each socket, and who waits for it.
//!
//! mio is edge-triggered: an event says "this socket became ready" once. The
//! slot remembers it until an operation hits `WouldBlock` (or reads short),
//! and only then does a task wait for the next edge.

use std::cell::RefCell;
use std::io;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use mio::event::Source;
use mio::{Events, Interest, Registry, Token};
use slab::Slab;

use crate::event_loop::{self, Local, WAKER_TOKEN};

/// The direction of an I/O operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    /// Reading, accepting.
    Read,
    /// Writing, connecting.
    Write,
}

/// What one socket's slot holds.
#[derive(Debug, Default)]
pub(crate) struct Slot {
    /// The socket may be readable (an edge came and no read has hit `WouldBlock` since).
    readable: bool,
    /// The socket may be writable.
    writable: bool,
    /// The peer closed its side or the socket failed: readable for good,
    /// whatever a short read suggests (no further edge will come).
    read_closed: bool,
    /// The socket can no longer be written: writable for good (writes fail fast).
    write_closed: bool,
    /// The task waiting to read, if any.
    reader: Option<Waker>,
    /// The task waiting to write, if any.
    writer: Option<Waker>,
}

/// The readiness slots of one loop.
#[derive(Debug)]
pub(crate) struct Reactor {
    /// Registers sockets with this loop's epoll.
    registry: Registry,
    /// One slot per registered socket; the key is the mio token.
    slots: RefCell<Slab<Slot>>,
    /// The wakers of one [`dispatch`](Self::dispatch), kept from turn to
    /// turn so that a turn allocates nothing (a fresh `Vec` cost a malloc,
    /// reallocs and a free in every turn that woke a task). Empty between
    /// dispatches.
    woken: RefCell<Vec<Waker>>,
}

impl Reactor {
    pub(crate) fn new(registry: Registry) -> Self {
        Reactor {
            registry,
            slots: RefCell::new(Slab::with_capacity(1024)),
            woken: RefCell::new(Vec::with_capacity(1024)),
        }
    }

    /// Applies a batch of epoll events: marks slots ready, then wakes the waiters.
    pub(crate) fn dispatch(&self, events: &Events) {
        let mut wake = std::mem::take(&mut *self.woken.borrow_mut());
        {
            let mut slots = self.slots.borrow_mut();
            for event in events {
                if event.token() == WAKER_TOKEN {
                    continue;
                }
                let Some(slot) = slots.get_mut(event.token().0) else {
                    continue;
                };
                let error = event.is_error();
                if event.is_read_closed() || error {
                    slot.read_closed = true;
                }
                if event.is_write_closed() || error {
                    slot.write_closed = true;
                }
                if event.is_readable() || slot.read_closed {
                    slot.readable = true;
                    wake.extend(slot.reader.take());
                }
                if event.is_writable() || slot.write_closed {
                    slot.writable = true;
                    wake.extend(slot.writer.take());
                }
            }
        }
        // Woken outside the borrow: waking may drop the last reference to a
        // task, whose sockets then deregister from these very slots.
        for waker in wake.drain(..) {
            waker.wake();
        }
        *self.woken.borrow_mut() = wake;
    }

    /// Removes every slot, for teardown; the caller drops them outside the borrow.
    pub(crate) fn take_all(&self) -> Slab<Slot> {
        std::mem::take(&mut *self.slots.borrow_mut())
    }
}

/// A socket registered with the current loop. Not `Send`: it belongs to its loop.
#[derive(Debug)]
pub(crate) struct Registration {
    /// The mio token, which is the slot's key.
    token: usize,
    /// The loop the socket is registered with.
    local: Rc<Local>,
}

impl Registration {
    /// Registers `source` with the current loop for reads and writes.
    /// It starts writable (a fresh socket almost always is) and not readable.
    pub(crate) fn new(source: &mut impl Source) -> io::Result<Self> {
        let local = event_loop::current();
        let token = local.reactor.slots.borrow_mut().insert(Slot {
            writable: true,
            ..Slot::default()
        });
        let interest = Interest::READABLE | Interest::WRITABLE;
        if let Err(e) = local
            .reactor
            .registry
            .register(source, Token(token), interest)
        {
            local.reactor.slots.borrow_mut().remove(token);
            return Err(e);
        }
        Ok(Registration { token, local })
    }

    /// Ready now, or `Pending` with the task registered for the next edge.
    pub(crate) fn poll_ready(&self, cx: &mut Context<'_>, dir: Direction) -> Poll<()> {
        let mut slots = self.local.reactor.slots.borrow_mut();
        let Some(slot) = slots.get_mut(self.token) else {
            return Poll::Ready(());
        };
        let (ready, waiter) = match dir {
            Direction::Read => (slot.readable, &mut slot.reader),
            Direction::Write => (slot.writable, &mut slot.writer),
        };
        if ready {
            return Poll::Ready(());
        }
        match waiter {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => *waiter = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// Forgets readiness in one direction: the last operation found the socket
    /// drained (a `WouldBlock`, or a read or write shorter than asked for, which
    /// on a stream socket means the same: any later change brings a new edge).
    pub(crate) fn clear(&self, dir: Direction) {
        if let Some(slot) = self.local.reactor.slots.borrow_mut().get_mut(self.token) {
            match dir {
                Direction::Read => slot.readable = slot.read_closed,
                Direction::Write => slot.writable = slot.write_closed,
            }
        }
    }

    /// Runs a non-blocking operation when the socket is ready, retrying after
    /// `WouldBlock` once the next edge arrives.
    pub(crate) fn poll_io<R>(
        &self,
        cx: &mut Context<'_>,
        dir: Direction,
        mut op: impl FnMut() -> io::Result<R>,
    ) -> Poll<io::Result<R>> {
        loop {
            if self.poll_ready(cx, dir).is_pending() {
                return Poll::Pending;
            }
            match op() {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.clear(dir),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                result => return Poll::Ready(result),
            }
        }
    }

    /// Removes the socket from epoll explicitly (needed for duplicated fds,
    /// which closing one copy would not remove).
    pub(crate) fn deregister(&self, source: &mut impl Source) -> io::Result<()> {
        self.local.reactor.registry.deregister(source)
    }
}

/// Wakes every task of the current loop that waits to read a socket, ready
/// or not (a woken future polls again and finds what it waits for, or waits
/// again): how a server tells its idle connections that something else
/// changed, such as a graceful shutdown, without keeping a waiter list of
/// its own for every one of them. Does nothing off a loop thread.
pub fn wake_readers() {
    crate::event_loop::try_with_current(|local| {
        let wakers: Vec<std::task::Waker> = local
            .reactor
            .slots
            .borrow_mut()
            .iter_mut()
            .filter_map(|(_, slot)| slot.reader.take())
            .collect();
        for w in wakers {
            w.wake();
        }
    });
}

impl Drop for Registration {
    fn drop(&mut self) {
        // Closing the fd removes it from epoll; only the slot needs freeing.
        // `try_remove`: at teardown the slots were already taken away.
        let removed = self.local.reactor.slots.borrow_mut().try_remove(self.token);
        drop(removed);
    }
}
