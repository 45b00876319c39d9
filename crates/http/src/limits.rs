//! Size limits that bound how much of a request head the parser will buffer.

/// The largest number of header fields [`parse_request`](crate::parse_request)
/// can hold in its stack-allocated scratch space.
///
/// [`Limits::max_headers`] values above this are clamped to it.
pub const MAX_HEADERS: usize = 100;

/// Size limits for a request head.
///
/// Every limit is checked on partial input too, so a client that trickles a
/// never-ending head is refused as soon as it crosses a limit rather than
/// after the server has buffered it all.
///
/// # Examples
///
/// ```
/// use gyre_http::Limits;
///
/// let strict = Limits { max_headers: 32, ..Limits::default() };
/// assert_eq!(strict.max_head, 16 * 1024);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest request-line accepted, in bytes, not counting its CRLF.
    ///
    /// Default 8 KiB, above the 8000 octets RFC 9112 §3 recommends supporting.
    /// A longer line is refused with 414 (URI Too Long).
    pub max_request_line: usize,
    /// Longest head accepted (request-line, header fields and the empty
    /// line), in bytes.
    ///
    /// Default 16 KiB; nginx allows 4 × 8 KiB through
    /// `large_client_header_buffers` and Kestrel 32 KiB. A larger head is
    /// refused with 431 (Request Header Fields Too Large).
    pub max_head: usize,
    /// Most header field lines accepted. Default 100, and never more than
    /// [`MAX_HEADERS`]. More are refused with 431.
    pub max_headers: usize,
}

impl Limits {
    /// The default limits: 8 KiB request-line, 16 KiB head, 100 headers.
    pub const DEFAULT: Limits = Limits {
        max_request_line: 8 * 1024,
        max_head: 16 * 1024,
        max_headers: MAX_HEADERS,
    };

    /// The header count actually enforced: `max_headers` clamped to
    /// [`MAX_HEADERS`].
    pub(crate) fn header_slots(&self) -> usize {
        self.max_headers.min(MAX_HEADERS)
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_defaults() {
        let limits = Limits::default();
        assert_eq!(limits.max_request_line, 8192);
        assert_eq!(limits.max_head, 16384);
        assert_eq!(limits.max_headers, 100);
    }

    #[test]
    fn limits_clamp_header_slots() {
        let limits = Limits {
            max_headers: 1000,
            ..Limits::default()
        };
        assert_eq!(limits.header_slots(), MAX_HEADERS);
        let limits = Limits {
            max_headers: 3,
            ..Limits::default()
        };
        assert_eq!(limits.header_slots(), 3);
    }
}
