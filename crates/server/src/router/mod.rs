//! Method + path routing: a segment tree that maps `(Method, path)` to a handler.
//!
//! # Patterns
//!
//! A pattern starts with `/` and is split on `/` into segments:
//!
//! - a literal segment (`users`) matches exactly that text, compared raw
//!   (still percent-encoded, case-sensitive);
//! - `:name` matches any one non-empty segment;
//! - `*name` matches the rest of the path, slashes included, possibly empty.
//!   It may only be the last segment, and the slash before it is literal:
//!   `/files/*rest` matches `/files/` and `/files/a/b` but not `/files`.
//!
//! Names are ASCII letters, digits and `_`, unique within a pattern. A segment
//! is special only through its first byte, so `v1:batch` is a literal.
//!
//! # Matching
//!
//! - Only the path is matched; the caller strips the query first.
//! - At each level a literal beats `:param`, which beats `*wildcard`. When a
//!   more specific branch fails deeper down, matching backtracks and tries the
//!   next one: with `/a/:x/c` and `/a/b/d`, the path `/a/b/c` matches the first.
//! - A branch also fails when its route has no handler for the method, so with
//!   `POST /users/me` and `GET /users/:id`, `GET /users/me` reaches `:id`.
//! - A trailing slash is significant (`/users/` and `/users` are distinct), and
//!   an empty segment (`//`) matches nothing but a wildcard's rest.
//! - HEAD falls back to the GET handler when the route has no HEAD handler;
//!   the server drops the body.
//! - When no handler fits the method but some route matches the path, the
//!   error is 405 with an `Allow` value listing every method that would
//!   succeed for that path; otherwise it is 404.
//!
//! Lookup allocates nothing on success beyond what [`Params`] documents
//! (nothing for up to four captures). Its recursion depth is bounded by the
//! deepest pattern, not by the request path.
//!
//! # Examples
//!
//! ```
//! use gyre_server::router::{RouteError, Router};
//! use http::Method;
//!
//! let mut router = Router::new();
//! router
//!     .route(Method::GET, "/users/:id", "show user")
//!     .route(Method::GET, "/users/me", "show me")
//!     .route(Method::GET, "/static/*path", "serve file");
//!
//! let found = router.lookup(&Method::GET, "/users/42").unwrap();
//! assert_eq!(*found.handler, "show user");
//! assert_eq!(found.pattern, "/users/:id");
//! assert_eq!(found.params.get("id"), Some("42"));
//!
//! let found = router.lookup(&Method::HEAD, "/static/css/site.css").unwrap();
//! assert_eq!(found.params.get("path"), Some("css/site.css"));
//!
//! let err = router.lookup(&Method::POST, "/users/me").unwrap_err();
//! assert_eq!(err, RouteError::MethodNotAllowed { allow: "GET, HEAD".into() });
//! ```

mod params;
#[cfg(test)]
mod tests;
mod tree;

use std::fmt;
use std::sync::Arc;

use http::{Method, StatusCode};

pub use params::Params;
use params::Values;
use rustc_hash::FxHashMap;
use tree::{select, Node, Route, Segment};

/// A set of routes, each a method, a pattern and a handler of type `H`.
///
/// Build it once with [`route`](Router::route), then share it read-only and
/// call [`lookup`](Router::lookup) per request. `H` is opaque to the router.
pub struct Router<H> {
    /// Root of the segment tree; its children match the first path segment.
    ///
    /// Holds each (method, pattern shape) pair at most once: `route` refuses
    /// duplicates, so a lookup never has to choose between equal routes.
    root: Node<H>,
    /// The routes of each pattern made only of literal segments, by pattern:
    /// a path equal to one is answered by one hash look-up instead of a walk
    /// of the tree when the method fits. The tree still holds these routes,
    /// for backtracking and `Allow`.
    ///
    /// Fx hashing (`rustc-hash`): a request path hashes in a few
    /// instructions a word. It is not keyed, but the table is the
    /// application's own routes: a path crafted to collide with one of them
    /// costs the look-up a few more comparisons, no more. A binary search of
    /// a sorted list cost 87 instructions more a request, most of them in
    /// `memcmp`, with the routes of `gyre serve --bench-routes`.
    exact: FxHashMap<Box<[u8]>, Endpoint<H>>,
}

/// The routes of one pattern, one per method.
type Endpoint<H> = Vec<Arc<Route<H>>>;

/// A successful lookup: the handler, its pattern and the captured parameters.
pub struct Found<'r, 'p, H> {
    /// The handler registered for the method (or GET's, for a HEAD request
    /// without a HEAD route).
    pub handler: &'r H,
    /// The pattern as registered, e.g. `/users/:id`: a low-cardinality label
    /// for logs and metrics.
    pub pattern: &'r str,
    /// Values of the pattern's `:name` and `*name` segments, raw slices of the
    /// request path.
    pub params: Params<'r, 'p>,
}

/// Why a lookup found no handler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteError {
    /// No route matches the path (404).
    NotFound,
    /// Some route matches the path, but none for this method (405).
    MethodNotAllowed {
        /// Value for the `Allow` header (RFC 9110 §10.2.1): the methods that
        /// would succeed for this path, e.g. `GET, HEAD, POST`. Never empty.
        allow: String,
    },
}

impl<H> Router<H> {
    /// Creates a router without routes.
    pub fn new() -> Self {
        Self {
            root: Node::default(),
            exact: FxHashMap::default(),
        }
    }

