//! A response's header map, allocated on first write.
//!
//! Most responses carry no field but their Content-Type (kept apart, see
//! [`Response::content_type`](crate::Response::content_type)), and a response
//! moves several times between its handler and the write buffer: this is 8
//! bytes where a `HeaderMap` is 96 (measured as memcpy on pipelined requests).

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::OnceLock;

use http::HeaderMap;

/// A [`HeaderMap`] that allocates on first mutable use. It dereferences to
/// the map, so `response.headers.insert(..)` and `response.headers.get(..)`
/// read as they would on a plain map.
#[derive(Default, Clone)]
pub struct Headers(Option<Box<HeaderMap>>);

impl Headers {
    /// No fields, and no allocation.
    pub const fn new() -> Self {
        Headers(None)
    }

    /// The map itself (an empty one if nothing was ever written).
    pub fn into_inner(self) -> HeaderMap {
        self.0.map(|map| *map).unwrap_or_default()
    }
}

impl Deref for Headers {
    type Target = HeaderMap;

    fn deref(&self) -> &HeaderMap {
        static EMPTY: OnceLock<HeaderMap> = OnceLock::new();
        match &self.0 {
            Some(map) => map,
            None => EMPTY.get_or_init(HeaderMap::new),
        }
    }
}

impl DerefMut for Headers {
    fn deref_mut(&mut self) -> &mut HeaderMap {
        self.0.get_or_insert_with(Box::default)
    }
}

impl From<HeaderMap> for Headers {
    fn from(map: HeaderMap) -> Self {
        Headers(Some(Box::new(map)))
    }
}

impl fmt::Debug for Headers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::Headers;
    use http::header::{HeaderValue, CACHE_CONTROL};

    #[test]
    fn reads_as_empty_until_written() {
        let mut headers = Headers::new();
        assert!(headers.is_empty());
        assert!(headers.0.is_none());
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        assert_eq!(headers.get(CACHE_CONTROL).unwrap(), "no-store");
        assert_eq!(headers.clone().into_inner().len(), 1);
        assert_eq!(Headers::default().into_inner().len(), 0);
    }
}
