//! Handlers: `async fn(Request) -> impl IntoResponse`, type-erased for the router.

use std::future::Future;
use std::pin::Pin;

use crate::request::Request;
use crate::response::{IntoResponse, Response};

/// A handler's future, boxed so that routes of different types share a table.
pub type BoxFuture = Pin<Box<dyn Future<Output = Response>>>;

/// Something that answers requests. Implemented for every
/// `Fn(Request) -> impl Future<Output = impl IntoResponse>`.
pub trait Handler: Send + Sync + 'static {
    /// Starts answering `req`.
    fn call(&self, req: Request) -> BoxFuture;
}

impl<F, Fut, R> Handler for F
where
    F: Fn(Request) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = R> + 'static,
    R: IntoResponse,
{
    fn call(&self, req: Request) -> BoxFuture {
        let fut = self(req);
        Box::pin(async move { fut.await.into_response() })
    }
}
