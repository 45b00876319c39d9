//! Tasks: spawning coroutines on a loop, join handles, panics caught per task.

use std::any::Any;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};

use async_task::FallibleTask;

use crate::event_loop::{self, Shared};

/// Runs `future` on the current loop. The future need not be `Send`: it never
/// leaves this thread.
///
/// Panics when called off a loop thread; use [`crate::Handle::spawn_on`] there.
pub fn spawn<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    let shared = event_loop::with_current(|l| l.shared.clone());
    let future = Guarded::new(future, shared.clone());
    let (runnable, task) = async_task::spawn_local(future, move |r| shared.schedule(r));
    runnable.schedule();
    JoinHandle::new(task.fallible())
}

/// Runs a `Send` future on the loop `shared`, from any thread.
pub(crate) fn spawn_on<F>(shared: &Arc<Shared>, future: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let target = shared.clone();
    let future = Guarded::new(future, shared.clone());
    let (runnable, task) = async_task::spawn(future, move |r| target.schedule(r));
    runnable.schedule();
    JoinHandle::new(task.fallible())
}

/// Runs the `!Send` future made by `make` on the loop `shared`: `make` travels
/// to the loop and is called there, so the future never crosses threads.
pub(crate) fn spawn_local_on<M, Fut>(shared: &Arc<Shared>, make: M) -> JoinHandle<Fut::Output>
where
    M: FnOnce() -> Fut + Send + 'static,
    Fut: Future + 'static,
    Fut::Output: Send + 'static,
{
    let target = shared.clone();
    let future = MakeLocal {
        make: Some(make),
        inner: None,
    };
    let (runnable, task) = async_task::spawn(future, move |r| target.schedule(r));
    runnable.schedule();
    JoinHandle::new(task.fallible())
}

/// The carrier task of [`spawn_local_on`]: on its first poll (on the target
/// loop) it spawns the local task, then waits for it. Dropping the carrier
/// (cancelling it) drops the inner task too.
struct MakeLocal<M, T> {
    make: Option<M>,
    inner: Option<FallibleTask<Result<T, JoinError>>>,
}

impl<M, T> Unpin for MakeLocal<M, T> {}

impl<M, Fut, T> Future for MakeLocal<M, T>
where
    M: FnOnce() -> Fut,
    Fut: Future<Output = T> + 'static,
    T: 'static,
{
    type Output = Result<T, JoinError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Some(make) = self.make.take() {
            let future = match catch_unwind(AssertUnwindSafe(make)) {
                Ok(f) => f,
                Err(p) => return Poll::Ready(Err(JoinError::Panicked(panic_message(&p)))),
            };
            self.inner = spawn(future).task.take();
        }
        match self.inner.as_mut() {
            Some(inner) => match Pin::new(inner).poll(cx) {
                Poll::Ready(Some(r)) => Poll::Ready(r),
                Poll::Ready(None) => Poll::Ready(Err(JoinError::Cancelled)),
                Poll::Pending => Poll::Pending,
            },
            None => Poll::Ready(Err(JoinError::Cancelled)),
        }
    }
}

pin_project_lite::pin_project! {
    /// A task's future with its panic caught and its loop's task count kept.
    struct Guarded<F> {
        #[pin]
        future: F,
        count: TaskCount,
    }
}

/// Counts a live task on its loop; the count drops with the future.
struct TaskCount(Arc<Shared>);

impl Drop for TaskCount {
    fn drop(&mut self) {
        self.0.tasks.fetch_sub(1, Ordering::Relaxed);
    }
}

impl<F> Guarded<F> {
    fn new(future: F, shared: Arc<Shared>) -> Self {
        shared.tasks.fetch_add(1, Ordering::Relaxed);
        Guarded {
            future,
            count: TaskCount(shared),
        }
    }
}

impl<F: Future> Future for Guarded<F> {
    type Output = Result<F::Output, JoinError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let future = this.future;
        match catch_unwind(AssertUnwindSafe(|| future.poll(cx))) {
            Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(payload) => {
                let shared = &this.count.0;
                shared.stats.panics.fetch_add(1, Ordering::Relaxed);
                let message = panic_message(&payload);
                tracing::error!(
                    target: "gyre::task",
                    "a task on loop {} panicked: {message}",
                    shared.index
                );
                Poll::Ready(Err(JoinError::Panicked(message)))
            }
        }
    }
}

pub(crate) fn panic_message(payload: &Box<dyn Any + Send>) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}

/// Why a task produced no value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JoinError {
    /// The task was cancelled, or its loop shut down before it finished.
    Cancelled,
    /// The task panicked; the message is the panic's.
    Panicked(String),
}

impl std::fmt::Display for JoinError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JoinError::Cancelled => f.write_str("task was cancelled"),
            JoinError::Panicked(m) => write!(f, "task panicked: {m}"),
        }
    }
}

impl std::error::Error for JoinError {}

/// A handle to a spawned task: await it for the task's result, or detach or
/// cancel it. Dropping the handle detaches the task (it keeps running).
#[derive(Debug)]
pub struct JoinHandle<T> {
    /// `None` only after `detach`/`cancel` consumed it.
    task: Option<FallibleTask<Result<T, JoinError>>>,
}

impl<T> JoinHandle<T> {
    fn new(task: FallibleTask<Result<T, JoinError>>) -> Self {
        JoinHandle { task: Some(task) }
    }

    /// Lets the task run to completion on its own; its result is discarded.
    pub fn detach(mut self) {
        if let Some(t) = self.task.take() {
            t.detach();
        }
    }

    /// Cancels the task and waits until it is gone. Returns its result if it
    /// had already finished. The task's future is dropped on its own loop.
    pub async fn cancel(mut self) -> Option<T> {
        let task = self.task.take()?;
        match task.cancel().await {
            Some(Ok(v)) => Some(v),
            _ => None,
        }
    }

    /// Cancels the task without waiting.
    pub fn abort(mut self) {
        drop(self.task.take());
    }

    /// Whether the task has finished (completed, panicked or been cancelled).
    pub fn is_finished(&self) -> bool {
        self.task.as_ref().is_none_or(|t| t.is_finished())
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Some(task) = self.task.as_mut() else {
            return Poll::Ready(Err(JoinError::Cancelled));
        };
        match Pin::new(task).poll(cx) {
            Poll::Ready(Some(result)) => Poll::Ready(result),
            Poll::Ready(None) => Poll::Ready(Err(JoinError::Cancelled)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T> Drop for JoinHandle<T> {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.detach();
        }
    }
}

/// Gives other ready tasks of this loop a turn, then resumes.
pub async fn yield_now() {
    struct YieldNow(bool);
    impl Future for YieldNow {
        type Output = ();
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            if self.0 {
                return Poll::Ready(());
            }
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
    YieldNow(false).await
}
