//! The segment tree behind the router: pattern parsing, insertion and matching.

use std::fmt;
use std::sync::Arc;

use http::Method;

use super::params::Values;

/// One parsed segment of a route pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Segment<'a> {
    /// A literal segment, matched byte for byte; empty only as the last one.
    Static(&'a str),
    /// `:name`: any one non-empty segment.
    Param(&'a str),
    /// `*name`: the rest of the path, possibly empty; always the last segment.
    Wildcard(&'a str),
}

/// Parses `pattern` into segments, or says why it is invalid.
pub(super) fn parse(pattern: &str) -> Result<Vec<Segment<'_>>, &'static str> {
    let rest = pattern.strip_prefix('/').ok_or("must start with '/'")?;
    if rest.contains(['?', '#']) {
        return Err("'?' and '#' cannot occur in a path");
    }
    let count = rest.split('/').count();
    let mut segments = Vec::with_capacity(count);
    for (i, text) in rest.split('/').enumerate() {
        let last = i + 1 == count;
        let segment = if let Some(name) = text.strip_prefix(':') {
            Segment::Param(name)
        } else if let Some(name) = text.strip_prefix('*') {
            if !last {
                return Err("a '*' wildcard must be the last segment");
            }
            Segment::Wildcard(name)
        } else if text.is_empty() && !last {
            return Err("empty segment ('//'); only the last segment may be empty");
        } else {
            Segment::Static(text)
        };
        if let Segment::Param(name) | Segment::Wildcard(name) = segment {
            check_name(name)?;
            if segments.iter().any(|s| capture_name(s) == Some(name)) {
                return Err("parameter name used twice");
            }
        }
        segments.push(segment);
    }
    Ok(segments)
}

/// Checks a `:name` or `*name`: non-empty ASCII letters, digits and `_`.
fn check_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("empty parameter name");
    }
    if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err("parameter names are ASCII letters, digits and '_'");
    }
    Ok(())
}

/// The capture name of a `:name` or `*name` segment.
fn capture_name<'a>(segment: &Segment<'a>) -> Option<&'a str> {
    match *segment {
        Segment::Static(_) => None,
        Segment::Param(name) | Segment::Wildcard(name) => Some(name),
    }
}

/// A registered route: what a successful lookup hands out.
pub(super) struct Route<H> {
    /// The method served; unique among the routes of one endpoint.
    pub(super) method: Method,
    /// The pattern as registered, for logs and labels.
    pub(super) pattern: Box<str>,
    /// Capture names in path order: one per `:`/`*` segment on the way to
    /// this route's endpoint, so as many as a match captures values.
    pub(super) names: Box<[Box<str>]>,
    /// The caller's handler, opaque to the router.
    pub(super) handler: H,
}

impl<H> Route<H> {
    /// Builds the route for `pattern`, already parsed into `segments`.
    pub(super) fn new(method: Method, pattern: &str, segments: &[Segment<'_>], handler: H) -> Self {
        let names = segments.iter().filter_map(capture_name).map(Box::from);
        Self {
            method,
            pattern: pattern.into(),
            names: names.collect(),
            handler,
        }
    }
}

impl<H> fmt::Display for Route<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.method, self.pattern)
    }
}

/// A tree node: reached after matching the segments on its path from the root.
///
/// The shape of a pattern (literals kept, names dropped) is its node path, so
/// routes that differ only in parameter names share a node.
pub(super) struct Node<H> {
    /// Literal children, sorted by segment text with no repeats, so lookup
    /// can binary-search them.
    statics: Vec<(Box<str>, Node<H>)>,
    /// The child reached through a `:name` segment, if any pattern has one here.
    param: Option<Box<Node<H>>>,
    /// Routes whose pattern ends with `*name` right after this node; at most
    /// one per method.
    wildcard: Vec<Arc<Route<H>>>,
    /// Routes whose pattern ends at this node; at most one per method.
    routes: Vec<Arc<Route<H>>>,
}

impl<H> Default for Node<H> {
    fn default() -> Self {
        Self {
            statics: Vec::new(),
            param: None,
            wildcard: Vec::new(),
            routes: Vec::new(),
        }
    }
}

