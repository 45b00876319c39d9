//! gyre's runtime: one event loop per core, each a `mio::Poll` running
//! coroutine tasks, with timers, a blocking pool and a stall watchdog.
//!
//! Tasks are `async` blocks or functions. [`spawn`] runs one on the current
//! loop (no `Send` bound: it never leaves the thread); [`Handle::spawn_on`]
//! sends a `Send` future to a given loop. Sockets and timers belong to the loop
//! that made them. Work that would block a loop goes to [`blocking`].
//!
//! # Layout
//!
//! - [`runtime`](Builder): the loops' threads, [`Handle`], shutdown.
//! - `event_loop`: one loop's turn: run tasks, drain the inbox, fire timers, poll.
//! - `reactor`: readiness slots (edge-triggered epoll → wakers).
//! - [`task`](spawn): spawning, [`JoinHandle`], panics caught per task.
//! - [`time`]: `sleep`, `timeout`, `interval` on a hashed timing wheel.
//! - [`net`]: [`TcpListener`](net::TcpListener), [`TcpStream`](net::TcpStream),
//!   and [`Handle::serve`], stall-aware accept on every loop.
//! - [`blocking`](BlockingPool): a bounded pool with a bounded queue.
//! - [`broadcast`]: topics that fan out once per loop, with bounded subscriber queues.
//! - `watchdog` and [`Label`]: stall detection, naming the work that stalled.
//! - [`PooledFuture`]: a boxed future whose memory the thread recycles.
//! - [`is_resident`]: whether a file range is in the page cache, and
//!   `net::sys`: `recv` and `send` as plain system calls.
//!
//! The crate's `unsafe` is in three modules: `page_cache` and `net::sys`
//! (three system calls), and `pooled` (the raw blocks of `PooledFuture`).
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//! let rt = gyre_rt::Builder::new().workers(2).build().unwrap();
//! let answer = rt.block_on(async {
//!     // Runs on loop 0; this inner task stays on the same loop.
//!     let task = gyre_rt::spawn(async {
//!         gyre_rt::time::sleep(Duration::from_millis(1)).await;
//!         40
//!     });
//!     let offloaded = gyre_rt::blocking(|| 2).await;
//!     task.await.unwrap() + offloaded
//! });
//! assert_eq!(answer, 42);
//! ```

// Unsafe is denied everywhere but `page_cache`, whose one system call no
// safe wrapper offers yet, `net::sys`, which calls `recv` and `send`
// without glibc's cancellation-point wrapping, and `pooled`, which places
// futures in recycled blocks.
#![deny(unsafe_code)]
#![deny(missing_docs)]
#![deny(clippy::undocumented_unsafe_blocks, clippy::missing_safety_doc)]

mod block_on;
mod blocking;
pub mod broadcast;
mod event_loop;
mod label;
pub mod net;
mod page_cache;
mod pooled;
mod reactor;
mod runtime;
mod select;
mod task;
pub mod time;
mod watchdog;

pub use block_on::block_on;
pub use blocking::{blocking, BlockingPool, PoolConfig, PoolStats};
pub use event_loop::{loop_turn, LoopStats};
pub use label::{set_label, Label};
pub use page_cache::is_resident;
pub use pooled::PooledFuture;
pub use runtime::{current_loop, Builder, Handle, LoopSnapshot, Runtime};
pub use select::{select, Either, Select};
pub use task::{spawn, yield_now, JoinError, JoinHandle};
