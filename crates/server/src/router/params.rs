//! Captured path parameters: raw slices of the request path, inline up to four.

use std::borrow::Cow;
use std::fmt;

use percent_encoding::percent_decode_str;

/// How many captures fit without a heap allocation. Routes rarely have more.
const INLINE: usize = 4;

/// A stack of captured values in path order, inline up to [`INLINE`].
///
/// The router pushes a value when it enters a `:name` branch and pops it when
/// it backtracks, so this supports exactly that and indexed reads.
#[derive(Clone)]
pub(super) struct Values<'p> {
    /// The first `min(len, INLINE)` values; slots from `len` on hold `""` and
    /// are never read.
    inline: [&'p str; INLINE],
    /// Values past the first [`INLINE`]; empty, and so unallocated, while
    /// `len <= INLINE`.
    spill: Vec<&'p str>,
    /// How many values are held. INVARIANT: `spill.len() == len.saturating_sub(INLINE)`.
    len: usize,
}

impl<'p> Values<'p> {
    /// An empty stack; allocates nothing.
    pub(super) fn new() -> Self {
        Self {
            inline: [""; INLINE],
            spill: Vec::new(),
            len: 0,
        }
    }

    /// Pushes `value` after the others.
    pub(super) fn push(&mut self, value: &'p str) {
        match self.inline.get_mut(self.len) {
            Some(slot) => *slot = value,
            None => self.spill.push(value),
        }
        self.len += 1;
    }

    /// Removes the last value pushed.
    pub(super) fn pop(&mut self) {
        debug_assert!(self.len > 0, "pop on empty Values");
        if self.len > INLINE {
            self.spill.pop();
        }
        self.len = self.len.saturating_sub(1);
    }

    /// The values in path order.
    fn iter(&self) -> impl Iterator<Item = &'p str> + '_ {
        let inline = &self.inline[..self.len.min(INLINE)];
        inline.iter().chain(&self.spill).copied()
    }
}

/// The values of a matched route's `:name` and `*name` segments.
///
/// Values are raw slices of the request path, still percent-encoded; use
/// [`decoded`](Params::decoded) to decode one. Up to four values are held
/// inline, without a heap allocation; a fifth and later ones go to a `Vec`.
#[derive(Clone)]
pub struct Params<'r, 'p> {
    /// Capture names in path order, borrowed from the matched route.
    /// INVARIANT: `names.len() == values.len`.
    names: &'r [Box<str>],
    /// Captured values, in the same order as `names`.
    values: Values<'p>,
}

impl<'r, 'p> Params<'r, 'p> {
    /// Pairs a route's capture names with the values one lookup captured.
    pub(super) fn new(names: &'r [Box<str>], values: Values<'p>) -> Self {
        debug_assert_eq!(names.len(), values.len, "one value per capture name");
        Self { names, values }
    }

    /// The raw (still percent-encoded) value of the parameter `name`.
    ///
    /// A `*name` value may be empty and may contain `/`; a `:name` value is
    /// never empty and never contains `/`.
    pub fn get(&self, name: &str) -> Option<&'p str> {
        self.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    /// The value of the parameter `name`, percent-decoded.
    ///
    /// Borrows when nothing needed decoding. Invalid UTF-8 is replaced with
    /// U+FFFD; `+` stays `+` (it means a space only in forms). A decoded value
    /// may contain `/` (from `%2F`) or `..`, so a handler that maps it to a
    /// file must check it.
    pub fn decoded(&self, name: &str) -> Option<Cow<'p, str>> {
        let raw = self.get(name)?;
        Some(percent_decode_str(raw).decode_utf8_lossy())
    }

    /// The `(name, raw value)` pairs in path order.
    pub fn iter(&self) -> impl Iterator<Item = (&'r str, &'p str)> + '_ {
        self.names.iter().map(|n| &**n).zip(self.values.iter())
    }

    /// How many parameters the route captured.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether the route has no parameters.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

impl fmt::Debug for Params<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use http::Method;

    use super::*;
    use crate::router::Router;

    #[test]
    fn values_push_and_pop_across_the_inline_limit() {
        let words = ["a", "b", "c", "d", "e", "f"];
        let mut values = Values::new();
        for (n, word) in words.iter().enumerate() {
            values.push(word);
            assert_eq!(values.iter().collect::<Vec<_>>(), words[..=n]);
            assert_eq!(values.spill.len(), (n + 1).saturating_sub(INLINE));
        }
        for n in (0..words.len()).rev() {
            values.pop();
            assert_eq!(values.iter().collect::<Vec<_>>(), words[..n]);
            assert_eq!(values.spill.len(), n.saturating_sub(INLINE));
        }
    }

    #[test]
    fn params_stay_inline_up_to_four() {
        // (pattern, path, whether the values may spill to the heap)
        let cases = [
            ("/:a", "/1", false),
            ("/:a/:b/:c/*d", "/1/2/3/4/5", false),
            ("/:a/:b/:c/:d", "/1/2/3/4", false),
            ("/x/:a/:b/:c/:d/:e", "/x/1/2/3/4/5", true),
        ];
        for (pattern, path, spills) in cases {
            let mut router = Router::new();
            router.route(Method::GET, pattern, ());
            let found = router.lookup(&Method::GET, path).expect(path);
            let params = &found.params;
            assert_eq!(params.values.spill.capacity() > 0, spills, "{pattern}");
            let got: Vec<_> = params.iter().map(|(_, v)| v).collect();
            let want: Vec<_> = path.split('/').skip(1).filter(|s| *s != "x").collect();
            let want = match pattern.ends_with("*d") {
                true => vec!["1", "2", "3", "4/5"],
                false => want,
            };
            assert_eq!(got, want, "{pattern}");
        }
    }
}