impl<H> Node<H> {
    /// Inserts `route` under the node path of `segments`, or returns the
    /// existing route with the same method and shape.
    pub(super) fn insert(
        &mut self,
        segments: &[Segment<'_>],
        route: Route<H>,
    ) -> Result<Arc<Route<H>>, &Route<H>> {
        let mut node = self;
        for segment in segments {
            node = match *segment {
                Segment::Static(text) => {
                    let found = node
                        .statics
                        .binary_search_by(|(k, _)| key_cmp(k.as_bytes(), text.as_bytes()));
                    let i = found.unwrap_or_else(|i| {
                        node.statics.insert(i, (text.into(), Node::default()));
                        i
                    });
                    &mut node.statics[i].1
                }
                Segment::Param(_) => node.param.get_or_insert_with(Box::default),
                Segment::Wildcard(_) => return add(&mut node.wildcard, route),
            };
        }
        add(&mut node.routes, route)
    }

    /// Matches `rest` (the path after a `/`) against this node's children,
    /// returning the first route, by priority, with a handler for `method`.
    ///
    /// Pushes one value per capture on success and leaves `values` as it was
    /// on failure. Sets `seen` when some route matched the path whatever its
    /// method.
    ///
    /// This is a depth-first walk of a tree, so backtracking visits each node
    /// at most once: the worst case is bounded by the route table, not the path.
    pub(super) fn find<'r, 'p>(
        &'r self,
        rest: &'p str,
        method: &Method,
        values: &mut Values<'p>,
        seen: &mut bool,
    ) -> Option<&'r Route<H>> {
        let (segment, next) = split_first(rest);
        if let Ok(i) = self
            .statics
            .binary_search_by(|(k, _)| key_cmp(k.as_bytes(), segment.as_bytes()))
        {
            let found = self.statics[i].1.descend(next, method, values, seen);
            if found.is_some() {
                return found;
            }
        }
        if let (Some(child), false) = (&self.param, segment.is_empty()) {
            values.push(segment);
            let found = child.descend(next, method, values, seen);
            if found.is_some() {
                return found;
            }
            values.pop();
        }
        let route = select(&self.wildcard, method, seen)?;
        values.push(rest);
        Some(route)
    }

    /// Continues [`find`](Self::find) in this node after its segment: ends
    /// here when the path does, else matches the `next` segments.
    fn descend<'r, 'p>(
        &'r self,
        next: Option<&'p str>,
        method: &Method,
        values: &mut Values<'p>,
        seen: &mut bool,
    ) -> Option<&'r Route<H>> {
        match next {
            None => select(&self.routes, method, seen),
            Some(rest) => self.find(rest, method, values, seen),
        }
    }

    /// Collects the methods of every route matching `rest`, on all branches
    /// (repeats included), for a 405's `Allow`.
    pub(super) fn allowed<'r>(&'r self, rest: &str, methods: &mut Vec<&'r Method>) {
        let (segment, next) = split_first(rest);
        if let Ok(i) = self
            .statics
            .binary_search_by(|(k, _)| key_cmp(k.as_bytes(), segment.as_bytes()))
        {
            self.statics[i].1.allowed_below(next, methods);
        }
        if let (Some(child), false) = (&self.param, segment.is_empty()) {
            child.allowed_below(next, methods);
        }
        methods.extend(self.wildcard.iter().map(|r| &r.method));
    }

    /// Continues [`allowed`](Self::allowed) in this node after its segment.
    fn allowed_below<'r>(&'r self, next: Option<&str>, methods: &mut Vec<&'r Method>) {
        match next {
            None => methods.extend(self.routes.iter().map(|r| &r.method)),
            Some(rest) => self.allowed(rest, methods),
        }
    }

    /// Calls `f` on every route in the tree, in lookup priority order.
    pub(super) fn for_each_route<'r>(&'r self, f: &mut impl FnMut(&'r Route<H>)) {
        self.routes.iter().map(|r| &**r).for_each(&mut *f);
        for (_, child) in &self.statics {
            child.for_each_route(f);
        }
        if let Some(child) = &self.param {
            child.for_each_route(f);
        }
        self.wildcard.iter().map(|r| &**r).for_each(f);
    }
}

/// Adds `route` to an endpoint unless one with its method is already there.
fn add<H>(routes: &mut Vec<Arc<Route<H>>>, route: Route<H>) -> Result<Arc<Route<H>>, &Route<H>> {
    match routes.iter().position(|r| r.method == route.method) {
        Some(i) => Err(&routes[i]),
        None => {
            let route = Arc::new(route);
            routes.push(route.clone());
            Ok(route)
        }
    }
}

/// Picks the route of an endpoint for `method`, GET serving HEAD when there
/// is no HEAD route; sets `seen` if the endpoint has any route.
pub(super) fn select<'r, H>(
    routes: &'r [Arc<Route<H>>],
    method: &Method,
    seen: &mut bool,
) -> Option<&'r Route<H>> {
    if routes.is_empty() {
        return None;
    }
    *seen = true;
    let exact = routes.iter().find(|r| r.method == *method);
    let found = exact.or_else(|| match *method == Method::HEAD {
        true => routes.iter().find(|r| r.method == Method::GET),
        false => None,
    });
    found.map(|r| &**r)
}

/// Splits off the first segment of `rest`; `None` when it was the last one.
fn split_first(rest: &str) -> (&str, Option<&str>) {
    // A plain scan: segments are short, shorter than a `memchr` call is worth.
    match rest.bytes().position(|b| b == b'/') {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    }
}

/// The order of static segments: by length, then bytes. Any total order
/// serves a binary search; this one settles most comparisons on the lengths.
fn key_cmp(key: &[u8], segment: &[u8]) -> std::cmp::Ordering {
    key.len().cmp(&segment.len()).then_with(|| key.cmp(segment))
}
