//! Handlers: `async fn(Request) -> impl IntoResponse`, type-erased for the router.

use std::future::Future;

use gyre_rt::PooledFuture;

use crate::request::Request;
use crate::response::{IntoResponse, Response};

/// A handler's future, boxed so that routes of different types share a
/// table. It may borrow the handler, which outlives every request.
///
/// The box is a [`PooledFuture`]: its memory is recycled by the loop, so a
/// handler that never awaits costs its call and no allocation.
pub type BoxFuture<'a> = PooledFuture<'a, Response>;

/// Something that answers requests. Implemented for every
/// `Fn(Request) -> impl Future<Output = impl IntoResponse>`.
pub trait Handler: Send + Sync + 'static {
    /// Starts answering `req`.
    fn call(&self, req: Request) -> BoxFuture<'_>;
}

impl<F, Fut, R> Handler for F
where
    F: Fn(Request) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = R> + 'static,
    R: IntoResponse,
{
    fn call(&self, req: Request) -> BoxFuture<'_> {
        // The request moves once, into the box; the handler's own future is
        // then built in place there (building it first and boxing it after
        // measured as extra copies of the ~300-byte request).
        PooledFuture::new(async move { self(req).await.into_response() })
    }
}