    /// Adds a route. Pattern syntax: literal segments, `:name` for one
    /// segment, `*name` for the rest of the path (only as the last segment;
    /// may match an empty rest). See the [module docs](self) for details.
    ///
    /// # Panics
    ///
    /// Panics, as for any programming error at build time, on an invalid
    /// pattern (no leading `/`, `*` not last, an empty or repeated name, an
    /// empty segment other than the last, `?` or `#`) or on a conflicting
    /// duplicate: the same method with the same pattern shape, whatever the
    /// parameter names (`/users/:id` and `/users/:name`).
    #[track_caller]
    pub fn route(&mut self, method: Method, pattern: &str, handler: H) -> &mut Self {
        let segments = match tree::parse(pattern) {
            Ok(segments) => segments,
            Err(why) => panic!("invalid route pattern {pattern:?}: {why}"),
        };
        let route = Route::new(method, pattern, &segments, handler);
        let route = match self.root.insert(&segments, route) {
            Ok(route) => route,
            Err(existing) => {
                panic!("route {pattern:?} conflicts with the existing route {existing}")
            }
        };
        if segments.iter().all(|s| matches!(s, Segment::Static(_))) {
            self.exact
                .entry(pattern.as_bytes().into())
                .or_default()
                .push(route);
        }
        self
    }

    /// Finds the handler for `method` and `path` (the path only, without the
    /// query), following the rules in the [module docs](self).
    ///
    /// A path that does not start with `/` (e.g. `*`) matches nothing.
    pub fn lookup<'r, 'p>(
        &'r self,
        method: &Method,
        path: &'p str,
    ) -> Result<Found<'r, 'p, H>, RouteError> {
        match self.lookup_exact(method, path.as_bytes()) {
            Some(found) => Ok(found),
            None => self.lookup_tree(method, path),
        }
    }

    /// Like [`lookup`](Self::lookup) for a path given as bytes: a path equal
    /// to a literal pattern is found without first checking that the bytes
    /// are UTF-8; any other is checked, then looked up (bytes that are not
    /// UTF-8 match no route).
    pub fn lookup_bytes<'r, 'p>(
        &'r self,
        method: &Method,
        path: &'p [u8],
    ) -> Result<Found<'r, 'p, H>, RouteError> {
        if let Some(found) = self.lookup_exact(method, path) {
            return Ok(found);
        }
        let path = std::str::from_utf8(path).map_err(|_| RouteError::NotFound)?;
        self.lookup_tree(method, path)
    }

    /// A literal pattern equal to `path` with a handler for `method`: it
    /// wins over any other branch (see the module docs).
    fn lookup_exact<'r, 'p>(&'r self, method: &Method, path: &[u8]) -> Option<Found<'r, 'p, H>> {
        let route = select(self.exact.get(path)?, method, &mut false)?;
        Some(Found {
            handler: &route.handler,
            pattern: &route.pattern,
            params: Params::new(&route.names, Values::new()),
        })
    }

    /// [`lookup`](Self::lookup) by a walk of the tree.
    fn lookup_tree<'r, 'p>(
        &'r self,
        method: &Method,
        path: &'p str,
    ) -> Result<Found<'r, 'p, H>, RouteError> {
        let rest = path.strip_prefix('/').ok_or(RouteError::NotFound)?;
        let mut path_matched = false;
        let mut values = Values::new();
        if let Some(route) = self.root.find(rest, method, &mut values, &mut path_matched) {
            return Ok(Found {
                handler: &route.handler,
                pattern: &route.pattern,
                params: Params::new(&route.names, values),
            });
        }
        if !path_matched {
            return Err(RouteError::NotFound);
        }
        // The error path may allocate: walk every branch for the methods.
        let mut methods = Vec::new();
        self.root.allowed(rest, &mut methods);
        Err(RouteError::MethodNotAllowed {
            allow: allow_header(methods),
        })
    }
}

impl<H> Default for Router<H> {
    fn default() -> Self {
        Self::new()
    }
}

impl<H> fmt::Debug for Router<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut routes = Vec::new();
        self.root.for_each_route(&mut |route| routes.push(route));
        let mut list = f.debug_list();
        for route in routes {
            list.entry(&format_args!("{} {}", route.method, route.pattern));
        }
        list.finish()
    }
}

impl<H> fmt::Debug for Found<'_, '_, H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Found")
            .field("pattern", &self.pattern)
            .field("params", &self.params)
            .finish_non_exhaustive()
    }
}

impl RouteError {
    /// The response status for this error: 404 or 405.
    pub fn status(&self) -> StatusCode {
        match self {
            RouteError::NotFound => StatusCode::NOT_FOUND,
            RouteError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
        }
    }
}

impl fmt::Display for RouteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RouteError::NotFound => f.write_str("no route matches the path"),
            RouteError::MethodNotAllowed { allow } => {
                write!(f, "method not allowed for the path (allow: {allow})")
            }
        }
    }
}

impl std::error::Error for RouteError {}

/// Methods listed first in `Allow`, in this order; others follow alphabetically.
const ALLOW_ORDER: [Method; 7] = [
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::PUT,
    Method::DELETE,
    Method::PATCH,
    Method::OPTIONS,
];

/// Formats `methods` (possibly repeated) as an `Allow` value in a stable
/// order, adding HEAD when GET is present since GET also serves HEAD.
fn allow_header(mut methods: Vec<&Method>) -> String {
    if methods.contains(&&Method::GET) {
        methods.push(&Method::HEAD);
    }
    methods.sort_by_key(|m| {
        let rank = ALLOW_ORDER.iter().position(|o| o == *m);
        (rank.unwrap_or(ALLOW_ORDER.len()), m.as_str())
    });
    methods.dedup();
    let names: Vec<&str> = methods.iter().map(|m| m.as_str()).collect();
    names.join(", ")
}
